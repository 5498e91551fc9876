//! `--cache-to` / `--cache-from` and `DAGGER_CACHE_TO` / `DAGGER_CACHE_FROM`.
//!
//! A spec is a CSV-style list of `key=value` fields (BuildKit's syntax):
//! `type=local,mode=max,dest=storage`. A field, or a value after `=`, may be
//! double-quoted to hold commas (`"dest=a,b"` or `dest="a,b"`; `""` inside
//! quotes is a literal quote). A spec with a single field and no `=` is the
//! registry shorthand: `user/app:cache` means `type=registry,ref=user/app:cache`.
//!
//! Flags and environment variables **add up**, as when Dagger 0.2 handed both
//! to BuildKit: the specs of the repeatable flags come first, then those of
//! the environment variable (which may hold several specs, one per line);
//! exact duplicates are dropped. Every error names its source (flag or
//! variable), the cache type when known, the key, and the 1-based byte column
//! in the value.

use std::fmt;
use std::path::PathBuf;

use nom::bytes::complete::{is_not, tag};
use nom::character::complete::{char, none_of};
use nom::combinator::value;
use nom::multi::fold_many0;
use nom::sequence::delimited;
use nom::{IResult, Parser};

use crate::digest::Digest;

/// Whether a spec exports (`--cache-to`) or imports (`--cache-from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// `--cache-to` / `DAGGER_CACHE_TO`: export after the run.
    To,
    /// `--cache-from` / `DAGGER_CACHE_FROM`: import before the run.
    From,
}

/// Where a spec's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
}

/// A flag or variable name, e.g. `--cache-to` or `DAGGER_CACHE_FROM`.
pub fn source_name(direction: Direction, origin: Origin) -> &'static str {
    match (direction, origin) {
        (Direction::To, Origin::Flag) => "--cache-to",
        (Direction::From, Origin::Flag) => "--cache-from",
        (Direction::To, Origin::Env) => "DAGGER_CACHE_TO",
        (Direction::From, Origin::Env) => "DAGGER_CACHE_FROM",
    }
}

/// A secret value (the `gha` token): `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Keys whose values are secrets and are never printed.
const SECRET_KEYS: &[&str] = &["token"];

/// The original `key=value` attributes of a spec, in order, unquoted (the
/// shorthand expanded to `type=registry,ref=...`). This is what a BuildKit
/// backend hands to its daemon. `Debug` hides secret values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Attrs(Vec<(String, String)>);

impl Attrs {
    /// The attributes in their original order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, val) in &self.0 {
            if SECRET_KEYS.contains(&key.as_str()) {
                map.entry(key, &"***");
            } else {
                map.entry(key, val);
            }
        }
        map.finish()
    }
}

/// Which records an export carries (see [`crate::CacheExport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Only the steps of the final results (BuildKit's default).
    #[default]
    Min,
    /// Every intermediate step.
    Max,
}

/// Layer compression requested by `compression=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `gzip`.
    Gzip,
    /// `estargz`.
    Estargz,
    /// `zstd`.
    Zstd,
    /// `uncompressed`.
    Uncompressed,
}

/// How the cache manifest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatOptions {
    /// OCI media types (`true`, the default) or Docker ones.
    pub oci_mediatypes: bool,
    /// Write an OCI image manifest whose config is the cache config
    /// (`true`, the default: what registries and standard tools accept;
    /// BuildKit ≥ 0.12 reads it) instead of BuildKit 0.10's image index that
    /// lists layers as "manifests" (`image-manifest=false`).
    pub image_manifest: bool,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            oci_mediatypes: true,
            image_manifest: true,
        }
    }
}

/// Compression attributes, kept for backends that recompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompressionOptions {
    /// `compression=`.
    pub compression: Option<Compression>,
    /// `compression-level=`.
    pub level: Option<u32>,
    /// `force-compression=`.
    pub force: bool,
}

/// `type=local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSpec {
    /// `dest=` (export) or `src=` (import), with `~` expanded.
    pub path: PathBuf,
    /// `mode=` (export only).
    pub mode: Mode,
    /// `tag=`: the entry of `index.json`. Export: `None` means the caller's
    /// default tag ([`crate::default_tag`]). Import: `None` (and no digest)
    /// imports every entry of the directory.
    pub tag: Option<String>,
    /// `digest=` (import only): the manifest to import.
    pub digest: Option<Digest>,
    /// `oci-mediatypes=` / `image-manifest=`.
    pub format: FormatOptions,
    /// `compression=` and friends.
    pub compression: CompressionOptions,
}

/// `type=registry` (or the bare-ref shorthand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    /// `ref=`, e.g. `localhost:5000/cache:main`.
    pub reference: String,
    /// `mode=` (export only).
    pub mode: Mode,
    /// `oci-mediatypes=` / `image-manifest=`.
    pub format: FormatOptions,
    /// `compression=` and friends.
    pub compression: CompressionOptions,
}

/// `type=gha` (parsed, not yet supported by any backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhaSpec {
    /// `scope=` (default `buildkit`).
    pub scope: String,
    /// `url=`, else `$ACTIONS_CACHE_URL`.
    pub url: Option<String>,
    /// `token=`, else `$ACTIONS_RUNTIME_TOKEN`.
    pub token: Option<Secret>,
    /// `mode=` (export only).
    pub mode: Mode,
}

/// The typed part of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheBackend {
    /// `type=local`.
    Local(LocalSpec),
    /// `type=registry`.
    Registry(RegistrySpec),
    /// `type=gha`.
    Gha(GhaSpec),
}

/// One parsed and validated `--cache-to` / `--cache-from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    /// Export or import.
    pub direction: Direction,
    /// Flag or environment variable.
    pub origin: Origin,
    /// The typed settings.
    pub backend: CacheBackend,
    /// `ignore-error=`: an export failure is a warning, not an error.
    pub ignore_error: bool,
    /// `cache-mounts=` (cuedag extension): also export/import the contents
    /// of `core.#Exec` cache mounts.
    pub cache_mounts: bool,
    /// The original attributes.
    pub attrs: Attrs,
    /// Column of the `type` value (for errors raised after parsing).
    type_column: usize,
}

/// What went wrong in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecErrorKind {
    /// The value is empty.
    Empty,
    /// The text is not a list of `key=value` fields.
    Syntax {
        /// What was expected.
        message: String,
    },
    /// `type=` names no known cache type.
    UnknownType {
        /// The type given.
        found: String,
    },
    /// A key unknown for this type and direction.
    UnknownKey {
        /// The key given.
        key: String,
        /// The keys accepted here.
        expected: Vec<&'static str>,
    },
    /// A key that only applies to the other direction.
    WrongDirection {
        /// The key given.
        key: String,
        /// The flag it belongs to.
        belongs_to: &'static str,
        /// What to write instead, if there is an equivalent.
        instead: Option<&'static str>,
    },
    /// A required key is absent.
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A key is given twice.
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A value is malformed.
    InvalidValue {
        /// The key.
        key: String,
        /// The value given (never a secret).
        value: String,
        /// What was expected.
        expected: String,
    },
    /// Two settings contradict each other.
    Conflict {
        /// Explanation.
        message: String,
    },
    /// The cache type is recognised but no backend implements it yet.
    Unsupported {
        /// The type.
        cache_type: &'static str,
    },
}

/// A located spec error: source, cache type, 1-based byte column, kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `--cache-to`, `DAGGER_CACHE_FROM`, ...
    pub source_name: &'static str,
    /// The cache type, when it was known at the error.
    pub cache_type: Option<&'static str>,
    /// 1-based byte column in the spec text.
    pub column: usize,
    /// What went wrong.
    pub kind: SpecErrorKind,
}

impl SpecError {
    /// A stable code for the kind of error.
    pub fn code(&self) -> &'static str {
        match self.kind {
            SpecErrorKind::Empty | SpecErrorKind::Syntax { .. } => "C0101",
            SpecErrorKind::UnknownType { .. } => "C0102",
            SpecErrorKind::UnknownKey { .. } => "C0103",
            SpecErrorKind::WrongDirection { .. } => "C0104",
            SpecErrorKind::MissingKey { .. } => "C0105",
            SpecErrorKind::DuplicateKey { .. } => "C0106",
            SpecErrorKind::InvalidValue { .. } => "C0107",
            SpecErrorKind::Conflict { .. } => "C0108",
            SpecErrorKind::Unsupported { .. } => "C0109",
        }
    }

    /// What to write instead.
    pub fn hint(&self) -> String {
        match &self.kind {
            SpecErrorKind::Empty | SpecErrorKind::Syntax { .. } => {
                "write comma-separated key=value fields, e.g. `type=local,dest=storage`".into()
            }
            SpecErrorKind::UnknownType { .. } => {
                "use `type=local` (a directory) or `type=registry` (an image reference)".into()
            }
            SpecErrorKind::UnknownKey { expected, .. } => {
                format!("valid keys here: {}", expected.join(", "))
            }
            SpecErrorKind::WrongDirection {
                instead,
                belongs_to,
                ..
            } => match instead {
                Some(key) => format!("use `{key}=` here"),
                None => format!("move it to {belongs_to}"),
            },
            SpecErrorKind::MissingKey { key } => format!("add `{key}=...`"),
            SpecErrorKind::DuplicateKey { .. } => "give each key once".into(),
            SpecErrorKind::InvalidValue { expected, .. } => format!("write {expected}"),
            SpecErrorKind::Conflict { .. } => "drop one of the two settings".into(),
            SpecErrorKind::Unsupported { .. } => {
                "use `type=local` or `type=registry` for now".into()
            }
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source_name)?;
        if let Some(cache_type) = self.cache_type {
            write!(f, " type={cache_type}")?;
        }
        write!(f, ", column {}: ", self.column)?;
        match &self.kind {
            SpecErrorKind::Empty => f.write_str("empty cache spec"),
            SpecErrorKind::Syntax { message } => f.write_str(message),
            SpecErrorKind::UnknownType { found } => write!(
                f,
                "unknown cache type {found:?} (expected local, registry or gha)"
            ),
            SpecErrorKind::UnknownKey { key, expected } => write!(
                f,
                "unknown key {key:?} (expected one of {})",
                expected.join(", ")
            ),
            SpecErrorKind::WrongDirection {
                key, belongs_to, ..
            } => write!(f, "key {key:?} only applies to {belongs_to}"),
            SpecErrorKind::MissingKey { key } => write!(f, "missing required key {key:?}"),
            SpecErrorKind::DuplicateKey { key } => write!(f, "duplicate key {key:?}"),
            SpecErrorKind::InvalidValue {
                key,
                value,
                expected,
            } => write!(
                f,
                "invalid value {value:?} for {key:?} (expected {expected})"
            ),
            SpecErrorKind::Conflict { message } => f.write_str(message),
            SpecErrorKind::Unsupported { cache_type } => {
                write!(f, "type={cache_type} is not yet supported")
            }
        }
    }
}

impl std::error::Error for SpecError {}

/// Looks up an environment variable (injected for tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// All cache specs of a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheSpecs {
    /// Exports, flags first then `DAGGER_CACHE_TO`.
    pub to: Vec<CacheSpec>,
    /// Imports, flags first then `DAGGER_CACHE_FROM`.
    pub from: Vec<CacheSpec>,
}

impl CacheSpecs {
    /// Parses the flags and the environment (`DAGGER_CACHE_TO`,
    /// `DAGGER_CACHE_FROM`, one spec per line), keeps the specs the local
    /// backends support, and returns every error found.
    pub fn from_args(
        to_flags: &[String],
        from_flags: &[String],
        env: EnvLookup<'_>,
    ) -> Result<Self, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut specs = CacheSpecs::default();
        for (direction, flags, var) in [
            (Direction::To, to_flags, "DAGGER_CACHE_TO"),
            (Direction::From, from_flags, "DAGGER_CACHE_FROM"),
        ] {
            let env_value = env(var).unwrap_or_default();
            let env_specs = env_value.lines().filter(|line| !line.trim().is_empty());
            let inputs = flags
                .iter()
                .map(|text| (Origin::Flag, text.as_str()))
                .chain(env_specs.map(|text| (Origin::Env, text)));
            let out = match direction {
                Direction::To => &mut specs.to,
                Direction::From => &mut specs.from,
            };
            for (origin, text) in inputs {
                match CacheSpec::parse(direction, origin, text, env)
                    .and_then(|spec| spec.require_supported().map(|()| spec))
                {
                    Ok(spec) => {
                        if !out.iter().any(|seen: &CacheSpec| {
                            seen.backend == spec.backend && seen.attrs == spec.attrs
                        }) {
                            out.push(spec);
                        }
                    }
                    Err(err) => errors.push(err),
                }
            }
        }
        if errors.is_empty() {
            Ok(specs)
        } else {
            Err(errors)
        }
    }
}

/// One `key=value` field after unquoting.
struct Field {
    key: String,
    key_column: usize,
    value: Option<String>,
    value_column: usize,
}

/// A double-quoted segment; `""` inside is a literal quote.
fn quoted(input: &str) -> IResult<&str, String> {
    delimited(
        char('"'),
        fold_many0(
            nom::branch::alt((value('"', tag("\"\"")), none_of("\""))),
            String::new,
            |mut acc, c| {
                acc.push(c);
                acc
            },
        ),
        char('"'),
    )
    .parse(input)
}

/// An unquoted segment: anything up to a comma or a quote.
fn bare(input: &str) -> IResult<&str, &str> {
    is_not(",\"").parse(input)
}

/// Splits `text` into fields. Columns are 1-based byte offsets.
fn fields(text: &str) -> Result<Vec<Field>, (usize, SpecErrorKind)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let field_start = text.len() - rest.len();
        let mut field_text = String::new();
        let mut eq_raw: Option<usize> = None;
        let mut starts_quoted = false;
        loop {
            let seg_start = text.len() - rest.len();
            if rest.starts_with('"') {
                starts_quoted |= seg_start == field_start;
                match quoted(rest) {
                    Ok((after, inner)) => {
                        if eq_raw.is_none() && !field_text.contains('=') {
                            eq_raw = inner.find('=').map(|i| seg_start + 1 + i);
                        }
                        field_text.push_str(&inner);
                        rest = after;
                    }
                    Err(_) => {
                        return Err((
                            seg_start + 1,
                            SpecErrorKind::Syntax {
                                message: "unterminated quote".into(),
                            },
                        ))
                    }
                }
            } else if let Ok((after, segment)) = bare(rest) {
                if eq_raw.is_none() && !field_text.contains('=') {
                    eq_raw = segment.find('=').map(|i| seg_start + i);
                }
                field_text.push_str(segment);
                rest = after;
            } else {
                break;
            }
        }
        let key_column = field_start + 1 + usize::from(starts_quoted);
        let field = match field_text.split_once('=') {
            Some((key, val)) => {
                let trimmed = key.trim_start();
                Field {
                    key: trimmed.trim_end().to_owned(),
                    key_column: key_column + (key.len() - trimmed.len()),
                    value: Some(val.to_owned()),
                    value_column: eq_raw.map_or(key_column, |raw| raw + 2),
                }
            }
            None => Field {
                key: field_text.trim().to_owned(),
                key_column,
                value: None,
                value_column: key_column,
            },
        };
        out.push(field);
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => break,
        }
    }
    Ok(out)
}

const LOCAL_TO: &[&str] = &[
    "type",
    "dest",
    "mode",
    "tag",
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "image-manifest",
    "ignore-error",
    "cache-mounts",
];
const LOCAL_FROM: &[&str] = &[
    "type",
    "src",
    "tag",
    "digest",
    "ignore-error",
    "cache-mounts",
];
const REGISTRY_TO: &[&str] = &[
    "type",
    "ref",
    "mode",
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "image-manifest",
    "ignore-error",
    "cache-mounts",
];
const REGISTRY_FROM: &[&str] = &["type", "ref", "ignore-error", "cache-mounts"];
const GHA_TO: &[&str] = &["type", "scope", "url", "token", "mode", "ignore-error"];
const GHA_FROM: &[&str] = &["type", "scope", "url", "token", "ignore-error"];

fn allowed_keys(cache_type: &str, direction: Direction) -> &'static [&'static str] {
    match (cache_type, direction) {
        ("local", Direction::To) => LOCAL_TO,
        ("local", Direction::From) => LOCAL_FROM,
        ("registry", Direction::To) => REGISTRY_TO,
        ("registry", Direction::From) => REGISTRY_FROM,
        ("gha", Direction::To) => GHA_TO,
        _ => GHA_FROM,
    }
}

/// The validated fields of one spec, with their columns.
struct Fields<'a> {
    list: &'a [Field],
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<(&str, usize)> {
        self.list
            .iter()
            .find(|f| f.key == key)
            .and_then(|f| f.value.as_deref().map(|v| (v, f.value_column)))
    }
}

/// A spec-error builder bound to one source and type.
struct Ctx {
    source_name: &'static str,
    cache_type: Option<&'static str>,
}

impl Ctx {
    fn err(&self, column: usize, kind: SpecErrorKind) -> SpecError {
        SpecError {
            source_name: self.source_name,
            cache_type: self.cache_type,
            column,
            kind,
        }
    }

    fn invalid(&self, key: &str, value: &str, column: usize, expected: &str) -> SpecError {
        let value = if SECRET_KEYS.contains(&key) {
            "***".to_owned()
        } else {
            value.to_owned()
        };
        self.err(
            column,
            SpecErrorKind::InvalidValue {
                key: key.to_owned(),
                value,
                expected: expected.to_owned(),
            },
        )
    }

    fn bool(&self, fields: &Fields<'_>, key: &str, default: bool) -> Result<bool, SpecError> {
        match fields.get(key) {
            None => Ok(default),
            Some((v, col)) => match v {
                "true" | "True" | "TRUE" | "1" => Ok(true),
                "false" | "False" | "FALSE" | "0" => Ok(false),
                _ => Err(self.invalid(key, v, col, "true or false")),
            },
        }
    }

    fn mode(&self, fields: &Fields<'_>) -> Result<Mode, SpecError> {
        match fields.get("mode") {
            None | Some(("min", _)) => Ok(Mode::Min),
            Some(("max", _)) => Ok(Mode::Max),
            Some((v, col)) => Err(self.invalid("mode", v, col, "min or max")),
        }
    }

    fn required<'f>(
        &self,
        fields: &'f Fields<'_>,
        key: &'static str,
        end: usize,
    ) -> Result<(&'f str, usize), SpecError> {
        match fields.get(key) {
            Some((v, col)) if !v.is_empty() => Ok((v, col)),
            Some((_, col)) => Err(self.invalid(key, "", col, "a non-empty value")),
            None => Err(self.err(end, SpecErrorKind::MissingKey { key })),
        }
    }

    fn format(&self, fields: &Fields<'_>) -> Result<FormatOptions, SpecError> {
        let oci_mediatypes = self.bool(fields, "oci-mediatypes", true)?;
        let image_manifest = self.bool(fields, "image-manifest", oci_mediatypes)?;
        if image_manifest && !oci_mediatypes {
            let col = fields.get("image-manifest").map_or(1, |(_, c)| c);
            return Err(self.err(
                col,
                SpecErrorKind::Conflict {
                    message: "image-manifest=true requires oci-mediatypes=true".into(),
                },
            ));
        }
        Ok(FormatOptions {
            oci_mediatypes,
            image_manifest,
        })
    }

    fn compression(&self, fields: &Fields<'_>) -> Result<CompressionOptions, SpecError> {
        let compression = match fields.get("compression") {
            None => None,
            Some(("gzip", _)) => Some(Compression::Gzip),
            Some(("estargz", _)) => Some(Compression::Estargz),
            Some(("zstd", _)) => Some(Compression::Zstd),
            Some(("uncompressed", _)) => Some(Compression::Uncompressed),
            Some((v, col)) => {
                return Err(self.invalid(
                    "compression",
                    v,
                    col,
                    "gzip, estargz, zstd or uncompressed",
                ))
            }
        };
        let level = match fields.get("compression-level") {
            None => None,
            Some((v, col)) => match v.parse::<u32>() {
                Ok(n) if n <= 22 => Some(n),
                _ => {
                    return Err(self.invalid(
                        "compression-level",
                        v,
                        col,
                        "an integer from 0 to 22",
                    ))
                }
            },
        };
        Ok(CompressionOptions {
            compression,
            level,
            force: self.bool(fields, "force-compression", false)?,
        })
    }
}

/// `~` and `~/...` become `$HOME` and `$HOME/...`.
fn expand_tilde(path: &str, env: EnvLookup<'_>) -> PathBuf {
    let home = || env("HOME").filter(|h| !h.is_empty());
    if path == "~" {
        if let Some(home) = home() {
            return PathBuf::from(home);
        }
    } else if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = home() {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(path)
}

/// Whether `tag` is a valid image tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn is_valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first_ok
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks an image reference `[host[:port]/]path[:tag][@digest]`.
/// Returns what is wrong.
pub fn check_reference(reference: &str) -> Result<(), &'static str> {
    let (name, tag, digest) = split_reference(reference);
    if let Some(digest) = digest {
        Digest::parse(digest).map_err(|_| "a digest `sha256:<64 hex>` after `@`")?;
    }
    if let Some(tag) = tag {
        if !is_valid_tag(tag) {
            return Err("a tag of letters, digits, `_`, `.` and `-`");
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            let (host, port) = match first.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
            let port_ok =
                port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !host_ok || !port_ok {
                return Err("a registry host like `localhost:5000`");
            }
            components.remove(0);
        }
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && c.bytes()
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
    };
    if components.is_empty() || !components.iter().all(|c| component_ok(c)) {
        return Err("an image reference like `registry:5000/project/cache:tag` (lowercase path)");
    }
    Ok(())
}

impl CacheSpec {
    /// Parses and validates one spec. `env` supplies `HOME` (for `~`) and
    /// the `gha` fallbacks `ACTIONS_CACHE_URL` / `ACTIONS_RUNTIME_TOKEN`.
    pub fn parse(
        direction: Direction,
        origin: Origin,
        text: &str,
        env: EnvLookup<'_>,
    ) -> Result<CacheSpec, SpecError> {
        let mut ctx = Ctx {
            source_name: source_name(direction, origin),
            cache_type: None,
        };
        if text.trim().is_empty() {
            return Err(ctx.err(1, SpecErrorKind::Empty));
        }
        let end = text.len() + 1;
        let mut list = fields(text).map_err(|(col, kind)| ctx.err(col, kind))?;

        // The bare-ref shorthand.
        if list.len() == 1 && list[0].value.is_none() {
            let reference = list[0].key.clone();
            if let Err(expected) = check_reference(&reference) {
                return Err(ctx.err(
                    list[0].key_column,
                    SpecErrorKind::Syntax {
                        message: format!(
                            "expected key=value fields or an image reference (a reference must be {expected})"
                        ),
                    },
                ));
            }
            list = vec![
                Field {
                    key: "type".into(),
                    key_column: 1,
                    value: Some("registry".into()),
                    value_column: 1,
                },
                Field {
                    key: "ref".into(),
                    key_column: 1,
                    value: Some(reference),
                    value_column: 1,
                },
            ];
        }

        for field in &list {
            if field.value.is_none() {
                return Err(ctx.err(
                    field.key_column,
                    SpecErrorKind::Syntax {
                        message: "expected key=value".into(),
                    },
                ));
            }
            if field.key.is_empty() {
                return Err(ctx.err(
                    field.key_column,
                    SpecErrorKind::Syntax {
                        message: "empty key before `=`".into(),
                    },
                ));
            }
        }

        let type_column = list
            .iter()
            .find(|f| f.key == "type")
            .map_or(1, |f| f.value_column);
        let cache_type: &'static str = match list.iter().find(|f| f.key == "type") {
            None => return Err(ctx.err(1, SpecErrorKind::MissingKey { key: "type" })),
            Some(f) => match f.value.as_deref() {
                Some("local") => "local",
                Some("registry") => "registry",
                Some("gha") => "gha",
                other => {
                    return Err(ctx.err(
                        f.value_column,
                        SpecErrorKind::UnknownType {
                            found: other.unwrap_or_default().to_owned(),
                        },
                    ))
                }
            },
        };
        ctx.cache_type = Some(cache_type);

        let allowed = allowed_keys(cache_type, direction);
        let other = match direction {
            Direction::To => Direction::From,
            Direction::From => Direction::To,
        };
        for (i, field) in list.iter().enumerate() {
            if list[..i].iter().any(|f| f.key == field.key) {
                return Err(ctx.err(
                    field.key_column,
                    SpecErrorKind::DuplicateKey {
                        key: field.key.clone(),
                    },
                ));
            }
            if allowed.contains(&field.key.as_str()) {
                continue;
            }
            let kind = if allowed_keys(cache_type, other).contains(&field.key.as_str()) {
                SpecErrorKind::WrongDirection {
                    key: field.key.clone(),
                    belongs_to: source_name(other, Origin::Flag),
                    instead: match field.key.as_str() {
                        "dest" => Some("src"),
                        "src" => Some("dest"),
                        _ => None,
                    },
                }
            } else {
                SpecErrorKind::UnknownKey {
                    key: field.key.clone(),
                    expected: allowed.iter().copied().filter(|k| *k != "type").collect(),
                }
            };
            return Err(ctx.err(field.key_column, kind));
        }

        let fields = Fields { list: &list };
        let ignore_error = ctx.bool(&fields, "ignore-error", false)?;
        let cache_mounts = ctx.bool(&fields, "cache-mounts", false)?;
        let backend = match cache_type {
            "local" => {
                let path_key = match direction {
                    Direction::To => "dest",
                    Direction::From => "src",
                };
                let (path, _) = ctx.required(&fields, path_key, end)?;
                let tag = match fields.get("tag") {
                    None => None,
                    Some((t, _)) if is_valid_tag(t) => Some(t.to_owned()),
                    Some((t, col)) => {
                        return Err(ctx.invalid(
                            "tag",
                            t,
                            col,
                            "a tag of letters, digits, `_`, `.` and `-` (at most 128)",
                        ))
                    }
                };
                let digest = match fields.get("digest") {
                    None => None,
                    Some((d, col)) => Some(Digest::parse(d).map_err(|_| {
                        ctx.invalid("digest", d, col, "`sha256:` and 64 hex digits")
                    })?),
                };
                CacheBackend::Local(LocalSpec {
                    path: expand_tilde(path, env),
                    mode: ctx.mode(&fields)?,
                    tag,
                    digest,
                    format: ctx.format(&fields)?,
                    compression: ctx.compression(&fields)?,
                })
            }
            "registry" => {
                let (reference, col) = ctx.required(&fields, "ref", end)?;
                if let Err(expected) = check_reference(reference) {
                    return Err(ctx.invalid("ref", reference, col, expected));
                }
                CacheBackend::Registry(RegistrySpec {
                    reference: reference.to_owned(),
                    mode: ctx.mode(&fields)?,
                    format: ctx.format(&fields)?,
                    compression: ctx.compression(&fields)?,
                })
            }
            _ => {
                let scope = match fields.get("scope") {
                    None => "buildkit".to_owned(),
                    Some(("", col)) => {
                        return Err(ctx.invalid("scope", "", col, "a non-empty scope"))
                    }
                    Some((s, _)) => s.to_owned(),
                };
                let url = match fields.get("url") {
                    Some((u, col)) => {
                        if !(u.starts_with("http://") || u.starts_with("https://")) {
                            return Err(ctx.invalid("url", u, col, "an http:// or https:// URL"));
                        }
                        Some(u.to_owned())
                    }
                    None => env("ACTIONS_CACHE_URL").filter(|u| !u.is_empty()),
                };
                let token = fields
                    .get("token")
                    .map(|(t, _)| t.to_owned())
                    .or_else(|| env("ACTIONS_RUNTIME_TOKEN"))
                    .filter(|t| !t.is_empty())
                    .map(Secret);
                CacheBackend::Gha(GhaSpec {
                    scope,
                    url,
                    token,
                    mode: ctx.mode(&fields)?,
                })
            }
        };
        let attrs = Attrs(
            list.iter()
                .map(|f| (f.key.clone(), f.value.clone().unwrap_or_default()))
                .collect(),
        );
        Ok(CacheSpec {
            direction,
            origin,
            backend,
            ignore_error,
            cache_mounts,
            attrs,
            type_column,
        })
    }

    /// Fails on cache types no backend implements yet (`gha`).
    pub fn require_supported(&self) -> Result<(), SpecError> {
        match self.backend {
            CacheBackend::Gha(_) => Err(SpecError {
                source_name: source_name(self.direction, self.origin),
                cache_type: Some("gha"),
                column: self.type_column,
                kind: SpecErrorKind::Unsupported { cache_type: "gha" },
            }),
            _ => Ok(()),
        }
    }

    /// The flag or variable this spec came from.
    pub fn source_name(&self) -> &'static str {
        source_name(self.direction, self.origin)
    }
}

/// Splits an image reference into `(name, tag, digest)`:
/// `localhost:5000/a/b:t@sha256:…` → (`localhost:5000/a/b`, `t`, `sha256:…`).
pub fn split_reference(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
            digest,
        ),
        None => (name_tag, None, digest),
    }
}

impl LocalSpec {
    /// The tag an export writes: `tag=`, else [`crate::default_tag`] of the
    /// action path.
    pub fn export_tag(&self, action_path: &[&str]) -> String {
        self.tag
            .clone()
            .unwrap_or_else(|| crate::default_tag(action_path))
    }

    /// What an import reads: `digest=`, else `tag=`, else every entry.
    pub fn import_selector(&self) -> crate::ImportSelector {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => crate::ImportSelector::Digest(digest.clone()),
            (None, Some(tag)) => crate::ImportSelector::Tag(tag.clone()),
            (None, None) => crate::ImportSelector::All,
        }
    }
}

impl RegistrySpec {
    /// The repository part of `ref` (host and path), which the
    /// [`crate::RemoteBlobs`] implementation is bound to.
    pub fn repository(&self) -> &str {
        split_reference(&self.reference).0
    }

    /// The tag an export pushes: the tag of `ref`, else `latest`.
    pub fn export_tag(&self) -> &str {
        split_reference(&self.reference).1.unwrap_or("latest")
    }

    /// What an import reads: the digest of `ref`, else its tag, else
    /// `latest`.
    pub fn import_reference(&self) -> &str {
        match split_reference(&self.reference) {
            (_, _, Some(digest)) => digest,
            (_, Some(tag), None) => tag,
            _ => "latest",
        }
    }
}
