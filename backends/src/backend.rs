//! The `Backend` trait: the seam between the engine and whatever runs tasks.
//!
//! The engine hands a backend one fully concrete task (its path, type and
//! inputs as a [`TaskValue`]) plus a [`TaskContext`], and gets the task's
//! outputs back as a [`TaskValue`] struct to fill into the plan.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use cuedag_evaluator::plan::{CuePath, TaskValue};
use cuedag_evaluator::Location;
use tokio_util::sync::CancellationToken;

use crate::events::{Level, Progress};
use crate::secret::{SecretStore, SocketStore};
use crate::BackendError;

/// A boxed, sendable future (keeps [`Backend`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Options of one run, handed to every backend before any task runs.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// The directory relative client paths are resolved against.
    pub workdir: PathBuf,
    /// `--cache-from` specs, as given.
    pub cache_from: Vec<String>,
    /// `--cache-to` specs, as given.
    pub cache_to: Vec<String>,
    /// The parsed cache specs (flags and `DAGGER_CACHE_*`).
    pub cache: cuedag_cache::spec::CacheSpecs,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--platform` (`os/arch[/variant]`), if given.
    pub platform: Option<String>,
    /// The target action's path below `actions` (`["test", "unit"]`); names
    /// defaults such as the tag of a cache export.
    pub action: Vec<String>,
}

/// One task, ready to run: every input concrete.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    /// The task's CUE path (its identity in logs and errors).
    pub path: CuePath,
    /// The task type (`Exec`, `ClientEnv`, …).
    pub task_type: String,
    /// The task's fields. Outputs not yet computed appear as
    /// [`TaskValue::Declared`] with their declared type.
    pub inputs: TaskValue,
    /// Where the value of the task's `path` field is written, for tasks
    /// that resolve it against the declaring CUE file (`core.#Source`).
    /// Files of the embedded packages show as `<embedded>/<import path>/…`.
    pub origin: Option<Location>,
}

/// What a running task may use: progress, secrets, sockets, cancellation.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The task path, as printed.
    pub task: String,
    /// Where progress goes.
    pub progress: Progress,
    /// The run's secrets.
    pub secrets: SecretStore,
    /// The run's client sockets.
    pub sockets: SocketStore,
    /// Cancelled when the run is aborted; long operations should watch it.
    pub cancel: CancellationToken,
    /// The session options.
    pub session: Arc<SessionOptions>,
}

impl TaskContext {
    /// Logs a line attributed to this task, secrets redacted.
    pub fn log(&self, level: Level, line: &str) {
        self.progress
            .log(Some(&self.task), level, self.secrets.redact(line));
    }
}

/// Something that runs tasks. Session-level methods (`prepare`, `finish`)
/// bracket a run, so a daemon-backed implementation (BuildKit) fits too.
pub trait Backend: Send + Sync {
    /// A short name for messages (`builtin`, `local`, `buildkit`).
    fn name(&self) -> &'static str;

    /// Whether this backend runs `task` (decided on the type and inputs).
    fn handles(&self, task: &TaskRequest) -> bool;

    /// Opens the session (cache imports, platform, …). Called once first.
    fn prepare<'a>(
        &'a self,
        _options: &'a SessionOptions,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    /// Runs one task and returns its outputs (a struct of the fields to fill).
    fn run<'a>(
        &'a self,
        task: &'a TaskRequest,
        context: &'a TaskContext,
    ) -> BoxFuture<'a, Result<TaskValue, BackendError>>;

    /// Closes the session (cache exports, cleanup). Called once last.
    fn finish<'a>(&'a self) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Several backends tried in order; the first that handles a task runs it.
#[derive(Default)]
pub struct BackendSet {
    backends: Vec<Arc<dyn Backend>>,
}

impl BackendSet {
    /// An empty set.
    pub fn new() -> Self {
        BackendSet::default()
    }

    /// Adds a backend after the existing ones.
    pub fn with(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backends.push(backend);
        self
    }
}

impl Backend for BackendSet {
    fn name(&self) -> &'static str {
        "set"
    }

    fn handles(&self, task: &TaskRequest) -> bool {
        self.backends.iter().any(|backend| backend.handles(task))
    }

    fn prepare<'a>(
        &'a self,
        options: &'a SessionOptions,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            for backend in &self.backends {
                backend.prepare(options).await?;
            }
            Ok(())
        })
    }

    fn run<'a>(
        &'a self,
        task: &'a TaskRequest,
        context: &'a TaskContext,
    ) -> BoxFuture<'a, Result<TaskValue, BackendError>> {
        Box::pin(async move {
            match self.backends.iter().find(|backend| backend.handles(task)) {
                Some(backend) => backend.run(task, context).await,
                None => Err(BackendError::Unsupported {
                    task_type: task.task_type.clone(),
                }),
            }
        })
    }

    fn finish<'a>(&'a self) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut first_error = None;
            for backend in &self.backends {
                if let Err(error) = backend.finish().await {
                    first_error.get_or_insert(error);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }
}

#[cfg(test)]
mod tests {
    use cuedag_evaluator::plan::{Declared, DeclaredKind};

    use super::*;
    use crate::builtin::BuiltinTasks;

    #[tokio::test]
    async fn routes_to_the_first_backend_that_handles_the_task() {
        let set = BackendSet::new().with(Arc::new(BuiltinTasks::default()));
        let context = TaskContext {
            task: "t".into(),
            progress: Progress::disabled(),
            secrets: SecretStore::new(),
            sockets: SocketStore::default(),
            cancel: CancellationToken::new(),
            session: Arc::new(SessionOptions::default()),
        };
        let nop = TaskRequest {
            path: CuePath::new(["actions", "nop"]),
            task_type: "Nop".into(),
            inputs: TaskValue::structure([("input", TaskValue::Bool(true))]),
            origin: None,
        };
        assert!(set.handles(&nop));
        let out = set.run(&nop, &context).await.unwrap();
        assert_eq!(out.get("output"), Some(&TaskValue::Bool(true)));

        let exec = TaskRequest {
            path: CuePath::new(["actions", "exec"]),
            task_type: "Exec".into(),
            inputs: TaskValue::empty_struct(),
            origin: None,
        };
        assert!(!set.handles(&exec));
        let err = set.run(&exec, &context).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "task type `Exec` needs the local backend, which this build does not have yet"
        );
        let fs_read = TaskRequest {
            path: CuePath::new(["client", "filesystem", ".", "read"]),
            task_type: "ClientFilesystemRead".into(),
            inputs: TaskValue::structure([
                ("path", TaskValue::string(".")),
                (
                    "contents",
                    TaskValue::Declared(Declared::new(DeclaredKind::Fs)),
                ),
            ]),
            origin: None,
        };
        assert!(matches!(
            set.run(&fs_read, &context).await,
            Err(BackendError::Unsupported { .. })
        ));
        set.prepare(&SessionOptions::default()).await.unwrap();
        set.finish().await.unwrap();
    }
}
