//! The local backend's fixed costs on the warm path: a step-cache hit, a
//! client directory read of an unchanged tree (hash only), and a copy.
//! Run with `cargo bench -p cuedag-backends --bench local` (as root).

// Bench set-up may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use cuedag_backends::local::LocalBackend;
use cuedag_backends::{Backend, Progress, SessionOptions, TaskContext, TaskRequest};
use cuedag_evaluator::plan::{CuePath, Declared, DeclaredKind, FsRef, TaskValue};

fn main() {
    divan::main();
}

struct Fixture {
    _store: tempfile::TempDir,
    backend: LocalBackend,
    context: TaskContext,
    runtime: tokio::runtime::Runtime,
    source: TaskValue,
}

fn request(task_type: &str, inputs: TaskValue) -> TaskRequest {
    TaskRequest {
        path: CuePath::new(["actions", "bench"]),
        task_type: task_type.into(),
        inputs,
        origin: None,
    }
}

fn read_request() -> TaskRequest {
    request(
        "ClientFilesystemRead",
        TaskValue::structure([
            ("path", TaskValue::string(".")),
            (
                "contents",
                TaskValue::Declared(Declared::new(DeclaredKind::Fs)),
            ),
            (
                "include",
                TaskValue::List(vec![
                    TaskValue::string("**/*.go"),
                    TaskValue::string("go.mod"),
                ]),
            ),
        ]),
    )
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let store = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(store.path()).unwrap();
        let go_hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/go-hello");
        let context = TaskContext {
            task: "actions.bench".into(),
            progress: Progress::disabled(),
            secrets: Default::default(),
            sockets: Default::default(),
            cancel: Default::default(),
            session: Arc::new(SessionOptions {
                workdir: go_hello,
                ..SessionOptions::default()
            }),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let source = runtime
            .block_on(backend.run(&read_request(), &context))
            .unwrap()
            .get("contents")
            .unwrap()
            .clone();
        Fixture {
            _store: store,
            backend,
            context,
            runtime,
            source,
        }
    })
}

/// Reading an unchanged client directory: walk, filter and hash only.
#[divan::bench]
fn client_read_go_hello_warm() {
    let f = fixture();
    f.runtime
        .block_on(f.backend.run(&read_request(), &f.context))
        .unwrap();
}

/// A step-cache hit: key, lock, record read, snapshot check.
#[divan::bench]
fn step_cache_hit() {
    let f = fixture();
    let copy = request(
        "Copy",
        TaskValue::structure([
            ("input", TaskValue::Fs(FsRef::Scratch)),
            ("contents", f.source.clone()),
            ("source", TaskValue::string("/")),
            ("dest", TaskValue::string("/src")),
        ]),
    );
    f.runtime
        .block_on(f.backend.run(&copy, &f.context))
        .unwrap();
}
