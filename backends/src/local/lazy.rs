//! Lazy layers: a snapshot may name layers whose files are not extracted
//! yet. They are fetched, verified and extracted only when a task needs the
//! files (an exec that runs, a client write, `#ReadFile`, `#Copy`, ...), as
//! BuildKit does with lazy blobs.
//!
//! `<store>/lazy/<layer>.json` records where a missing layer can come from:
//! blobs (an image layer through the registry client, a blob of a
//! `type=local` cache directory or of a `type=registry` cache), and the
//! step that produced it (task type, inputs, outputs), so that a blob that
//! turns out to be missing or corrupt when needed is a cache miss: a
//! warning, then the step runs again and its new layer takes the missing
//! one's place. Producers whose inputs hold a secret are kept in memory
//! only (for this process).
//!
//! `#Pull` registers the image's layers (manifest and config only are
//! fetched); a step-cache hit imported from `--cache-from` registers the
//! layers its step made. A layer is extracted by at most one fetch at a
//! time per process; a racing process's copy is dropped on commit.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use cuedag_evaluator::plan::TaskValue;
use serde::{Deserialize, Serialize};

use super::store::{write_atomic, Snapshot, Store};
use super::{failed, LocalBackend};
use crate::backend::{BoxFuture, TaskContext};
use crate::events::Level;
use crate::remote_cache::RemoteCache;
use crate::BackendError;

/// A blob holding a layer, as a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlobInfo {
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) diff_id: Option<String>,
}

/// Where a layer's blob can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub(crate) enum LazySource {
    /// A layer of an image, through the registry client (mirrors first).
    Image { reference: String, blob: BlobInfo },
    /// A blob of a `type=local` cache directory.
    LocalCache { dir: PathBuf, blob: BlobInfo },
    /// A blob of a `type=registry` cache (`reference` is the spec's `ref`).
    RegistryCache { reference: String, blob: BlobInfo },
}

impl LazySource {
    pub(crate) fn blob(&self) -> &BlobInfo {
        match self {
            LazySource::Image { blob, .. }
            | LazySource::LocalCache { blob, .. }
            | LazySource::RegistryCache { blob, .. } => blob,
        }
    }
}

/// The step that made a layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Producer {
    #[serde(rename = "type")]
    task_type: String,
    inputs: serde_json::Value,
    outputs: serde_json::Value,
}

/// The record of a lazy layer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LazyLayer {
    #[serde(default)]
    pub(crate) sources: Vec<LazySource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    producer: Option<Producer>,
}

/// In-process state of lazy layers.
#[derive(Debug, Default)]
pub(crate) struct LazyState {
    /// Layer → (task type, inputs, outputs) of the step that made it.
    producers: Mutex<HashMap<String, (String, TaskValue, TaskValue)>>,
    /// Registry caches opened to fetch blobs, by `ref`.
    remotes: Mutex<HashMap<String, Arc<RemoteCache>>>,
    /// One fetch or rebuild per layer at a time.
    fetching: crate::builtin::PathLocks,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// The lazy record of layer `name`, if any.
    pub(crate) fn load_lazy(&self, name: &str) -> Option<LazyLayer> {
        let bytes = std::fs::read(self.lazy_path(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Adds `sources` (and `producer` when none is recorded) to the lazy
    /// record of `name`.
    fn add_lazy(
        &self,
        name: &str,
        sources: &[LazySource],
        producer: Option<Producer>,
    ) -> Result<(), BackendError> {
        if !self.is_layer_name(name) {
            return Err(failed(format!("invalid layer name `{name}`")));
        }
        let mut record = self.load_lazy(name).unwrap_or_default();
        let before = (record.sources.len(), record.producer.is_some());
        for source in sources {
            if !record.sources.contains(source) {
                record.sources.push(source.clone());
            }
        }
        if record.producer.is_none() {
            record.producer = producer;
        }
        if (record.sources.len(), record.producer.is_some()) == before
            && self.lazy_path(name).is_file()
        {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&record)
            .map_err(|error| failed(format!("serialising a lazy layer record: {error}")))?;
        write_atomic(&self.lazy_path(name), &bytes)
    }

    fn is_layer_name(&self, name: &str) -> bool {
        !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

fn contains_reference(value: &TaskValue) -> bool {
    match value {
        TaskValue::Secret(_) | TaskValue::Socket(_) | TaskValue::Bytes(_) => true,
        TaskValue::List(items) => items.iter().any(contains_reference),
        TaskValue::Struct(fields) => fields.values().any(contains_reference),
        _ => false,
    }
}

/// A fetch of one layer from its blob sources, owning what it needs.
struct Fetch {
    store: Store,
    name: String,
    sources: Vec<LazySource>,
    registry: Option<cuedag_oci::RegistryClient>,
    remotes: HashMap<String, Arc<RemoteCache>>,
}

impl Fetch {
    /// Tries each source in turn; `true` once the layer is extracted.
    async fn run(self) -> bool {
        for source in &self.sources {
            let done = match source {
                LazySource::Image { reference, blob } => self.fetch_image(reference, blob).await,
                LazySource::LocalCache { dir, blob } => self.fetch_local(dir, blob).await,
                LazySource::RegistryCache { reference, blob } => {
                    self.fetch_registry(reference, blob).await
                }
            };
            match done {
                Ok(()) => return true,
                Err(message) => tracing::warn!(
                    layer = %self.name,
                    "cannot fetch layer blob {} ({message}); treated as a cache miss",
                    blob_of(source)
                ),
            }
        }
        false
    }

    async fn fetch_image(&self, reference: &str, blob: &BlobInfo) -> Result<(), String> {
        let client = self
            .registry
            .as_ref()
            .ok_or("no registry client is configured")?;
        let reference =
            cuedag_oci::Reference::parse(reference).map_err(|error| error.to_string())?;
        let digest = cuedag_oci::Digest::parse(&blob.digest).map_err(|error| error.to_string())?;
        client
            .pull_blob(&reference, &digest, None)
            .await
            .map_err(|error| error.to_string())?;
        let temp = self
            .store
            .temp_dir("pull-")
            .map_err(|error| error.to_string())?;
        let dest = temp.path().join("layer");
        cuedag_oci::layer::extract_blob_async(client.store().clone(), digest, dest.clone())
            .await
            .map_err(|error| error.to_string())?;
        self.store
            .commit_layer_as(&dest, &self.name)
            .map_err(|error| error.to_string())
    }

    async fn fetch_local(&self, dir: &std::path::Path, blob: &BlobInfo) -> Result<(), String> {
        let digest =
            cuedag_cache::Digest::parse(&blob.digest).map_err(|error| error.to_string())?;
        let path = cuedag_cache::LocalCache::new(dir).blob_path(&digest);
        let (store, name) = (self.store.clone(), self.name.clone());
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|error| error.to_string())?;
            let (found, _) =
                cuedag_cache::Digest::of_reader(file).map_err(|error| error.to_string())?;
            if found != digest {
                return Err(format!("digest mismatch: found {found}"));
            }
            let file = std::fs::File::open(&path).map_err(|error| error.to_string())?;
            install(&store, &name, file)
        })
        .await
        .map_err(|error| error.to_string())?
    }

    async fn fetch_registry(&self, reference: &str, blob: &BlobInfo) -> Result<(), String> {
        let remote = self
            .remotes
            .get(reference)
            .ok_or("the registry cache cannot be opened")?;
        let descriptor = cuedag_cache::LayerDescriptor {
            media_type: blob.media_type.clone(),
            digest: cuedag_cache::Digest::parse(&blob.digest).map_err(|error| error.to_string())?,
            size: blob.size,
            diff_id: None,
            created_at: None,
        };
        let bytes = remote
            .fetch_layer(&descriptor)
            .await
            .ok_or("missing, corrupt or unreachable")?;
        let (store, name) = (self.store.clone(), self.name.clone());
        tokio::task::spawn_blocking(move || install(&store, &name, std::io::Cursor::new(bytes)))
            .await
            .map_err(|error| error.to_string())?
    }
}

fn blob_of(source: &LazySource) -> &str {
    &source.blob().digest
}

/// Extracts a layer blob into `<store>/layers/<name>`.
fn install(store: &Store, name: &str, blob: impl std::io::Read) -> Result<(), String> {
    let temp = store
        .temp_dir("import-")
        .map_err(|error| error.to_string())?;
    let dir = temp.path().join("layer");
    cuedag_oci::extract_layer(blob, &dir).map_err(|error| error.to_string())?;
    store
        .commit_layer_as(&dir, name)
        .map_err(|error| error.to_string())
}

impl LocalBackend {
    /// Records that the missing `layers` can be fetched from `sources`
    /// (one list per layer).
    pub(crate) fn register_lazy(
        &self,
        layers: &[(String, Vec<LazySource>)],
    ) -> Result<(), BackendError> {
        for (name, sources) in layers {
            if !self.store().layer_path(name).is_dir() {
                self.store().add_lazy(name, sources, None)?;
            }
        }
        Ok(())
    }

    /// Records the missing layers of a step-cache hit: each layer of its
    /// outputs that is neither extracted nor part of an input gets the
    /// step as producer and its blob (if the cache holds one) as source.
    pub(crate) fn register_hit(
        &self,
        task_type: &str,
        inputs: &TaskValue,
        outputs: &TaskValue,
        snapshots: &[Snapshot],
        blobs: &HashMap<String, LazySource>,
    ) -> Result<(), BackendError> {
        let mut inherited = BTreeSet::new();
        for fs in inputs.fs_refs() {
            if let Ok(snapshot) = self.snapshot(fs) {
                inherited.extend(snapshot.layers);
            }
        }
        let persist = !contains_reference(inputs);
        for snapshot in snapshots {
            for name in &snapshot.layers {
                if inherited.contains(name) || self.store().layer_path(name).is_dir() {
                    continue;
                }
                let sources: Vec<LazySource> = blobs.get(name).cloned().into_iter().collect();
                let producer = persist.then(|| Producer {
                    task_type: task_type.to_owned(),
                    inputs: serde_json::to_value(inputs).unwrap_or_default(),
                    outputs: serde_json::to_value(outputs).unwrap_or_default(),
                });
                self.store().add_lazy(name, &sources, producer)?;
                lock(&self.lazy.producers).insert(
                    name.clone(),
                    (task_type.to_owned(), inputs.clone(), outputs.clone()),
                );
            }
        }
        Ok(())
    }

    /// Makes every layer of every `#FS` in `value` present: fetches the
    /// missing ones (a few at a time), and rebuilds those whose blobs
    /// cannot be had by running their producing step again.
    pub(crate) fn materialise<'a>(
        &'a self,
        value: &'a TaskValue,
        context: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut missing: Vec<String> = Vec::new();
            for fs in value.fs_refs() {
                for name in self.snapshot(fs)?.layers {
                    if !self.store().layer_path(&name).is_dir() && !missing.contains(&name) {
                        missing.push(name);
                    }
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            let mut fetches = tokio::task::JoinSet::new();
            let limit = Arc::new(tokio::sync::Semaphore::new(3));
            for name in &missing {
                let fetch = self.fetch_for(name).await;
                let per_layer = self.lazy.fetching.lock_for(&self.store().layer_path(name));
                let limit = limit.clone();
                let name = name.clone();
                fetches.spawn(async move {
                    let _one = per_layer.lock_owned().await;
                    let _permit = limit.acquire_owned().await;
                    let done = match fetch {
                        Some(fetch) if !fetch.store.layer_path(&fetch.name).is_dir() => {
                            fetch.run().await
                        }
                        Some(_) => true,
                        None => false,
                    };
                    (name, done)
                });
            }
            let mut failed_layers = Vec::new();
            while let Some(joined) = fetches.join_next().await {
                match joined {
                    Ok((name, false)) => failed_layers.push(name),
                    Ok((_, true)) => {}
                    Err(error) => return Err(failed(format!("layer fetch stopped: {error}"))),
                }
            }
            for name in failed_layers {
                if !self.store().layer_path(&name).is_dir() {
                    self.rebuild(&name, context).await?;
                }
            }
            Ok(())
        })
    }

    /// The fetch of `name` from its recorded blob sources (`None` if it
    /// has none).
    async fn fetch_for(&self, name: &str) -> Option<Fetch> {
        let record = self.store().load_lazy(name)?;
        if record.sources.is_empty() {
            return None;
        }
        let mut remotes = HashMap::new();
        let mut registry = None;
        for source in &record.sources {
            match source {
                LazySource::Image { .. } => registry = self.registry().ok().cloned(),
                LazySource::RegistryCache { reference, .. } => {
                    if let Some(remote) = self.remote_cache(reference) {
                        remotes.insert(reference.clone(), remote);
                    }
                }
                LazySource::LocalCache { .. } => {}
            }
        }
        Some(Fetch {
            store: self.store().clone(),
            name: name.to_owned(),
            sources: record.sources,
            registry,
            remotes,
        })
    }

    /// The registry cache at `reference`: the session's import when it is
    /// one, else a client opened for it.
    pub(crate) fn remote_cache(&self, reference: &str) -> Option<Arc<RemoteCache>> {
        if let Some(remote) = self.session_remote(reference) {
            return Some(remote);
        }
        if let Some(remote) = lock(&self.lazy.remotes).get(reference) {
            return Some(remote.clone());
        }
        let no_env = |_: &str| None;
        let specs = cuedag_cache::CacheSpecs::from_args(
            &[],
            &[format!("type=registry,ref={reference}")],
            &no_env,
        )
        .ok()?;
        let spec = specs.from.first()?;
        let blobs = cuedag_oci::BlobStore::open(self.store().root()).ok()?;
        let remote = Arc::new(RemoteCache::from_spec_env(spec, blobs).ok()?);
        lock(&self.lazy.remotes).insert(reference.to_owned(), remote.clone());
        Some(remote)
    }

    /// Runs the step that made layer `name` again and puts its new layer in
    /// `name`'s place.
    fn rebuild<'a>(
        &'a self,
        name: &'a str,
        context: &'a TaskContext,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let producer = lock(&self.lazy.producers).get(name).cloned().or_else(|| {
                let producer = self.store().load_lazy(name)?.producer?;
                Some((
                    producer.task_type,
                    super::from_json(&producer.inputs),
                    super::from_json(&producer.outputs),
                ))
            });
            let Some((task_type, inputs, outputs)) = producer else {
                return Err(failed(format!(
                    "layer `{name}` is not available: its blob cannot be fetched and the step that made it is unknown (hint: run again with `--no-cache`)"
                )));
            };
            // Concurrent tasks needing the layer wait for one rebuild. A
            // producer never needs its own layer (its inputs' layers are
            // excluded when it is registered), so this cannot wait on itself.
            let per_layer = self.lazy.fetching.lock_for(&self.store().layer_path(name));
            let _one = per_layer.lock().await;
            if self.store().layer_path(name).is_dir() {
                return Ok(());
            }
            let message = format!(
                "layer {} of a cached `{task_type}` step is not available; running the step again",
                &name[..name.len().min(12)]
            );
            context.log(Level::Warn, &message);
            self.rebuild_from(name, &task_type, &inputs, &outputs, context)
                .await
        })
    }

    async fn rebuild_from(
        &self,
        name: &str,
        task_type: &str,
        inputs: &TaskValue,
        outputs: &TaskValue,
        context: &TaskContext,
    ) -> Result<(), BackendError> {
        // Only step-cached task types are rebuilt here, and `#Source` (the
        // one task that needs its declaring file's location) is not one.
        let fresh = self.dispatch(task_type, inputs, None, context).await?;
        let mut inherited = BTreeSet::new();
        for fs in inputs.fs_refs() {
            inherited.extend(self.snapshot(fs)?.layers);
        }
        let own = |snapshot: Snapshot| -> Vec<String> {
            snapshot
                .layers
                .into_iter()
                .filter(|layer| !inherited.contains(layer))
                .collect()
        };
        for (old, new) in outputs.fs_refs().into_iter().zip(fresh.fs_refs()) {
            let old_layers = own(self.snapshot(old)?);
            let new_layers = own(self.snapshot(new)?);
            let Some(position) = old_layers.iter().position(|layer| layer == name) else {
                continue;
            };
            let store = self.store().clone();
            let target = name.to_owned();
            let replacement = if new_layers.len() == old_layers.len() {
                new_layers.get(position).cloned()
            } else if new_layers.is_empty() {
                None
            } else {
                return Err(failed(format!(
                    "the `{task_type}` step gave a different result when run again; run again with `--no-cache`"
                )));
            };
            return super::blocking(move || stand_in(&store, &target, replacement.as_deref()))
                .await;
        }
        Err(failed(format!(
            "the `{task_type}` step run again did not make layer `{name}`; run again with `--no-cache`"
        )))
    }
}

/// Installs the content of layer `replacement` (empty when `None`) as layer
/// `name`: packed into the blob store and extracted under the new name
/// (which keeps whiteouts, owners and xattrs), remembered as `name`'s blob.
fn stand_in(store: &Store, name: &str, replacement: Option<&str>) -> Result<(), BackendError> {
    if replacement == Some(name) || store.layer_path(name).is_dir() {
        return Ok(());
    }
    let temp = store.temp_dir("rebuild-")?;
    let dir = temp.path().join("layer");
    match replacement {
        None => std::fs::create_dir(&dir)
            .map_err(|error| BackendError::io("creating an empty layer", error))?,
        Some(replacement) => {
            let blobs = cuedag_oci::BlobStore::open(store.root())
                .map_err(|error| failed(error.to_string()))?;
            let packed =
                cuedag_oci::layer::pack_to_store(&blobs, &store.layer_path(replacement), true)
                    .map_err(|error| failed(format!("packing a rebuilt layer: {error}")))?;
            cuedag_oci::layer::extract_blob(&blobs, &packed.digest, &dir)
                .map_err(|error| failed(format!("extracting a rebuilt layer: {error}")))?;
        }
    }
    store.commit_layer_as(&dir, name)
}
