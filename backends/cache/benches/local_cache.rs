//! Export and import of a realistic `type=local` cache: 3 shared layers of
//! 4 MiB (files in a stand-in content store) and 20 step records, each with
//! its own 16 KiB layer on top.
//!
//! Run: `cargo bench -p cuedag-cache --bench local_cache`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cuedag_cache::spec::FormatOptions;
use cuedag_cache::{
    BlobSource, CacheExport, Digest, ExportLayer, ExportRecord, ImportSelector, LayerDescriptor,
    LocalCache, StepResult,
};
use divan::Bencher;

fn main() {
    divan::main();
}

const N_RECORDS: usize = 20;
const BIG: usize = 4 << 20;
const SMALL: usize = 16 << 10;

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

struct Fixture {
    _store: tempfile::TempDir,
    export: CacheExport,
    /// A cache directory holding the export already.
    warm: tempfile::TempDir,
}

fn file_layer(store: &Path, seed: u64, len: usize) -> ExportLayer {
    let data = bytes(seed, len);
    let digest = Digest::of_bytes(&data);
    let path: PathBuf = store.join(digest.hex());
    std::fs::write(&path, &data).unwrap();
    ExportLayer {
        descriptor: LayerDescriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            digest,
            size: len as u64,
            diff_id: None,
            created_at: Some("2022-05-01T10:00:00Z".into()),
        },
        source: BlobSource::File(path),
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let store = tempfile::tempdir().unwrap();
        let mut layers: Vec<ExportLayer> =
            (0..3).map(|i| file_layer(store.path(), i, BIG)).collect();
        let base: Vec<Digest> = layers.iter().map(|l| l.descriptor.digest.clone()).collect();
        let mut records = Vec::new();
        for i in 0..N_RECORDS {
            let own = file_layer(store.path(), 100 + i as u64, SMALL);
            let mut chain = base.clone();
            chain.push(own.descriptor.digest.clone());
            layers.push(own);
            records.push(ExportRecord {
                key: Digest::of_bytes(format!("step{i}").as_bytes()),
                inputs: if i == 0 {
                    vec![]
                } else {
                    vec![vec![Digest::of_bytes(format!("step{}", i - 1).as_bytes())]]
                },
                result: Some(StepResult {
                    chain,
                    created_at: Some("2022-05-01T10:00:00Z".into()),
                }),
                outputs: Some(serde_json::json!({ "exit": 0, "step": i })),
            });
        }
        let export = CacheExport {
            layers,
            records,
            mounts: vec![],
        };
        let warm = tempfile::tempdir().unwrap();
        LocalCache::new(warm.path())
            .export(&export, "build", FormatOptions::default())
            .unwrap();
        Fixture {
            _store: store,
            export,
            warm,
        }
    })
}

/// First export into an empty directory (writes ~12.3 MiB in 23 blobs).
#[divan::bench(sample_count = 10)]
fn export_cold(bencher: Bencher) {
    let fixture = fixture();
    bencher
        .with_inputs(|| tempfile::tempdir().unwrap())
        .bench_values(|dir| {
            let report = LocalCache::new(dir.path())
                .export(&fixture.export, "build", FormatOptions::default())
                .unwrap();
            assert_eq!(report.blobs_written, 3 + N_RECORDS + 2);
            dir
        });
}

/// Second export of an unchanged build: writes 0 blobs, rewrites index.json.
#[divan::bench(sample_count = 50)]
fn export_unchanged(bencher: Bencher) {
    let fixture = fixture();
    let cache = LocalCache::new(fixture.warm.path());
    bencher.bench(|| {
        let report = cache
            .export(&fixture.export, "build", FormatOptions::default())
            .unwrap();
        assert_eq!(report.blobs_written, 0);
    });
}

/// Import (index.json, manifest, config) and look up every step key.
#[divan::bench(sample_count = 100)]
fn import_lookup(bencher: Bencher) {
    let fixture = fixture();
    let cache = LocalCache::new(fixture.warm.path());
    bencher.bench(|| {
        let import = cache.import(&ImportSelector::All);
        for record in &fixture.export.records {
            assert!(import.index().lookup(&record.key).is_some());
        }
    });
}

/// Import, then fetch (copy and verify) the 4 layers of the last step.
#[divan::bench(sample_count = 10)]
fn import_and_fetch_one_hit(bencher: Bencher) {
    let fixture = fixture();
    let cache = LocalCache::new(fixture.warm.path());
    let last = &fixture.export.records[N_RECORDS - 1].key;
    bencher
        .with_inputs(|| tempfile::tempdir().unwrap())
        .bench_values(|dest| {
            let import = cache.import(&ImportSelector::All);
            let hit = import.index().lookup(last).unwrap();
            for (i, layer) in hit.layers.iter().enumerate() {
                assert!(import.fetch_layer_to(layer, &dest.path().join(i.to_string())));
            }
            dest
        });
}
