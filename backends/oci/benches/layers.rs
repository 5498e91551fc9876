//! Layer packing, extraction and flattening on a synthetic tree: 2000 small
//! files in 40 directories plus one 8 MiB file.
//! Run with `cargo bench -p cuedag-oci --bench layers`.

// Bench set-up may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use cuedag_oci::layer::{extract_layer, flatten, pack_layer};

fn main() {
    divan::main();
}

struct Fixture {
    _dir: tempfile::TempDir,
    tree: PathBuf,
    gzip: Vec<u8>,
    extracted: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        for d in 0..40 {
            let sub = tree.join(format!("pkg{d:02}"));
            fs::create_dir_all(&sub).unwrap();
            for f in 0..50 {
                let body: Vec<u8> = (0..4096u32)
                    .map(|i| ((i * 31 + f * 7 + d) % 251) as u8)
                    .collect();
                fs::write(sub.join(format!("file{f:02}.go")), body).unwrap();
            }
        }
        let big: Vec<u8> = (0..(8u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        fs::write(tree.join("big.bin"), big).unwrap();
        let (_, gzip) = pack_layer(&tree, Vec::new(), true).unwrap();
        let extracted = dir.path().join("extracted");
        extract_layer(gzip.as_slice(), &extracted).unwrap();
        Fixture {
            _dir: dir,
            tree,
            gzip,
            extracted,
        }
    })
}

#[divan::bench(sample_count = 10)]
fn pack_gzip() {
    let f = fixture();
    divan::black_box(pack_layer(&f.tree, std::io::sink(), true).unwrap());
}

#[divan::bench(sample_count = 10)]
fn pack_uncompressed() {
    let f = fixture();
    divan::black_box(pack_layer(&f.tree, std::io::sink(), false).unwrap());
}

#[divan::bench(sample_count = 10)]
fn extract_gzip(bencher: divan::Bencher) {
    let f = fixture();
    bencher
        .with_inputs(|| tempfile::tempdir().unwrap())
        .bench_local_values(|out: tempfile::TempDir| {
            extract_layer(f.gzip.as_slice(), &out.path().join("l")).unwrap();
            out
        });
}

#[divan::bench(sample_count = 10)]
fn flatten_two_layers(bencher: divan::Bencher) {
    let f = fixture();
    let layers = [f.extracted.clone(), f.extracted.clone()];
    bencher
        .with_inputs(|| tempfile::tempdir().unwrap())
        .bench_local_values(|out: tempfile::TempDir| {
            flatten(&layers, &out.path().join("flat")).unwrap();
            out
        });
}
