//! `type=local`: an OCI image layout directory holding many cache exports.
//!
//! ```text
//! DIR/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! DIR/index.json          one entry per export, annotated
//!                         org.opencontainers.image.ref.name = <tag>
//! DIR/blobs/sha256/<hex>  layer blobs, cache configs, manifests (once each)
//! DIR/ingest/             partial writes (temp files, renamed when verified)
//! DIR/index.json.lock     lock taken while index.json is rewritten
//! ```
//!
//! Export writes only the blobs the directory lacks (temp file in `ingest/`,
//! digest verified, fsynced, renamed), then, under the lock, replaces
//! `index.json` atomically (temp file, fsync, rename): the entry with the
//! same tag is replaced, others are kept, the new entry goes last (entries
//! are in order of last export, which prune uses). When the newest entry
//! already is this tag with this manifest (an unchanged rebuild), nothing
//! at all is written. A crash at any moment leaves the previous
//! `index.json` and only stray files in `ingest/`.
//!
//! Import reads `index.json` and the selected manifests and configs only;
//! layer blobs are read when a step hits, verified by digest. A missing or
//! corrupt blob is a miss with a warning (a corrupt blob is also removed so
//! that the next export writes it again), never an error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fs4::fs_std::FileExt;

use crate::digest::{Digest, Hasher};
use crate::format::{
    self, BlobSource, CacheConfig, CacheExport, CacheIndex, Descriptor, ImageIndex,
    LayerDescriptor, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
};
use crate::spec::{is_valid_tag, FormatOptions};
use crate::time::rfc3339;
use crate::{Error, ExportReport};

/// Annotation naming an `index.json` entry (the tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation with the time of the entry's last export.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

const INDEX_TEMP_PREFIX: &str = ".index.json.";
const LAYOUT_TEMP_PREFIX: &str = ".oci-layout.";
/// Ingest files older than this are leftovers of dead exports.
const STALE_INGEST: Duration = Duration::from_secs(3600);

/// Which entries of the directory an import reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSelector {
    /// Every entry; on duplicate step keys the most recent export wins.
    All,
    /// The entry tagged so (`tag=`).
    Tag(String),
    /// The manifest with this digest (`digest=`).
    Digest(Digest),
}

/// When prune removes entries (oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrunePolicy {
    /// Keep at most this many entries.
    pub keep_last: Option<usize>,
    /// Remove entries until the blobs they use total at most this many bytes.
    pub max_size: Option<u64>,
}

/// What prune did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Tags (or digests) of the removed entries.
    pub removed_entries: Vec<String>,
    /// Number of blob files deleted.
    pub removed_blobs: usize,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Bytes of the blobs kept.
    pub kept_bytes: u64,
}

/// What [`LocalCache::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Blobs whose content matches their digest.
    pub valid: usize,
    /// Blobs that did not match (now removed).
    pub corrupt: Vec<Digest>,
    /// Blobs referenced but absent.
    pub missing: Vec<Digest>,
}

/// One entry of `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its tag, if annotated.
    pub tag: Option<String>,
    /// Its manifest.
    pub manifest: Digest,
    /// Its last export time, if annotated.
    pub created: Option<String>,
}

/// Why `index.json` could not be used.
enum IndexProblem {
    /// Not JSON or not an index.
    Invalid(String),
    /// An IO error other than "not found".
    Unreadable(io::Error),
}

/// A `type=local` cache directory.
#[derive(Debug, Clone)]
pub struct LocalCache {
    dir: PathBuf,
}

/// An exclusive lock on `index.json`, released on drop.
struct IndexLock {
    _file: File,
}

impl LocalCache {
    /// A cache in `dir` (created on first export).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalCache { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.dir.join("ingest")
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// The path of a blob (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    fn lock(&self) -> Result<IndexLock, Error> {
        let path = self.dir.join("index.json.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        FileExt::lock_exclusive(&file).map_err(|e| Error::io(&path, e))?;
        Ok(IndexLock { _file: file })
    }

    fn prepare(&self) -> Result<(), Error> {
        for dir in [self.blobs_dir(), self.ingest_dir()] {
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }

    /// Writes `oci-layout` if absent. Called under the lock: prune removes
    /// leftover temp files of this write.
    fn write_layout_file(&self) -> Result<(), Error> {
        let layout = self.dir.join("oci-layout");
        if !layout.exists() {
            write_atomic(
                &self.dir,
                LAYOUT_TEMP_PREFIX,
                &layout,
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
        }
        Ok(())
    }

    /// Whether the blob is present with the expected size.
    fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Stores a blob unless present; returns whether it was written.
    fn put_blob(&self, digest: &Digest, size: u64, source: &BlobSource) -> Result<bool, Error> {
        if self.has_blob(digest, size) {
            return Ok(false);
        }
        let ingest = self.ingest_dir();
        let mut temp = tempfile::Builder::new()
            .prefix("blob-")
            .permissions(fs::Permissions::from_mode(0o644))
            .tempfile_in(&ingest)
            .map_err(|e| Error::io(&ingest, e))?;
        let mut hasher = Hasher::new();
        let mut n_bytes = 0u64;
        {
            let mut reader: Box<dyn Read> = match source {
                BlobSource::File(path) => {
                    Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
                }
                BlobSource::Bytes(bytes) => Box::new(bytes.as_slice()),
            };
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| Error::io(temp.path(), e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                n_bytes += n as u64;
                temp.write_all(&buf[..n])
                    .map_err(|e| Error::io(temp.path(), e))?;
            }
        }
        let found = hasher.finish();
        if &found != digest || n_bytes != size {
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                found,
                size: n_bytes,
            });
        }
        temp.as_file()
            .sync_all()
            .map_err(|e| Error::io(temp.path(), e))?;
        let dest = self.blob_path(digest);
        temp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(true)
    }

    /// Exports `export` under `tag` (see the module docs).
    pub fn export(
        &self,
        export: &CacheExport,
        tag: &str,
        format: FormatOptions,
    ) -> Result<ExportReport, Error> {
        if !is_valid_tag(tag) {
            return Err(Error::InvalidTag(tag.to_owned()));
        }
        let built = format::build(export, format)?;
        self.prepare()?;
        let mut report = ExportReport {
            tag: tag.to_owned(),
            manifest: built.manifest.descriptor.digest.clone(),
            blobs_written: 0,
            bytes_written: 0,
            blobs_present: 0,
        };
        let config_source = BlobSource::Bytes(built.config.bytes.clone());
        let manifest_source = BlobSource::Bytes(built.manifest.bytes.clone());
        let mut blobs: Vec<(&Digest, u64, &BlobSource)> = built
            .layers
            .iter()
            .map(|l| (&l.descriptor.digest, l.descriptor.size, &l.source))
            .collect();
        blobs.push((
            &built.config.descriptor.digest,
            built.config.descriptor.size,
            &config_source,
        ));
        blobs.push((
            &built.manifest.descriptor.digest,
            built.manifest.descriptor.size,
            &manifest_source,
        ));
        let write_missing = |report: &mut ExportReport| -> Result<bool, Error> {
            let mut wrote = false;
            for (digest, size, source) in &blobs {
                if self.put_blob(digest, *size, source)? {
                    report.blobs_written += 1;
                    report.bytes_written += size;
                    wrote = true;
                } else {
                    report.blobs_present += 1;
                }
            }
            Ok(wrote)
        };
        if write_missing(&mut report)? {
            sync_dir(&self.blobs_dir())?;
        }

        let _lock = self.lock()?;
        // A concurrent prune may have removed blobs that were not yet
        // referenced: write them again under the lock.
        let mut recheck = report.clone();
        if write_missing(&mut recheck)? {
            sync_dir(&self.blobs_dir())?;
            report.blobs_written = recheck.blobs_written;
            report.bytes_written = recheck.bytes_written;
        }

        self.write_layout_file()?;
        let mut index = self.read_index_for_update()?;
        // Already the newest entry with this very manifest: nothing to write.
        let unchanged = index.manifests.last().is_some_and(|last| {
            last.digest == built.manifest.descriptor.digest
                && last
                    .annotations
                    .get(ANNOTATION_REF_NAME)
                    .map(String::as_str)
                    == Some(tag)
        });
        if unchanged {
            tracing::debug!(dir = %self.dir.display(), tag, "cache unchanged");
            return Ok(report);
        }
        index
            .manifests
            .retain(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(tag));
        let mut entry = built.manifest.descriptor.clone();
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
        entry
            .annotations
            .insert(ANNOTATION_CREATED.to_owned(), rfc3339(SystemTime::now()));
        index.manifests.push(entry);
        self.write_index(&index)?;
        tracing::debug!(
            dir = %self.dir.display(),
            tag,
            written = report.blobs_written,
            present = report.blobs_present,
            "cache exported"
        );
        Ok(report)
    }

    fn read_index(&self) -> Result<Option<ImageIndex>, IndexProblem> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                IndexProblem::Invalid(format!(
                    "`{}` is not a valid OCI index: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IndexProblem::Unreadable(e)),
        }
    }

    /// The index to update: a missing or invalid one (with a warning) is
    /// replaced by an empty one; an unreadable one is an error (never
    /// overwrite what we could not read).
    fn read_index_for_update(&self) -> Result<ImageIndex, Error> {
        match self.read_index() {
            Ok(Some(index)) => Ok(index),
            Ok(None) => Ok(ImageIndex::empty()),
            Err(IndexProblem::Invalid(message)) => {
                tracing::warn!("{message}; starting a new index");
                Ok(ImageIndex::empty())
            }
            Err(IndexProblem::Unreadable(e)) => Err(Error::io(&self.index_path(), e)),
        }
    }

    /// The index, or an error if it is missing-but-unreadable or invalid.
    fn read_index_strict(&self) -> Result<ImageIndex, Error> {
        match self.read_index() {
            Ok(index) => Ok(index.unwrap_or_else(ImageIndex::empty)),
            Err(IndexProblem::Invalid(message)) => Err(Error::io(
                &self.index_path(),
                io::Error::new(io::ErrorKind::InvalidData, message),
            )),
            Err(IndexProblem::Unreadable(e)) => Err(Error::io(&self.index_path(), e)),
        }
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), Error> {
        let bytes = serde_json::to_vec(index).map_err(|e| Error::Encode(e.to_string()))?;
        write_atomic(&self.dir, INDEX_TEMP_PREFIX, &self.index_path(), &bytes)
    }

    /// The entries of `index.json`, oldest export first.
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        let index = self.read_index_strict()?;
        Ok(index
            .manifests
            .iter()
            .map(|d| Entry {
                tag: d.annotations.get(ANNOTATION_REF_NAME).cloned(),
                manifest: d.digest.clone(),
                created: d.annotations.get(ANNOTATION_CREATED).cloned(),
            })
            .collect())
    }

    /// Reads a blob and checks its digest; `None` (with a warning) if it is
    /// missing or corrupt. A corrupt blob is removed.
    fn read_verified(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.blob_path(digest);
        match fs::read(&path) {
            Ok(bytes) => {
                if &Digest::of_bytes(&bytes) == digest {
                    Some(bytes)
                } else {
                    self.discard_corrupt(digest, &path);
                    None
                }
            }
            Err(e) => {
                tracing::warn!(blob = %digest, "cache blob unreadable ({e}); treated as a miss");
                None
            }
        }
    }

    fn discard_corrupt(&self, digest: &Digest, path: &Path) {
        tracing::warn!(
            blob = %digest,
            path = %path.display(),
            "cache blob does not match its digest; treated as a miss and removed"
        );
        if let Err(e) = fs::remove_file(path) {
            tracing::debug!("cannot remove corrupt blob: {e}");
        }
    }

    /// Imports the selected entries. Never fails: problems are warnings and
    /// yield an empty (or partial) index.
    pub fn import(&self, selector: &ImportSelector) -> LocalImport {
        let mut import = LocalImport {
            cache: self.clone(),
            index: CacheIndex::default(),
            manifests: Vec::new(),
        };
        let index = match self.read_index() {
            Ok(Some(index)) => index,
            Ok(None) => {
                tracing::info!(dir = %self.dir.display(), "no cache to import yet");
                return import;
            }
            Err(IndexProblem::Invalid(message)) => {
                tracing::warn!("{message}; cache not imported");
                return import;
            }
            Err(IndexProblem::Unreadable(e)) => {
                tracing::warn!(dir = %self.dir.display(), "cannot read index.json ({e}); cache not imported");
                return import;
            }
        };
        // Newest first, so that its records win. Entries that are not
        // manifests (or are implausibly large) are not read.
        let index_manifests: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| is_manifest_type(&d.media_type) && d.size <= MAX_MANIFEST_SIZE)
            .collect();
        let mut chosen: Vec<Digest> = match selector {
            ImportSelector::All => index_manifests
                .iter()
                .rev()
                .map(|d| d.digest.clone())
                .collect(),
            ImportSelector::Tag(tag) => index_manifests
                .iter()
                .rev()
                .find(|d| d.annotations.get(ANNOTATION_REF_NAME) == Some(tag))
                .map(|d| d.digest.clone())
                .into_iter()
                .collect(),
            ImportSelector::Digest(digest) => vec![digest.clone()],
        };
        if chosen.is_empty() {
            tracing::warn!(dir = %self.dir.display(), ?selector, "no such cache entry; nothing imported");
        }
        chosen.dedup();
        for manifest_digest in chosen {
            let Some(manifest_bytes) = self.read_verified(&manifest_digest) else {
                continue;
            };
            let parsed = match format::parse_manifest(&manifest_bytes) {
                Ok(parsed) => parsed,
                Err(message) => {
                    tracing::debug!(manifest = %manifest_digest, "skipped: {message}");
                    continue;
                }
            };
            let Some(config_bytes) = self.read_verified(&parsed.config.digest) else {
                continue;
            };
            match serde_json::from_slice::<CacheConfig>(&config_bytes) {
                Ok(config) => {
                    import.index.add(&config, &parsed.layers);
                    import.manifests.push(manifest_digest);
                }
                Err(e) => {
                    tracing::warn!(config = %parsed.config.digest, "invalid cache config ({e}); skipped");
                }
            }
        }
        import
    }

    /// Removes entries by `policy` (oldest first), then every blob no
    /// remaining entry uses, stale `ingest/` files and leftover temp files.
    pub fn prune(&self, policy: &PrunePolicy) -> Result<PruneReport, Error> {
        let mut report = PruneReport::default();
        if !self.dir.exists() {
            return Ok(report);
        }
        let _lock = self.lock()?;
        // An invalid index would make every blob look unreferenced: refuse.
        let mut index = self.read_index_strict()?;
        if let Some(keep) = policy.keep_last {
            let n_remove = index.manifests.len().saturating_sub(keep);
            for entry in index.manifests.drain(..n_remove) {
                report.removed_entries.push(entry_name(&entry));
            }
        }
        let mut usage: Vec<Vec<Digest>> = index
            .manifests
            .iter()
            .map(|d| self.referenced_blobs(d))
            .collect();
        if let Some(max_size) = policy.max_size {
            while !index.manifests.is_empty() && self.total_size(&usage) > max_size {
                let entry = index.manifests.remove(0);
                usage.remove(0);
                report.removed_entries.push(entry_name(&entry));
            }
        }
        if !report.removed_entries.is_empty() {
            self.write_index(&index)?;
        }
        let keep: std::collections::HashSet<String> =
            usage.iter().flatten().map(|d| d.hex().to_owned()).collect();
        let blobs_dir = self.blobs_dir();
        if let Ok(read_dir) = fs::read_dir(&blobs_dir) {
            for item in read_dir.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                let len = item.metadata().map(|m| m.len()).unwrap_or(0);
                if keep.contains(&name) {
                    report.kept_bytes += len;
                } else if fs::remove_file(item.path()).is_ok() {
                    report.removed_blobs += 1;
                    report.freed_bytes += len;
                }
            }
        }
        let now = SystemTime::now();
        if let Ok(read_dir) = fs::read_dir(self.ingest_dir()) {
            for item in read_dir.flatten() {
                let stale = item
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > STALE_INGEST);
                if stale {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        if let Ok(read_dir) = fs::read_dir(&self.dir) {
            for item in read_dir.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                if name.starts_with(INDEX_TEMP_PREFIX) || name.starts_with(LAYOUT_TEMP_PREFIX) {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        Ok(report)
    }

    /// Hashes every blob the entries use and removes the corrupt ones (so
    /// the next export rewrites them). For `cuedag cache verify`.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let index = self.read_index_strict()?;
        let mut report = VerifyReport::default();
        let mut seen = std::collections::HashSet::new();
        for entry in &index.manifests {
            for digest in self.referenced_blobs(entry) {
                if !seen.insert(digest.clone()) {
                    continue;
                }
                let path = self.blob_path(&digest);
                match File::open(&path).and_then(Digest::of_reader) {
                    Ok((found, _)) if found == digest => report.valid += 1,
                    Ok(_) => {
                        self.discard_corrupt(&digest, &path);
                        report.corrupt.push(digest);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => report.missing.push(digest),
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
        }
        Ok(report)
    }

    fn total_size(&self, usage: &[Vec<Digest>]) -> u64 {
        let mut seen = std::collections::HashSet::new();
        usage
            .iter()
            .flatten()
            .filter(|d| seen.insert(*d))
            .map(|d| {
                fs::metadata(self.blob_path(d))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Every blob an index entry uses (manifests, configs, layers), walking
    /// nested indexes and manifests.
    fn referenced_blobs(&self, root: &Descriptor) -> Vec<Digest> {
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(desc) = stack.pop() {
            if out.contains(&desc.digest) {
                continue;
            }
            out.push(desc.digest.clone());
            if !is_manifest_type(&desc.media_type) || desc.size > MAX_MANIFEST_SIZE {
                continue;
            }
            let Ok(bytes) = fs::read(self.blob_path(&desc.digest)) else {
                continue;
            };
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let children = value
                .get("config")
                .into_iter()
                .chain(
                    ["layers", "manifests"]
                        .iter()
                        .filter_map(|k| value.get(*k).and_then(|v| v.as_array()))
                        .flatten(),
                )
                .filter_map(|v| serde_json::from_value::<Descriptor>(v.clone()).ok());
            stack.extend(children);
        }
        out
    }
}

/// Manifests larger than this are not read.
const MAX_MANIFEST_SIZE: u64 = 16 << 20;

fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        MEDIA_TYPE_OCI_INDEX
            | MEDIA_TYPE_OCI_MANIFEST
            | MEDIA_TYPE_DOCKER_LIST
            | MEDIA_TYPE_DOCKER_MANIFEST
    )
}

fn entry_name(desc: &Descriptor) -> String {
    desc.annotations
        .get(ANNOTATION_REF_NAME)
        .cloned()
        .unwrap_or_else(|| desc.digest.to_string())
}

/// Writes `bytes` to `dest` through a temp file in `dir` (fsync, rename,
/// fsync of the directory).
fn write_atomic(dir: &Path, prefix: &str, dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut temp = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    temp.write_all(bytes)
        .map_err(|e| Error::io(temp.path(), e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::io(temp.path(), e))?;
    temp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// An imported local cache: the lookup table plus verified blob reads.
#[derive(Debug, Clone)]
pub struct LocalImport {
    cache: LocalCache,
    index: CacheIndex,
    /// The manifests that were read, newest first.
    pub manifests: Vec<Digest>,
}

impl LocalImport {
    /// The lookup table.
    pub fn index(&self) -> &CacheIndex {
        &self.index
    }

    /// Copies a layer blob to `dest` (temp file next to it, then rename),
    /// verifying its digest. `false` (with a warning) if the blob is missing
    /// or corrupt: the caller treats the step as a miss.
    pub fn fetch_layer_to(&self, layer: &LayerDescriptor, dest: &Path) -> bool {
        match self.try_fetch_to(layer, dest) {
            Ok(true) => true,
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(blob = %layer.digest, "cannot fetch cache blob ({e}); treated as a miss");
                false
            }
        }
    }

    fn try_fetch_to(&self, layer: &LayerDescriptor, dest: &Path) -> io::Result<bool> {
        let src = self.cache.blob_path(&layer.digest);
        let mut input = match File::open(&src) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(blob = %layer.digest, "cache blob missing; treated as a miss");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let parent = dest.parent().unwrap_or(Path::new("."));
        let mut temp = tempfile::Builder::new()
            .prefix(".fetch-")
            .permissions(fs::Permissions::from_mode(0o644))
            .tempfile_in(parent)?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            temp.write_all(&buf[..n])?;
        }
        if hasher.finish() != layer.digest {
            self.cache.discard_corrupt(&layer.digest, &src);
            return Ok(false);
        }
        temp.persist(dest).map_err(|e| e.error)?;
        Ok(true)
    }

    /// The path of a layer blob inside the cache after checking its digest
    /// in place (no copy), for a caller that extracts straight from it;
    /// `None` (with a warning) on a miss.
    pub fn verified_blob_path(&self, layer: &LayerDescriptor) -> Option<PathBuf> {
        let path = self.cache.blob_path(&layer.digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(blob = %layer.digest, "cache blob unreadable ({e}); treated as a miss");
                return None;
            }
        };
        match Digest::of_reader(file) {
            Ok((digest, _)) if digest == layer.digest => Some(path),
            Ok(_) => {
                self.cache.discard_corrupt(&layer.digest, &path);
                None
            }
            Err(e) => {
                tracing::warn!(blob = %layer.digest, "cache blob unreadable ({e}); treated as a miss");
                None
            }
        }
    }

    /// Reads a layer blob, verified; `None` (with a warning) on a miss.
    pub fn read_layer(&self, layer: &LayerDescriptor) -> Option<Vec<u8>> {
        self.cache.read_verified(&layer.digest)
    }
}
