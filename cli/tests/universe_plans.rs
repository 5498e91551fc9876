//! Every plan of `fixtures/plans/universe/` (realistic uses of each
//! `dagger.io` and `universe.dagger.io` package), every action of each:
//! `cuedag do <action> --dry-run` must succeed and print the tasks Dagger
//! runs, in order, with the inputs that tell the universe definitions apart
//! (argv, image references, cache ids, mounts, env).
//!
//! There is no allow-list: a plan directory or an action without an entry
//! in [`EXPECTED`] fails, and so does an entry whose action is not listed by
//! `cuedag do`. Pure actions (`core.#Set`, `docker.#Set` alone) have no task
//! and are not listed, as in Dagger; the reference-evaluator checks of
//! `universe/tests/oracle.rs` cover them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::collections::BTreeSet;
use std::path::Path;

/// (plan directory, action, task kinds in dry-run order, texts the dry run
/// must print).
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const EXPECTED: &[Expected] = &[
    (
        "core",
        "pull",
        "Pull",
        &[r#"source: "alpine:3.15""#],
    ),
    (
        "core",
        "exec",
        "ClientFilesystemRead ClientFilesystemRead ClientNetwork ClientEnv Pull Exec ClientFilesystemWrite",
        &[r#"args: ["sh", "-c", "echo hi"]"#, r#"contents: {id: "c", concurrency: "locked"}"#, r#"env: {A: "1", S: dagger.#Secret}"#],
    ),
    (
        "core",
        "start",
        "Pull Start",
        &[],
    ),
    (
        "core",
        "signal",
        "Pull Start SendSignal",
        &[r#"signal: 10"#],
    ),
    (
        "core",
        "stop",
        "Pull Start Stop",
        &[],
    ),
    (
        "core",
        "copy",
        "Pull Copy",
        &[],
    ),
    (
        "core",
        "subdir",
        "Pull Copy",
        &[],
    ),
    (
        "core",
        "mkdir",
        "Mkdir",
        &[],
    ),
    (
        "core",
        "write",
        "Mkdir WriteFile",
        &[],
    ),
    (
        "core",
        "read",
        "Mkdir WriteFile ReadFile ClientFilesystemWrite",
        &[],
    ),
    (
        "core",
        "rm",
        "Mkdir WriteFile Rm",
        &[],
    ),
    (
        "core",
        "merge",
        "Pull Mkdir WriteFile Merge",
        &[],
    ),
    (
        "core",
        "diff",
        "ClientFilesystemRead ClientFilesystemRead ClientNetwork ClientEnv Pull Exec ClientFilesystemWrite Diff",
        &[],
    ),
    (
        "core",
        "source",
        "Source",
        &[],
    ),
    (
        "core",
        "push",
        "ClientFilesystemRead ClientFilesystemRead ClientNetwork ClientEnv Pull Exec ClientFilesystemWrite Push",
        &[],
    ),
    (
        "core",
        "dockerfile",
        "Dockerfile",
        &[],
    ),
    (
        "core",
        "export",
        "ClientFilesystemRead ClientFilesystemRead ClientNetwork ClientEnv Pull Exec ClientFilesystemWrite Export",
        &[],
    ),
    (
        "core",
        "gitPull",
        "ClientEnv GitPull",
        &[r#"remote: "https://example.com/r.git""#],
    ),
    (
        "core",
        "fetch",
        "HTTPFetch",
        &[r#"source: "https://example.com/f""#],
    ),
    (
        "core",
        "newSecret",
        "Mkdir WriteFile NewSecret",
        &[],
    ),
    (
        "core",
        "trim",
        "Mkdir WriteFile NewSecret TrimSecret",
        &[],
    ),
    (
        "core",
        "decode",
        "Mkdir WriteFile NewSecret TrimSecret DecodeSecret",
        &[r#"format: "json""#],
    ),
    (
        "core",
        "nop",
        "Mkdir WriteFile ReadFile ClientFilesystemWrite Nop",
        &[],
    ),
    (
        "docker",
        "pull",
        "Pull",
        &[],
    ),
    (
        "docker",
        "run",
        "Exec ReadFile ReadFile Copy NewSecret",
        &[r#"args: ["/entry", "sh", "-c", "echo hello > /out.txt", "-e", "extra"]"#, r#"path: "/app/rel.txt""#, r#"user: "1000""#],
    ),
    (
        "docker",
        "noEntrypoint",
        "Exec",
        &[r#"args: ["ls"]"#, r#"workdir: "/tmp""#, r#"always: true"#],
    ),
    (
        "docker",
        "imageCmd",
        "Exec",
        &[r#"args: ["nginx", "-g", "daemon off;"]"#],
    ),
    (
        "docker",
        "build",
        "Pull Exec Copy",
        &[r#"source: "alpine""#, r#"args: ["apk", "add", "git"]"#, r#"dest: "/opt""#],
    ),
    (
        "docker",
        "copyRelative",
        "Copy",
        &[r#"source: "/bin""#, r#"dest: "/app""#],
    ),
    (
        "docker",
        "copyNoWorkdir",
        "Copy",
        &[r#"dest: "/sub""#],
    ),
    (
        "docker",
        "push",
        "ClientEnv Push",
        &[r#"dest: "localhost:5000/app:v1""#],
    ),
    (
        "docker",
        "dockerfile",
        "Dockerfile",
        &[r#"target: "prod""#],
    ),
    (
        "docker",
        "dockerfilePath",
        "Dockerfile",
        &[],
    ),
    (
        "go",
        "build",
        "ClientFilesystemRead Pull Exec Exec Copy Exec Copy ClientFilesystemWrite",
        &[r#"source: "index.docker.io/golang:1.18-alpine""#, r#"args: ["apk", "-U", "--no-cache", "add", "git"]"#, r#"args: ["apk", "-U", "--no-cache", "add", "alpine-sdk"]"#, r#"dest: "/src""#, r#"args: ["go", "build", "-v", "-tags", "", "-ldflags", "", "-o", "/output/", "."]"#, r#"{"go mod cache": {contents: {id: "go_builder_mod", concurrency: "shared"}, dest: "/root/.cache/go-mod", type: "cache"}"#, r#""go build cache": {contents: {id: "go_builder_build", concurrency: "shared"}, dest: "/root/.cache/go-build", type: "cache"}"#, r#"source: "/output""#],
    ),
    (
        "go",
        "cross",
        "ClientFilesystemRead Pull Exec Exec Copy Exec Copy",
        &[r#"args: ["go", "build", "-v", "-tags", "netgo", "-ldflags", "-s -w -X main.version=1.0", "-o", "/output/hello", "./cmd/hello", "./cmd/bye"]"#, r#"GOOS: "linux", GOARCH: "arm64""#],
    ),
    (
        "go",
        "single",
        "ClientFilesystemRead Pull Exec Exec Copy Exec Copy",
        &[r#""-o", "/output/", "./cmd/hello"]"#],
    ),
    (
        "go",
        "both",
        "ClientFilesystemRead Pull Exec Exec Copy Exec Copy",
        &[r#""-o", "/output/", "./cmd/hello", "./cmd/bye"]"#],
    ),
    (
        "go",
        "test",
        "ClientFilesystemRead Pull Exec Exec Copy Exec",
        &[r#"args: ["go", "test", "-v", "-tags", "", "."]"#, r#"id: "unit_mod""#, r#"id: "unit_build""#],
    ),
    (
        "go",
        "testPackages",
        "ClientFilesystemRead Pull Exec Exec Copy Exec",
        &[r#"args: ["go", "test", "-v", "-tags", "integration", "./greet/...", "./cmd/..."]"#, r#"id: "go_builder_mod""#],
    ),
    (
        "go",
        "customImage",
        "ClientFilesystemRead Pull Exec Exec Exec Pull Exec Exec Copy Exec Copy",
        &[r#"source: "index.docker.io/golang:1.17-alpine""#, r#"args: ["apk", "-U", "--no-cache", "add", "make"]"#],
    ),
    (
        "go",
        "configure",
        "Pull Copy Copy Merge",
        &[r#"source: "docker.io/library/golang:latest""#, r#"source: "/usr/local/go""#, r#"dest: "/usr/local/go""#],
    ),
    (
        "go",
        "configureContents",
        "Copy Copy Merge",
        &[r#"dest: "/opt/go""#],
    ),
    (
        "scripts",
        "alpineDefault",
        "Pull",
        &[r#"source: "index.docker.io/alpine:3.15.0@sha256:21a3deaa0d32a8057914f36584b5288d2e5ecc984380bc0118285c70fa8c9300""#],
    ),
    (
        "scripts",
        "alpinePackages",
        "Pull Exec Exec Exec",
        &[r#"source: "index.docker.io/alpine:3.16""#, r#"args: ["apk", "-U", "--no-cache", "add", "curl=7.83.1-r1"]"#],
    ),
    (
        "scripts",
        "image",
        "Pull Exec",
        &[r#"args: ["apk", "-U", "--no-cache", "add", "bash"]"#],
    ),
    (
        "scripts",
        "bashContents",
        "Pull Exec WriteFile Exec ReadFile",
        &[r#"path: "run.sh""#, r#"args: ["bash", "--norc", "-e", "-o", "pipefail", "/bash/scripts/run.sh", "a", "b", "--verbose", "--name", "x", "--off"]"#, r#"path: "/out.txt""#],
    ),
    (
        "scripts",
        "bashFile",
        "ClientFilesystemRead Pull Exec Exec",
        &[r#"path: "./scripts""#, r#"args: ["bash", "--norc", "-e", "-o", "pipefail", "/bash/scripts/hello.sh"]"#],
    ),
    (
        "scripts",
        "bashSimple",
        "WriteFile Pull Exec Exec",
        &[],
    ),
    (
        "scripts",
        "pythonDefault",
        "WriteFile Pull Exec",
        &[r#"source: "python:3.10-alpine""#, r#"args: ["python", "/run/python/run.py", "--fast"]"#],
    ),
    (
        "scripts",
        "pythonDebian",
        "Pull",
        &[r#"source: "python:3.9""#],
    ),
    (
        "scripts",
        "pythonFile",
        "ClientFilesystemRead Pull Pull Exec",
        &[r#"source: "python:3.11""#, r#"args: ["python3", "/run/python/main.py"]"#],
    ),
    (
        "scripts",
        "pwsh",
        "Pull WriteFile Exec",
        &[r#"source: "mcr.microsoft.com/powershell""#, r#"args: ["pwsh", "-File", "/powershell/scripts/run.ps1", "one"]"#],
    ),
    (
        "services",
        "yarnBuild",
        // `script.install` comes before `script.container` in the export
        // field order (checked against `cue export` on a reduced #Script).
        "ClientFilesystemRead Pull Exec Exec Exec Pull Exec Exec Exec WriteFile Exec ReadFile ReadFile Copy WriteFile Exec ReadFile ReadFile Copy",
        &[r#"env: {YARN_CACHE_FOLDER: "/cache/yarn", YARN_OUTPUT_FOLDER: "./build"}"#, r#"id: "default-yarn""#, r#"id: "default-nodejs""#],
    ),
    (
        "services",
        "yarnScript",
        // As `yarnBuild`: `install` before `container`.
        "ClientFilesystemRead Pull Exec Exec Exec Pull Exec Exec Exec WriteFile Exec ReadFile ReadFile Copy WriteFile Exec ReadFile ReadFile Copy",
        &[r#"id: "web-yarn""#, r#"id: "web-nodejs""#],
    ),
    (
        "services",
        "yarnInstall",
        "ClientFilesystemRead Pull Exec Exec Exec WriteFile Exec ReadFile ReadFile Copy",
        &[],
    ),
    (
        "services",
        "nginxAlpine",
        "Pull",
        &[r#"source: "index.docker.io/nginx:stable-alpine""#],
    ),
    (
        "services",
        "nginxDebian",
        "Pull",
        &["source: \"index.docker.io/nginx:stable\"\n"],
    ),
    (
        "services",
        "deploy",
        // `yarnBuild`'s tasks as there (`install` before `container`).
        "ClientFilesystemRead ClientEnv Pull Exec Exec Exec Pull Exec Exec Exec WriteFile Exec Copy WriteFile Exec Copy Pull Exec Exec Exec Exec Exec Source Exec ReadFile ReadFile ReadFile",
        &[r#"args: ["npm", "-g", "install", "netlify-cli@8.6.21"]"#, r#"args: ["bash", "--norc", "-e", "-o", "pipefail", "/bash/scripts/deploy.sh"]"#, r#"NETLIFY_SITE_CREATE: "1""#, r#"NETLIFY_DOMAIN: "example.com""#],
    ),
    (
        "services",
        "deployNoCreate",
        // `yarnBuild`'s tasks as there (`install` before `container`).
        "ClientFilesystemRead ClientEnv Pull Exec Exec Exec Pull Exec Exec Exec WriteFile Exec Copy WriteFile Exec Copy Pull Exec Exec Exec Exec Exec Source Exec ReadFile ReadFile ReadFile",
        &[],
    ),
    (
        "services",
        "repo",
        "GitPull",
        &[r#"ref: "v0.2.36""#],
    ),
    (
        "services",
        "privateRepo",
        "ClientEnv GitPull",
        &[],
    ),
    (
        "services",
        "awsBuild",
        "Source Pull Exec Exec",
        &[r#"source: "amazonlinux:2.0.20220121.0@sha256:f3a37f84f2644095e2c6f6fdf2bf4dbf68d5436c51afcfbfa747a5de391d5d62""#, r#"args: ["yum", "install", "unzip", "-y"]"#, r#"args: ["/scripts/install.sh", "2.4.12"]"#],
    ),
    (
        "services",
        "s3ls",
        "ClientEnv Source Pull Exec Exec Exec ReadFile",
        &[r#""aws --output json --no-cli-pager --region us-east-1 s3 ls s3://bucket > /output.txt""#],
    ),
    (
        "services",
        "s3raw",
        "Source Pull Exec Exec Exec ReadFile",
        &[],
    ),
    (
        "services",
        "awsConfig",
        "ClientFilesystemRead Source Pull Exec Exec Exec",
        &[r#"AWS_CONFIG_FILE: "/aws/config""#],
    ),
    (
        "services",
        "dockerPs",
        "ClientNetwork Pull Exec",
        &[r#"source: "docker:20.10.13-alpine3.15""#, r#"args: ["ps"]"#, r#"type: "socket""#],
    ),
    (
        "services",
        "dockerTcp",
        "ClientFilesystemRead Pull Exec",
        &[r#"DOCKER_HOST: "tcp://10.0.0.1:2376""#],
    ),
    (
        "services",
        "dockerLoad",
        "ClientNetwork Pull Pull Export Exec",
        &[r#"tag: "example/nginx:latest""#, r#"args: ["load", "-i", "/src/image.tar"]"#],
    ),
];

/// The actions `cuedag do` lists in a plan directory.
fn listed_actions(dir: &Path) -> Vec<String> {
    let output = run_in(dir, &["do"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    text.split("Available Actions:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The task kinds of a dry run's numbered lines (` 3. <path> (<Kind>)`).
fn task_kinds(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with("      "))
        .filter_map(|line| {
            let (number, rest) = line.trim_start().split_once(". ")?;
            number.parse::<usize>().ok()?;
            let kind = rest.rsplit_once(" (")?.1.strip_suffix(')')?;
            Some(kind.to_owned())
        })
        .collect()
}

fn plan_dirs() -> Vec<String> {
    let root = fixtures().join("plans/universe");
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().join("plan.cue").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_plan_has_expectations_and_every_expectation_a_plan() {
    let dirs: BTreeSet<String> = plan_dirs().into_iter().collect();
    let expected: BTreeSet<String> = EXPECTED
        .iter()
        .map(|(plan, ..)| (*plan).to_owned())
        .collect();
    assert_eq!(dirs, expected);
}

#[test]
fn every_action_of_every_universe_plan_dry_runs_its_tasks_in_order() {
    let mut failures = Vec::new();
    let mut n_actions = 0;
    for plan in plan_dirs() {
        // A copy: a run must not leave anything in the fixtures.
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixtures().join("plans/universe").join(&plan), dir.path());
        let listed = listed_actions(dir.path());
        let expected: Vec<&Expected> = EXPECTED.iter().filter(|row| row.0 == plan).collect();
        let expected_names: Vec<&str> = expected.iter().map(|row| row.1).collect();
        if listed != expected_names {
            failures.push(format!(
                "{plan}: `cuedag do` lists {listed:?}, expected {expected_names:?}"
            ));
        }
        for (_, action, kinds, needles) in expected {
            n_actions += 1;
            let output = run_in(dir.path(), &["do", action, "--dry-run"]);
            let text = stdout(&output);
            if output.status.code() != Some(0) {
                failures.push(format!(
                    "{plan} {action}: exit {:?}\n{}",
                    output.status.code(),
                    stderr(&output)
                ));
                continue;
            }
            let got = task_kinds(&text).join(" ");
            if got != *kinds {
                failures.push(format!(
                    "{plan} {action}: tasks\n  got:  {got}\n  want: {kinds}\n{text}"
                ));
            }
            for needle in *needles {
                if !text.contains(needle) {
                    failures.push(format!("{plan} {action}: no `{needle}` in\n{text}"));
                }
            }
        }
        assert!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .all(|entry| entry.unwrap().file_name() != "output"),
            "{plan}: a dry run wrote ./output"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(n_actions >= 60, "only {n_actions} actions");
}
