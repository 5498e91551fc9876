//! `mode=min` and `mode=max` of `--cache-to`, counted in the exported cache
//! config: both modes keep every step's key (BuildKit's chain of keys),
//! `max` exports the layers of every step, `min` only those of the final
//! results. Filesystem tasks only: no service needed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod local_common;

use std::path::Path;

use cuedag_backends::Backend;
use cuedag_evaluator::plan::{FsRef, TaskValue};
use local_common::{listing, out, s, Harness};

async fn begin(h: &mut Harness, to: &[String], from: &[String]) {
    let mut options = h.cache_options(to, from);
    options.action = vec!["build".into()];
    h.prepare(options).await;
}

/// Three steps: `/app/bin` (intermediate), a file in it (intermediate),
/// then `/app` copied alone onto scratch (the final result).
async fn three_steps(h: &Harness) -> (TaskValue, TaskValue) {
    let dir = out(&h
        .run(
            "Mkdir",
            TaskValue::structure([
                ("input", TaskValue::Fs(FsRef::Scratch)),
                ("path", s("/app/bin")),
                ("permissions", TaskValue::Int(0o755)),
                ("parents", TaskValue::Bool(true)),
            ]),
        )
        .await);
    let file = out(&h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", dir),
                ("path", s("/app/bin/tool.sh")),
                ("contents", s("echo modes\n")),
                ("permissions", TaskValue::Int(0o755)),
            ]),
        )
        .await);
    let result = out(&h
        .run(
            "Copy",
            TaskValue::structure([
                ("input", TaskValue::Fs(FsRef::Scratch)),
                ("contents", file.clone()),
                ("source", s("/app")),
                ("dest", s("/")),
            ]),
        )
        .await);
    (file, result)
}

/// (records, records with a result, layer blobs) of the entry `tag`.
fn counts(dir: &Path, tag: &str) -> (usize, usize, usize) {
    let read = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no entry `{tag}` in {index}"));
    let manifest = read(entry["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    let records = config["records"].as_array().unwrap();
    let with_result = records
        .iter()
        .filter(|r| r["layers"].as_array().is_some_and(|l| !l.is_empty()))
        .count();
    let blobs = manifest["layers"].as_array().unwrap().len();
    (records.len(), with_result, blobs)
}

#[tokio::test]
async fn max_exports_every_step_and_min_only_the_final_result() {
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().display();
    let to = vec![
        format!("type=local,mode=max,dest={dest},tag=max"),
        format!("type=local,mode=min,dest={dest},tag=min"),
    ];
    let mut h = Harness::new();
    begin(&mut h, &to, &[]).await;
    three_steps(&h).await;
    h.backend.finish().await.unwrap();
    assert_eq!(counts(cache.path(), "max"), (3, 3, 3), "mode=max");
    assert_eq!(counts(cache.path(), "min"), (3, 1, 1), "mode=min");
}

#[tokio::test]
async fn min_is_the_default_mode() {
    let cache = tempfile::tempdir().unwrap();
    let to = vec![format!("type=local,dest={}", cache.path().display())];
    let mut h = Harness::new();
    begin(&mut h, &to, &[]).await;
    three_steps(&h).await;
    h.backend.finish().await.unwrap();
    assert_eq!(counts(cache.path(), "build"), (3, 1, 1));
}

#[tokio::test]
async fn min_import_skips_every_step_and_rebuilds_an_intermediate_only_when_needed() {
    let cache = tempfile::tempdir().unwrap();
    let to = vec![format!(
        "type=local,mode=min,dest={}",
        cache.path().display()
    )];
    let from = vec![format!("type=local,src={}", cache.path().display())];
    let mut a = Harness::new();
    begin(&mut a, &to, &[]).await;
    let (file, result) = three_steps(&a).await;
    a.backend.finish().await.unwrap();
    // Written after the export: a tree written out is a final result.
    let expected_result = listing(&a.write_dir(&result, "result").await);
    let expected_file = listing(&a.write_dir(&file, "file").await);

    let mut b = Harness::new();
    begin(&mut b, &[], &from).await;
    let (imported_file, imported_result) = three_steps(&b).await;
    assert_eq!((&imported_file, &imported_result), (&file, &result));
    assert_eq!(
        b.logs().iter().filter(|line| *line == "CACHED").count(),
        3,
        "every step is a hit"
    );
    // The final result's blob is in the cache.
    assert_eq!(
        listing(&b.write_dir(&imported_result, "result").await),
        expected_result
    );
    let logs = b.logs();
    assert!(!logs.iter().any(|line| line.contains("again")), "{logs:?}");
    // The intermediate steps' layers are not: needing them runs both again,
    // once, even for two tasks that need them at the same time.
    let (first, second) = tokio::join!(
        b.write_dir(&imported_file, "file"),
        b.write_dir(&imported_file, "file-again")
    );
    assert_eq!(listing(&first), expected_file);
    assert_eq!(listing(&second), expected_file);
    let logs = b.logs();
    assert_eq!(
        logs.iter()
            .filter(|line| line.contains("running the step again"))
            .count(),
        2,
        "{logs:?}"
    );
}
