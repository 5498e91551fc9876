//! The persistent-cache guide's flows (`../shared/seeds/persistent-cache.md`)
//! through the real `cuedag` binary, on a copy of `fixtures/go-hello` (the
//! guide's `build.cue`, verbatim):
//!
//! - export to a local directory, wipe the store, import: no step runs and
//!   `./output/hello` is byte-identical;
//! - the same through the registry (`mode=max`);
//! - two actions exporting to one directory share their blobs;
//! - an unchanged rerun adds no blob;
//! - a corrupt blob is a warning and a rebuild;
//! - a kill -9 during an export leaves the previous cache usable;
//! - bad specs are errors naming the flag and the key;
//! - secrets never reach the exported cache nor the progress log;
//! - with `cache-mounts=true`, the Go build cache travels too: a changed
//!   source on an empty store recompiles only the changed package.
//!
//! One cold build (the only one that runs `go build` from nothing) is shared
//! by every test: its store is then warm, and each test exports from it (all
//! steps hit) or imports into a new, empty store.
//!
//! Needs what `.ci/run` sets up: root, bubblewrap, and `scripts/services up`
//! (registry + stand-in images) with its settings in the environment
//! (`source .ci/state/env`). Without them the tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(unused_imports)]
use common::*;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Services and helpers.

/// The step tasks (execs and copies) that started in this run.
fn steps(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|line| line.strip_suffix(" | computing"))
        .filter_map(|line| line.split_whitespace().last())
        .filter(|task| task.ends_with("._exec") || task.ends_with("._copy"))
        .map(str::to_owned)
        .collect()
}

/// The step tasks that ran (did not come from a cache).
fn ran(log: &str) -> Vec<String> {
    steps(log)
        .into_iter()
        .filter(|task| {
            !task_lines(log, task)
                .iter()
                .any(|line| line.ends_with("| CACHED"))
        })
        .collect()
}

/// Whether `go build` compiled the package `package`.
fn compiled(log: &str, package: &str) -> bool {
    task_lines(log, "actions.build.container._exec")
        .iter()
        .any(|line| line.ends_with(&format!("| {package}")))
}

/// Asserts that the run's steps all came from a cache.
fn assert_nothing_ran(output: &Output) {
    let log = stderr(output);
    let steps = steps(&log);
    assert!(steps.len() >= 4, "too few steps seen: {steps:?}\n{log}");
    assert_eq!(ran(&log), Vec::<String>::new(), "{log}");
    assert!(!compiled(&log, "example.com/hello"), "{log}");
}

fn run_hello(project: &Path) -> String {
    let output = Command::new(project.join("output/hello")).output().unwrap();
    assert_ok(&output);
    stdout(&output)
}

/// A copy of `fixtures/go-hello` in a new temporary directory.
fn go_hello() -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("go-hello"), project.path());
    project
}

/// Copies the directory tree `from` (a cache directory) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The blob files of a cache directory.
fn blobs(cache: &Path) -> BTreeSet<String> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `tag → manifest digest` of a cache directory's `index.json`.
fn entries(cache: &Path) -> Vec<(String, String)> {
    read_json(&cache.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                entry["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The blobs (hex) a manifest of the cache directory references, itself
/// included.
fn referenced(cache: &Path, manifest: &str) -> BTreeSet<String> {
    let hex = |digest: &str| digest.trim_start_matches("sha256:").to_owned();
    let manifest_json = read_json(&cache.join("blobs/sha256").join(hex(manifest)));
    let mut out = BTreeSet::from([hex(manifest)]);
    if let Some(config) = manifest_json["config"]["digest"].as_str() {
        out.insert(hex(config));
    }
    for list in ["layers", "manifests"] {
        for item in manifest_json[list].as_array().into_iter().flatten() {
            out.insert(hex(item["digest"].as_str().unwrap()));
        }
    }
    out
}

/// The contents of a blob, gunzipped when it is gzip.
fn plain_bytes(bytes: &[u8]) -> Vec<u8> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes.to_vec()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

// ---------------------------------------------------------------------------
// The shared cold build.

struct Seed {
    /// The project the cold build ran in (unchanged since).
    project: PathBuf,
    /// The store of the cold build: warm from then on.
    store: PathBuf,
    /// What the cold build exported (`--cache-to type=local,mode=max`).
    cache: PathBuf,
    /// `./output/hello` of the cold build.
    hello: Vec<u8>,
}

/// Runs the cold build once per test binary, under the target's temporary
/// directory (emptied first, so every run starts cold).
fn seed() -> &'static Seed {
    static SEED: OnceLock<Seed> = OnceLock::new();
    SEED.get_or_init(|| {
        require_services();
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache_seed");
        let _ = std::fs::remove_dir_all(&root);
        let project = root.join("project");
        let store = root.join("store");
        let cache = root.join("cache");
        std::fs::create_dir_all(&project).unwrap();
        copy_dir(&fixtures().join("go-hello"), &project);
        let dest = format!("type=local,mode=max,dest={}", cache.display());
        let cold = run_with_store(&project, &store, &["do", "build", "--cache-to", &dest], &[]);
        assert_ok(&cold);
        let log = stderr(&cold);
        assert!(compiled(&log, "example.com/hello/greet"), "{log}");
        assert!(ran(&log).len() >= 4, "{log}");
        assert_eq!(run_hello(&project), "Hello, world!\n");
        assert_eq!(entries(&cache).len(), 1, "{log}");
        Seed {
            hello: std::fs::read(project.join("output/hello")).unwrap(),
            project,
            store,
            cache,
        }
    })
}

// ---------------------------------------------------------------------------
// (a) type=local: export, wipe the store, import.

#[test]
fn local_export_then_import_into_an_empty_store_runs_no_step() {
    let seed = seed();
    let cache = tempfile::tempdir().unwrap();
    copy_tree(&seed.cache, cache.path());
    let project = go_hello();
    let store = tempfile::tempdir().unwrap();
    let src = format!("type=local,src={}", cache.path().display());
    let warm = run_with_store(
        project.path(),
        store.path(),
        &["do", "build", "--cache-from", &src],
        &[],
    );
    assert_ok(&warm);
    assert_nothing_ran(&warm);
    assert_eq!(
        std::fs::read(project.path().join("output/hello")).unwrap(),
        seed.hello,
        "./output/hello differs from the exported build's"
    );
    assert_eq!(run_hello(project.path()), "Hello, world!\n");
}

// ---------------------------------------------------------------------------
// (b) type=registry, mode=max.

#[test]
fn registry_export_then_import_into_an_empty_store_runs_no_step() {
    let addr = require_services();
    let seed = seed();
    let reference = format!("{addr}/cuedag-test/{}/cache", unique("seed"));
    let to = format!("type=registry,mode=max,ref={reference}");
    let from = format!("type=registry,ref={reference}");
    let export = run_with_store(
        &seed.project,
        &seed.store,
        &["do", "build", "--cache-to", &to],
        &[],
    );
    assert_ok(&export);

    let project = go_hello();
    let store = tempfile::tempdir().unwrap();
    let import = run_with_store(
        project.path(),
        store.path(),
        &["do", "build", "--cache-to", &to, "--cache-from", &from],
        &[],
    );
    assert_ok(&import);
    assert_nothing_ran(&import);
    assert_eq!(
        std::fs::read(project.path().join("output/hello")).unwrap(),
        seed.hello
    );
    assert_eq!(run_hello(project.path()), "Hello, world!\n");
}

// ---------------------------------------------------------------------------
// (c) Two actions exporting into one directory.

/// A second action next to the guide's `build` (the guide's file is kept as
/// it is): the same source, built into another binary name.
const SECOND_ACTION: &str = r#"package ci

import (
	"dagger.io/dagger"
	"universe.dagger.io/go"
)

dagger.#Plan & {
	client: filesystem: ".": read: contents: dagger.#FS

	actions: hello2: go.#Build & {
		source:     client.filesystem.".".read.contents
		binaryName: "hello2"
	}
}
"#;

#[test]
fn two_actions_exporting_to_one_dir_keep_both_entries_and_share_blobs() {
    let seed = seed();
    let project = go_hello();
    std::fs::write(project.path().join("second.cue"), SECOND_ACTION).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dest = format!("type=local,mode=max,dest={}", cache.path().display());

    let first = run_with_store(
        project.path(),
        &seed.store,
        &["do", "build", "--cache-to", &dest],
        &[],
    );
    assert_ok(&first);
    let after_first = blobs(cache.path());
    let first_entries = entries(cache.path());
    assert_eq!(first_entries.len(), 1);
    let build_blobs = referenced(cache.path(), &first_entries[0].1);
    let mtimes = |names: &BTreeSet<String>| -> Vec<std::time::SystemTime> {
        names
            .iter()
            .map(|name| {
                std::fs::metadata(cache.path().join("blobs/sha256").join(name))
                    .unwrap()
                    .modified()
                    .unwrap()
            })
            .collect()
    };
    let build_mtimes = mtimes(&build_blobs);

    let second = run_with_store(
        project.path(),
        &seed.store,
        &["do", "hello2", "--cache-to", &dest],
        &[],
    );
    assert_ok(&second);
    let after_second = blobs(cache.path());
    let all_entries = entries(cache.path());
    let tags: BTreeSet<&str> = all_entries.iter().map(|(tag, _)| tag.as_str()).collect();
    assert_eq!(tags, BTreeSet::from(["build", "hello2"]), "{all_entries:?}");
    let hello2_manifest = &all_entries
        .iter()
        .find(|(tag, _)| tag == "hello2")
        .unwrap()
        .1;
    let hello2_blobs = referenced(cache.path(), hello2_manifest);

    // The first entry is intact: every blob it uses is still there, and was
    // not rewritten.
    assert!(build_blobs.is_subset(&after_second));
    assert_eq!(mtimes(&build_blobs), build_mtimes, "shared blobs rewritten");
    // Both entries are complete, and the directory holds each blob once:
    // exactly the union of what the two entries use.
    assert!(hello2_blobs.is_subset(&after_second));
    let union: BTreeSet<String> = build_blobs.union(&hello2_blobs).cloned().collect();
    assert_eq!(after_second, union);
    assert!(after_first.is_subset(&after_second));
    // They do share: the source copy (and the image steps) are common.
    let shared: Vec<&String> = build_blobs.intersection(&hello2_blobs).collect();
    assert!(
        !shared.is_empty(),
        "no blob shared between {build_blobs:?} and {hello2_blobs:?}"
    );
    assert_eq!(
        after_second.len(),
        build_blobs.len() + hello2_blobs.len() - shared.len()
    );
}

// ---------------------------------------------------------------------------
// (d) An unchanged rerun with --cache-to adds no blob.

#[test]
fn unchanged_rerun_with_cache_to_adds_no_blob() {
    let seed = seed();
    let cache = tempfile::tempdir().unwrap();
    copy_tree(&seed.cache, cache.path());
    let before = blobs(cache.path());
    let index_before = std::fs::read(cache.path().join("index.json")).unwrap();
    let dest = format!("type=local,mode=max,dest={}", cache.path().display());
    let rerun = run_with_store(
        &seed.project,
        &seed.store,
        &["do", "build", "--cache-to", &dest],
        &[],
    );
    assert_ok(&rerun);
    assert_eq!(ran(&stderr(&rerun)), Vec::<String>::new());
    assert_eq!(blobs(cache.path()), before, "the rerun added blobs");
    assert_eq!(
        std::fs::read(cache.path().join("index.json")).unwrap(),
        index_before,
        "the rerun changed index.json"
    );
    let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("ingest"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------
// (e) A corrupt blob: warning, rebuild, correct output.

#[test]
fn corrupt_blob_warns_and_rebuilds() {
    let seed = seed();
    let cache = tempfile::tempdir().unwrap();
    copy_tree(&seed.cache, cache.path());
    // The layer `./output` is written from: the one with `hello` at its
    // root (the go build's own layer has it under `output/`). Corrupting
    // it matters however lazily layers are fetched.
    let corrupted = blobs(cache.path())
        .into_iter()
        .find(|name| {
            let bytes = std::fs::read(cache.path().join("blobs/sha256").join(name)).unwrap();
            bytes.starts_with(&[0x1f, 0x8b])
                && tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()))
                    .entries()
                    .unwrap()
                    .any(|entry| {
                        let path = entry.unwrap().path().unwrap().into_owned();
                        path == Path::new("hello") || path == Path::new("./hello")
                    })
        })
        .expect("no layer with `hello` at its root");
    let path = cache.path().join("blobs/sha256").join(&corrupted);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let project = go_hello();
    let store = tempfile::tempdir().unwrap();
    let from = format!("type=local,src={}", cache.path().display());
    // Through the environment, as in the guide's GitHub Actions example.
    let import = run_with_store(
        project.path(),
        store.path(),
        &["do", "build"],
        &[("DAGGER_CACHE_FROM", &from)],
    );
    assert_ok(&import);
    let log = stderr(&import);
    assert!(
        log.lines()
            .any(|line| line.contains("WARN") && line.contains(&corrupted)),
        "no warning naming the corrupt blob:\n{log}"
    );
    // The step whose layer it was runs again: up front, or when its files
    // are needed if layers are fetched lazily.
    assert!(
        !ran(&log).is_empty() || log.contains("running the step again"),
        "nothing was rebuilt:\n{log}"
    );
    assert_eq!(run_hello(project.path()), "Hello, world!\n");
}

// ---------------------------------------------------------------------------
// (f) kill -9 during an export.

#[test]
fn kill_during_export_leaves_the_previous_cache_importable() {
    let seed = seed();
    let cache = tempfile::tempdir().unwrap();
    copy_tree(&seed.cache, cache.path());
    let before = blobs(cache.path());
    let index_before = std::fs::read(cache.path().join("index.json")).unwrap();

    // A changed source, so that the export has new blobs to write.
    let changed = go_hello();
    let main_go = changed.path().join("main.go");
    let source = std::fs::read_to_string(&main_go).unwrap();
    std::fs::write(&main_go, source.replace("\"world\"", "\"killer\"")).unwrap();

    // Hold the index lock: the export writes its blobs, then waits for the
    // lock to replace index.json; it is killed while it waits, i.e. in the
    // middle of the export.
    let lock_path = cache.path().join("index.json.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    fs4::fs_std::FileExt::lock_exclusive(&lock).unwrap();

    let dest = format!("type=local,mode=max,dest={}", cache.path().display());
    let mut child = Command::new(bin())
        .current_dir(changed.path())
        .args(["do", "build", "--log-format", "plain", "--cache-to", &dest])
        .env("CUEDAG_STORE", &seed.store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if blobs(cache.path()).len() > before.len() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut log = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut log)
                .unwrap();
            panic!("the export ended ({status}) before it wrote a blob:\n{log}");
        }
        assert!(Instant::now() < deadline, "no new blob after 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let it reach the lock, then kill it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the export finished");
    child.kill().unwrap();
    child.wait().unwrap();
    fs4::fs_std::FileExt::unlock(&lock).unwrap();
    drop(lock);

    assert_eq!(
        std::fs::read(cache.path().join("index.json")).unwrap(),
        index_before,
        "index.json changed under a killed export"
    );
    // The previous cache still imports: the original source builds with no
    // step run in an empty store.
    let project = go_hello();
    let store = tempfile::tempdir().unwrap();
    let from = format!("type=local,src={}", cache.path().display());
    let import = run_with_store(
        project.path(),
        store.path(),
        &["do", "build", "--cache-from", &from],
        &[],
    );
    assert_ok(&import);
    assert_nothing_ran(&import);
    assert_eq!(
        std::fs::read(project.path().join("output/hello")).unwrap(),
        seed.hello
    );
    // And the directory takes the next export.
    let again = run_with_store(
        changed.path(),
        &seed.store,
        &["do", "build", "--cache-to", &dest],
        &[],
    );
    assert_ok(&again);
    assert_eq!(entries(cache.path()).len(), 1);
    assert_ne!(
        std::fs::read(cache.path().join("index.json")).unwrap(),
        index_before
    );
}

// ---------------------------------------------------------------------------
// cache-mounts=true: the Go build cache travels with the cache.

#[test]
fn cache_mounts_make_a_changed_source_build_incrementally_on_an_empty_store() {
    let seed = seed();
    let cache = tempfile::tempdir().unwrap();
    let dest = format!(
        "type=local,mode=max,dest={},cache-mounts=true",
        cache.path().display()
    );
    let export = run_with_store(
        &seed.project,
        &seed.store,
        &["do", "build", "--cache-to", &dest],
        &[],
    );
    assert_ok(&export);
    let (_, manifest) = entries(cache.path()).pop().unwrap();
    let manifest = read_json(
        &cache
            .path()
            .join("blobs/sha256")
            .join(manifest.trim_start_matches("sha256:")),
    );
    let config = read_json(
        &cache.path().join("blobs/sha256").join(
            manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    );
    let mounts: Vec<&str> = config["cuedag.mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mount| mount["id"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"go_builder_build"), "{config}");

    // main.go changes, greet/ does not: on an empty store, only the main
    // package is compiled; greet comes from the restored build cache (the
    // cold build, with an empty cache, compiled both).
    let project = go_hello();
    let main_go = project.path().join("main.go");
    let source = std::fs::read_to_string(&main_go).unwrap();
    std::fs::write(&main_go, source.replace("\"world\"", "\"mounts\"")).unwrap();
    let store = tempfile::tempdir().unwrap();
    let from = format!(
        "type=local,src={},cache-mounts=true",
        cache.path().display()
    );
    let import = run_with_store(
        project.path(),
        store.path(),
        &["do", "build", "--cache-from", &from],
        &[],
    );
    assert_ok(&import);
    let log = stderr(&import);
    // The image steps come from the cache; the source copy, the go build
    // and the export copy run again (their inputs changed).
    let ran = ran(&log);
    assert!(
        ran.iter().all(|task| !task.contains("._img.")),
        "an image step ran: {ran:?}\n{log}"
    );
    assert!(
        ran.iter()
            .any(|task| task == "actions.build.container._exec"),
        "{log}"
    );
    assert!(compiled(&log, "example.com/hello"), "{log}");
    assert!(
        !compiled(&log, "example.com/hello/greet"),
        "greet was recompiled: the build cache was not restored\n{log}"
    );
    assert_eq!(run_hello(project.path()), "Hello, mounts!\n");
}

// ---------------------------------------------------------------------------
// (g) Bad specs.

/// Flags, environment, then the source and the key the error must name.
type BadSpec<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn bad_specs_fail_naming_the_flag_and_the_key() {
    let project = go_hello();
    let store = tempfile::tempdir().unwrap();
    let cases: &[BadSpec] = &[
        (&["--cache-to", "type=nope"], &[], "--cache-to", "\"nope\""),
        (&["--cache-to", "type=local"], &[], "--cache-to", "\"dest\""),
        (
            &["--cache-to", "type=local,dest=d,mode=maximum"],
            &[],
            "--cache-to",
            "\"mode\"",
        ),
        (
            &["--cache-to", "type=local,dest=d,mdoe=max"],
            &[],
            "--cache-to",
            "\"mdoe\"",
        ),
        (
            &["--cache-from", "type=local,dest=d"],
            &[],
            "--cache-from",
            "\"dest\"",
        ),
        (
            &["--cache-from", "type=registry,ref=Not A Ref"],
            &[],
            "--cache-from",
            "\"ref\"",
        ),
        (
            &[],
            &[("DAGGER_CACHE_TO", "type=local,dest=d,ignore-error=perhaps")],
            "DAGGER_CACHE_TO",
            "\"ignore-error\"",
        ),
        (
            &[],
            &[("DAGGER_CACHE_FROM", "type=registry")],
            "DAGGER_CACHE_FROM",
            "\"ref\"",
        ),
        (
            &["--cache-to", "type=local,dest=d,cache-mounts=maybe"],
            &[],
            "--cache-to",
            "\"cache-mounts\"",
        ),
    ];
    for (flags, env, source, key) in cases {
        let mut args = vec!["do", "build"];
        args.extend_from_slice(flags);
        let output = run_with_store(project.path(), store.path(), &args, env);
        assert_exit(&output, 1);
        let message = stderr(&output);
        assert!(
            message.contains(source) && message.contains(key),
            "{flags:?} {env:?}: expected {source} and {key} in:\n{message}"
        );
        assert!(message.contains("column"), "{message}");
        assert!(
            !project.path().join("output").exists(),
            "{flags:?}: the plan ran"
        );
    }
}

// ---------------------------------------------------------------------------
// (h) Secrets stay out of the exported cache and of the log.

const SECRET_PLAN: &str = r#"package ci

import (
	"dagger.io/dagger"
	"dagger.io/dagger/core"
)

dagger.#Plan & {
	client: env: CUEDAG_TEST_TOKEN: dagger.#Secret
	client: filesystem: "./output": write: contents: actions.use.output

	actions: {
		_image: core.#Pull & {source: "alpine:3.15"}
		_run: core.#Exec & {
			input: _image.output
			env: TOKEN: client.env.CUEDAG_TEST_TOKEN
			mounts: token: {
				dest:     "/run/secrets/token"
				contents: client.env.CUEDAG_TEST_TOKEN
			}
			args: ["sh", "-c", """
				echo "the token is $TOKEN"
				mkdir -p /out
				printf %s "$TOKEN" | wc -c > /out/env-length
				wc -c < /run/secrets/token > /out/mount-length
				"""]
		}
		use: core.#Subdir & {input: _run.output, path: "/out"}
	}
}
"#;

/// Every blob of the registry repository `name` reachable from `tag`.
fn registry_blobs(addr: &str, name: &str, tag: &str) -> Vec<Vec<u8>> {
    let get = |path: &str| -> Vec<u8> {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: \
             application/vnd.oci.image.manifest.v1+json, \
             application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.docker.distribution.manifest.list.v2+json\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        assert!(
            head.starts_with("HTTP/1.") && head.contains(" 200 "),
            "GET {path}: {head}"
        );
        response[split + 4..].to_vec()
    };
    let manifest = get(&format!("/v2/{name}/manifests/{tag}"));
    let json: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut digests = Vec::new();
    if let Some(config) = json["config"]["digest"].as_str() {
        digests.push(config.to_owned());
    }
    for list in ["layers", "manifests"] {
        for item in json[list].as_array().into_iter().flatten() {
            digests.push(item["digest"].as_str().unwrap().to_owned());
        }
    }
    let mut out = vec![manifest];
    for digest in digests {
        out.push(get(&format!("/v2/{name}/blobs/{digest}")));
    }
    out
}

#[test]
fn secrets_are_absent_from_the_exported_cache_and_the_log() {
    let addr = require_services();
    let secret = unique("s3cr3t-t0ken");
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("plan.cue"), SECRET_PLAN).unwrap();
    let store = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let name = format!("cuedag-test/{}/cache", unique("secret"));
    let dest = format!("type=local,mode=max,dest={}", cache.path().display());
    let to_registry = format!("type=registry,mode=max,ref={addr}/{name}");
    let run = run_with_store(
        project.path(),
        store.path(),
        &["do", "use", "--cache-to", &dest],
        &[
            ("CUEDAG_TEST_TOKEN", &secret),
            ("DAGGER_CACHE_TO", &to_registry),
        ],
    );
    assert_ok(&run);
    let length = format!("{}\n", secret.len());
    for file in ["env-length", "mount-length"] {
        let written = std::fs::read_to_string(project.path().join("output").join(file)).unwrap();
        assert_eq!(written.trim(), length.trim(), "{file}");
    }

    // The log: the command printed it, the progress shows it redacted.
    let log = format!("{}{}", stdout(&run), stderr(&run));
    assert!(log.contains("the token is"), "{log}");
    assert!(!log.contains(&secret), "the secret is in the log:\n{log}");

    // Every file of the cache directory, gzip layers unpacked.
    let mut files = 0;
    let mut exported_exec = false;
    for entry in walk(cache.path()) {
        let bytes = plain_bytes(&std::fs::read(&entry).unwrap());
        files += 1;
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "the secret is in {}",
            entry.display()
        );
        exported_exec |= contains(&bytes, b"env-length");
    }
    assert!(files >= 4, "too few files in the cache: {files}");
    assert!(exported_exec, "the exec's result was not exported");

    // Every blob of the registry cache.
    let registry = registry_blobs(&addr, &name, "latest");
    assert!(registry.len() >= 3, "{} blobs", registry.len());
    let mut exported_exec = false;
    for blob in &registry {
        let bytes = plain_bytes(blob);
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "the secret is in a registry blob"
        );
        exported_exec |= contains(&bytes, b"env-length");
    }
    assert!(exported_exec, "the exec's result was not pushed");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}
