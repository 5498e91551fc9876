//! Layer extraction into overlay format, packing back, and flattening.

// Helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use cuedag_oci::layer::{
    ensure_extracted, extract_blob, extract_layer, flatten, is_opaque, pack_layer, pack_to_store,
};
use cuedag_oci::store::BlobStore;
use cuedag_oci::OciError;

/// Builds a tar archive entry by entry, writing names raw so that invalid
/// paths (`../x`, `/abs`) can be expressed.
struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl TarBuilder {
    fn new() -> Self {
        TarBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, name: &str, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(size);
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h
    }

    fn dir(mut self, name: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, name, mode, 0);
        h.set_cksum();
        self.builder.append(&h, std::io::empty()).unwrap();
        self
    }

    fn file(mut self, name: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, name, mode, data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    fn owned_file(mut self, name: &str, uid: u64, gid: u64, data: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, name, 0o750, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Self {
        let mut h = Self::header(kind, name, 0o777, 0);
        let raw = &mut h.as_old_mut().linkname;
        raw[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.builder.append(&h, std::io::empty()).unwrap();
        self
    }

    fn xattr(mut self, name: &str, value: &str) -> Self {
        let record = format!("SCHILY.xattr.{name}={value}\n");
        let mut len = record.len() + 3;
        while format!("{len} {record}").len() != len {
            len = format!("{len} {record}").len();
        }
        let data = format!("{len} {record}");
        let mut h = Self::header(
            tar::EntryType::XHeader,
            "PaxHeaders/x",
            0o644,
            data.len() as u64,
        );
        h.set_cksum();
        self.builder.append(&h, data.as_bytes()).unwrap();
        self
    }

    fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn sample_layer() -> Vec<u8> {
    TarBuilder::new()
        .dir("./", 0o755)
        .dir("bin/", 0o755)
        .file("bin/tool", 0o4755, b"#!/bin/sh\necho tool\n")
        .link(tar::EntryType::Link, "bin/tool-again", "bin/tool")
        .link(tar::EntryType::Symlink, "bin/sh", "/bin/busybox")
        .link(tar::EntryType::Symlink, "bin/up", "../etc")
        .dir("etc/", 0o755)
        .xattr("user.note", "hello")
        .file("etc/config", 0o600, b"key=value\n")
        .owned_file("home/alice/notes", 1000, 1000, b"mine\n")
        .file("usr/.wh.old", 0o644, b"")
        .dir("var/", 0o700)
        .file("var/.wh..wh..opq", 0o644, b"")
        .file("var/new", 0o644, b"fresh\n")
        .dir(".wh..wh.plnk/", 0o700)
        .file(".wh..wh.plnk/123.4", 0o644, b"aufs")
        .dir("readonly/", 0o555)
        .file("readonly/inside", 0o444, b"ro\n")
        .finish()
}

fn check_sample(root: &Path) {
    let tool = fs::symlink_metadata(root.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(
        fs::read(root.join("bin/tool")).unwrap(),
        b"#!/bin/sh\necho tool\n"
    );
    let again = fs::symlink_metadata(root.join("bin/tool-again")).unwrap();
    assert_eq!(again.ino(), tool.ino(), "hard link kept");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::read_link(root.join("bin/up")).unwrap(),
        Path::new("../etc")
    );
    assert_eq!(
        fs::symlink_metadata(root.join("etc/config"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        xattr_get(&root.join("etc/config"), "user.note").as_deref(),
        Some(&b"hello"[..]),
        "xattr kept"
    );
    let notes = fs::symlink_metadata(root.join("home/alice/notes")).unwrap();
    assert_eq!((notes.uid(), notes.gid()), (1000, 1000), "ownership kept");
    assert_eq!(notes.mtime(), 1_600_000_000, "mtime kept");
    let whiteout = fs::symlink_metadata(root.join("usr/old")).unwrap();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    assert!(!root.join("usr/.wh.old").exists());
    assert!(
        fs::symlink_metadata(root.join(".wh..wh.plnk")).is_err(),
        "aufs metadata skipped"
    );
    assert!(fs::symlink_metadata(root.join(".wh.plnk")).is_err());
    assert!(
        is_opaque(&root.join("var")),
        "opaque marker becomes the xattr"
    );
    assert!(!root.join("var/.wh..wh..opq").exists());
    assert_eq!(
        fs::symlink_metadata(root.join("var"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(
        fs::symlink_metadata(root.join("readonly"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o555
    );
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn extracts_into_overlay_format() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    let stats = extract_layer(gzip(&sample_layer()).as_slice(), &dest).unwrap();
    assert_eq!(stats.whiteouts, 1);
    assert_eq!(stats.opaque_dirs, 1);
    check_sample(&dest);
    // zstd layers (several frames, and a skippable frame) work too.
    let tar = sample_layer();
    let (a, b) = tar.split_at(tar.len() / 2);
    let mut zstd =
        ruzstd::encoding::compress_to_vec(a, ruzstd::encoding::CompressionLevel::Fastest);
    zstd.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    zstd.extend(ruzstd::encoding::compress_to_vec(
        b,
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let from_zstd = dir.path().join("zstd");
    extract_layer(zstd.as_slice(), &from_zstd).unwrap();
    check_sample(&from_zstd);
    // Uncompressed layers work too.
    let plain = dir.path().join("plain");
    extract_layer(sample_layer().as_slice(), &plain).unwrap();
    check_sample(&plain);
}

#[test]
fn pack_round_trip_is_faithful_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    extract_layer(sample_layer().as_slice(), &first).unwrap();

    let (packed, bytes) = pack_layer(&first, Vec::new(), true).unwrap();
    assert_eq!(packed.digest, cuedag_oci::Digest::of(&bytes));
    assert_eq!(packed.size, bytes.len() as u64);
    assert_eq!(
        packed.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let (again, _) = pack_layer(&first, Vec::new(), true).unwrap();
    assert_eq!(packed, again, "packing is deterministic");

    // The packed tar carries OCI whiteouts, not devices.
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        names.push((
            e.path().unwrap().display().to_string(),
            e.header().entry_type(),
        ));
    }
    let find = |n: &str| {
        names
            .iter()
            .find(|(p, _)| p.trim_end_matches('/') == n)
            .map(|(_, t)| *t)
    };
    assert_eq!(find("usr/.wh.old"), Some(tar::EntryType::Regular));
    assert_eq!(find("var/.wh..wh..opq"), Some(tar::EntryType::Regular));
    assert_eq!(
        find("bin/tool-again").or(find("bin/tool")),
        Some(tar::EntryType::Link)
    );
    let sorted = {
        let mut s = names.clone();
        s.sort_by(|a, b| a.0.trim_end_matches('/').cmp(b.0.trim_end_matches('/')));
        s
    };
    let plain: Vec<_> = names
        .iter()
        .map(|(p, _)| p.trim_end_matches('/').to_owned())
        .collect();
    let plain_sorted: Vec<_> = sorted
        .iter()
        .map(|(p, _)| p.trim_end_matches('/').to_owned())
        .collect();
    assert_eq!(plain, plain_sorted, "entries are sorted");

    // Extracting the packed layer gives the same tree.
    let second = dir.path().join("second");
    extract_layer(bytes.as_slice(), &second).unwrap();
    check_sample(&second);
    let (repacked, _) = pack_layer(&second, Vec::new(), true).unwrap();
    assert_eq!(repacked.diff_id, packed.diff_id, "extract∘pack is stable");

    // Uncompressed packing: digest == diff_id.
    let (raw, _) = pack_layer(&first, Vec::new(), false).unwrap();
    assert_eq!(raw.digest, raw.diff_id);
    assert_eq!(raw.diff_id, packed.diff_id);
}

#[test]
fn pack_to_store_and_extract_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let src = dir.path().join("src");
    extract_layer(sample_layer().as_slice(), &src).unwrap();
    let packed = pack_to_store(&store, &src, true).unwrap();
    assert!(store.verify(&packed.digest).unwrap());
    let out = dir.path().join("out");
    extract_blob(&store, &packed.digest, &out).unwrap();
    check_sample(&out);

    // Atomic extraction: once, then a no-op; concurrent callers agree.
    let snapshots = dir.path().join("snapshots");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (store, digest, dest) = (store.clone(), packed.digest.clone(), snapshots.join("l"));
            std::thread::spawn(move || ensure_extracted(&store, &digest, &dest).unwrap())
        })
        .collect();
    let created: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(created.iter().filter(|c| **c).count() <= 1, "{created:?}");
    check_sample(&snapshots.join("l"));
    assert!(!ensure_extracted(&store, &packed.digest, &snapshots.join("l")).unwrap());
    assert_eq!(
        fs::read_dir(&snapshots).unwrap().count(),
        1,
        "no temp dirs left"
    );

    // A corrupt blob fails extraction, is removed, and leaves no directory.
    let mut bytes = fs::read(store.blob_path(&packed.digest)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(store.blob_path(&packed.digest), &bytes).unwrap();
    let bad = dir.path().join("bad");
    let err = extract_blob(&store, &packed.digest, &bad).unwrap_err();
    assert!(!bad.exists(), "partial extraction removed");
    assert!(
        !store.contains(&packed.digest),
        "corrupt blob removed: {err}"
    );
}

fn expect_rejected(layer: Vec<u8>, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    let err = extract_layer(layer.as_slice(), &dest).unwrap_err();
    assert!(matches!(err, OciError::LayerEntry { .. }), "{err}");
    assert!(err.to_string().contains(reason), "`{err}` lacks `{reason}`");
    assert!(!dir.path().join("escaped").exists());
}

#[test]
fn rejects_escapes() {
    expect_rejected(
        TarBuilder::new().file("../escaped", 0o644, b"x").finish(),
        "escapes the layer root",
    );
    expect_rejected(
        TarBuilder::new()
            .file("a/../../escaped", 0o644, b"x")
            .finish(),
        "escapes the layer root",
    );
    expect_rejected(
        TarBuilder::new().file("/escaped", 0o644, b"x").finish(),
        "absolute paths",
    );
    // A symlink to the outside, then a write through it.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().display().to_string();
    expect_rejected(
        TarBuilder::new()
            .link(tar::EntryType::Symlink, "evil", &target)
            .file("evil/escaped", 0o644, b"x")
            .finish(),
        "through symlink",
    );
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
    expect_rejected(
        TarBuilder::new()
            .link(tar::EntryType::Symlink, "up", "..")
            .file("up/escaped", 0o644, b"x")
            .finish(),
        "through symlink",
    );
    expect_rejected(
        TarBuilder::new()
            .link(tar::EntryType::Link, "hard", "../../etc/passwd")
            .finish(),
        "escapes the layer",
    );
    expect_rejected(
        TarBuilder::new()
            .link(tar::EntryType::Link, "hard", "missing")
            .finish(),
        "not a file of this layer",
    );
}

#[test]
fn flatten_applies_whiteouts_and_opaque_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let lower = dir.path().join("lower");
    let upper = dir.path().join("upper");
    extract_layer(
        TarBuilder::new()
            .file("keep", 0o644, b"keep\n")
            .file("gone", 0o644, b"gone\n")
            .file("dir/old1", 0o644, b"1")
            .file("dir/sub/old2", 0o644, b"2")
            .file("opq/hidden", 0o644, b"hidden")
            .file("replace", 0o644, b"lower")
            .link(tar::EntryType::Symlink, "was-link", "keep")
            .finish()
            .as_slice(),
        &lower,
    )
    .unwrap();
    extract_layer(
        TarBuilder::new()
            .file(".wh.gone", 0o644, b"")
            .file("dir/.wh.sub", 0o644, b"")
            .file("opq/.wh..wh..opq", 0o644, b"")
            .file("opq/visible", 0o644, b"visible")
            .file("replace", 0o600, b"upper")
            .dir("was-link/", 0o755)
            .file("was-link/inner", 0o644, b"inner")
            .file("a/b", 0o644, b"ab")
            .link(tar::EntryType::Link, "a/c", "a/b")
            .finish()
            .as_slice(),
        &upper,
    )
    .unwrap();
    let out = dir.path().join("out");
    flatten(&[lower, upper], &out).unwrap();
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(&out).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        files.push(e.path().strip_prefix(&out).unwrap().display().to_string());
    }
    assert_eq!(
        files,
        [
            "a",
            "a/b",
            "a/c",
            "dir",
            "dir/old1",
            "keep",
            "opq",
            "opq/visible",
            "replace",
            "was-link",
            "was-link/inner"
        ]
    );
    assert_eq!(fs::read(out.join("replace")).unwrap(), b"upper");
    assert_eq!(
        fs::metadata(out.join("replace"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(fs::symlink_metadata(out.join("was-link")).unwrap().is_dir());
    assert_eq!(
        fs::metadata(out.join("a/b")).unwrap().ino(),
        fs::metadata(out.join("a/c")).unwrap().ino()
    );
    assert!(
        !is_opaque(&out.join("opq")),
        "no overlay xattrs in the flat tree"
    );
}
