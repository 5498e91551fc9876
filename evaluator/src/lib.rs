//! CUE v0.4 evaluator: values, unification, packages and builtins, and the
//! Dagger plan model built on them.
//!
//! Depends on `cuedag-parser` and `cuedag-universe`. Does no IO: sources
//! arrive through a loader trait. Synchronous and deterministic.

pub mod builtins;
pub mod plan;
pub mod value;
