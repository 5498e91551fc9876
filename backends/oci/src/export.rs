//! Image archives for `#Export`: an OCI image layout or a `docker load`
//! archive, written as one tar stream from blobs in the store.

use std::io::{self, Write};

use serde_json::json;

use crate::client::LayerInfo;
use crate::digest::Digest;
use crate::error::{OciError, Result};
use crate::media;
use crate::reference::Reference;
use crate::store::BlobStore;

/// The format of an exported image archive (`#Export.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout (`oci-layout`, `index.json`, `blobs/`).
    Oci,
    /// A `docker load` archive: the OCI layout plus `manifest.json` and
    /// Docker media types.
    Docker,
}

impl ArchiveFormat {
    /// Parses `oci` or `docker`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "oci" => Ok(ArchiveFormat::Oci),
            "docker" => Ok(ArchiveFormat::Docker),
            other => Err(OciError::Config {
                location: "#Export.type".into(),
                reason: format!("unsupported export type `{other}`, expected `docker` or `oci`"),
            }),
        }
    }
}

/// What was written by [`write_archive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// Digest of the image config (`#Export.imageID`).
    pub config_digest: Digest,
    /// Digest of the image manifest.
    pub manifest_digest: Digest,
}

/// Writes an image archive of `config` (JSON) and `layers` (blobs in
/// `store`) tagged `tag` to `out`. Entries are in a fixed order with zero
/// mtimes, so equal inputs give equal archives.
pub fn write_archive(
    store: &BlobStore,
    out: impl Write,
    format: ArchiveFormat,
    tag: &Reference,
    config: &[u8],
    layers: &[LayerInfo],
) -> Result<ArchiveInfo> {
    let docker = format == ArchiveFormat::Docker;
    let config_digest = store.put_bytes(config)?;
    let manifest = crate::image::manifest_json(&config_digest, config.len() as u64, layers, docker);
    let manifest_digest = store.put_bytes(&manifest)?;
    let manifest_type = if docker {
        media::DOCKER_MANIFEST
    } else {
        media::OCI_MANIFEST
    };
    let short_tag = tag.tag().unwrap_or("latest");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": manifest_type,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": tag.to_string(),
                "org.opencontainers.image.ref.name": short_tag,
            },
        }],
    });
    let io_err = |e: io::Error| OciError::io("writing image archive for", store.root(), e);
    let mut builder = tar::Builder::new(out);
    append(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io_err)?;
    append(
        &mut builder,
        "index.json",
        &serde_json::to_vec(&index).unwrap_or_default(),
    )
    .map_err(io_err)?;
    if docker {
        let familiar = familiar_name(tag);
        let docker_manifest = json!([{
            "Config": format!("blobs/sha256/{}", config_digest.hex()),
            "RepoTags": [familiar],
            "Layers": layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }]);
        append(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&docker_manifest).unwrap_or_default(),
        )
        .map_err(io_err)?;
    }
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    for path in ["blobs/", "blobs/sha256/"] {
        builder
            .append_data(&mut dir.clone(), path, io::empty())
            .map_err(io_err)?;
    }
    append(
        &mut builder,
        &format!("blobs/sha256/{}", manifest_digest.hex()),
        &manifest,
    )
    .map_err(io_err)?;
    append(
        &mut builder,
        &format!("blobs/sha256/{}", config_digest.hex()),
        config,
    )
    .map_err(io_err)?;
    let mut seen = std::collections::HashSet::new();
    for layer in layers {
        if !seen.insert(layer.digest.clone()) {
            continue;
        }
        let size = store
            .size(&layer.digest)
            .ok_or_else(|| OciError::NotFound {
                reference: layer.digest.to_string(),
                registry: format!("store `{}`", store.root().display()),
            })?;
        let reader = store.open_verified(&layer.digest)?;
        let mut header = file_header(size);
        builder
            .append_data(
                &mut header,
                format!("blobs/sha256/{}", layer.digest.hex()),
                reader,
            )
            .map_err(io_err)?;
    }
    builder
        .into_inner()
        .map_err(io_err)?
        .flush()
        .map_err(io_err)?;
    Ok(ArchiveInfo {
        config_digest,
        manifest_digest,
    })
}

/// `docker.io/library/alpine:3.15` → `alpine:3.15`, as `docker load` shows it.
fn familiar_name(reference: &Reference) -> String {
    let tag = reference.tag().unwrap_or("latest");
    let name = if reference.registry() == crate::reference::DOCKER_HUB {
        reference
            .repository()
            .strip_prefix("library/")
            .unwrap_or(reference.repository())
            .to_owned()
    } else {
        reference.name()
    };
    format!("{name}:{tag}")
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    header
}

fn append<W: Write>(builder: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    builder.append_data(&mut file_header(data.len() as u64), path, data)
}
