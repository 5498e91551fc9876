//! The universe checks of `universe/tests/plans/` evaluated by cuedag: the
//! same plans, probes and wanted values that `universe/tests/oracle.rs`
//! gives the reference CUE evaluator must come out of `cuedag export -e
//! checks` (and the error plans must fail `cuedag eval` naming the same
//! field), so cuedag and the reference agree on every universe package.
//!
//! The module is made as a project would have it: `cuedag project init`
//! and `project update` vendor the embedded packages into `cue.mod/pkg`,
//! then the test probes of `universe/tests/probes/` are added next to them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn universe_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../universe/tests")
}

/// `// want <key>: <json>` and `// error: <text>` lines of a plan.
fn expectations(text: &str) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut wants = BTreeMap::new();
    let mut errors = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("// want ") {
            let (key, json) = rest.split_once(": ").unwrap();
            wants.insert(key.to_owned(), serde_json::from_str(json).unwrap());
        } else if let Some(error) = line.strip_prefix("// error: ") {
            errors.push(error.to_owned());
        }
    }
    (wants, errors)
}

#[test]
fn cuedag_gives_the_wanted_values_of_every_universe_check() {
    let module = tempfile::tempdir().unwrap();
    for args in [["project", "init"], ["project", "update"]] {
        assert_exit(&run_in(module.path(), &args), 0);
    }
    copy_dir(
        &universe_tests().join("probes"),
        &module.path().join("cue.mod/pkg"),
    );

    let mut names: Vec<String> = std::fs::read_dir(universe_tests().join("plans"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cue"))
        .collect();
    names.sort();
    let mut failures = Vec::new();
    let (mut n_checks, mut n_errors) = (0, 0);
    for name in &names {
        let text = std::fs::read_to_string(universe_tests().join("plans").join(name)).unwrap();
        let (wants, errors) = expectations(&text);
        let stem = name.trim_end_matches(".cue");
        let fixture = fixtures().join("plans/universe").join(stem);
        // A plan with a fixture is one package with the fixture's files.
        let target = if fixture.is_dir() {
            let dir = module.path().join(stem);
            std::fs::create_dir_all(&dir).unwrap();
            copy_dir(&fixture, &dir);
            std::fs::write(dir.join("checks.cue"), &text).unwrap();
            format!("./{stem}")
        } else {
            let dir = module.path().join("files");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), &text).unwrap();
            format!("files/{name}")
        };
        if !wants.is_empty() {
            let output = run_in(
                module.path(),
                &["export", &target, "-e", "checks", "--out", "json"],
            );
            if output.status.code() != Some(0) {
                failures.push(format!("{name}: export failed:\n{}", stderr(&output)));
                continue;
            }
            let got: BTreeMap<String, Value> = serde_json::from_str(&stdout(&output)).unwrap();
            for (key, want) in &wants {
                n_checks += 1;
                match got.get(key) {
                    Some(value) if value == want => {}
                    value => failures.push(format!("{name}: {key}: want {want}, got {value:?}")),
                }
            }
            for key in got.keys().filter(|key| !wants.contains_key(*key)) {
                failures.push(format!("{name}: {key}: no `// want` line"));
            }
        } else {
            n_errors += 1;
            let output = run_in(module.path(), &["eval", &target]);
            let log = stderr(&output);
            if output.status.code() == Some(0) {
                failures.push(format!("{name}: `cuedag eval` succeeded"));
            }
            for error in &errors {
                if !log.contains(error.as_str()) {
                    failures.push(format!("{name}: error output lacks `{error}`:\n{log}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(n_checks >= 100, "only {n_checks} checks");
    assert!(n_errors >= 5, "only {n_errors} error plans");
}
