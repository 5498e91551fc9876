//! `--cache-to` / `--cache-from` for the local backend (`type=local` and
//! `type=registry`).
//!
//! Export (at `finish`): every cached step this session ran or hit becomes
//! a record keyed by its step key. The record's `outputs` carry the step
//! record's outputs plus, for each `#FS` it names, the layer names of the
//! snapshot and the blob of each exported layer. Layers are packed once
//! with `cuedag-oci` into the store's blob store; `<store>/packed/<name>.json`
//! remembers the blob, so a second export packs nothing. A layer that is
//! still lazy (imported, never extracted) is exported as the blob it came
//! from, without fetching it unless the destination lacks it. Layers that
//! came from a pulled image are not exported (`#Pull` registers them
//! again). `mode=max` exports the layers of every step; `mode=min` those of
//! the final results only (steps whose `#FS` outputs no other step of the
//! session consumes, or that are written to the client): the other records
//! keep their keys and outputs, as BuildKit keeps the chain of keys, so an
//! import still skips them, and their layers are rebuilt if ever needed.
//!
//! Import (at `prepare`): each `--cache-from` is opened (a local directory
//! through [`cuedag_cache::LocalCache::import`], a registry by reading its
//! manifest and config); on a local step-cache miss the key is looked up
//! and a hit registers its snapshots and its layers as lazy (`lazy.rs`):
//! nothing is fetched until a task needs the files. A blob that is missing
//! or corrupt then is a miss (warning, the step runs again).
//!
//! `type=gha` is not handled yet: an error (a warning with
//! `ignore-error=true`), as are export failures.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use cuedag_cache::{
    BlobSource, CacheBackend, CacheExport, CacheIndex, CacheSpec, Digest, ExportLayer,
    ExportRecord, LayerDescriptor, LocalCache, LocalImport, Mode, StepHit, StepResult,
};
use cuedag_evaluator::plan::{FsRef, TaskValue};
use serde::{Deserialize, Serialize};

use super::lazy::{BlobInfo, LazySource};
use super::store::{write_atomic, Snapshot, Store};
use super::{failed, LocalBackend};
use crate::backend::TaskRequest;
use crate::remote_cache::RemoteCache;
use crate::BackendError;

/// The persistent-cache state of one session.
#[derive(Debug, Default)]
pub(crate) struct CacheSession {
    imports: Vec<Source>,
    /// The imports whose spec has `cache-mounts=true` (restored from by
    /// `cache_mounts.rs`).
    mount_imports: Vec<Source>,
    exports: Vec<CacheSpec>,
    /// The tag of a `type=local` export that gives none (from the action).
    export_tag: String,
    /// Step key → every cached step run or hit.
    steps: BTreeMap<String, NotedStep>,
    /// `#FS` ids written to the client (final results).
    written: BTreeSet<String>,
    /// Layers of pulled images (never exported).
    external: BTreeSet<String>,
}

/// A cached step of the session.
#[derive(Debug, Clone)]
struct NotedStep {
    task_type: String,
    /// The `#FS` ids of its inputs.
    inputs: BTreeSet<String>,
    outputs: TaskValue,
}

fn fs_ids(value: &TaskValue) -> BTreeSet<String> {
    value
        .fs_refs()
        .into_iter()
        .filter_map(|fs| match fs {
            FsRef::Id(id) => Some(id.clone()),
            FsRef::Scratch => None,
        })
        .collect()
}

/// An imported cache.
#[derive(Clone)]
pub(crate) enum Source {
    Local(LocalImport, PathBuf),
    Registry(Arc<RemoteCache>, Arc<CacheIndex>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(import, _) => import.fmt(f),
            Source::Registry(remote, _) => f
                .debug_tuple("Registry")
                .field(&remote.reference())
                .finish(),
        }
    }
}

impl Source {
    pub(crate) fn index(&self) -> &CacheIndex {
        match self {
            Source::Local(import, _) => import.index(),
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
                    let selector = local.import_selector();
                    let dir = local.path.clone();
                    let import =
                        super::blocking(move || Ok(LocalCache::new(&dir).import(&selector)))
                            .await?;
                    session.add_import(spec, Source::Local(import, local.path.clone()));
                }
                CacheBackend::Registry(_) => {
                    let remote = cuedag_oci::BlobStore::open(store.root())
                        .map_err(|error| failed(error.to_string()))
                        .and_then(|blobs| RemoteCache::from_spec_env(spec, blobs));
                    match remote {
                        Ok(remote) => {
                            let index = remote.import().await;
                            session.add_import(
                                spec,
                                Source::Registry(Arc::new(remote), Arc::new(index)),
                            );
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

    fn add_import(&mut self, spec: &CacheSpec, source: Source) {
        if spec.cache_mounts {
            self.mount_imports.push(source.clone());
        }
        self.imports.push(source);
    }

    /// The imported caches to restore cache mounts from.
    pub(crate) fn mount_imports(&self) -> Vec<Source> {
        self.mount_imports.clone()
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
    pub(crate) fn note_step(&self, key: &str, task: &TaskRequest, outputs: &TaskValue) {
        self.with_cache_session(|session| {
            if session.active() {
                session.steps.insert(
                    key.to_owned(),
                    NotedStep {
                        task_type: task.task_type.clone(),
                        inputs: fs_ids(&task.inputs),
                        outputs: outputs.clone(),
                    },
                );
            }
        });
    }

    /// Remembers the `#FS` written by a client filesystem write (a final
    /// result for `mode=min`).
    pub(crate) fn note_written(&self, inputs: &TaskValue) {
        self.with_cache_session(|session| {
            if session.active() {
                session.written.extend(fs_ids(inputs));
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

    /// The session's registry import at `reference`, if any.
    pub(crate) fn session_remote(&self, reference: &str) -> Option<Arc<RemoteCache>> {
        self.with_cache_session(|session| {
            session.imports.iter().find_map(|source| match source {
                Source::Registry(remote, _) if remote.reference() == reference => {
                    Some(remote.clone())
                }
                _ => None,
            })
        })
    }

    /// Looks the step up in the imported caches; on a hit, registers the
    /// step's snapshots and its layers as lazy (nothing is fetched) and
    /// writes the local record at `record_path`.
    pub(crate) async fn import_step(
        &self,
        task: &TaskRequest,
        key: &str,
        record_path: &Path,
    ) -> Option<TaskValue> {
        let imports = self.with_cache_session(|session| session.imports.clone());
        if imports.is_empty() {
            return None;
        }
        let digest = step_digest(key)?;
        for source in &imports {
            let Some(hit) = source.index().lookup(&digest) else {
                continue;
            };
            let Some(outputs) = self.register_import(task, source, hit) else {
                continue;
            };
            if self
                .save_record(record_path, &task.task_type, "", &outputs)
                .is_err()
            {
                return None;
            }
            if let Some(outputs) = self.load_record(record_path) {
                return Some(outputs);
            }
        }
        None
    }

    /// Registers the snapshots and lazy layers of a hit; its outputs.
    fn register_import(
        &self,
        task: &TaskRequest,
        source: &Source,
        hit: &StepHit,
    ) -> Option<TaskValue> {
        let payload: Payload = serde_json::from_value(hit.outputs.clone()?).ok()?;
        let mut snapshots = Vec::new();
        for (id, layers) in &payload.snapshots {
            let snapshot = Snapshot {
                layers: layers.clone(),
            };
            if snapshot.key() != *id {
                tracing::warn!(fs = %id, "cache record names an inconsistent snapshot; treated as a miss");
                return None;
            }
            snapshots.push(snapshot);
        }
        let mut blobs = HashMap::new();
        for (name, blob) in &payload.blobs {
            let Some(descriptor) = hit
                .layers
                .iter()
                .find(|layer| layer.digest.as_str() == blob)
            else {
                continue;
            };
            let info = BlobInfo {
                digest: blob.clone(),
                size: descriptor.size,
                media_type: descriptor.media_type.clone(),
                diff_id: descriptor.diff_id.as_ref().map(ToString::to_string),
            };
            let lazy = match source {
                Source::Local(_, dir) => LazySource::LocalCache {
                    dir: dir.clone(),
                    blob: info,
                },
                Source::Registry(remote, _) => LazySource::RegistryCache {
                    reference: remote.reference().to_owned(),
                    blob: info,
                },
            };
            blobs.insert(name.clone(), lazy);
        }
        let outputs = super::from_json(&payload.outputs);
        if let Err(error) =
            self.register_hit(&task.task_type, &task.inputs, &outputs, &snapshots, &blobs)
        {
            tracing::warn!("cannot register an imported step ({error}); treated as a miss");
            return None;
        }
        for snapshot in &snapshots {
            self.store.save_snapshot(snapshot).ok()?;
        }
        Some(outputs)
    }

    /// Exports this session's steps to every `--cache-to`.
    pub(crate) async fn export_caches(&self) -> Result<(), BackendError> {
        let (exports, steps, written, external, export_tag) = self.with_cache_session(|session| {
            (
                std::mem::take(&mut session.exports),
                std::mem::take(&mut session.steps),
                std::mem::take(&mut session.written),
                std::mem::take(&mut session.external),
                session.export_tag.clone(),
            )
        });
        if exports.is_empty() {
            return Ok(());
        }
        // Final results: outputs no other step consumed, or written out.
        let consumed: BTreeSet<&String> = steps.values().flat_map(|step| &step.inputs).collect();
        let mut payloads = Vec::new();
        for (key, step) in &steps {
            let ids = fs_ids(&step.outputs);
            let is_final = ids
                .iter()
                .any(|id| written.contains(id) || !consumed.contains(id));
            let mut snapshots = BTreeMap::new();
            for fs in step.outputs.fs_refs() {
                if let FsRef::Id(id) = fs {
                    snapshots.insert(id.clone(), self.snapshot(fs)?.layers);
                }
            }
            let outputs = serde_json::to_value(&step.outputs)
                .map_err(|error| failed(format!("serialising step outputs: {error}")))?;
            payloads.push(StepPayload {
                key: key.clone(),
                task_type: step.task_type.clone(),
                outputs,
                snapshots,
                is_final,
            });
        }
        let payloads = Arc::new(payloads);
        let external = Arc::new(external);
        let mut built: HashMap<bool, Arc<PreparedExport>> = HashMap::new();
        let mut with_mounts: HashMap<bool, Arc<PreparedExport>> = HashMap::new();
        for spec in exports {
            let mode = match &spec.backend {
                CacheBackend::Local(local) => local.mode,
                CacheBackend::Registry(registry) => registry.mode,
                CacheBackend::Gha(_) => continue,
            };
            let max = mode == Mode::Max;
            let prepared = match built.get(&max) {
                Some(prepared) => prepared.clone(),
                None => {
                    let store = self.store.clone();
                    let (payloads, external) = (payloads.clone(), external.clone());
                    let started = std::time::Instant::now();
                    let prepared =
                        super::blocking(move || build_export(&store, &payloads, &external, max))
                            .await?;
                    tracing::info!(
                        layers = prepared.export.layers.len(),
                        records = prepared.export.records.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "cache export prepared"
                    );
                    let prepared = Arc::new(prepared);
                    built.insert(max, prepared.clone());
                    prepared
                }
            };
            let prepared = if spec.cache_mounts {
                match with_mounts.get(&max) {
                    Some(prepared) => prepared.clone(),
                    None => {
                        let export = Arc::new(self.with_cache_mounts(&prepared.export).await?);
                        let prepared = Arc::new(PreparedExport {
                            export,
                            remote_only: prepared.remote_only.clone(),
                        });
                        with_mounts.insert(max, prepared.clone());
                        prepared
                    }
                }
            } else {
                prepared
            };
            let started = std::time::Instant::now();
            let result = self.export_one(&spec, &prepared, &export_tag).await;
            match result {
                Ok(report) => tracing::info!(
                    blobs_written = report.blobs_written,
                    blobs_present = report.blobs_present,
                    bytes_written = report.bytes_written,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "cache exported"
                ),
                Err(error) => spec_failure(&spec, format!("cache export failed: {error}"))?,
            }
        }
        Ok(())
    }

    /// Writes one prepared export to `spec`'s destination.
    async fn export_one(
        &self,
        spec: &CacheSpec,
        prepared: &PreparedExport,
        export_tag: &str,
    ) -> Result<cuedag_cache::ExportReport, BackendError> {
        match &spec.backend {
            CacheBackend::Local(local) => {
                self.fetch_remote_only(prepared, None).await?;
                let tag = local.tag.clone().unwrap_or_else(|| export_tag.to_owned());
                let dir = local.path.clone();
                let format = local.format;
                let export = prepared.export.clone();
                super::blocking(move || {
                    LocalCache::new(&dir)
                        .export(&export, &tag, format)
                        .map_err(|error| failed(error.to_string()))
                })
                .await
            }
            CacheBackend::Registry(_) => {
                let remote = cuedag_oci::BlobStore::open(self.store.root())
                    .map_err(|error| failed(error.to_string()))
                    .and_then(|blobs| RemoteCache::from_spec_env(spec, blobs))?;
                self.fetch_remote_only(prepared, Some(remote.remote().repository()))
                    .await?;
                remote
                    .export(&prepared.export)
                    .await
                    .map_err(|error| failed(error.to_string()))
            }
            CacheBackend::Gha(_) => Err(failed("`type=gha` is not supported yet")),
        }
    }

    /// Fetches into the blob store the lazy layers that are only in a
    /// registry cache other than `destination` (the repository exported
    /// to; such a registry already holds them).
    async fn fetch_remote_only(
        &self,
        prepared: &PreparedExport,
        destination: Option<&str>,
    ) -> Result<(), BackendError> {
        let blob_store = cuedag_oci::BlobStore::open(self.store.root())
            .map_err(|error| failed(error.to_string()))?;
        for (reference, descriptor) in &prepared.remote_only {
            let in_store = cuedag_oci::Digest::parse(descriptor.digest.as_str())
                .map(|digest| blob_store.contains(&digest))
                .unwrap_or(false);
            if in_store {
                continue;
            }
            let remote = self
                .remote_cache(reference)
                .ok_or_else(|| failed(format!("cannot open the registry cache `{reference}`")))?;
            if destination == Some(remote.remote().repository()) {
                continue;
            }
            let bytes = remote.fetch_layer(descriptor).await.ok_or_else(|| {
                failed(format!(
                    "layer blob {} cannot be fetched from `{reference}`",
                    descriptor.digest
                ))
            })?;
            blob_store
                .put_bytes(&bytes)
                .map_err(|error| failed(error.to_string()))?;
        }
        Ok(())
    }
}

/// A step to export.
struct StepPayload {
    key: String,
    task_type: String,
    outputs: serde_json::Value,
    snapshots: BTreeMap<String, Vec<String>>,
    /// Whether its outputs are final results (exported by `mode=min`).
    is_final: bool,
}

/// An export ready to write, plus the lazy layers whose blobs are only in
/// a registry cache (`ref`, descriptor).
struct PreparedExport {
    export: Arc<CacheExport>,
    remote_only: Vec<(String, LayerDescriptor)>,
}

fn build_export(
    store: &Store,
    payloads: &[StepPayload],
    external: &BTreeSet<String>,
    max: bool,
) -> Result<PreparedExport, BackendError> {
    let blob_store = cuedag_oci::BlobStore::open(store.root())
        .map_err(|error| failed(format!("opening the blob store: {error}")))?;
    // The layers to export: of every step (max) or of the final ones (min).
    let mut wanted: BTreeSet<&String> = BTreeSet::new();
    for payload in payloads.iter().filter(|payload| max || payload.is_final) {
        wanted.extend(payload.snapshots.values().flatten());
    }
    let mut layers: BTreeMap<String, Option<(Packed, ExportLayer)>> = BTreeMap::new();
    let mut remote_only = Vec::new();
    for name in wanted {
        if external.contains(name) {
            continue;
        }
        let found = layer_blob(store, &blob_store, name)?;
        let entry = match found {
            Some(found) => {
                let digest = Digest::parse(&found.packed.digest)
                    .map_err(|error| failed(format!("packed layer digest: {error}")))?;
                let descriptor = LayerDescriptor {
                    media_type: found.packed.media_type.clone(),
                    digest,
                    size: found.packed.size,
                    diff_id: Digest::parse(&found.packed.diff_id).ok(),
                    created_at: None,
                };
                if let Some(reference) = found.remote {
                    remote_only.push((reference, descriptor.clone()));
                }
                let layer = ExportLayer {
                    descriptor,
                    source: BlobSource::File(found.path),
                };
                Some((found.packed, layer))
            }
            None => {
                tracing::debug!(layer = %name, "layer neither extracted nor fetchable; not exported");
                None
            }
        };
        layers.insert(name.clone(), entry);
    }
    let mut records = Vec::new();
    for payload in payloads {
        let Some(key) = step_digest(&payload.key) else {
            continue;
        };
        let mut blobs = BTreeMap::new();
        let mut chain = Vec::new();
        for name in payload.snapshots.values().flatten() {
            if let Some(Some((packed, layer))) = layers.get(name) {
                blobs.insert(name.clone(), packed.digest.clone());
                if !chain.contains(&layer.descriptor.digest) {
                    chain.push(layer.descriptor.digest.clone());
                }
            }
        }
        let record = Payload {
            task_type: payload.task_type.clone(),
            outputs: payload.outputs.clone(),
            snapshots: payload.snapshots.clone(),
            blobs,
        };
        records.push(ExportRecord {
            key,
            inputs: Vec::new(),
            result: (!chain.is_empty()).then_some(StepResult {
                chain,
                created_at: None,
            }),
            outputs: serde_json::to_value(&record).ok(),
        });
    }
    Ok(PreparedExport {
        export: Arc::new(CacheExport {
            layers: layers
                .into_values()
                .flatten()
                .map(|(_, layer)| layer)
                .collect(),
            records,
            mounts: Vec::new(),
        }),
        remote_only,
    })
}

/// Where an exported layer's blob is.
struct FoundBlob {
    packed: Packed,
    path: PathBuf,
    /// The registry cache `ref` holding the blob when `path` (in the blob
    /// store) does not exist yet.
    remote: Option<String>,
}

/// The blob of layer `name`: the one packed earlier, else the blob a lazy
/// layer came from (so that re-exporting an import writes the same blobs),
/// else a fresh pack of the extracted layer. `None` if the layer is neither
/// extracted nor has a blob.
fn layer_blob(
    store: &Store,
    blob_store: &cuedag_oci::BlobStore,
    name: &str,
) -> Result<Option<FoundBlob>, BackendError> {
    let in_store = |digest: &str| {
        cuedag_oci::Digest::parse(digest)
            .ok()
            .filter(|digest| blob_store.contains(digest))
            .map(|digest| blob_store.blob_path(&digest))
    };
    let memo = store.root().join("packed").join(format!("{name}.json"));
    if let Some(packed) = std::fs::read(&memo)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Packed>(&bytes).ok())
    {
        if let Some(path) = in_store(&packed.digest) {
            return Ok(Some(FoundBlob {
                packed,
                path,
                remote: None,
            }));
        }
    }
    let mut in_registry = None;
    for source in store
        .load_lazy(name)
        .map(|lazy| lazy.sources)
        .unwrap_or_default()
    {
        let packed = |blob: &BlobInfo| Packed {
            digest: blob.digest.clone(),
            diff_id: blob.diff_id.clone().unwrap_or_default(),
            size: blob.size,
            media_type: blob.media_type.clone(),
        };
        match &source {
            LazySource::LocalCache { dir, blob } => {
                if let Some(path) = in_store(&blob.digest) {
                    return Ok(Some(FoundBlob {
                        packed: packed(blob),
                        path,
                        remote: None,
                    }));
                }
                let Ok(digest) = Digest::parse(&blob.digest) else {
                    continue;
                };
                let path = LocalCache::new(dir).blob_path(&digest);
                if std::fs::metadata(&path).is_ok_and(|meta| meta.len() == blob.size) {
                    return Ok(Some(FoundBlob {
                        packed: packed(blob),
                        path,
                        remote: None,
                    }));
                }
            }
            LazySource::RegistryCache { reference, blob } => {
                if let Some(path) = in_store(&blob.digest) {
                    return Ok(Some(FoundBlob {
                        packed: packed(blob),
                        path,
                        remote: None,
                    }));
                }
                if in_registry.is_none() {
                    if let Ok(digest) = cuedag_oci::Digest::parse(&blob.digest) {
                        in_registry = Some(FoundBlob {
                            packed: packed(blob),
                            path: blob_store.blob_path(&digest),
                            remote: Some(reference.clone()),
                        });
                    }
                }
            }
            LazySource::Image { .. } => {}
        }
    }
    if let Some(found) = in_registry {
        return Ok(Some(found));
    }
    if !store.layer_path(name).is_dir() {
        return Ok(None);
    }
    let packed = cuedag_oci::layer::pack_to_store(blob_store, &store.layer_path(name), true)
        .map_err(|error| failed(format!("packing layer `{name}`: {error}")))?;
    let path = blob_store.blob_path(&packed.digest);
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
    Ok(Some(FoundBlob {
        packed,
        path,
        remote: None,
    }))
}
