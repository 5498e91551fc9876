//! Task execution: the `Backend` trait, the executor that walks a plan's
//! task graph, progress events, the session's secret store, and the
//! client-side and pure tasks (client env, files, commands, platform,
//! network, `#Nop`, `#TrimSecret`, `#DecodeSecret`).
//!
//! Depends on `cuedag-evaluator` (plan types) and, for the local backend,
//! `cuedag-oci`, `cuedag-sandbox` and `cuedag-cache`. The only crate that
//! spawns processes or opens sockets.

pub mod backend;
pub mod builtin;
mod driver;
pub mod events;
pub mod executor;
pub mod local;
pub mod remote_cache;
pub mod secret;

pub use backend::{Backend, BackendSet, BoxFuture, SessionOptions, TaskContext, TaskRequest};
pub use builtin::BuiltinTasks;
pub use events::{Event, EventKind, Level, Progress, TaskState};
pub use executor::{
    Executor, PlanDriver, RunError, RunOptions, RunReport, TaskRecord, TaskRequestInfo,
};
pub use secret::{Secret, SecretStore, SocketStore};

/// The backends `cuedag do` uses, in the order they are asked: the
/// built-in client-side and pure tasks first.
pub fn default_backends() -> BackendSet {
    let set = BackendSet::new().with(std::sync::Arc::new(BuiltinTasks::default()));
    match local::LocalBackend::from_env() {
        Ok(local) => set.with(std::sync::Arc::new(local)),
        Err(error) => {
            tracing::warn!("local backend unavailable: {error}");
            set
        }
    }
}

/// The built-in tasks plus the local backend over the store at `store`
/// (`--store`).
pub fn backends_with_store(store: std::path::PathBuf) -> Result<BackendSet, BackendError> {
    Ok(BackendSet::new()
        .with(std::sync::Arc::new(BuiltinTasks::default()))
        .with(std::sync::Arc::new(local::LocalBackend::new(store)?)))
}

/// Errors of task execution. Messages follow Dagger's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A task failed; the message says why (already in Dagger's words).
    #[error("{0}")]
    Failed(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (`writing "/x"`).
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No available backend runs this task type.
    #[error("task type `{task_type}` needs the local backend, which this build does not have yet")]
    Unsupported {
        /// The task type.
        task_type: String,
    },
    /// The plan side could not provide inputs or take outputs.
    #[error("{0}")]
    Plan(String),
    /// The task was cancelled (another task failed, or Ctrl-C).
    #[error("cancelled")]
    Cancelled,
}

impl BackendError {
    /// A stable code for this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            BackendError::Failed(_) => "B001",
            BackendError::Io { .. } => "B002",
            BackendError::Unsupported { .. } => "B003",
            BackendError::Plan(_) => "B004",
            BackendError::Cancelled => "B005",
        }
    }

    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BackendError::Io {
            context: context.into(),
            source,
        }
    }
}
