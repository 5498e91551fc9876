//! End-to-end tests of `cuedag do` on a `dagger.#Plan` with client tasks
//! (`fixtures/plans/cli/client.cue`): env, file reads and writes, commands.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

/// A temp dir holding `plan.cue` copied from `fixtures/plans/cli/<name>`.
fn project(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("plans/cli").join(name)).unwrap();
    std::fs::write(dir.path().join("plan.cue"), text).unwrap();
    dir
}

#[test]
fn unknown_action_shows_nearest_help() {
    let dir = project("client.cue");
    let output = run_in_env(dir.path(), &["do", "group", "nope"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("action not found: group nope"),
        "{}",
        stderr(&output)
    );
    let help = stdout(&output);
    assert!(
        help.contains("first") && help.contains("The first one."),
        "{help}"
    );
    assert!(!help.contains("_hidden"), "{help}");
}

#[test]
fn nested_actions_are_listed_with_help() {
    let dir = project("client.cue");
    let output = run_in_env(dir.path(), &["do"], &[]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    for (name, doc) in [
        ("greet", "Greet someone."),
        ("command", "Run a command on the client."),
        ("group", "Nested actions."),
    ] {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(name))
            .unwrap_or_default();
        assert!(line.contains(doc), "{name}: {text}");
    }
    let output = run_in_env(dir.path(), &["do", "group", "--help"], &[]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("The first one."),
        "{}",
        stdout(&output)
    );
}

#[test]
fn client_env_and_write_end_to_end() {
    let dir = project("client.cue");
    let output = run_in_env(
        dir.path(),
        &["do", "greet", "--output-format", "json"],
        &[("NAME", "bob")],
    );
    assert_exit(&output, 0);
    let outputs: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outputs["output"], "hello, bob");
    let written = dir.path().join("greeting.txt");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "hello, bob");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // The unrelated write did not run, and the unused variable was not read.
    assert!(!dir.path().join("other.txt").exists());
    let log = stderr(&output);
    assert!(log.contains("client.env | completed"), "{log}");
    assert!(!log.contains("other"), "{log}");
}

#[test]
fn missing_client_env_fails_with_dagger_message() {
    let dir = project("client.cue");
    let output = run_in_env(dir.path(), &["do", "greet"], &[]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("client.env: environment variable \"NAME\" not set"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("greeting.txt").exists());
}

#[test]
fn client_command_and_read_end_to_end() {
    let dir = project("client.cue");
    let output = run_in_env(
        dir.path(),
        &["do", "command", "--output-format", "json"],
        &[("NAME", "x")],
    );
    assert_exit(&output, 0);
    let outputs: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outputs["output"], "from-echo x");

    std::fs::write(dir.path().join("input.txt"), "file text\n").unwrap();
    let output = run_in_env(dir.path(), &["do", "read", "--output-format", "plain"], &[]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "Field   Value\ninput   \"file text\\n\"\noutput  \"file text\\n\"\n"
    );
}

#[test]
fn secrets_never_reach_the_output_or_the_logs() {
    let plan = r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	client: env: TOKEN: dagger.#Secret
	client: commands: show: {
		name: "sh"
		args: ["-c", "echo \"token is $T\""]
		env: T: actions.trim.output
	}
	actions: {
		trim: core.#TrimSecret & {input: client.env.TOKEN}
		show: core.#Nop & {input: client.commands.show.stdout}
	}
}
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.cue"), plan).unwrap();
    let output = run_in_env(
        dir.path(),
        &[
            "do",
            "trim",
            "--output-format",
            "plain",
            "--log-level",
            "debug",
        ],
        &[("TOKEN", "  hunter2-secret  ")],
    );
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "Field   Value\noutput  dagger.#Secret\n");
    assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
    let output = run_in_env(
        dir.path(),
        &["do", "trim", "--dry-run"],
        &[("TOKEN", "hunter2-secret")],
    );
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("input: dagger.#Secret"),
        "{}",
        stdout(&output)
    );
    assert!(!stdout(&output).contains("hunter2") && !stderr(&output).contains("hunter2"));
    // A command handed the secret gets the plaintext; the output is a string
    // the author chose to expose.
    let output = run_in_env(
        dir.path(),
        &["do", "show", "--output-format", "json"],
        &[("TOKEN", " s3 ")],
    );
    assert_exit(&output, 0);
    let outputs: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outputs["output"], "token is s3\n");
}
