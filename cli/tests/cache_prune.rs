//! `cuedag cache prune --dir D [--keep N] [--max-size SIZE]` and `cuedag
//! cache verify --dir D` on cache directories written by `cuedag do
//! --cache-to type=local`. The plan uses filesystem tasks only (no image, no
//! sandbox), so these tests need no service.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// Three actions over one shared step: their entries share its layer.
const PLAN: &str = r#"package ci

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	actions: {
		_base: core.#Mkdir & {input: dagger.#Scratch, path: "/shared"}
		_shared: core.#WriteFile & {
			input:    _base.output
			path:     "/shared/common.txt"
			contents: "used by every action\n"
		}
		a: core.#WriteFile & {input: _shared.output, path: "/a.txt", contents: "only in a\n"}
		b: core.#WriteFile & {input: _shared.output, path: "/b.txt", contents: "only in b\n"}
		c: core.#WriteFile & {input: _shared.output, path: "/c.txt", contents: "only in c\n"}
	}
}
"#;

struct Fixture {
    project: tempfile::TempDir,
    store: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Fixture {
    /// Exports actions a, b and c (in that order) into one directory.
    fn new() -> Fixture {
        let fixture = Fixture {
            project: tempfile::tempdir().unwrap(),
            store: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
        };
        std::fs::write(fixture.project.path().join("plan.cue"), PLAN).unwrap();
        for action in ["a", "b", "c"] {
            let dest = format!(
                "type=local,mode=max,dest={}",
                fixture.cache.path().display()
            );
            let output = fixture.cuedag(&["do", action, "--cache-to", &dest]);
            assert_exit(&output, 0);
        }
        assert_eq!(fixture.tags(), ["a", "b", "c"]);
        fixture
    }

    fn cuedag(&self, args: &[&str]) -> Output {
        let store = self.store.path().display().to_string();
        run_in_env(self.project.path(), args, &[("CUEDAG_STORE", &store)])
    }

    fn dir(&self) -> &Path {
        self.cache.path()
    }

    fn prune(&self, options: &[&str]) -> Output {
        let dir = self.dir().display().to_string();
        let mut args = vec!["cache", "prune", "--dir", &dir];
        args.extend_from_slice(options);
        self.cuedag(&args)
    }

    fn index(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("index.json")).unwrap()).unwrap()
    }

    fn tags(&self) -> Vec<String> {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                entry["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn manifest_of(&self, tag: &str) -> String {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .map(|entry| entry["digest"].as_str().unwrap().to_owned())
            .unwrap()
    }

    fn blob_path(&self, hex: &str) -> std::path::PathBuf {
        self.dir().join("blobs/sha256").join(hex)
    }

    fn blobs(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.dir().join("blobs/sha256"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The blobs (hex) the entry `tag` uses: manifest, config, layers.
    fn referenced(&self, tag: &str) -> BTreeSet<String> {
        let hex = |digest: &str| digest.trim_start_matches("sha256:").to_owned();
        let manifest = hex(&self.manifest_of(tag));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.blob_path(&manifest)).unwrap()).unwrap();
        let mut out = BTreeSet::from([manifest]);
        out.insert(hex(json["config"]["digest"].as_str().unwrap()));
        for layer in json["layers"].as_array().unwrap() {
            out.insert(hex(layer["digest"].as_str().unwrap()));
        }
        out
    }

    fn size_of(&self, blobs: &BTreeSet<String>) -> u64 {
        blobs
            .iter()
            .map(|hex| std::fs::metadata(self.blob_path(hex)).unwrap().len())
            .sum()
    }

    /// Imports the cache into an empty store and runs `action`: every step
    /// must come from the cache.
    fn assert_imports(&self, action: &str) {
        let store = tempfile::tempdir().unwrap();
        let from = format!("type=local,src={}", self.dir().display());
        let output = run_in_env(
            self.project.path(),
            &["do", action, "--cache-from", &from],
            &[("CUEDAG_STORE", &store.path().display().to_string())],
        );
        assert_exit(&output, 0);
        let log = stderr(&output);
        let computing = log.lines().filter(|l| l.ends_with("| computing")).count();
        let cached = log.lines().filter(|l| l.ends_with("| CACHED")).count();
        assert!(computing >= 3 && cached == computing, "{log}");
    }
}

#[test]
fn keep_removes_the_oldest_entries_and_their_own_blobs_only() {
    let fixture = Fixture::new();
    let a_blobs = fixture.referenced("a");
    let b_blobs = fixture.referenced("b");
    let c_blobs = fixture.referenced("c");
    let shared: BTreeSet<String> = a_blobs.intersection(&b_blobs).cloned().collect();
    assert!(!shared.is_empty(), "the entries share no blob");

    let output = fixture.prune(&["--keep", "2"]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("removed 1 entries (a)"),
        "{}",
        stdout(&output)
    );
    assert_eq!(fixture.tags(), ["b", "c"]);
    let kept: BTreeSet<String> = b_blobs.union(&c_blobs).cloned().collect();
    assert_eq!(fixture.blobs(), kept, "exactly the blobs of b and c remain");
    assert!(
        shared.is_subset(&fixture.blobs()),
        "a shared blob was removed"
    );
    assert!(!a_blobs.is_subset(&fixture.blobs()));
    fixture.assert_imports("b");
    fixture.assert_imports("c");
}

#[test]
fn max_size_removes_oldest_entries_until_the_rest_fits() {
    let fixture = Fixture::new();
    let c_blobs = fixture.referenced("c");
    let limit = fixture.size_of(&c_blobs);
    let output = fixture.prune(&["--max-size", &limit.to_string()]);
    assert_exit(&output, 0);
    assert_eq!(fixture.tags(), ["c"], "{}", stdout(&output));
    assert_eq!(fixture.blobs(), c_blobs);
    fixture.assert_imports("c");

    let output = fixture.prune(&["--max-size", "0"]);
    assert_exit(&output, 0);
    assert!(fixture.tags().is_empty());
    assert!(fixture.blobs().is_empty(), "{:?}", fixture.blobs());
}

#[test]
fn prune_without_options_removes_only_unreferenced_files() {
    let fixture = Fixture::new();
    let before = fixture.blobs();
    let index_before = std::fs::read(fixture.dir().join("index.json")).unwrap();
    // What a killed export leaves: a blob no entry names, an old partial
    // write in ingest/ and a recent one (maybe an export in progress).
    let orphan = "0".repeat(64);
    std::fs::write(fixture.blob_path(&orphan), b"orphan").unwrap();
    let old_ingest = fixture.dir().join("ingest/blob-old");
    let new_ingest = fixture.dir().join("ingest/blob-new");
    std::fs::write(&old_ingest, b"partial").unwrap();
    std::fs::write(&new_ingest, b"partial").unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old_ingest)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    let output = fixture.prune(&[]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("removed 0 entries and 1 blobs"),
        "{}",
        stdout(&output)
    );
    assert_eq!(fixture.blobs(), before);
    assert_eq!(
        std::fs::read(fixture.dir().join("index.json")).unwrap(),
        index_before,
        "index.json rewritten though no entry was removed"
    );
    assert!(!old_ingest.exists());
    assert!(new_ingest.exists());
}

#[test]
fn prune_waits_for_the_index_lock() {
    let fixture = Fixture::new();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(fixture.dir().join("index.json.lock"))
        .unwrap();
    fs4::fs_std::FileExt::lock_exclusive(&lock).unwrap();
    let mut child = Command::new(bin())
        .current_dir(fixture.project.path())
        .args(["cache", "prune", "--keep", "1", "--dir"])
        .arg(fixture.dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let early = child.try_wait().unwrap();
    assert!(
        early.is_none(),
        "prune did not wait for the lock: {early:?}"
    );
    assert_eq!(fixture.tags(), ["a", "b", "c"]);
    fs4::fs_std::FileExt::unlock(&lock).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(fixture.tags(), ["c"]);
}

#[test]
fn verify_reports_and_removes_corrupt_blobs() {
    let fixture = Fixture::new();
    let output = fixture.cuedag(&[
        "cache",
        "verify",
        "--dir",
        &fixture.dir().display().to_string(),
    ]);
    assert_exit(&output, 0);
    let layer = fixture
        .referenced("a")
        .into_iter()
        .find(|hex| !fixture.referenced("b").contains(hex))
        .unwrap();
    std::fs::write(fixture.blob_path(&layer), b"corrupt").unwrap();
    let output = fixture.cuedag(&[
        "cache",
        "verify",
        "--dir",
        &fixture.dir().display().to_string(),
    ]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains(&format!("corrupt: sha256:{layer}")),
        "{}",
        stdout(&output)
    );
    assert!(!fixture.blob_path(&layer).exists());
}

#[test]
fn bad_arguments_are_errors() {
    let fixture = Fixture::new();
    let before = fixture.blobs();
    let output = fixture.prune(&["--max-size", "lots"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("--max-size"),
        "{}",
        stderr(&output)
    );
    let output = fixture.prune(&["--keep", "many"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--keep"), "{}", stderr(&output));

    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("blobs/sha256")).unwrap();
    std::fs::write(empty.path().join("blobs/sha256/x"), b"not a cache").unwrap();
    let dir = empty.path().display().to_string();
    let output = fixture.cuedag(&["cache", "prune", "--dir", &dir]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("not a cache directory"),
        "{}",
        stderr(&output)
    );
    assert!(empty.path().join("blobs/sha256/x").exists());
    let missing = empty.path().join("missing").display().to_string();
    let output = fixture.cuedag(&["cache", "prune", "--dir", &missing]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("no cache directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fixture.blobs(), before);
}
