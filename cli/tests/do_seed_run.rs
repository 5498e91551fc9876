//! The main job, end to end: the seed's `build.cue` (`fixtures/go-hello/`)
//! run for real by `cuedag do build` with the local backend, offline, on the
//! stand-in `golang:1.18-alpine` image served by the local registry.
//!
//! Needs what `.ci/run` sets up: root, bubblewrap, and `scripts/services up`
//! (registry + stand-in images) with its settings in the environment
//! (`source .ci/state/env`). Without them the test fails and says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::path::Path;
use std::process::{Command, Output};

fn do_build(project: &Path, store: &Path) -> Output {
    run_with_store(
        project,
        store,
        &["do", "build", "--log-format", "plain"],
        &[],
    )
}

fn ran_go_build(log: &str) -> bool {
    task_lines(log, "actions.build.container._exec")
        .iter()
        .any(|line| {
            line.ends_with("| example.com/hello/greet") || line.ends_with("| example.com/hello")
        })
}

fn run_binary(path: &Path) -> String {
    let output = Command::new(path).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn seed_plan_builds_caches_rebuilds_and_fails_cleanly() {
    assert!(
        std::env::var("CUEDAG_REGISTRY_MIRRORS").is_ok(),
        "the stand-in images are not configured: run `scripts/services up` and \
         `source .ci/state/env` (as .ci/run does) before the tests"
    );
    let project = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/go-hello"),
        project.path(),
    );
    let binary = project.path().join("output/hello");

    // Cold: everything runs, and ./output holds a working binary.
    let cold = do_build(project.path(), store.path());
    assert!(cold.status.success(), "{}", text(&cold));
    let cold_log = String::from_utf8_lossy(&cold.stderr).into_owned();
    assert!(ran_go_build(&cold_log), "{}", text(&cold));
    assert_eq!(run_binary(&binary), "Hello, world!\n");
    for group in [
        "client.filesystem.\".\".read",
        "actions.build.container",
        "actions.build.container.export",
        "client.filesystem.\"./output\".write",
    ] {
        assert!(
            cold_log
                .lines()
                .any(|line| line.starts_with("[✔] ") && line.contains(group)),
            "no summary line for {group}:\n{cold_log}"
        );
    }

    // Warm: no step runs again.
    let warm = do_build(project.path(), store.path());
    assert!(warm.status.success(), "{}", text(&warm));
    let warm_log = String::from_utf8_lossy(&warm.stderr).into_owned();
    assert!(!ran_go_build(&warm_log), "{}", text(&warm));
    for task in [
        "actions.build.container._img._dag.\"1\"._exec",
        "actions.build.container._img._dag.\"2\"._exec",
        "actions.build.container._exec",
    ] {
        assert!(cached(&warm_log, task), "{task} ran again:\n{warm_log}");
    }

    // One .go file changed: only the build step reruns.
    let greet = project.path().join("greet/greet.go");
    let source = std::fs::read_to_string(&greet).unwrap();
    std::fs::write(&greet, source.replace("\"Hello, \"", "\"Howdy, \"")).unwrap();
    let changed = do_build(project.path(), store.path());
    assert!(changed.status.success(), "{}", text(&changed));
    let changed_log = String::from_utf8_lossy(&changed.stderr).into_owned();
    assert!(ran_go_build(&changed_log), "{}", text(&changed));
    assert!(cached(
        &changed_log,
        "actions.build.container._img._dag.\"1\"._exec"
    ));
    assert!(cached(
        &changed_log,
        "actions.build.container._img._dag.\"2\"._exec"
    ));
    assert_eq!(run_binary(&binary), "Howdy, world!\n");

    // A compile error: the compiler's message is reported, exit 1, and
    // ./output keeps the previous binary.
    let before = std::fs::read(&binary).unwrap();
    let main = project.path().join("main.go");
    let mut broken = std::fs::read_to_string(&main).unwrap();
    broken.push_str("\nfunc broken() { this is not go }\n");
    std::fs::write(&main, broken).unwrap();
    let failed = do_build(project.path(), store.path());
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let failed_log = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(failed_log.contains("syntax error"), "{}", text(&failed));
    assert!(
        failed_log.contains("did not complete successfully"),
        "{}",
        text(&failed)
    );
    assert_eq!(std::fs::read(&binary).unwrap(), before);
}
