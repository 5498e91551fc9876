//! The crate's error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::spec::SpecError;

/// Everything that can go wrong in this crate.
///
/// Import never returns these for a bad cache: a missing or corrupt blob is
/// a miss with a warning. Errors come from invalid specs, from exports
/// (which the caller may downgrade with `ignore-error=true`), and from prune.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An invalid `--cache-to` / `--cache-from` value.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A file-system operation failed.
    #[error("`{}`: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A blob's bytes do not hash to its declared digest.
    #[error("blob `{expected}` does not match its content (found `{found}`, {size} bytes)")]
    DigestMismatch {
        /// The declared digest.
        expected: Digest,
        /// The digest of the bytes.
        found: Digest,
        /// The number of bytes read.
        size: u64,
    },
    /// A record or mount names a layer the export does not carry.
    #[error("layer `{0}` is used by a record but missing from the export's layers")]
    UnknownLayer(Digest),
    /// A JSON object could not be encoded.
    #[error("cannot encode cache JSON: {0}")]
    Encode(String),
    /// A tag is not a valid image tag.
    #[error("invalid cache tag `{0}` (expected letters, digits, `_`, `.` and `-`, at most 128)")]
    InvalidTag(String),
    /// A remote registry operation failed.
    #[error("registry {operation} `{target}` failed: {source}")]
    Remote {
        /// `HEAD blob`, `PUT manifest`, ...
        operation: &'static str,
        /// The digest or reference.
        target: String,
        /// The transport's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// A stable code for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Spec(spec) => spec.code(),
            Error::Io { .. } => "C0201",
            Error::DigestMismatch { .. } => "C0202",
            Error::UnknownLayer(_) => "C0203",
            Error::Encode(_) => "C0204",
            Error::InvalidTag(_) => "C0205",
            Error::Remote { .. } => "C0206",
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            Error::Spec(spec) => spec.hint(),
            Error::Io { .. } => "check that the cache directory exists and is writable".into(),
            Error::DigestMismatch { .. } => {
                "the source blob changed while exporting; rerun the export".into()
            }
            Error::UnknownLayer(_) => "this is a bug in the backend's export".into(),
            Error::Encode(_) => "this is a bug; please report it".into(),
            Error::InvalidTag(_) => "write e.g. `tag=build`".into(),
            Error::Remote { .. } => {
                "check the registry is reachable and the credentials allow pushing".into()
            }
        }
    }
}
