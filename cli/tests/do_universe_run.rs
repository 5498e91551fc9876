//! Universe definitions run for real by `cuedag do` on the local backend,
//! offline, on the stand-in images of the local registry
//! (`fixtures/images/serve`: `golang:1.18-alpine` with Debian's Go,
//! `alpine:3.15` with busybox and a stub `apk`). The plan is
//! `fixtures/plans/run/universe/plan.cue`; its Go module is a copy of
//! `fixtures/go-hello`.
//!
//! Covered: `go.#Test` and `go.#Build` (one run each, sharing the
//! `go_builder_*` cache volumes), `alpine.#Build` with packages, and a
//! `docker.#Build` of `alpine.#Build` + `docker.#Run` + `docker.#Copy` +
//! `docker.#Set` steps whose image a `bash.#Run` script then runs in.
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

fn run_action(project: &Path, store: &Path, action: &str) -> Output {
    run_with_store(
        project,
        store,
        &["do", action, "--log-format", "plain"],
        &[],
    )
}

/// Runs an action, asserts it succeeded, returns its log.
fn run_ok(project: &Path, store: &Path, action: &str) -> String {
    let output = run_action(project, store, action);
    assert!(output.status.success(), "do {action}: {}", text(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Log messages of one task (`<time> <LEVEL> <task> | <message>`).
fn task_messages<'a>(log: &'a str, task: &str) -> Vec<&'a str> {
    let needle = format!(" {task} | ");
    log.lines()
        .filter_map(|line| line.split_once(&needle).map(|(_, message)| message))
        .collect()
}

#[test]
fn universe_definitions_run_on_the_local_backend() {
    assert!(
        std::env::var("CUEDAG_REGISTRY_MIRRORS").is_ok(),
        "the stand-in images are not configured: run `scripts/services up` and \
         `source .ci/state/env` (as .ci/run does) before the tests"
    );
    let project = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("plans/run/universe"), project.path());
    let src = project.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    copy_dir(&fixtures().join("go-hello"), &src);

    // docker.#Build (alpine.#Build, #Run, #Copy, #Set) then bash.#Run in
    // its image: the script reads the copied file from the image's
    // workdir, sees the image env, the run's env and its arguments.
    let log = run_ok(project.path(), store.path(), "report");
    assert_eq!(
        std::fs::read_to_string(project.path().join("report.txt")).unwrap(),
        "greetings from a client directory\nhello bash, args: one two, pwd: /data\n",
        "{log}"
    );
    assert!(
        task_messages(&log, "actions.shell._dag.\"0\"._dag.\"1\"._exec")
            .iter()
            .any(|message| message.ends_with("-U --no-cache add jq")),
        "{log}"
    );

    // alpine.#Build: one `apk add` per package, versions appended.
    let log = run_ok(project.path(), store.path(), "packages");
    for (step, package) in [("1", "git"), ("2", "curl=7.80.0-r0")] {
        let task = format!("actions.packages._dag.\"{step}\"._exec");
        assert!(
            task_messages(&log, &task)
                .iter()
                .any(|message| message.ends_with(&format!("-U --no-cache add {package}"))),
            "{task}: {log}"
        );
    }

    // go.#Test: `go test -v` of every package passes.
    let log = run_ok(project.path(), store.path(), "test");
    let messages = task_messages(&log, "actions.test._exec");
    assert!(messages.contains(&"--- PASS: TestHello (0.00s)"), "{log}");
    assert!(
        messages
            .iter()
            .any(|message| message.starts_with("ok  \texample.com/hello/greet")),
        "{log}"
    );

    // go.#Build with a binary name and linker flags: ./bin/greeter works.
    // The image steps are cached from the test run.
    let log = run_ok(project.path(), store.path(), "build");
    for task in [
        "actions.build.container._img._dag.\"1\"._exec",
        "actions.build.container._img._dag.\"2\"._exec",
    ] {
        assert!(
            task_messages(&log, task).contains(&"CACHED"),
            "{task} ran again:\n{log}"
        );
    }
    let binary = project.path().join("bin/greeter");
    let output = Command::new(&binary).arg("universe").output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Hello, universe!\n"
    );
}
