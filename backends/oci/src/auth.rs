//! Registry credentials: explicit ones (`#Pull.auth`) and Docker's
//! `~/.docker/config.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{OciError, Result};

/// A secret string whose `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret value; keep it out of logs.
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

/// A username and secret (password or token) for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub secret: Secret,
}

impl Credentials {
    /// Builds credentials.
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            secret: Secret::new(secret),
        }
    }

    /// The `Authorization: Basic …` header value.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Credentials read from a Docker `config.json` (`auths.<host>.auth`,
/// base64 of `user:password`, or `username`/`password` fields).
///
/// Credential helpers (`credsStore`, `credHelpers`) are not consulted.
#[derive(Clone, Debug, Default)]
pub struct DockerConfig {
    auths: BTreeMap<String, Credentials>,
}

#[derive(serde::Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
}

#[derive(serde::Deserialize)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl DockerConfig {
    /// The default location: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
    }

    /// Loads the file at the default location; a missing file is empty.
    pub fn load_default() -> Result<Self> {
        match Self::default_path() {
            Some(path) => Self::load(&path),
            None => Ok(DockerConfig::default()),
        }
    }

    /// Loads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig::default())
            }
            Err(e) => return Err(OciError::io("reading", path, e)),
        };
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a `config.json`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| OciError::Config {
            location: format!("{origin}:{}:{}", e.line(), e.column()),
            reason: format!("invalid Docker config: {e}"),
        })?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let creds = if let Some(encoded) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match decoded.as_deref().and_then(|d| d.split_once(':')) {
                    Some((user, pass)) => Credentials::new(user, pass),
                    None => {
                        return Err(OciError::Config {
                            location: format!("{origin}: auths.{key}.auth"),
                            reason: "expected base64 of `username:password`".into(),
                        })
                    }
                }
            } else if let (Some(u), Some(p)) = (entry.username, entry.password) {
                Credentials::new(u, p)
            } else {
                continue;
            };
            auths.insert(normalize_auth_key(&key), creds);
        }
        Ok(DockerConfig { auths })
    }

    /// Applies `DOCKERHUB_AUTH_USER` / `DOCKERHUB_AUTH_PASSWORD` (names
    /// matched case-insensitively) from `vars`: when both are set they
    /// become the Docker Hub credentials, as Dagger does.
    pub fn apply_hub_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        let (mut user, mut password) = (None, None);
        for (name, value) in vars {
            match name.to_ascii_uppercase().as_str() {
                "DOCKERHUB_AUTH_USER" => user = Some(value),
                "DOCKERHUB_AUTH_PASSWORD" => password = Some(value),
                _ => {}
            }
        }
        if let (Some(u), Some(p)) = (user, password) {
            self.auths.insert(
                crate::reference::DOCKER_HUB.to_owned(),
                Credentials::new(u, p),
            );
        }
    }

    /// The credentials for registry `host` (`docker.io`, `127.0.0.1:5000`).
    pub fn get(&self, host: &str) -> Option<&Credentials> {
        self.auths.get(&normalize_auth_key(host))
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/x` → `host:5000`.
fn normalize_auth_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => crate::reference::DOCKER_HUB.to_owned(),
        _ => host,
    }
}
