//! Builtin packages (`strings`, `list`, `path`, `encoding/json`, ...) and predeclared functions.

use crate::value::Package;

/// The builtin package with this import path (`strings`, `encoding/json`).
pub fn package(path: &str) -> Option<&'static Package> {
    let _ = path;
    None
}
