//! Helpers shared by the end-to-end tests of the `cuedag` binary.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test, built by cargo for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cuedag"))
}

/// The repository's `fixtures/` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Copies a directory tree, leaving out any `output/` directory.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == "output" {
                continue;
            }
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs the binary in `dir` with plain logs, without the caller's `DAGGER_*`
/// variables, plus `env`.
pub fn run_in_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin());
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("DAGGER_") {
            command.env_remove(key);
        }
    }
    command.env("DAGGER_LOG_FORMAT", "plain");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// [`run_in_env`] with no extra variables.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_in_env(dir, args, &[])
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams otherwise.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// [`run_in_env`] over the local store `store` (`CUEDAG_STORE`).
pub fn run_with_store(dir: &Path, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let store = store.display().to_string();
    let mut all_env = vec![("CUEDAG_STORE", store.as_str())];
    all_env.extend_from_slice(env);
    run_in_env(dir, args, &all_env)
}

/// The exit code and both streams, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

/// Asserts a successful run, showing both streams otherwise.
pub fn assert_ok(output: &Output) {
    assert!(output.status.success(), "{}", text(output));
}

/// The services the image-pulling tests need, started by `.ci/run`: the
/// stand-in images behind the `docker.io` mirror and the test registry,
/// whose address it returns.
pub fn require_services() -> String {
    let mirrors = std::env::var("CUEDAG_REGISTRY_MIRRORS").unwrap_or_default();
    assert!(
        mirrors.contains("docker.io="),
        "the stand-in images are not configured: run `scripts/services up` and \
         `source .ci/state/env` (as .ci/run does) before the tests"
    );
    let Ok(addr) = std::env::var("CUEDAG_TEST_REGISTRY") else {
        panic!(
            "CUEDAG_TEST_REGISTRY is not set: `source .ci/state/env` after `scripts/services up`"
        )
    };
    assert!(
        std::net::TcpStream::connect(&addr).is_ok(),
        "no registry listening at {addr}: start it with `scripts/services up` \
         (then `source .ci/state/env`)"
    );
    addr
}

/// A name no other test or run uses (registry repositories, cache ids).
pub fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// Log lines of one task (`<time> <LEVEL> <task> | <message>`).
pub fn task_lines<'a>(log: &'a str, task: &str) -> Vec<&'a str> {
    let needle = format!(" {task} | ");
    log.lines().filter(|line| line.contains(&needle)).collect()
}

/// Whether the log says `task` was a cache hit.
pub fn cached(log: &str, task: &str) -> bool {
    task_lines(log, task)
        .iter()
        .any(|line| line.ends_with("| CACHED"))
}
