//! Image archives for `#Export`, checked with skopeo and umoci (installed by
//! `.ci/run`).

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;
use std::process::Command;

use cuedag_oci::export::{write_archive, ArchiveFormat};
use cuedag_oci::image::config_json;
use cuedag_oci::layer::pack_to_store;
use cuedag_oci::{BlobStore, Digest, Platform, Reference};

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{name}` ({e}): install it with `apt-get install {name}` (`.ci/run` does)"
        )
    });
    assert!(
        out.status.success(),
        "`{name} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build(
    dir: &Path,
    format: ArchiveFormat,
) -> (std::path::PathBuf, cuedag_oci::export::ArchiveInfo) {
    let store = BlobStore::open(dir.join("store")).unwrap();
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("srv")).unwrap();
    fs::write(tree.join("srv/hello.txt"), "hello from cuedag\n").unwrap();
    let layer = pack_to_store(&store, &tree, true).unwrap();
    let mut runtime = serde_json::Map::new();
    runtime.insert(
        "Env".into(),
        serde_json::json!(["PATH=/bin", "GREETING=hi"]),
    );
    runtime.insert("Cmd".into(), serde_json::json!(["/bin/sh"]));
    let config = config_json(
        &Platform::parse("linux/amd64").unwrap(),
        &runtime,
        std::slice::from_ref(&layer.diff_id),
        None,
    );
    let tag = Reference::parse("example.com/team/app:v2").unwrap();
    let path = dir.join(format!("{format:?}.tar"));
    let file = fs::File::create(&path).unwrap();
    let info = write_archive(&store, file, format, &tag, &config, &[layer.info()]).unwrap();
    assert_eq!(info.config_digest, Digest::of(&config));
    // Deterministic: the same inputs give the same bytes.
    let mut again = Vec::new();
    write_archive(&store, &mut again, format, &tag, &config, &[layer.info()]).unwrap();
    assert_eq!(again, fs::read(&path).unwrap());
    (path, info)
}

#[test]
fn oci_archive_is_read_by_skopeo_and_umoci() {
    let dir = tempfile::tempdir().unwrap();
    let (path, info) = build(dir.path(), ArchiveFormat::Oci);
    let inspect = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", path.display()),
        ],
    );
    assert_eq!(Digest::of(inspect.as_bytes()), info.manifest_digest);
    let config = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci-archive:{}", path.display()),
        ],
    );
    assert!(config.contains("GREETING=hi"), "{config}");

    // umoci unpacks the layout into a bundle with our file.
    let layout = dir.path().join("layout");
    fs::create_dir_all(&layout).unwrap();
    tar::Archive::new(fs::File::open(&path).unwrap())
        .unpack(&layout)
        .unwrap();
    let bundle = dir.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:v2", layout.display()),
            &bundle.display().to_string(),
        ],
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/srv/hello.txt")).unwrap(),
        "hello from cuedag\n"
    );
}

#[test]
fn docker_archive_is_read_by_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let (path, info) = build(dir.path(), ArchiveFormat::Docker);
    let inspect = tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", path.display())],
    );
    assert!(inspect.contains("GREETING=hi"), "{inspect}");
    let listed: Vec<String> = tar::Archive::new(fs::File::open(&path).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(listed.contains(&"manifest.json".to_owned()), "{listed:?}");
    assert!(
        listed.contains(&format!("blobs/sha256/{}", info.config_digest.hex())),
        "{listed:?}"
    );
    let manifest: serde_json::Value = {
        let mut archive = tar::Archive::new(fs::File::open(&path).unwrap());
        let mut entry = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().as_os_str() == "manifest.json")
            .unwrap();
        serde_json::from_reader(&mut entry).unwrap()
    };
    assert_eq!(manifest[0]["RepoTags"][0], "example.com/team/app:v2");
}

#[test]
fn unsupported_export_type() {
    let err = ArchiveFormat::parse("zip").unwrap_err();
    assert!(
        err.to_string().contains("unsupported export type `zip`"),
        "{err}"
    );
}
