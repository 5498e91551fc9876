//! Builtin packages (`strings`, `list`, `path`, `encoding/json`, ...) and predeclared functions.
