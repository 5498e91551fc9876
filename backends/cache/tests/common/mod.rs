//! Shared helpers: deterministic exports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cuedag_cache::{
    BlobSource, CacheExport, Digest, ExportLayer, ExportMount, ExportRecord, LayerDescriptor,
    StepResult,
};

/// Deterministic pseudo-random bytes (xorshift), `len` long, from `seed`.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
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

pub fn key(name: &str) -> Digest {
    Digest::of_bytes(format!("step:{name}").as_bytes())
}

pub fn layer(seed: u64, len: usize) -> ExportLayer {
    let data = bytes(seed, len);
    ExportLayer {
        descriptor: LayerDescriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            digest: Digest::of_bytes(&data),
            size: data.len() as u64,
            diff_id: Some(Digest::of_bytes(format!("diff{seed}").as_bytes())),
            created_at: Some("2022-05-01T10:00:00Z".into()),
        },
        source: BlobSource::Bytes(data),
    }
}

/// A chain of records: `names[i]` sits on the chain of `names[i-1]` plus
/// layer `seeds[i]`.
pub fn chain_export(names: &[&str], seeds: &[u64], len: usize) -> CacheExport {
    let layers: Vec<ExportLayer> = seeds.iter().map(|s| layer(*s, len)).collect();
    let mut records = Vec::new();
    for (i, name) in names.iter().enumerate() {
        records.push(ExportRecord {
            key: key(name),
            inputs: if i == 0 {
                vec![]
            } else {
                vec![vec![key(names[i - 1])]]
            },
            result: Some(StepResult {
                chain: layers[..=i]
                    .iter()
                    .map(|l| l.descriptor.digest.clone())
                    .collect(),
                created_at: Some(format!("2022-05-01T10:00:0{i}Z")),
            }),
            outputs: Some(serde_json::json!({ "step": name })),
        });
    }
    CacheExport {
        layers,
        records,
        mounts: vec![],
    }
}

/// `chain_export` plus a cache mount `go-mod` holding its own layer.
pub fn export_with_mount(
    names: &[&str],
    seeds: &[u64],
    len: usize,
    mount_seed: u64,
) -> CacheExport {
    let mut export = chain_export(names, seeds, len);
    let mount = layer(mount_seed, len);
    export.mounts.push(ExportMount {
        id: "go-mod".into(),
        layer: mount.descriptor.digest.clone(),
        created_at: Some("2022-05-01T11:00:00Z".into()),
    });
    export.layers.push(mount);
    export
}

pub fn count_blobs(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count()
}

/// Runs `f` and returns what it logged (plain text).
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, logs)
}
