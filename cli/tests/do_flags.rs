//! End-to-end tests of `cuedag do`'s flags and of the binary invoked as
//! `dagger`: errors found before any plan is evaluated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cuedag"))
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

#[test]
fn flag_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["--log-format", "bogus", "do"], &[]);
    assert_exit(&output, 1);
    assert_eq!(stderr(&output), "invalid --log-format \"bogus\"\n");
    let output = run_in(
        dir.path(),
        &["do", "build", "--platform", "linux/arm64"],
        &[],
    );
    assert_exit(&output, 1);
    assert_eq!(stderr(&output), "--platform requires --experimental flag\n");
    let output = run_in(dir.path(), &["do", "build", "--output-format", "xml"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).starts_with("invalid output format"),
        "{}",
        stderr(&output)
    );
    let output = run_in(dir.path(), &["do", "build", "--cache-to", "type=nope"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("--cache-to"),
        "{}",
        stderr(&output)
    );
    let output = run_in(dir.path(), &["do", "build", "-p", "./missing"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
    let output = run_in(
        dir.path(),
        &["do", "build"],
        &[("DAGGER_LOG_FORMAT", "nope")],
    );
    assert_exit(&output, 1);
}

#[test]
fn invoked_as_dagger_it_calls_itself_dagger() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("dagger");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    let output = Command::new(&link).arg("--help").output().unwrap();
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("Usage: dagger"),
        "{}",
        stdout(&output)
    );
    let output = Command::new(&link)
        .current_dir(dir.path())
        .args(["do", "x", "-p", "./missing"])
        .output()
        .unwrap();
    assert_exit(&output, 1);
}
