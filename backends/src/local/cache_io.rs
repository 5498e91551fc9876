//! `--cache-to` / `--cache-from` for the local backend (`type=local` and
//! `type=registry`).
//!
//! Export (at `finish`): every cached step this session ran or hit becomes
//! a record keyed by its step key. The record's `outputs` carry the step
//! record's outputs plus, for each `#FS` it names, the layer names of the
//! snapshot and the blob of each layer. Layers are packed once with
//! `cuedag-oci` into the store's blob store; `<store>/packed/<name>.json`
//! remembers the blob, so a second export packs nothing. Layers that came
//! from a pulled image are not exported (the `Pull` step fetches them
//! again before any step that uses them).
//!
//! Import (at `prepare`): each `--cache-from` is opened (a local directory
//! lazily through [`cuedag_cache::LocalCache::import`], a registry by
//! reading its manifest and config); on a local step-cache miss the key is
//! looked up, only the missing layers of the hit are fetched (verified) and
//! extracted into `<store>/layers/`, the snapshots and the local step record
//! are written, and the step does not run. A missing or corrupt blob is a
//! miss (warning, the step runs).
//!
//! `mode=min` is treated like `mode=max` for now (every step of the session
//! is exported). `type=gha` is not handled yet: an error (a warning with
//! `ignore-error=true`), as are export failures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, PoisonError};

use cuedag_cache::{
    BlobSource, CacheBackend, CacheExport, CacheIndex, CacheSpec, Digest, ExportLayer,
    ExportRecord, ImportSelector, LayerDescriptor, LocalCache, LocalImport, StepResult,
};
use cuedag_evaluator::plan::TaskValue;
use serde::{Deserialize, Serialize};

use super::store::{write_atomic, Snapshot, Store};
use super::{failed, LocalBackend};
use crate::remote_cache::RemoteCache;
use crate::BackendError;

/// The persistent-cache state of one session.
#[derive(Debug, Default)]
pub(crate) struct CacheSession {
    imports: Vec<Source>,
    exports: Vec<CacheSpec>,
    /// The tag of a `type=local` export that gives none (from the action).
    export_tag: String,
    /// Step key → (task type, outputs) of every cached step run or hit.
    steps: BTreeMap<String, (String, TaskValue)>,
    /// Layers of pulled images (never exported).
    external: BTreeSet<String>,
}

/// An imported cache.
#[derive(Clone)]
enum Source {
    Local(LocalImport),
    Registry(Arc<RemoteCache>, Arc<CacheIndex>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(import) => import.fmt(f),
            Source::Registry(remote, _) => f
                .debug_tuple("Registry")
                .field(&remote.reference())
                .finish(),
        }
    }
}

impl Source {
    fn index(&self) -> &CacheIndex {
        match self {
            Source::Local(import) => import.index(),
            Source::Registry(_, index) => index,
        }
    }
}

/// What a record's `outputs` hold.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    task_type: String,
    outputs: serde_json::Value,
    /// `#FS` id → its layer names, bottom first.
    snapshots: BTreeMap<String, Vec<String>>,
    /// Layer name → blob digest (layers of pulled images are absent).
    blobs: BTreeMap<String, String>,
}

/// A packed layer remembered in `<store>/packed/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Packed {
    digest: String,
    diff_id: String,
    size: u64,
    media_type: String,
}

fn step_digest(key: &str) -> Option<Digest> {
    Digest::parse(&format!("sha256:{key}")).ok()
}

fn spec_failure(spec: &CacheSpec, message: String) -> Result<(), BackendError> {
    if spec.ignore_error {
        tracing::warn!("{}: {message} (ignored)", spec.source_name());
        Ok(())
    } else {
        Err(failed(format!("{}: {message}", spec.source_name())))
    }
}

impl CacheSession {
    /// Opens the imports and remembers the exports of `specs`.
    pub(crate) async fn open(
        specs: &cuedag_cache::CacheSpecs,
        store: &Store,
        action: &[String],
    ) -> Result<CacheSession, BackendError> {
        let mut session = CacheSession::default();
        // Each action exports to its own entry, so that several actions can
        // share one cache directory without replacing each other's entry.
        // (`default_tag` gives `latest` for an empty path.)
        let action: Vec<&str> = action.iter().map(String::as_str).collect();
        session.export_tag = cuedag_cache::default_tag(&action);
        for spec in &specs.from {
            match &spec.backend {
                CacheBackend::Local(local) => {
                    let selector = match (&local.digest, &local.tag) {
                        (Some(digest), _) => ImportSelector::Digest(digest.clone()),
                        (None, Some(tag)) => ImportSelector::Tag(tag.clone()),
                        (None, None) => ImportSelector::All,
                    };
                    let dir = local.path.clone();
                    let import =
                        super::blocking(move || Ok(LocalCache::new(&dir).import(&selector)))
                            .await?;
                    session.imports.push(Source::Local(import));
                }
                CacheBackend::Registry(_) => {
                    let remote = cuedag_oci::BlobStore::open(store.root())
                        .map_err(|error| failed(error.to_string()))
                        .and_then(|blobs| RemoteCache::from_spec_env(spec, blobs));
                    match remote {
                        Ok(remote) => {
                            let index = remote.import().await;
                            session
                                .imports
                                .push(Source::Registry(Arc::new(remote), Arc::new(index)));
                        }
                        Err(error) => spec_failure(spec, error.to_string())?,
                    }
                }
                _ => spec_failure(
                    spec,
                    "`type=gha` is not supported by the local backend yet".into(),
                )?,
            }
        }
        for spec in &specs.to {
            match &spec.backend {
                CacheBackend::Local(_) | CacheBackend::Registry(_) => {
                    session.exports.push(spec.clone())
                }
                _ => spec_failure(
                    spec,
                    "`type=gha` is not supported by the local backend yet".into(),
                )?,
            }
        }
        Ok(session)
    }

    /// Whether there is anything to import or export.
    fn active(&self) -> bool {
        !self.imports.is_empty() || !self.exports.is_empty()
    }
}

impl LocalBackend {
    fn with_cache_session<T>(&self, job: impl FnOnce(&mut CacheSession) -> T) -> T {
        let mut guard = self
            .cache_session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        job(&mut guard)
    }

    /// Remembers a cached step of this session (for export).
    pub(crate) fn note_step(&self, key: &str, task_type: &str, outputs: &TaskValue) {
        self.with_cache_session(|session| {
            if session.active() {
                session
                    .steps
                    .insert(key.to_owned(), (task_type.to_owned(), outputs.clone()));
            }
        });
    }

    /// Remembers the layers of a pulled image (not exported).
    pub(crate) fn note_pulled(&self, outputs: &TaskValue) {
        let active = self.with_cache_session(|session| session.active());
        if !active {
            return;
        }
        let mut layers = Vec::new();
        for fs in outputs.fs_refs() {
            if let Ok(snapshot) = self.snapshot(fs) {
                layers.extend(snapshot.layers);
            }
        }
        self.with_cache_session(|session| session.external.extend(layers));
    }

    /// Looks `key` up in the imported caches; on a hit, materialises the
    /// step's layers, snapshots and local record at `record_path`.
    pub(crate) async fn import_step(&self, key: &str, record_path: &Path) -> Option<TaskValue> {
        let imports = self.with_cache_session(|session| session.imports.clone());
        if imports.is_empty() {
            return None;
        }
        let digest = step_digest(key)?;
        let mut found = None;
        for source in &imports {
            if let Some(payload) = materialise(&self.store, source, &digest).await {
                found = Some(payload);
                break;
            }
        }
        let payload = found?;
        let outputs = super::from_json(&payload.outputs);
        if self
            .save_record(record_path, &payload.task_type, "", &outputs)
            .is_err()
        {
            return None;
        }
        self.load_record(record_path)
    }

    /// Exports this session's steps to every `--cache-to`.
    pub(crate) async fn export_caches(&self) -> Result<(), BackendError> {
        let (exports, steps, external, export_tag) = self.with_cache_session(|session| {
            (
                std::mem::take(&mut session.exports),
                std::mem::take(&mut session.steps),
                std::mem::take(&mut session.external),
                session.export_tag.clone(),
            )
        });
        if exports.is_empty() {
            return Ok(());
        }
        let mut payloads = Vec::new();
        for (key, (task_type, outputs)) in steps {
            let mut snapshots = BTreeMap::new();
            for fs in outputs.fs_refs() {
                if let cuedag_evaluator::plan::FsRef::Id(id) = fs {
                    snapshots.insert(id.clone(), self.snapshot(fs)?.layers);
                }
            }
            let outputs = serde_json::to_value(&outputs)
                .map_err(|error| failed(format!("serialising step outputs: {error}")))?;
            payloads.push((key, task_type, outputs, snapshots));
        }
        let store = self.store.clone();
        let started = std::time::Instant::now();
        let export = super::blocking(move || build_export(&store, payloads, &external)).await?;
        tracing::info!(
            layers = export.layers.len(),
            records = export.records.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "cache export prepared"
        );
        let export = std::sync::Arc::new(export);
        for spec in exports {
            let export = match spec.cache_mounts {
                true => std::sync::Arc::new(self.with_cache_mounts(&export).await?),
                false => export.clone(),
            };
            let started = std::time::Instant::now();
            let result = match &spec.backend {
                CacheBackend::Local(local) => {
                    let tag = local.tag.clone().unwrap_or_else(|| export_tag.clone());
                    let dir = local.path.clone();
                    let format = local.format;
                    let export = export.clone();
                    super::blocking(move || {
                        LocalCache::new(&dir)
                            .export(&export, &tag, format)
                            .map_err(|error| failed(error.to_string()))
                    })
                    .await
                }
                CacheBackend::Registry(_) => {
                    match cuedag_oci::BlobStore::open(self.store.root())
                        .map_err(|error| failed(error.to_string()))
                        .and_then(|blobs| RemoteCache::from_spec_env(&spec, blobs))
                    {
                        Ok(remote) => remote
                            .export(&export)
                            .await
                            .map_err(|error| failed(error.to_string())),
                        Err(error) => Err(error),
                    }
                }
                CacheBackend::Gha(_) => continue,
            };
            match result {
                Ok(report) => tracing::info!(
                    blobs_written = report.blobs_written,
                    blobs_present = report.blobs_present,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "cache exported"
                ),
                Err(error) => spec_failure(&spec, format!("cache export failed: {error}"))?,
            }
        }
        Ok(())
    }
}

type StepPayload = (
    String,
    String,
    serde_json::Value,
    BTreeMap<String, Vec<String>>,
);

fn build_export(
    store: &Store,
    payloads: Vec<StepPayload>,
    external: &BTreeSet<String>,
) -> Result<CacheExport, BackendError> {
    let blob_store = cuedag_oci::BlobStore::open(store.root())
        .map_err(|error| failed(format!("opening the blob store: {error}")))?;
    let mut layers: BTreeMap<String, (Packed, ExportLayer)> = BTreeMap::new();
    let mut records = Vec::new();
    for (key, task_type, outputs, snapshots) in payloads {
        let Some(key) = step_digest(&key) else {
            continue;
        };
        let mut blobs = BTreeMap::new();
        let mut chain = Vec::new();
        for name in snapshots.values().flatten() {
            if external.contains(name) {
                continue;
            }
            if !layers.contains_key(name) {
                let packed = pack(store, &blob_store, name)?;
                let digest = Digest::parse(&packed.digest)
                    .map_err(|error| failed(format!("packed layer digest: {error}")))?;
                let oci_digest = cuedag_oci::Digest::parse(&packed.digest)
                    .map_err(|error| failed(format!("packed layer digest: {error}")))?;
                let layer = ExportLayer {
                    descriptor: LayerDescriptor {
                        media_type: packed.media_type.clone(),
                        digest,
                        size: packed.size,
                        diff_id: Digest::parse(&packed.diff_id).ok(),
                        created_at: None,
                    },
                    source: BlobSource::File(blob_store.blob_path(&oci_digest)),
                };
                layers.insert(name.clone(), (packed, layer));
            }
            if let Some((packed, layer)) = layers.get(name) {
                blobs.insert(name.clone(), packed.digest.clone());
                if !chain.contains(&layer.descriptor.digest) {
                    chain.push(layer.descriptor.digest.clone());
                }
            }
        }
        let payload = Payload {
            task_type,
            outputs,
            snapshots,
            blobs,
        };
        records.push(ExportRecord {
            key,
            inputs: Vec::new(),
            result: (!chain.is_empty()).then_some(StepResult {
                chain,
                created_at: None,
            }),
            outputs: serde_json::to_value(&payload).ok(),
        });
    }
    Ok(CacheExport {
        layers: layers.into_values().map(|(_, layer)| layer).collect(),
        records,
        mounts: Vec::new(),
    })
}

/// Packs layer `name` into the blob store, once.
fn pack(
    store: &Store,
    blob_store: &cuedag_oci::BlobStore,
    name: &str,
) -> Result<Packed, BackendError> {
    let memo = store.root().join("packed").join(format!("{name}.json"));
    if let Some(packed) = std::fs::read(&memo)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Packed>(&bytes).ok())
    {
        let present = cuedag_oci::Digest::parse(&packed.digest)
            .map(|digest| blob_store.contains(&digest))
            .unwrap_or(false);
        if present {
            return Ok(packed);
        }
    }
    let packed = cuedag_oci::layer::pack_to_store(blob_store, &store.layer_path(name), true)
        .map_err(|error| failed(format!("packing layer `{name}`: {error}")))?;
    let packed = Packed {
        digest: packed.digest.to_string(),
        diff_id: packed.diff_id.to_string(),
        size: packed.size,
        media_type: packed.media_type,
    };
    if let Some(parent) = memo.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| BackendError::io(format!("creating `{}`", parent.display()), error))?;
    }
    write_atomic(&memo, &serde_json::to_vec(&packed).unwrap_or_default())?;
    Ok(packed)
}

/// Extracts the layers of the step `key` from `source` into the store and
/// writes its snapshots; `None` on a miss.
async fn materialise(store: &Store, source: &Source, key: &Digest) -> Option<Payload> {
    let hit = source.index().lookup(key)?.clone();
    let payload: Payload = serde_json::from_value(hit.outputs.clone()?).ok()?;
    for (id, layers) in &payload.snapshots {
        for name in layers {
            if store.layer_path(name).exists() {
                continue;
            }
            let blob = payload.blobs.get(name)?;
            let descriptor = hit
                .layers
                .iter()
                .find(|layer| layer.digest.as_str() == blob)?
                .clone();
            let store = store.clone();
            let name = name.clone();
            let installed = match source {
                Source::Local(import) => {
                    let import = import.clone();
                    super::blocking(move || {
                        Ok(import
                            .verified_blob_path(&descriptor)
                            .and_then(|path| std::fs::File::open(path).ok())
                            .map(|file| install(&store, &name, file)))
                    })
                    .await
                }
                Source::Registry(remote, _) => {
                    let bytes = remote.fetch_layer(&descriptor).await?;
                    super::blocking(move || {
                        Ok(Some(install(&store, &name, std::io::Cursor::new(bytes))))
                    })
                    .await
                }
            };
            if !matches!(installed, Ok(Some(true))) {
                return None;
            }
        }
        let snapshot = Snapshot {
            layers: layers.clone(),
        };
        if snapshot.key() != *id {
            tracing::warn!(fs = %id, "cache record names an inconsistent snapshot; treated as a miss");
            return None;
        }
        store.save_snapshot(&snapshot).ok()?;
    }
    Some(payload)
}

/// Extracts a layer blob into `<store>/layers/<name>`; `false` (with a
/// warning) if it cannot.
fn install(store: &Store, name: &str, blob: impl std::io::Read) -> bool {
    let Ok(temp) = store.temp_dir("import-") else {
        return false;
    };
    let dir = temp.path().join("layer");
    if let Err(error) = cuedag_oci::extract_layer(blob, &dir) {
        tracing::warn!(layer = %name, "cannot extract cache blob ({error}); treated as a miss");
        return false;
    }
    store.commit_layer_as(&dir, name).is_ok()
}
