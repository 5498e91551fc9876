//! CUE v0.4 evaluator: values, unification, packages and builtins, and the
//! Dagger plan model built on them.
//!
//! Depends on `cuedag-parser` and `cuedag-universe`. Does no IO: sources
//! arrive through the [`Loader`] trait. Synchronous and deterministic.
//!
//! Use: [`load_instance`] (or [`load_text`]) → [`Instance::evaluate`] /
//! [`Instance::evaluate_with_fills`] → [`Evaluation`] (lookup, fields,
//! export, references, errors). See `docs/notes/evaluator-api.md`.

mod api;
pub mod builtins;
mod eval;
mod export;
mod fasthash;
mod ir;
mod load;
pub mod num;
pub mod plan;
pub mod value;

pub use api::{
    data_to_cue_file, load_instance, load_text, render_eval_errors, Attr, Error, EvalError,
    Evaluation, FieldInfo, FillValue, Instance, Kind, Path, Selector, ValueId,
};
pub use export::{to_json_text, to_yaml_text};
pub use load::{
    find_module_root, LoadOptions, LoadProblem, Loader, Location, MemLoader, SourceFile, Sources,
};
