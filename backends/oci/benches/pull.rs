//! Pulling `golang:1.18-alpine` through the `docker.io` mirror from the
//! local registry (`scripts/services up` must have run): a cold pull into an
//! empty store, a warm pull (blobs present), a resolve, and extracting the
//! toolchain layer. Run with `cargo bench -p cuedag-oci --bench pull`.

// Bench set-up may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use cuedag_oci::mirrors::{ENV_MIRRORS, ENV_OFFLINE};
use cuedag_oci::{BlobStore, DockerConfig, PullOptions, Reference, RegistryClient, RegistryConfig};

fn main() {
    divan::main();
}

fn registry() -> String {
    let addr =
        std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let sock: std::net::SocketAddr = addr.parse().unwrap();
    if std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(2)).is_err() {
        panic!("no registry listening at {addr}: start it with `scripts/services up`");
    }
    addr
}

fn client(store: &std::path::Path) -> RegistryClient {
    let addr = registry();
    let mut config = RegistryConfig::default();
    config
        .apply_env(|name| match name {
            ENV_MIRRORS => Some(format!("docker.io=http://{addr}")),
            ENV_OFFLINE => Some("1".into()),
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn reference() -> Reference {
    Reference::parse("golang:1.18-alpine").unwrap()
}

/// A store holding the image already.
fn warm() -> &'static (tempfile::TempDir, RegistryClient) {
    static WARM: OnceLock<(tempfile::TempDir, RegistryClient)> = OnceLock::new();
    WARM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let client = client(dir.path());
        runtime()
            .block_on(client.pull(&reference(), &PullOptions::default()))
            .unwrap();
        (dir, client)
    })
}

#[divan::bench(sample_count = 3)]
fn pull_cold(bencher: divan::Bencher) {
    let rt = runtime();
    bencher
        .with_inputs(|| tempfile::tempdir().unwrap())
        .bench_local_values(|dir: tempfile::TempDir| {
            rt.block_on(client(dir.path()).pull(&reference(), &PullOptions::default()))
                .unwrap();
            dir
        });
}

#[divan::bench(sample_count = 10)]
fn pull_warm() {
    let rt = runtime();
    let (_, client) = warm();
    divan::black_box(
        rt.block_on(client.pull(&reference(), &PullOptions::default()))
            .unwrap(),
    );
}

#[divan::bench(sample_count = 10)]
fn resolve() {
    let rt = runtime();
    let (_, client) = warm();
    divan::black_box(
        rt.block_on(client.resolve(&reference(), &PullOptions::default()))
            .unwrap(),
    );
}

#[divan::bench(sample_count = 3)]
fn extract_toolchain_layer(bencher: divan::Bencher) {
    let (_, client) = warm();
    let image = runtime()
        .block_on(client.pull(&reference(), &PullOptions::default()))
        .unwrap();
    let layer = image.layers.last().unwrap().digest.clone();
    bencher
        .with_inputs(|| tempfile::tempdir().unwrap())
        .bench_local_values(|dir: tempfile::TempDir| {
            cuedag_oci::layer::extract_blob(client.store(), &layer, &dir.path().join("l")).unwrap();
            dir
        });
}
