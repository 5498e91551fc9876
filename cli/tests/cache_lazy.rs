//! Lazy import of a persistent cache, end to end on the seed plan
//! (`fixtures/go-hello`, action `build`): after an export, the store is
//! wiped and the build imports the cache (`--cache-from`, plus `--cache-to`
//! as in the seed's command line). No step runs, `./output` is identical,
//! and no layer blob of the Go image is fetched: `#Pull` reads only the
//! manifest and config, the cache hits register their layers, and only the
//! last step's layer is fetched, to write `./output`. The same through the
//! registry. A later build that must run the exec fetches the image layers
//! then.
//!
//! Needs what `.ci/run` sets up: root, bubblewrap, and `scripts/services up`
//! (registry + stand-in images) with its settings in the environment
//! (`source .ci/state/env`). Without them the tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

fn do_build(project: &Path, store: &Path, flags: &[&str]) -> Output {
    let mut args = vec!["do", "build", "--log-format", "plain"];
    args.extend_from_slice(flags);
    let output = run_with_store(project, store, &args, &[]);
    assert_exit(&output, 0);
    output
}

/// The cached steps of the seed plan.
const STEPS: &[&str] = &[
    "actions.build.container._img._dag.\"1\"._exec",
    "actions.build.container._img._dag.\"2\"._exec",
    "actions.build.container._copy._copy",
    "actions.build.container._exec",
    "actions.build.container.export._directories.\"/output\"._subdir._copy",
];

/// The blob digests of the Go image's layers, from the lazy-layer records
/// `#Pull` wrote in `store`.
fn image_layer_blobs(store: &Path) -> BTreeSet<String> {
    let mut blobs = BTreeSet::new();
    for entry in std::fs::read_dir(store.join("lazy")).unwrap() {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        for source in record["sources"].as_array().into_iter().flatten() {
            if source["from"] == "image" {
                blobs.insert(source["blob"]["digest"].as_str().unwrap().to_owned());
            }
        }
    }
    blobs
}

fn stored_blobs(store: &Path) -> BTreeSet<String> {
    std::fs::read_dir(store.join("blobs/sha256"))
        .into_iter()
        .flatten()
        .map(|entry| format!("sha256:{}", entry.unwrap().file_name().to_string_lossy()))
        .collect()
}

fn file_count(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            n += file_count(&entry.path());
        } else {
            n += 1;
        }
    }
    n
}

/// Cold build with an export, wipe, import: the checks of the module docs.
fn round_trip(to: &str, from: &str, local_cache: Option<&Path>) {
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    copy_dir(&fixtures().join("go-hello"), &project);

    let cold_store = work.path().join("cold-store");
    do_build(&project, &cold_store, &["--cache-to", to]);
    let expected = std::fs::read(project.join("output/hello")).unwrap();
    let image_blobs = image_layer_blobs(&cold_store);
    assert!(!image_blobs.is_empty(), "#Pull recorded no image layer");
    assert!(
        image_blobs.is_subset(&stored_blobs(&cold_store)),
        "the cold build ran the exec, so it fetched the image layers"
    );
    let files_before = local_cache.map(file_count);

    // Wipe: a new store, no output.
    std::fs::remove_dir_all(project.join("output")).unwrap();
    let store = work.path().join("store");
    let output = do_build(&project, &store, &["--cache-to", to, "--cache-from", from]);
    let log = stderr(&output) + &stdout(&output);
    for step in STEPS {
        assert!(cached(&log, step), "{step} did not hit the cache:\n{log}");
    }
    assert!(!log.contains("| example.com/hello"), "go build ran:\n{log}");
    assert_eq!(
        std::fs::read(project.join("output/hello")).unwrap(),
        expected,
        "./output differs"
    );
    let fetched: Vec<_> = image_blobs
        .intersection(&stored_blobs(&store))
        .cloned()
        .collect();
    assert!(fetched.is_empty(), "image layers fetched: {fetched:?}");
    assert_eq!(
        std::fs::read_dir(store.join("layers")).unwrap().count(),
        2,
        "only the source directory and the output layer are extracted"
    );
    if let (Some(dir), Some(before)) = (local_cache, files_before) {
        assert_eq!(file_count(dir), before, "the unchanged export wrote files");
    }

    // A changed source runs the exec: the image layers are fetched then.
    let greet = project.join("greet/greet.go");
    let mut source = std::fs::read_to_string(&greet).unwrap();
    source.push_str("\n// changed\n");
    std::fs::write(&greet, source).unwrap();
    let output = do_build(&project, &store, &[]);
    let log = stderr(&output) + &stdout(&output);
    assert!(
        !cached(&log, "actions.build.container._exec"),
        "the changed source hit the cache:\n{log}"
    );
    assert!(image_blobs.is_subset(&stored_blobs(&store)));
    assert!(project.join("output/hello").is_file());
}

#[test]
fn local_import_after_wipe_fetches_only_the_output_layer() {
    require_services();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().display();
    round_trip(
        &format!("type=local,mode=max,dest={dir}"),
        &format!("type=local,src={dir}"),
        Some(cache.path()),
    );
}

#[test]
fn registry_import_after_wipe_fetches_only_the_output_layer() {
    let addr = require_services();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let reference = format!(
        "{addr}/cuedag-test/lazy-{}-{nanos}:build",
        std::process::id()
    );
    round_trip(
        &format!("type=registry,mode=max,ref={reference}"),
        &format!("type=registry,ref={reference}"),
        None,
    );
}
