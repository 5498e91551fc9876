//! The cache-spec layer (`--cache-from` / `--cache-to`, `DAGGER_CACHE_*`)
//! and the persistent cache formats (OCI layout directory, registry).
//!
//! Depends on no other crate of ours.
