//! Embeds every file below `pkg/` into the crate.
fn main() {}
