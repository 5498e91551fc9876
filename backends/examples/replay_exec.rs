//! Replays one exec recorded by the local backend (`CUEDAG_DEBUG_EXEC_SPECS`)
//! directly in the sandbox: the same layers, argv, env, user, workdir and
//! mounts, without the CUE evaluation, the plan engine or the step cache
//! around it. Cache mounts get fresh empty directories under CACHE_ROOT
//! (a cold run, as with an empty store). Used by `benches/seed.sh` for its
//! "direct" column.
//!
//!   replay_exec SPECS_FILE WORD CACHE_ROOT
//!
//! runs the last recorded exec whose argv contains WORD and exits with its
//! status.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use cuedag_sandbox::{CacheSharing, ExecSpec, Mount, Network, Sandbox};
use serde_json::Value;

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|pair| {
                    let pair = strings(pair);
                    Some((pair.first()?.clone(), pair.get(1)?.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn spec_from(
    recorded: &Value,
    scratch: &std::path::Path,
    cache_root: &std::path::Path,
) -> Result<ExecSpec, String> {
    let lowers = strings(&recorded["lowers"])
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let upper = scratch.join("upper");
    let work = scratch.join("work");
    for dir in [&upper, &work] {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    }
    let mut spec = ExecSpec::new(lowers, upper, work, strings(&recorded["args"]));
    spec.env = pairs(&recorded["env"]);
    spec.hosts = pairs(&recorded["hosts"]);
    spec.workdir = text(recorded, "workdir");
    spec.user = text(recorded, "user");
    spec.hostname = text(recorded, "hostname");
    if text(recorded, "network") == "None" {
        spec.network = Network::None;
    }
    let empty = Vec::new();
    for (index, mount) in recorded["mounts"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let dest = text(mount, "dest");
        spec.mounts.push(match text(mount, "type").as_str() {
            "cache" => Mount::Cache {
                dest,
                host_dir: cache_root.join(format!("cache-{index}")),
                sharing: match text(mount, "sharing").as_str() {
                    "Private" => CacheSharing::Private,
                    "Locked" => CacheSharing::Locked,
                    _ => CacheSharing::Shared,
                },
            },
            "tmp" => Mount::Tmp { dest },
            "socket" => Mount::Socket {
                dest,
                host_path: PathBuf::from(text(mount, "host_path")),
            },
            "fs" => Mount::Fs {
                dest,
                lowers: strings(&mount["lowers"])
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
                source_subpath: mount["source"].as_str().map(str::to_string),
                readonly: mount["readonly"].as_bool().unwrap_or(false),
            },
            "file" => Mount::File {
                dest,
                contents: text(mount, "contents"),
                mode: mount["mode"]
                    .as_u64()
                    .and_then(|mode| u32::try_from(mode).ok())
                    .unwrap_or(0o644),
            },
            other => return Err(format!("unknown mount type `{other}`")),
        });
    }
    Ok(spec)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [specs, word, cache_root] = args.as_slice() else {
        eprintln!("usage: replay_exec SPECS_FILE WORD CACHE_ROOT");
        return ExitCode::from(2);
    };
    let recorded = match std::fs::read_to_string(specs) {
        Ok(text) => text
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|spec| strings(&spec["args"]).iter().any(|arg| arg == word)),
        Err(error) => {
            eprintln!("{specs}: {error}");
            return ExitCode::from(2);
        }
    };
    let Some(recorded) = recorded else {
        eprintln!("no recorded exec has `{word}` in its argv");
        return ExitCode::from(2);
    };
    let scratch = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("temporary directory: {error}");
            return ExitCode::from(2);
        }
    };
    let spec = match spec_from(&recorded, scratch.path(), std::path::Path::new(cache_root)) {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        let sandbox = Sandbox::new().map_err(|error| error.to_string())?;
        let cancel = tokio_util::sync::CancellationToken::new();
        sandbox
            .run(&spec, cuedag_sandbox::discard_output(), &cancel)
            .await
            .map_err(|error| error.to_string())
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}
