//! Plan-model tests on in-memory plans with the embedded universe.

use super::*;
use crate::{LoadOptions, MemLoader};

fn options(with: &[&str]) -> LoadOptions {
    LoadOptions {
        embedded: cuedag_universe::files()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect(),
        overlays: with.iter().map(|s| s.to_string()).collect(),
    }
}

fn load(text: &str, with: &[&str]) -> Result<Plan, PlanError> {
    let mut loader = MemLoader::default();
    loader.add("plan/build.cue", text);
    Plan::load(&loader, &["plan".to_string()], &options(with))
}

/// A plan without `dagger.#Plan` at the root: tasks under `actions` only.
const NOP_PLAN: &str = r#"
package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

actions: {
	// Say hi.
	//
	// More details.
	greet: core.#Nop & {input: "hi"}
	loud: core.#Nop & {input: greet.output + "!"}
	_hidden: core.#Nop & {input: loud.output}
	// A group.
	group: {
		// The inner one.
		inner: core.#Nop & {input: _hidden.output}
		_private: core.#Nop & {input: 3}
	}
	other: core.#Nop & {input: 1}
	secret: core.#TrimSecret & {input: _secret}
	_secret: dagger.#Secret
	params: name: string
	named: core.#Nop & {input: params.name}
}
"#;

fn paths_in_order(plan: &Plan, target: &[&str]) -> Vec<String> {
    let selected = plan.graph().select(&CuePath::new(target.iter().copied()));
    selected
        .topological_order()
        .into_iter()
        .map(|node| selected.graph[node].path.to_string())
        .collect()
}

#[test]
fn discovers_tasks_including_hidden_ones_in_declaration_order() {
    let plan = load(NOP_PLAN, &[]).unwrap();
    let tasks: Vec<String> = plan
        .tasks()
        .iter()
        .map(|task| format!("{} {}", task.path, task.task_type))
        .collect();
    assert_eq!(
        tasks,
        [
            "actions.greet Nop",
            "actions.loud Nop",
            "actions._hidden Nop",
            "actions.group.inner Nop",
            "actions.group._private Nop",
            "actions.other Nop",
            "actions.secret TrimSecret",
            "actions.named Nop",
        ]
    );
}

#[test]
fn selects_the_target_and_its_transitive_dependencies() {
    let plan = load(NOP_PLAN, &[]).unwrap();
    assert_eq!(
        paths_in_order(&plan, &["actions", "group"]),
        [
            "actions.greet",
            "actions.loud",
            "actions._hidden",
            "actions.group.inner",
            "actions.group._private"
        ]
    );
    assert_eq!(
        paths_in_order(&plan, &["actions", "other"]),
        ["actions.other"]
    );
}

#[test]
fn lists_actions_with_the_first_paragraph_of_their_docs() {
    let mut plan = load(NOP_PLAN, &[]).unwrap();
    let actions = plan.actions();
    let names: Vec<(&str, &str)> = actions
        .children
        .iter()
        .map(|c| (c.name.as_str(), c.doc.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("greet", "Say hi."),
            ("loud", ""),
            ("group", "A group."),
            ("other", ""),
            ("secret", ""),
            ("named", "")
        ]
    );
    let group = actions.find(&["group".to_string()]).unwrap();
    let inner: Vec<&str> = group.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(inner, ["inner"]);
    let (nearest, matched) = actions.nearest(&["group".to_string(), "nope".to_string()]);
    assert_eq!((nearest.name.as_str(), matched), ("group", 1));
}

#[test]
fn fill_back_makes_dependents_concrete() {
    let mut plan = load(NOP_PLAN, &[]).unwrap();
    let loud = CuePath::new(["actions", "loud"]);
    let err = plan.task_inputs(&loud).unwrap_err();
    assert!(matches!(err, PlanError::NotSet { .. }), "{err}");
    plan.fill(
        &CuePath::new(["actions", "greet"]),
        &TaskValue::structure([("output", TaskValue::string("hi"))]),
    )
    .unwrap();
    let inputs = plan.task_inputs(&loud).unwrap();
    assert_eq!(inputs.get("input"), Some(&TaskValue::string("hi!")));
    assert!(matches!(inputs.get("output"), Some(TaskValue::Declared(_))));
    // A filled secret reference reaches the task as a secret id.
    plan.fill(
        &CuePath::new(["actions", "secret"]),
        &TaskValue::structure([("output", TaskValue::Secret(SecretId("abc".into())))]),
    )
    .unwrap();
    let names = plan.pending_outputs(&CuePath::new(["actions", "loud"]));
    assert!(names.contains(&"output".to_string()), "{names:?}");
}

#[test]
fn an_output_conflicting_with_the_plan_fails_the_fill() {
    let plan_text = r#"
package main

import "dagger.io/dagger/core"

actions: {
	first: core.#Nop & {input: "a", output: "fixed"}
	second: core.#Nop & {input: first.output}
	third: core.#Exec & {args: ["true"]}
}
"#;
    let mut plan = load(plan_text, &[]).unwrap();
    let first = CuePath::new(["actions", "first"]);
    let err = plan
        .fill(
            &first,
            &TaskValue::structure([("output", TaskValue::string("other"))]),
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("actions.first: "), "{message}");
    assert!(message.contains("conflicting values"), "{message}");
    // An output conflicting with the task's own declaration
    // (`exit: int & 0`).
    let mut plan = load(plan_text, &[]).unwrap();
    let third = CuePath::new(["actions", "third"]);
    let err = plan
        .fill(&third, &TaskValue::structure([("exit", TaskValue::Int(1))]))
        .unwrap_err();
    assert!(err.to_string().contains("conflicting values"), "{err}");
}

#[test]
fn fills_of_several_tasks_all_reach_their_dependents() {
    let mut plan = load(NOP_PLAN, &[]).unwrap();
    plan.fill(
        &CuePath::new(["actions", "greet"]),
        &TaskValue::structure([("output", TaskValue::string("hi"))]),
    )
    .unwrap();
    // The same value filled again unifies with the first fill.
    plan.fill(
        &CuePath::new(["actions", "greet"]),
        &TaskValue::structure([("output", TaskValue::string("hi"))]),
    )
    .unwrap();
    plan.fill(
        &CuePath::new(["actions", "loud"]),
        &TaskValue::structure([("output", TaskValue::string("hi!"))]),
    )
    .unwrap();
    let hidden = plan
        .task_inputs(&CuePath::new(["actions", "_hidden"]))
        .unwrap();
    assert_eq!(hidden.get("input"), Some(&TaskValue::string("hi!")));
    // A different value at an already filled path is a conflict.
    let err = plan
        .fill(
            &CuePath::new(["actions", "greet"]),
            &TaskValue::structure([("output", TaskValue::string("bye"))]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("conflicting values"), "{err}");
}

#[test]
fn validation_reports_every_unset_input_with_positions() {
    let mut plan = load(NOP_PLAN, &[]).unwrap();
    let selected = plan.graph().select(&CuePath::new(["actions"]));
    let err = plan.validate(&selected).unwrap_err();
    let PlanError::NotSet { fields } = &err else {
        panic!("{err}")
    };
    let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["actions._secret", "actions.params.name"], "{err}");
    assert!(
        fields
            .iter()
            .all(|f| f.positions.iter().any(|p| p.file.contains("build.cue"))),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("\"actions._secret\" is not set (dagger.#Secret is not set)"),
        "{err}"
    );

    let mut plan = load(NOP_PLAN, &["actions: params: name: \"x\""]).unwrap();
    let selected = plan.graph().select(&CuePath::new(["actions", "named"]));
    plan.validate(&selected).unwrap();
    let flags = plan.input_flags(&CuePath::new(["actions", "params"]));
    assert!(flags.is_empty(), "{flags:?}");
}

#[test]
fn action_input_flags_are_the_unset_scalars() {
    let mut plan = load(NOP_PLAN, &[]).unwrap();
    let flags = plan.input_flags(&CuePath::new(["actions", "params"]));
    assert_eq!(
        flags,
        [("name".to_string(), DeclaredKind::String, String::new())]
    );
}

#[test]
fn cycles_are_reported_by_path() {
    let cycle = r#"
package main

import "dagger.io/dagger/core"

actions: {
	a: core.#Nop & {input: b.output}
	b: core.#Nop & {input: c.output}
	c: core.#Nop & {input: a.output}
}
"#;
    let err = load(cycle, &[]).err().unwrap();
    assert_eq!(
        err.to_string(),
        "dependency cycle between tasks: actions.a -> actions.b -> actions.c -> actions.a"
    );
    assert_eq!(err.code(), "P001");
}

#[test]
fn conflicting_overlays_fail_the_load() {
    let err = load(NOP_PLAN, &["actions: other: input: 2"]).err().unwrap();
    assert!(err.to_string().contains("conflicting values"), "{err}");
}

#[test]
fn seed_plan_fills_reach_the_output_write() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/go-hello/build.cue"
    ))
    .unwrap();
    let mut plan = load(&text, &[]).unwrap();
    let selected = plan.graph().select(&CuePath::new(["actions", "build"]));
    let order: Vec<CuePath> = selected
        .topological_order()
        .into_iter()
        .map(|node| selected.graph[node].path.clone())
        .collect();
    for (i, path) in order.iter().enumerate() {
        if path
            .to_string()
            .starts_with("client.filesystem.\"./output\"")
        {
            let inputs = plan.task_inputs(path).unwrap();
            assert!(
                matches!(inputs.get("contents"), Some(TaskValue::Fs(_))),
                "{inputs:?}"
            );
            continue;
        }
        let inputs = plan
            .task_inputs(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut outs = Vec::new();
        if let TaskValue::Struct(fields) = &inputs {
            for (name, value) in fields {
                if let TaskValue::Declared(_) = value {
                    let v = match name.as_str() {
                        "output" | "contents" => TaskValue::Fs(FsRef::Id(format!("fs{i}"))),
                        "exit" => TaskValue::Int(0),
                        "digest" => TaskValue::string("sha256:00"),
                        "config" => TaskValue::empty_struct(),
                        _ => continue,
                    };
                    outs.push((name.clone(), v));
                }
            }
        }
        plan.fill(
            path,
            &TaskValue::structure(outs.iter().map(|(n, v)| (n.as_str(), v.clone()))),
        )
        .unwrap();
    }
}

#[test]
fn source_origin_is_the_file_that_sets_path() {
    let mut loader = MemLoader::default();
    loader.add(
        "plan/build.cue",
        r#"
package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
	"universe.dagger.io/aws"
)

dagger.#Plan & {
	actions: {
		mine: core.#Source & {
			path: "scripts"
		}
		cli: aws.#Build
	}
}
"#,
    );
    let mut plan = Plan::load(&loader, &["plan".to_string()], &options(&[])).unwrap();
    let mine = plan
        .field_origin(&CuePath::new(["actions", "mine"]), "path")
        .unwrap();
    assert_eq!((mine.file.as_str(), mine.line), ("./plan/build.cue", 13));
    let scripts = plan
        .tasks()
        .iter()
        .find(|task| task.task_type == "Source" && task.path.to_string().starts_with("actions.cli"))
        .unwrap()
        .path
        .clone();
    let shipped = plan.field_origin(&scripts, "path").unwrap();
    assert_eq!(shipped.file, "<embedded>/universe.dagger.io/aws/aws.cue");
}

#[test]
fn validation_looks_inside_lists_and_structs_of_inputs() {
    let plan_text = r#"
package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	actions: {
		_img: core.#Pull & {source: "alpine:3.15"}
		run: core.#Exec & {
			input: _img.output
			args: ["echo", string, "a" | "b", "ok"]
			mounts: m: {dest: string, contents: _img.output}
		}
		merge: core.#Merge & {inputs: [_img.output, _fs]}
		_fs: dagger.#FS
		copy: core.#Copy & {
			input:    _img.output
			contents: _img.output
			include: ["*.go", string]
		}
		fine: core.#Exec & {
			input: _img.output
			args: ["echo", _img.digest]
			mounts: m: {dest: "/m", contents: _img.output}
		}
	}
}
"#;
    let mut plan = load(plan_text, &[]).unwrap();
    let check = |plan: &mut Plan, action: &str| -> Vec<UnsetField> {
        let selected = plan.graph().select(&CuePath::new(["actions", action]));
        match plan.validate(&selected) {
            Ok(()) => Vec::new(),
            Err(PlanError::NotSet { fields }) => fields,
            Err(other) => panic!("{other}"),
        }
    };
    let run = check(&mut plan, "run");
    let shown: Vec<(&str, Option<&str>)> = run
        .iter()
        .map(|f| (f.path.as_str(), f.reason.as_deref()))
        .collect();
    assert_eq!(
        shown,
        [
            ("actions.run.mounts.m.dest", Some("incomplete value string")),
            ("actions.run.args.1", Some("incomplete value string")),
            ("actions.run.args.2", Some("incomplete value \"a\" | \"b\"")),
        ]
    );
    // The element's own position comes first, then the list's.
    let first = &run[1].positions[0];
    assert_eq!(
        (first.file.as_str(), first.line, first.col),
        ("./plan/build.cue", 14, 19)
    );
    assert!(run
        .iter()
        .all(|f| f.positions.iter().any(|p| p.line == 14 || p.line == 15)));

    let merge = check(&mut plan, "merge");
    assert_eq!(merge.len(), 1, "{merge:?}");
    assert_eq!(merge[0].path, "actions._fs");
    assert_eq!(merge[0].reason.as_deref(), Some("dagger.#FS is not set"));
    assert_eq!(merge[0].positions[0].line, 18);

    let copy = check(&mut plan, "copy");
    assert_eq!(copy.len(), 1, "{copy:?}");
    assert_eq!(copy[0].path, "actions.copy.include.1");

    // Outputs of other tasks, inside lists and structs, are not missing.
    assert!(check(&mut plan, "fine").is_empty());
}
