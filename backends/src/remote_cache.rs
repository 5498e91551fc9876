//! `type=registry` caches over the real registry client: [`OciRemote`]
//! implements `cuedag-cache`'s [`RemoteBlobs`] with `cuedag-oci`'s
//! [`RegistryClient`], bound to the repository of the spec's `ref`, and
//! [`RemoteCache`] ties a parsed `--cache-to` / `--cache-from` spec to it.
//!
//! The cache always talks to the `ref`'s own registry, never to a mirror
//! (a mirror could serve another cache under the same name): the client
//! built by [`RemoteCache::from_spec`] has no mirrors. Loopback registries
//! (`127.0.0.1:5000`) and the configured insecure hosts are spoken to over
//! HTTP; credentials come from the explicit ones, else `auths.<host>` of
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.

use std::collections::HashMap;

use cuedag_cache::format::{self, BlobSource, CacheExport, CacheIndex, LayerDescriptor};
use cuedag_cache::spec::{FormatOptions, RegistrySpec};
use cuedag_cache::{
    CacheBackend, CacheSpec, Digest, Direction, ExportReport, Mode, RegistryCache, RemoteBlobs,
    RemoteManifest,
};
use cuedag_oci::{
    BlobStore, Credentials, DockerConfig, OciError, Reference, RegistryClient, RegistryConfig,
};

use crate::BackendError;

/// One repository of a registry, seen through [`RegistryClient`]: the
/// [`RemoteBlobs`] the registry cache logic runs on.
///
/// Blob reads and `HEAD`s go to the repository's own registry. Manifest reads
/// go through [`RegistryClient::fetch_manifest`], which tries the client's
/// mirrors first: give it a client without mirrors (as
/// [`RemoteCache::from_spec`] does).
#[derive(Clone, Debug)]
pub struct OciRemote {
    client: RegistryClient,
    /// `registry/repository`, without tag or digest.
    name: String,
    /// The repository (with the default tag, which blob requests ignore).
    repo: Reference,
    credentials: Option<Credentials>,
}

impl OciRemote {
    /// Binds `client` to `repository` (`127.0.0.1:5000/team/cache`, without
    /// tag or digest; Docker Hub names are normalised). `credentials`, when
    /// given, take precedence over the Docker config's.
    pub fn new(
        client: RegistryClient,
        repository: &str,
        credentials: Option<Credentials>,
    ) -> Result<Self, BackendError> {
        let reference = Reference::parse(repository).map_err(|e| {
            BackendError::Failed(format!("invalid cache repository `{repository}`: {e}"))
        })?;
        if has_tag(repository) {
            return Err(BackendError::Failed(format!(
                "invalid cache repository `{repository}`: expected a repository without tag or digest (hint: write `host/path`, the tag goes in the spec's `ref`)"
            )));
        }
        Ok(OciRemote {
            client,
            name: reference.name(),
            repo: reference,
            credentials,
        })
    }

    /// The repository, normalised (`registry/path`).
    pub fn repository(&self) -> &str {
        &self.name
    }

    /// The client.
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The reference of this repository at `tag_or_digest`.
    fn at(&self, tag_or_digest: &str) -> Result<Reference, OciError> {
        let text = if tag_or_digest.starts_with("sha256:") {
            format!("{}@{tag_or_digest}", self.name)
        } else {
            format!("{}:{tag_or_digest}", self.name)
        };
        Reference::parse(&text)
    }
}

/// Whether the last path component of `reference` carries a `:tag`.
fn has_tag(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.contains(':') || reference.contains('@')
}

fn oci_digest(digest: &Digest) -> Result<cuedag_oci::Digest, OciError> {
    cuedag_oci::Digest::parse(digest.as_str())
}

impl RemoteBlobs for OciRemote {
    type Error = OciError;

    async fn head_blob(&self, digest: &Digest) -> Result<Option<u64>, OciError> {
        let blob = oci_digest(digest)?;
        self.client
            .head_blob(&self.repo, &blob, self.credentials.as_ref())
            .await
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, OciError> {
        let blob = oci_digest(digest)?;
        self.client
            .fetch_blob(&self.repo, &blob, self.credentials.as_ref())
            .await
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<(), OciError> {
        let expected = oci_digest(digest)?;
        // `push_blob` uploads from the store: put the (verified) bytes there
        // first. The store is content-addressed, so this is idempotent.
        let store = self.client.store().clone();
        let stored = tokio::task::spawn_blocking(move || store.put_bytes(&bytes))
            .await
            .map_err(|e| OciError::Io {
                op: "joining a blocking task",
                path: Default::default(),
                source: std::io::Error::other(e.to_string()),
            })??;
        if stored != expected {
            return Err(OciError::DigestMismatch {
                what: "cache blob before upload".into(),
                expected: expected.to_string(),
                actual: stored.to_string(),
            });
        }
        self.client
            .push_blob(&self.repo, &expected, self.credentials.as_ref())
            .await
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RemoteManifest>, OciError> {
        let at = self.at(reference)?;
        match self
            .client
            .fetch_manifest(&at, self.credentials.as_ref())
            .await
        {
            Ok((_digest, media_type, bytes)) => Ok(Some(RemoteManifest { media_type, bytes })),
            Err(OciError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_manifest(
        &self,
        reference: &str,
        manifest: RemoteManifest,
    ) -> Result<(), OciError> {
        let at = self.at(reference)?;
        self.client
            .push_manifest(
                &at,
                &manifest.media_type,
                &manifest.bytes,
                self.credentials.as_ref(),
            )
            .await
            .map(|_digest| ())
    }
}

/// Requests an export has in flight at once (`HEAD`s, then uploads).
const PARALLEL_REQUESTS: usize = 8;

/// A `type=registry` cache spec bound to its registry: export, import and
/// layer fetches on the repository of its `ref`.
///
/// An export `HEAD`s every blob and uploads the missing ones a few at a
/// time, then hands over to [`RegistryCache::export`] (which finds every
/// blob present without asking again) for the manifest.
#[derive(Debug)]
pub struct RemoteCache<R = OciRemote> {
    cache: RegistryCache<Prefetched<R>>,
    spec: RegistrySpec,
    direction: Direction,
    /// One export at a time (they share the prefetched sizes).
    exporting: tokio::sync::Mutex<()>,
}

impl RemoteCache<OciRemote> {
    /// Binds a `type=registry` `spec` to a client over `store` with the
    /// registry settings `registries` (its mirrors are ignored: the cache
    /// talks to the `ref`'s registry only; its insecure hosts are kept) and
    /// the credentials of `docker`.
    pub fn from_spec(
        spec: &CacheSpec,
        store: BlobStore,
        registries: RegistryConfig,
        docker: DockerConfig,
    ) -> Result<Self, BackendError> {
        Self::with_credentials(spec, store, registries, docker, None)
    }

    /// Like [`RemoteCache::from_spec`], with the registry settings and Docker
    /// config of the environment (`CUEDAG_INSECURE_REGISTRIES`, the
    /// registries file, `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`).
    pub fn from_spec_env(spec: &CacheSpec, store: BlobStore) -> Result<Self, BackendError> {
        let registries = RegistryConfig::from_env()
            .map_err(|e| BackendError::Failed(format!("{}: {e}", spec.source_name())))?;
        let mut docker = DockerConfig::load_default()
            .map_err(|e| BackendError::Failed(format!("{}: {e}", spec.source_name())))?;
        docker.apply_hub_env(std::env::vars());
        Self::from_spec(spec, store, registries, docker)
    }

    /// Like [`RemoteCache::from_spec`], with explicit credentials for the
    /// `ref`'s registry (they take precedence over `docker`'s).
    pub fn with_credentials(
        spec: &CacheSpec,
        store: BlobStore,
        mut registries: RegistryConfig,
        docker: DockerConfig,
        credentials: Option<Credentials>,
    ) -> Result<Self, BackendError> {
        let registry = registry_spec(spec)?;
        registries.mirrors.clear();
        let client = RegistryClient::new(store, registries, docker)
            .map_err(|e| BackendError::Failed(format!("{}: {e}", spec.source_name())))?;
        let remote = OciRemote::new(client, registry.repository(), credentials).map_err(|e| {
            BackendError::Failed(format!(
                "{} type=registry, key \"ref\": {e}",
                spec.source_name()
            ))
        })?;
        Self::with_remote(spec, remote)
    }
}

impl<R> RemoteCache<R>
where
    R: RemoteBlobs + Clone + Send + Sync + 'static,
{
    /// Binds a `type=registry` `spec` to `remote`, which must be bound to
    /// the repository of the spec's `ref` (e.g. an [`OciRemote`] behind a
    /// decorator).
    pub fn with_remote(spec: &CacheSpec, remote: R) -> Result<Self, BackendError> {
        Ok(RemoteCache {
            cache: RegistryCache::new(Prefetched {
                inner: remote,
                present: std::sync::Mutex::new(HashMap::new()),
            }),
            spec: registry_spec(spec)?,
            direction: spec.direction,
            exporting: tokio::sync::Mutex::new(()),
        })
    }

    /// The remote.
    pub fn remote(&self) -> &R {
        &self.cache.remote().inner
    }

    /// `mode=`: with `min` the caller exports the steps of the final results
    /// only, with `max` every step.
    pub fn mode(&self) -> Mode {
        self.spec.mode
    }

    /// `oci-mediatypes=` and `image-manifest=`.
    pub fn format(&self) -> FormatOptions {
        self.spec.format
    }

    /// Export (`--cache-to`) or import (`--cache-from`).
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The `ref` as written.
    pub fn reference(&self) -> &str {
        &self.spec.reference
    }

    /// The tag an export pushes (the `ref`'s, else `latest`).
    pub fn export_tag(&self) -> &str {
        self.spec.export_tag()
    }

    /// Pushes `export` under the `ref`'s tag in the spec's format: `HEAD`s
    /// every blob and uploads (verified) those the registry lacks, a few at
    /// a time, then pushes the manifest. An unchanged export uploads no blob.
    /// Runs its requests as tasks: call it inside a tokio runtime.
    pub async fn export(&self, export: &CacheExport) -> Result<ExportReport, cuedag_cache::Error> {
        let _one_at_a_time = self.exporting.lock().await;
        let prefetched = self.cache.remote();
        prefetched.clear();
        let uploaded = self.upload_missing(export).await;
        let result = match uploaded {
            Ok((blobs, bytes)) => self
                .cache
                .export(export, self.spec.export_tag(), self.spec.format)
                .await
                .map(|mut report| {
                    report.blobs_present =
                        (report.blobs_present + report.blobs_written).saturating_sub(blobs);
                    report.blobs_written += blobs;
                    report.bytes_written += bytes;
                    report
                }),
            Err(error) => Err(error),
        };
        prefetched.clear();
        result
    }

    /// The parallel pass of [`RemoteCache::export`]: returns the number of
    /// blobs uploaded and their bytes, and leaves every blob's size in the
    /// prefetched map.
    async fn upload_missing(
        &self,
        export: &CacheExport,
    ) -> Result<(usize, u64), cuedag_cache::Error> {
        let built = format::build(export, self.spec.format)?;
        let config_source = BlobSource::Bytes(built.config.bytes.clone());
        let blobs: Vec<(&Digest, u64, &BlobSource)> = built
            .layers
            .iter()
            .map(|l| (&l.descriptor.digest, l.descriptor.size, &l.source))
            .chain(std::iter::once((
                &built.config.descriptor.digest,
                built.config.descriptor.size,
                &config_source,
            )))
            .collect();
        let remote = self.remote();
        let heads = limited(blobs.iter().map(|(digest, _, _)| {
            let (remote, digest) = (remote.clone(), (*digest).clone());
            async move {
                let found = remote.head_blob(&digest).await;
                found.map_err(|e| remote_error("HEAD blob", &digest, e))
            }
        }))
        .await?;
        let prefetched = self.cache.remote();
        let mut missing = Vec::new();
        for ((digest, size, source), found) in blobs.iter().zip(heads) {
            if found == Some(*size) {
                prefetched.remember(digest, *size);
            } else {
                missing.push((*digest, *size, *source));
            }
        }
        let uploads = missing.iter().map(|(digest, _, source)| {
            let (remote, digest) = (remote.clone(), (*digest).clone());
            let bytes = source.read();
            async move {
                let bytes = bytes?;
                let found = Digest::of_bytes(&bytes);
                if found != digest {
                    return Err(cuedag_cache::Error::DigestMismatch {
                        expected: digest,
                        found,
                        size: bytes.len() as u64,
                    });
                }
                let pushed = remote.put_blob(&digest, bytes).await;
                pushed.map_err(|e| remote_error("PUT blob", &digest, e))
            }
        });
        limited(uploads).await?;
        let mut bytes = 0;
        for (digest, size, _) in &missing {
            prefetched.remember(digest, *size);
            bytes += size;
        }
        Ok((missing.len(), bytes))
    }

    /// Reads the cache manifest at the `ref` (its digest, else its tag) and
    /// its config. Never fails: problems are warnings and give an empty
    /// index.
    pub async fn import(&self) -> CacheIndex {
        self.cache.import(self.spec.import_reference()).await
    }

    /// Like [`RemoteCache::import`], at another tag or digest of the same
    /// repository.
    pub async fn import_from(&self, reference: &str) -> CacheIndex {
        self.cache.import(reference).await
    }

    /// Fetches one layer of a hit, verified; `None` (with a warning) if it
    /// is missing, corrupt or unreachable, which the caller treats as a miss.
    pub async fn fetch_layer(&self, layer: &LayerDescriptor) -> Option<Vec<u8>> {
        self.cache.fetch_layer(layer).await
    }
}

fn registry_spec(spec: &CacheSpec) -> Result<RegistrySpec, BackendError> {
    match &spec.backend {
        CacheBackend::Registry(registry) => Ok(registry.clone()),
        CacheBackend::Local(_) => Err(wrong_type(spec, "local")),
        CacheBackend::Gha(_) => Err(wrong_type(spec, "gha")),
    }
}

fn remote_error<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    digest: &Digest,
    error: E,
) -> cuedag_cache::Error {
    cuedag_cache::Error::Remote {
        operation,
        target: digest.to_string(),
        source: Box::new(error),
    }
}

/// Runs `tasks` at most [`PARALLEL_REQUESTS`] at a time and returns their
/// outputs in order; the first error stops the rest.
async fn limited<T, F>(tasks: impl Iterator<Item = F>) -> Result<Vec<T>, cuedag_cache::Error>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, cuedag_cache::Error>> + Send + 'static,
{
    let mut running = tokio::task::JoinSet::new();
    let mut outputs: Vec<Option<T>> = Vec::new();
    for (i, task) in tasks.enumerate() {
        outputs.push(None);
        if running.len() >= PARALLEL_REQUESTS {
            finish_one(&mut running, &mut outputs).await?;
        }
        running.spawn(async move { (i, task.await) });
    }
    while !running.is_empty() {
        finish_one(&mut running, &mut outputs).await?;
    }
    Ok(outputs.into_iter().flatten().collect())
}

async fn finish_one<T: Send + 'static>(
    running: &mut tokio::task::JoinSet<(usize, Result<T, cuedag_cache::Error>)>,
    outputs: &mut [Option<T>],
) -> Result<(), cuedag_cache::Error> {
    match running.join_next().await {
        Some(Ok((i, Ok(value)))) => {
            if let Some(slot) = outputs.get_mut(i) {
                *slot = Some(value);
            }
            Ok(())
        }
        Some(Ok((_, Err(error)))) => Err(error),
        Some(Err(joined)) => Err(cuedag_cache::Error::Remote {
            operation: "export task",
            target: "blob".into(),
            source: Box::new(joined),
        }),
        None => Ok(()),
    }
}

/// A remote whose blob sizes the export's parallel pass already knows:
/// [`RegistryCache::export`]'s sequential `HEAD`s are answered from memory.
#[derive(Debug)]
struct Prefetched<R> {
    inner: R,
    present: std::sync::Mutex<HashMap<Digest, u64>>,
}

impl<R> Prefetched<R> {
    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, u64>> {
        match self.present.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn remember(&self, digest: &Digest, size: u64) {
        self.known().insert(digest.clone(), size);
    }

    fn take(&self, digest: &Digest) -> Option<u64> {
        self.known().remove(digest)
    }

    fn clear(&self) {
        self.known().clear();
    }
}

impl<R: RemoteBlobs + Send> RemoteBlobs for Prefetched<R> {
    type Error = R::Error;

    async fn head_blob(&self, digest: &Digest) -> Result<Option<u64>, R::Error> {
        if let Some(size) = self.take(digest) {
            return Ok(Some(size));
        }
        self.inner.head_blob(digest).await
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, R::Error> {
        self.inner.get_blob(digest).await
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<(), R::Error> {
        self.inner.put_blob(digest, bytes).await
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RemoteManifest>, R::Error> {
        self.inner.get_manifest(reference).await
    }

    async fn put_manifest(
        &self,
        reference: &str,
        manifest: RemoteManifest,
    ) -> Result<(), R::Error> {
        self.inner.put_manifest(reference, manifest).await
    }
}

fn wrong_type(spec: &CacheSpec, found: &str) -> BackendError {
    BackendError::Failed(format!(
        "{} type={found}: not a registry cache (hint: the registry cache needs `type=registry,ref=host/repo:tag`)",
        spec.source_name()
    ))
}
