//! What to run: the exec specification and its mounts.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A string that must never be logged, printed or stored.
///
/// Its `Debug` and `Display` print `***`; read it with [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the plaintext, for the few places that must hand it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// How concurrent users of one cache directory share it (`#CacheDir.concurrency`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CacheSharing {
    /// Every user mounts the same directory at the same time.
    #[default]
    Shared,
    /// A user finding the directory in use gets a fresh, empty, throwaway
    /// directory instead.
    Private,
    /// Users take turns: an exclusive lock is held for the whole exec.
    Locked,
}

/// The network an exec sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// The host's network (what Dagger execs get).
    #[default]
    Host,
    /// A fresh network namespace with only a loopback interface.
    None,
}

/// One mount of an exec (`core.#Mount`). Every `dest` is an absolute path
/// inside the root filesystem; symlinks on the way are resolved inside the
/// root filesystem, never on the host.
///
/// Serialisable (a debugging record of an exec, see the local backend's
/// `CUEDAG_DEBUG_EXEC_SPECS`), except [`Mount::Secret`]: serialising it is
/// an error, so a secret cannot end up in such a record.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    /// A persistent host directory (keyed by cache id by the caller).
    Cache {
        /// Mount point.
        dest: String,
        /// The persistent directory; created if missing. Its lock file is the
        /// sibling `<host_dir>.lock`.
        host_dir: PathBuf,
        /// Sharing mode between concurrent execs.
        sharing: CacheSharing,
    },
    /// A fresh tmpfs (mode 1777), discarded afterwards.
    Tmp {
        /// Mount point.
        dest: String,
    },
    /// A secret as a read-only file, created in a private directory on a
    /// memory file system and removed afterwards.
    #[serde(skip)]
    Secret {
        /// Mount point (a file).
        dest: String,
        /// The file's contents.
        contents: SecretString,
        /// Owner uid of the file.
        uid: u32,
        /// Owner gid of the file.
        gid: u32,
        /// Permission bits (Dagger's default is `0o400`).
        mode: u32,
    },
    /// A host unix socket bound at `dest`.
    Socket {
        /// Mount point.
        dest: String,
        /// The socket on the host.
        host_path: PathBuf,
    },
    /// Another layer stack (bottom first) mounted at `dest`, or one of its
    /// sub-directories. Writes never reach the layers nor the exec's output.
    Fs {
        /// Mount point.
        dest: String,
        /// Layer directories in overlayfs format, bottom first.
        lowers: Vec<PathBuf>,
        /// Sub-path inside the stack to mount instead of its root.
        source_subpath: Option<String>,
        /// Read-only mount; otherwise a throwaway writable overlay.
        readonly: bool,
    },
    /// A single file holding `contents`; writes to it are discarded.
    File {
        /// Mount point (a file).
        dest: String,
        /// The file's contents.
        contents: String,
        /// Permission bits (Dagger's default is `0o644`).
        mode: u32,
    },
}

impl Mount {
    /// The mount point inside the root filesystem.
    pub fn dest(&self) -> &str {
        match self {
            Mount::Cache { dest, .. }
            | Mount::Tmp { dest }
            | Mount::Secret { dest, .. }
            | Mount::Socket { dest, .. }
            | Mount::Fs { dest, .. }
            | Mount::File { dest, .. } => dest,
        }
    }
}

/// Everything needed to run one command over a layered root filesystem.
///
/// The root filesystem is `lowers` (overlayfs-format layer directories,
/// bottom first) plus `upper`, a fresh empty directory that receives every
/// change: after the run, `upper` is the exec's diff. Serialisable
/// without its secrets (`secret_env` is skipped, a secret mount refuses).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Layer directories, bottom first. May be empty (a scratch root).
    pub lowers: Vec<PathBuf>,
    /// The writable layer; it becomes the exec's output diff.
    pub upper: PathBuf,
    /// The overlayfs work directory, on the same file system as `upper`.
    pub work: PathBuf,
    /// The argv; `args[0]` is looked up in the container's `PATH`.
    pub args: Vec<String>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Secret environment variables: never logged, never in any argv.
    #[serde(skip)]
    pub secret_env: Vec<(String, SecretString)>,
    /// Working directory inside the container (created if missing).
    pub workdir: String,
    /// `root:root` by default; `uid`, `uid:gid`, `name` or `name:group`.
    pub user: String,
    /// Extra `/etc/hosts` entries: (hostname, ip).
    pub hosts: Vec<(String, String)>,
    /// Mounts, applied parents first.
    pub mounts: Vec<Mount>,
    /// The network namespace.
    pub network: Network,
    /// Host name inside the container.
    pub hostname: String,
}

impl ExecSpec {
    /// A spec with Dagger's defaults: workdir `/`, user `root:root`, host
    /// network, host name `buildkitsandbox` (like BuildKit), no env, no mounts.
    pub fn new(lowers: Vec<PathBuf>, upper: PathBuf, work: PathBuf, args: Vec<String>) -> Self {
        Self {
            lowers,
            upper,
            work,
            args,
            env: Vec::new(),
            secret_env: Vec::new(),
            workdir: "/".to_owned(),
            user: "root:root".to_owned(),
            hosts: Vec::new(),
            mounts: Vec::new(),
            network: Network::Host,
            hostname: "buildkitsandbox".to_owned(),
        }
    }

    /// The command as BuildKit shows it in messages: args joined by spaces.
    pub fn command_line(&self) -> String {
        self.args.join(" ")
    }
}

/// The proxy variable names Dagger forwards from the client's environment.
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "all_proxy",
];

/// The proxy variables (`http_proxy`, `https_proxy`, `ftp_proxy`,
/// `no_proxy`, `all_proxy`, any case) of the current process environment,
/// sorted by name: Dagger forwards them to every exec.
pub fn host_proxy_env() -> Vec<(String, String)> {
    proxy_vars(std::env::vars())
}

fn proxy_vars(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .filter(|(key, _)| PROXY_VARS.contains(&key.to_ascii_lowercase().as_str()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_vars_are_picked_case_insensitively() {
        let vars = [
            ("PATH", "/bin"),
            ("HTTPS_PROXY", "http://p:3128"),
            ("no_proxy", "localhost"),
            ("http_proxy_extra", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            proxy_vars(vars),
            vec![
                ("HTTPS_PROXY".to_owned(), "http://p:3128".to_owned()),
                ("no_proxy".to_owned(), "localhost".to_owned()),
            ]
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_serialised_spec_holds_no_secret() {
        let mut spec = ExecSpec::new(
            vec![PathBuf::from("/layers/a")],
            PathBuf::from("/upper"),
            PathBuf::from("/work"),
            vec!["go".into(), "build".into()],
        );
        spec.secret_env
            .push(("TOKEN".into(), SecretString::new("hunter2")));
        spec.mounts.push(Mount::Cache {
            dest: "/root/.cache".into(),
            host_dir: PathBuf::from("/store/cache"),
            sharing: CacheSharing::Locked,
        });
        let text = serde_json::to_string(&spec).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("TOKEN"),
            "{text}"
        );
        let back: ExecSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back.args, spec.args);
        assert!(back.secret_env.is_empty());
        assert!(matches!(
            &back.mounts[..],
            [Mount::Cache {
                sharing: CacheSharing::Locked,
                ..
            }]
        ));

        spec.mounts.push(Mount::Secret {
            dest: "/run/secret".into(),
            contents: SecretString::new("hunter2"),
            uid: 0,
            gid: 0,
            mode: 0o400,
        });
        assert!(serde_json::to_string(&spec).is_err());
    }
}
