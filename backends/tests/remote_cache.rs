//! `type=registry` caches against the real registry started by
//! `scripts/services up` (Debian's docker-registry on 127.0.0.1:5000, with
//! deletes enabled), plus a second docker-registry with htpasswd auth that
//! these tests start themselves on a free loopback port.

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cuedag_backends::remote_cache::{OciRemote, RemoteCache};
use cuedag_cache::spec::{CacheSpec, Direction, Mode, Origin};
use cuedag_cache::{
    BlobSource, CacheExport, Digest, ExportLayer, ExportRecord, LayerDescriptor, RegistryCache,
    RemoteBlobs, RemoteManifest, StepResult,
};
use cuedag_oci::{BlobStore, Credentials, DockerConfig, RegistryConfig};

// ---------------------------------------------------------------------------
// The registry.

/// The registry address, failing (never skipping) when it is not up.
fn registry() -> String {
    let addr =
        std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let sock: std::net::SocketAddr = addr
        .parse()
        .expect("CUEDAG_TEST_REGISTRY must be `ip:port`");
    if std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(2)).is_err() {
        panic!("no registry listening at {addr}: start it with `scripts/services up`");
    }
    addr
}

/// A repository name no other run uses.
fn unique_repo(addr: &str, what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{addr}/cuedag-test/cache-{what}-{}-{nanos}",
        std::process::id()
    )
}

fn spec(direction: Direction, text: &str) -> CacheSpec {
    CacheSpec::parse(direction, Origin::Flag, text, &|_| None).unwrap()
}

fn new_store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("oci")).unwrap();
    (dir, store)
}

/// A cache bound to `text` (a spec) with no Docker config.
fn remote_cache(direction: Direction, text: &str, store: &BlobStore) -> RemoteCache {
    RemoteCache::from_spec(
        &spec(direction, text),
        store.clone(),
        RegistryConfig::default(),
        DockerConfig::default(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// Exports.

/// Deterministic pseudo-random bytes (xorshift).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn key(name: &str) -> Digest {
    Digest::of_bytes(format!("step:{name}").as_bytes())
}

fn layer(seed: u64, len: usize) -> ExportLayer {
    let data = bytes(seed, len);
    ExportLayer {
        descriptor: LayerDescriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            digest: Digest::of_bytes(&data),
            size: data.len() as u64,
            diff_id: None,
            created_at: Some("2022-05-01T10:00:00Z".into()),
        },
        source: BlobSource::Bytes(data),
    }
}

/// Steps `names[i]` on the chain of `names[i-1]` plus layer `seeds[i]`.
fn chain_export(names: &[&str], seeds: &[u64], len: usize) -> CacheExport {
    let layers: Vec<ExportLayer> = seeds.iter().map(|s| layer(*s, len)).collect();
    let records = names
        .iter()
        .enumerate()
        .map(|(i, name)| ExportRecord {
            key: key(name),
            inputs: if i == 0 {
                vec![]
            } else {
                vec![vec![key(names[i - 1])]]
            },
            result: Some(StepResult {
                chain: layers[..=i]
                    .iter()
                    .map(|l| l.descriptor.digest.clone())
                    .collect(),
                created_at: Some(format!("2022-05-01T10:00:0{i}Z")),
            }),
            outputs: Some(serde_json::json!({ "step": name })),
        })
        .collect();
    CacheExport {
        layers,
        records,
        mounts: vec![],
    }
}

fn layer_bytes(export: &CacheExport, digest: &Digest) -> Vec<u8> {
    let layer = export
        .layers
        .iter()
        .find(|l| &l.descriptor.digest == digest)
        .unwrap();
    layer.source.read().unwrap()
}

// ---------------------------------------------------------------------------
// A counting decorator over any remote.

#[derive(Debug, Default, Clone)]
struct Counts {
    head: Vec<Digest>,
    get: Vec<Digest>,
    put: Vec<Digest>,
    manifests_get: usize,
    manifests_put: usize,
}

struct Counting<R> {
    inner: R,
    counts: Mutex<Counts>,
}

impl<R> Counting<R> {
    fn new(inner: R) -> Self {
        Counting {
            inner,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn take(&self) -> Counts {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }
}

impl<R: RemoteBlobs + Send> RemoteBlobs for Counting<R> {
    type Error = R::Error;

    async fn head_blob(&self, digest: &Digest) -> Result<Option<u64>, R::Error> {
        self.counts.lock().unwrap().head.push(digest.clone());
        self.inner.head_blob(digest).await
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, R::Error> {
        self.counts.lock().unwrap().get.push(digest.clone());
        self.inner.get_blob(digest).await
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<(), R::Error> {
        self.counts.lock().unwrap().put.push(digest.clone());
        self.inner.put_blob(digest, bytes).await
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RemoteManifest>, R::Error> {
        self.counts.lock().unwrap().manifests_get += 1;
        self.inner.get_manifest(reference).await
    }

    async fn put_manifest(
        &self,
        reference: &str,
        manifest: RemoteManifest,
    ) -> Result<(), R::Error> {
        self.counts.lock().unwrap().manifests_put += 1;
        self.inner.put_manifest(reference, manifest).await
    }
}

// ---------------------------------------------------------------------------
// Log capture (warnings are part of the contract: a miss is a warning).

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<String>>);

impl Logs {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Line(&mut line));
        line.push('\n');
        self.0.lock().unwrap().push_str(&line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------
// Tests on the shared registry.

/// A cache for `text` whose requests `Counting` records.
fn counted(
    direction: Direction,
    text: &str,
    store: &BlobStore,
) -> (
    RemoteCache<Arc<Counting<OciRemote>>>,
    Arc<Counting<OciRemote>>,
) {
    let oci = remote_cache(direction, text, store).remote().clone();
    let counting = Arc::new(Counting::new(oci));
    let cache = RemoteCache::with_remote(&spec(direction, text), counting.clone()).unwrap();
    (cache, counting)
}

#[tokio::test]
async fn export_import_fetches_only_hits_and_unchanged_reexport_uploads_nothing() {
    let addr = registry();
    let repo = unique_repo(&addr, "flow");
    let (_dir, store) = new_store();
    let export = chain_export(&["pull", "deps", "build"], &[11, 12, 13], 64 << 10);

    // Export through a counting decorator over the real adapter.
    let (to, counting) = counted(
        Direction::To,
        &format!("type=registry,ref={repo}:main"),
        &store,
    );
    assert_eq!(to.export_tag(), "main");
    let first = to.export(&export).await.unwrap();
    assert_eq!(first.blobs_written, 4, "3 layers and the config");
    assert_eq!(first.blobs_present, 0);
    let counts = counting.take();
    assert_eq!(counts.put.len(), 4);
    assert_eq!(
        counts.head.len(),
        4,
        "each blob HEADed once: {:?}",
        counts.head
    );
    assert_eq!(counts.manifests_put, 1);
    assert!(counts.get.is_empty());
    let plain = remote_cache(Direction::From, &format!("{repo}:main"), &store);
    let (_, config_size) = config_of(plain.remote(), "main").await;
    assert_eq!(first.bytes_written, 3 * (64 << 10) + config_size);

    // A fresh importer (new client, new store) reads the manifest and the
    // config only.
    let (_dir2, store2) = new_store();
    let (from, importer) = counted(
        Direction::From,
        &format!("type=registry,ref={repo}:main"),
        &store2,
    );
    let index = from.import().await;
    assert_eq!(index.len(), 3);
    let counts = importer.take();
    assert_eq!(counts.manifests_get, 1);
    assert_eq!(counts.get.len(), 1, "the config only: {:?}", counts.get);
    assert!(counts.head.is_empty() && counts.put.is_empty());

    // Only `deps` hits: fetch its two layers and nothing else.
    assert!(index.lookup(&key("test")).is_none());
    let hit = index.lookup(&key("deps")).unwrap();
    assert_eq!(hit.outputs, Some(serde_json::json!({ "step": "deps" })));
    assert_eq!(hit.layers.len(), 2);
    for layer in &hit.layers {
        let fetched = from.fetch_layer(layer).await.unwrap();
        assert_eq!(fetched, layer_bytes(&export, &layer.digest));
    }
    let counts = importer.take();
    let wanted: Vec<Digest> = export.layers[..2]
        .iter()
        .map(|l| l.descriptor.digest.clone())
        .collect();
    assert_eq!(counts.get, wanted);

    // By digest.
    let pinned = remote_cache(
        Direction::From,
        &format!("type=registry,ref={repo}@{}", first.manifest),
        &store2,
    );
    let by_digest = pinned.import().await;
    assert_eq!(by_digest.len(), 3);
    assert!(by_digest.lookup(&key("build")).is_some());

    // An unchanged re-export: HEAD only, zero uploads, same manifest.
    let again = to.export(&export).await.unwrap();
    assert_eq!(again.blobs_written, 0);
    assert_eq!(again.bytes_written, 0);
    assert_eq!(again.blobs_present, 4);
    assert_eq!(again.manifest, first.manifest);
    let counts = counting.take();
    assert!(counts.put.is_empty(), "re-uploaded {:?}", counts.put);
    assert_eq!(counts.head.len(), 4);
    assert!(counts.get.is_empty());
    assert_eq!(counts.manifests_put, 1);

    // The sequential logic of `RegistryCache` over the adapter agrees.
    let sequential = RegistryCache::new(to.remote().clone());
    let report = sequential
        .export(&export, "main", to.format())
        .await
        .unwrap();
    assert_eq!((report.blobs_written, report.blobs_present), (0, 4));
    assert_eq!(counting.take().head.len(), 4);

    // A second action sharing two layers pushes only its own layer and config.
    let test = chain_export(&["pull", "deps", "test"], &[11, 12, 14], 64 << 10);
    let (to_test, _) = counted(
        Direction::To,
        &format!("type=registry,ref={repo}:test"),
        &store,
    );
    let counting_test = to_test.remote().clone();
    let report = to_test.export(&test).await.unwrap();
    assert_eq!(report.blobs_written, 2);
    assert_eq!(report.blobs_present, 2);
    let mut put = counting_test.take().put;
    put.sort();
    let mut wanted = vec![
        test.layers[2].descriptor.digest.clone(),
        config_of(plain.remote(), "test").await.0,
    ];
    wanted.sort();
    assert_eq!(put, wanted);
    // Both tags import independently.
    assert!(from
        .import_from("test")
        .await
        .lookup(&key("test"))
        .is_some());
    assert!(from.import().await.lookup(&key("test")).is_none());
}

/// The config descriptor of the manifest at `reference`.
async fn config_of<R: RemoteBlobs>(remote: &R, reference: &str) -> (Digest, u64) {
    let manifest = remote.get_manifest(reference).await.ok().unwrap().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    (
        Digest::parse(value["config"]["digest"].as_str().unwrap()).unwrap(),
        value["config"]["size"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_blob_deleted_from_the_registry_is_a_miss_with_a_warning() {
    let addr = registry();
    let repo = unique_repo(&addr, "deleted");
    let (_dir, store) = new_store();
    let export = chain_export(&["a", "b"], &[21, 22], 32 << 10);
    let cache = remote_cache(Direction::To, &format!("{repo}:main"), &store);
    cache.export(&export).await.unwrap();

    // Delete layer `b` through the registry API.
    let gone = export.layers[1].descriptor.digest.clone();
    let path = repo.strip_prefix(&format!("{addr}/")).unwrap();
    let resp = reqwest::Client::new()
        .delete(format!("http://{addr}/v2/{path}/blobs/{gone}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        202,
        "the registry must allow deletes (`scripts/services up` starts it with storage.delete.enabled)"
    );

    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let (_dir2, store2) = new_store();
    let from = remote_cache(
        Direction::From,
        &format!("type=registry,ref={repo}:main"),
        &store2,
    );
    let index = from.import().await;
    assert_eq!(index.len(), 2, "the manifest and config are intact");
    let hit = index.lookup(&key("b")).unwrap();
    assert!(from.fetch_layer(&hit.layers[0]).await.is_some());
    assert_eq!(hit.layers[1].digest, gone);
    assert!(from.fetch_layer(&hit.layers[1]).await.is_none());
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("registry blob missing; treated as a miss"),
        "{text}"
    );
    assert!(text.contains(gone.as_str()), "{text}");

    // A descriptor naming a blob never pushed is a miss the same way.
    let mut never = hit.layers[0].clone();
    never.digest = Digest::of_bytes(b"never pushed");
    assert!(from.fetch_layer(&never).await.is_none());

    // The next export notices and uploads just that blob again.
    let counting = RegistryCache::new(Counting::new(cache.remote().clone()));
    let report = counting
        .export(&export, cache.export_tag(), cache.format())
        .await
        .unwrap();
    assert_eq!(report.blobs_written, 1);
    assert_eq!(counting.remote().take().put, vec![gone.clone()]);
    let healed = from.import().await;
    let layer = &healed.lookup(&key("b")).unwrap().layers[1];
    assert_eq!(
        from.fetch_layer(layer).await.unwrap(),
        layer_bytes(&export, &gone)
    );
}

#[tokio::test]
async fn an_absent_cache_imports_nothing_and_an_unreachable_registry_fails_export_clearly() {
    let addr = registry();
    let repo = unique_repo(&addr, "absent");
    let (_dir, store) = new_store();
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let from = remote_cache(
        Direction::From,
        &format!("type=registry,ref={repo}:main"),
        &store,
    );
    assert!(from.import().await.is_empty());
    assert!(
        logs.text().contains("no cache in the registry yet"),
        "{}",
        logs.text()
    );

    // Nothing listens on port 9 of the loopback interface.
    let down = remote_cache(
        Direction::To,
        "type=registry,ref=127.0.0.1:9/cuedag-test/cache:main",
        &store,
    );
    let error = down
        .export(&chain_export(&["a"], &[1], 16))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "C0206");
    assert!(
        error.to_string().starts_with("registry HEAD blob `sha256:"),
        "{error}"
    );
    let down_from = remote_cache(
        Direction::From,
        "type=registry,ref=127.0.0.1:9/cuedag-test/cache:main",
        &store,
    );
    assert!(down_from.import().await.is_empty());
    assert!(
        logs.text().contains("cannot read the cache manifest"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn docker_media_types_and_the_index_form_follow_the_spec() {
    let addr = registry();
    let repo = unique_repo(&addr, "formats");
    let (_dir, store) = new_store();
    let export = chain_export(&["a", "b"], &[31, 32], 1024);

    let oci = remote_cache(
        Direction::To,
        &format!("type=registry,ref={repo}:oci"),
        &store,
    );
    assert!(oci.format().oci_mediatypes && oci.format().image_manifest);
    oci.export(&export).await.unwrap();
    let manifest = oci.remote().get_manifest("oci").await.unwrap().unwrap();
    assert_eq!(
        manifest.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    let text = String::from_utf8(manifest.bytes).unwrap();
    assert!(
        text.contains("application/vnd.buildkit.cacheconfig.v0"),
        "{text}"
    );

    // BuildKit 0.10's index form (layers listed as "manifests") and Docker
    // media types: the registry accepts both (the listed blobs are in the
    // repository) and they import back.
    for (tag, options, media_type) in [
        (
            "index",
            "image-manifest=false",
            "application/vnd.oci.image.index.v1+json",
        ),
        (
            "docker",
            "oci-mediatypes=false",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    ] {
        let text = format!("type=registry,ref={repo}:{tag},{options}");
        let cache = remote_cache(Direction::To, &text, &store);
        assert!(!cache.format().image_manifest);
        let report = cache.export(&export).await.unwrap();
        // The layers and the config are those of the first export.
        assert_eq!(
            (report.blobs_written, report.blobs_present),
            (0, 3),
            "{tag}"
        );
        let manifest = cache.remote().get_manifest(tag).await.unwrap().unwrap();
        assert_eq!(manifest.media_type, media_type);
        let (_dir2, store2) = new_store();
        let from = format!("type=registry,ref={repo}:{tag}");
        let index = remote_cache(Direction::From, &from, &store2).import().await;
        assert_eq!(index.len(), 2, "{tag}");
        assert_eq!(index.lookup(&key("b")).unwrap().layers.len(), 2);
    }
}

#[test]
fn specs_other_than_registry_are_refused_and_accessors_follow_the_spec() {
    let (_dir, store) = new_store();
    let local = spec(Direction::To, "type=local,dest=/tmp/cuedag-cache");
    let error = RemoteCache::from_spec(
        &local,
        store.clone(),
        RegistryConfig::default(),
        DockerConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "--cache-to type=local: not a registry cache (hint: the registry cache needs `type=registry,ref=host/repo:tag`)"
    );

    let max = remote_cache(
        Direction::To,
        "type=registry,ref=127.0.0.1:5000/team/app:cache,mode=max,oci-mediatypes=false",
        &store,
    );
    assert_eq!(max.mode(), Mode::Max);
    assert_eq!(max.direction(), Direction::To);
    assert!(!max.format().oci_mediatypes);
    assert_eq!(max.reference(), "127.0.0.1:5000/team/app:cache");
    assert_eq!(max.remote().repository(), "127.0.0.1:5000/team/app");
    let shorthand = remote_cache(Direction::From, "docker.io/team/app", &store);
    assert_eq!(shorthand.mode(), Mode::Min);
    assert_eq!(shorthand.export_tag(), "latest");
    assert_eq!(shorthand.remote().repository(), "docker.io/team/app");

    let client = max.remote().client().clone();
    let error = OciRemote::new(client, "127.0.0.1:5000/team/app:tag", None).unwrap_err();
    assert!(
        error.to_string().contains("without tag or digest"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Auth: a second docker-registry with htpasswd.

/// `cuedag` / `cache-pass`, bcrypt (cost 5).
const HTPASSWD: &str = "cuedag:$2b$05$cuedagtestsaltcuedagteGMhj1AgH8lLrYzUPxR/hN/vKdW8xRdy\n";

/// A docker-registry this test started; killed on drop.
struct AuthRegistry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_auth_registry() -> AuthRegistry {
    // The shared registry being up is what says the package is installed.
    registry();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::write(dir.path().join("htpasswd"), HTPASSWD).unwrap();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: cuedag-test\n    path: {htpasswd}\n",
        root = dir.path().join("data").display(),
        htpasswd = dir.path().join("htpasswd").display(),
    );
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let child = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `docker-registry` ({e}): install it with `apt-get install docker-registry` (`scripts/services up` needs it too)")
        });
    let registry = AuthRegistry {
        child,
        addr: addr.clone(),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(resp) = http.get(format!("http://{addr}/v2/")).send().await {
            assert_eq!(
                resp.status().as_u16(),
                401,
                "the test registry must ask for credentials"
            );
            return registry;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(registry._dir.path().join("log")).unwrap_or_default();
    panic!("the htpasswd docker-registry did not start on {addr}: {log}");
}

fn docker_config_dir(entries: &[(&str, &str, &str)]) -> tempfile::TempDir {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let mut auths = serde_json::Map::new();
    for (host, user, password) in entries {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        auths.insert((*host).to_owned(), serde_json::json!({ "auth": encoded }));
    }
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&serde_json::json!({ "auths": auths })).unwrap(),
    )
    .unwrap();
    dir
}

fn cache_with_docker_config(
    direction: Direction,
    text: &str,
    store: &BlobStore,
    config: &Path,
) -> RemoteCache {
    RemoteCache::from_spec(
        &spec(direction, text),
        store.clone(),
        RegistryConfig::default(),
        DockerConfig::load(&config.join("config.json")).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn credentials_from_the_docker_config_open_an_htpasswd_registry() {
    let auth = start_auth_registry().await;
    let repo = format!("{}/cuedag-test/cache-auth", auth.addr);
    let text = format!("type=registry,ref={repo}:main");
    let (_dir, store) = new_store();
    let export = chain_export(&["a", "b"], &[41, 42], 4096);

    // Without credentials: a clear auth error on export, an empty import
    // with a warning.
    let anonymous = remote_cache(Direction::To, &text, &store);
    let error = anonymous.export(&export).await.unwrap_err();
    assert_eq!(error.code(), "C0206");
    assert!(
        error
            .to_string()
            .contains("the registry requires credentials"),
        "{error}"
    );
    let logs = Logs::default();
    let guard = tracing::subscriber::set_default(logs.clone());
    assert!(remote_cache(Direction::From, &text, &store)
        .import()
        .await
        .is_empty());
    drop(guard);
    assert!(
        logs.text().contains("authentication with"),
        "{}",
        logs.text()
    );

    // Wrong password: refused.
    let wrong = docker_config_dir(&[(&auth.addr, "cuedag", "nope")]);
    let error = cache_with_docker_config(Direction::To, &text, &store, wrong.path())
        .export(&export)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("credentials were refused"),
        "{error}"
    );

    // Right password from `config.json` (keyed by `http://host:port` as
    // `docker login` may write it): export, then a fresh import.
    let right = docker_config_dir(&[(&format!("http://{}", auth.addr), "cuedag", "cache-pass")]);
    let to = cache_with_docker_config(Direction::To, &text, &store, right.path());
    let report = to.export(&export).await.unwrap();
    assert_eq!(report.blobs_written, 3);
    let (_dir2, store2) = new_store();
    let from = cache_with_docker_config(Direction::From, &text, &store2, right.path());
    let index = from.import().await;
    let hit = index.lookup(&key("b")).unwrap();
    assert_eq!(
        from.fetch_layer(&hit.layers[1]).await.unwrap(),
        layer_bytes(&export, &hit.layers[1].digest)
    );
    assert_eq!(to.export(&export).await.unwrap().blobs_written, 0);

    // Explicit credentials win over an empty Docker config.
    let explicit = RemoteCache::with_credentials(
        &spec(Direction::From, &text),
        store2.clone(),
        RegistryConfig::default(),
        DockerConfig::default(),
        Some(Credentials::new("cuedag", "cache-pass")),
    )
    .unwrap();
    assert_eq!(explicit.import().await.len(), 2);
    let shown = format!("{explicit:?} {:?}", to.remote());
    assert!(
        shown.contains("cuedag") && !shown.contains("cache-pass"),
        "{shown}"
    );

    // `from_spec_env` reads `$DOCKER_CONFIG/config.json` (the only test
    // that touches the variable).
    std::env::set_var("DOCKER_CONFIG", right.path());
    let from_env =
        RemoteCache::from_spec_env(&spec(Direction::From, &text), store2.clone()).unwrap();
    std::env::remove_var("DOCKER_CONFIG");
    assert_eq!(from_env.import().await.len(), 2);
}

#[tokio::test]
async fn credentials_for_an_anonymous_registry_do_not_break_it() {
    let addr = registry();
    let repo = unique_repo(&addr, "anon-creds");
    let text = format!("type=registry,ref={repo}:main");
    let config = docker_config_dir(&[(&addr, "someone", "secret"), ("ghcr.io", "x", "y")]);
    let (_dir, store) = new_store();
    let export = chain_export(&["a"], &[51], 2048);
    let to = cache_with_docker_config(Direction::To, &text, &store, config.path());
    assert_eq!(to.export(&export).await.unwrap().blobs_written, 2);
    let from = cache_with_docker_config(Direction::From, &text, &store, config.path());
    assert_eq!(from.import().await.len(), 1);
}
