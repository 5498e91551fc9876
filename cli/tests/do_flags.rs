//! End-to-end tests of `cuedag do`'s flags and of the binary invoked as
//! `dagger`: errors found before any plan is evaluated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::process::Command;

#[test]
fn flag_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in_env(dir.path(), &["--log-format", "bogus", "do"], &[]);
    assert_exit(&output, 1);
    assert_eq!(stderr(&output), "invalid --log-format \"bogus\"\n");
    let output = run_in_env(
        dir.path(),
        &["do", "build", "--platform", "linux/arm64"],
        &[],
    );
    assert_exit(&output, 1);
    assert_eq!(stderr(&output), "--platform requires --experimental flag\n");
    let output = run_in_env(dir.path(), &["do", "build", "--output-format", "xml"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).starts_with("invalid output format"),
        "{}",
        stderr(&output)
    );
    let output = run_in_env(dir.path(), &["do", "build", "--cache-to", "type=nope"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("--cache-to"),
        "{}",
        stderr(&output)
    );
    let output = run_in_env(dir.path(), &["do", "build", "-p", "./missing"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
    let output = run_in_env(
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
