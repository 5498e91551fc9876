//! End-to-end tests of `cuedag do` and `cuedag plan graph` on a plan of
//! pure tasks (`fixtures/plans/cli/actions.cue`): listing, running, outputs,
//! progress formats, dry runs, action input flags and plan errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::path::Path;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/plans/cli")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// A temp dir holding `plan.cue` with `text`.
fn project(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.cue"), text).unwrap();
    dir
}

fn listed(text: &str) -> Vec<(String, String)> {
    let Some(start) = text.find("Available Actions:\n") else {
        return Vec::new();
    };
    text[start..]
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .map(|line| {
            let line = line.trim();
            match line.split_once("  ") {
                Some((name, doc)) => (name.to_string(), doc.trim().to_string()),
                None => (line.to_string(), String::new()),
            }
        })
        .collect()
}

#[test]
fn lists_actions_and_sub_actions_with_docs() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(dir.path(), &["do"]);
    assert_exit(&output, 0);
    assert_eq!(
        listed(&stdout(&output)),
        [
            ("greet".to_string(), "Say hi.".to_string()),
            ("loud".into(), "Shout it.".into()),
            ("group".into(), "Nested actions.".into()),
            ("hello".into(), "Greet someone by name.".into()),
        ]
    );
    assert!(stdout(&output).contains("cuedag do <action> [subaction...] [flags]"));
    let output = run_in(dir.path(), &["do", "group", "--help"]);
    assert_exit(&output, 0);
    assert_eq!(
        listed(&stdout(&output)),
        [("first".to_string(), "The first one.".to_string())]
    );
    // Action input flags appear in the action's help.
    let output = run_in(dir.path(), &["do", "hello", "--help"]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("--name string"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("Who to greet."),
        "{}",
        stdout(&output)
    );
}

#[test]
fn unknown_action_prints_the_nearest_help() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(dir.path(), &["do", "group", "nope"]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output).lines().last(),
        Some("action not found: group nope"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        listed(&stdout(&output)),
        [("first".to_string(), "The first one.".to_string())]
    );
}

#[test]
fn runs_dependencies_first_and_prints_outputs() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(
        dir.path(),
        &["do", "group", "first", "--output-format", "json"],
    );
    assert_exit(&output, 0);
    let outputs: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outputs["output"], "hi!");
    let log = stderr(&output);
    let position = |line: &str| {
        log.find(line)
            .unwrap_or_else(|| panic!("no `{line}` in:\n{log}"))
    };
    assert!(
        position("actions.greet | completed") < position("actions.loud | computing"),
        "{log}"
    );
    assert!(
        position("actions.loud | completed") < position("actions.group.first | computing"),
        "{log}"
    );
    // Unrelated tasks do not run.
    assert!(!log.contains("actions.group._hidden"), "{log}");
    // One summary line per group at the end.
    let summary: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("[✔] "))
        .collect();
    assert_eq!(summary.len(), 3, "{log}");
    assert!(
        summary[0].starts_with("[✔] actions.greet ") && summary[0].ends_with('s'),
        "{log}"
    );

    let output = run_in(dir.path(), &["do", "loud", "--output-format", "plain"]);
    assert_exit(&output, 0);
    // `input` was not concrete before the run either: printed, as Dagger does.
    assert_eq!(
        stdout(&output),
        "Field   Value\ninput   \"hi!\"\noutput  \"hi!\"\n"
    );
    let output = run_in(dir.path(), &["do", "loud", "--output-format", "yaml"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "input: hi!\noutput: hi!\n");
}

#[test]
fn hidden_tasks_fold_into_their_visible_group() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(dir.path(), &["do", "group"]);
    assert_exit(&output, 0);
    let log = stderr(&output);
    assert!(log.contains("actions.group._hidden | completed"), "{log}");
    assert!(
        log.lines()
            .any(|line| line.starts_with("[✔] actions.group ")),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|line| line.starts_with("[✔] actions.group._hidden")),
        "{log}"
    );
}

#[test]
fn action_input_flags_fill_the_action() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(
        dir.path(),
        &["do", "hello", "--name", "bob", "--output-format", "json"],
    );
    assert_exit(&output, 0);
    let outputs: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outputs["message"], "hello, bob");
    assert!(outputs.get("name").is_none(), "{outputs}");
    assert!(
        stderr(&output).contains("Changed: name: bob"),
        "{}",
        stderr(&output)
    );
    // Without it, the input is reported before anything runs.
    let output = run_in(dir.path(), &["do", "hello"]);
    assert_exit(&output, 1);
    let log = stderr(&output);
    assert!(log.contains("\"actions.hello.name\" is not set"), "{log}");
    assert!(log.contains("plan.cue:"), "no position: {log}");
    assert!(!log.contains("computing"), "{log}");
}

#[test]
fn dry_run_lists_tasks_in_order_and_runs_nothing() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(dir.path(), &["do", "group", "--dry-run"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let tasks: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with(' ') || line.starts_with(" "))
        .filter(|line| line.contains(". actions"))
        .collect();
    assert_eq!(
        tasks,
        [
            " 1. actions.greet (Nop)",
            " 2. actions.loud (Nop)",
            " 3. actions.group.first (Nop)",
            " 4. actions.group._hidden (Nop)"
        ],
        "{text}"
    );
    assert!(text.contains("      input: \"hi\"\n"), "{text}");
    let log = stderr(&output);
    assert_eq!(log.matches("| skipped").count(), 4, "{log}");
    assert!(!log.contains("computing"), "{log}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(dir.path(), &["do", "loud", "--log-format", "json"]);
    assert_exit(&output, 0);
    let mut states = Vec::new();
    for line in stderr(&output).lines() {
        let object: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            object["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        if let Some(state) = object["state"].as_str() {
            states.push(format!(
                "{} {state}",
                object["task"].as_str().unwrap_or_default()
            ));
        }
    }
    assert_eq!(
        states,
        [
            "actions.greet computing",
            "actions.greet completed",
            "actions.loud computing",
            "actions.loud completed"
        ]
    );
}

#[test]
fn plan_errors_are_located() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(
        dir.path(),
        &["do", "greet", "--with", "actions: greet: input: \"bye\""],
    );
    assert_exit(&output, 1);
    let log = stderr(&output);
    assert!(log.contains("conflicting values"), "{log}");
    assert!(log.contains("plan.cue:"), "no position: {log}");

    let cycle = "package main\n\nimport \"dagger.io/dagger/core\"\n\nactions: {\n\ta: core.#Nop & {input: b.output}\n\tb: core.#Nop & {input: a.output}\n}\n";
    let dir = project(cycle);
    let output = run_in(dir.path(), &["do", "a"]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output)
            .contains("dependency cycle between tasks: actions.a -> actions.b -> actions.a"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plan_graph_prints_dot_and_mermaid() {
    let dir = project(&fixture("actions.cue"));
    let output = run_in(dir.path(), &["plan", "graph", "loud"]);
    assert_exit(&output, 0);
    let dot = stdout(&output);
    assert!(dot.starts_with("digraph plan {"), "{dot}");
    assert!(dot.contains("n0 [label=\"actions.greet\\nNop\"];"), "{dot}");
    assert!(dot.contains("n0 -> n1;"), "{dot}");
    assert!(!dot.contains("actions.group"), "{dot}");
    let output = run_in(dir.path(), &["plan", "graph", "--format", "mermaid"]);
    assert_exit(&output, 0);
    let mermaid = stdout(&output);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("n0 --> n1"), "{mermaid}");
    let output = run_in(dir.path(), &["plan", "graph", "nope"]);
    assert_exit(&output, 1);
}
