//! Registry settings: mirrors, insecure registries, offline mode.
//!
//! Read from a JSON file and from environment variables (which come first);
//! see the crate README for the format.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{OciError, Result};
use crate::reference::is_loopback_host;

/// Environment variable listing mirrors: `host=url[,host=url…]`.
pub const ENV_MIRRORS: &str = "CUEDAG_REGISTRY_MIRRORS";
/// Environment variable naming the registries config file.
pub const ENV_CONFIG: &str = "CUEDAG_REGISTRIES_CONFIG";
/// Environment variable listing registries spoken to over plain HTTP.
pub const ENV_INSECURE: &str = "CUEDAG_INSECURE_REGISTRIES";
/// Environment variable that, when `1`/`true`, forbids falling back from a
/// mirror to the original registry.
pub const ENV_OFFLINE: &str = "CUEDAG_OFFLINE";
/// Environment variable that, when `1`/`true`, lets a pull pinned by digest
/// fall back to its tag on a mirror that lacks the digest.
pub const ENV_TAG_FALLBACK: &str = "CUEDAG_REGISTRY_TAG_FALLBACK";

/// Where a registry is reached: base URL and an optional repository prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://127.0.0.1:5000` or `https://registry-1.docker.io`.
    pub base_url: String,
    /// Prefix prepended to repository paths (`mirror` makes `library/alpine`
    /// become `mirror/library/alpine`), empty for none.
    pub prefix: String,
    /// `host[:port]` of `base_url`, the key for credentials.
    pub host: String,
    /// Whether this is a mirror rather than the registry itself.
    pub is_mirror: bool,
}

impl Endpoint {
    /// The repository path to use on this endpoint.
    pub fn repository(&self, repository: &str) -> String {
        if self.prefix.is_empty() {
            repository.to_owned()
        } else {
            format!("{}/{repository}", self.prefix)
        }
    }

    /// Parses a mirror URL `[http[s]://]host[:port][/prefix]`; without a
    /// scheme, loopback hosts use HTTP and others HTTPS.
    pub fn parse_mirror(url: &str, location: &str) -> Result<Self> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s @ ("http" | "https"), rest)) => (s, rest),
            Some((s, _)) => {
                return Err(OciError::Config {
                    location: location.to_owned(),
                    reason: format!("mirror `{url}` has scheme `{s}`, expected `http` or `https`"),
                })
            }
            None => ("", url),
        };
        let rest = rest.trim_end_matches('/');
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(OciError::Config {
                location: location.to_owned(),
                reason: format!(
                    "mirror `{url}` has no host, expected e.g. `http://127.0.0.1:5000`"
                ),
            });
        }
        let scheme = if scheme.is_empty() {
            if is_loopback_host(host) {
                "http"
            } else {
                "https"
            }
        } else {
            scheme
        };
        Ok(Endpoint {
            base_url: format!("{scheme}://{host}"),
            prefix: prefix.to_owned(),
            host: host.to_owned(),
            is_mirror: true,
        })
    }
}

/// Registry settings: mirrors per registry host, insecure hosts, offline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Mirrors tried in order before the registry itself, per registry host
    /// (`docker.io`).
    pub mirrors: BTreeMap<String, Vec<Endpoint>>,
    /// Hosts spoken to over plain HTTP (loopback hosts always are).
    pub insecure: BTreeSet<String>,
    /// Never fall back from mirrors to the original registry.
    pub offline: bool,
    /// Let a pull pinned by digest use the tag on a mirror lacking the digest
    /// (for offline stand-in images; the pulled digest then differs).
    pub tag_fallback: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    #[serde(default)]
    mirrors: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    insecure: Vec<String>,
    #[serde(default)]
    offline: bool,
    #[serde(default)]
    tag_fallback: bool,
}

impl RegistryConfig {
    /// The default config file: `$CUEDAG_REGISTRIES_CONFIG`, else
    /// `$XDG_CONFIG_HOME/cuedag/registries.json` (`~/.config/...`).
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(ENV_CONFIG) {
            return Some(PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("cuedag/registries.json"))
    }

    /// Loads the default file (if present) and then applies the environment.
    pub fn from_env() -> Result<Self> {
        let mut config = match Self::default_path() {
            Some(path) if path.exists() => Self::load(&path)?,
            _ => RegistryConfig::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Loads a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| OciError::io("reading", path, e))?;
        Self::parse_file(&text, &path.display().to_string())
    }

    /// Parses the text of a config file; `origin` names it in errors.
    pub fn parse_file(text: &str, origin: &str) -> Result<Self> {
        let raw: RawFile = serde_json::from_str(text).map_err(|e| OciError::Config {
            location: format!("{origin}:{}:{}", e.line(), e.column()),
            reason: format!("invalid registries config: {e} (expected {{\"mirrors\": {{\"docker.io\": [\"http://127.0.0.1:5000\"]}}}})"),
        })?;
        let mut config = RegistryConfig {
            offline: raw.offline,
            tag_fallback: raw.tag_fallback,
            insecure: raw.insecure.into_iter().collect(),
            ..Default::default()
        };
        for (host, urls) in raw.mirrors {
            for url in urls {
                let endpoint = Endpoint::parse_mirror(&url, &format!("{origin}: mirrors.{host}"))?;
                config
                    .mirrors
                    .entry(normalize_host(&host))
                    .or_default()
                    .push(endpoint);
            }
        }
        Ok(config)
    }

    /// Applies environment settings; env mirrors are tried before file ones.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(value) = get(ENV_MIRRORS) {
            let mut from_env: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
            for item in value.split([',', ';', ' ']).filter(|s| !s.is_empty()) {
                let Some((host, url)) = item.split_once('=') else {
                    return Err(OciError::Config {
                        location: ENV_MIRRORS.into(),
                        reason: format!("entry `{item}` is not `host=url` (e.g. `docker.io=http://127.0.0.1:5000`)"),
                    });
                };
                let endpoint = Endpoint::parse_mirror(url, ENV_MIRRORS)?;
                from_env
                    .entry(normalize_host(host))
                    .or_default()
                    .push(endpoint);
            }
            for (host, mut endpoints) in from_env {
                let existing = self.mirrors.remove(&host).unwrap_or_default();
                let extra: Vec<Endpoint> = existing
                    .into_iter()
                    .filter(|e| !endpoints.contains(e))
                    .collect();
                endpoints.extend(extra);
                self.mirrors.insert(host, endpoints);
            }
        }
        if let Some(value) = get(ENV_INSECURE) {
            self.insecure.extend(
                value
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(value) = get(ENV_OFFLINE) {
            self.offline = truthy(&value);
        }
        if let Some(value) = get(ENV_TAG_FALLBACK) {
            self.tag_fallback = truthy(&value);
        }
        Ok(())
    }

    /// The registry itself as an endpoint (`docker.io` is served by
    /// `registry-1.docker.io`; loopback and insecure hosts use HTTP).
    pub fn origin(&self, registry: &str) -> Endpoint {
        let host = if registry == crate::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if is_loopback_host(host) || self.insecure.contains(registry) {
            "http"
        } else {
            "https"
        };
        Endpoint {
            base_url: format!("{scheme}://{host}"),
            prefix: String::new(),
            host: registry.to_owned(),
            is_mirror: false,
        }
    }

    /// Endpoints to try for pulls from `registry`: its mirrors, then (unless
    /// offline with at least one mirror) the registry itself.
    pub fn pull_endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mut out = self.mirrors.get(registry).cloned().unwrap_or_default();
        if !self.offline || is_loopback_host(registry) {
            // A loopback registry is local, so it stays reachable offline.
            out.push(self.origin(registry));
        }
        out
    }
}

fn normalize_host(host: &str) -> String {
    match host.to_ascii_lowercase().as_str() {
        "index.docker.io" | "registry-1.docker.io" => crate::reference::DOCKER_HUB.to_owned(),
        other => other.to_owned(),
    }
}

fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}
