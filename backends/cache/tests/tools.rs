//! Standard OCI tools (Debian's `skopeo` and `umoci`) accept a cache
//! directory cuedag wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use cuedag_cache::spec::FormatOptions;
use cuedag_cache::LocalCache;

fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}); install it with `apt-get install -y skopeo umoci` (or run `scripts/services up`)")
    });
    assert!(
        output.status.success(),
        "`{tool} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn skopeo_and_umoci_accept_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let cache = LocalCache::new(&dir);
    let export = common::export_with_mount(&["pull", "exec"], &[1, 2], 4096, 9);
    let report = cache
        .export(&export, "build", FormatOptions::default())
        .unwrap();
    cache
        .export(
            &common::chain_export(&["other"], &[3], 1000),
            "test",
            FormatOptions::default(),
        )
        .unwrap();

    let image = format!("oci:{}:build", dir.display());
    let raw = run("skopeo", &["inspect", "--raw", &image]);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);

    let copy = tmp.path().join("copy");
    run(
        "skopeo",
        &["copy", &image, &format!("dir:{}", copy.display())],
    );
    // Every layer, the config and the manifest arrive intact.
    for layer in &export.layers {
        let path = copy.join(layer.descriptor.digest.hex());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            cuedag_cache::Digest::of_bytes(&bytes),
            layer.descriptor.digest
        );
    }
    let copied_manifest = std::fs::read(copy.join("manifest.json")).unwrap();
    assert_eq!(
        cuedag_cache::Digest::of_bytes(&copied_manifest),
        report.manifest
    );

    // umoci lists both tags of the layout.
    let tags = run("umoci", &["ls", "--layout", dir.to_str().unwrap()]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["build", "test"]);
}
