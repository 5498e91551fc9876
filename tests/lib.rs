//! End-to-end tests of the `cuedag` binary: each file `tests/*.rs` runs the
//! built binary against `fixtures/` and the services `.ci/run` starts.
