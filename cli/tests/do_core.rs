//! Every core task through `cuedag do` on the local backend, with its
//! error cases: plans under `fixtures/plans/core/` or written by the test.
//!
//! Tests that pull images need what `.ci/run` sets up: root, bubblewrap and
//! `scripts/services up` (registry + stand-in images) with its settings in
//! the environment (`source .ci/state/env`). Without them they fail and say
//! so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A project directory with a store of its own.
struct Project {
    dir: tempfile::TempDir,
    store: PathBuf,
}

#[allow(dead_code)] // used by the tests of the other core tasks
impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join(".store");
        Project { dir, store }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `cuedag ARGS` run in `rel` below the project.
    fn run_at(&self, rel: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let store = self.store.to_string_lossy().into_owned();
        let mut all = vec![("CUEDAG_STORE", store.as_str())];
        all.extend_from_slice(env);
        let dir = self.path().join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        run_in_env(&dir, args, &all)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_at(".", args, &[])
    }
}

fn text(output: &Output) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

fn assert_ok(output: &Output) {
    assert!(output.status.success(), "{}", text(output));
}

/// Asserts a failed run whose stderr contains every one of `needles`.
fn assert_fails_with(output: &Output, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
    let err = stderr(output);
    for needle in needles {
        assert!(
            err.contains(needle),
            "missing {needle:?} in:\n{}",
            text(output)
        );
    }
}

/// Relative paths and contents of the files under `dir` (`a/b=contents`).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(entry.path());
            } else if file_type.is_symlink() {
                let target = std::fs::read_link(entry.path()).unwrap();
                out.push(format!("{rel}->{}", target.display()));
            } else {
                let contents = std::fs::read(entry.path()).unwrap();
                out.push(format!("{rel}={}", String::from_utf8_lossy(&contents)));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn source_is_relative_to_the_plan_file_not_the_working_directory() {
    let project = Project::new();
    std::fs::create_dir_all(project.path().join("plans/app")).unwrap();
    copy_dir(
        &fixtures().join("plans/source/app"),
        &project.path().join("plans/app"),
    );
    // Run from a sibling directory, pointing at the plan with -p.
    let run = project.run_at("elsewhere", &["do", "-p", "../plans/app", "files"], &[]);
    assert_ok(&run);
    assert_eq!(
        listing(&project.path().join("elsewhere/out")),
        vec!["a.txt=alpha\n", "nested/", "nested/c.txt=beta\n"]
    );

    let missing = project.run_at("elsewhere", &["do", "-p", "../plans/app", "missing"], &[]);
    assert_fails_with(
        &missing,
        &[
            "actions.missing",
            "path \"nope\" does not exist (relative to the directory of ../plans/app/plan.cue:19:",
        ],
    );
    let outside = project.run_at("elsewhere", &["do", "-p", "../plans/app", "outside"], &[]);
    assert_fails_with(
        &outside,
        &["actions.outside", "path \"../elsewhere\" is not relative (relative to the directory of ../plans/app/plan.cue:23:"],
    );
}

#[test]
fn unset_list_and_struct_inputs_are_reported_before_anything_runs() {
    let project = Project::new();
    project.write(
        "plan.cue",
        r#"package main

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	actions: {
		_img: core.#Pull & {source: "alpine:3.15"}
		run: core.#Exec & {
			input: _img.output
			args: ["echo", string, "a" | "b"]
			mounts: m: {dest: string, contents: _img.output}
		}
		merge: core.#Merge & {inputs: [_img.output, _fs]}
		_fs: dagger.#FS
	}
}
"#,
    );
    let run = project.run(&["do", "run"]);
    assert_fails_with(
        &run,
        &[
            "\"actions.run.args.1\" is not set (incomplete value string)\n    ./plan.cue:13:19",
            "\"actions.run.args.2\" is not set (incomplete value \"a\" | \"b\")\n    ./plan.cue:13:",
            "\"actions.run.mounts.m.dest\" is not set (incomplete value string)\n    ./plan.cue:14:",
            "[P003]",
        ],
    );
    assert!(!stderr(&run).contains("computing"), "{}", text(&run));
    let merge = project.run(&["do", "merge"]);
    assert_fails_with(
        &merge,
        &["\"actions._fs\" is not set (dagger.#FS is not set)\n    ./plan.cue:17:3"],
    );
    assert!(!stderr(&merge).contains("computing"), "{}", text(&merge));
}
