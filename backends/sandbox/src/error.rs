//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Why an exec could not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A host tool the sandbox needs is absent.
    #[error("sandbox tool `{tool}` not found (looked in {searched})\nhint: install it with `apt-get install {package}`")]
    ToolMissing {
        /// The tool's name (`bwrap`, `unshare`, `mount`).
        tool: &'static str,
        /// Where it was looked for.
        searched: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// The sandbox needs root (overlay mounts, namespaces).
    #[error("the local sandbox must run as root (it mounts overlay file systems)\nhint: run cuedag as root, e.g. with `sudo`")]
    NotRoot,
    /// The command ran and exited with a non-zero status.
    #[error(
        "process \"{command}\" did not complete successfully: exit code: {code}{}",
        tail_suffix(output_tail)
    )]
    NonZeroExit {
        /// The argv joined by spaces.
        command: String,
        /// The exit status (128 + signal for a killed process).
        code: i32,
        /// The last lines of stdout and stderr, interleaved.
        output_tail: String,
    },
    /// The program could not be executed (not found, not executable).
    #[error("exec: \"{program}\": {reason}\nhint: check that `{program}` exists in the image and that `PATH` is right")]
    ProgramNotFound {
        /// `args[0]`.
        program: String,
        /// What the kernel said.
        reason: String,
    },
    /// A field of the spec holds a value the sandbox cannot pass on.
    #[error("invalid `{field}`: {reason}")]
    InvalidSpec {
        /// The field (`env`, `hosts`, …).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The args are empty.
    #[error("exec has no arguments\nhint: set `args` to the command to run")]
    EmptyArgs,
    /// A user name absent from the image's `/etc/passwd`.
    #[error("unable to find user `{user}`: no matching entries in the image's /etc/passwd\nhint: use a numeric uid or add the user to the image")]
    UnknownUser {
        /// The name that was asked for.
        user: String,
    },
    /// A group name absent from the image's `/etc/group`.
    #[error("unable to find group `{group}`: no matching entries in the image's /etc/group\nhint: use a numeric gid or add the group to the image")]
    UnknownGroup {
        /// The name that was asked for.
        group: String,
    },
    /// A mount that cannot be set up as asked.
    #[error("invalid mount at `{dest}`: {reason}")]
    InvalidMount {
        /// The mount point.
        dest: String,
        /// What is wrong.
        reason: String,
    },
    /// A path inside the root filesystem that cannot be used.
    #[error("invalid path `{path}` in the root filesystem: {reason}")]
    InvalidPath {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A host path that overlayfs cannot take (it contains `,`, `:` or `\`).
    #[error("host path `{}` cannot be used in an overlay mount: it contains `,`, `:` or a backslash\nhint: keep the store in a directory whose path has none of these", path.display())]
    UnsupportedHostPath {
        /// The path.
        path: PathBuf,
    },
    /// The sandbox itself (overlay mount, bubblewrap) failed before the command ran.
    #[error("sandbox setup failed: {message}")]
    Setup {
        /// What the tools printed.
        message: String,
    },
    /// A signal number outside 1–31.
    #[error("invalid signal {0}: expected a Linux signal number between 1 and 31")]
    InvalidSignal(i32),
    /// The process is gone (for `signal`).
    #[error("the process has already exited")]
    NotRunning,
    /// The exec was cancelled; its process tree was killed.
    #[error("exec was cancelled")]
    Cancelled,
    /// A file system or process error on the host.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n{tail}")
    }
}

impl ExecError {
    /// A stable code for the error kind, for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::ToolMissing { .. } => "sandbox::tool-missing",
            ExecError::NotRoot => "sandbox::not-root",
            ExecError::NonZeroExit { .. } => "sandbox::non-zero-exit",
            ExecError::ProgramNotFound { .. } => "sandbox::program-not-found",
            ExecError::EmptyArgs => "sandbox::empty-args",
            ExecError::InvalidSpec { .. } => "sandbox::invalid-spec",
            ExecError::UnknownUser { .. } => "sandbox::unknown-user",
            ExecError::UnknownGroup { .. } => "sandbox::unknown-group",
            ExecError::InvalidMount { .. } => "sandbox::invalid-mount",
            ExecError::InvalidPath { .. } => "sandbox::invalid-path",
            ExecError::UnsupportedHostPath { .. } => "sandbox::unsupported-host-path",
            ExecError::Setup { .. } => "sandbox::setup",
            ExecError::InvalidSignal(_) => "sandbox::invalid-signal",
            ExecError::NotRunning => "sandbox::not-running",
            ExecError::Cancelled => "sandbox::cancelled",
            ExecError::Io { .. } => "sandbox::io",
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ExecError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Attaches a context message to io results.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, ExecError>;
}

impl<T> IoContext<T> for Result<T, io::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, ExecError> {
        self.map_err(|source| ExecError::io(context(), source))
    }
}
