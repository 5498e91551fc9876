//! Pulls and pushes against the real local registry started by
//! `scripts/services up` (Debian's docker-registry on 127.0.0.1:5000, with
//! the stand-in images pushed by `fixtures/images/serve`).

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use cuedag_oci::image::{config_json, index_json};
use cuedag_oci::layer::{extract_blob, pack_to_store};
use cuedag_oci::mirrors::{ENV_MIRRORS, ENV_OFFLINE, ENV_TAG_FALLBACK};
use cuedag_oci::{
    BlobStore, Digest, DockerConfig, OciError, Platform, PullOptions, PushImage, Reference,
    RegistryClient, RegistryConfig, ResolveMode,
};

/// The registry address, failing (never skipping) when it is not up.
fn registry() -> String {
    let addr =
        std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let sock: std::net::SocketAddr = addr
        .parse()
        .expect("CUEDAG_TEST_REGISTRY must be `ip:port`");
    if std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(2)).is_err() {
        panic!("no registry listening at {addr}: start it with `scripts/services up` (then `source .ci/state/env`)");
    }
    addr
}

/// A client whose `docker.io` goes to the local registry, offline.
fn mirror_client(store: &Path, tag_fallback: bool) -> RegistryClient {
    let addr = registry();
    let mut config = RegistryConfig::default();
    config
        .apply_env(|name| match name {
            ENV_MIRRORS => Some(format!("docker.io=http://{addr}")),
            ENV_OFFLINE => Some("1".into()),
            ENV_TAG_FALLBACK => Some(if tag_fallback { "1" } else { "0" }.into()),
            _ => None,
        })
        .unwrap();
    RegistryClient::new(
        BlobStore::open(store).unwrap(),
        config,
        DockerConfig::default(),
    )
    .unwrap()
}

fn plain_client(store: &Path) -> RegistryClient {
    registry();
    RegistryClient::new(
        BlobStore::open(store).unwrap(),
        RegistryConfig::default(),
        DockerConfig::default(),
    )
    .unwrap()
}

fn standin_missing(e: &OciError) -> String {
    format!("{e} (are the stand-in images pushed? run `scripts/services up`)")
}

#[tokio::test]
async fn pulls_golang_through_the_docker_io_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let client = mirror_client(dir.path(), false);
    let reference = Reference::parse("index.docker.io/golang:1.18-alpine").unwrap();
    let image = client
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", standin_missing(&e)));
    assert_eq!(image.source, format!("http://{}", registry()));
    assert_eq!(
        image.reference.to_string(),
        "docker.io/library/golang:1.18-alpine"
    );
    assert_eq!(image.layers.len(), 2);
    let config = image.config.config().clone().unwrap();
    let env = config.env().clone().unwrap();
    assert!(env.iter().any(|e| e == "GOPATH=/go"), "{env:?}");
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=/usr/local/go/bin:/go/bin:")),
        "{env:?}"
    );
    assert_eq!(config.working_dir().as_deref(), Some("/go"));
    for layer in &image.layers {
        assert!(client.store().verify(&layer.digest).unwrap());
        assert!(layer.diff_id.is_some());
    }

    // The digest reported is the one the registry serves for the tag.
    let (digest, media_type, bytes) = client.fetch_manifest(&reference, None).await.unwrap();
    assert_eq!(digest, image.digest);
    assert_eq!(Digest::of(&bytes), digest);
    assert_eq!(media_type, "application/vnd.oci.image.manifest.v1+json");

    // The base layer unpacks into a busybox root with a stub apk.
    let root = dir.path().join("base");
    extract_blob(client.store(), &image.layers[0].digest, &root).unwrap();
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(root.join("sbin/apk").is_file());
    assert!(fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .starts_with("root:x:0:0:"));

    // Resolving asks for the manifest only.
    let resolved = client
        .resolve(&reference, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(resolved.digest, image.digest);
    assert_eq!(resolved.manifest_digest, image.manifest_digest);
    assert_eq!(resolved.source, image.source);
    let prefer_local = PullOptions {
        resolve_mode: ResolveMode::PreferLocal,
        ..Default::default()
    };
    assert_eq!(
        client
            .resolve(&reference, &prefer_local)
            .await
            .unwrap()
            .source,
        "store"
    );

    // A second pull may come from the store alone.
    let local = client
        .pull(
            &reference,
            &PullOptions {
                resolve_mode: ResolveMode::PreferLocal,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(local.source, "store");
    assert_eq!(local.manifest_digest, image.manifest_digest);
}

#[tokio::test]
async fn corrupt_stored_layer_is_refetched() {
    let dir = tempfile::tempdir().unwrap();
    let client = mirror_client(dir.path(), false);
    let reference = Reference::parse("alpine:3.15").unwrap();
    let image = client
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", standin_missing(&e)));
    let layer = image.layers[0].digest.clone();
    let path = client.store().blob_path(&layer);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0x55;
    fs::write(&path, &bytes).unwrap();

    for mode in [ResolveMode::PreferLocal, ResolveMode::Default] {
        let again = client
            .pull(
                &reference,
                &PullOptions {
                    resolve_mode: mode,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_ne!(
            again.source, "store",
            "a corrupt store must not satisfy the pull"
        );
        assert!(
            client.store().verify(&layer).unwrap(),
            "the layer was refetched"
        );
        fs::write(&path, &bytes).unwrap();
    }
}

#[tokio::test]
async fn pinned_digest_through_a_mirror() {
    let pinned =
        "alpine:3.15.0@sha256:21a3deaa0d32a8057914f36584b5288d2e5ecc984380bc0118285c70fa8c9300";
    let reference = Reference::parse(pinned).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let strict = mirror_client(dir.path(), false);
    let err = strict
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "oci::not-found", "{err}");

    let lenient = mirror_client(dir.path(), true);
    let image = lenient
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", standin_missing(&e)));
    assert_ne!(image.digest.to_string(), pinned.split('@').nth(1).unwrap());
    assert_eq!(image.layers.len(), 1);
    // A rerun of the pinned pull is served by the store (pinned references
    // need no registry round trip).
    let again = lenient
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(again.source, "store");
    assert_eq!(again.manifest_digest, image.manifest_digest);
}

fn sample_tree(root: &Path, marker: &str) {
    fs::create_dir_all(root.join("app/bin")).unwrap();
    fs::write(
        root.join("app/bin/run"),
        format!("#!/bin/sh\necho {marker}\n"),
    )
    .unwrap();
    fs::write(root.join("app/arch"), marker).unwrap();
    std::os::unix::fs::symlink("bin/run", root.join("app/start")).unwrap();
}

fn image_config(platform: &Platform, diff_id: &Digest) -> Vec<u8> {
    let mut runtime = serde_json::Map::new();
    runtime.insert("Env".into(), serde_json::json!(["PATH=/bin"]));
    runtime.insert("WorkingDir".into(), serde_json::json!("/app"));
    config_json(platform, &runtime, std::slice::from_ref(diff_id), None)
}

#[tokio::test]
async fn push_then_pull_round_trip() {
    let addr = registry();
    let dir = tempfile::tempdir().unwrap();
    // Small upload limits so that the chunked path is exercised too.
    let pusher = plain_client(&dir.path().join("push-store")).with_upload_sizes(1024, 700);
    let tree = dir.path().join("tree");
    sample_tree(&tree, "round-trip");
    let big = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<_>>();
    fs::write(tree.join("app/data.bin"), &big).unwrap();
    let layer = pack_to_store(pusher.store(), &tree, true).unwrap();
    assert!(layer.size > 1024, "the layer must take the chunked path");
    let platform = Platform::host();
    let config = image_config(&platform, &layer.diff_id);
    let reference = Reference::parse(&format!("{addr}/cuedag-test/round-trip:v1")).unwrap();
    let image = PushImage {
        config: config.clone(),
        layers: vec![layer.info()],
        docker_media_types: false,
    };
    let pushed = pusher.push_image(&reference, &image, None).await.unwrap();
    // Pushing again is idempotent.
    assert_eq!(
        pusher.push_image(&reference, &image, None).await.unwrap(),
        pushed
    );

    let puller = plain_client(&dir.path().join("pull-store"));
    let pulled = puller
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(pulled.digest, pushed);
    assert_eq!(pulled.manifest_digest, pushed);
    assert_eq!(pulled.config_digest, Digest::of(&config));
    assert_eq!(pulled.raw_config, config);
    assert_eq!(pulled.layers, vec![layer.info()]);
    let out = dir.path().join("out");
    extract_blob(puller.store(), &layer.digest, &out).unwrap();
    assert_eq!(fs::read(out.join("app/data.bin")).unwrap(), big);
    assert_eq!(
        fs::read_link(out.join("app/start")).unwrap(),
        Path::new("bin/run")
    );

    // Pulling by the pushed digest gives the same image.
    let by_digest = Reference::parse(&reference.name_at(&pushed)).unwrap();
    let again = plain_client(&dir.path().join("third"))
        .pull(&by_digest, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(again.manifest_digest, pushed);

    // Single blobs can be fetched on their own, verified.
    let blob_only = plain_client(&dir.path().join("blob-store"));
    blob_only
        .pull_blob(&reference, &layer.digest, None)
        .await
        .unwrap();
    assert_eq!(
        blob_only.store().list().unwrap(),
        vec![layer.digest.clone()]
    );
    let missing = Digest::of(b"not in the registry");
    let err = blob_only
        .pull_blob(&reference, &missing, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "oci::not-found", "{err}");

    // Docker media types work too, and give a different digest.
    let docker = PushImage {
        docker_media_types: true,
        ..image
    };
    let docker_ref = Reference::parse(&format!("{addr}/cuedag-test/round-trip:docker")).unwrap();
    let docker_digest = pusher.push_image(&docker_ref, &docker, None).await.unwrap();
    assert_ne!(docker_digest, pushed);
    let (_, media_type, _) = puller.fetch_manifest(&docker_ref, None).await.unwrap();
    assert_eq!(
        media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let pulled = puller
        .pull(&docker_ref, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(pulled.layers[0].digest, layer.digest);
}

#[tokio::test]
async fn index_platform_selection() {
    let addr = registry();
    let dir = tempfile::tempdir().unwrap();
    let client = plain_client(&dir.path().join("store"));
    let repo = format!("{addr}/cuedag-test/multi");
    let mut entries = Vec::new();
    for platform in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
        let platform = Platform::parse(platform).unwrap();
        let tree = dir.path().join(platform.to_string().replace('/', "-"));
        sample_tree(&tree, &platform.to_string());
        let layer = pack_to_store(client.store(), &tree, true).unwrap();
        let image = PushImage {
            config: image_config(&platform, &layer.diff_id),
            layers: vec![layer.info()],
            docker_media_types: false,
        };
        let by_digest = Reference::parse(&format!("{repo}@sha256:{}", "0".repeat(64))).unwrap();
        // `push_image` tags by digest when the reference has no tag.
        let digest = client.push_image(&by_digest, &image, None).await.unwrap();
        let size = client.store().size(&digest).unwrap();
        entries.push((digest, size, platform));
    }
    let index = index_json(&entries, false);
    let tagged = Reference::parse(&format!("{repo}:v1")).unwrap();
    let index_digest = client
        .push_manifest(
            &tagged,
            "application/vnd.oci.image.index.v1+json",
            &index,
            None,
        )
        .await
        .unwrap();

    for (want, platform) in [
        (0, "linux/amd64"),
        (1, "linux/arm64"),
        (1, "linux/aarch64/v8"),
        (2, "linux/arm/v7"),
    ] {
        let puller = plain_client(
            &dir.path()
                .join(format!("pull-{}", platform.replace('/', "-"))),
        );
        let image = puller
            .pull(
                &tagged,
                &PullOptions {
                    platform: Platform::parse(platform).unwrap(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(image.digest, index_digest, "{platform}");
        assert_eq!(image.manifest_digest, entries[want].0, "{platform}");
        let out = dir
            .path()
            .join(format!("out-{}", platform.replace('/', "-")));
        extract_blob(puller.store(), &image.layers[0].digest, &out).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("app/arch")).unwrap(),
            entries[want].2.to_string()
        );
    }

    // The same as a Docker manifest list.
    let docker_list = index_json(&entries, true);
    let docker_tag = Reference::parse(&format!("{repo}:v1-docker")).unwrap();
    client
        .push_manifest(
            &docker_tag,
            "application/vnd.docker.distribution.manifest.list.v2+json",
            &docker_list,
            None,
        )
        .await
        .unwrap();
    let from_list = plain_client(&dir.path().join("pull-list"))
        .pull(
            &docker_tag,
            &PullOptions {
                platform: Platform::parse("linux/arm/v7").unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(from_list.manifest_digest, entries[2].0);

    // Resolution picks the platform's manifest without fetching anything.
    let fresh = plain_client(&dir.path().join("resolve-store"));
    let resolved = fresh
        .resolve(
            &tagged,
            &PullOptions {
                platform: Platform::parse("linux/arm64").unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (resolved.digest, resolved.manifest_digest),
        (index_digest.clone(), entries[1].0.clone())
    );
    assert!(fresh.store().list().unwrap().is_empty());

    let err = client
        .pull(
            &tagged,
            &PullOptions {
                platform: Platform::parse("linux/s390x").unwrap(),
                resolve_mode: ResolveMode::ForcePull,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "oci::no-matching-platform");
    assert!(
        err.to_string()
            .contains("linux/amd64, linux/arm64, linux/arm/v7"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_image_is_not_found() {
    let addr = registry();
    let dir = tempfile::tempdir().unwrap();
    let client = plain_client(dir.path());
    let reference = Reference::parse(&format!("{addr}/cuedag-test/does-not-exist:v0")).unwrap();
    let err = client
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "oci::not-found", "{err}");
}

#[tokio::test]
async fn unreachable_registry_falls_back_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Reference::parse("alpine:3.15").unwrap();
    let first = mirror_client(dir.path(), false)
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}", standin_missing(&e)));

    // Same store, but the mirror is now a closed port.
    let mut config = RegistryConfig::default();
    config
        .apply_env(|name| match name {
            ENV_MIRRORS => Some("docker.io=http://127.0.0.1:1".into()),
            ENV_OFFLINE => Some("1".into()),
            _ => None,
        })
        .unwrap();
    let dead = RegistryClient::new(
        BlobStore::open(dir.path()).unwrap(),
        config,
        DockerConfig::default(),
    )
    .unwrap();
    let again = dead
        .pull(&reference, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(again.source, "store");
    assert_eq!(again.manifest_digest, first.manifest_digest);
    // Forcing a pull reports the failure instead.
    let err = dead
        .pull(
            &reference,
            &PullOptions {
                resolve_mode: ResolveMode::ForcePull,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "oci::http", "{err}");
}

#[tokio::test]
async fn metadata_only_pull_fetches_no_layer_and_pull_blob_fetches_one() {
    let dir = tempfile::tempdir().unwrap();
    let client = mirror_client(dir.path(), false);
    let reference = Reference::parse("golang:1.18-alpine").unwrap();
    let options = PullOptions {
        metadata_only: true,
        ..Default::default()
    };
    let image = client
        .pull(&reference, &options)
        .await
        .unwrap_or_else(|e| panic!("{}", standin_missing(&e)));
    assert!(!image.layers.is_empty());
    assert!(client.store().contains(&image.config_digest));
    for layer in &image.layers {
        assert!(
            !client.store().contains(&layer.digest),
            "layer {} was fetched",
            layer.digest
        );
    }
    // Again from the store alone: the missing layers do not matter.
    let local = client
        .pull(
            &reference,
            &PullOptions {
                resolve_mode: ResolveMode::PreferLocal,
                ..options
            },
        )
        .await
        .unwrap();
    assert_eq!(local.source, "store");
    assert_eq!(local.layers, image.layers);
    // One layer on demand, verified.
    let first = &image.layers[0].digest;
    client.pull_blob(&reference, first, None).await.unwrap();
    assert!(client.store().verify(first).unwrap());
    for other in image.layers.iter().skip(1) {
        assert!(
            !client.store().contains(&other.digest),
            "only one layer was asked for"
        );
    }
}
