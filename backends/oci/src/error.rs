//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while resolving, pulling, pushing, storing or
/// unpacking images.
///
/// Every variant has a stable code (see [`OciError::code`]); messages say what
/// was expected and, where useful, end with a hint.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// An image reference could not be parsed.
    #[error("failed to parse ref `{input}`: {reason}")]
    InvalidReference {
        /// The text that was given.
        input: String,
        /// What was wrong with it, and what was expected.
        reason: String,
    },
    /// A digest string is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest `{input}`: expected `sha256:` followed by 64 lowercase hex digits")]
    InvalidDigest {
        /// The text that was given.
        input: String,
    },
    /// A file system operation failed.
    #[error("{op} `{}`: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `creating`, ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An HTTP request could not be sent or its body not read.
    #[error("request to `{url}` failed: {source}")]
    Http {
        /// The URL requested.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// A registry answered with an unexpected status.
    #[error("registry `{url}` answered {status}: {body}")]
    Registry {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body (registry error JSON).
        body: String,
    },
    /// Authentication with a registry failed.
    #[error("authentication with `{registry}` failed: {reason} (hint: check `~/.docker/config.json` or the task's `auth` field)")]
    Auth {
        /// The registry host.
        registry: String,
        /// What went wrong.
        reason: String,
    },
    /// A manifest or blob was not found in the registry.
    #[error("`{reference}` not found in `{registry}`")]
    NotFound {
        /// The reference or digest looked for.
        reference: String,
        /// Where it was looked for.
        registry: String,
    },
    /// Content did not hash to the digest it was stored or fetched under.
    #[error("digest mismatch for {what}: expected `{expected}`, got `{actual}` (the corrupt copy was discarded)")]
    DigestMismatch {
        /// What was being verified.
        what: String,
        /// The digest that was expected.
        expected: String,
        /// The digest of the content actually seen.
        actual: String,
    },
    /// A manifest list or index has no entry for the wanted platform.
    #[error("no image for platform `{platform}` in `{reference}` (available: {available})")]
    NoMatchingPlatform {
        /// The reference pulled.
        reference: String,
        /// The wanted platform.
        platform: String,
        /// The platforms the index offers, comma separated.
        available: String,
    },
    /// A manifest of a media type this crate does not handle.
    #[error("unsupported media type `{media_type}` for `{reference}`: expected a Docker schema2 or OCI manifest or index")]
    UnsupportedMediaType {
        /// The reference pulled.
        reference: String,
        /// The media type seen.
        media_type: String,
    },
    /// JSON (a manifest, config, token or config file) could not be decoded.
    #[error("invalid {what}: {source}")]
    Json {
        /// What was being decoded, with its location when it is a file.
        what: String,
        /// The underlying error (carries line and column).
        source: serde_json::Error,
    },
    /// A configuration file or environment variable is malformed.
    #[error("{location}: {reason}")]
    Config {
        /// `file:line:col` or the name of the environment variable.
        location: String,
        /// What was expected, with a hint.
        reason: String,
    },
    /// A layer archive holds an entry that cannot be applied safely.
    #[error("layer entry `{path}`: {reason}")]
    LayerEntry {
        /// The entry's path inside the archive.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The registry is only reachable through the network, and the client is
    /// offline with no mirror able to answer.
    #[error("cannot reach `{registry}` while offline: {reason} (hint: set `CUEDAG_REGISTRY_MIRRORS`, or unset `CUEDAG_OFFLINE`)")]
    Offline {
        /// The registry host.
        registry: String,
        /// Why no mirror could answer.
        reason: String,
    },
}

impl OciError {
    /// A stable, greppable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            OciError::InvalidReference { .. } => "oci::invalid-reference",
            OciError::InvalidDigest { .. } => "oci::invalid-digest",
            OciError::Io { .. } => "oci::io",
            OciError::Http { .. } => "oci::http",
            OciError::Registry { .. } => "oci::registry",
            OciError::Auth { .. } => "oci::auth",
            OciError::NotFound { .. } => "oci::not-found",
            OciError::DigestMismatch { .. } => "oci::digest-mismatch",
            OciError::NoMatchingPlatform { .. } => "oci::no-matching-platform",
            OciError::UnsupportedMediaType { .. } => "oci::unsupported-media-type",
            OciError::Json { .. } => "oci::json",
            OciError::Config { .. } => "oci::config",
            OciError::LayerEntry { .. } => "oci::layer-entry",
            OciError::Offline { .. } => "oci::offline",
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OciError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn entry(path: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        OciError::LayerEntry {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = OciError> = std::result::Result<T, E>;
