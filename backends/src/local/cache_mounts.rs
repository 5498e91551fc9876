//! `cache-mounts=true` (a cuedag extension of `--cache-to`/`--cache-from`):
//! the contents of `core.#Exec` cache mounts (`core.#CacheDir`, e.g. the Go
//! module and build caches `go_builder_mod` / `go_builder_build`) travel
//! with the persistent cache, so a cold machine whose source changed still
//! builds incrementally.
//!
//! Export: every cache mount an `#Exec`/`#Start` of the session named (run
//! or cache hit) is packed, as found in `<store>/cache-mounts/`, into one
//! layer blob and listed in the cache config's `cuedag.mounts` (id → blob);
//! only the `--cache-to` specs with `cache-mounts=true` carry them. A mount
//! is packed under its exclusive lock (the one the sandbox takes, shared,
//! while an exec uses it), so a concurrent exec cannot change it mid-way;
//! an empty or absent mount is not exported. A mount whose entries'
//! metadata (paths, modes, owners, sizes, mtimes and ctimes) did not change
//! since it was last packed reuses that blob (`<store>/packed/mount-*.json`),
//! so an unchanged export costs a `stat` per file, not a repack.
//!
//! Import: of the `--cache-from` caches the cache session opened at
//! `prepare` (their index only), those with `cache-mounts=true` are kept. Just before an exec runs, each of its cache
//! mounts that is absent or empty in the store is restored from the first
//! cache that has it: the blob is fetched and verified, extracted into a
//! temporary directory, and renamed into place under the mount's exclusive
//! lock. A populated local mount is never replaced. A missing or corrupt
//! blob is a warning, and the exec runs with an empty mount.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cuedag_cache::{
    BlobSource, CacheExport, CacheSpecs, Digest, ExportLayer, ExportMount, LayerDescriptor,
};
use cuedag_evaluator::plan::TaskValue;
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::os::unix::fs::MetadataExt;

use super::cache_io::Source;
use super::store::{write_atomic, Store};
use super::{failed, opt_str, LocalBackend};
use crate::BackendError;

/// The cache-mount state of one session.
#[derive(Default)]
pub(crate) struct MountSession {
    /// Caches to restore mounts from (`--cache-from ...,cache-mounts=true`,
    /// as the cache session opened them).
    sources: Vec<Source>,
    /// Whether some `--cache-to` has `cache-mounts=true`.
    export: bool,
    /// Ids of the cache mounts the session's execs named.
    used: BTreeSet<String>,
    /// Ids already restored or found populated.
    settled: BTreeSet<String>,
}

impl std::fmt::Debug for MountSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountSession")
            .field("sources", &self.sources.len())
            .field("export", &self.export)
            .field("used", &self.used)
            .finish()
    }
}

impl MountSession {
    /// The mount state for `specs`, restoring from `sources`: the
    /// `--cache-from` caches with `cache-mounts=true` that the cache
    /// session opened (see `CacheSession::mount_imports`).
    pub(crate) fn new(specs: &CacheSpecs, sources: Vec<Source>) -> MountSession {
        MountSession {
            export: specs.to.iter().any(|spec| spec.cache_mounts),
            sources,
            ..MountSession::default()
        }
    }

    fn active(&self) -> bool {
        self.export || !self.sources.is_empty()
    }
}

/// The ids of the cache mounts of an `#Exec`/`#Start`'s inputs.
fn mount_ids(inputs: &TaskValue) -> Vec<String> {
    let Some(mounts) = inputs.get("mounts").and_then(TaskValue::as_struct) else {
        return Vec::new();
    };
    mounts
        .values()
        .filter_map(|mount| {
            let contents = mount.get("contents")?;
            let is_cache = match opt_str(mount, "type") {
                Some(kind) => kind == "cache",
                None => matches!(contents, TaskValue::Struct(fields) if fields.contains_key("id")),
            };
            is_cache.then(|| opt_str(contents, "id").map(str::to_owned))?
        })
        .collect()
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(true, |mut entries| entries.next().is_none())
}

/// The lock file the sandbox takes for a cache mount (`<dir>.lock`).
fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_lock(dir: &Path) -> Result<std::fs::File, BackendError> {
    let path = lock_path(dir);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| BackendError::io(format!("opening `{}`", path.display()), error))
}

impl LocalBackend {
    /// Notes the cache mounts of an `#Exec`/`#Start` (run or hit), for
    /// `cache-mounts=true` exports.
    pub(crate) async fn note_cache_mounts(&self, task_type: &str, inputs: &TaskValue) {
        if !matches!(task_type, "Exec" | "Start") {
            return;
        }
        let mut session = self.cache_mounts.lock().await;
        if session.active() {
            session.used.extend(mount_ids(inputs));
        }
    }

    /// Restores, from the imported caches, the cache mounts of an exec that
    /// is about to run and are absent or empty in the store.
    pub(crate) async fn restore_cache_mounts(&self, inputs: &TaskValue) {
        let mut session = self.cache_mounts.lock().await;
        if session.sources.is_empty() {
            return;
        }
        for id in mount_ids(inputs) {
            if !session.settled.insert(id.clone()) {
                continue;
            }
            let dir = self.store.cache_mount_path(&id);
            if !is_empty_dir(&dir) {
                continue;
            }
            for source in &session.sources {
                let Some(layer) = source.index().mount(&id).cloned() else {
                    continue;
                };
                if restore(&self.store, source, &id, &layer, &dir).await {
                    tracing::info!(mount = %id, blob = %layer.digest, "cache mount restored");
                    break;
                }
            }
        }
    }

    /// The export to write for a `cache-mounts=true` spec: `export` plus
    /// every cache mount the session used, packed as a layer (an untouched
    /// mount is not packed again, so calling this per spec is cheap).
    pub(crate) async fn with_cache_mounts(
        &self,
        export: &CacheExport,
    ) -> Result<CacheExport, BackendError> {
        let used = self.cache_mounts.lock().await.used.clone();
        let store = self.store.clone();
        let mut export = export.clone();
        super::blocking(move || {
            let blob_store = cuedag_oci::BlobStore::open(store.root())
                .map_err(|error| failed(format!("opening the blob store: {error}")))?;
            for id in used {
                let dir = store.cache_mount_path(&id);
                if is_empty_dir(&dir) {
                    continue;
                }
                match pack_mount(&store, &blob_store, &id, &dir) {
                    Ok(layer) => {
                        let digest = layer.descriptor.digest.clone();
                        if !export.layers.iter().any(|l| l.descriptor.digest == digest) {
                            export.layers.push(layer);
                        }
                        export.mounts.push(ExportMount {
                            id,
                            layer: digest,
                            created_at: None,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(mount = %id, "cache mount not exported: {error}")
                    }
                }
            }
            Ok(export)
        })
        .await
    }
}

/// A packed mount remembered in `<store>/packed/mount-<fingerprint>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct PackedMount {
    digest: String,
    diff_id: String,
    size: u64,
    media_type: String,
}

/// A digest of the metadata of every entry under `dir` (path, kind, mode,
/// owner, size, mtime and ctime, symlink target): equal fingerprints mean
/// the tree was not touched, so its packed blob can be reused. Reading no
/// file contents, it costs a `stat` per entry.
fn fingerprint(dir: &Path) -> Result<String, BackendError> {
    let mut hasher = Sha256::new();
    hasher.update(b"cuedag-mount-fingerprint-v1\n");
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|error| {
            BackendError::io(format!("walking `{}`", dir.display()), error.into())
        })?;
        let meta = entry.metadata().map_err(|error| {
            BackendError::io(
                format!("reading `{}`", entry.path().display()),
                error.into(),
            )
        })?;
        let target = if meta.file_type().is_symlink() {
            std::fs::read_link(entry.path())
                .map(|target| target.display().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        hasher.update(
            format!(
                "{}\0{:o}\0{}:{}\0{}\0{}.{}\0{}.{}\0{}\n",
                rel.display(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                target
            )
            .as_bytes(),
        );
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Packs the cache mount at `dir` into the blob store, under its exclusive
/// lock; an untouched mount reuses the blob packed before.
fn pack_mount(
    store: &Store,
    blob_store: &cuedag_oci::BlobStore,
    id: &str,
    dir: &Path,
) -> Result<ExportLayer, BackendError> {
    // Exclusive: execs using the mount (even `shared` ones, which take the
    // lock shared) are not writing it while it is read, so the snapshot is
    // consistent. The session's own execs are all done by export time.
    let lock = open_lock(dir)?;
    FileExt::lock_exclusive(&lock)
        .map_err(|error| BackendError::io("locking a cache mount", error))?;
    let memo = store
        .root()
        .join("packed")
        .join(format!("mount-{}.json", fingerprint(dir)?));
    let remembered = std::fs::read(&memo)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<PackedMount>(&bytes).ok())
        .filter(|packed| {
            cuedag_oci::Digest::parse(&packed.digest).is_ok_and(|d| blob_store.contains(&d))
        });
    let packed = match remembered {
        Some(packed) => packed,
        None => {
            let packed = cuedag_oci::layer::pack_to_store(blob_store, dir, true)
                .map_err(|error| failed(format!("packing cache mount `{id}`: {error}")))?;
            let packed = PackedMount {
                digest: packed.digest.to_string(),
                diff_id: packed.diff_id.to_string(),
                size: packed.size,
                media_type: packed.media_type,
            };
            if let Some(parent) = memo.parent() {
                std::fs::create_dir_all(parent).map_err(|error| {
                    BackendError::io(format!("creating `{}`", parent.display()), error)
                })?;
            }
            let bytes = serde_json::to_vec(&packed)
                .map_err(|error| failed(format!("recording a packed mount: {error}")))?;
            write_atomic(&memo, &bytes)?;
            packed
        }
    };
    drop(lock);
    let digest = Digest::parse(&packed.digest)
        .map_err(|error| failed(format!("packed mount digest: {error}")))?;
    let blob = cuedag_oci::Digest::parse(&packed.digest)
        .map_err(|error| failed(format!("packed mount digest: {error}")))?;
    Ok(ExportLayer {
        descriptor: LayerDescriptor {
            media_type: packed.media_type,
            digest,
            size: packed.size,
            diff_id: Digest::parse(&packed.diff_id).ok(),
            created_at: None,
        },
        source: BlobSource::File(blob_store.blob_path(&blob)),
    })
}

/// Fetches, verifies and extracts the mount's blob into `dir`; `false`
/// (with a warning) if it cannot.
async fn restore(
    store: &Store,
    source: &Source,
    id: &str,
    layer: &LayerDescriptor,
    dir: &Path,
) -> bool {
    let blob: Box<dyn std::io::Read + Send> = match source {
        Source::Local(import, _) => {
            let import = import.clone();
            let layer = layer.clone();
            let path = tokio::task::spawn_blocking(move || import.verified_blob_path(&layer))
                .await
                .ok()
                .flatten();
            match path.map(std::fs::File::open) {
                Some(Ok(file)) => Box::new(file),
                _ => return false,
            }
        }
        Source::Registry(remote, _) => match remote.fetch_layer(layer).await {
            Some(bytes) => Box::new(std::io::Cursor::new(bytes)),
            None => return false,
        },
    };
    let store = store.clone();
    let id = id.to_owned();
    let dir = dir.to_path_buf();
    let result = super::blocking(move || install(&store, blob, &dir)).await;
    if let Err(error) = &result {
        tracing::warn!(mount = %id, "cannot restore cache mount: {error}");
    }
    result.is_ok()
}

fn install(store: &Store, blob: impl std::io::Read, dir: &Path) -> Result<(), BackendError> {
    let temp = store.temp_dir("mount-")?;
    let unpacked = temp.path().join("mount");
    cuedag_oci::extract_layer(blob, &unpacked)
        .map_err(|error| failed(format!("extracting: {error}")))?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| BackendError::io("creating the cache-mounts directory", error))?;
    }
    let lock = open_lock(dir)?;
    FileExt::lock_exclusive(&lock)
        .map_err(|error| BackendError::io("locking a cache mount", error))?;
    if !is_empty_dir(dir) {
        // Filled meanwhile by someone else: keep theirs.
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir(dir)
            .map_err(|error| BackendError::io("replacing an empty cache mount", error))?;
    }
    std::fs::rename(&unpacked, dir)
        .map_err(|error| BackendError::io("installing a cache mount", error))?;
    Ok(())
}
