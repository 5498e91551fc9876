//! Shared helpers: a tiny busybox root filesystem and exec plumbing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cuedag_sandbox::{ExecError, ExecResult, ExecSpec, OutputSink, OutputStream, Sandbox};
use tokio_util::sync::CancellationToken;

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "rm", "id", "echo", "true", "false", "touch", "sleep", "mkdir", "stat",
    "hostname", "test", "printf", "env", "pwd", "wc", "kill", "trap", "ps", "head", "grep", "tr",
];

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub base: PathBuf,
    counter: std::sync::atomic::AtomicUsize,
}

/// Builds a layer holding busybox, /etc/passwd with root, nobody and app.
pub fn fixture() -> Fixture {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install it with .ci/run's apt-get line \
         (`apt-get install -y busybox-static bubblewrap`)"
    );
    assert!(
        Path::new("/usr/bin/bwrap").is_file(),
        "bwrap is missing: install it with .ci/run's apt-get line (`apt-get install -y bubblewrap`)"
    );
    let dir = tempfile::Builder::new()
        .prefix("sandbox-test-")
        .tempdir()
        .unwrap();
    let base = dir.path().join("base");
    for sub in ["bin", "etc", "root", "home/app", "tmp", "data"] {
        std::fs::create_dir_all(base.join(sub)).unwrap();
    }
    std::fs::set_permissions(base.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(base.join("home/app"), Some(1000), Some(1000)).unwrap();
    std::fs::copy(BUSYBOX, base.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        symlink("busybox", base.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        base.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         app:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        base.join("etc/group"),
        "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    std::fs::write(base.join("data/keep.txt"), "lower data\n").unwrap();
    std::fs::write(base.join("data/doomed.txt"), "to delete\n").unwrap();
    Fixture {
        dir,
        base,
        counter: std::sync::atomic::AtomicUsize::new(0),
    }
}

impl Fixture {
    /// A fresh (upper, work) pair.
    pub fn layer(&self) -> (PathBuf, PathBuf) {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let upper = self.dir.path().join(format!("upper{n}"));
        let work = self.dir.path().join(format!("work{n}"));
        std::fs::create_dir(&upper).unwrap();
        std::fs::create_dir(&work).unwrap();
        (upper, work)
    }

    /// A spec over `lowers` running `sh -c script` with a fresh upper.
    pub fn sh(&self, lowers: Vec<PathBuf>, script: &str) -> ExecSpec {
        let (upper, work) = self.layer();
        ExecSpec::new(
            lowers,
            upper,
            work,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        )
    }
}

/// Collects output lines.
#[derive(Clone, Default)]
pub struct Collector(pub Arc<Mutex<Vec<(OutputStream, String)>>>);

impl Collector {
    pub fn sink(&self) -> OutputSink {
        let lines = self.0.clone();
        Arc::new(move |stream, line| lines.lock().unwrap().push((stream, line.to_owned())))
    }

    pub fn stdout(&self) -> String {
        self.lines(OutputStream::Stdout)
    }

    pub fn stderr(&self) -> String {
        self.lines(OutputStream::Stderr)
    }

    fn lines(&self, which: OutputStream) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == which)
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    }

    pub fn all(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    }
}

pub fn sandbox() -> Sandbox {
    Sandbox::new().expect("sandbox tools missing: run .ci/run's apt-get line")
}

/// Runs `spec`, returning the result and the collected output.
pub async fn run(spec: &ExecSpec) -> (Result<ExecResult, ExecError>, Collector) {
    let out = Collector::default();
    let result = sandbox()
        .run(spec, out.sink(), &CancellationToken::new())
        .await;
    (result, out)
}

/// Runs `spec`, asserting success, returning stdout.
pub async fn run_ok(spec: &ExecSpec) -> String {
    let (result, out) = run(spec).await;
    if let Err(err) = result {
        panic!("exec failed: {err}\noutput:\n{}", out.all());
    }
    out.stdout()
}
