//! `type=registry`: the export/import logic over [`RemoteBlobs`], which the
//! backend implements with its registry client (bound to the repository of
//! `ref`).
//!
//! Export HEADs every blob and pushes only those the registry lacks, then
//! pushes the cache manifest under the tag. Import reads the manifest and
//! the config only; layer blobs are fetched one hit at a time and verified.

use std::future::Future;

use crate::digest::Digest;
use crate::format::{self, BlobSource, CacheConfig, CacheIndex, LayerDescriptor};
use crate::spec::FormatOptions;
use crate::{Error, ExportReport};

/// A manifest as stored in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteManifest {
    /// Its `Content-Type`.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The registry operations the cache needs, on one repository.
pub trait RemoteBlobs: Sync {
    /// The transport's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The size of a blob, or `None` if the repository lacks it.
    fn head_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<u64>, Self::Error>> + Send;

    /// A blob's bytes, or `None` if the repository lacks it.
    fn get_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send;

    /// Uploads a blob (its digest already verified).
    fn put_blob(
        &self,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The manifest at `reference` (a tag or a digest), or `None`.
    fn get_manifest(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<RemoteManifest>, Self::Error>> + Send;

    /// Stores a manifest under `reference` (a tag).
    fn put_manifest(
        &self,
        reference: &str,
        manifest: RemoteManifest,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

fn remote_err<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    target: &impl ToString,
) -> impl FnOnce(E) -> Error {
    let target = target.to_string();
    move |e| Error::Remote {
        operation,
        target,
        source: Box::new(e),
    }
}

impl<T: RemoteBlobs + Send> RemoteBlobs for std::sync::Arc<T> {
    type Error = T::Error;

    fn head_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<u64>, Self::Error>> + Send {
        (**self).head_blob(digest)
    }

    fn get_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send {
        (**self).get_blob(digest)
    }

    fn put_blob(
        &self,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).put_blob(digest, bytes)
    }

    fn get_manifest(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<RemoteManifest>, Self::Error>> + Send {
        (**self).get_manifest(reference)
    }

    fn put_manifest(
        &self,
        reference: &str,
        manifest: RemoteManifest,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).put_manifest(reference, manifest)
    }
}

impl<T: RemoteBlobs> RemoteBlobs for &T {
    type Error = T::Error;

    fn head_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<u64>, Self::Error>> + Send {
        (**self).head_blob(digest)
    }

    fn get_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send {
        (**self).get_blob(digest)
    }

    fn put_blob(
        &self,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).put_blob(digest, bytes)
    }

    fn get_manifest(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<RemoteManifest>, Self::Error>> + Send {
        (**self).get_manifest(reference)
    }

    fn put_manifest(
        &self,
        reference: &str,
        manifest: RemoteManifest,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).put_manifest(reference, manifest)
    }
}

/// The registry cache logic over a [`RemoteBlobs`] (owned; wrap a shared
/// client in an `Arc`).
///
/// Blobs travel as whole `Vec<u8>`s through the trait.
#[derive(Debug)]
pub struct RegistryCache<R> {
    remote: R,
}

impl<R: RemoteBlobs> RegistryCache<R> {
    /// Wraps a remote bound to the repository of `ref`.
    pub fn new(remote: R) -> Self {
        RegistryCache { remote }
    }

    /// The remote.
    pub fn remote(&self) -> &R {
        &self.remote
    }

    /// Pushes `export` under `tag` (the tag part of `ref`): HEAD each blob,
    /// push the missing ones (verified), then the manifest.
    pub async fn export(
        &self,
        export: &format::CacheExport,
        tag: &str,
        format: FormatOptions,
    ) -> Result<ExportReport, Error> {
        let built = format::build(export, format)?;
        let mut report = ExportReport {
            tag: tag.to_owned(),
            manifest: built.manifest.descriptor.digest.clone(),
            blobs_written: 0,
            bytes_written: 0,
            blobs_present: 0,
        };
        let config_source = BlobSource::Bytes(built.config.bytes.clone());
        let blobs = built
            .layers
            .iter()
            .map(|l| (&l.descriptor.digest, l.descriptor.size, &l.source))
            .chain(std::iter::once((
                &built.config.descriptor.digest,
                built.config.descriptor.size,
                &config_source,
            )));
        for (digest, size, source) in blobs {
            let present = self
                .remote
                .head_blob(digest)
                .await
                .map_err(remote_err("HEAD blob", digest))?;
            if present == Some(size) {
                report.blobs_present += 1;
                continue;
            }
            let bytes = source.read()?;
            let found = Digest::of_bytes(&bytes);
            if &found != digest {
                return Err(Error::DigestMismatch {
                    expected: digest.clone(),
                    found,
                    size: bytes.len() as u64,
                });
            }
            self.remote
                .put_blob(digest, bytes)
                .await
                .map_err(remote_err("PUT blob", digest))?;
            report.blobs_written += 1;
            report.bytes_written += size;
        }
        let manifest = RemoteManifest {
            media_type: built.manifest.descriptor.media_type.clone(),
            bytes: built.manifest.bytes,
        };
        self.remote
            .put_manifest(tag, manifest)
            .await
            .map_err(remote_err("PUT manifest", &tag))?;
        Ok(report)
    }

    /// Reads the cache manifest at `reference` (tag or digest) and its
    /// config, nothing else. Never fails: problems are warnings and give an
    /// empty index.
    pub async fn import(&self, reference: &str) -> CacheIndex {
        match self.try_import(reference).await {
            Ok(Some(index)) => index,
            Ok(None) => {
                tracing::info!(reference, "no cache in the registry yet");
                CacheIndex::default()
            }
            Err(message) => {
                tracing::warn!(reference, "{message}; cache not imported");
                CacheIndex::default()
            }
        }
    }

    async fn try_import(&self, reference: &str) -> Result<Option<CacheIndex>, String> {
        let Some(manifest) = self
            .remote
            .get_manifest(reference)
            .await
            .map_err(|e| format!("cannot read the cache manifest: {e}"))?
        else {
            return Ok(None);
        };
        if let Ok(expected) = Digest::parse(reference) {
            let found = Digest::of_bytes(&manifest.bytes);
            if found != expected {
                return Err(format!(
                    "manifest does not match its digest (found {found})"
                ));
            }
        }
        let parsed = format::parse_manifest(&manifest.bytes)?;
        let config_bytes = self
            .remote
            .get_blob(&parsed.config.digest)
            .await
            .map_err(|e| format!("cannot read the cache config: {e}"))?
            .ok_or_else(|| format!("cache config `{}` missing", parsed.config.digest))?;
        if Digest::of_bytes(&config_bytes) != parsed.config.digest {
            return Err(format!(
                "cache config `{}` does not match its digest",
                parsed.config.digest
            ));
        }
        let config: CacheConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| format!("invalid cache config: {e}"))?;
        let mut index = CacheIndex::default();
        index.add(&config, &parsed.layers);
        Ok(Some(index))
    }

    /// Fetches a layer blob, verified; `None` (with a warning) if it is
    /// missing, corrupt or unreachable: the caller treats the step as a miss.
    pub async fn fetch_layer(&self, layer: &LayerDescriptor) -> Option<Vec<u8>> {
        match self.remote.get_blob(&layer.digest).await {
            Ok(Some(bytes)) if Digest::of_bytes(&bytes) == layer.digest => Some(bytes),
            Ok(Some(_)) => {
                tracing::warn!(blob = %layer.digest, "registry blob does not match its digest; treated as a miss");
                None
            }
            Ok(None) => {
                tracing::warn!(blob = %layer.digest, "registry blob missing; treated as a miss");
                None
            }
            Err(e) => {
                tracing::warn!(blob = %layer.digest, "cannot fetch registry blob ({e}); treated as a miss");
                None
            }
        }
    }
}
