//! The cache config and manifest bytes (golden), and reading configs the
//! way BuildKit writes them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{export_with_mount, key};
use cuedag_cache::format::{build, CacheConfig, MEDIA_TYPE_CACHE_CONFIG};
use cuedag_cache::spec::FormatOptions;
use cuedag_cache::{Digest, ImportSelector, LocalCache};

fn pretty(bytes: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    serde_json::to_string_pretty(&value).unwrap()
}

#[test]
fn config_and_manifest_are_golden_and_deterministic() {
    let export = export_with_mount(&["pull", "exec"], &[1, 2], 100, 9);
    let built = build(&export, FormatOptions::default()).unwrap();
    // Same export in another record order: same bytes.
    let mut shuffled = export.clone();
    shuffled.records.reverse();
    shuffled.layers.reverse();
    let again = build(&shuffled, FormatOptions::default()).unwrap();
    assert_eq!(built.config.bytes, again.config.bytes);
    assert_eq!(built.manifest.bytes, again.manifest.bytes);
    // Compact JSON, digest of the exact bytes.
    assert!(!built.config.bytes.contains(&b'\n'));
    assert_eq!(
        Digest::of_bytes(&built.config.bytes),
        built.config.descriptor.digest
    );
    assert_eq!(built.config.descriptor.media_type, MEDIA_TYPE_CACHE_CONFIG);
    insta::assert_snapshot!("config", pretty(&built.config.bytes));
    insta::assert_snapshot!("manifest", pretty(&built.manifest.bytes));
}

/// The example of the spec (§4a): `parent` absent means 0, `-1` is a base
/// layer; record 1 links to record 0. Written as BuildKit 0.10 writes it
/// (image index listing layers then the config).
#[test]
fn reads_a_buildkit_style_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::new(tmp.path());
    let layer_a = common::bytes(1, 50);
    let layer_b = common::bytes(2, 60);
    let (a, b) = (Digest::of_bytes(&layer_a), Digest::of_bytes(&layer_b));
    let (k0, k1, k2) = (key("k0"), key("k1"), key("k2"));
    let config = format!(
        r#"{{"layers":[{{"blob":"{a}","parent":-1}},{{"blob":"{b}"}}],"records":[{{"digest":"{k0}","layers":[{{"layer":0,"createdAt":"2022-05-01T10:00:00Z"}}]}},{{"digest":"{k1}","inputs":[[{{"link":0}}]],"layers":[{{"layer":1,"createdAt":"2022-05-01T10:00:05Z"}}]}},{{"digest":"{k2}","inputs":[[{{"link":1}}]]}}]}}"#
    );
    let config_digest = Digest::of_bytes(config.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{a}","size":50,"annotations":{{"buildkit/createdat":"2022-05-01T10:00:00Z","containerd.io/uncompressed":"{a}"}}}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{b}","size":60}},{{"mediaType":"application/vnd.buildkit.cacheconfig.v0","digest":"{config_digest}","size":{}}}]}}"#,
        config.len()
    );
    let index_digest = Digest::of_bytes(index.as_bytes());
    let blobs = tmp.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for (digest, bytes) in [
        (&a, layer_a.as_slice()),
        (&b, layer_b.as_slice()),
        (&config_digest, config.as_bytes()),
        (&index_digest, index.as_bytes()),
    ] {
        std::fs::write(blobs.join(digest.hex()), bytes).unwrap();
    }
    std::fs::write(
        tmp.path().join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{index_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
            index.len()
        ),
    )
    .unwrap();
    let parsed: CacheConfig = serde_json::from_str(&config).unwrap();
    assert_eq!(parsed.layers[1].parent, 0);

    let import = cache.import(&ImportSelector::Tag("latest".into()));
    let hit = import.index().lookup(&k1).unwrap();
    let chain: Vec<&Digest> = hit.layers.iter().map(|l| &l.digest).collect();
    assert_eq!(chain, [&a, &b]);
    assert_eq!(
        hit.layers[0].created_at.as_deref(),
        Some("2022-05-01T10:00:00Z")
    );
    assert_eq!(import.index().lookup(&k0).unwrap().layers.len(), 1);
    // A key without a result is only a link: not a hit.
    assert!(import.index().lookup(&k2).is_none());
    assert!(import.read_layer(&hit.layers[1]).is_some());
}

#[test]
fn steps_without_filesystem_result_are_hits_only_with_outputs() {
    use cuedag_cache::{CacheExport, ExportRecord, StepResult};
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::new(tmp.path());
    let record = |name: &str, result: Option<StepResult>, outputs| ExportRecord {
        key: key(name),
        inputs: vec![],
        result,
        outputs,
    };
    let export = CacheExport {
        layers: vec![],
        records: vec![
            record(
                "readfile",
                None,
                Some(serde_json::json!({"contents": "hi"})),
            ),
            record(
                "empty-fs",
                Some(StepResult {
                    chain: vec![],
                    created_at: None,
                }),
                Some(serde_json::json!({})),
            ),
            record("link-only", None, None),
        ],
        mounts: vec![],
    };
    cache
        .export(&export, "t", FormatOptions::default())
        .unwrap();
    let import = cache.import(&ImportSelector::All);
    let hit = import.index().lookup(&key("readfile")).unwrap();
    assert!(hit.layers.is_empty());
    assert_eq!(hit.outputs, Some(serde_json::json!({"contents": "hi"})));
    assert!(import
        .index()
        .lookup(&key("empty-fs"))
        .unwrap()
        .layers
        .is_empty());
    assert!(import.index().lookup(&key("link-only")).is_none());
}
