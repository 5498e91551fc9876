//! `client.filesystem` reads and writes of `dagger.#FS` contents, and
//! `core.#Source`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cuedag_evaluator::plan::TaskValue;
use cuedag_evaluator::Location;
use sha2::{Digest as _, Sha256};

use super::store::{hash_entry, io_error, Snapshot, Store};
use super::tree::{set_mtime, Filter};
use super::{blocking, failed, str_field, string_list, LocalBackend};
use crate::backend::TaskContext;
use crate::builtin::client_path;
use crate::BackendError;

/// `client.filesystem.<path>.read` with `contents: dagger.#FS`.
pub async fn read(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let path = client_path(str_field(inputs, "path")?, &context.session.workdir);
    let output = import_dir(backend, inputs, path).await?;
    Ok(TaskValue::structure([("contents", output)]))
}

/// `core.#Source`: files shipped next to the plan or package. `path` is
/// resolved against the directory of the CUE file that sets it (the
/// request's `origin`, as Dagger did); files of the embedded packages are
/// read from their copy in the store. Without an origin, the session's
/// working directory is used.
pub async fn source(
    backend: &LocalBackend,
    inputs: &TaskValue,
    origin: Option<&Location>,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let raw = str_field(inputs, "path")?;
    check_source_path(raw, origin, &context.session.workdir).map_err(failed)?;
    let base = match origin {
        None => context.session.workdir.clone(),
        Some(location) => match embedded_dir(location) {
            Some(rest) => {
                let store = backend.store().clone();
                blocking(move || store.universe_dir()).await?.join(rest)
            }
            None => host_dir(location, &context.session.workdir),
        },
    };
    let output = import_dir(backend, inputs, base.join(raw)).await?;
    Ok(TaskValue::structure([("output", output)]))
}

/// The directory of an embedded package file (`universe.dagger.io/aws`
/// for `<embedded>/universe.dagger.io/aws/aws.cue`), if it is one.
fn embedded_dir(location: &Location) -> Option<PathBuf> {
    let dir = Path::new(&location.file).parent()?;
    dir.strip_prefix("<embedded>").ok().map(Path::to_path_buf)
}

/// The host directory of the plan file at `location`.
fn host_dir(location: &Location, workdir: &Path) -> PathBuf {
    let dir = Path::new(&location.file)
        .parent()
        .unwrap_or(Path::new(""))
        .to_string_lossy()
        .into_owned();
    client_path(&dir, workdir)
}

/// Checks a `core.#Source` path before anything runs, as Dagger's pre-run
/// hook did: it must stay inside the directory of the CUE file that sets
/// it (`origin`; the working directory without one) and exist there (for
/// the embedded packages: among the files the binary ships). The error
/// names the declaring `file:line:col`.
pub fn check_source_path(
    raw: &str,
    origin: Option<&Location>,
    workdir: &Path,
) -> Result<(), String> {
    let mut depth = 0i32;
    let mut escapes = raw.starts_with('/');
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                escapes |= depth < 0;
                parts.pop();
            }
            other => {
                depth += 1;
                parts.push(other);
            }
        }
    }
    let at = match origin {
        Some(location) => format!(
            " (relative to the directory of {}:{}:{})",
            location.file, location.line, location.col
        ),
        None => String::new(),
    };
    if escapes {
        return Err(format!("path \"{raw}\" is not relative{at}"));
    }
    let exists = match origin {
        None => workdir.join(raw).exists(),
        Some(location) => match embedded_dir(location) {
            Some(dir) => {
                let mut prefix = dir.to_string_lossy().into_owned();
                for part in &parts {
                    prefix.push('/');
                    prefix.push_str(part);
                }
                cuedag_universe::files()
                    .any(|(path, _)| path == prefix || path.starts_with(&format!("{prefix}/")))
            }
            None => host_dir(location, workdir).join(raw).exists(),
        },
    };
    if exists {
        Ok(())
    } else {
        Err(format!("path \"{raw}\" does not exist{at}"))
    }
}

async fn import_dir(
    backend: &LocalBackend,
    inputs: &TaskValue,
    path: PathBuf,
) -> Result<TaskValue, BackendError> {
    let filter = Filter::new(
        &string_list(inputs, "include")?,
        &string_list(inputs, "exclude")?,
    )?;
    let store = backend.store().clone();
    let name = blocking(move || import_host_dir(&store, &path, &filter)).await?;
    backend.fs_value(Snapshot::default().with_layer(name))
}

/// Imports the host directory `root` (filtered) as one layer named by the
/// digest of the kept entries' paths, modes and contents (owner taken as
/// root, mtimes ignored). Returns `None` when nothing is kept.
pub fn import_host_dir(
    store: &Store,
    root: &Path,
    filter: &Filter,
) -> Result<Option<String>, BackendError> {
    let shown = root.display().to_string();
    match fs::metadata(root) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(failed(format!("path \"{shown}\" does not exist")))
        }
        Err(error) => return Err(BackendError::io(format!("reading \"{shown}\""), error)),
        Ok(meta) if !meta.is_dir() => {
            return Err(failed(format!("path \"{shown}\" is not a directory")))
        }
        Ok(_) => {}
    }
    let mut kept: BTreeMap<String, (PathBuf, fs::Metadata)> = BTreeMap::new();
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            if !entry.file_type().is_dir() {
                return true;
            }
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            filter.may_descend(&rel.to_string_lossy())
        });
    for entry in walker {
        let entry = entry
            .map_err(|error| BackendError::io(format!("reading \"{shown}\""), error.into()))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        let file_type = entry.file_type();
        let supported = file_type.is_dir() || file_type.is_file() || file_type.is_symlink();
        if !supported || !filter.keeps(&rel) {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|error| BackendError::io(format!("reading \"{rel}\""), error.into()))?;
        // Parent directories of a kept entry are kept too.
        let mut parent = Path::new(&rel).parent();
        while let Some(dir) = parent.filter(|dir| !dir.as_os_str().is_empty()) {
            let dir_rel = dir.to_string_lossy().into_owned();
            if kept.contains_key(&dir_rel) {
                break;
            }
            let full = root.join(dir);
            let dir_meta = fs::symlink_metadata(&full)
                .map_err(io_error(format!("reading \"{}\"", full.display())))?;
            kept.insert(dir_rel, (full, dir_meta));
            parent = dir.parent();
        }
        kept.insert(rel, (entry.path().to_path_buf(), meta));
    }
    if kept.is_empty() {
        return Ok(None);
    }
    let mut hasher = Sha256::new();
    hasher.update(b"cuedag-client-v1\n");
    for (rel, (full, meta)) in &kept {
        hash_entry(&mut hasher, rel, full, meta, Some((0, 0)))?;
    }
    let name = hex::encode(hasher.finalize());
    if store.layer_path(&name).is_dir() {
        return Ok(Some(name));
    }
    let temp = store.temp_dir("import-")?;
    let layer = temp.path().join("layer");
    fs::create_dir(&layer).map_err(io_error("creating an import layer"))?;
    let mut dirs: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    for (rel, (full, meta)) in &kept {
        let dest = layer.join(rel);
        let file_type = meta.file_type();
        if file_type.is_dir() {
            fs::create_dir_all(&dest)
                .map_err(io_error(format!("creating `{}`", dest.display())))?;
            dirs.push((dest, meta.clone()));
        } else if file_type.is_symlink() {
            let target = fs::read_link(full).map_err(io_error(format!("reading `{rel}`")))?;
            std::os::unix::fs::symlink(target, &dest)
                .map_err(io_error(format!("creating `{}`", dest.display())))?;
            let _ = std::os::unix::fs::lchown(&dest, Some(0), Some(0));
        } else {
            fs::copy(full, &dest).map_err(io_error(format!("copying \"{rel}\"")))?;
            std::os::unix::fs::lchown(&dest, Some(0), Some(0))
                .map_err(io_error(format!("chown `{}`", dest.display())))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_error(format!("chmod `{}`", dest.display())))?;
            set_mtime(&dest, meta);
        }
    }
    for (dest, meta) in dirs.iter().rev() {
        let _ = std::os::unix::fs::lchown(dest, Some(0), Some(0));
        let _ = fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode() & 0o7777));
        set_mtime(dest, meta);
    }
    store.commit_layer_as(&layer, &name)?;
    Ok(Some(name))
}

/// `client.filesystem.<path>.write` of a `dagger.#FS`: the tree is
/// flattened into a temp directory next to the destination, entries of the
/// existing destination that the tree lacks are linked in, and the result
/// is swapped with the destination in one atomic rename.
pub async fn write(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let dest = client_path(str_field(inputs, "path")?, &context.session.workdir);
    let layers = backend
        .store()
        .layer_paths(&backend.fs_field(inputs, "contents")?);
    blocking(move || write_tree(&layers, &dest)).await?;
    Ok(TaskValue::empty_struct())
}

/// Writes the merged `layers` to the directory `dest` atomically (see
/// [`write`]).
pub fn write_tree(layers: &[PathBuf], dest: &Path) -> Result<(), BackendError> {
    let shown = dest.display().to_string();
    let parent = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    fs::create_dir_all(&parent).map_err(io_error(format!("creating \"{}\"", parent.display())))?;
    let existing = fs::symlink_metadata(dest).ok();
    if existing.as_ref().is_some_and(|meta| !meta.is_dir()) {
        return Err(failed(format!("path \"{shown}\" is not a directory")));
    }
    let temp = tempfile::Builder::new()
        .prefix(".cuedag-write-")
        .tempdir_in(&parent)
        .map_err(io_error(format!("writing \"{shown}\"")))?;
    let tree = temp.path().join("tree");
    cuedag_oci::flatten(layers, &tree).map_err(|error| failed(error.to_string()))?;
    if existing.is_none() {
        fs::rename(&tree, dest).map_err(io_error(format!("writing \"{shown}\"")))?;
        return Ok(());
    }
    keep_existing(dest, &tree)?;
    if let Ok(meta) = fs::metadata(dest) {
        let _ = fs::set_permissions(&tree, meta.permissions());
    }
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &tree,
        rustix::fs::CWD,
        dest,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|error| BackendError::io(format!("writing \"{shown}\""), error.into()))?;
    // `tree` now holds the previous contents; the temp dir removes them.
    drop(temp);
    Ok(())
}

/// Links the entries of `old` that `new` lacks into `new` (recursively into
/// directories both have).
fn keep_existing(old: &Path, new: &Path) -> Result<(), BackendError> {
    let read = fs::read_dir(old).map_err(io_error(format!("reading \"{}\"", old.display())))?;
    for item in read.flatten() {
        let from = item.path();
        let to = new.join(item.file_name());
        let Ok(meta) = fs::symlink_metadata(&from) else {
            continue;
        };
        match fs::symlink_metadata(&to) {
            Ok(new_meta) => {
                if meta.is_dir() && new_meta.is_dir() {
                    keep_existing(&from, &to)?;
                }
            }
            Err(_) => {
                if meta.is_dir() {
                    fs::create_dir(&to)
                        .map_err(io_error(format!("creating `{}`", to.display())))?;
                    keep_existing(&from, &to)?;
                    let _ = fs::set_permissions(&to, meta.permissions());
                    let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
                    set_mtime(&to, &meta);
                } else if meta.file_type().is_symlink() {
                    let target = fs::read_link(&from)
                        .map_err(io_error(format!("reading `{}`", from.display())))?;
                    std::os::unix::fs::symlink(target, &to)
                        .map_err(io_error(format!("creating `{}`", to.display())))?;
                } else if fs::hard_link(&from, &to).is_err() {
                    fs::copy(&from, &to)
                        .map_err(io_error(format!("copying `{}`", from.display())))?;
                }
            }
        }
    }
    Ok(())
}
