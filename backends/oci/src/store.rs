//! A content-addressed blob store: `<root>/blobs/sha256/<hex>`.
//!
//! Blobs are written to `<root>/ingest/` first, hashed while written, checked
//! against the expected digest and only then renamed into place, so a reader
//! never sees a partial or wrong blob and several processes may write the
//! same blob at once (the last atomic rename wins, with identical content).
//! Reads are verified too: [`BlobStore::open_verified`] hashes as it reads and
//! fails at the end of a corrupt blob, removing it so the pull path fetches
//! it again.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::digest::{Digest, Hasher, HashingReader};
use crate::error::{OciError, Result};

/// A content-addressed store of blobs under a caller-chosen root.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// The record of which manifest a reference resolved to (for a platform).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefRecord {
    /// The reference, normalised.
    pub reference: String,
    /// The platform it was resolved for (`linux/amd64`).
    pub platform: String,
    /// The digest of the platform-specific manifest.
    pub manifest: Digest,
    /// The digest of what the tag pointed to (an index or the manifest).
    pub top: Digest,
}

impl BlobStore {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in ["blobs/sha256", "ingest", "refs"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|e| OciError::io("creating", &path, e))?;
        }
        Ok(BlobStore { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (whether or not it is present).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether a blob with `digest` is present (not verified).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a present blob.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest)).ok().map(|m| m.len())
    }

    /// Starts writing a new blob. Call [`BlobWriter::commit`] to verify and
    /// publish it; dropping the writer discards it.
    pub fn writer(&self) -> Result<BlobWriter> {
        let ingest = self.root.join("ingest");
        let file = NamedTempFile::new_in(&ingest)
            .map_err(|e| OciError::io("creating a temp file in", &ingest, e))?;
        Ok(BlobWriter {
            store: self.clone(),
            file: io::BufWriter::with_capacity(1 << 16, file),
            hasher: Hasher::new(),
            size: 0,
        })
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) && self.verify(&digest)? {
            return Ok(digest);
        }
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(|e| OciError::io("writing", self.root.join("ingest"), e))?;
        writer.commit(Some(&digest))
    }

    /// Stores the file at `path` (copying it) and returns its digest.
    pub fn put_file(&self, path: &Path) -> Result<Digest> {
        let mut file = File::open(path).map_err(|e| OciError::io("opening", path, e))?;
        let mut writer = self.writer()?;
        io::copy(&mut file, &mut writer).map_err(|e| OciError::io("copying", path, e))?;
        writer.commit(None)
    }

    /// Reads a whole blob, verifying its digest. A corrupt blob is removed
    /// and reported as [`OciError::DigestMismatch`].
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| OciError::io("reading blob", &path, e))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            let _ = fs::remove_file(&path);
            return Err(OciError::DigestMismatch {
                what: format!("stored blob `{}`", path.display()),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Hashes a present blob; if it does not match, removes it and returns
    /// `false`. A missing blob is `false` too.
    pub fn verify(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(OciError::io("opening blob", &path, e)),
        };
        let mut reader = HashingReader::new(BufReader::with_capacity(1 << 16, file));
        io::copy(&mut reader, &mut io::sink())
            .map_err(|e| OciError::io("reading blob", &path, e))?;
        let (actual, _) = reader.finish();
        if &actual == digest {
            Ok(true)
        } else {
            tracing::warn!(blob = %digest, %actual, "corrupt blob removed from the store");
            let _ = fs::remove_file(&path);
            Ok(false)
        }
    }

    /// Like [`BlobStore::verify`], but skips hashing when the blob was
    /// verified before and its size, inode and mtime have not changed since
    /// (a stamp under `<root>/verified/`). Content changed in place without
    /// touching the mtime is still caught when the blob is read through
    /// [`BlobStore::open_verified`] or [`BlobStore::read`].
    pub fn verify_cached(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        let stamp_path = self.root.join("verified").join(digest.hex());
        let Some(stamp) = file_stamp(&path) else {
            let _ = fs::remove_file(&stamp_path);
            return Ok(false);
        };
        if fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
            return Ok(true);
        }
        let good = self.verify(digest)?;
        if good {
            let dir = self.root.join("verified");
            let _ = fs::create_dir_all(&dir);
            // After hashing, re-read the metadata: a concurrent rewrite
            // (same content) may have replaced the file.
            if let Some(stamp) = file_stamp(&path) {
                let _ = fs::write(&stamp_path, stamp);
            }
        }
        Ok(good)
    }

    /// Opens a blob for reading; the reader hashes what it reads and, at the
    /// end of the blob, fails with an [`io::ErrorKind::InvalidData`] error
    /// (and removes the blob) if the content does not match `digest`.
    pub fn open_verified(&self, digest: &Digest) -> Result<VerifiedReader> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| OciError::io("opening blob", &path, e))?;
        Ok(VerifiedReader {
            inner: Some(HashingReader::new(BufReader::with_capacity(1 << 16, file))),
            expected: digest.clone(),
            path,
        })
    }

    /// Removes a blob (no error if absent).
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OciError::io("removing blob", &path, e)),
        }
    }

    /// Lists the digests of all present blobs.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| OciError::io("listing", &dir, e))? {
            let entry = entry.map_err(|e| OciError::io("listing", &dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn ref_path(&self, reference: &str, platform: &str) -> PathBuf {
        let key = Digest::of(format!("{reference}\n{platform}").as_bytes());
        self.root.join("refs").join(format!("{}.json", key.hex()))
    }

    /// Records that `record.reference` resolved to `record.manifest` for
    /// `record.platform` (replacing the file atomically).
    pub fn set_ref(&self, record: &RefRecord) -> Result<()> {
        let path = self.ref_path(&record.reference, &record.platform);
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| OciError::Json {
            what: "reference record".into(),
            source: e,
        })?;
        let dir = self.root.join("refs");
        let mut tmp = NamedTempFile::new_in(&dir)
            .map_err(|e| OciError::io("creating a temp file in", &dir, e))?;
        tmp.write_all(&bytes)
            .map_err(|e| OciError::io("writing", tmp.path().to_owned(), e))?;
        tmp.persist(&path)
            .map_err(|e| OciError::io("renaming into", &path, e.error))?;
        Ok(())
    }

    /// The last recorded resolution of `reference` for `platform`.
    pub fn get_ref(&self, reference: &str, platform: &str) -> Option<RefRecord> {
        let bytes = fs::read(self.ref_path(reference, platform)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A blob being written; see [`BlobStore::writer`].
pub struct BlobWriter {
    store: BlobStore,
    file: io::BufWriter<NamedTempFile>,
    hasher: Hasher,
    size: u64,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Verifies the content against `expected` (when given) and renames it
    /// into place. On mismatch the content is discarded and
    /// [`OciError::DigestMismatch`] returned.
    pub fn commit(self, expected: Option<&Digest>) -> Result<Digest> {
        let BlobWriter {
            store,
            file,
            hasher,
            ..
        } = self;
        let ingest = store.root.join("ingest");
        let file = file
            .into_inner()
            .map_err(|e| OciError::io("flushing a blob in", &ingest, e.into_error()))?;
        let actual = hasher.finish();
        if let Some(expected) = expected {
            if expected != &actual {
                return Err(OciError::DigestMismatch {
                    what: "downloaded blob".into(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let target = store.blob_path(&actual);
        file.persist(&target)
            .map_err(|e| OciError::io("renaming into", &target, e.error))?;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A reader over a stored blob that fails at its end if the content does not
/// match the digest; see [`BlobStore::open_verified`].
pub struct VerifiedReader {
    inner: Option<HashingReader<BufReader<File>>>,
    expected: Digest,
    path: PathBuf,
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(done) = self.inner.take() {
                let (actual, _) = done.finish();
                if actual != self.expected {
                    tracing::warn!(blob = %self.expected, %actual, "corrupt blob removed from the store");
                    let _ = fs::remove_file(&self.path);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("digest mismatch for stored blob: expected `{}`, got `{actual}` (the corrupt copy was removed)", self.expected),
                    ));
                }
            }
        }
        Ok(n)
    }
}

fn file_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {} {} {}",
        m.len(),
        m.ino(),
        m.dev(),
        m.mtime(),
        m.mtime_nsec()
    ))
}
