//! `cuedag prune`: empties the store, or trims it to a size.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fs4::fs_std::FileExt;

use super::store::io_error;
use crate::BackendError;

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Entries removed (layers, blobs, step records, cache mounts, …).
    pub removed: usize,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Bytes the store still holds.
    pub kept_bytes: u64,
}

/// Parses a size such as `512MB`, `10GB`, `1.5GiB` or `1024` (bytes).
pub fn parse_size(text: &str) -> Result<u64, BackendError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        BackendError::Failed(format!("invalid size `{text}`: expected e.g. `10GB`"))
    })?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(BackendError::Failed(format!(
                "invalid size `{text}`: unknown unit `{other}` (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            )))
        }
    };
    Ok((value * factor) as u64)
}

fn size_of(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| !meta.is_dir())
        .map(|meta| meta.blocks() * 512)
        .sum()
}

fn remove(path: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Removes least recently written entries of the store at `root` until it
/// holds at most `keep_bytes` (0 empties it). Fails when another cuedag
/// run uses the store.
pub fn prune(root: &Path, keep_bytes: u64) -> Result<PruneReport, BackendError> {
    if !root.is_dir() {
        return Ok(PruneReport::default());
    }
    let lock_dir = root.join("locks");
    fs::create_dir_all(&lock_dir).map_err(io_error("creating the store's lock directory"))?;
    let lock_path = lock_dir.join("store.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(format!("opening `{}`", lock_path.display())))?;
    if !FileExt::try_lock_exclusive(&lock).unwrap_or(false) {
        return Err(BackendError::Failed(format!(
            "the store `{}` is in use by a running cuedag; try again when it has finished",
            root.display()
        )));
    }
    let mut report = PruneReport::default();
    // Leftover temporary files go first, whatever the limit.
    for dir in ["tmp", "ingest"] {
        for item in fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            let size = size_of(&item.path());
            if remove(&item.path()).is_ok() {
                report.removed += 1;
                report.freed_bytes += size;
            }
        }
    }
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    for dir in [
        "steps",
        "snapshots",
        "layers",
        "lazy",
        "packed",
        "blobs/sha256",
        "cache-mounts",
        "refs",
        "universe",
    ] {
        for item in fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            let path = item.path();
            let modified = item
                .metadata()
                .and_then(|meta| meta.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            entries.push((modified, size_of(&path), path));
        }
    }
    let mut total: u64 = entries.iter().map(|(_, size, _)| size).sum();
    entries.sort_by_key(|entry| entry.0);
    for (_, size, path) in entries {
        if total <= keep_bytes && keep_bytes > 0 {
            break;
        }
        remove(&path).map_err(io_error(format!("removing `{}`", path.display())))?;
        report.removed += 1;
        report.freed_bytes += size;
        total = total.saturating_sub(size);
    }
    report.kept_bytes = total;
    drop(lock);
    Ok(report)
}
