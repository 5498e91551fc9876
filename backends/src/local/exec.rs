//! `core.#Exec`, `#Start`, `#Stop`, `#SendSignal` in the sandbox.

use std::sync::Arc;
use std::time::Duration;

use cuedag_evaluator::plan::TaskValue;
use cuedag_sandbox::{CacheSharing, ExecSpec, Mount, OutputStream, SecretString};
use sha2::{Digest as _, Sha256};

use super::{bool_or, failed, int_or, opt_str, secret_text, string_list, LocalBackend};
use crate::backend::TaskContext;
use crate::events::Level;
use crate::BackendError;

/// Builds the sandbox spec of an exec or start (the upper and work
/// directories are filled in by the caller).
fn build_spec(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
    allow_file: bool,
) -> Result<ExecSpec, BackendError> {
    let snapshot = backend.fs_field(inputs, "input")?;
    let lowers = backend.store().layer_paths(&snapshot);
    let args = string_list(inputs, "args")?;
    let mut spec = ExecSpec::new(lowers, Default::default(), Default::default(), args);
    spec.env.extend(cuedag_sandbox::host_proxy_env());
    if let Some(env) = inputs.get("env").and_then(TaskValue::as_struct) {
        for (name, value) in env {
            match value {
                TaskValue::String(text) => spec.env.push((name.clone(), text.clone())),
                TaskValue::Secret(id) => spec
                    .secret_env
                    .push((name.clone(), SecretString::new(secret_text(context, id)?))),
                other => {
                    return Err(failed(format!(
                        "env `{name}`: unsupported type \"{}\"",
                        other.kind()
                    )))
                }
            }
        }
    }
    if let Some(workdir) = opt_str(inputs, "workdir") {
        spec.workdir = workdir.to_string();
    }
    if let Some(user) = opt_str(inputs, "user") {
        spec.user = user.to_string();
    }
    if let Some(hosts) = inputs.get("hosts").and_then(TaskValue::as_struct) {
        for (host, ip) in hosts {
            let ip = ip
                .as_str()
                .ok_or_else(|| failed(format!("hosts `{host}`: expected a string")))?;
            spec.hosts.push((host.clone(), ip.to_string()));
        }
    }
    if let Some(mounts) = inputs.get("mounts").and_then(TaskValue::as_struct) {
        for (name, mount) in mounts {
            spec.mounts
                .push(build_mount(backend, context, name, mount, allow_file)?);
        }
    }
    // Parents first.
    spec.mounts.sort_by_key(|mount| {
        mount
            .dest()
            .split('/')
            .filter(|part| !part.is_empty())
            .count()
    });
    Ok(spec)
}

fn mount_type(mount: &TaskValue) -> Option<&str> {
    if let Some(kind) = opt_str(mount, "type") {
        return Some(kind);
    }
    match mount.get("contents")? {
        TaskValue::Fs(_) => Some("fs"),
        TaskValue::Secret(_) => Some("secret"),
        TaskValue::Socket(_) => Some("socket"),
        TaskValue::String(_) => Some("file"),
        TaskValue::Struct(fields) if fields.contains_key("id") => Some("cache"),
        TaskValue::Struct(_) => Some("tmp"),
        _ => None,
    }
}

fn build_mount(
    backend: &LocalBackend,
    context: &TaskContext,
    name: &str,
    mount: &TaskValue,
    allow_file: bool,
) -> Result<Mount, BackendError> {
    let dest = opt_str(mount, "dest")
        .ok_or_else(|| failed(format!("mount \"{name}\" is not concrete")))?
        .to_string();
    let contents = mount.get("contents");
    match mount_type(mount) {
        None | Some("") => Err(failed("no mount type specified")),
        Some("cache") => {
            let cache = contents.unwrap_or(&TaskValue::Null);
            let id = opt_str(cache, "id")
                .ok_or_else(|| failed(format!("cache \"{name}\" is not set")))?;
            let sharing = match opt_str(cache, "concurrency").unwrap_or("shared") {
                "shared" => CacheSharing::Shared,
                "private" => CacheSharing::Private,
                "locked" => CacheSharing::Locked,
                _ => return Err(failed("unknown concurrency mode")),
            };
            Ok(Mount::Cache {
                dest,
                host_dir: backend.store().cache_mount_path(id),
                sharing,
            })
        }
        Some("tmp") => Ok(Mount::Tmp { dest }),
        Some("socket") => {
            let Some(TaskValue::Socket(id)) = contents else {
                return Err(failed(format!("mount \"{name}\": socket is not set")));
            };
            let address = context
                .sockets
                .get(id)
                .ok_or_else(|| failed(format!("socket \"{}\" not found", id.0)))?;
            let host_path = address
                .strip_prefix("unix://")
                .ok_or_else(|| failed("invalid socket type"))?;
            Ok(Mount::Socket {
                dest,
                host_path: host_path.into(),
            })
        }
        Some("fs") => {
            let Some(TaskValue::Fs(fs)) = contents else {
                return Err(failed(format!(
                    "invalid FS at path \"mounts.{name}.contents\": FS is not set"
                )));
            };
            let lowers = backend.store().layer_paths(&backend.snapshot(fs)?);
            Ok(Mount::Fs {
                dest,
                lowers,
                source_subpath: opt_str(mount, "source").map(str::to_string),
                readonly: bool_or(mount, "ro", false),
            })
        }
        Some("secret") => {
            let Some(TaskValue::Secret(id)) = contents else {
                return Err(failed(format!("mount \"{name}\": secret is not set")));
            };
            let to_u32 = |value: i64| u32::try_from(value).unwrap_or(0);
            Ok(Mount::Secret {
                dest,
                contents: SecretString::new(secret_text(context, id)?),
                uid: to_u32(int_or(mount, "uid", 0)),
                gid: to_u32(int_or(mount, "gid", 0)),
                mode: u32::try_from(int_or(mount, "mask", 0o400)).unwrap_or(0o400),
            })
        }
        Some("file") if allow_file => {
            let text = contents
                .and_then(TaskValue::as_str)
                .ok_or_else(|| failed(format!("mount \"{name}\": contents must be a string")))?;
            Ok(Mount::File {
                dest,
                contents: text.to_string(),
                mode: u32::try_from(int_or(mount, "permissions", 0o644)).unwrap_or(0o644),
            })
        }
        Some(other) => Err(failed(format!("unsupported mount type \"{other}\""))),
    }
}

fn log_sink(context: &TaskContext) -> cuedag_sandbox::OutputSink {
    let context = context.clone();
    Arc::new(move |stream, line| {
        let level = match stream {
            OutputStream::Stdout => Level::Info,
            OutputStream::Stderr => Level::Info,
        };
        context.log(level, line);
    })
}

/// `core.#Exec`.
pub async fn exec(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let sandbox = backend.sandbox()?;
    let snapshot = backend.fs_field(inputs, "input")?;
    let mut spec = build_spec(backend, inputs, context, true)?;
    let temp = backend.store().temp_dir("exec-")?;
    spec.upper = temp.path().join("upper");
    spec.work = temp.path().join("work");
    for dir in [&spec.upper, &spec.work] {
        std::fs::create_dir(dir)
            .map_err(|error| BackendError::io("creating the exec's upper directory", error))?;
    }
    record_spec(&spec);
    sandbox
        .run(&spec, log_sink(context), &context.cancel)
        .await
        .map_err(|error| match error {
            cuedag_sandbox::ExecError::Cancelled => BackendError::Cancelled,
            other => failed(other.to_string()),
        })?;
    let store = backend.store().clone();
    let upper = spec.upper.clone();
    let layer = super::blocking(move || store.commit_layer(&upper)).await?;
    drop(temp);
    let output = backend.fs_value(snapshot.with_layer(layer))?;
    Ok(TaskValue::structure([
        ("output", output),
        ("exit", TaskValue::Int(0)),
    ]))
}

/// The variable naming a file to which every exec's sandbox spec is
/// appended as one JSON line (a debugging and benchmarking aid:
/// `benches/seed.sh` replays the seed's `go build` with
/// `backends/examples/replay_exec.rs`). Execs with secrets are never
/// recorded.
pub const DEBUG_EXEC_SPECS: &str = "CUEDAG_DEBUG_EXEC_SPECS";

fn record_spec(spec: &ExecSpec) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os(DEBUG_EXEC_SPECS) else {
        return;
    };
    if !spec.secret_env.is_empty() {
        return;
    }
    // A secret mount refuses to serialise, so such an exec is not recorded.
    let Ok(line) = serde_json::to_string(spec) else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut file) = file {
        let _ = writeln!(file, "{line}");
    }
}

/// The identity of a started container: a digest of the `#Start` task's
/// concrete fields, which `#Stop` and `#SendSignal` receive as `input`.
fn start_key(start: &TaskValue) -> String {
    fn strip(value: &TaskValue) -> TaskValue {
        match value {
            TaskValue::Struct(fields) => TaskValue::Struct(
                fields
                    .iter()
                    .filter(|(_, value)| !matches!(value, TaskValue::Declared(_)))
                    .map(|(key, value)| (key.clone(), strip(value)))
                    .collect(),
            ),
            TaskValue::List(items) => TaskValue::List(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    hex::encode(Sha256::digest(strip(start).canonical_json().as_bytes()))
}

/// `core.#Start`: starts the command and keeps its handle for `#Stop`.
pub async fn start(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let sandbox = backend.sandbox()?;
    let mut spec = build_spec(backend, inputs, context, false)?;
    let temp = backend.store().temp_dir("start-")?;
    spec.upper = temp.path().join("upper");
    spec.work = temp.path().join("work");
    for dir in [&spec.upper, &spec.work] {
        std::fs::create_dir(dir)
            .map_err(|error| BackendError::io("creating the start's upper directory", error))?;
    }
    let running = sandbox
        .start(&spec, log_sink(context))
        .await
        .map_err(|error| failed(error.to_string()))?;
    // The upper and work directories live as long as the process.
    backend
        .started
        .lock()
        .await
        .insert(start_key(inputs), (running, temp));
    Ok(TaskValue::empty_struct())
}

fn start_input(inputs: &TaskValue) -> Result<&TaskValue, BackendError> {
    match inputs.get("input") {
        Some(start @ TaskValue::Struct(_)) => Ok(start),
        _ => Err(failed("field `input` must be a `core.#Start`")),
    }
}

/// `core.#Stop`.
pub async fn stop(backend: &LocalBackend, inputs: &TaskValue) -> Result<TaskValue, BackendError> {
    let key = start_key(start_input(inputs)?);
    let (running, _temp) = backend
        .started
        .lock()
        .await
        .remove(&key)
        .ok_or_else(|| failed("failed to stop: the container was not started in this run"))?;
    let timeout = Duration::from_nanos(u64::try_from(int_or(inputs, "timeout", 0)).unwrap_or(0));
    let code = running
        .stop(timeout)
        .await
        .map_err(|error| failed(format!("failed to stop: {error}")))?;
    Ok(TaskValue::structure([(
        "exit",
        TaskValue::Int(i64::from(code.clamp(0, 255))),
    )]))
}

/// `core.#SendSignal`.
pub async fn send_signal(
    backend: &LocalBackend,
    inputs: &TaskValue,
) -> Result<TaskValue, BackendError> {
    let key = start_key(start_input(inputs)?);
    let signal = int_or(inputs, "signal", 15);
    let started = backend.started.lock().await;
    let (running, _) = started.get(&key).ok_or_else(|| {
        failed(format!(
            "failed to send signal {signal}: the container was not started in this run"
        ))
    })?;
    running
        .signal(i32::try_from(signal).unwrap_or(15))
        .await
        .map_err(|error| failed(format!("failed to send signal {signal}: {error}")))?;
    Ok(TaskValue::empty_struct())
}
