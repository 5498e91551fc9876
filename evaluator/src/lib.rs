//! CUE v0.4 evaluator: values, unification, packages and builtins.
//!
//! Depends on `cuedag-parser` and `cuedag-universe`. Does no IO: sources
//! arrive through a loader trait. Synchronous and deterministic.
