//! The registry client: Registry HTTP API v2 pulls and pushes with token and
//! basic auth, mirrors, and platform selection.

use std::collections::HashMap;
use std::io::Write as _;

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::auth::{Credentials, DockerConfig};
use crate::digest::{self, Digest};
use crate::error::{OciError, Result};
use crate::media;
use crate::mirrors::{Endpoint, RegistryConfig};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{BlobStore, RefRecord};

/// Blobs up to this size are uploaded in one `PUT`; bigger ones in chunks.
const MONOLITHIC_LIMIT: u64 = 32 << 20;
/// Chunk size of chunked uploads.
const CHUNK_SIZE: usize = 16 << 20;
/// Layers downloaded at once by a pull.
const PARALLEL_DOWNLOADS: usize = 3;

/// How `pull` decides between the store and the registry (`#Pull.resolveMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResolveMode {
    /// Ask the registry for tags; use the store for references pinned by a
    /// digest already present. If the registry cannot be reached, a
    /// previously recorded resolution is used (with a warning).
    #[default]
    Default,
    /// Always ask the registry.
    ForcePull,
    /// Use a previously recorded resolution when there is one.
    PreferLocal,
}

/// Options of [`RegistryClient::pull`].
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// The platform to select from manifest lists and indexes.
    pub platform: Platform,
    /// Credentials for the reference's registry (`#Pull.auth`); when absent,
    /// `~/.docker/config.json` is used.
    pub credentials: Option<Credentials>,
    /// Store versus registry.
    pub resolve_mode: ResolveMode,
    /// Fetch only the manifest and config, not the layer blobs (the caller
    /// fetches layers when it needs their files, with
    /// [`RegistryClient::pull_blob`]).
    pub metadata_only: bool,
}

/// A layer of a pulled or pushed image; its blob is in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the (compressed) blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar, from the image config.
    pub diff_id: Option<Digest>,
    /// The layer media type.
    pub media_type: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// A pulled image: its manifest, config and layers, all in the store.
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// The normalised reference that was pulled.
    pub reference: Reference,
    /// The digest the reference (tag) points to: an index or the manifest.
    /// This is what `#Pull.digest` reports.
    pub digest: Digest,
    /// The digest of the platform-specific manifest.
    pub manifest_digest: Digest,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The digest of the image config blob.
    pub config_digest: Digest,
    /// The image config.
    pub config: ImageConfiguration,
    /// The image config as stored (to keep fields the type does not model).
    pub raw_config: Vec<u8>,
    /// The layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Where the image came from: an endpoint URL, or `store`.
    pub source: String,
}

/// What a reference resolves to; see [`RegistryClient::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The digest the reference points to (an index or the manifest).
    pub digest: Digest,
    /// The digest of the manifest for the wanted platform.
    pub manifest_digest: Digest,
    /// An endpoint URL, or `store`.
    pub source: String,
}

/// An image to push: a config blob and layer blobs already in the store.
#[derive(Clone, Debug)]
pub struct PushImage {
    /// The image config JSON (see [`crate::image::config_json`]).
    pub config: Vec<u8>,
    /// The layers, bottom first; their blobs must be in the store.
    pub layers: Vec<LayerInfo>,
    /// Whether to write Docker schema2 media types instead of OCI ones.
    pub docker_media_types: bool,
}

/// A client for OCI / Docker registries backed by a [`BlobStore`]. Clones
/// share the token cache.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
    docker: DockerConfig,
    store: BlobStore,
    /// `base_url|scope` → `Authorization` header value.
    tokens: std::sync::Arc<tokio::sync::Mutex<HashMap<String, String>>>,
    monolithic_limit: u64,
    chunk_size: usize,
}

impl RegistryClient {
    /// A client with explicit settings.
    pub fn new(store: BlobStore, config: RegistryConfig, docker: DockerConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cuedag/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            // A stalled transfer fails instead of hanging the build.
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| OciError::Http {
                url: String::new(),
                source: e,
            })?;
        Ok(RegistryClient {
            http,
            config,
            docker,
            store,
            tokens: std::sync::Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            monolithic_limit: MONOLITHIC_LIMIT,
            chunk_size: CHUNK_SIZE,
        })
    }

    /// Sets the upload strategy: blobs up to `monolithic_limit` bytes go in
    /// one `PUT`, bigger ones in `PATCH` chunks of `chunk_size` bytes
    /// (defaults: 32 MiB and 16 MiB).
    pub fn with_upload_sizes(mut self, monolithic_limit: u64, chunk_size: usize) -> Self {
        self.monolithic_limit = monolithic_limit;
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// A client configured from the environment: the registries config file
    /// and `CUEDAG_*` variables (see [`RegistryConfig::from_env`]),
    /// `~/.docker/config.json`, and `DOCKERHUB_AUTH_USER` /
    /// `DOCKERHUB_AUTH_PASSWORD` for Docker Hub.
    pub fn from_env(store: BlobStore) -> Result<Self> {
        let mut docker = DockerConfig::load_default()?;
        docker.apply_hub_env(std::env::vars());
        Self::new(store, RegistryConfig::from_env()?, docker)
    }

    /// The blob store.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// The registry settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Pulls `reference` for `options.platform`: resolves it (through
    /// mirrors first), fetches the manifest, config and layer blobs into the
    /// store (verifying every digest; corrupt stored blobs are refetched),
    /// and records the resolution for offline use.
    pub async fn pull(&self, reference: &Reference, options: &PullOptions) -> Result<PulledImage> {
        let platform_key = options.platform.to_string();
        let local_allowed = match options.resolve_mode {
            ResolveMode::ForcePull => false,
            ResolveMode::PreferLocal => true,
            ResolveMode::Default => reference.digest().is_some(),
        };
        if local_allowed {
            if let Some(image) = self
                .pull_local(reference, &options.platform, options.metadata_only)
                .await?
            {
                return Ok(image);
            }
        }
        let endpoints = self.config.pull_endpoints(reference.registry());
        if endpoints.is_empty() {
            return Err(OciError::Offline {
                registry: reference.registry().to_owned(),
                reason: "no mirror is configured for it".into(),
            });
        }
        let mut first_error = None;
        for endpoint in &endpoints {
            match self.pull_from(endpoint, reference, options).await {
                Ok(image) => {
                    self.store.set_ref(&RefRecord {
                        reference: reference.to_string(),
                        platform: platform_key.clone(),
                        manifest: image.manifest_digest.clone(),
                        top: image.digest.clone(),
                    })?;
                    return Ok(image);
                }
                Err(error) => {
                    tracing::warn!(endpoint = %endpoint.base_url, %reference, %error, "pull failed");
                    // Prefer reporting the origin registry's answer.
                    if first_error.is_none() || !endpoint.is_mirror {
                        first_error = Some(error);
                    }
                }
            }
        }
        if options.resolve_mode == ResolveMode::Default {
            if let Some(image) = self
                .pull_local(reference, &options.platform, options.metadata_only)
                .await?
            {
                tracing::warn!(%reference, "registry unreachable, using the resolution recorded in the store");
                return Ok(image);
            }
        }
        Err(first_error.unwrap_or_else(|| OciError::NotFound {
            reference: reference.to_string(),
            registry: reference.registry().to_owned(),
        }))
    }

    /// Resolves `reference` from the store alone; `None` if something is
    /// missing or corrupt.
    async fn pull_local(
        &self,
        reference: &Reference,
        platform: &Platform,
        metadata_only: bool,
    ) -> Result<Option<PulledImage>> {
        let store = self.store.clone();
        let reference = reference.clone();
        let platform = platform.clone();
        run_blocking(move || {
            let recorded = store.get_ref(&reference.to_string(), &platform.to_string());
            let (top, manifest_digest) = match (reference.digest(), recorded) {
                (Some(d), _) if store.contains(d) => (d.clone(), None),
                // A tag, or a pinned reference recorded under another
                // digest (mirror tag fallback).
                (_, Some(rec)) => (rec.top, Some(rec.manifest)),
                _ => return Ok(None),
            };
            let Ok(top_bytes) = store.read(&top) else {
                return Ok(None);
            };
            let manifest_digest = match manifest_digest {
                Some(d) => d,
                None => match media::sniff(None, &top_bytes) {
                    media::Kind::Index => {
                        match select_platform(&reference, &top_bytes, &platform) {
                            Ok(d) => d,
                            Err(_) => return Ok(None),
                        }
                    }
                    media::Kind::Manifest => top.clone(),
                    media::Kind::Other(_) => return Ok(None),
                },
            };
            let Ok(manifest_bytes) = store.read(&manifest_digest) else {
                return Ok(None);
            };
            let manifest = parse_manifest(&manifest_bytes, &reference)?;
            let config_digest = digest::from_oci(manifest.config().digest())?;
            let Ok(raw_config) = store.read(&config_digest) else {
                return Ok(None);
            };
            for layer in manifest.layers() {
                let d = digest::from_oci(layer.digest())?;
                if !metadata_only && !store.verify_cached(&d)? {
                    return Ok(None);
                }
            }
            let image = assemble(
                reference,
                top,
                manifest_digest,
                manifest,
                config_digest,
                raw_config,
                "store".into(),
            )?;
            Ok(Some(image))
        })
        .await
    }

    async fn pull_from(
        &self,
        endpoint: &Endpoint,
        reference: &Reference,
        options: &PullOptions,
    ) -> Result<PulledImage> {
        let repo = endpoint.repository(reference.repository());
        let scope = format!("repository:{repo}:pull");
        let creds = self.credentials_for(endpoint, options.credentials.as_ref());
        let ctx = Ctx {
            endpoint: endpoint.clone(),
            repo: repo.clone(),
            scope: scope.clone(),
            creds,
        };
        let (top, kind, bytes) = self.fetch_top(&ctx, reference).await?;
        self.store.put_bytes(&bytes)?;
        let (manifest_digest, manifest_bytes) = match kind {
            media::Kind::Index => {
                let child = select_platform(reference, &bytes, &options.platform)?;
                let (got, child_kind, child_bytes) = self
                    .get_manifest(&ctx, &child.to_string(), reference)
                    .await?;
                if got != child {
                    return Err(OciError::DigestMismatch {
                        what: format!("manifest of `{reference}` for `{}`", options.platform),
                        expected: child.to_string(),
                        actual: got.to_string(),
                    });
                }
                if child_kind != media::Kind::Manifest {
                    return Err(OciError::UnsupportedMediaType {
                        reference: reference.to_string(),
                        media_type: "nested index".into(),
                    });
                }
                self.store.put_bytes(&child_bytes)?;
                (child, child_bytes)
            }
            media::Kind::Manifest => (top.clone(), bytes),
            media::Kind::Other(media_type) => {
                return Err(OciError::UnsupportedMediaType {
                    reference: reference.to_string(),
                    media_type,
                })
            }
        };
        let manifest = parse_manifest(&manifest_bytes, reference)?;
        let config_digest = digest::from_oci(manifest.config().digest())?;
        self.ensure_blob(&ctx, &config_digest).await?;
        // Layers are fetched a few at a time; the first error cancels the rest.
        let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL_DOWNLOADS));
        let mut downloads = tokio::task::JoinSet::new();
        let wanted = if options.metadata_only { 0 } else { usize::MAX };
        for layer in manifest.layers().iter().take(wanted) {
            let blob = digest::from_oci(layer.digest())?;
            let (client, ctx, limit) = (self.clone(), ctx.clone(), limit.clone());
            downloads.spawn(async move {
                let _permit = limit.acquire_owned().await;
                client.ensure_blob(&ctx, &blob).await
            });
        }
        while let Some(done) = downloads.join_next().await {
            done.map_err(|e| OciError::Io {
                op: "joining a layer download",
                path: Default::default(),
                source: std::io::Error::other(e.to_string()),
            })??;
        }
        let raw_config = self.store.read(&config_digest)?;
        assemble(
            reference.clone(),
            top,
            manifest_digest,
            manifest,
            config_digest,
            raw_config,
            endpoint.base_url.clone(),
        )
    }

    /// Fetches what the reference names (by digest when pinned, else by
    /// tag) from one endpoint, applying the mirror tag fallback.
    async fn fetch_top(
        &self,
        ctx: &Ctx,
        reference: &Reference,
    ) -> Result<(Digest, media::Kind, Vec<u8>)> {
        let endpoint = &ctx.endpoint;
        match self
            .get_manifest(ctx, &reference.manifest_key(), reference)
            .await
        {
            Err(OciError::NotFound { .. })
                if endpoint.is_mirror
                    && self.config.tag_fallback
                    && reference.digest().is_some()
                    && reference.tag().is_some() =>
            {
                let tag = reference.tag().unwrap_or("latest");
                tracing::warn!(%reference, mirror = %endpoint.base_url, "pinned digest absent from the mirror, using tag `{tag}` instead (tag fallback is on)");
                self.get_manifest(ctx, tag, reference).await
            }
            Err(OciError::NotFound { .. }) => Err(OciError::NotFound {
                reference: reference.to_string(),
                registry: endpoint.base_url.clone(),
            }),
            other => {
                let (top, kind, bytes) = other?;
                if let Some(pinned) = reference.digest() {
                    if pinned != &top {
                        return Err(OciError::DigestMismatch {
                            what: format!("manifest of `{reference}`"),
                            expected: pinned.to_string(),
                            actual: top.to_string(),
                        });
                    }
                }
                Ok((top, kind, bytes))
            }
        }
    }

    /// Resolves `reference` for `options.platform` to digests without
    /// fetching the platform manifest, config or layers: one manifest
    /// request (or none, from the store, when the resolve mode allows).
    /// A backend can key its pull step by [`Resolved::manifest_digest`] and
    /// skip [`RegistryClient::pull`] when it already has that image.
    pub async fn resolve(&self, reference: &Reference, options: &PullOptions) -> Result<Resolved> {
        let platform_key = options.platform.to_string();
        let local = |store: &BlobStore| -> Option<Resolved> {
            match reference.digest() {
                Some(d) if store.contains(d) => {
                    let bytes = store.read(d).ok()?;
                    let manifest_digest = match media::sniff(None, &bytes) {
                        media::Kind::Index => {
                            select_platform(reference, &bytes, &options.platform).ok()?
                        }
                        media::Kind::Manifest => d.clone(),
                        media::Kind::Other(_) => return None,
                    };
                    Some(Resolved {
                        digest: d.clone(),
                        manifest_digest,
                        source: "store".into(),
                    })
                }
                _ => store
                    .get_ref(&reference.to_string(), &platform_key)
                    .map(|r| Resolved {
                        digest: r.top,
                        manifest_digest: r.manifest,
                        source: "store".into(),
                    }),
            }
        };
        let local_first = match options.resolve_mode {
            ResolveMode::ForcePull => false,
            ResolveMode::PreferLocal => true,
            ResolveMode::Default => reference.digest().is_some(),
        };
        if local_first {
            if let Some(found) = local(&self.store) {
                return Ok(found);
            }
        }
        let mut first_error = None;
        for endpoint in self.config.pull_endpoints(reference.registry()) {
            let repo = endpoint.repository(reference.repository());
            let scope = format!("repository:{repo}:pull");
            let ctx = Ctx {
                endpoint: endpoint.clone(),
                repo: repo.clone(),
                scope: scope.clone(),
                creds: self.credentials_for(&endpoint, options.credentials.as_ref()),
            };
            match self.fetch_top(&ctx, reference).await {
                Ok((top, kind, bytes)) => {
                    let manifest_digest = match kind {
                        media::Kind::Index => {
                            select_platform(reference, &bytes, &options.platform)?
                        }
                        media::Kind::Manifest => top.clone(),
                        media::Kind::Other(media_type) => {
                            return Err(OciError::UnsupportedMediaType {
                                reference: reference.to_string(),
                                media_type,
                            })
                        }
                    };
                    return Ok(Resolved {
                        digest: top,
                        manifest_digest,
                        source: endpoint.base_url.clone(),
                    });
                }
                Err(error) => {
                    tracing::warn!(endpoint = %endpoint.base_url, %reference, %error, "resolve failed");
                    if first_error.is_none() || !endpoint.is_mirror {
                        first_error = Some(error);
                    }
                }
            }
        }
        if options.resolve_mode == ResolveMode::Default {
            if let Some(found) = local(&self.store) {
                tracing::warn!(%reference, "registry unreachable, using the resolution recorded in the store");
                return Ok(found);
            }
        }
        Err(first_error.unwrap_or_else(|| OciError::Offline {
            registry: reference.registry().to_owned(),
            reason: "no mirror is configured for it".into(),
        }))
    }

    /// Fetches the manifest (or index) `reference` points to, without
    /// following indexes or fetching blobs: returns its digest, media type
    /// and bytes. Used to resolve a tag to a digest.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
    ) -> Result<(Digest, String, Vec<u8>)> {
        let mut last = None;
        for endpoint in self.config.pull_endpoints(reference.registry()) {
            let repo = endpoint.repository(reference.repository());
            let scope = format!("repository:{repo}:pull");
            let ctx = Ctx {
                endpoint: endpoint.clone(),
                repo: repo.clone(),
                scope: scope.clone(),
                creds: self.credentials_for(&endpoint, credentials),
            };
            match self
                .get_manifest(&ctx, &reference.manifest_key(), reference)
                .await
            {
                Ok((d, kind, bytes)) => {
                    let media_type = media::declared(&bytes).unwrap_or_else(|| match kind {
                        media::Kind::Index => media::OCI_INDEX.to_owned(),
                        media::Kind::Manifest => media::OCI_MANIFEST.to_owned(),
                        media::Kind::Other(m) => m,
                    });
                    return Ok((d, media_type, bytes));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| OciError::Offline {
            registry: reference.registry().to_owned(),
            reason: "no mirror is configured for it".into(),
        }))
    }

    /// Makes sure the store holds a verified copy of blob `blob` of
    /// `reference`'s repository, fetching it (through mirrors first) when it
    /// is absent or corrupt. For callers that read manifests themselves,
    /// such as a registry cache import fetching only the layers it needs.
    pub async fn pull_blob(
        &self,
        reference: &Reference,
        blob: &Digest,
        credentials: Option<&Credentials>,
    ) -> Result<()> {
        let mut first_error = None;
        for endpoint in self.config.pull_endpoints(reference.registry()) {
            let repo = endpoint.repository(reference.repository());
            let ctx = Ctx {
                scope: format!("repository:{repo}:pull"),
                creds: self.credentials_for(&endpoint, credentials),
                endpoint: endpoint.clone(),
                repo,
            };
            match self.ensure_blob(&ctx, blob).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::warn!(endpoint = %endpoint.base_url, %blob, %error, "blob fetch failed");
                    if first_error.is_none() || !endpoint.is_mirror {
                        first_error = Some(error);
                    }
                }
            }
        }
        Err(first_error.unwrap_or_else(|| OciError::Offline {
            registry: reference.registry().to_owned(),
            reason: "no mirror is configured for it".into(),
        }))
    }

    /// Pushes an image (blobs the registry lacks, then the manifest, tagged
    /// with the reference's tag, or by digest) and returns the manifest
    /// digest.
    pub async fn push_image(
        &self,
        reference: &Reference,
        image: &PushImage,
        credentials: Option<&Credentials>,
    ) -> Result<Digest> {
        let config_digest = self.store.put_bytes(&image.config)?;
        let manifest = crate::image::manifest_json(
            &config_digest,
            image.config.len() as u64,
            &image.layers,
            image.docker_media_types,
        );
        let media_type = if image.docker_media_types {
            media::DOCKER_MANIFEST
        } else {
            media::OCI_MANIFEST
        };
        for layer in &image.layers {
            self.push_blob(reference, &layer.digest, credentials)
                .await?;
        }
        self.push_blob(reference, &config_digest, credentials)
            .await?;
        self.push_manifest(reference, media_type, &manifest, credentials)
            .await
    }

    /// Uploads one blob from the store unless the registry already has it.
    pub async fn push_blob(
        &self,
        reference: &Reference,
        blob: &Digest,
        credentials: Option<&Credentials>,
    ) -> Result<()> {
        let endpoint = self.config.origin(reference.registry());
        let repo = endpoint.repository(reference.repository());
        let scope = format!("repository:{repo}:pull,push");
        let ctx = Ctx {
            endpoint: endpoint.clone(),
            repo: repo.clone(),
            scope: scope.clone(),
            creds: self.credentials_for(&endpoint, credentials),
        };
        let head_url = format!("{}/v2/{repo}/blobs/{blob}", endpoint.base_url);
        let head = self.send(&ctx, || self.http.head(&head_url)).await?;
        if head.status().is_success() {
            tracing::debug!(%blob, "blob already in the registry");
            return Ok(());
        }
        let size = self.store.size(blob).ok_or_else(|| OciError::NotFound {
            reference: blob.to_string(),
            registry: format!("store `{}`", self.store.root().display()),
        })?;
        let start_url = format!("{}/v2/{repo}/blobs/uploads/", endpoint.base_url);
        let started = self
            .send(&ctx, || {
                self.http.post(&start_url).header(CONTENT_LENGTH, "0")
            })
            .await?;
        let mut location = expect_status(started, &start_url, StatusCode::ACCEPTED)
            .await
            .and_then(|r| location_of(&endpoint, &r, &start_url))?;
        let path = self.store.blob_path(blob);
        if size <= self.monolithic_limit {
            let bytes = self.store.read(blob)?;
            let url = with_digest(&location, blob);
            let resp = self
                .send(&ctx, || {
                    self.http
                        .put(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, bytes.len())
                        .body(bytes.clone())
                })
                .await?;
            expect_status(resp, &url, StatusCode::CREATED).await?;
            return Ok(());
        }
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| OciError::io("opening blob", &path, e))?;
        let mut offset: u64 = 0;
        let mut hasher = digest::Hasher::new();
        loop {
            let mut chunk = vec![0u8; self.chunk_size];
            let n = read_full(&mut file, &mut chunk)
                .await
                .map_err(|e| OciError::io("reading blob", &path, e))?;
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            hasher.update(&chunk);
            let range = format!("{}-{}", offset, offset + n as u64 - 1);
            let url = location.clone();
            let resp = self
                .send(&ctx, || {
                    self.http
                        .patch(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, &range)
                        .header(CONTENT_LENGTH, n)
                        .body(chunk.clone())
                })
                .await?;
            let resp = expect_status(resp, &url, StatusCode::ACCEPTED).await?;
            location = location_of(&endpoint, &resp, &url)?;
            offset += n as u64;
        }
        if &hasher.finish() != blob {
            let _ = self.store.remove(blob);
            return Err(OciError::DigestMismatch {
                what: format!("stored blob `{}` while pushing", path.display()),
                expected: blob.to_string(),
                actual: "a different digest".into(),
            });
        }
        let url = with_digest(&location, blob);
        let resp = self
            .send(&ctx, || self.http.put(&url).header(CONTENT_LENGTH, "0"))
            .await?;
        expect_status(resp, &url, StatusCode::CREATED).await?;
        Ok(())
    }

    /// Uploads a manifest or index under the reference's tag (or its digest
    /// when it has no tag) and returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
        credentials: Option<&Credentials>,
    ) -> Result<Digest> {
        let endpoint = self.config.origin(reference.registry());
        let repo = endpoint.repository(reference.repository());
        let scope = format!("repository:{repo}:pull,push");
        let ctx = Ctx {
            endpoint: endpoint.clone(),
            repo: repo.clone(),
            scope: scope.clone(),
            creds: self.credentials_for(&endpoint, credentials),
        };
        let digest = self.store.put_bytes(bytes)?;
        let key = reference
            .tag()
            .map_or_else(|| digest.to_string(), str::to_owned);
        let url = format!("{}/v2/{repo}/manifests/{key}", endpoint.base_url);
        let body = bytes.to_vec();
        let resp = self
            .send(&ctx, || {
                self.http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let resp = expect_status(resp, &url, StatusCode::CREATED).await?;
        if let Some(reported) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if reported != digest.to_string() {
                return Err(OciError::DigestMismatch {
                    what: format!("pushed manifest `{reference}`"),
                    expected: digest.to_string(),
                    actual: reported.to_owned(),
                });
            }
        }
        Ok(digest)
    }

    /// Asks the reference's own registry (never a mirror) for the size of
    /// `blob` in the reference's repository (`HEAD`); `None` when absent.
    pub async fn head_blob(
        &self,
        reference: &Reference,
        blob: &Digest,
        credentials: Option<&Credentials>,
    ) -> Result<Option<u64>> {
        let ctx = self.origin_ctx(reference, credentials);
        let url = format!("{}/v2/{}/blobs/{blob}", ctx.endpoint.base_url, ctx.repo);
        let resp = self.send(&ctx, || self.http.head(&url)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = expect_status(resp, &url, StatusCode::OK).await?;
        let size = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Some(size.unwrap_or(0)))
    }

    /// Downloads `blob` from the reference's own registry (never a mirror)
    /// into memory, bypassing the store; `None` when absent. The bytes are
    /// not verified: the caller checks the digest.
    pub async fn fetch_blob(
        &self,
        reference: &Reference,
        blob: &Digest,
        credentials: Option<&Credentials>,
    ) -> Result<Option<Vec<u8>>> {
        let ctx = self.origin_ctx(reference, credentials);
        let url = format!("{}/v2/{}/blobs/{blob}", ctx.endpoint.base_url, ctx.repo);
        let resp = self.send(&ctx, || self.http.get(&url)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = expect_status(resp, &url, StatusCode::OK).await?;
        let bytes = resp.bytes().await.map_err(|e| OciError::Http {
            url: url.clone(),
            source: e,
        })?;
        Ok(Some(bytes.to_vec()))
    }

    fn origin_ctx(&self, reference: &Reference, credentials: Option<&Credentials>) -> Ctx {
        let endpoint = self.config.origin(reference.registry());
        let repo = endpoint.repository(reference.repository());
        Ctx {
            scope: format!("repository:{repo}:pull"),
            creds: self.credentials_for(&endpoint, credentials),
            endpoint,
            repo,
        }
    }

    fn credentials_for(
        &self,
        endpoint: &Endpoint,
        explicit: Option<&Credentials>,
    ) -> Option<Credentials> {
        if !endpoint.is_mirror {
            if let Some(c) = explicit {
                return Some(c.clone());
            }
        }
        self.docker.get(&endpoint.host).cloned()
    }

    async fn get_manifest(
        &self,
        ctx: &Ctx,
        key: &str,
        reference: &Reference,
    ) -> Result<(Digest, media::Kind, Vec<u8>)> {
        let url = format!("{}/v2/{}/manifests/{key}", ctx.endpoint.base_url, ctx.repo);
        let resp = self
            .send(ctx, || {
                self.http.get(&url).header(ACCEPT, media::ACCEPT_MANIFESTS)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(OciError::NotFound {
                reference: reference.to_string(),
                registry: ctx.endpoint.base_url.clone(),
            });
        }
        let resp = expect_status(resp, &url, StatusCode::OK).await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| OciError::Http {
                url: url.clone(),
                source: e,
            })?
            .to_vec();
        let digest = Digest::of(&bytes);
        if let Ok(wanted) = Digest::parse(key) {
            if wanted != digest {
                return Err(OciError::DigestMismatch {
                    what: format!("manifest `{url}`"),
                    expected: wanted.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let kind = media::sniff(content_type.as_deref(), &bytes);
        Ok((digest, kind, bytes))
    }

    /// Makes sure the store holds a good copy of `blob`, downloading it if
    /// absent or corrupt.
    async fn ensure_blob(&self, ctx: &Ctx, blob: &Digest) -> Result<()> {
        let store = self.store.clone();
        let wanted = blob.clone();
        if run_blocking(move || store.verify_cached(&wanted)).await? {
            return Ok(());
        }
        let url = format!("{}/v2/{}/blobs/{blob}", ctx.endpoint.base_url, ctx.repo);
        let resp = self.send(ctx, || self.http.get(&url)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(OciError::NotFound {
                reference: blob.to_string(),
                registry: ctx.endpoint.base_url.clone(),
            });
        }
        let mut resp = expect_status(resp, &url, StatusCode::OK).await?;
        let mut writer = self.store.writer()?;
        while let Some(chunk) = resp.chunk().await.map_err(|e| OciError::Http {
            url: url.clone(),
            source: e,
        })? {
            writer.write_all(&chunk).map_err(|e| {
                OciError::io("writing blob into", self.store.root().join("ingest"), e)
            })?;
        }
        tracing::debug!(%blob, size = writer.size(), "blob downloaded");
        writer.commit(Some(blob)).map_err(|e| match e {
            OciError::DigestMismatch {
                expected, actual, ..
            } => OciError::DigestMismatch {
                what: format!("blob from `{url}`"),
                expected,
                actual,
            },
            other => other,
        })?;
        Ok(())
    }

    /// Sends a request, answering a `401` challenge (Bearer token or Basic)
    /// once and caching the resulting header per endpoint and scope.
    async fn send(&self, ctx: &Ctx, make: impl Fn() -> RequestBuilder) -> Result<Response> {
        let key = format!("{}|{}", ctx.endpoint.base_url, ctx.scope);
        let cached = self.tokens.lock().await.get(&key).cloned();
        let mut request = make();
        if let Some(header) = &cached {
            request = request.header(AUTHORIZATION, header);
        }
        let resp = send_request(request).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| OciError::Auth {
                registry: ctx.endpoint.host.clone(),
                reason: "401 without a `WWW-Authenticate` challenge".into(),
            })?;
        let header = self.authenticate(ctx, &challenge).await?;
        self.tokens.lock().await.insert(key, header.clone());
        let resp = send_request(make().header(AUTHORIZATION, &header)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(OciError::Auth {
                registry: ctx.endpoint.host.clone(),
                reason: if ctx.creds.is_some() {
                    "the credentials were refused".into()
                } else {
                    "the registry requires credentials and none were found".into()
                },
            });
        }
        Ok(resp)
    }

    async fn authenticate(&self, ctx: &Ctx, challenge: &str) -> Result<String> {
        let (scheme, params) = parse_challenge(challenge);
        let auth_error = |reason: String| OciError::Auth {
            registry: ctx.endpoint.host.clone(),
            reason,
        };
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => ctx
                .creds
                .as_ref()
                .map(Credentials::basic_header)
                .ok_or_else(|| {
                    auth_error(
                        "the registry requires credentials (Basic) and none were found".into(),
                    )
                }),
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| auth_error("Bearer challenge without `realm`".into()))?;
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(service) = params.get("service") {
                    query.push(("service", service));
                }
                query.push((
                    "scope",
                    params
                        .get("scope")
                        .map_or(ctx.scope.as_str(), String::as_str),
                ));
                let mut request = self.http.get(realm).query(&query);
                if let Some(creds) = &ctx.creds {
                    request = request.header(AUTHORIZATION, creds.basic_header());
                }
                let resp = send_request(request).await?;
                if !resp.status().is_success() {
                    return Err(auth_error(format!(
                        "token endpoint `{realm}` answered {}",
                        resp.status().as_u16()
                    )));
                }
                #[derive(serde::Deserialize)]
                struct TokenReply {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body = resp.bytes().await.map_err(|e| OciError::Http {
                    url: realm.clone(),
                    source: e,
                })?;
                let reply: TokenReply =
                    serde_json::from_slice(&body).map_err(|e| OciError::Json {
                        what: format!("token reply from `{realm}`"),
                        source: e,
                    })?;
                let token = reply.token.or(reply.access_token).ok_or_else(|| {
                    auth_error(format!("token endpoint `{realm}` returned no token"))
                })?;
                Ok(format!("Bearer {token}"))
            }
            other => Err(auth_error(format!("unsupported auth scheme `{other}`"))),
        }
    }
}

#[derive(Clone)]
struct Ctx {
    endpoint: Endpoint,
    repo: String,
    scope: String,
    creds: Option<Credentials>,
}

async fn send_request(request: RequestBuilder) -> Result<Response> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| OciError::Http {
        url: String::new(),
        source: e,
    })?;
    let url = request.url().to_string();
    let method: Method = request.method().clone();
    tracing::trace!(%method, %url, "registry request");
    client
        .execute(request)
        .await
        .map_err(|e| OciError::Http { url, source: e })
}

async fn expect_status(resp: Response, url: &str, wanted: StatusCode) -> Result<Response> {
    let status = resp.status();
    if status == wanted
        || (wanted == StatusCode::CREATED && status.is_success())
        || (wanted == StatusCode::OK && status.is_success())
    {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(500).collect();
    Err(OciError::Registry {
        url: url.to_owned(),
        status: status.as_u16(),
        body: body.trim().to_owned(),
    })
}

fn location_of(endpoint: &Endpoint, resp: &Response, url: &str) -> Result<String> {
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| OciError::Registry {
            url: url.to_owned(),
            status: resp.status().as_u16(),
            body: "upload response without a `Location` header".into(),
        })?;
    Ok(
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{}", endpoint.base_url, location)
        },
    )
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt as _;
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Runs blocking file work off the async threads.
pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OciError::Io {
            op: "joining a blocking task",
            path: Default::default(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// Splits `Bearer realm="…",service="…"` into the scheme and parameters.
fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    (scheme.to_owned(), params)
}

fn parse_manifest(bytes: &[u8], reference: &Reference) -> Result<ImageManifest> {
    serde_json::from_slice(bytes).map_err(|e| OciError::Json {
        what: format!("manifest of `{reference}`"),
        source: e,
    })
}

/// Picks the manifest for `platform` out of an index or manifest list.
fn select_platform(
    reference: &Reference,
    index_bytes: &[u8],
    platform: &Platform,
) -> Result<Digest> {
    let index: ImageIndex = serde_json::from_slice(index_bytes).map_err(|e| OciError::Json {
        what: format!("index of `{reference}`"),
        source: e,
    })?;
    let mut available = Vec::new();
    for entry in index.manifests() {
        let Some(p) = entry.platform() else {
            continue;
        };
        let os = p.os().to_string();
        let arch = p.architecture().to_string();
        let variant = p.variant().as_deref();
        if platform.matches(&os, &arch, variant) {
            return digest::from_oci(entry.digest());
        }
        available.push(match variant {
            Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
            _ => format!("{os}/{arch}"),
        });
    }
    Err(OciError::NoMatchingPlatform {
        reference: reference.to_string(),
        platform: platform.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

fn assemble(
    reference: Reference,
    top: Digest,
    manifest_digest: Digest,
    manifest: ImageManifest,
    config_digest: Digest,
    raw_config: Vec<u8>,
    source: String,
) -> Result<PulledImage> {
    let config = parse_config(&raw_config, &reference)?;
    let diff_ids = config.rootfs().diff_ids();
    let mut layers = Vec::new();
    for (i, layer) in manifest.layers().iter().enumerate() {
        layers.push(LayerInfo {
            digest: digest::from_oci(layer.digest())?,
            diff_id: diff_ids.get(i).and_then(|d| Digest::parse(d).ok()),
            media_type: layer.media_type().to_string(),
            size: layer.size(),
        });
    }
    Ok(PulledImage {
        reference,
        digest: top,
        manifest_digest,
        manifest,
        config_digest,
        config,
        raw_config,
        layers,
        source,
    })
}

/// Parses an image config, tolerating the optional fields `oci-spec`
/// insists on (`history`, `rootfs.diff_ids`, `os`, `architecture`).
pub fn parse_config(raw: &[u8], reference: &Reference) -> Result<ImageConfiguration> {
    let json_error = |e| OciError::Json {
        what: format!("image config of `{reference}`"),
        source: e,
    };
    let mut value: serde_json::Value = serde_json::from_slice(raw).map_err(json_error)?;
    if let Some(object) = value.as_object_mut() {
        object
            .entry("history")
            .or_insert_with(|| serde_json::json!([]));
        object
            .entry("architecture")
            .or_insert_with(|| serde_json::json!("amd64"));
        object
            .entry("os")
            .or_insert_with(|| serde_json::json!("linux"));
        let rootfs = object
            .entry("rootfs")
            .or_insert_with(|| serde_json::json!({"type": "layers", "diff_ids": []}));
        if let Some(rootfs) = rootfs.as_object_mut() {
            rootfs
                .entry("type")
                .or_insert_with(|| serde_json::json!("layers"));
            rootfs
                .entry("diff_ids")
                .or_insert_with(|| serde_json::json!([]));
        }
    }
    serde_json::from_value(value).map_err(json_error)
}
