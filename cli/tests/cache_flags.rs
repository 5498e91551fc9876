//! `--cache-to` / `--cache-from` behaviour that needs no image nor sandbox
//! (the plan uses filesystem tasks only): `ignore-error`, unreachable
//! import sources, and flags plus `DAGGER_CACHE_*` adding up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::path::Path;
use std::process::Output;

const PLAN: &str = r#"package ci

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	actions: a: core.#WriteFile & {input: dagger.#Scratch, path: "/a.txt", contents: "a\n"}
}
"#;

/// An address where nothing listens (port 1 on loopback).
const DEAD_REGISTRY: &str = "127.0.0.1:1";

fn project() -> (tempfile::TempDir, tempfile::TempDir) {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("plan.cue"), PLAN).unwrap();
    (project, tempfile::tempdir().unwrap())
}

fn cuedag(project: &Path, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let store = store.display().to_string();
    let mut all_env = vec![("CUEDAG_STORE", store.as_str())];
    all_env.extend_from_slice(env);
    run_in_env(project, args, &all_env)
}

fn entries(cache: &Path) -> usize {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    index["manifests"].as_array().unwrap().len()
}

fn manifest(cache: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn ignore_error_turns_a_failed_export_into_a_warning() {
    let (project, store) = project();
    let dead = format!("type=registry,ref={DEAD_REGISTRY}/x/cache");
    let output = cuedag(
        project.path(),
        store.path(),
        &["do", "a", "--cache-to", &dead],
        &[],
    );
    assert_exit(&output, 1);
    let message = stderr(&output);
    assert!(
        message.contains("failed to execute plan: --cache-to: cache export failed"),
        "{message}"
    );

    let ignored = format!("{dead},ignore-error=true");
    let output = cuedag(
        project.path(),
        store.path(),
        &["do", "a", "--cache-to", &ignored],
        &[],
    );
    assert_exit(&output, 0);
    let message = stderr(&output);
    assert!(
        message
            .lines()
            .any(|line| line.contains("WARN") && line.contains("(ignored)")),
        "{message}"
    );
}

#[test]
fn unreachable_import_sources_are_warnings_not_failures() {
    let (project, store) = project();
    let missing = project.path().join("no-such-cache");
    let local = format!("type=local,src={}", missing.display());
    let registry = format!("type=registry,ref={DEAD_REGISTRY}/y/cache");
    let output = cuedag(
        project.path(),
        store.path(),
        &["do", "a", "--cache-from", &local, "--cache-from", &registry],
        &[],
    );
    assert_exit(&output, 0);
    let message = stderr(&output);
    assert!(
        message
            .lines()
            .any(|line| line.contains("WARN") && line.contains("cache not imported")),
        "{message}"
    );
    assert!(!missing.exists(), "an import created the directory");
}

#[test]
fn flags_and_environment_add_up() {
    let (project, store) = project();
    let by_flag = tempfile::tempdir().unwrap();
    let by_env = tempfile::tempdir().unwrap();
    let flag = format!("type=local,mode=max,dest={}", by_flag.path().display());
    let env = format!("type=local,mode=max,dest={}", by_env.path().display());
    let output = cuedag(
        project.path(),
        store.path(),
        &["do", "a", "--cache-to", &flag],
        &[("DAGGER_CACHE_TO", &env)],
    );
    assert_exit(&output, 0);
    assert_eq!(entries(by_flag.path()), 1);
    assert_eq!(entries(by_env.path()), 1);
    // The same export went to both.
    assert_eq!(manifest(by_flag.path()), manifest(by_env.path()));

    // The import through the variable on a fresh store: the step comes
    // from the cache.
    let fresh = tempfile::tempdir().unwrap();
    let from = format!("type=local,src={}", by_env.path().display());
    let output = cuedag(
        project.path(),
        fresh.path(),
        &["do", "a"],
        &[("DAGGER_CACHE_FROM", &from)],
    );
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains("actions.a | CACHED"),
        "{}",
        stderr(&output)
    );
}
