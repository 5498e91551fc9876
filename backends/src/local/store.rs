//! The on-disk store of the local backend: layer directories named by
//! content, snapshots (ordered layer lists, the targets of `#FS` ids), step
//! records, persistent cache mounts and lock files.
//!
//! Layout under the root: `blobs/sha256/` (the OCI blob store), `layers/`,
//! `lazy/` (where a layer not extracted yet can be fetched from, see
//! `lazy.rs`), `snapshots/`, `steps/`, `cache-mounts/`, `locks/`, `tmp/`,
//! `universe/` (the embedded packages' files, for `core.#Source`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::BackendError;

/// The store root used when neither `--store` nor `CUEDAG_STORE` is given:
/// `$XDG_CACHE_HOME/cuedag`, else `~/.cache/cuedag`.
pub fn default_store_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CUEDAG_STORE").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("cuedag");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("cuedag"),
        None => PathBuf::from("/var/cache/cuedag"),
    }
}

/// An ordered stack of layers (bottom first), named by their directory
/// under `layers/`. The empty stack is `#Scratch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Layer names, bottom first.
    pub layers: Vec<String>,
}

impl Snapshot {
    /// The content key of the stack (also its `#FS` id).
    pub fn key(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"cuedag-snapshot-v1\n");
        for layer in &self.layers {
            hasher.update(layer.as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }

    /// This stack with `layer` on top.
    pub fn with_layer(&self, layer: Option<String>) -> Snapshot {
        let mut layers = self.layers.clone();
        if let Some(layer) = layer {
            layers.retain(|existing| existing != &layer);
            layers.push(layer);
        }
        Snapshot { layers }
    }

    /// Concatenation of stacks; a layer appearing twice keeps only its
    /// upper position (the merged view is the same, and overlayfs refuses a
    /// directory used twice).
    pub fn concat<'a>(stacks: impl IntoIterator<Item = &'a Snapshot>) -> Snapshot {
        let mut layers: Vec<String> = Vec::new();
        for stack in stacks {
            for layer in &stack.layers {
                layers.retain(|existing| existing != layer);
                layers.push(layer.clone());
            }
        }
        Snapshot { layers }
    }
}

/// The local backend's store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
    let context = context.into();
    move |error| BackendError::io(context, error)
}

impl Store {
    /// Opens (creating) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, BackendError> {
        let root = root.into();
        for dir in [
            "layers",
            "lazy",
            "snapshots",
            "steps",
            "cache-mounts",
            "locks/steps",
            "tmp",
        ] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_error(format!(
                "creating store directory `{}`",
                path.display()
            )))?;
        }
        Ok(Store { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of layer `name`.
    pub fn layer_path(&self, name: &str) -> PathBuf {
        self.root.join("layers").join(name)
    }

    /// The record of lazy layer `name` (see `lazy.rs`).
    pub(crate) fn lazy_path(&self, name: &str) -> PathBuf {
        self.root.join("lazy").join(format!("{name}.json"))
    }

    /// Whether layer `name` is extracted, or known to be fetchable or
    /// rebuildable when its files are needed.
    pub fn has_layer(&self, name: &str) -> bool {
        is_hex_name(name) && (self.layer_path(name).is_dir() || self.lazy_path(name).is_file())
    }

    /// The layer directories of a snapshot, bottom first.
    pub fn layer_paths(&self, snapshot: &Snapshot) -> Vec<PathBuf> {
        snapshot
            .layers
            .iter()
            .map(|name| self.layer_path(name))
            .collect()
    }

    /// The persistent directory of cache mount `id`.
    pub fn cache_mount_path(&self, id: &str) -> PathBuf {
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let digest = hex::encode(Sha256::digest(id.as_bytes()));
        self.root
            .join("cache-mounts")
            .join(format!("{}-{}", safe, &digest[..12]))
    }

    /// A fresh temporary directory inside the store (same file system as
    /// the layers, so results can be renamed into place).
    pub fn temp_dir(&self, prefix: &str) -> Result<tempfile::TempDir, BackendError> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.root.join("tmp"))
            .map_err(io_error("creating a temporary directory in the store"))
    }

    /// The embedded `dagger.io` / `universe.dagger.io` files written out
    /// under `universe/<digest>/` (once per binary version; the directory is
    /// filled in a temporary directory and renamed into place), so tasks
    /// such as `core.#Source` can read the files a package ships.
    pub fn universe_dir(&self) -> Result<PathBuf, BackendError> {
        let mut hasher = Sha256::new();
        for (path, text) in cuedag_universe::files() {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(cuedag_universe::file_mode(path).to_le_bytes());
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
        let digest = hex::encode(hasher.finalize());
        let target = self.root.join("universe").join(&digest[..16]);
        if target.is_dir() {
            return Ok(target);
        }
        let temp = self.temp_dir("universe-")?;
        for (path, text) in cuedag_universe::files() {
            let file = temp.path().join(path);
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent)
                    .map_err(io_error(format!("creating `{}`", parent.display())))?;
            }
            fs::write(&file, text).map_err(io_error(format!("writing `{}`", file.display())))?;
            fs::set_permissions(
                &file,
                fs::Permissions::from_mode(cuedag_universe::file_mode(path)),
            )
            .map_err(io_error(format!("writing `{}`", file.display())))?;
        }
        let parent = self.root.join("universe");
        fs::create_dir_all(&parent)
            .map_err(io_error(format!("creating `{}`", parent.display())))?;
        let staged = temp.keep();
        match fs::rename(&staged, &target) {
            Ok(()) => Ok(target),
            Err(_) if target.is_dir() => {
                let _ = fs::remove_dir_all(&staged);
                Ok(target)
            }
            Err(error) => {
                let _ = fs::remove_dir_all(&staged);
                Err(BackendError::io(
                    format!("storing `{}`", target.display()),
                    error,
                ))
            }
        }
    }

    /// Moves the directory `dir` into `layers/<name>`; if that layer exists
    /// already (same content), `dir` is removed instead.
    pub fn commit_layer_as(&self, dir: &Path, name: &str) -> Result<(), BackendError> {
        let target = self.layer_path(name);
        if target.exists() {
            let _ = fs::remove_dir_all(dir);
            return Ok(());
        }
        match fs::rename(dir, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.exists() => {
                let _ = fs::remove_dir_all(dir);
                Ok(())
            }
            Err(error) => Err(BackendError::io(
                format!("storing layer `{}`", target.display()),
                error,
            )),
        }
    }

    /// Names `dir` by its content and moves it into `layers/`. Returns
    /// `None` for an empty directory (nothing to stack).
    pub fn commit_layer(&self, dir: &Path) -> Result<Option<String>, BackendError> {
        let empty = fs::read_dir(dir)
            .map_err(io_error(format!("reading `{}`", dir.display())))?
            .next()
            .is_none();
        if empty {
            let _ = fs::remove_dir_all(dir);
            return Ok(None);
        }
        let name = tree_digest(dir)?;
        self.commit_layer_as(dir, &name)?;
        Ok(Some(name))
    }

    /// Records a snapshot and returns its id.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<String, BackendError> {
        let id = snapshot.key();
        let path = self.root.join("snapshots").join(format!("{id}.json"));
        if !path.exists() {
            let bytes = serde_json::to_vec(snapshot).unwrap_or_default();
            write_atomic(&path, &bytes)?;
        }
        Ok(id)
    }

    /// The snapshot with this id, if recorded and all its layers exist
    /// (extracted or lazy).
    pub fn load_snapshot(&self, id: &str) -> Option<Snapshot> {
        if !is_hex_name(id) {
            return None;
        }
        let path = self.root.join("snapshots").join(format!("{id}.json"));
        let bytes = fs::read(path).ok()?;
        let snapshot: Snapshot = serde_json::from_slice(&bytes).ok()?;
        snapshot
            .layers
            .iter()
            .all(|layer| self.has_layer(layer))
            .then_some(snapshot)
    }

    /// The path of step record `key`.
    pub fn step_path(&self, key: &str) -> PathBuf {
        self.root.join("steps").join(format!("{key}.json"))
    }

    /// Takes the exclusive lock of step `key` (blocking).
    pub fn lock_step(&self, key: &str) -> Result<fs::File, BackendError> {
        let path = self.root.join("locks/steps").join(format!("{key}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(format!("opening lock `{}`", path.display())))?;
        FileExt::lock_exclusive(&file)
            .map_err(io_error(format!("locking `{}`", path.display())))?;
        Ok(file)
    }

    /// Takes a shared lock on the whole store for a session (prune takes it
    /// exclusively).
    pub fn lock_shared(&self) -> Result<fs::File, BackendError> {
        let path = self.root.join("locks/store.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(format!("opening lock `{}`", path.display())))?;
        FileExt::lock_shared(&file).map_err(io_error(format!("locking `{}`", path.display())))?;
        Ok(file)
    }
}

fn is_hex_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Writes `bytes` to `path` through a temp file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(io_error(format!("writing `{}`", path.display())))?;
    temp.write_all(bytes)
        .map_err(io_error(format!("writing `{}`", path.display())))?;
    temp.persist(path)
        .map_err(|error| BackendError::io(format!("writing `{}`", path.display()), error.error))?;
    Ok(())
}

/// Feeds one entry of a tree into a content digest: its relative path,
/// kind, permission bits, owner and contents (never its mtime).
pub(crate) fn hash_entry(
    hasher: &mut Sha256,
    rel: &str,
    full: &Path,
    meta: &fs::Metadata,
    owner: Option<(u32, u32)>,
) -> Result<(), BackendError> {
    let file_type = meta.file_type();
    let (uid, gid) = owner.unwrap_or((meta.uid(), meta.gid()));
    let kind = if file_type.is_dir() {
        if crate::local::tree::is_opaque(full) {
            "dir-opaque".to_string()
        } else {
            "dir".to_string()
        }
    } else if file_type.is_symlink() {
        let target =
            fs::read_link(full).map_err(io_error(format!("reading `{}`", full.display())))?;
        format!("symlink:{}", target.display())
    } else if file_type.is_file() {
        let mut file =
            fs::File::open(full).map_err(io_error(format!("reading `{}`", full.display())))?;
        let mut content = Sha256::new();
        std::io::copy(&mut file, &mut content)
            .map_err(io_error(format!("reading `{}`", full.display())))?;
        format!("file:{}", hex::encode(content.finalize()))
    } else if file_type.is_char_device() || file_type.is_block_device() {
        format!("dev:{}", meta.rdev())
    } else {
        "other".to_string()
    };
    hasher.update(
        format!(
            "{}\0{}\0{:o}\0{}\0{}\n",
            rel,
            kind,
            meta.mode() & 0o7777,
            uid,
            gid
        )
        .as_bytes(),
    );
    Ok(())
}

/// The content digest (hex) of the directory tree at `dir`: paths, kinds,
/// modes, owners and contents of every entry, never mtimes.
pub fn tree_digest(dir: &Path) -> Result<String, BackendError> {
    let mut hasher = Sha256::new();
    hasher.update(b"cuedag-tree-v1\n");
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|error| {
            BackendError::io(format!("walking `{}`", dir.display()), error.into())
        })?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        let meta = entry.metadata().map_err(|error| {
            BackendError::io(
                format!("reading `{}`", entry.path().display()),
                error.into(),
            )
        })?;
        hash_entry(&mut hasher, &rel, entry.path(), &meta, None)?;
    }
    Ok(hex::encode(hasher.finalize()))
}
