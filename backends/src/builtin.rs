//! Tasks that need no image or filesystem store: the client-side tasks
//! (`client.env`, `client.filesystem` reads and writes of strings and
//! secrets, `client.commands`, `client.platform`, `client.network`) and the
//! pure ones (`#Nop`, `#TrimSecret`, `#DecodeSecret`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use cuedag_evaluator::plan::{Declared, DeclaredKind, SecretId, TaskValue};
use indexmap::IndexMap;
use tokio::io::AsyncWriteExt;

use crate::backend::{Backend, BoxFuture, TaskContext, TaskRequest};
use crate::BackendError;

/// Runs the client-side and pure tasks. Declines client reads and writes of
/// `dagger.#FS` contents, which need a filesystem store.
///
/// Reads and writes of one client path are serialised by a per-path lock.
#[derive(Debug, Default, Clone)]
pub struct BuiltinTasks {
    path_locks: PathLocks,
}

/// Per-path exclusive locks for client filesystem reads and writes.
#[derive(Debug, Default, Clone)]
pub struct PathLocks {
    locks: Arc<Mutex<BTreeMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>,
}

impl PathLocks {
    /// The lock of `path` (created on first use).
    pub fn lock_for(&self, path: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(path.to_path_buf()).or_default())
    }
}

fn failed(message: impl Into<String>) -> BackendError {
    BackendError::Failed(message.into())
}

fn contents_kind(inputs: &TaskValue) -> Option<&DeclaredKind> {
    match inputs.get("contents") {
        Some(TaskValue::Declared(declared)) => Some(&declared.kind),
        _ => None,
    }
}

impl Backend for BuiltinTasks {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn handles(&self, task: &TaskRequest) -> bool {
        match task.task_type.as_str() {
            "ClientEnv" | "ClientCommand" | "ClientPlatform" | "ClientNetwork" | "Nop"
            | "TrimSecret" | "DecodeSecret" => true,
            "ClientFilesystemRead" => contents_kind(&task.inputs) != Some(&DeclaredKind::Fs),
            "ClientFilesystemWrite" => {
                !matches!(task.inputs.get("contents"), Some(TaskValue::Fs(_)))
            }
            _ => false,
        }
    }

    fn run<'a>(
        &'a self,
        task: &'a TaskRequest,
        context: &'a TaskContext,
    ) -> BoxFuture<'a, Result<TaskValue, BackendError>> {
        Box::pin(async move {
            let inputs = &task.inputs;
            match task.task_type.as_str() {
                "ClientEnv" => client_env(inputs, context, |name| std::env::var(name).ok()),
                "ClientFilesystemRead" | "ClientFilesystemWrite" => {
                    let path = client_path(string_field(inputs, "path")?, &context.session.workdir);
                    let lock = self.path_locks.lock_for(&path);
                    let _guard = lock.lock().await;
                    if task.task_type == "ClientFilesystemRead" {
                        client_read(inputs, context).await
                    } else {
                        client_write(inputs, context).await
                    }
                }
                "ClientCommand" => client_command(inputs, context).await,
                "ClientPlatform" => Ok(client_platform()),
                "ClientNetwork" => client_network(inputs, context),
                "Nop" => Ok(TaskValue::structure([(
                    "output",
                    inputs.get("input").cloned().unwrap_or(TaskValue::Null),
                )])),
                "TrimSecret" => trim_secret(inputs, context),
                "DecodeSecret" => decode_secret(inputs, context),
                other => Err(BackendError::Unsupported {
                    task_type: other.to_string(),
                }),
            }
        })
    }
}

/// `client.env`: fills each declared variable from `lookup` (§1.2).
pub fn client_env(
    inputs: &TaskValue,
    context: &TaskContext,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<TaskValue, BackendError> {
    let mut outputs = IndexMap::new();
    let Some(fields) = inputs.as_struct() else {
        return Ok(TaskValue::empty_struct());
    };
    for (name, value) in fields {
        if name == "$dagger" {
            continue;
        }
        let declared = match value {
            TaskValue::Declared(declared) => declared,
            _ => {
                return Err(failed(format!(
                    "{name}: unexpected concrete value, please use a type or set a default"
                )))
            }
        };
        match (&declared.kind, lookup(name)) {
            (DeclaredKind::String, Some(host)) => {
                outputs.insert(name.clone(), TaskValue::String(host));
            }
            (DeclaredKind::Secret, Some(host)) => {
                outputs.insert(
                    name.clone(),
                    TaskValue::Secret(context.secrets.register(host)),
                );
            }
            (DeclaredKind::String | DeclaredKind::Secret, None) => {
                if declared.optional {
                    continue;
                }
                match &declared.default {
                    Some(default) => {
                        outputs.insert(name.clone(), (**default).clone());
                    }
                    None => return Err(failed(format!("environment variable \"{name}\" not set"))),
                }
            }
            (other, _) => {
                return Err(failed(format!(
                    "{name}: unsupported type \"{}\"",
                    other.name()
                )));
            }
        }
    }
    Ok(TaskValue::Struct(outputs))
}

fn string_field<'v>(inputs: &'v TaskValue, name: &str) -> Result<&'v str, BackendError> {
    inputs
        .get(name)
        .and_then(TaskValue::as_str)
        .ok_or_else(|| failed(format!("field `{name}` must be a concrete string")))
}

/// Resolves a client path: `~` expanded, relative paths against the
/// session's working directory.
pub fn client_path(path: &str, workdir: &Path) -> PathBuf {
    let expanded = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    };
    let joined = if expanded.is_absolute() {
        expanded
    } else {
        workdir.join(expanded)
    };
    normalize(&joined)
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

async fn client_read(inputs: &TaskValue, context: &TaskContext) -> Result<TaskValue, BackendError> {
    let path = client_path(string_field(inputs, "path")?, &context.session.workdir);
    let shown = path.display().to_string();
    let kind = match inputs.get("contents") {
        Some(TaskValue::Declared(declared)) => declared.kind.clone(),
        Some(TaskValue::String(_)) => {
            return Err(failed(
                "unexpected concrete value in `contents`, please use a type (string, dagger.#Secret or dagger.#FS) instead",
            ))
        }
        Some(other) => return Err(failed(format!("unsupported type \"{}\"", other.kind()))),
        None => return Err(failed("field `contents` is missing")),
    };
    if matches!(kind, DeclaredKind::Fs) {
        return Err(BackendError::Unsupported {
            task_type: "ClientFilesystemRead".into(),
        });
    }
    if !matches!(kind, DeclaredKind::String | DeclaredKind::Secret) {
        return Err(failed(format!("unsupported type \"{}\"", kind.name())));
    }
    let metadata = match tokio::fs::metadata(&path).await {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(failed(format!("path \"{shown}\" does not exist")))
        }
        Err(error) => return Err(BackendError::io(format!("reading \"{shown}\""), error)),
    };
    if metadata.is_dir() {
        return Err(failed(format!("path \"{shown}\" cannot be a directory")));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|error| BackendError::io(format!("reading \"{shown}\""), error))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let contents = match kind {
        DeclaredKind::Secret => TaskValue::Secret(context.secrets.register(text)),
        _ => TaskValue::String(text),
    };
    Ok(TaskValue::structure([("contents", contents)]))
}

fn permissions_of(inputs: &TaskValue) -> u32 {
    inputs
        .get("permissions")
        .and_then(TaskValue::as_int)
        .and_then(|mode| u32::try_from(mode).ok())
        .unwrap_or(0o644)
}

fn secret_text(context: &TaskContext, id: &SecretId) -> Result<String, BackendError> {
    context
        .secrets
        .get(id)
        .map(|secret| secret.expose().to_string())
        .ok_or_else(|| failed(format!("secret \"{}\" not found", id.0)))
}

async fn client_write(
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let path = client_path(string_field(inputs, "path")?, &context.session.workdir);
    let text = match inputs.get("contents") {
        Some(TaskValue::String(text)) => text.clone(),
        Some(TaskValue::Secret(id)) => secret_text(context, id)?,
        Some(TaskValue::Fs(_)) => {
            return Err(BackendError::Unsupported {
                task_type: "ClientFilesystemWrite".into(),
            })
        }
        Some(other) => return Err(failed(format!("unsupported type \"{}\"", other.kind()))),
        None => return Err(failed("field `contents` is missing")),
    };
    let mode = permissions_of(inputs);
    write_atomically(path, text.into_bytes(), mode).await?;
    Ok(TaskValue::empty_struct())
}

/// Writes `bytes` to `path` through a temp file in the same directory, then
/// renames it over the target, so readers never see a partial file.
async fn write_atomically(path: PathBuf, bytes: Vec<u8>, mode: u32) -> Result<(), BackendError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir)
            .map_err(|error| BackendError::io(format!("creating \"{}\"", dir.display()), error))?;
        let mut temp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|error| BackendError::io(format!("writing \"{shown}\""), error))?;
        temp.write_all(&bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|error| BackendError::io(format!("writing \"{shown}\""), error))?;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(|error| BackendError::io(format!("writing \"{shown}\""), error))?;
        temp.persist(&path)
            .map_err(|error| BackendError::io(format!("writing \"{shown}\""), error.error))?;
        Ok(())
    })
    .await
    .map_err(|error| failed(format!("write task stopped: {error}")))?
}

/// The argv of a `client.commands` entry: name, flags (sorted), then args.
pub fn command_argv(inputs: &TaskValue) -> Result<Vec<String>, BackendError> {
    let mut argv = vec![string_field(inputs, "name")?.to_string()];
    if let Some(flags) = inputs.get("flags").and_then(TaskValue::as_struct) {
        for (flag, value) in flags {
            match value {
                TaskValue::Bool(true) => argv.push(flag.clone()),
                TaskValue::Bool(false) => {}
                TaskValue::String(text) if text.is_empty() => {}
                TaskValue::String(text) => {
                    argv.push(flag.clone());
                    argv.push(text.clone());
                }
                other => {
                    return Err(failed(format!(
                        "flag `{flag}`: expected bool or string, found {}",
                        other.kind()
                    )))
                }
            }
        }
    }
    if let Some(args) = inputs.get("args").and_then(TaskValue::as_list) {
        for arg in args {
            match arg {
                TaskValue::String(text) => argv.push(text.clone()),
                other => {
                    return Err(failed(format!(
                        "args: expected string, found {}",
                        other.kind()
                    )))
                }
            }
        }
    }
    Ok(argv)
}

async fn client_command(
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let argv = command_argv(inputs)?;
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(&context.session.workdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(env) = inputs.get("env").and_then(TaskValue::as_struct) {
        for (name, value) in env {
            let text = match value {
                TaskValue::String(text) => text.clone(),
                TaskValue::Secret(id) => secret_text(context, id)?,
                other => {
                    return Err(failed(format!(
                        "env `{name}`: unsupported type \"{}\"",
                        other.kind()
                    )))
                }
            };
            command.env(name, text);
        }
    }
    let stdin = match inputs.get("stdin") {
        Some(TaskValue::String(text)) => Some(text.clone()),
        Some(TaskValue::Secret(id)) => Some(secret_text(context, id)?),
        _ => None,
    };
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            failed(format!(
                "exec: \"{}\": executable file not found in $PATH",
                argv[0]
            ))
        } else {
            BackendError::io(format!("starting `{}`", argv[0]), error)
        }
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|error| BackendError::io("writing stdin", error))?;
        drop(pipe);
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| BackendError::io(format!("running `{}`", argv[0]), error))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        for line in stderr.lines() {
            context.log(crate::events::Level::Error, line);
        }
        let code = output
            .status
            .code()
            .map_or_else(|| "signal".to_string(), |code| code.to_string());
        return Err(failed(format!(
            "command `{}` failed: exit status {code}: {}",
            argv[0],
            context.secrets.redact(stderr.trim_end())
        )));
    }
    let mut outputs = IndexMap::new();
    for (name, captured) in [("stdout", stdout), ("stderr", stderr)] {
        let wants_secret = matches!(
            inputs.get(name),
            Some(TaskValue::Declared(Declared {
                kind: DeclaredKind::Secret,
                ..
            }))
        );
        let value = if wants_secret {
            TaskValue::Secret(context.secrets.register(captured))
        } else {
            TaskValue::String(captured)
        };
        outputs.insert(name.to_string(), value);
    }
    Ok(TaskValue::Struct(outputs))
}

/// The host OS and architecture in Go's naming.
pub fn client_platform() -> TaskValue {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    TaskValue::structure([
        ("os", TaskValue::string(std::env::consts::OS)),
        ("arch", TaskValue::string(arch)),
    ])
}

fn client_network(inputs: &TaskValue, context: &TaskContext) -> Result<TaskValue, BackendError> {
    let address = string_field(inputs, "address")?;
    let path = if let Some(path) = address.strip_prefix("unix://") {
        path
    } else if address.starts_with("npipe://") {
        return Err(failed(
            "invalid socket type: npipe is only available on Windows",
        ));
    } else {
        return Err(failed("invalid socket type"));
    };
    if std::fs::symlink_metadata(path).is_err() {
        return Err(failed(format!("path \"{path}\" does not exist")));
    }
    let id = context.sockets.register(address);
    Ok(TaskValue::structure([("connect", TaskValue::Socket(id))]))
}

fn input_secret(inputs: &TaskValue, context: &TaskContext) -> Result<String, BackendError> {
    match inputs.get("input") {
        Some(TaskValue::Secret(id)) => secret_text(context, id),
        _ => Err(failed("field `input` must be a dagger.#Secret")),
    }
}

fn trim_secret(inputs: &TaskValue, context: &TaskContext) -> Result<TaskValue, BackendError> {
    let plaintext = input_secret(inputs, context)?;
    let id = context.secrets.register(plaintext.trim());
    Ok(TaskValue::structure([("output", TaskValue::Secret(id))]))
}

fn decode_secret(inputs: &TaskValue, context: &TaskContext) -> Result<TaskValue, BackendError> {
    let plaintext = input_secret(inputs, context)?;
    let format = string_field(inputs, "format")?;
    let document: serde_json::Value =
        match format {
            "json" => serde_json::from_str(&plaintext)
                .map_err(|_| failed("could not unmarshal secret"))?,
            "yaml" => serde_yaml::from_str(&plaintext)
                .map_err(|_| failed("could not unmarshal secret"))?,
            other => return Err(failed(format!("unsupported format \"{other}\""))),
        };
    Ok(TaskValue::structure([(
        "output",
        secret_tree(&document, context).unwrap_or_else(TaskValue::empty_struct),
    )]))
}

/// Mirrors a decoded document: string leaves become `{contents: #Secret}`,
/// other scalars are dropped.
fn secret_tree(document: &serde_json::Value, context: &TaskContext) -> Option<TaskValue> {
    match document {
        serde_json::Value::String(text) => Some(TaskValue::structure([(
            "contents",
            TaskValue::Secret(context.secrets.register(text.clone())),
        )])),
        serde_json::Value::Object(fields) => Some(TaskValue::Struct(
            fields
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), secret_tree(value, context)?)))
                .collect(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use cuedag_evaluator::plan::CuePath;

    use super::*;
    use crate::backend::SessionOptions;
    use crate::events::Progress;

    fn context(workdir: &Path) -> TaskContext {
        TaskContext {
            task: "t".into(),
            progress: Progress::disabled(),
            secrets: Default::default(),
            sockets: Default::default(),
            cancel: Default::default(),
            session: Arc::new(SessionOptions {
                workdir: workdir.to_path_buf(),
                ..SessionOptions::default()
            }),
        }
    }

    fn declared(kind: DeclaredKind) -> TaskValue {
        TaskValue::Declared(Declared::new(kind))
    }

    fn request(task_type: &str, inputs: TaskValue) -> TaskRequest {
        TaskRequest {
            path: CuePath::new(["client", "x"]),
            task_type: task_type.into(),
            inputs,
            origin: None,
        }
    }

    #[test]
    fn client_env_follows_the_declaration_rules() {
        let ctx = context(Path::new("/"));
        let lookup = |name: &str| match name {
            "SET" | "SECRET" | "WITH_DEFAULT" => Some(format!("value-of-{name}")),
            _ => None,
        };
        let mut optional = Declared::new(DeclaredKind::String);
        optional.optional = true;
        let mut defaulted = Declared::new(DeclaredKind::String);
        defaulted.default = Some(Box::new(TaskValue::string("dflt")));
        let inputs = TaskValue::structure([
            ("SET", declared(DeclaredKind::String)),
            ("SECRET", declared(DeclaredKind::Secret)),
            ("OPT", TaskValue::Declared(optional)),
            ("DEF", TaskValue::Declared(defaulted.clone())),
            ("WITH_DEFAULT", TaskValue::Declared(defaulted)),
        ]);
        let out = client_env(&inputs, &ctx, lookup).unwrap();
        assert_eq!(out.get("SET"), Some(&TaskValue::string("value-of-SET")));
        let Some(TaskValue::Secret(id)) = out.get("SECRET") else {
            panic!("{out:?}")
        };
        assert_eq!(ctx.secrets.get(id).unwrap().expose(), "value-of-SECRET");
        assert_eq!(out.get("OPT"), None);
        assert_eq!(out.get("DEF"), Some(&TaskValue::string("dflt")));
        assert_eq!(
            out.get("WITH_DEFAULT"),
            Some(&TaskValue::string("value-of-WITH_DEFAULT"))
        );

        let missing = TaskValue::structure([("NOPE", declared(DeclaredKind::String))]);
        assert_eq!(
            client_env(&missing, &ctx, lookup).unwrap_err().to_string(),
            "environment variable \"NOPE\" not set"
        );
        let concrete = TaskValue::structure([("FOO", TaskValue::string("x"))]);
        assert_eq!(
            client_env(&concrete, &ctx, lookup).unwrap_err().to_string(),
            "FOO: unexpected concrete value, please use a type or set a default"
        );
        let int = TaskValue::structure([("N", declared(DeclaredKind::Int))]);
        assert_eq!(
            client_env(&int, &ctx, lookup).unwrap_err().to_string(),
            "N: unsupported type \"int\""
        );
    }

    #[tokio::test]
    async fn client_read_and_write_strings_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        std::fs::write(dir.path().join("in.txt"), "hello\n").unwrap();
        let read = request(
            "ClientFilesystemRead",
            TaskValue::structure([
                ("path", TaskValue::string("./in.txt")),
                ("contents", declared(DeclaredKind::String)),
            ]),
        );
        assert!(BuiltinTasks::default().handles(&read));
        let out = BuiltinTasks::default().run(&read, &ctx).await.unwrap();
        assert_eq!(out.get("contents"), Some(&TaskValue::string("hello\n")));

        let read_secret = request(
            "ClientFilesystemRead",
            TaskValue::structure([
                ("path", TaskValue::string("in.txt")),
                ("contents", declared(DeclaredKind::Secret)),
            ]),
        );
        let out = BuiltinTasks::default()
            .run(&read_secret, &ctx)
            .await
            .unwrap();
        let Some(TaskValue::Secret(id)) = out.get("contents") else {
            panic!("{out:?}")
        };

        let write = request(
            "ClientFilesystemWrite",
            TaskValue::structure([
                ("path", TaskValue::string("sub/out.txt")),
                ("contents", TaskValue::Secret(id.clone())),
            ]),
        );
        BuiltinTasks::default().run(&write, &ctx).await.unwrap();
        let written = dir.path().join("sub/out.txt");
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "hello\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
            0o644
        );

        let write_mode = request(
            "ClientFilesystemWrite",
            TaskValue::structure([
                ("path", TaskValue::string("x.sh")),
                ("contents", TaskValue::string("#!/bin/sh\n")),
                ("permissions", TaskValue::Int(0o700)),
            ]),
        );
        BuiltinTasks::default()
            .run(&write_mode, &ctx)
            .await
            .unwrap();
        let mode = std::fs::metadata(dir.path().join("x.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        let missing = request(
            "ClientFilesystemRead",
            TaskValue::structure([
                ("path", TaskValue::string("nope")),
                ("contents", declared(DeclaredKind::String)),
            ]),
        );
        let err = BuiltinTasks::default()
            .run(&missing, &ctx)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "path \"{}\" does not exist",
                dir.path().join("nope").display()
            )
        );
        let directory = request(
            "ClientFilesystemRead",
            TaskValue::structure([
                ("path", TaskValue::string(".")),
                ("contents", declared(DeclaredKind::String)),
            ]),
        );
        let err = BuiltinTasks::default()
            .run(&directory, &ctx)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("cannot be a directory"), "{err}");

        let fs_read = request(
            "ClientFilesystemRead",
            TaskValue::structure([
                ("path", TaskValue::string(".")),
                ("contents", declared(DeclaredKind::Fs)),
            ]),
        );
        assert!(!BuiltinTasks::default().handles(&fs_read));
    }

    #[tokio::test]
    async fn client_command_builds_argv_and_captures_output() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let secret = ctx.secrets.register("s3cr3t");
        let inputs = TaskValue::structure([
            ("name", TaskValue::string("sh")),
            (
                "flags",
                TaskValue::structure([
                    (
                        "-c",
                        TaskValue::string("printf '%s|%s|%s' \"$0\" \"$TOKEN\" \"$(cat)\""),
                    ),
                    ("-x", TaskValue::Bool(false)),
                ]),
            ),
            ("args", TaskValue::List(vec![TaskValue::string("zero")])),
            (
                "env",
                TaskValue::structure([("TOKEN", TaskValue::Secret(secret))]),
            ),
            ("stdin", TaskValue::string("from-stdin")),
            ("stdout", declared(DeclaredKind::String)),
            ("stderr", declared(DeclaredKind::Secret)),
        ]);
        let out = BuiltinTasks::default()
            .run(&request("ClientCommand", inputs), &ctx)
            .await
            .unwrap();
        assert_eq!(
            out.get("stdout"),
            Some(&TaskValue::string("zero|s3cr3t|from-stdin"))
        );
        assert!(matches!(out.get("stderr"), Some(TaskValue::Secret(_))));

        let missing = TaskValue::structure([("name", TaskValue::string("no-such-program-xyz"))]);
        let err = BuiltinTasks::default()
            .run(&request("ClientCommand", missing), &ctx)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "exec: \"no-such-program-xyz\": executable file not found in $PATH"
        );

        let failing = TaskValue::structure([
            ("name", TaskValue::string("sh")),
            (
                "args",
                TaskValue::List(vec![
                    TaskValue::string("-c"),
                    TaskValue::string("echo oops >&2; exit 3"),
                ]),
            ),
        ]);
        let err = BuiltinTasks::default()
            .run(&request("ClientCommand", failing), &ctx)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "command `sh` failed: exit status 3: oops");
    }

    #[tokio::test]
    async fn pure_secret_tasks() {
        let ctx = context(Path::new("/"));
        let id = ctx.secrets.register("  padded\n");
        let out = BuiltinTasks::default()
            .run(
                &request(
                    "TrimSecret",
                    TaskValue::structure([("input", TaskValue::Secret(id))]),
                ),
                &ctx,
            )
            .await
            .unwrap();
        let Some(TaskValue::Secret(trimmed)) = out.get("output") else {
            panic!("{out:?}")
        };
        assert_eq!(ctx.secrets.get(trimmed).unwrap().expose(), "padded");

        let doc = ctx.secrets.register("a:\n  b: x\n  n: 3\n");
        let out = BuiltinTasks::default()
            .run(
                &request(
                    "DecodeSecret",
                    TaskValue::structure([
                        ("input", TaskValue::Secret(doc)),
                        ("format", TaskValue::string("yaml")),
                    ]),
                ),
                &ctx,
            )
            .await
            .unwrap();
        let Some(TaskValue::Secret(leaf)) = out.lookup(&["output", "a", "b", "contents"]) else {
            panic!("{out:?}")
        };
        assert_eq!(ctx.secrets.get(leaf).unwrap().expose(), "x");
        assert_eq!(out.lookup(&["output", "a", "n"]), None);

        let bad = ctx.secrets.register("{not json");
        let err = BuiltinTasks::default()
            .run(
                &request(
                    "DecodeSecret",
                    TaskValue::structure([
                        ("input", TaskValue::Secret(bad)),
                        ("format", TaskValue::string("json")),
                    ]),
                ),
                &ctx,
            )
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "could not unmarshal secret");

        let nop = TaskValue::structure([("input", TaskValue::Int(3))]);
        let out = BuiltinTasks::default()
            .run(&request("Nop", nop), &ctx)
            .await
            .unwrap();
        assert_eq!(out.get("output"), Some(&TaskValue::Int(3)));
        let platform = client_platform();
        assert_eq!(
            platform.get("os"),
            Some(&TaskValue::string(std::env::consts::OS))
        );
    }
}
