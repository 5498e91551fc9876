//! `type=registry` logic against an in-memory registry that counts calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use common::{capture_logs, chain_export, export_with_mount, key};
use cuedag_cache::spec::FormatOptions;
use cuedag_cache::{Digest, RegistryCache, RemoteBlobs, RemoteManifest};

/// Polls a future whose every await is ready (the in-memory remote).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("registry unavailable")]
struct Unavailable;

#[derive(Default)]
struct Counts {
    head: usize,
    get: Vec<Digest>,
    put: Vec<Digest>,
    manifests_put: usize,
}

#[derive(Default)]
struct MemoryRegistry {
    blobs: Mutex<HashMap<Digest, Vec<u8>>>,
    manifests: Mutex<HashMap<String, RemoteManifest>>,
    counts: Mutex<Counts>,
    down: bool,
}

impl MemoryRegistry {
    fn reset_counts(&self) {
        *self.counts.lock().unwrap() = Counts::default();
    }
}

impl RemoteBlobs for MemoryRegistry {
    type Error = Unavailable;

    async fn head_blob(&self, digest: &Digest) -> Result<Option<u64>, Unavailable> {
        if self.down {
            return Err(Unavailable);
        }
        self.counts.lock().unwrap().head += 1;
        Ok(self
            .blobs
            .lock()
            .unwrap()
            .get(digest)
            .map(|b| b.len() as u64))
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Unavailable> {
        if self.down {
            return Err(Unavailable);
        }
        self.counts.lock().unwrap().get.push(digest.clone());
        Ok(self.blobs.lock().unwrap().get(digest).cloned())
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<(), Unavailable> {
        if self.down {
            return Err(Unavailable);
        }
        self.counts.lock().unwrap().put.push(digest.clone());
        self.blobs.lock().unwrap().insert(digest.clone(), bytes);
        Ok(())
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RemoteManifest>, Unavailable> {
        if self.down {
            return Err(Unavailable);
        }
        let manifests = self.manifests.lock().unwrap();
        let found = manifests.get(reference).cloned().or_else(|| {
            manifests
                .values()
                .find(|m| Digest::of_bytes(&m.bytes).as_str() == reference)
                .cloned()
        });
        Ok(found)
    }

    async fn put_manifest(
        &self,
        reference: &str,
        manifest: RemoteManifest,
    ) -> Result<(), Unavailable> {
        if self.down {
            return Err(Unavailable);
        }
        self.counts.lock().unwrap().manifests_put += 1;
        self.manifests
            .lock()
            .unwrap()
            .insert(reference.to_owned(), manifest);
        Ok(())
    }
}

#[test]
fn export_pushes_only_missing_blobs() {
    let registry = MemoryRegistry::default();
    let cache = RegistryCache::new(&registry);
    let build = export_with_mount(&["pull", "deps", "build"], &[1, 2, 3], 10_000, 8);
    let first = block_on(cache.export(&build, "main", FormatOptions::default())).unwrap();
    // 4 layers + the config; the manifest goes through put_manifest.
    assert_eq!(first.blobs_written, 5);
    assert_eq!(registry.counts.lock().unwrap().put.len(), 5);
    assert_eq!(registry.counts.lock().unwrap().manifests_put, 1);

    // Unchanged: HEAD everything, push nothing, same manifest.
    registry.reset_counts();
    let again = block_on(cache.export(&build, "main", FormatOptions::default())).unwrap();
    assert_eq!(again.blobs_written, 0);
    assert_eq!(again.manifest, first.manifest);
    let counts = registry.counts.lock().unwrap();
    assert!(counts.put.is_empty(), "re-uploaded {:?}", counts.put);
    assert_eq!(counts.head, 5);
    assert!(counts.get.is_empty());
    drop(counts);

    // A second action sharing two layers pushes only its own.
    registry.reset_counts();
    let test = chain_export(&["pull", "deps", "test"], &[1, 2, 4], 10_000);
    let report = block_on(cache.export(&test, "test", FormatOptions::default())).unwrap();
    assert_eq!(report.blobs_written, 2); // Layer 4 and the config.
    assert_eq!(report.blobs_present, 2);
    assert_eq!(
        registry.counts.lock().unwrap().put[0],
        test.layers[2].descriptor.digest
    );
}

#[test]
fn import_fetches_only_the_blobs_of_steps_that_hit() {
    let registry = MemoryRegistry::default();
    let cache = RegistryCache::new(&registry);
    let export = export_with_mount(&["pull", "deps", "build"], &[1, 2, 3], 10_000, 8);
    let report = block_on(cache.export(&export, "main", FormatOptions::default())).unwrap();
    registry.reset_counts();

    let import = block_on(cache.import("main"));
    // Reading the cache fetched the config only.
    assert_eq!(registry.counts.lock().unwrap().get.len(), 1);
    assert_eq!(import.len(), 3);
    assert!(import.mount("go-mod").is_some());

    // Only the `deps` step hits: fetch its two layers, nothing else.
    let hit = import.lookup(&key("deps")).unwrap();
    for layer in &hit.layers {
        let bytes = block_on(cache.fetch_layer(layer)).unwrap();
        assert_eq!(Digest::of_bytes(&bytes), layer.digest);
    }
    let fetched = registry.counts.lock().unwrap().get.clone();
    let expected: Vec<Digest> = std::iter::once(fetched[0].clone())
        .chain(
            export.layers[..2]
                .iter()
                .map(|l| l.descriptor.digest.clone()),
        )
        .collect();
    assert_eq!(fetched, expected);

    // Importing by digest works too.
    let by_digest = block_on(cache.import(report.manifest.as_str()));
    assert_eq!(by_digest.len(), 3);
}

#[test]
fn a_corrupt_or_missing_remote_blob_is_a_miss_with_a_warning() {
    let registry = MemoryRegistry::default();
    let cache = RegistryCache::new(&registry);
    let export = chain_export(&["a", "b"], &[1, 2], 1000);
    block_on(cache.export(&export, "main", FormatOptions::default())).unwrap();
    let import = block_on(cache.import("main"));
    let hit = import.lookup(&key("b")).unwrap().clone();
    registry
        .blobs
        .lock()
        .unwrap()
        .insert(hit.layers[1].digest.clone(), b"garbage".to_vec());
    let (fetched, logs) = capture_logs(|| block_on(cache.fetch_layer(&hit.layers[1])));
    assert!(fetched.is_none());
    assert!(logs.contains("does not match its digest"), "{logs}");
    registry.blobs.lock().unwrap().remove(&hit.layers[0].digest);
    let (fetched, logs) = capture_logs(|| block_on(cache.fetch_layer(&hit.layers[0])));
    assert!(fetched.is_none());
    assert!(logs.contains("missing"), "{logs}");
}

#[test]
fn an_absent_or_unreachable_registry_imports_nothing_and_export_fails_clearly() {
    let empty = MemoryRegistry::default();
    let (import, logs) = capture_logs(|| block_on(RegistryCache::new(&empty).import("main")));
    assert!(import.is_empty());
    assert!(logs.contains("no cache in the registry yet"), "{logs}");

    let down = MemoryRegistry {
        down: true,
        ..MemoryRegistry::default()
    };
    let cache = RegistryCache::new(&down);
    let (import, logs) = capture_logs(|| block_on(cache.import("main")));
    assert!(import.is_empty());
    assert!(
        logs.contains("WARN") && logs.contains("registry unavailable"),
        "{logs}"
    );
    let err = block_on(cache.export(
        &chain_export(&["a"], &[1], 10),
        "main",
        FormatOptions::default(),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "C0206");
    assert!(
        err.to_string().starts_with("registry HEAD blob `sha256:"),
        "{err}"
    );
}

#[test]
fn registry_and_local_exports_write_the_same_manifest() {
    let registry = MemoryRegistry::default();
    let export = chain_export(&["a", "b"], &[1, 2], 1000);
    let remote =
        block_on(RegistryCache::new(&registry).export(&export, "main", FormatOptions::default()))
            .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let local = cuedag_cache::LocalCache::new(tmp.path())
        .export(&export, "main", FormatOptions::default())
        .unwrap();
    assert_eq!(remote.manifest, local.manifest);
}

#[test]
fn registry_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let registry = std::sync::Arc::new(MemoryRegistry::default());
    let cache = RegistryCache::new(registry.clone());
    let export = chain_export(&["a"], &[1], 10);
    let export_future = cache.export(&export, "main", FormatOptions::default());
    assert_send(&export_future);
    let report = block_on(export_future).unwrap();
    let import_future = cache.import("main");
    assert_send(&import_future);
    let index = block_on(import_future);
    assert_eq!(index.len(), 1);
    assert_eq!(report.blobs_written, 2);
}
