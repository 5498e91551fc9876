//! Task execution: the `Backend` trait, the local backend, the image and
//! snapshot store, and the cache-spec layer.
//!
//! Depends on `cuedag-evaluator` and `cuedag-parser`. The only crate that
//! spawns processes or opens sockets.
