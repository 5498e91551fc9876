//! Layers as overlayfs-format directories.
//!
//! [`extract_layer`] unpacks a (gzip or uncompressed) tar layer into a fresh
//! directory that overlayfs can stack as a lower layer: OCI whiteouts
//! `.wh.NAME` become character devices 0/0 named `NAME`, and
//! `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` xattr on its
//! directory. [`pack_layer`] is the reverse and is deterministic.
//! [`flatten`] applies a stack of such directories onto one plain directory.
//!
//! These functions block; the `*_async` variants run them on tokio's
//! blocking pool.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

use crate::client::run_blocking;
use crate::digest::{Digest, HashingWriter};
use crate::error::{OciError, Result};
use crate::media::{self, Compression};
use crate::store::BlobStore;

/// The xattr overlayfs reads to make a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Counts of what an extraction wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries written (files, directories, links, devices).
    pub entries: u64,
    /// Whiteouts turned into 0/0 character devices.
    pub whiteouts: u64,
    /// Directories marked opaque.
    pub opaque_dirs: u64,
}

/// A layer packed by [`pack_layer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedLayer {
    /// Digest of the blob as written (compressed when compression is on).
    pub digest: Digest,
    /// Digest of the uncompressed tar (the config's `diff_id`).
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// `application/vnd.oci.image.layer.v1.tar+gzip` or `…v1.tar`.
    pub media_type: String,
}

impl PackedLayer {
    /// As a [`crate::LayerInfo`] for manifests.
    pub fn info(&self) -> crate::LayerInfo {
        crate::LayerInfo {
            digest: self.digest.clone(),
            diff_id: Some(self.diff_id.clone()),
            media_type: self.media_type.clone(),
            size: self.size,
        }
    }
}

// ---------------------------------------------------------------------------
// Extraction.

/// Extracts a tar layer (gzip or uncompressed, detected from its first
/// bytes) into `dest`, which is created if missing and should be empty.
///
/// Entries whose path is absolute or contains `..`, or that would be written
/// through a symlink, are rejected with [`OciError::LayerEntry`]; so are hard
/// links pointing outside the layer. Overlay xattrs (`trusted.overlay.*`)
/// inside the archive are ignored.
pub fn extract_layer(reader: impl Read, dest: &Path) -> Result<ExtractStats> {
    fs::create_dir_all(dest).map_err(|e| OciError::io("creating", dest, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let head = reader
        .fill_buf()
        .map_err(|e| OciError::io("reading layer for", dest, e))?;
    match media::detect_compression(head) {
        Compression::Gzip => {
            let mut decoder = flate2::bufread::GzDecoder::new(reader);
            let stats = extract_tar(&mut decoder, dest)?;
            drain(&mut decoder, dest)?;
            drain(decoder.get_mut(), dest)?;
            Ok(stats)
        }
        Compression::None => {
            let stats = extract_tar(&mut reader, dest)?;
            drain(&mut reader, dest)?;
            Ok(stats)
        }
        Compression::Zstd => {
            let mut decoder = ZstdFrames::new(reader);
            let stats = extract_tar(&mut decoder, dest)?;
            drain(&mut decoder, dest)?;
            Ok(stats)
        }
    }
}

/// A reader decoding a stream of zstd frames (skippable frames are
/// skipped), as zstd layers may hold several.
struct ZstdFrames<R> {
    source: R,
    frame: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames {
            source,
            frame: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_frame {
                while self.frame.can_collect() == 0 && !self.frame.is_finished() {
                    self.frame
                        .decode_blocks(
                            &mut self.source,
                            ruzstd::decoding::BlockDecodingStrategy::UptoBlocks(1),
                        )
                        .map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                        })?;
                }
                let n = self.frame.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if self.frame.is_finished() {
                    self.in_frame = false;
                }
                continue;
            }
            if self.source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                }
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("zstd: {e}"),
                    ))
                }
            }
        }
    }
}

/// Extracts the layer blob `digest` from `store` into `dest`, verifying the
/// blob while reading. On any failure `dest` is removed; a corrupt blob is
/// also removed from the store, so the next pull fetches it again.
pub fn extract_blob(store: &BlobStore, digest: &Digest, dest: &Path) -> Result<ExtractStats> {
    let reader = store.open_verified(digest)?;
    match extract_layer(reader, dest) {
        Ok(stats) => Ok(stats),
        Err(error) => {
            let _ = fs::remove_dir_all(dest);
            // A corrupt blob may fail as a bad archive before its end is
            // reached: hash it to tell (this also removes it when corrupt).
            if !store.verify(digest).unwrap_or(false) {
                return Err(OciError::DigestMismatch {
                    what: format!(
                        "stored layer `{}` (extraction failed: {error})",
                        store.blob_path(digest).display()
                    ),
                    expected: digest.to_string(),
                    actual: "a different digest".into(),
                });
            }
            Err(error)
        }
    }
}

/// Extracts the layer blob `digest` into `dest` unless `dest` already
/// exists, atomically: the layer is unpacked into a temporary sibling
/// directory and renamed into place, so concurrent processes sharing a
/// snapshot directory never see a partial layer. Returns whether this call
/// created `dest` (`false`: it was already there, or another process won).
pub fn ensure_extracted(store: &BlobStore, digest: &Digest, dest: &Path) -> Result<bool> {
    if dest.is_dir() {
        return Ok(false);
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| OciError::io("creating", parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(parent)
        .map_err(|e| OciError::io("creating a temp dir in", parent, e))?;
    let staging = tmp.path().join("layer");
    extract_blob(store, digest, &staging)?;
    match fs::rename(&staging, dest) {
        Ok(()) => Ok(true),
        Err(_) if dest.is_dir() => Ok(false),
        Err(e) => Err(OciError::io("renaming into", dest, e)),
    }
}

/// [`ensure_extracted`] on the blocking pool.
pub async fn ensure_extracted_async(
    store: BlobStore,
    digest: Digest,
    dest: PathBuf,
) -> Result<bool> {
    run_blocking(move || ensure_extracted(&store, &digest, &dest)).await
}

/// [`extract_blob`] on the blocking pool.
pub async fn extract_blob_async(
    store: BlobStore,
    digest: Digest,
    dest: PathBuf,
) -> Result<ExtractStats> {
    run_blocking(move || extract_blob(&store, &digest, &dest)).await
}

fn drain(reader: &mut impl Read, dest: &Path) -> Result<()> {
    io::copy(reader, &mut io::sink()).map_err(|e| OciError::io("reading layer for", dest, e))?;
    Ok(())
}

struct DirFix {
    path: PathBuf,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

fn extract_tar(reader: &mut dyn Read, dest: &Path) -> Result<ExtractStats> {
    let mut archive = tar::Archive::new(reader);
    let mut stats = ExtractStats::default();
    let mut known_dirs: HashSet<PathBuf> = HashSet::new();
    let mut dir_fixes: Vec<DirFix> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| OciError::io("reading layer for", dest, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| OciError::io("reading layer for", dest, e))?;
        let raw_path = entry
            .path()
            .map_err(|e| OciError::io("reading layer for", dest, e))?
            .into_owned();
        let rel = sanitize(&raw_path)?;
        let header = entry.header().clone();
        let entry_type = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0);
        let shown = raw_path.display().to_string();

        // AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`) is not content.
        if rel.components().any(|c| {
            let bytes = c.as_os_str().as_bytes();
            bytes.starts_with(b".wh..wh.") && bytes != OPAQUE_MARKER.as_bytes()
        }) {
            continue;
        }
        if rel.as_os_str().is_empty() {
            if entry_type.is_dir() {
                dir_fixes.push(DirFix {
                    path: dest.to_owned(),
                    mode,
                    uid,
                    gid,
                    mtime,
                });
            }
            continue;
        }
        let name = rel.file_name().map(OsStr::to_owned).unwrap_or_default();
        let parent_rel = rel.parent().map(Path::to_owned).unwrap_or_default();
        ensure_dirs(dest, &parent_rel, &mut known_dirs, &shown)?;
        let parent = dest.join(&parent_rel);

        let name_bytes = name.as_bytes();
        if name_bytes == OPAQUE_MARKER.as_bytes() {
            lsetxattr(&parent, OPAQUE_XATTR, b"y")
                .map_err(|e| OciError::io("marking opaque", &parent, e))?;
            stats.opaque_dirs += 1;
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(OciError::entry(&shown, "whiteout without a valid name"));
            }
            let target = parent.join(OsStr::from_bytes(hidden));
            remove_existing(&target, &mut known_dirs)?;
            mknod(&target, FileType::CharacterDevice, 0, 0, 0)
                .map_err(|e| OciError::io("creating whiteout", &target, e))?;
            stats.whiteouts += 1;
            continue;
        }

        let target = dest.join(&rel);
        let xattrs = pax_xattrs(&mut entry)?;
        match entry_type {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_existing(&target, &mut known_dirs)?;
                        fs::create_dir(&target)
                            .map_err(|e| OciError::io("creating", &target, e))?;
                    }
                    Err(_) => {
                        fs::create_dir(&target).map_err(|e| OciError::io("creating", &target, e))?
                    }
                }
                known_dirs.insert(rel.clone());
                set_xattrs(&target, &xattrs);
                dir_fixes.push(DirFix {
                    path: target,
                    mode,
                    uid,
                    gid,
                    mtime,
                });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_existing(&target, &mut known_dirs)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| OciError::io("creating", &target, e))?;
                io::copy(&mut entry, &mut file).map_err(|e| OciError::io("writing", &target, e))?;
                drop(file);
                set_owner(&target, uid, gid)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(|e| OciError::io("setting mode of", &target, e))?;
                set_xattrs(&target, &xattrs);
                set_mtime(&target, mtime)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| OciError::io("reading layer for", dest, e))?
                    .ok_or_else(|| OciError::entry(&shown, "symlink without a target"))?
                    .into_owned();
                remove_existing(&target, &mut known_dirs)?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| OciError::io("creating symlink", &target, e))?;
                set_owner(&target, uid, gid)?;
                set_xattrs(&target, &xattrs);
                set_mtime(&target, mtime)?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| OciError::io("reading layer for", dest, e))?
                    .ok_or_else(|| OciError::entry(&shown, "hard link without a target"))?
                    .into_owned();
                let link_rel = sanitize(&link).map_err(|_| {
                    OciError::entry(
                        &shown,
                        format!("hard link target `{}` escapes the layer", link.display()),
                    )
                })?;
                check_no_symlinks(dest, link_rel.parent().unwrap_or(Path::new("")), &shown)?;
                let source = dest.join(&link_rel);
                match fs::symlink_metadata(&source) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(OciError::entry(
                            &shown,
                            format!(
                                "hard link target `{}` is not a file of this layer",
                                link.display()
                            ),
                        ))
                    }
                }
                if source == target {
                    continue;
                }
                remove_existing(&target, &mut known_dirs)?;
                fs::hard_link(&source, &target)
                    .map_err(|e| OciError::io("creating hard link", &target, e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match entry_type {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                remove_existing(&target, &mut known_dirs)?;
                if kind == FileType::CharacterDevice && major == 0 && minor == 0 {
                    // A 0/0 device in a layer would read as a whiteout.
                    return Err(OciError::entry(
                        &shown,
                        "character device 0/0 is reserved for whiteouts",
                    ));
                }
                if let Err(e) = mknod(&target, kind, mode, major, minor) {
                    tracing::warn!(path = %shown, error = %e, "device node skipped");
                    continue;
                }
                set_owner(&target, uid, gid)?;
                set_mtime(&target, mtime)?;
            }
            other => {
                tracing::debug!(path = %shown, kind = ?other, "layer entry type skipped");
                continue;
            }
        }
        stats.entries += 1;
    }
    // Directory modes and times last, deepest first, so writing children
    // neither fails on read-only directories nor bumps their mtimes.
    for fix in dir_fixes.iter().rev() {
        set_owner(&fix.path, fix.uid, fix.gid)?;
        fs::set_permissions(&fix.path, fs::Permissions::from_mode(fix.mode))
            .map_err(|e| OciError::io("setting mode of", &fix.path, e))?;
        set_mtime(&fix.path, fix.mtime)?;
    }
    Ok(stats)
}

/// Keeps only normal components; rejects `..` and absolute paths.
fn sanitize(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(OciError::entry(
                    path.display(),
                    "path escapes the layer root (`..`)",
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(OciError::entry(
                    path.display(),
                    "absolute paths are not allowed in a layer",
                ))
            }
        }
    }
    Ok(out)
}

/// Creates the directories of `rel` under `root` as needed, refusing to go
/// through symlinks or non-directories.
fn ensure_dirs(root: &Path, rel: &Path, known: &mut HashSet<PathBuf>, shown: &str) -> Result<()> {
    let mut current = PathBuf::new();
    for component in rel.components() {
        current.push(component);
        if known.contains(&current) {
            continue;
        }
        let full = root.join(&current);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(OciError::entry(
                    shown,
                    format!("refusing to write through symlink `{}`", current.display()),
                ))
            }
            Ok(_) => {
                return Err(OciError::entry(
                    shown,
                    format!("parent `{}` is not a directory", current.display()),
                ))
            }
            Err(_) => fs::create_dir(&full).map_err(|e| OciError::io("creating", &full, e))?,
        }
        known.insert(current.clone());
    }
    Ok(())
}

fn check_no_symlinks(root: &Path, rel: &Path, shown: &str) -> Result<()> {
    let mut current = PathBuf::new();
    for component in rel.components() {
        current.push(component);
        match fs::symlink_metadata(root.join(&current)) {
            Ok(m) if m.is_dir() => {}
            _ => {
                return Err(OciError::entry(
                    shown,
                    format!(
                        "hard link goes through `{}`, which is not a directory",
                        current.display()
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn remove_existing(path: &Path, known: &mut HashSet<PathBuf>) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(path).map_err(|e| OciError::io("removing", path, e))?;
            known.clear();
        }
        Ok(_) => fs::remove_file(path).map_err(|e| OciError::io("removing", path, e))?,
        Err(_) => {}
    }
    Ok(())
}

fn pax_xattrs(entry: &mut tar::Entry<'_, &mut dyn Read>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Ok(out);
    };
    for ext in extensions.flatten() {
        let Ok(key) = ext.key() else { continue };
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            if name.starts_with("trusted.overlay.") {
                continue;
            }
            out.push((name.to_owned(), ext.value_bytes().to_vec()));
        }
    }
    Ok(out)
}

fn set_xattrs(path: &Path, xattrs: &[(String, Vec<u8>)]) {
    for (name, value) in xattrs {
        if let Err(e) = lsetxattr(path, name, value) {
            tracing::warn!(path = %path.display(), xattr = %name, error = %e, "xattr not set");
        }
    }
}

fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()).map_err(io::Error::from)
}

fn mknod(path: &Path, kind: FileType, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    rustix::fs::mknodat(
        CWD,
        path,
        kind,
        Mode::from_bits_truncate(mode),
        rustix::fs::makedev(major, minor),
    )
    .map_err(io::Error::from)
}

fn set_owner(path: &Path, uid: u32, gid: u32) -> Result<()> {
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
        Ok(()) => Ok(()),
        // Not root: keep our own ownership.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(OciError::io("changing owner of", path, e)),
    }
}

fn set_mtime(path: &Path, mtime: u64) -> Result<()> {
    let time = Timespec {
        tv_sec: mtime.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| OciError::io("setting mtime of", path, io::Error::from(e)))
}

/// The xattrs of `path` (not following symlinks), sorted by name, without
/// overlayfs' own.
fn list_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(size) = rustix::fs::llistxattr_query(path) else {
        return Vec::new();
    };
    if size == 0 {
        return Vec::new();
    }
    let mut names = vec![0u8; size];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(value) = get_xattr(path, name) {
            out.push((name.to_owned(), value));
        }
    }
    out.sort();
    out
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let size = rustix::fs::lgetxattr_query(path, name).ok()?;
    let mut value = vec![0u8; size];
    if size == 0 {
        return Some(value);
    }
    let n = rustix::fs::lgetxattr(path, name, &mut value[..]).ok()?;
    value.truncate(n);
    Some(value)
}

/// Whether `path` is a directory marked opaque for overlayfs.
pub fn is_opaque(path: &Path) -> bool {
    get_xattr(path, OPAQUE_XATTR).is_some_and(|v| v == b"y")
}

/// Whether `metadata` is an overlayfs whiteout (character device 0/0).
pub fn is_whiteout(metadata: &fs::Metadata) -> bool {
    metadata.file_type().is_char_device() && metadata.rdev() == 0
}

// ---------------------------------------------------------------------------
// Packing.

/// Packs the overlay-format directory `dir` into a tar layer written to
/// `out` (gzip-compressed when `gzip`), deterministically: entries sorted by
/// name, whiteout devices become `.wh.NAME` entries, opaque directories get a
/// `.wh..wh..opq` entry, hard links within the directory are kept, modes,
/// owners, xattrs and mtimes are taken as found.
pub fn pack_layer<W: Write>(dir: &Path, out: W, gzip: bool) -> Result<(PackedLayer, W)> {
    let blob = HashingWriter::new(out);
    if gzip {
        let encoder = flate2::write::GzEncoder::new(blob, flate2::Compression::fast());
        let (diff_id, encoder) = write_tar(dir, encoder)?;
        let blob = encoder
            .finish()
            .map_err(|e| OciError::io("compressing layer of", dir, e))?;
        let (out, digest, size) = blob.finish();
        Ok((
            PackedLayer {
                digest,
                diff_id,
                size,
                media_type: media::OCI_LAYER_GZIP.to_owned(),
            },
            out,
        ))
    } else {
        let (diff_id, blob) = write_tar(dir, blob)?;
        let (out, digest, size) = blob.finish();
        Ok((
            PackedLayer {
                digest,
                diff_id,
                size,
                media_type: media::OCI_LAYER.to_owned(),
            },
            out,
        ))
    }
}

/// Packs `dir` (see [`pack_layer`]) straight into `store`.
pub fn pack_to_store(store: &BlobStore, dir: &Path, gzip: bool) -> Result<PackedLayer> {
    let writer = store.writer()?;
    let (packed, writer) = pack_layer(dir, writer, gzip)?;
    writer.commit(Some(&packed.digest))?;
    Ok(packed)
}

/// [`pack_to_store`] on the blocking pool.
pub async fn pack_to_store_async(
    store: BlobStore,
    dir: PathBuf,
    gzip: bool,
) -> Result<PackedLayer> {
    run_blocking(move || pack_to_store(&store, &dir, gzip)).await
}

fn write_tar<W: Write>(dir: &Path, out: W) -> Result<(Digest, W)> {
    let io_err = |e: io::Error| OciError::io("packing", dir, e);
    let mut builder = tar::Builder::new(HashingWriter::new(out));
    let mut first_links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for item in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let item = item.map_err(|e| OciError::io("walking", dir, e.into()))?;
        let path = item.path();
        let rel = path
            .strip_prefix(dir)
            .map_err(|_| OciError::entry(path.display(), "outside the packed directory"))?
            .to_owned();
        let meta = fs::symlink_metadata(path).map_err(|e| OciError::io("reading", path, e))?;
        let file_type = meta.file_type();
        if is_whiteout(&meta) {
            let mut name = OsString::from(WHITEOUT_PREFIX);
            name.push(rel.file_name().unwrap_or_default());
            let wh_path = rel.with_file_name(name);
            let mut header = base_header(&meta, tar::EntryType::Regular);
            header.set_size(0);
            builder
                .append_data(&mut header, &wh_path, io::empty())
                .map_err(io_err)?;
            continue;
        }
        let xattrs = list_xattrs(path);
        if !xattrs.is_empty() {
            append_pax_xattrs(&mut builder, &rel, &xattrs).map_err(io_err)?;
        }
        if file_type.is_dir() {
            let mut header = base_header(&meta, tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(io_err)?;
            if is_opaque(path) {
                let mut marker = base_header(&meta, tar::EntryType::Regular);
                marker.set_mode(0o644);
                marker.set_size(0);
                builder
                    .append_data(&mut marker, rel.join(OPAQUE_MARKER), io::empty())
                    .map_err(io_err)?;
            }
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(|e| OciError::io("reading link", path, e))?;
            let mut header = base_header(&meta, tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(io_err)?;
        } else if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = first_links.get(&key) {
                    let mut header = base_header(&meta, tar::EntryType::Link);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, &rel, first)
                        .map_err(io_err)?;
                    continue;
                }
                first_links.insert(key, rel.clone());
            }
            let mut header = base_header(&meta, tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(path).map_err(|e| OciError::io("opening", path, e))?;
            builder
                .append_data(&mut header, &rel, file.take(meta.len()))
                .map_err(io_err)?;
        } else if file_type.is_char_device() || file_type.is_block_device() || file_type.is_fifo() {
            let kind = if file_type.is_char_device() {
                tar::EntryType::Char
            } else if file_type.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            let mut header = base_header(&meta, kind);
            header.set_size(0);
            let rdev = meta.rdev();
            header
                .set_device_major(rustix::fs::major(rdev))
                .map_err(io_err)?;
            header
                .set_device_minor(rustix::fs::minor(rdev))
                .map_err(io_err)?;
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(io_err)?;
        } else {
            tracing::debug!(path = %path.display(), "socket skipped while packing");
        }
    }
    let hashing = builder.into_inner().map_err(io_err)?;
    let (out, diff_id, _) = hashing.finish();
    Ok((diff_id, out))
}

fn base_header(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_mtime(meta.mtime().max(0) as u64);
    header
}

/// Writes a PAX extended header carrying `SCHILY.xattr.*` records for the
/// next entry.
fn append_pax_xattrs<W: Write>(
    builder: &mut tar::Builder<W>,
    rel: &Path,
    xattrs: &[(String, Vec<u8>)],
) -> io::Result<()> {
    let mut data = Vec::new();
    for (name, value) in xattrs {
        let key = format!("SCHILY.xattr.{name}");
        // "<len> <key>=<value>\n", where len counts itself.
        let rest = 1 + key.len() + 1 + value.len() + 1;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len = len.to_string().len() + rest;
        }
        data.extend_from_slice(len.to_string().as_bytes());
        data.push(b' ');
        data.extend_from_slice(key.as_bytes());
        data.push(b'=');
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let short: String = format!("PaxHeaders/{name}").chars().take(99).collect();
    header.set_path(&short)?;
    header.set_cksum();
    builder.append(&header, data.as_slice())
}

// ---------------------------------------------------------------------------
// Flattening.

/// Applies overlay-format layer directories (bottom first) onto `dest`,
/// which is created if missing: files are copied, whiteouts delete, opaque
/// directories hide what lower layers had. The result is a plain directory
/// with no whiteouts or overlay xattrs.
pub fn flatten(layers: &[PathBuf], dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| OciError::io("creating", dest, e))?;
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    for layer in layers {
        let mut first_links: HashMap<(u64, u64), PathBuf> = HashMap::new();
        for item in walkdir::WalkDir::new(layer)
            .min_depth(1)
            .sort_by_file_name()
        {
            let item = item.map_err(|e| OciError::io("walking", layer, e.into()))?;
            let path = item.path();
            let rel = path
                .strip_prefix(layer)
                .map_err(|_| OciError::entry(path.display(), "outside the layer"))?;
            let target = dest.join(rel);
            let meta = fs::symlink_metadata(path).map_err(|e| OciError::io("reading", path, e))?;
            let existing = fs::symlink_metadata(&target).ok();
            if is_whiteout(&meta) {
                remove_path(&target, existing.as_ref())?;
                continue;
            }
            let file_type = meta.file_type();
            if file_type.is_dir() {
                match &existing {
                    Some(m) if m.is_dir() => {
                        if is_opaque(path) {
                            for child in fs::read_dir(&target)
                                .map_err(|e| OciError::io("listing", &target, e))?
                            {
                                let child = child
                                    .map_err(|e| OciError::io("listing", &target, e))?
                                    .path();
                                let m = fs::symlink_metadata(&child).ok();
                                remove_path(&child, m.as_ref())?;
                            }
                        }
                    }
                    other => {
                        remove_path(&target, other.as_ref())?;
                        fs::create_dir(&target)
                            .map_err(|e| OciError::io("creating", &target, e))?;
                    }
                }
                set_owner(&target, meta.uid(), meta.gid())?;
                fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode() & 0o7777))
                    .map_err(|e| OciError::io("setting mode of", &target, e))?;
                set_xattrs(&target, &list_xattrs(path));
                dir_times.push((target, meta.mtime().max(0) as u64));
                continue;
            }
            remove_path(&target, existing.as_ref())?;
            if file_type.is_symlink() {
                let link =
                    fs::read_link(path).map_err(|e| OciError::io("reading link", path, e))?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| OciError::io("creating symlink", &target, e))?;
            } else if file_type.is_file() {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = first_links.get(&key).filter(|_| meta.nlink() > 1) {
                    fs::hard_link(first, &target)
                        .map_err(|e| OciError::io("creating hard link", &target, e))?;
                    continue;
                }
                fs::copy(path, &target).map_err(|e| OciError::io("copying into", &target, e))?;
                if meta.nlink() > 1 {
                    first_links.insert(key, target.clone());
                }
            } else if file_type.is_char_device()
                || file_type.is_block_device()
                || file_type.is_fifo()
            {
                let kind = if file_type.is_char_device() {
                    FileType::CharacterDevice
                } else if file_type.is_block_device() {
                    FileType::BlockDevice
                } else {
                    FileType::Fifo
                };
                let rdev = meta.rdev();
                if let Err(e) = mknod(
                    &target,
                    kind,
                    meta.mode() & 0o7777,
                    rustix::fs::major(rdev),
                    rustix::fs::minor(rdev),
                ) {
                    tracing::warn!(path = %target.display(), error = %e, "device node skipped");
                    continue;
                }
            } else {
                continue;
            }
            set_owner(&target, meta.uid(), meta.gid())?;
            if !file_type.is_symlink() {
                fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode() & 0o7777))
                    .map_err(|e| OciError::io("setting mode of", &target, e))?;
            }
            set_xattrs(&target, &list_xattrs(path));
            set_mtime(&target, meta.mtime().max(0) as u64)?;
        }
    }
    for (dir, mtime) in dir_times.iter().rev() {
        if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            set_mtime(dir, *mtime)?;
        }
    }
    Ok(())
}

/// [`flatten`] on the blocking pool.
pub async fn flatten_async(layers: Vec<PathBuf>, dest: PathBuf) -> Result<()> {
    run_blocking(move || flatten(&layers, &dest)).await
}

fn remove_path(path: &Path, meta: Option<&fs::Metadata>) -> Result<()> {
    match meta {
        Some(m) if m.is_dir() => {
            fs::remove_dir_all(path).map_err(|e| OciError::io("removing", path, e))
        }
        Some(_) => fs::remove_file(path).map_err(|e| OciError::io("removing", path, e)),
        None => Ok(()),
    }
}
