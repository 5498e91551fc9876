//! The cache manifest: BuildKit's cache config JSON
//! (`application/vnd.buildkit.cacheconfig.v0`) and the OCI objects around it.
//!
//! An export is written as an OCI image manifest whose `config` is the cache
//! config blob and whose `layers` are the layer blobs (the default,
//! `image-manifest=true`), or as BuildKit 0.10's image index listing the
//! layer blobs then the config (`image-manifest=false`). Both are read.
//!
//! cuedag extensions, ignored by BuildKit: a record may carry the step's
//! scalar outputs (`cuedag.outputs`), and the config may list cache-mount
//! snapshots (`cuedag.mounts`: `{id, blob, createdAt}`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::spec::FormatOptions;
use crate::time::ZERO_TIME;
use crate::Error;

/// Media type of the cache config blob.
pub const MEDIA_TYPE_CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
/// OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI gzip layer.
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI uncompressed layer.
pub const MEDIA_TYPE_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI zstd layer.
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker gzip layer.
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer.
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Annotation holding a layer's uncompressed digest.
pub const ANNOTATION_UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// Annotation holding a layer's creation time.
pub const ANNOTATION_CREATED_AT: &str = "buildkit/createdat";

// ---------------------------------------------------------------------------
// Cache config JSON (field names as BuildKit writes them).

/// `{layers, records}` plus cuedag's `cuedag.mounts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// Layer chains: blob plus the index of the layer below.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<CacheLayer>,
    /// One record per step key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<CacheRecord>,
    /// Cache-mount snapshots (cuedag extension).
    #[serde(
        rename = "cuedag.mounts",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<CacheMountRecord>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A layer chain element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheLayer {
    /// The layer blob.
    pub blob: Digest,
    /// Index of the layer below; `-1` is a base layer; absent means 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parent: i64,
    /// Descriptor info, only written by exporters without a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<LayerAnnotations>,
}

/// Descriptor info carried inside the config (`gha` style).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerAnnotations {
    /// Layer media type.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Uncompressed digest.
    #[serde(rename = "diffID", default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// Blob size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Creation time.
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// One cache key with its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// Results: each names a layer chain.
    #[serde(rename = "layers", default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<CacheResult>,
    /// Alternative results (read and ignored by cuedag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<serde_json::Value>,
    /// The cache key (cuedag: the step key).
    pub digest: Digest,
    /// Per input number, the records it may link to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Vec<CacheInput>>,
    /// The step's scalar outputs (cuedag extension).
    #[serde(
        rename = "cuedag.outputs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub outputs: Option<serde_json::Value>,
}

/// A link from an input to another record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheInput {
    /// Path selector (unused by cuedag).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Index into `records`.
    pub link: usize,
}

/// A result: a layer chain and its creation time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheResult {
    /// Index into `layers`.
    pub layer: usize,
    /// RFC 3339; Go writes the zero time when unset.
    #[serde(rename = "createdAt", default = "zero_time")]
    pub created_at: String,
}

fn zero_time() -> String {
    ZERO_TIME.to_owned()
}

/// A cache-mount snapshot (cuedag extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheMountRecord {
    /// The cache mount id (`core.#CacheDir.id`).
    pub id: String,
    /// The layer blob holding the mount's contents.
    pub blob: Digest,
    /// When the snapshot was taken.
    #[serde(rename = "createdAt", default = "zero_time")]
    pub created_at: String,
}

// ---------------------------------------------------------------------------
// OCI objects.

/// An OCI content descriptor. Unknown fields are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Annotations (ordered, for deterministic output).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Other fields (`platform`, `urls`, ...), kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor without annotations.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            annotations: BTreeMap::new(),
            extra: serde_json::Map::new(),
        }
    }
}

/// An OCI image index (also the layout's `index.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageIndex {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The index media type.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Entries.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// An empty OCI index.
    pub fn empty() -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The manifest media type.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs.
    pub layers: Vec<Descriptor>,
}

// ---------------------------------------------------------------------------
// What the backend hands over for an export.

/// A layer blob's descriptor as the backend knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// Media type (converted to OCI or Docker naming on export).
    pub media_type: String,
    /// Digest of the blob bytes.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed tar, if known.
    pub diff_id: Option<Digest>,
    /// RFC 3339 creation time, if known.
    pub created_at: Option<String>,
}

/// Where an exported blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// A file (e.g. in the backend's content store).
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

impl BlobSource {
    /// Reads the whole blob.
    pub fn read(&self) -> Result<Vec<u8>, Error> {
        match self {
            BlobSource::File(path) => std::fs::read(path).map_err(|e| Error::io(path, e)),
            BlobSource::Bytes(bytes) => Ok(bytes.clone()),
        }
    }
}

/// A layer blob to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLayer {
    /// Its descriptor (the digest is verified while copying).
    pub descriptor: LayerDescriptor,
    /// Its bytes.
    pub source: BlobSource,
}

/// A step's filesystem result: a layer chain, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// Layer digests, bottom first; each must be among the export's layers.
    pub chain: Vec<Digest>,
    /// RFC 3339 time the result was produced (keep it stable across runs so
    /// that an unchanged re-export is byte-identical).
    pub created_at: Option<String>,
}

/// One step to export.
///
/// On import a record is a hit when it has a non-empty result chain or
/// carries `outputs`; a record with neither is only a link (as in
/// BuildKit). So a step whose result is the empty filesystem must carry
/// `outputs` (e.g. its step record) to be found again.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRecord {
    /// The step key (opaque, computed by the backend).
    pub key: Digest,
    /// Per input, the step keys it came from (links; keys absent from the
    /// export are dropped).
    pub inputs: Vec<Vec<Digest>>,
    /// The filesystem result, if the step has one.
    pub result: Option<StepResult>,
    /// The step's scalar outputs (must hold no secret).
    pub outputs: Option<serde_json::Value>,
}

/// A cache mount's contents to export, keyed by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportMount {
    /// The cache mount id.
    pub id: String,
    /// Digest of the layer (among the export's layers) holding the contents.
    pub layer: Digest,
    /// RFC 3339 snapshot time.
    pub created_at: Option<String>,
}

/// Everything one export writes.
///
/// `mode=min` vs `mode=max` is the caller's choice of `records`: with `min`
/// hand over the steps of the final results only, with `max` every step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheExport {
    /// Every layer blob referenced by a record or a mount.
    pub layers: Vec<ExportLayer>,
    /// The steps.
    pub records: Vec<ExportRecord>,
    /// Cache-mount snapshots (`cache-mounts=true`).
    pub mounts: Vec<ExportMount>,
}

/// A serialised blob with its descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltBlob {
    /// Descriptor (media type, digest, size).
    pub descriptor: Descriptor,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The objects of one export, ready to store.
#[derive(Debug, Clone)]
pub struct BuiltCache<'a> {
    /// The cache config blob.
    pub config: BuiltBlob,
    /// The manifest (or index) blob.
    pub manifest: BuiltBlob,
    /// The layer blobs to store, in manifest order, each once.
    pub layers: Vec<&'a ExportLayer>,
}

fn convert_layer_media_type(media_type: &str, oci: bool) -> String {
    let converted = match (media_type, oci) {
        (MEDIA_TYPE_DOCKER_LAYER_GZIP, true) => MEDIA_TYPE_OCI_LAYER_GZIP,
        (MEDIA_TYPE_DOCKER_LAYER, true) => MEDIA_TYPE_OCI_LAYER,
        (MEDIA_TYPE_OCI_LAYER_GZIP, false) => MEDIA_TYPE_DOCKER_LAYER_GZIP,
        (MEDIA_TYPE_OCI_LAYER, false) => MEDIA_TYPE_DOCKER_LAYER,
        (other, _) => other,
    };
    converted.to_owned()
}

fn layer_descriptor(layer: &LayerDescriptor, oci: bool) -> Descriptor {
    let mut desc = Descriptor::new(
        &convert_layer_media_type(&layer.media_type, oci),
        layer.digest.clone(),
        layer.size,
    );
    if let Some(diff_id) = &layer.diff_id {
        desc.annotations
            .insert(ANNOTATION_UNCOMPRESSED.to_owned(), diff_id.to_string());
    }
    if let Some(created_at) = &layer.created_at {
        desc.annotations
            .insert(ANNOTATION_CREATED_AT.to_owned(), created_at.clone());
    }
    desc
}

fn json_blob(value: &impl Serialize, media_type: &str) -> Result<BuiltBlob, Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?;
    let descriptor = Descriptor::new(media_type, Digest::of_bytes(&bytes), bytes.len() as u64);
    Ok(BuiltBlob { descriptor, bytes })
}

/// Builds the deterministic cache config and manifest of `export`.
///
/// Layer chains are numbered in the lexicographic order of their digest
/// sequences (a parent always precedes its children), records are sorted by
/// key (a duplicate key keeps its first occurrence), so the same export
/// always yields the same bytes and digests.
pub fn build<'a>(export: &'a CacheExport, format: FormatOptions) -> Result<BuiltCache<'a>, Error> {
    let by_digest: HashMap<&Digest, &ExportLayer> = export
        .layers
        .iter()
        .map(|layer| (&layer.descriptor.digest, layer))
        .collect();
    let check = |digest: &Digest| -> Result<(), Error> {
        if by_digest.contains_key(digest) {
            Ok(())
        } else {
            Err(Error::UnknownLayer(digest.clone()))
        }
    };

    // Records, sorted and deduplicated by key.
    let mut records: Vec<&ExportRecord> = Vec::new();
    {
        let mut seen = BTreeSet::new();
        for record in &export.records {
            if seen.insert(&record.key) {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.key.cmp(&b.key));
    }

    // Every prefix of every chain is a layer entry.
    let mut prefixes: BTreeSet<&[Digest]> = BTreeSet::new();
    for record in &records {
        if let Some(result) = &record.result {
            for digest in &result.chain {
                check(digest)?;
            }
            for n in 1..=result.chain.len() {
                prefixes.insert(&result.chain[..n]);
            }
        }
    }
    let prefix_index: HashMap<&[Digest], usize> =
        prefixes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let layers: Vec<CacheLayer> = prefixes
        .iter()
        .map(|prefix| {
            let parent = if prefix.len() == 1 {
                -1
            } else {
                prefix_index
                    .get(&prefix[..prefix.len() - 1])
                    .map_or(-1, |i| *i as i64)
            };
            CacheLayer {
                blob: prefix[prefix.len() - 1].clone(),
                parent,
                annotations: None,
            }
        })
        .collect();

    let record_index: HashMap<&Digest, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.key, i))
        .collect();
    let config_records: Vec<CacheRecord> = records
        .iter()
        .map(|record| CacheRecord {
            results: record
                .result
                .as_ref()
                .filter(|r| !r.chain.is_empty())
                .and_then(|r| {
                    prefix_index
                        .get(r.chain.as_slice())
                        .map(|layer| CacheResult {
                            layer: *layer,
                            created_at: r.created_at.clone().unwrap_or_else(zero_time),
                        })
                })
                .into_iter()
                .collect(),
            chains: Vec::new(),
            digest: record.key.clone(),
            inputs: record
                .inputs
                .iter()
                .map(|alternatives| {
                    let mut links: Vec<CacheInput> = alternatives
                        .iter()
                        .filter_map(|key| record_index.get(key))
                        .map(|link| CacheInput {
                            selector: String::new(),
                            link: *link,
                        })
                        .collect();
                    links.sort_by_key(|l| l.link);
                    links.dedup();
                    links
                })
                .collect(),
            outputs: record.outputs.clone(),
        })
        .collect();

    let mut mounts: Vec<CacheMountRecord> = Vec::new();
    for mount in &export.mounts {
        check(&mount.layer)?;
        if mounts.iter().all(|m| m.id != mount.id) {
            mounts.push(CacheMountRecord {
                id: mount.id.clone(),
                blob: mount.layer.clone(),
                created_at: mount.created_at.clone().unwrap_or_else(zero_time),
            });
        }
    }
    mounts.sort_by(|a, b| a.id.cmp(&b.id));

    let config = CacheConfig {
        layers,
        records: config_records,
        mounts,
    };
    let config_blob = json_blob(&config, MEDIA_TYPE_CACHE_CONFIG)?;

    // Layer blobs in config order, then mount blobs; each once.
    let mut listed: BTreeSet<&Digest> = BTreeSet::new();
    let mut blob_layers: Vec<&ExportLayer> = Vec::new();
    for digest in config
        .layers
        .iter()
        .map(|l| &l.blob)
        .chain(config.mounts.iter().map(|m| &m.blob))
    {
        if let Some(layer) = by_digest.get(digest) {
            if listed.insert(&layer.descriptor.digest) {
                blob_layers.push(layer);
            }
        }
    }
    let layer_descs: Vec<Descriptor> = blob_layers
        .iter()
        .map(|l| layer_descriptor(&l.descriptor, format.oci_mediatypes))
        .collect();

    let manifest = if format.image_manifest {
        json_blob(
            &ImageManifest {
                schema_version: 2,
                media_type: Some(MEDIA_TYPE_OCI_MANIFEST.to_owned()),
                config: config_blob.descriptor.clone(),
                layers: layer_descs,
            },
            MEDIA_TYPE_OCI_MANIFEST,
        )?
    } else {
        let media_type = if format.oci_mediatypes {
            MEDIA_TYPE_OCI_INDEX
        } else {
            MEDIA_TYPE_DOCKER_LIST
        };
        let mut manifests = layer_descs;
        manifests.push(config_blob.descriptor.clone());
        json_blob(
            &ImageIndex {
                schema_version: 2,
                media_type: Some(media_type.to_owned()),
                manifests,
                annotations: BTreeMap::new(),
            },
            media_type,
        )?
    };
    Ok(BuiltCache {
        config: config_blob,
        manifest,
        layers: blob_layers,
    })
}

// ---------------------------------------------------------------------------
// Import.

/// A step found in an imported cache.
#[derive(Debug, Clone, PartialEq)]
pub struct StepHit {
    /// The result's layer chain, bottom first (empty if the step has no
    /// filesystem result).
    pub layers: Vec<LayerDescriptor>,
    /// When the result was produced.
    pub created_at: String,
    /// The step's scalar outputs, if exported.
    pub outputs: Option<serde_json::Value>,
}

/// The lookup table of one or more imported cache manifests:
/// `step key → layers`, `cache mount id → layer`. Building it reads only the
/// manifests and configs; layer blobs are fetched later, one hit at a time.
#[derive(Debug, Clone, Default)]
pub struct CacheIndex {
    steps: HashMap<Digest, StepHit>,
    mounts: BTreeMap<String, LayerDescriptor>,
}

/// The config descriptor and layer descriptors of a cache manifest.
pub(crate) struct ParsedManifest {
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
}

/// Reads a cache manifest in either form (image manifest or index).
pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<ParsedManifest, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid manifest JSON: {e}"))?;
    if value.get("config").is_some() {
        let manifest: ImageManifest =
            serde_json::from_value(value).map_err(|e| format!("invalid image manifest: {e}"))?;
        if manifest.config.media_type != MEDIA_TYPE_CACHE_CONFIG {
            return Err(format!(
                "not a cache manifest (config media type `{}`)",
                manifest.config.media_type
            ));
        }
        Ok(ParsedManifest {
            config: manifest.config,
            layers: manifest.layers,
        })
    } else {
        let index: ImageIndex =
            serde_json::from_value(value).map_err(|e| format!("invalid image index: {e}"))?;
        let mut config = None;
        let mut layers = Vec::new();
        for desc in index.manifests {
            if desc.media_type == MEDIA_TYPE_CACHE_CONFIG {
                config = Some(desc);
            } else {
                layers.push(desc);
            }
        }
        let config =
            config.ok_or("no cache config in the index (inline cache is not supported)")?;
        Ok(ParsedManifest { config, layers })
    }
}

fn descriptor_to_layer(desc: &Descriptor) -> LayerDescriptor {
    LayerDescriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest.clone(),
        size: desc.size,
        diff_id: desc
            .annotations
            .get(ANNOTATION_UNCOMPRESSED)
            .and_then(|d| Digest::parse(d).ok()),
        created_at: desc.annotations.get(ANNOTATION_CREATED_AT).cloned(),
    }
}

impl CacheIndex {
    /// The step with key `key`, if the cache has it.
    pub fn lookup(&self, key: &Digest) -> Option<&StepHit> {
        self.steps.get(key)
    }

    /// The snapshot of cache mount `id`, if the cache has it.
    pub fn mount(&self, id: &str) -> Option<&LayerDescriptor> {
        self.mounts.get(id)
    }

    /// The ids of the cache mounts present.
    pub fn mount_ids(&self) -> impl Iterator<Item = &str> {
        self.mounts.keys().map(String::as_str)
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether no step is known.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.mounts.is_empty()
    }

    /// Adds the records of one config; keys already present are kept
    /// (callers add the newest manifest first). Records whose layer chain
    /// names a blob the manifest lacks are skipped, as BuildKit does.
    pub(crate) fn add(&mut self, config: &CacheConfig, manifest_layers: &[Descriptor]) {
        let mut known: HashMap<&Digest, LayerDescriptor> = manifest_layers
            .iter()
            .map(|d| (&d.digest, descriptor_to_layer(d)))
            .collect();
        for layer in &config.layers {
            if let Some(ann) = &layer.annotations {
                if let (Some(media_type), Some(size)) = (&ann.media_type, ann.size) {
                    known.entry(&layer.blob).or_insert_with(|| LayerDescriptor {
                        media_type: media_type.clone(),
                        digest: layer.blob.clone(),
                        size,
                        diff_id: ann.diff_id.clone(),
                        created_at: ann.created_at.clone(),
                    });
                }
            }
        }
        let chain_of = |index: usize| -> Option<Vec<LayerDescriptor>> {
            let mut chain = Vec::new();
            let mut current = index as i64;
            while current >= 0 {
                let layer = config.layers.get(current as usize)?;
                chain.push(known.get(&layer.blob)?.clone());
                if chain.len() > config.layers.len() {
                    return None; // A cycle.
                }
                current = layer.parent;
            }
            chain.reverse();
            Some(chain)
        };
        for record in &config.records {
            if self.steps.contains_key(&record.digest) {
                continue;
            }
            let newest = record
                .results
                .iter()
                .max_by(|a, b| a.created_at.cmp(&b.created_at));
            let hit = match newest {
                Some(result) => match chain_of(result.layer) {
                    Some(layers) => StepHit {
                        layers,
                        created_at: result.created_at.clone(),
                        outputs: record.outputs.clone(),
                    },
                    None => {
                        tracing::debug!(key = %record.digest, "cache record names a missing layer; skipped");
                        continue;
                    }
                },
                // A key without result is only a link (BuildKit) unless it
                // carries outputs (a cuedag step without filesystem result).
                None if record.outputs.is_some() => StepHit {
                    layers: Vec::new(),
                    created_at: ZERO_TIME.to_owned(),
                    outputs: record.outputs.clone(),
                },
                None => continue,
            };
            self.steps.insert(record.digest.clone(), hit);
        }
        for mount in &config.mounts {
            if self.mounts.contains_key(&mount.id) {
                continue;
            }
            if let Some(layer) = known.get(&mount.blob) {
                self.mounts.insert(mount.id.clone(), layer.clone());
            }
        }
    }
}
