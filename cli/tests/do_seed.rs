//! End-to-end tests on the seed's `build.cue` (`fixtures/go-hello/`, the
//! Dagger "Persistent cache" guide's plan, verbatim): `do` lists `build`,
//! and the task graph of `build` is the one Dagger runs, in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::path::Path;
use std::process::Output;

/// A temp copy of `fixtures/go-hello` without any previous `output/`.
fn seed_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/go-hello");
    copy_dir(&from, dir.path());
    dir
}

fn assert_ok(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn seed_plan_lists_build() {
    let dir = seed_project();
    let output = run_in(dir.path(), &["do"]);
    assert_ok(&output);
    let text = stdout(&output);
    let actions: Vec<&str> = text
        .split("Available Actions:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(actions, ["build  Build go binary"], "{text}");
}

#[test]
fn seed_build_runs_the_tasks_dagger_runs_in_order() {
    let dir = seed_project();
    let output = run_in(dir.path(), &["plan", "graph", "build", "--format", "order"]);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        [
            r#"client.filesystem.".".read (ClientFilesystemRead)"#,
            r#"actions.build.container._img._dag."0"._pull (Pull)"#,
            r#"actions.build.container._img._dag."1"._exec (Exec)"#,
            r#"actions.build.container._img._dag."2"._exec (Exec)"#,
            r#"actions.build.container._copy._copy (Copy)"#,
            r#"actions.build.container._exec (Exec)"#,
            r#"actions.build.container.export._directories."/output"._subdir._copy (Copy)"#,
            r#"client.filesystem."./output".write (ClientFilesystemWrite)"#,
            "",
        ]
        .join("\n")
    );
}

#[test]
fn seed_dry_run_prints_the_tasks_in_order_with_their_inputs() {
    let dir = seed_project();
    let output = run_in(dir.path(), &["do", "build", "--dry-run"]);
    assert_ok(&output);
    let text = stdout(&output);
    let tasks: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("      "))
        .collect();
    assert_eq!(
        tasks,
        [
            r#" 1. client.filesystem.".".read (ClientFilesystemRead)"#,
            r#" 2. actions.build.container._img._dag."0"._pull (Pull)"#,
            r#" 3. actions.build.container._img._dag."1"._exec (Exec)"#,
            r#" 4. actions.build.container._img._dag."2"._exec (Exec)"#,
            r#" 5. actions.build.container._copy._copy (Copy)"#,
            r#" 6. actions.build.container._exec (Exec)"#,
            r#" 7. actions.build.container.export._directories."/output"._subdir._copy (Copy)"#,
            r#" 8. client.filesystem."./output".write (ClientFilesystemWrite)"#,
        ],
        "{text}"
    );
    assert!(
        text.contains(r#"      include: ["**/*.go", "go.mod", "go.sum"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#"      source: "index.docker.io/golang:1.18-alpine""#),
        "{text}"
    );
    assert!(
        text.contains(r#"      args: ["apk", "-U", "--no-cache", "add", "git"]"#),
        "{text}"
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(log.matches("| skipped").count(), 8, "{log}");
    assert!(!dir.path().join("output").exists());
}
