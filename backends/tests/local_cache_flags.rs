//! `--cache-to type=local` / `--cache-from type=local` through the local
//! backend: export from store A, import into an empty store B (the exec does
//! not run again, the output is identical), an unchanged re-export adds no
//! blob, a corrupt blob is a miss when its files are needed. The exec tests need root and
//! `scripts/services up` (then `source .ci/state/env`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod local_common;

use std::path::Path;

use cuedag_backends::Backend;
use cuedag_evaluator::plan::{FsRef, TaskValue};
use local_common::{listing, out, require_registry, s, Harness};

async fn begin(h: &mut Harness, to: &[String], from: &[String]) {
    let options = h.cache_options(to, from);
    h.prepare(options).await;
}

fn blob_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Builds a small tree with filesystem tasks only (no service needed).
async fn fs_build(h: &Harness) -> TaskValue {
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
    out(&h
        .run(
            "WriteFile",
            TaskValue::structure([
                ("input", dir),
                ("path", s("/app/bin/hello.txt")),
                ("contents", s("hello from the cache\n")),
                ("permissions", TaskValue::Int(0o644)),
            ]),
        )
        .await)
}

#[tokio::test]
async fn fs_steps_round_trip_through_a_local_cache_dir() {
    let cache = tempfile::tempdir().unwrap();
    let to = vec![format!(
        "type=local,mode=max,dest={}",
        cache.path().display()
    )];
    let from = vec![format!("type=local,src={}", cache.path().display())];

    let mut a = Harness::new();
    begin(&mut a, &to, &[]).await;
    let built = fs_build(&a).await;
    a.backend.finish().await.unwrap();
    let written = blob_count(cache.path());
    assert!(
        written >= 3,
        "expected layers + config + manifest, got {written}"
    );
    let expected = listing(&a.write_dir(&built, "out").await);

    let mut b = Harness::new();
    begin(&mut b, &[], &from).await;
    let imported = fs_build(&b).await;
    assert_eq!(imported, built, "the imported FS id differs");
    let logs = b.logs();
    assert_eq!(
        logs.iter().filter(|line| *line == "CACHED").count(),
        2,
        "{logs:?}"
    );
    assert_eq!(listing(&b.write_dir(&imported, "out").await), expected);
    b.backend.finish().await.unwrap();
}

#[tokio::test]
async fn two_actions_keep_their_own_entries_and_share_blobs() {
    let cache = tempfile::tempdir().unwrap();
    let to = vec![format!(
        "type=local,mode=max,dest={}",
        cache.path().display()
    )];
    // Two actions of one project: the same store, so the second action's
    // steps are cache hits with the very same layers (files written by two
    // separate builds would differ in their mtimes).
    let mut counts = Vec::new();
    let mut h = Harness::new();
    for action in ["build", "test"] {
        if action == "test" {
            h = h.rerun();
        }
        let mut options = h.cache_options(&to, &[]);
        options.action = vec![action.to_string()];
        h.prepare(options).await;
        fs_build(&h).await;
        h.backend.finish().await.unwrap();
        counts.push(blob_count(cache.path()));
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.path().join("index.json")).unwrap()).unwrap();
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    tags.sort();
    assert_eq!(tags, ["build", "test"], "one entry per action");
    // The same steps: the second action's export stores no new layer; at
    // most its own manifest (the config is identical, so shared too).
    assert!(
        counts[1] <= counts[0] + 1,
        "blobs after build: {}, after test: {}",
        counts[0],
        counts[1]
    );
}

#[tokio::test]
async fn unchanged_reexport_adds_no_blob() {
    let cache = tempfile::tempdir().unwrap();
    let to = vec![format!(
        "type=local,mode=max,dest={}",
        cache.path().display()
    )];
    let mut a = Harness::new();
    begin(&mut a, &to, &[]).await;
    fs_build(&a).await;
    a.backend.finish().await.unwrap();
    let first = blob_count(cache.path());
    let mut a = a.rerun();
    begin(&mut a, &to, &[]).await;
    fs_build(&a).await;
    a.backend.finish().await.unwrap();
    assert_eq!(blob_count(cache.path()), first);
}

#[tokio::test]
async fn corrupt_blob_is_a_miss_and_the_step_reruns() {
    let cache = tempfile::tempdir().unwrap();
    let to = vec![format!("type=local,dest={}", cache.path().display())];
    let from = vec![format!("type=local,src={}", cache.path().display())];
    let mut a = Harness::new();
    begin(&mut a, &to, &[]).await;
    let built = fs_build(&a).await;
    let expected = listing(&a.write_dir(&built, "out").await);
    a.backend.finish().await.unwrap();
    // Corrupt every gzip layer blob (configs and manifests are JSON).
    for entry in std::fs::read_dir(cache.path().join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let mut b = Harness::new();
    begin(&mut b, &[], &from).await;
    // The hits are lazy: nothing is fetched until the files are needed.
    let imported = fs_build(&b).await;
    assert_eq!(imported, built);
    // Writing the tree needs both layers; their blobs are corrupt, so both
    // steps run again (with a warning) and the output is still right.
    let written = listing(&b.write_dir(&imported, "out").await);
    assert_eq!(written, expected);
    let logs = b.logs();
    assert_eq!(
        logs.iter()
            .filter(|line| line.contains("running the step again"))
            .count(),
        2,
        "{logs:?}"
    );
}

#[tokio::test]
async fn exec_is_not_rerun_after_import_into_an_empty_store() {
    require_registry();
    let cache = tempfile::tempdir().unwrap();
    let to = vec![format!(
        "type=local,mode=max,dest={}",
        cache.path().display()
    )];
    let from = vec![format!("type=local,src={}", cache.path().display())];
    let cache_id = format!("cache-flags-counter-{}", std::process::id());
    let exec = |image: &TaskValue| {
        TaskValue::structure([
            ("input", image.clone()),
            (
                "args",
                TaskValue::List(vec![
                    s("sh"),
                    s("-c"),
                    s("echo run >> /counter/count; mkdir -p /out; echo built > /out/result"),
                ]),
            ),
            ("workdir", s("/")),
            ("user", s("root:root")),
            ("always", TaskValue::Bool(false)),
            (
                "mounts",
                TaskValue::structure([(
                    "counter",
                    TaskValue::structure([
                        ("dest", s("/counter")),
                        ("type", s("cache")),
                        (
                            "contents",
                            TaskValue::structure([
                                ("id", s(&cache_id)),
                                ("concurrency", s("shared")),
                            ]),
                        ),
                    ]),
                )]),
            ),
        ])
    };
    let runs = |h: &Harness| {
        std::fs::read_to_string(h.backend.store().cache_mount_path(&cache_id).join("count"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let pull = TaskValue::structure([("source", s("alpine:3.15")), ("resolveMode", s("default"))]);

    let mut a = Harness::new();
    begin(&mut a, &to, &[]).await;
    let image = out(&a.run("Pull", pull.clone()).await);
    let built = out(&a.run("Exec", exec(&image)).await);
    assert_eq!(runs(&a), 1);
    a.backend.finish().await.unwrap();
    let expected = listing(&a.write_dir(&built, "out").await.join("out"));
    let blobs = blob_count(cache.path());

    let mut b = Harness::new();
    begin(&mut b, &to, &from).await;
    let image = out(&b.run("Pull", pull).await);
    let imported = out(&b.run("Exec", exec(&image)).await);
    assert_eq!(runs(&b), 0, "the exec ran in the empty store");
    assert!(b.logs().iter().any(|line| line == "CACHED"));
    assert_eq!(imported, built);
    assert_eq!(
        listing(&b.write_dir(&imported, "out").await.join("out")),
        expected
    );
    b.backend.finish().await.unwrap();
    assert_eq!(
        blob_count(cache.path()),
        blobs,
        "an unchanged export added blobs"
    );
}

#[tokio::test]
async fn fs_steps_round_trip_through_the_registry() {
    require_registry();
    let addr = std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let reference = format!(
        "{addr}/cuedag-test/cache-flags-{}-{nanos}:main",
        std::process::id()
    );
    let to = vec![format!("type=registry,mode=max,ref={reference}")];
    let from = vec![format!("type=registry,ref={reference}")];

    let mut a = Harness::new();
    begin(&mut a, &to, &[]).await;
    let built = fs_build(&a).await;
    a.backend.finish().await.unwrap();
    let expected = listing(&a.write_dir(&built, "out").await);

    let mut b = Harness::new();
    begin(&mut b, &[], &from).await;
    let imported = fs_build(&b).await;
    assert_eq!(imported, built);
    let logs = b.logs();
    assert_eq!(
        logs.iter().filter(|line| *line == "CACHED").count(),
        2,
        "{logs:?}"
    );
    assert_eq!(listing(&b.write_dir(&imported, "out").await), expected);
    b.backend.finish().await.unwrap();
}

/// An exec appending a line to a file of the cache mount `cache_id`, its
/// `tag` making distinct steps.
fn counting_exec(image: &TaskValue, cache_id: &str, tag: &str) -> TaskValue {
    TaskValue::structure([
        ("input", image.clone()),
        (
            "args",
            TaskValue::List(vec![
                s("sh"),
                s("-c"),
                s(&format!(
                    "echo {tag} >> /counter/count; mkdir -p /out; echo {tag} > /out/result"
                )),
            ]),
        ),
        ("workdir", s("/")),
        ("user", s("root:root")),
        ("always", TaskValue::Bool(false)),
        (
            "mounts",
            TaskValue::structure([(
                "counter",
                TaskValue::structure([
                    ("dest", s("/counter")),
                    ("type", s("cache")),
                    (
                        "contents",
                        TaskValue::structure([("id", s(cache_id)), ("concurrency", s("shared"))]),
                    ),
                ]),
            )]),
        ),
    ])
}

fn mount_lines(h: &Harness, cache_id: &str) -> Vec<String> {
    std::fs::read_to_string(h.backend.store().cache_mount_path(cache_id).join("count"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn cache_mounts_travel_with_the_cache_when_asked() {
    require_registry();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().display();
    let to_with = vec![format!("type=local,mode=max,dest={dir},cache-mounts=true")];
    let from_with = vec![format!("type=local,src={dir},cache-mounts=true")];
    let from_without = vec![format!("type=local,src={dir}")];
    let cache_id = format!("cache-mounts-counter-{}", std::process::id());
    let pull = TaskValue::structure([("source", s("alpine:3.15")), ("resolveMode", s("default"))]);

    // Store A: one exec fills the mount; the export carries it.
    let mut a = Harness::new();
    begin(&mut a, &to_with, &[]).await;
    let image = out(&a.run("Pull", pull.clone()).await);
    a.run("Exec", counting_exec(&image, &cache_id, "first"))
        .await;
    a.backend.finish().await.unwrap();
    assert_eq!(mount_lines(&a, &cache_id), ["first"]);
    let blobs = blob_count(cache.path());

    // An unchanged rerun (the exec hits, the mount is as it was) adds no
    // blob, mount included.
    let mut a = a.rerun();
    begin(&mut a, &to_with, &[]).await;
    let image = out(&a.run("Pull", pull.clone()).await);
    a.run("Exec", counting_exec(&image, &cache_id, "first"))
        .await;
    a.backend.finish().await.unwrap();
    assert_eq!(blob_count(cache.path()), blobs);

    // Store B, importing without cache-mounts: a new step runs on an empty
    // mount.
    let mut b = Harness::new();
    begin(&mut b, &[], &from_without).await;
    let image = out(&b.run("Pull", pull.clone()).await);
    b.run("Exec", counting_exec(&image, &cache_id, "second"))
        .await;
    assert_eq!(mount_lines(&b, &cache_id), ["second"]);
    b.backend.finish().await.unwrap();

    // Store C, importing with cache-mounts: the mount is restored before
    // the new step runs.
    let mut c = Harness::new();
    begin(&mut c, &[], &from_with).await;
    let image = out(&c.run("Pull", pull.clone()).await);
    c.run("Exec", counting_exec(&image, &cache_id, "second"))
        .await;
    assert_eq!(mount_lines(&c, &cache_id), ["first", "second"]);
    c.backend.finish().await.unwrap();

    // Without cache-mounts on the export, no mount is exported.
    let plain = tempfile::tempdir().unwrap();
    let mut d = Harness::new();
    let to_plain = vec![format!(
        "type=local,mode=max,dest={}",
        plain.path().display()
    )];
    begin(&mut d, &to_plain, &[]).await;
    let image = out(&d.run("Pull", pull).await);
    d.run("Exec", counting_exec(&image, &cache_id, "third"))
        .await;
    d.backend.finish().await.unwrap();
    let import =
        cuedag_cache::LocalCache::new(plain.path()).import(&cuedag_cache::ImportSelector::All);
    assert_eq!(import.index().mount_ids().count(), 0);
    let import =
        cuedag_cache::LocalCache::new(cache.path()).import(&cuedag_cache::ImportSelector::All);
    assert_eq!(
        import.index().mount_ids().collect::<Vec<_>>(),
        [cache_id.as_str()]
    );
}

#[tokio::test]
async fn cache_mounts_travel_through_the_registry() {
    require_registry();
    let addr = std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let reference = format!(
        "{addr}/cuedag-test/cache-mounts-{}-{nanos}:main",
        std::process::id()
    );
    let to = vec![format!(
        "type=registry,mode=max,ref={reference},cache-mounts=true"
    )];
    let from = vec![format!("type=registry,ref={reference},cache-mounts=true")];
    let cache_id = format!("cache-mounts-registry-{}-{nanos}", std::process::id());
    let pull = TaskValue::structure([("source", s("alpine:3.15")), ("resolveMode", s("default"))]);

    let mut a = Harness::new();
    begin(&mut a, &to, &[]).await;
    let image = out(&a.run("Pull", pull.clone()).await);
    a.run("Exec", counting_exec(&image, &cache_id, "first"))
        .await;
    a.backend.finish().await.unwrap();

    let mut b = Harness::new();
    begin(&mut b, &[], &from).await;
    let image = out(&b.run("Pull", pull).await);
    b.run("Exec", counting_exec(&image, &cache_id, "second"))
        .await;
    assert_eq!(mount_lines(&b, &cache_id), ["first", "second"]);
    b.backend.finish().await.unwrap();
}
