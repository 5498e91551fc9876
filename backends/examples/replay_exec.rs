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

use std::process::ExitCode;

use cuedag_sandbox::{ExecSpec, Mount, Sandbox};

/// The recorded exec with a fresh writable layer under `scratch` and
/// fresh, empty cache mounts under `cache_root` (a cold run).
fn fresh(
    mut spec: ExecSpec,
    scratch: &std::path::Path,
    cache_root: &std::path::Path,
) -> Result<ExecSpec, String> {
    spec.upper = scratch.join("upper");
    spec.work = scratch.join("work");
    for dir in [&spec.upper, &spec.work] {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    }
    for (index, mount) in spec.mounts.iter_mut().enumerate() {
        if let Mount::Cache { host_dir, .. } = mount {
            *host_dir = cache_root.join(format!("cache-{index}"));
        }
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
            .filter_map(|line| serde_json::from_str::<ExecSpec>(line).ok())
            .find(|spec| spec.args.iter().any(|arg| arg == word)),
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
    let spec = match fresh(recorded, scratch.path(), std::path::Path::new(cache_root)) {
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
