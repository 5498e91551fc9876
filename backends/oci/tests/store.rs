//! The blob store: digests verified on write and on read.

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};

use cuedag_oci::store::BlobStore;
use cuedag_oci::{Digest, OciError};

#[test]
fn put_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let digest = store.put_bytes(b"hello").unwrap();
    assert_eq!(
        digest.to_string(),
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(
        store.blob_path(&digest),
        dir.path().join("blobs/sha256").join(digest.hex())
    );
    assert_eq!(store.read(&digest).unwrap(), b"hello");
    assert_eq!(store.list().unwrap(), vec![digest.clone()]);
    // Nothing is left behind in the ingest directory.
    assert_eq!(
        std::fs::read_dir(dir.path().join("ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn writer_refuses_wrong_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut writer = store.writer().unwrap();
    writer.write_all(b"payload").unwrap();
    let wrong = Digest::of(b"something else");
    let err = writer.commit(Some(&wrong)).unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(!store.contains(&wrong));
    assert!(!store.contains(&Digest::of(b"payload")));
    assert_eq!(
        std::fs::read_dir(dir.path().join("ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn corrupt_blob_is_detected_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let digest = store.put_bytes(b"good content").unwrap();
    std::fs::write(store.blob_path(&digest), b"evil content").unwrap();

    let err = store.read(&digest).unwrap_err();
    assert_eq!(err.code(), "oci::digest-mismatch", "{err}");
    assert!(!store.contains(&digest), "a corrupt blob must be removed");

    // Same through verify().
    let digest = store.put_bytes(b"good content").unwrap();
    assert!(store.verify(&digest).unwrap());
    std::fs::write(store.blob_path(&digest), b"bad").unwrap();
    assert!(!store.verify(&digest).unwrap());
    assert!(!store.contains(&digest));

    // Same through the streaming reader: the error comes at the end.
    let digest = store.put_bytes(b"good content").unwrap();
    std::fs::write(store.blob_path(&digest), b"good contenT").unwrap();
    let mut reader = store.open_verified(&digest).unwrap();
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(!store.contains(&digest));
}

#[test]
fn verified_reader_passes_good_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = vec![7u8; 300_000];
    let digest = store.put_bytes(&data).unwrap();
    let mut out = Vec::new();
    store
        .open_verified(&digest)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
    assert!(store.contains(&digest));
}

#[test]
fn concurrent_writers_of_the_same_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let want = Digest::of(&data);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let root = root.clone();
            let data = data.clone();
            std::thread::spawn(move || BlobStore::open(&root).unwrap().put_bytes(&data).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
    let store = BlobStore::open(&root).unwrap();
    assert!(store.verify(&want).unwrap());
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn digest_parsing() {
    assert!(Digest::parse("sha256:abc").is_err());
    assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
    assert!(Digest::parse(&format!("sha512:{}", "a".repeat(64))).is_err());
    let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
    assert_eq!(d.hex(), "a".repeat(64));
}

#[test]
fn verify_cached_rehashes_only_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let digest = store.put_bytes(b"stamped content").unwrap();
    assert!(store.verify_cached(&digest).unwrap());
    assert!(dir.path().join("verified").join(digest.hex()).is_file());
    assert!(store.verify_cached(&digest).unwrap());
    // Rewriting the file (new mtime) invalidates the stamp.
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::fs::write(store.blob_path(&digest), b"stamped CONTENT").unwrap();
    assert!(!store.verify_cached(&digest).unwrap());
    assert!(!store.contains(&digest), "corrupt blob removed");
    assert!(!store.verify_cached(&digest).unwrap(), "missing blob");
}
