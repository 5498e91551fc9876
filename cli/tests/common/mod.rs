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
