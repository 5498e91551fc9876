//! Benchmark of the `type=registry` cache against a real registry (run by
//! `benches/cache.sh` after the seed figures; needs `scripts/services up`).
//!
//! A realistic cache: 3 layers of 4 MiB (a base image, dependencies, a
//! build) and 20 further steps with a 16 KiB layer each, 24 blobs with the
//! config. Each round exports it to a new repository (every blob uploaded),
//! re-exports it unchanged (HEADs only), imports it with a fresh client and
//! store and looks every key up, then fetches the layers of one hit.
//!
//! Usage: `cache_registry [ROUNDS]` (default 5). `CUEDAG_TEST_REGISTRY`
//! overrides the registry address (default `127.0.0.1:5000`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cuedag_backends::remote_cache::RemoteCache;
use cuedag_cache::spec::{CacheSpec, Direction, Origin};
use cuedag_cache::{
    BlobSource, CacheExport, Digest, ExportLayer, ExportRecord, LayerDescriptor, StepResult,
};
use cuedag_oci::{BlobStore, DockerConfig, RegistryConfig};

const BIG: usize = 4 << 20;
const SMALL: usize = 16 << 10;
const STEPS: usize = 20;

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

fn key(name: &str) -> Digest {
    Digest::of_bytes(format!("step:{name}").as_bytes())
}

fn layer(seed: u64, len: usize) -> ExportLayer {
    let data = bytes(seed, len);
    ExportLayer {
        descriptor: LayerDescriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            digest: Digest::of_bytes(&data),
            size: data.len() as u64,
            diff_id: None,
            created_at: Some("2022-05-01T10:00:00Z".into()),
        },
        source: BlobSource::Bytes(data),
    }
}

/// The step names, in export order.
fn names() -> Vec<String> {
    let mut names: Vec<String> = ["pull", "deps", "build"].map(String::from).to_vec();
    names.extend((0..STEPS).map(|i| format!("step-{i}")));
    names
}

fn realistic_export() -> CacheExport {
    let mut layers: Vec<ExportLayer> = (1..=3).map(|seed| layer(seed, BIG)).collect();
    let digest = |l: &ExportLayer| l.descriptor.digest.clone();
    let mut records = Vec::new();
    for (i, name) in ["pull", "deps", "build"].iter().enumerate() {
        records.push(ExportRecord {
            key: key(name),
            inputs: if i == 0 {
                vec![]
            } else {
                vec![vec![key(["pull", "deps"][i - 1])]]
            },
            result: Some(StepResult {
                chain: layers[..=i].iter().map(digest).collect(),
                created_at: Some(format!("2022-05-01T10:00:0{i}Z")),
            }),
            outputs: None,
        });
    }
    for i in 0..STEPS {
        let own = layer(100 + i as u64, SMALL);
        let mut chain: Vec<Digest> = layers[..3].iter().map(digest).collect();
        chain.push(digest(&own));
        layers.push(own);
        records.push(ExportRecord {
            key: key(&format!("step-{i}")),
            inputs: vec![vec![key("build")]],
            result: Some(StepResult {
                chain,
                created_at: Some("2022-05-01T10:01:00Z".into()),
            }),
            outputs: Some(serde_json::json!({ "exit": 0 })),
        });
    }
    CacheExport {
        layers,
        records,
        mounts: vec![],
    }
}

fn cache(direction: Direction, text: &str, store: &BlobStore) -> Result<RemoteCache, String> {
    let spec =
        CacheSpec::parse(direction, Origin::Flag, text, &|_| None).map_err(|e| e.to_string())?;
    RemoteCache::from_spec(
        &spec,
        store.clone(),
        RegistryConfig::default(),
        DockerConfig::default(),
    )
    .map_err(|e| e.to_string())
}

struct Round {
    export: Duration,
    export_blobs: usize,
    export_bytes: u64,
    reexport: Duration,
    reexport_blobs: usize,
    import: Duration,
    hits: usize,
    fetch: Duration,
    fetched_bytes: usize,
}

async fn round(addr: &str, n: usize, export: &CacheExport) -> Result<Round, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    let repo = format!(
        "{addr}/cuedag-bench/cache-{}-{nanos}-{n}",
        std::process::id()
    );
    let text = format!("type=registry,ref={repo}:main,mode=max");
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let open = |name: &str| BlobStore::open(scratch.path().join(name)).map_err(|e| e.to_string());

    let to = cache(Direction::To, &text, &open("export")?)?;
    let start = Instant::now();
    let first = to.export(export).await.map_err(|e| e.to_string())?;
    let export_time = start.elapsed();

    let to = cache(Direction::To, &text, &open("reexport")?)?;
    let start = Instant::now();
    let again = to.export(export).await.map_err(|e| e.to_string())?;
    let reexport_time = start.elapsed();
    if again.manifest != first.manifest {
        return Err("an unchanged re-export changed the manifest".into());
    }

    let from = cache(
        Direction::From,
        &format!("type=registry,ref={repo}:main"),
        &open("import")?,
    )?;
    let start = Instant::now();
    let index = from.import().await;
    let hits = names()
        .iter()
        .filter(|name| index.lookup(&key(name)).is_some())
        .count();
    let import_time = start.elapsed();
    if hits != export.records.len() {
        return Err(format!("{hits} of {} keys hit", export.records.len()));
    }

    let start = Instant::now();
    let mut fetched_bytes = 0;
    let hit = index
        .lookup(&key("step-7"))
        .ok_or("`step-7` does not hit")?;
    for layer in &hit.layers {
        fetched_bytes += from
            .fetch_layer(layer)
            .await
            .ok_or("a layer of a hit could not be fetched")?
            .len();
    }
    let fetch_time = start.elapsed();

    Ok(Round {
        export: export_time,
        export_blobs: first.blobs_written,
        export_bytes: first.bytes_written,
        reexport: reexport_time,
        reexport_blobs: again.blobs_written,
        import: import_time,
        hits,
        fetch: fetch_time,
        fetched_bytes,
    })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn run() -> Result<bool, String> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("invalid round count `{n}`"))?,
        None => 5,
    };
    let rounds = rounds.max(1);
    let addr =
        std::env::var("CUEDAG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let reachable = addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .is_some_and(|sock| {
            std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).is_ok()
        });
    if !reachable {
        return Err(format!(
            "no registry listening at {addr}: start it with `scripts/services up`"
        ));
    }
    let export = realistic_export();
    let total: u64 = export.layers.iter().map(|l| l.descriptor.size).sum();
    println!(
        "registry cache bench: {addr}, {} layers ({:.1} MiB), {} records, {rounds} rounds",
        export.layers.len(),
        total as f64 / (1 << 20) as f64,
        export.records.len()
    );
    let mut done = Vec::new();
    for n in 0..rounds {
        done.push(round(&addr, n, &export).await?);
    }
    let last = &done[done.len() - 1];
    let pick = |f: fn(&Round) -> Duration| median(done.iter().map(f).collect());
    let (export_t, reexport_t, import_t, fetch_t) = (
        pick(|r| r.export),
        pick(|r| r.reexport),
        pick(|r| r.import),
        pick(|r| r.fetch),
    );
    println!("{:<44} {:>10}  detail", "measure (median)", "time");
    println!(
        "{:<44} {:>10}  {} blobs, {:.1} MiB uploaded",
        "first export (new repository)",
        ms(export_t),
        last.export_blobs,
        last.export_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "{:<44} {:>10}  {} blobs uploaded (goal: 0, <= 50 ms)",
        "unchanged re-export",
        ms(reexport_t),
        last.reexport_blobs
    );
    println!(
        "{:<44} {:>10}  {} of {} keys hit (goal: <= 200 ms)",
        "import (fresh client) + lookup of every key",
        ms(import_t),
        last.hits,
        export.records.len()
    );
    println!(
        "{:<44} {:>10}  {:.1} MiB",
        "fetch the layers of one hit",
        ms(fetch_t),
        last.fetched_bytes as f64 / (1 << 20) as f64
    );
    let ok = done.iter().all(|r| r.reexport_blobs == 0)
        && reexport_t <= Duration::from_millis(50)
        && import_t <= Duration::from_millis(200);
    println!("goals {}", if ok { "met" } else { "NOT met" });
    Ok(ok)
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
