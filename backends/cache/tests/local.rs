//! `type=local`: sharing, incremental re-export, corruption, crashes,
//! concurrency, prune.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{capture_logs, chain_export, count_blobs, export_with_mount, key};
use cuedag_cache::format::{ImageIndex, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_DOCKER_LIST};
use cuedag_cache::local::ANNOTATION_CREATED;
use cuedag_cache::spec::FormatOptions;
use cuedag_cache::{Digest, ImportSelector, LocalCache, PrunePolicy};

const LEN: usize = 64 * 1024;

fn read_index(dir: &Path) -> ImageIndex {
    serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
}

fn tags(dir: &Path) -> Vec<String> {
    let mut tags: Vec<String> = LocalCache::new(dir)
        .entries()
        .unwrap()
        .into_iter()
        .filter_map(|e| e.tag)
        .collect();
    tags.sort();
    tags
}

#[test]
fn export_then_import_finds_every_step_and_fetches_verified_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::new(tmp.path().join("c"));
    let export = export_with_mount(&["pull", "exec", "copy"], &[1, 2, 3], LEN, 7);
    cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();

    let import = cache.import(&ImportSelector::Tag("build".into()));
    let index = import.index();
    assert_eq!(index.len(), 3);
    assert!(index.lookup(&key("missing")).is_none());
    let hit = index.lookup(&key("copy")).unwrap();
    let chain: Vec<&Digest> = hit.layers.iter().map(|l| &l.digest).collect();
    let expected: Vec<&Digest> = export.layers[..3]
        .iter()
        .map(|l| &l.descriptor.digest)
        .collect();
    assert_eq!(chain, expected);
    assert_eq!(hit.created_at, "2022-05-01T10:00:02Z");
    assert_eq!(hit.outputs, Some(serde_json::json!({"step": "copy"})));
    assert_eq!(hit.layers[0].diff_id, export.layers[0].descriptor.diff_id);

    let dest = tmp.path().join("layer");
    assert!(import.fetch_layer_to(&hit.layers[2], &dest));
    assert_eq!(
        fs::read(&dest).unwrap(),
        cuedag_cache::BlobSource::read(&export.layers[2].source).unwrap()
    );
    let mount = index.mount("go-mod").unwrap();
    assert_eq!(mount.digest, export.layers[3].descriptor.digest);
    assert!(import.read_layer(mount).is_some());
    assert_eq!(index.mount_ids().collect::<Vec<_>>(), ["go-mod"]);
}

#[test]
fn two_exports_into_one_dir_share_blobs_and_keep_both_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    // Both actions start from the same two layers (seeds 1 and 2).
    let build = chain_export(&["pull", "deps", "build"], &[1, 2, 3], LEN);
    let test = chain_export(&["pull", "deps", "test"], &[1, 2, 4], LEN);
    let first = cache
        .export(&build, "build", FormatOptions::default())
        .unwrap();
    assert_eq!(first.blobs_written, 5); // 3 layers + config + manifest.
    let second = cache
        .export(&test, "test", FormatOptions::default())
        .unwrap();
    assert_eq!(second.blobs_written, 3); // 1 new layer + config + manifest.
    assert_eq!(second.blobs_present, 2);
    // 4 distinct layers, 2 configs, 2 manifests.
    assert_eq!(count_blobs(&dir), 8);
    assert_eq!(tags(&dir), ["build", "test"]);

    let all = cache.import(&ImportSelector::All);
    for step in ["pull", "deps", "build", "test"] {
        assert!(all.index().lookup(&key(step)).is_some(), "{step}");
    }
    let only_test = cache.import(&ImportSelector::Tag("test".into()));
    assert!(only_test.index().lookup(&key("build")).is_none());
    let by_digest = cache.import(&ImportSelector::Digest(first.manifest.clone()));
    assert!(by_digest.index().lookup(&key("build")).is_some());
    assert!(by_digest.index().lookup(&key("test")).is_none());
}

#[test]
fn unchanged_reexport_writes_nothing_and_a_later_one_only_reorders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    let export = export_with_mount(&["a", "b"], &[1, 2], LEN, 5);
    cache
        .export(
            &chain_export(&["x"], &[9], LEN),
            "other",
            FormatOptions::default(),
        )
        .unwrap();
    let first = cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    let n_blobs = count_blobs(&dir);
    let before = fs::read(dir.join("index.json")).unwrap();
    let mtime = fs::metadata(dir.join("index.json"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));

    // Unchanged and already the newest entry: not a byte written.
    let again = cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    assert_eq!(again.blobs_written, 0);
    assert_eq!(again.bytes_written, 0);
    assert_eq!(again.manifest, first.manifest);
    assert_eq!(count_blobs(&dir), n_blobs);
    assert_eq!(fs::read(dir.join("index.json")).unwrap(), before);
    assert_eq!(
        fs::metadata(dir.join("index.json"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    assert!(fs::read_dir(dir.join("ingest")).unwrap().next().is_none());

    // After another tag was exported, the same export moves back to the end
    // with a new time: only the order and that annotation change.
    cache
        .export(
            &chain_export(&["x"], &[9], LEN),
            "other",
            FormatOptions::default(),
        )
        .unwrap();
    let middle = read_index(&dir);
    let again = cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    assert_eq!(again.blobs_written, 0);
    let after = read_index(&dir);
    let strip = |mut index: ImageIndex| {
        for entry in &mut index.manifests {
            entry.annotations.remove(ANNOTATION_CREATED);
        }
        index.manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        index
    };
    assert_ne!(middle.manifests.last(), after.manifests.last());
    assert_eq!(after.manifests.last().unwrap().digest, first.manifest);
    assert_eq!(strip(middle), strip(after));
    assert_eq!(count_blobs(&dir), n_blobs);
}

#[test]
fn a_corrupt_blob_is_a_miss_with_a_warning_and_the_next_export_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    let export = chain_export(&["a", "b"], &[1, 2], LEN);
    cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    let bad = &export.layers[1].descriptor;
    let path = cache.blob_path(&bad.digest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0xff; // Same size, wrong content.
    fs::write(&path, &bytes).unwrap();

    let import = cache.import(&ImportSelector::All);
    let hit = import.index().lookup(&key("b")).unwrap();
    let dest = tmp.path().join("out");
    let (fetched, logs) = capture_logs(|| import.fetch_layer_to(&hit.layers[1], &dest));
    assert!(!fetched);
    assert!(!dest.exists());
    assert!(
        logs.contains("WARN") && logs.contains("does not match its digest"),
        "{logs}"
    );
    // The other layer is still fine.
    assert!(import.fetch_layer_to(&hit.layers[0], &dest));

    // The bad blob was dropped, so the next export writes it again.
    let report = cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    assert_eq!(report.blobs_written, 1);
    let import = cache.import(&ImportSelector::All);
    let hit = import.index().lookup(&key("b")).unwrap();
    assert!(import.fetch_layer_to(&hit.layers[1], &dest));

    assert!(import.verified_blob_path(&hit.layers[1]).is_some());
    fs::write(cache.blob_path(&bad.digest), &bytes).unwrap();
    let (path, logs) = capture_logs(|| import.verified_blob_path(&hit.layers[1]));
    assert!(path.is_none());
    assert!(logs.contains("does not match its digest"), "{logs}");

    // A missing blob is a miss too.
    assert!(
        !cache.blob_path(&bad.digest).exists(),
        "the corrupt blob was removed"
    );
    let (fetched, logs) = capture_logs(|| import.read_layer(&hit.layers[1]));
    assert!(fetched.is_none());
    assert!(logs.contains("WARN"), "{logs}");
}

#[test]
fn a_corrupt_index_or_config_imports_nothing_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    let export = chain_export(&["a"], &[1], LEN);
    let report = cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();

    // Corrupt manifest blob.
    let manifest_path = cache.blob_path(&report.manifest);
    let good_manifest = fs::read(&manifest_path).unwrap();
    fs::write(&manifest_path, b"{}").unwrap();
    let (import, logs) = capture_logs(|| cache.import(&ImportSelector::All));
    assert!(import.index().is_empty());
    assert!(logs.contains("WARN"), "{logs}");
    fs::write(&manifest_path, &good_manifest).unwrap();
    assert_eq!(cache.import(&ImportSelector::All).index().len(), 1);

    // Corrupt index.json.
    fs::write(dir.join("index.json"), b"{not json").unwrap();
    let (import, logs) = capture_logs(|| cache.import(&ImportSelector::All));
    assert!(import.index().is_empty());
    assert!(logs.contains("not a valid OCI index"), "{logs}");
    // Prune refuses rather than deleting every blob as unreferenced.
    let n_blobs = count_blobs(&dir);
    assert!(cache.prune(&PrunePolicy::default()).is_err());
    assert_eq!(count_blobs(&dir), n_blobs);
    // An export starts a new index.
    cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    assert_eq!(cache.import(&ImportSelector::All).index().len(), 1);

    // No cache at all.
    let (import, logs) =
        capture_logs(|| LocalCache::new(tmp.path().join("none")).import(&ImportSelector::All));
    assert!(import.index().is_empty());
    assert!(logs.contains("no cache to import yet"), "{logs}");
}

#[test]
fn leftovers_of_a_crashed_export_do_not_disturb_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    let export = chain_export(&["a", "b"], &[1, 2], LEN);
    cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    // What a kill -9 may leave: a partial blob in ingest/, a half-written
    // index temp file, and a blob written but never referenced.
    fs::write(dir.join("ingest/blob-partial"), common::bytes(3, 100)).unwrap();
    fs::write(dir.join(".index.json.abc123"), b"{\"schemaVer").unwrap();
    fs::write(dir.join(".oci-layout.xyz"), b"{").unwrap();
    let orphan = common::bytes(4, 100);
    fs::write(cache.blob_path(&Digest::of_bytes(&orphan)), &orphan).unwrap();

    let import = cache.import(&ImportSelector::All);
    assert_eq!(import.index().len(), 2);
    let report = cache
        .export(
            &chain_export(&["c"], &[5], LEN),
            "next",
            FormatOptions::default(),
        )
        .unwrap();
    assert_eq!(report.blobs_written, 3);
    assert_eq!(tags(&dir), ["build", "next"]);

    let pruned = cache.prune(&PrunePolicy::default()).unwrap();
    assert_eq!(pruned.removed_blobs, 1);
    assert!(pruned.removed_entries.is_empty());
    assert!(!dir.join(".index.json.abc123").exists());
    assert!(!dir.join(".oci-layout.xyz").exists());
    assert_eq!(cache.import(&ImportSelector::All).index().len(), 3);
}

#[test]
fn concurrent_exports_from_threads_keep_every_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    std::thread::scope(|scope| {
        for worker in 0..2u64 {
            let dir = &dir;
            scope.spawn(move || {
                let cache = LocalCache::new(dir);
                for round in 0..8u64 {
                    let export =
                        chain_export(&["base", "step"], &[1, 100 * worker + round + 10], 4096);
                    cache
                        .export(
                            &export,
                            &format!("w{worker}-r{round}"),
                            FormatOptions::default(),
                        )
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(tags(&dir).len(), 16);
    let import = LocalCache::new(&dir).import(&ImportSelector::Tag("w1-r7".into()));
    assert_eq!(import.index().len(), 2);
    // 1 shared base layer + 16 distinct step layers + 16 configs + 16 manifests.
    assert_eq!(count_blobs(&dir), 49);
}

/// Exports in a loop when run as a worker (see the tests below); otherwise
/// checks a single worker round.
#[test]
fn worker_export_loop() {
    let mut _solo_dir = None;
    let (dir, name, rounds) = match (
        std::env::var("CUEDAG_CACHE_WORKER_DIR"),
        std::env::var("CUEDAG_CACHE_WORKER_NAME"),
    ) {
        (Ok(dir), Ok(name)) => {
            let rounds = std::env::var("CUEDAG_CACHE_WORKER_ROUNDS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(u64::MAX);
            (std::path::PathBuf::from(dir), name, rounds)
        }
        _ => {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().to_owned();
            _solo_dir = Some(tmp);
            (dir, "solo".to_owned(), 1)
        }
    };
    let cache = LocalCache::new(&dir);
    let seed = name.bytes().map(u64::from).sum::<u64>() * 1000;
    for round in 0..rounds {
        let export = chain_export(&["base", &name], &[1, seed + round], 256 * 1024);
        cache
            .export(&export, &name, FormatOptions::default())
            .unwrap();
    }
    assert!(tags(&dir).contains(&name));
}

fn spawn_worker(dir: &Path, name: &str, rounds: Option<u64>) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "worker_export_loop", "--test-threads=1"])
        .env("CUEDAG_CACHE_WORKER_DIR", dir)
        .env("CUEDAG_CACHE_WORKER_NAME", name)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(rounds) = rounds {
        command.env("CUEDAG_CACHE_WORKER_ROUNDS", rounds.to_string());
    }
    command.spawn().unwrap()
}

#[test]
fn concurrent_exports_from_two_processes_keep_both_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let mut a = spawn_worker(&dir, "alpha", Some(10));
    let mut b = spawn_worker(&dir, "beta", Some(10));
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    assert_eq!(tags(&dir), ["alpha", "beta"]);
    let import = LocalCache::new(&dir).import(&ImportSelector::All);
    assert_eq!(import.index().len(), 3);
}

#[test]
fn kill_9_at_any_moment_leaves_an_importable_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    let stable = chain_export(&["stable"], &[42], LEN);
    cache
        .export(&stable, "stable", FormatOptions::default())
        .unwrap();
    for attempt in 0..6u64 {
        let mut child = spawn_worker(&dir, "victim", None);
        std::thread::sleep(Duration::from_millis(150 + 37 * attempt));
        child.kill().unwrap(); // SIGKILL.
        child.wait().unwrap();
        // index.json always parses and the stable entry always imports.
        let index = read_index(&dir);
        assert!(!index.manifests.is_empty());
        let import = cache.import(&ImportSelector::Tag("stable".into()));
        let hit = import.index().lookup(&key("stable")).unwrap();
        assert!(import.read_layer(&hit.layers[0]).is_some());
        // The victim's last completed export, if any, imports too.
        let victim = cache.import(&ImportSelector::Tag("victim".into()));
        if !victim.manifests.is_empty() {
            assert_eq!(victim.index().len(), 2);
        }
    }
}

#[test]
fn prune_keeps_the_newest_entries_and_drops_unreferenced_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    for (i, tag) in ["one", "two", "three"].iter().enumerate() {
        let export = chain_export(&["base", tag], &[1, 10 + i as u64], LEN);
        cache
            .export(&export, tag, FormatOptions::default())
            .unwrap();
    }
    // Re-exporting `one` makes it the newest.
    cache
        .export(
            &chain_export(&["base", "one"], &[1, 10], LEN),
            "one",
            FormatOptions::default(),
        )
        .unwrap();
    assert_eq!(count_blobs(&dir), 10);
    let report = cache
        .prune(&PrunePolicy {
            keep_last: Some(2),
            max_size: None,
        })
        .unwrap();
    assert_eq!(report.removed_entries, ["two"]);
    assert_eq!(report.removed_blobs, 3); // Its layer, config and manifest.
    assert_eq!(tags(&dir), ["one", "three"]);
    assert_eq!(count_blobs(&dir), 7);
    let import = cache.import(&ImportSelector::All);
    assert!(import.index().lookup(&key("two")).is_none());
    let hit = import.index().lookup(&key("three")).unwrap();
    assert!(hit.layers.iter().all(|l| import.read_layer(l).is_some()));

    // Size budget: one entry (2 layers of 64 KiB plus small JSON) fits in
    // 150 KiB, two do not.
    let report = cache
        .prune(&PrunePolicy {
            keep_last: None,
            max_size: Some(150 * 1024),
        })
        .unwrap();
    assert_eq!(report.removed_entries, ["three"]);
    assert_eq!(tags(&dir), ["one"]);
    assert!(report.kept_bytes <= 150 * 1024);
    assert_eq!(count_blobs(&dir), 4);
    let report = cache
        .prune(&PrunePolicy {
            keep_last: Some(0),
            max_size: None,
        })
        .unwrap();
    assert_eq!(report.removed_entries, ["one"]);
    assert_eq!(count_blobs(&dir), 0);
}

#[test]
fn buildkit_0_10_index_form_with_docker_media_types_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    let export = chain_export(&["a", "b"], &[1, 2], LEN);
    let format = FormatOptions {
        oci_mediatypes: false,
        image_manifest: false,
    };
    let report = cache.export(&export, "legacy", format).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(cache.blob_path(&report.manifest)).unwrap()).unwrap();
    assert_eq!(manifest["mediaType"], MEDIA_TYPE_DOCKER_LIST);
    let entries = manifest["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["mediaType"], MEDIA_TYPE_DOCKER_LAYER_GZIP);
    assert_eq!(
        entries[2]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );
    let import = cache.import(&ImportSelector::Tag("legacy".into()));
    let hit = import.index().lookup(&key("b")).unwrap();
    assert_eq!(hit.layers.len(), 2);
    assert!(hit.layers.iter().all(|l| import.read_layer(l).is_some()));
    // Prune follows the layers listed in an index too.
    let pruned = cache.prune(&PrunePolicy::default()).unwrap();
    assert_eq!(pruned.removed_blobs, 0);
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::new(tmp.path().join("c"));
    let export = chain_export(&["a"], &[1], 100);
    let err = cache
        .export(&export, "bad tag", FormatOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), "C0205");
    // A layer whose bytes do not match its digest is refused.
    let mut wrong = export.clone();
    wrong.layers[0].source = cuedag_cache::BlobSource::Bytes(vec![1, 2, 3]);
    let err = cache
        .export(&wrong, "x", FormatOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), "C0202", "{err}");
    // A record naming a layer the export lacks is refused.
    let mut missing = export.clone();
    missing.layers.clear();
    let err = cache
        .export(&missing, "x", FormatOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), "C0203", "{err}");
    assert!(tags(&tmp.path().join("c")).is_empty());
}

#[test]
fn prune_racing_exports_never_orphans_an_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (dir, done) = (&dir, &done);
        scope.spawn(move || {
            // Stop the pruner even if this thread panics.
            struct Done<'a>(&'a std::sync::atomic::AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let _done = Done(done);
            let cache = LocalCache::new(dir);
            for round in 0..12u64 {
                let export = chain_export(&["base", "step"], &[1, 50 + round], 64 * 1024);
                cache
                    .export(&export, &format!("r{round}"), FormatOptions::default())
                    .unwrap();
            }
        });
        scope.spawn(move || {
            let cache = LocalCache::new(dir);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                cache.prune(&PrunePolicy::default()).unwrap();
                // flock is not fair: leave the exporter a chance at the lock.
                std::thread::sleep(Duration::from_millis(2));
            }
        });
    });
    let cache = LocalCache::new(&dir);
    assert_eq!(tags(&dir).len(), 12);
    for round in 0..12 {
        let import = cache.import(&ImportSelector::Tag(format!("r{round}")));
        let hit = import.index().lookup(&key("step")).unwrap();
        for layer in &hit.layers {
            assert!(import.read_layer(layer).is_some(), "round {round}");
        }
    }
}

#[test]
fn an_unreadable_index_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    // A directory where index.json should be: reading it fails (not as
    // "missing" nor as "invalid JSON").
    fs::create_dir_all(dir.join("index.json/keep")).unwrap();
    let cache = LocalCache::new(&dir);
    let err = cache
        .export(
            &chain_export(&["a"], &[1], 10),
            "build",
            FormatOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "C0201", "{err}");
    assert!(dir.join("index.json/keep").is_dir());
    let (import, logs) = capture_logs(|| cache.import(&ImportSelector::All));
    assert!(import.index().is_empty());
    assert!(logs.contains("cannot read index.json"), "{logs}");
    assert!(cache.prune(&PrunePolicy::default()).is_err());
}

#[test]
fn verify_finds_and_removes_corrupt_blobs_and_reports_missing_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cache = LocalCache::new(&dir);
    let export = chain_export(&["a", "b"], &[1, 2], LEN);
    cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    let report = cache.verify().unwrap();
    assert_eq!(report.valid, 4);
    assert!(report.corrupt.is_empty() && report.missing.is_empty());

    let corrupt = &export.layers[0].descriptor.digest;
    fs::write(cache.blob_path(corrupt), vec![0u8; LEN]).unwrap();
    let missing = &export.layers[1].descriptor.digest;
    fs::remove_file(cache.blob_path(missing)).unwrap();
    let (report, logs) = capture_logs(|| cache.verify().unwrap());
    assert_eq!(report.valid, 2);
    assert_eq!(report.corrupt, std::slice::from_ref(corrupt));
    assert_eq!(report.missing, std::slice::from_ref(missing));
    assert!(logs.contains("WARN"), "{logs}");
    assert!(!cache.blob_path(corrupt).exists());
    // The next export repairs both.
    let repaired = cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    assert_eq!(repaired.blobs_written, 2);
    assert_eq!(cache.verify().unwrap().valid, 4);
}
