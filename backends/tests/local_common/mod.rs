//! Helpers shared by the local backend's tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cuedag_backends::events::{Event, EventKind};
use cuedag_backends::local::LocalBackend;
use cuedag_backends::{Backend, Progress, SessionOptions, TaskContext, TaskRequest};
use cuedag_cache::spec::CacheSpecs;
use cuedag_evaluator::plan::{CuePath, Declared, DeclaredKind, TaskValue};
use tokio::sync::mpsc::UnboundedReceiver;

pub struct Harness {
    pub backend: LocalBackend,
    pub store: tempfile::TempDir,
    pub store_path: PathBuf,
    pub work: tempfile::TempDir,
    pub context: TaskContext,
    pub events: UnboundedReceiver<Event>,
}

impl Harness {
    pub fn new() -> Harness {
        Self::with_store(tempfile::tempdir().unwrap())
    }

    pub fn with_store(store: tempfile::TempDir) -> Harness {
        let path = store.path().to_path_buf();
        Self::at(store, path)
    }

    /// A harness over a store that persists between test runs (under
    /// cargo's per-target temp directory), to pull images once.
    pub fn shared() -> Harness {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-backend-store");
        Self::at(tempfile::tempdir().unwrap(), path)
    }

    fn at(store: tempfile::TempDir, store_path: PathBuf) -> Harness {
        let work = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(&store_path).unwrap();
        let (progress, events) = Progress::channel();
        let context = TaskContext {
            task: "actions.test".into(),
            progress,
            secrets: Default::default(),
            sockets: Default::default(),
            cancel: Default::default(),
            session: Arc::new(SessionOptions {
                workdir: work.path().to_path_buf(),
                ..SessionOptions::default()
            }),
        };
        Harness {
            backend,
            store,
            store_path,
            work,
            context,
            events,
        }
    }

    /// A second backend over the same store (a later run).
    pub fn rerun(self) -> Harness {
        let mut next = Harness::at(self.store, self.store_path);
        next.work = self.work;
        next.context.session = Arc::new(SessionOptions {
            workdir: next.work.path().to_path_buf(),
            ..SessionOptions::default()
        });
        next
    }

    /// Session options with these `--cache-to` / `--cache-from` flags.
    pub fn cache_options(&self, to: &[String], from: &[String]) -> SessionOptions {
        let no_env = |_: &str| None;
        SessionOptions {
            workdir: self.work.path().to_path_buf(),
            cache_to: to.to_vec(),
            cache_from: from.to_vec(),
            cache: CacheSpecs::from_args(to, from, &no_env).unwrap(),
            ..SessionOptions::default()
        }
    }

    /// Starts a session with `options`, as `cuedag do` does before its
    /// first task.
    pub async fn prepare(&mut self, options: SessionOptions) {
        self.context.session = Arc::new(options.clone());
        self.backend.prepare(&options).await.unwrap();
    }

    pub fn no_cache(&mut self) {
        self.context.session = Arc::new(SessionOptions {
            workdir: self.work.path().to_path_buf(),
            no_cache: true,
            ..SessionOptions::default()
        });
    }

    pub async fn run(&self, task_type: &str, inputs: TaskValue) -> TaskValue {
        match self.try_run(task_type, inputs).await {
            Ok(out) => out,
            Err(error) => panic!("{task_type} failed: {error}"),
        }
    }

    pub async fn try_run(&self, task_type: &str, inputs: TaskValue) -> Result<TaskValue, String> {
        self.try_run_request(TaskRequest {
            path: CuePath::new(["actions", "test"]),
            task_type: task_type.into(),
            inputs,
            origin: None,
        })
        .await
    }

    pub async fn try_run_request(&self, request: TaskRequest) -> Result<TaskValue, String> {
        let task_type = &request.task_type;
        assert!(self.backend.handles(&request), "{task_type} not handled");
        self.backend
            .run(&request, &self.context)
            .await
            .map_err(|error| error.to_string())
    }

    /// Log lines received so far.
    pub fn logs(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let EventKind::Log { message, .. } = event.kind {
                lines.push(message);
            }
        }
        lines
    }

    /// Reads host directory `dir` (relative to the work dir) as an FS.
    pub async fn read_dir(&self, dir: &str, include: &[&str], exclude: &[&str]) -> TaskValue {
        let list =
            |items: &[&str]| TaskValue::List(items.iter().map(|s| TaskValue::string(*s)).collect());
        let out = self
            .run(
                "ClientFilesystemRead",
                TaskValue::structure([
                    ("path", TaskValue::string(dir)),
                    (
                        "contents",
                        TaskValue::Declared(Declared::new(DeclaredKind::Fs)),
                    ),
                    ("include", list(include)),
                    ("exclude", list(exclude)),
                ]),
            )
            .await;
        out.get("contents").unwrap().clone()
    }

    /// Writes `fs` to `dir` (relative to the work dir) and returns its path.
    pub async fn write_dir(&self, fs: &TaskValue, dir: &str) -> PathBuf {
        self.run(
            "ClientFilesystemWrite",
            TaskValue::structure([("path", TaskValue::string(dir)), ("contents", fs.clone())]),
        )
        .await;
        self.work.path().join(dir)
    }
}

/// Every file under `dir` as `path=contents` lines (dirs as `path/`), sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().is_dir() {
            out.push(format!("{rel}/"));
        } else if entry.file_type().is_symlink() {
            out.push(format!(
                "{rel}->{}",
                std::fs::read_link(entry.path()).unwrap().display()
            ));
        } else {
            out.push(format!(
                "{rel}={}",
                std::fs::read_to_string(entry.path()).unwrap_or_default()
            ));
        }
    }
    out
}

pub fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

pub fn s(text: &str) -> TaskValue {
    TaskValue::string(text)
}

pub fn out(value: &TaskValue) -> TaskValue {
    value.get("output").unwrap().clone()
}

/// The registry and stand-in images the image-pulling tests need, started
/// by `scripts/services up` (as `.ci/run` does).
pub fn require_registry() {
    let addr = std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let mirrors = std::env::var("CUEDAG_REGISTRY_MIRRORS").unwrap_or_default();
    assert!(
        mirrors.contains("docker.io="),
        "CUEDAG_REGISTRY_MIRRORS does not point docker.io at the local registry: run `scripts/services up` then `source .ci/state/env`"
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_ok(),
        "no registry listening at {addr}: start it with `scripts/services up` (then `source .ci/state/env`)"
    );
}
