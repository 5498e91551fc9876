//! The cache-spec layer (`--cache-from` / `--cache-to`, `DAGGER_CACHE_*`)
//! and the persistent cache formats (OCI layout directory, registry).
//!
//! - [`spec`]: parse and validate cache specs into [`CacheSpec`]s.
//! - [`mod@format`]: BuildKit's cache config and the cache manifest, built from
//!   a [`CacheExport`] the backend assembles, read back into a
//!   [`CacheIndex`] (`step key → layers`).
//! - [`local`]: `type=local`: an OCI image layout directory shared by many
//!   exports (one tagged `index.json` entry each, blobs stored once, atomic
//!   and locked updates, prune).
//! - [`registry`]: `type=registry` export/import logic over the
//!   [`RemoteBlobs`] trait that the backend implements with its registry
//!   client.
//!
//! Depends on no other crate of ours. Does blocking file IO (call it from
//! `spawn_blocking`); the registry logic is async over the trait.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
mod error;
pub mod format;
pub mod local;
pub mod registry;
pub mod spec;
pub mod time;

pub use digest::Digest;
pub use error::Error;
pub use format::{
    BlobSource, CacheExport, CacheIndex, ExportLayer, ExportMount, ExportRecord, LayerDescriptor,
    StepHit, StepResult,
};
pub use local::{ImportSelector, LocalCache, LocalImport, PrunePolicy, PruneReport, VerifyReport};
pub use registry::{RegistryCache, RemoteBlobs, RemoteManifest};
pub use spec::{CacheBackend, CacheSpec, CacheSpecs, Direction, Mode, Origin, Secret, SpecError};

/// What an export did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The tag the export was stored under.
    pub tag: String,
    /// Digest of the cache manifest.
    pub manifest: Digest,
    /// Blobs written (or pushed) because the destination lacked them.
    pub blobs_written: usize,
    /// Bytes of those blobs (`index.json`, rewritten unless the export is
    /// unchanged, is not counted).
    pub bytes_written: u64,
    /// Blobs already present and skipped.
    pub blobs_present: usize,
}

/// The default export tag for an action path: BuildKit always wrote
/// `latest`, so two actions exporting to one directory overwrote each other;
/// cuedag tags each export with its action path (`["build"]` → `build`,
/// `["test", "unit"]` → `test.unit`), characters outside `[A-Za-z0-9_.-]`
/// becoming `-`. An empty path gives `latest`.
pub fn default_tag(action_path: &[&str]) -> String {
    let joined = action_path.join(".");
    let mut tag: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if tag.starts_with(['.', '-']) {
        tag.replace_range(..1, "_");
    }
    if tag.is_empty() {
        "latest".to_owned()
    } else {
        tag
    }
}

/// Parses a size such as `500M`, `2GiB`, `10GB` or `1024` (bytes; `K`, `M`,
/// `G`, `T` are powers of 1024 with or without `B`/`iB`).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = number * multiplier as f64;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags() {
        assert_eq!(default_tag(&["build"]), "build");
        assert_eq!(default_tag(&["test", "unit"]), "test.unit");
        assert_eq!(default_tag(&[]), "latest");
        assert_eq!(default_tag(&["a b", "c/d"]), "a-b.c-d");
        assert_eq!(default_tag(&["-x"]), "_x");
        assert!(spec::is_valid_tag(&default_tag(&["ünïcode", "x"])));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("2K"), Some(2048));
        assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_size("10MB"), Some(10 << 20));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5X"), None);
    }
}
