//! The local backend: runs the container and filesystem core tasks on this
//! machine, with no daemon.
//!
//! An `#FS` is a snapshot: an ordered stack of overlay-format layer
//! directories in the store (`docs/notes/local-backend.md`). Its id is the
//! snapshot's content key, so ids are stable across runs and a step's key
//! (task type plus canonical inputs) is content-derived. Step results are
//! kept in `<store>/steps/<key>.json`; an unchanged rerun runs nothing and
//! logs `CACHED` for each such task.
//!
//! Images come from `cuedag-oci`, execs run in `cuedag-sandbox`.

mod cache_io;
mod cache_mounts;
mod client;
mod exec;
mod fsops;
mod image;
mod lazy;
mod net;
mod prune;
mod store;
mod tree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cuedag_evaluator::plan::{FsRef, SecretId, SocketId, TaskValue};
use sha2::{Digest as _, Sha256};

use crate::backend::{Backend, BoxFuture, TaskContext, TaskRequest};
use crate::events::Level;
use crate::BackendError;

pub use client::check_source_path;
pub use exec::DEBUG_EXEC_SPECS;
pub use prune::{parse_size, prune, PruneReport};
pub use store::{default_store_root, tree_digest, Snapshot, Store};

/// The task types this backend runs (besides `client.filesystem` reads and
/// writes of `dagger.#FS` contents).
pub const TASK_TYPES: &[&str] = &[
    "Pull",
    "Push",
    "Exec",
    "Start",
    "Stop",
    "SendSignal",
    "Copy",
    "Mkdir",
    "WriteFile",
    "ReadFile",
    "Rm",
    "Merge",
    "Diff",
    "Source",
    "NewSecret",
    "Export",
    "HTTPFetch",
    "GitPull",
    "Dockerfile",
];

/// Task types whose result is recorded in the step cache.
const CACHED_TYPES: &[&str] = &[
    "Exec",
    "Copy",
    "Mkdir",
    "WriteFile",
    "ReadFile",
    "Rm",
    "Merge",
    "Diff",
    "Export",
];

/// The local backend. Cheap to share (`Arc`); state of one process.
pub struct LocalBackend {
    store: Store,
    registry: OnceLock<Result<cuedag_oci::RegistryClient, String>>,
    sandbox: OnceLock<Result<cuedag_sandbox::Sandbox, String>>,
    snapshots: Mutex<HashMap<String, Snapshot>>,
    started: tokio::sync::Mutex<HashMap<String, (cuedag_sandbox::Running, tempfile::TempDir)>>,
    session_lock: Mutex<Option<std::fs::File>>,
    path_locks: crate::builtin::PathLocks,
    cache_session: Mutex<cache_io::CacheSession>,
    cache_mounts: tokio::sync::Mutex<cache_mounts::MountSession>,
    lazy: lazy::LazyState,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("store", &self.store.root())
            .finish_non_exhaustive()
    }
}

pub(crate) fn failed(message: impl Into<String>) -> BackendError {
    BackendError::Failed(message.into())
}

impl LocalBackend {
    /// A backend over the store at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalBackend, BackendError> {
        Ok(LocalBackend {
            store: Store::open(root)?,
            registry: OnceLock::new(),
            sandbox: OnceLock::new(),
            snapshots: Mutex::new(HashMap::new()),
            started: tokio::sync::Mutex::new(HashMap::new()),
            session_lock: Mutex::new(None),
            path_locks: Default::default(),
            cache_session: Mutex::new(cache_io::CacheSession::default()),
            cache_mounts: Default::default(),
            lazy: lazy::LazyState::default(),
        })
    }

    /// A backend over the default store ([`default_store_root`]).
    pub fn from_env() -> Result<LocalBackend, BackendError> {
        LocalBackend::new(default_store_root())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The layer directories (bottom first) of an `#FS` this backend made.
    pub fn layers_of(&self, fs: &FsRef) -> Result<Vec<PathBuf>, BackendError> {
        Ok(self.store.layer_paths(&self.snapshot(fs)?))
    }

    pub(crate) fn registry(&self) -> Result<&cuedag_oci::RegistryClient, BackendError> {
        self.registry
            .get_or_init(|| {
                cuedag_oci::BlobStore::open(self.store.root())
                    .and_then(cuedag_oci::RegistryClient::from_env)
                    .map_err(|error| error.to_string())
            })
            .as_ref()
            .map_err(|message| failed(message.clone()))
    }

    pub(crate) fn sandbox(&self) -> Result<&cuedag_sandbox::Sandbox, BackendError> {
        self.sandbox
            .get_or_init(|| cuedag_sandbox::Sandbox::new().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|message| failed(message.clone()))
    }

    /// The snapshot an `#FS` reference points to.
    pub(crate) fn snapshot(&self, fs: &FsRef) -> Result<Snapshot, BackendError> {
        let id = match fs {
            FsRef::Scratch => return Ok(Snapshot::default()),
            FsRef::Id(id) => id,
        };
        if let Some(snapshot) = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return Ok(snapshot.clone());
        }
        let snapshot = self
            .store
            .load_snapshot(id)
            .ok_or_else(|| failed(format!("fs \"{id}\" not found")))?;
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), snapshot.clone());
        Ok(snapshot)
    }

    /// Records a snapshot and returns its `#FS` reference.
    pub(crate) fn fs_value(&self, snapshot: Snapshot) -> Result<TaskValue, BackendError> {
        if snapshot.layers.is_empty() {
            return Ok(TaskValue::Fs(FsRef::Scratch));
        }
        let id = self.store.save_snapshot(&snapshot)?;
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), snapshot);
        Ok(TaskValue::Fs(FsRef::Id(id)))
    }

    /// The snapshot of the `#FS` field `name`.
    pub(crate) fn fs_field(
        &self,
        inputs: &TaskValue,
        name: &str,
    ) -> Result<Snapshot, BackendError> {
        match inputs.get(name) {
            Some(TaskValue::Fs(fs)) => self.snapshot(fs),
            _ => Err(failed(format!(
                "invalid FS at path \"{name}\": FS is not set"
            ))),
        }
    }

    /// Runs a task (no step-cache lookup). The layers of its `#FS` inputs
    /// are fetched first when it needs their files.
    async fn dispatch(
        &self,
        task_type: &str,
        inputs: &TaskValue,
        origin: Option<&cuedag_evaluator::Location>,
        context: &TaskContext,
    ) -> Result<TaskValue, BackendError> {
        if self.needs_files(task_type, inputs) {
            self.materialise(inputs, context).await?;
        }
        match task_type {
            "ClientFilesystemRead" | "ClientFilesystemWrite" => {
                let path = crate::builtin::client_path(
                    str_field(inputs, "path")?,
                    &context.session.workdir,
                );
                let lock = self.path_locks.lock_for(&path);
                let _guard = lock.lock().await;
                if task_type == "ClientFilesystemRead" {
                    client::read(self, inputs, context).await
                } else {
                    client::write(self, inputs, context).await
                }
            }
            "Source" => client::source(self, inputs, origin, context).await,
            "Pull" => image::pull(self, inputs, context).await,
            "Push" => image::push(self, inputs, context).await,
            "Export" => image::export(self, inputs, context).await,
            "Exec" => {
                self.restore_cache_mounts(inputs).await;
                exec::exec(self, inputs, context).await
            }
            "Start" => {
                self.restore_cache_mounts(inputs).await;
                exec::start(self, inputs, context).await
            }
            "Stop" => exec::stop(self, inputs).await,
            "SendSignal" => exec::send_signal(self, inputs).await,
            "Copy" | "Mkdir" | "WriteFile" | "ReadFile" | "Rm" | "Merge" | "Diff" | "NewSecret" => {
                fsops::run(self, task_type, inputs, context).await
            }
            "HTTPFetch" => net::http_fetch(self, inputs).await,
            "GitPull" => net::git_pull(self, inputs, context).await,
            "Dockerfile" => Err(failed(
                "`core.#Dockerfile` needs the BuildKit backend (not available yet)",
            )),
            other => Err(BackendError::Unsupported {
                task_type: other.to_string(),
            }),
        }
    }

    /// Whether a task reads the files of its `#FS` inputs (a `#Merge`, or a
    /// `#Diff` whose `lower` is a prefix of `upper`, only stacks layers).
    fn needs_files(&self, task_type: &str, inputs: &TaskValue) -> bool {
        match task_type {
            "Merge" | "Pull" | "Source" | "HTTPFetch" | "GitPull" | "ClientFilesystemRead" => false,
            "Diff" => match (
                self.fs_field(inputs, "lower"),
                self.fs_field(inputs, "upper"),
            ) {
                (Ok(lower), Ok(upper)) => !upper.layers.starts_with(&lower.layers),
                _ => true,
            },
            _ => true,
        }
    }

    /// Runs a task through the step cache.
    async fn run_cached(
        &self,
        task: &TaskRequest,
        context: &TaskContext,
    ) -> Result<TaskValue, BackendError> {
        self.note_cache_mounts(&task.task_type, &task.inputs).await;
        let always = task.inputs.get("always").and_then(TaskValue::as_bool) == Some(true);
        if !CACHED_TYPES.contains(&task.task_type.as_str()) || always {
            return self
                .dispatch(&task.task_type, &task.inputs, task.origin.as_ref(), context)
                .await;
        }
        let key = step_key(&task.task_type, &task.inputs);
        let store = self.store.clone();
        let lock_key = key.clone();
        let _lock = tokio::task::spawn_blocking(move || store.lock_step(&lock_key))
            .await
            .map_err(|error| failed(format!("step lock: {error}")))??;
        let record_path = self.store.step_path(&key);
        if !context.session.no_cache {
            if let Some(outputs) = self.load_record(&record_path) {
                context.log(Level::Info, "CACHED");
                self.note_step(&key, task, &outputs);
                return Ok(outputs);
            }
            if let Some(outputs) = self.import_step(task, &key, &record_path).await {
                context.log(Level::Info, "CACHED");
                self.note_step(&key, task, &outputs);
                return Ok(outputs);
            }
        }
        let outputs = self
            .dispatch(&task.task_type, &task.inputs, task.origin.as_ref(), context)
            .await?;
        if !contains_secret(&outputs) {
            self.save_record(&record_path, &task.task_type, "", &outputs)?;
            self.note_step(&key, task, &outputs);
        }
        Ok(outputs)
    }

    /// The outputs of the step record at `path` when it exists, its `tag`
    /// field equals `tag` and every FS it names still exists.
    pub(crate) fn load_tagged_record(&self, path: &Path, tag: &str) -> Option<TaskValue> {
        let bytes = std::fs::read(path).ok()?;
        let record: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if record.get("tag").and_then(serde_json::Value::as_str) != Some(tag) {
            return None;
        }
        self.load_record(path)
    }

    /// Writes a step record atomically.
    pub(crate) fn save_record(
        &self,
        path: &Path,
        task: &str,
        tag: &str,
        outputs: &TaskValue,
    ) -> Result<(), BackendError> {
        let record = serde_json::json!({
            "version": 1,
            "type": task,
            "tag": tag,
            "outputs": outputs,
        });
        store::write_atomic(
            path,
            serde_json::to_string(&record)
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// The outputs of the step record at `path`, if every FS it names
    /// still exists.
    pub(crate) fn load_record(&self, path: &Path) -> Option<TaskValue> {
        let bytes = std::fs::read(path).ok()?;
        let record: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let outputs = from_json(record.get("outputs")?);
        for fs in outputs.fs_refs() {
            self.snapshot(fs).ok()?;
        }
        // Mark the record as used (prune removes the least recently used).
        let _ = std::fs::File::open(path).and_then(|file| {
            file.set_times(std::fs::FileTimes::new().set_modified(std::time::SystemTime::now()))
        });
        Some(outputs)
    }
}

/// The step key: sha256 of the task type and its canonical inputs (FS ids
/// are content keys; secrets appear by their content-derived id only).
pub fn step_key(task_type: &str, inputs: &TaskValue) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"cuedag-step-v1\n");
    hasher.update(task_type.as_bytes());
    hasher.update(b"\n");
    hasher.update(inputs.canonical_json().as_bytes());
    hex::encode(hasher.finalize())
}

fn contains_secret(value: &TaskValue) -> bool {
    match value {
        TaskValue::Secret(_) => true,
        TaskValue::List(items) => items.iter().any(contains_secret),
        TaskValue::Struct(fields) => fields.values().any(contains_secret),
        _ => false,
    }
}

/// Reads back a [`TaskValue`] serialised as JSON (references as `{"$fs":
/// id}`, `{"$secret": id}`, `{"$socket": id}`).
pub fn from_json(value: &serde_json::Value) -> TaskValue {
    use serde_json::Value;
    match value {
        Value::Null => TaskValue::Null,
        Value::Bool(b) => TaskValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => TaskValue::Int(i),
            None => TaskValue::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => TaskValue::String(s.clone()),
        Value::Array(items) => TaskValue::List(items.iter().map(from_json).collect()),
        Value::Object(fields) => {
            if fields.len() == 1 {
                match fields.iter().next() {
                    Some((key, Value::Null)) if key == "$fs" => {
                        return TaskValue::Fs(FsRef::Scratch)
                    }
                    Some((key, Value::String(id))) if key == "$fs" => {
                        return TaskValue::Fs(FsRef::Id(id.clone()))
                    }
                    Some((key, Value::String(id))) if key == "$secret" => {
                        return TaskValue::Secret(SecretId(id.clone()))
                    }
                    Some((key, Value::String(id))) if key == "$socket" => {
                        return TaskValue::Socket(SocketId(id.clone()))
                    }
                    _ => {}
                }
            }
            TaskValue::Struct(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), from_json(value)))
                    .collect(),
            )
        }
    }
}

// Field helpers shared by the task modules.

pub(crate) fn str_field<'v>(inputs: &'v TaskValue, name: &str) -> Result<&'v str, BackendError> {
    inputs
        .get(name)
        .and_then(TaskValue::as_str)
        .ok_or_else(|| failed(format!("field `{name}` must be a concrete string")))
}

pub(crate) fn opt_str<'v>(inputs: &'v TaskValue, name: &str) -> Option<&'v str> {
    inputs.get(name).and_then(TaskValue::as_str)
}

pub(crate) fn bool_or(inputs: &TaskValue, name: &str, default: bool) -> bool {
    inputs
        .get(name)
        .and_then(TaskValue::as_bool)
        .unwrap_or(default)
}

pub(crate) fn int_or(inputs: &TaskValue, name: &str, default: i64) -> i64 {
    inputs
        .get(name)
        .and_then(TaskValue::as_int)
        .unwrap_or(default)
}

pub(crate) fn string_list(inputs: &TaskValue, name: &str) -> Result<Vec<String>, BackendError> {
    match inputs.get(name) {
        None | Some(TaskValue::Declared(_)) | Some(TaskValue::Null) => Ok(Vec::new()),
        Some(TaskValue::List(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| failed(format!("field `{name}` must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(failed(format!("field `{name}` must be a list of strings"))),
    }
}

pub(crate) fn secret_text(context: &TaskContext, id: &SecretId) -> Result<String, BackendError> {
    context
        .secrets
        .get(id)
        .map(|secret| secret.expose().to_string())
        .ok_or_else(|| failed(format!("secret \"{}\" not found", id.0)))
}

pub(crate) async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|error| failed(format!("worker stopped: {error}")))?
}

fn handles_client_fs(task: &TaskRequest) -> bool {
    match task.task_type.as_str() {
        "ClientFilesystemRead" => matches!(
            task.inputs.get("contents"),
            Some(TaskValue::Declared(declared))
                if declared.kind == cuedag_evaluator::plan::DeclaredKind::Fs
        ),
        "ClientFilesystemWrite" => matches!(task.inputs.get("contents"), Some(TaskValue::Fs(_))),
        _ => false,
    }
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn handles(&self, task: &TaskRequest) -> bool {
        TASK_TYPES.contains(&task.task_type.as_str()) || handles_client_fs(task)
    }

    fn prepare<'a>(
        &'a self,
        options: &'a crate::backend::SessionOptions,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let cache_session =
                cache_io::CacheSession::open(&options.cache, &self.store, &options.action).await?;
            *self.cache_mounts.lock().await =
                cache_mounts::MountSession::new(&options.cache, cache_session.mount_imports());
            *self
                .cache_session
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = cache_session;
            let store = self.store.clone();
            let lock = blocking(move || store.lock_shared()).await?;
            *self
                .session_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(lock);
            Ok(())
        })
    }

    fn run<'a>(
        &'a self,
        task: &'a TaskRequest,
        context: &'a TaskContext,
    ) -> BoxFuture<'a, Result<TaskValue, BackendError>> {
        Box::pin(async move {
            let span = tracing::debug_span!("local", task = %task.path, kind = %task.task_type);
            let result =
                tracing::Instrument::instrument(self.run_cached(task, context), span).await;
            match (&result, task.task_type.as_str()) {
                (Ok(outputs), "Pull") => self.note_pulled(outputs),
                (Ok(_), "ClientFilesystemWrite") => self.note_written(&task.inputs),
                _ => {}
            }
            result.map_err(|error| match error {
                BackendError::Failed(message) => {
                    BackendError::Failed(context.secrets.redact(&message))
                }
                other => other,
            })
        })
    }

    fn finish<'a>(&'a self) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let running: Vec<_> = self.started.lock().await.drain().collect();
            for (_, (container, temp)) in running {
                let _ = container.stop(std::time::Duration::ZERO).await;
                drop(temp);
            }
            let exported = self.export_caches().await;
            self.session_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            exported
        })
    }
}
