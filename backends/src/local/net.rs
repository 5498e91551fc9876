//! `core.#HTTPFetch` and `core.#GitPull`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use base64::Engine as _;
use cuedag_evaluator::plan::TaskValue;
use sha2::{Digest as _, Sha256, Sha512};

use super::client::import_host_dir;
use super::store::{io_error, Snapshot};
use super::tree::{components, ensure_parents, join, Filter, StackView};
use super::{blocking, bool_or, failed, int_or, opt_str, secret_text, str_field, LocalBackend};
use crate::backend::TaskContext;
use crate::BackendError;

/// `core.#HTTPFetch`: one downloaded file in a new FS.
pub async fn http_fetch(
    backend: &LocalBackend,
    inputs: &TaskValue,
) -> Result<TaskValue, BackendError> {
    let source = str_field(inputs, "source")?.to_string();
    let dest = str_field(inputs, "dest")?.to_string();
    let checksum = opt_str(inputs, "checksum").map(str::to_string);
    let expected = match &checksum {
        Some(text) => {
            let (algo, hex_digest) = text
                .split_once(':')
                .ok_or_else(|| failed(format!("invalid checksum \"{text}\"")))?;
            if !matches!(algo, "sha256" | "sha512") || hex::decode(hex_digest).is_err() {
                return Err(failed(format!("invalid checksum \"{text}\"")));
            }
            Some((algo.to_string(), hex_digest.to_ascii_lowercase()))
        }
        None => None,
    };
    let response = reqwest::get(&source)
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| failed(format!("FetchHTTP {source}: {error}")))?;
    let body = response
        .bytes()
        .await
        .map_err(|error| failed(format!("FetchHTTP {source}: {error}")))?;
    if let Some((algo, hex_digest)) = expected {
        let actual = if algo == "sha256" {
            hex::encode(Sha256::digest(&body))
        } else {
            hex::encode(Sha512::digest(&body))
        };
        if actual != hex_digest {
            return Err(failed(format!(
                "FetchHTTP {source}: digest mismatch {algo}:{actual}: expected {algo}:{hex_digest}"
            )));
        }
    }
    let mode = u32::try_from(int_or(inputs, "permissions", 0o600)).unwrap_or(0o600);
    let uid = int_or(inputs, "uid", 0);
    let gid = int_or(inputs, "gid", 0);
    let store = backend.store().clone();
    let layer = blocking(move || {
        let temp = store.temp_dir("http-")?;
        let layer = temp.path().join("layer");
        fs::create_dir(&layer).map_err(io_error("creating a layer"))?;
        let comps = components(&dest);
        if comps.is_empty() {
            return Err(failed(format!("invalid dest \"{dest}\"")));
        }
        let none: Vec<PathBuf> = Vec::new();
        ensure_parents(&StackView::new(&none), &layer, &comps)?;
        let target = join(&layer, &comps);
        fs::write(&target, &body).map_err(io_error(format!("writing {dest}")))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io_error(format!("chmod {dest}")))?;
        if uid != 0 && gid != 0 {
            std::os::unix::fs::lchown(&target, u32::try_from(uid).ok(), u32::try_from(gid).ok())
                .map_err(io_error(format!("chown {dest}")))?;
        }
        store.commit_layer(&layer)
    })
    .await?;
    let output = backend.fs_value(Snapshot::default().with_layer(layer))?;
    Ok(TaskValue::structure([("output", output)]))
}

/// `core.#GitPull`: a shallow fetch of `ref` with the host's git.
pub async fn git_pull(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let remote = str_field(inputs, "remote")?.to_string();
    let reference = str_field(inputs, "ref")?.to_string();
    let keep_git_dir = bool_or(inputs, "keepGitDir", false);
    let mut url = remote.clone();
    let mut config: Vec<(String, String)> = Vec::new();
    if let Some(auth) = inputs.get("auth").filter(|auth| auth.as_struct().is_some()) {
        let secret = |name: &str| match auth.get(name) {
            Some(TaskValue::Secret(id)) => secret_text(context, id).map(Some),
            _ => Ok(None),
        };
        if let (Some(user), Some(password)) = (opt_str(auth, "username"), secret("password")?) {
            if let Some((scheme, rest)) = url.split_once("://") {
                url = format!("{scheme}://{user}:{}@{rest}", password.trim());
            }
        } else if let Some(token) = secret("authToken")? {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            config.push((
                "http.extraHeader".into(),
                format!("Authorization: basic {basic}"),
            ));
        } else if let Some(header) = secret("authHeader")? {
            config.push((
                "http.extraHeader".into(),
                format!("Authorization: {header}"),
            ));
        }
    }
    let temp = backend.store().temp_dir("git-")?;
    let checkout = temp.path().join("checkout");
    fs::create_dir(&checkout).map_err(io_error("creating a git checkout"))?;
    let git = |args: &[&str]| {
        let mut command = tokio::process::Command::new("git");
        command
            .args(args)
            .current_dir(&checkout)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_COUNT", config.len().to_string())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (i, (key, value)) in config.iter().enumerate() {
            command
                .env(format!("GIT_CONFIG_KEY_{i}"), key)
                .env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        command
    };
    let shown = format!("GitPull {remote}@{reference}");
    let steps: Vec<Vec<&str>> = vec![
        vec!["init", "-q"],
        vec!["fetch", "-q", "--depth", "1", &url, &reference],
        vec![
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "-q",
            "FETCH_HEAD",
        ],
    ];
    for (i, args) in steps.iter().enumerate() {
        let mut output = git(args)
            .output()
            .await
            .map_err(|error| failed(format!("{shown}: running git: {error}")))?;
        if !output.status.success() && i == 1 {
            // A commit id may not be fetchable by name on every server:
            // fetch everything, then check it out.
            output = git(&[
                "fetch",
                "-q",
                &url,
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ])
            .output()
            .await
            .map_err(|error| failed(format!("{shown}: running git: {error}")))?;
            if output.status.success() {
                output = git(&[
                    "-c",
                    "advice.detachedHead=false",
                    "checkout",
                    "-q",
                    &reference,
                ])
                .output()
                .await
                .map_err(|error| failed(format!("{shown}: running git: {error}")))?;
                if output.status.success() {
                    break;
                }
            }
        }
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).replace(&url, &remote);
            return Err(failed(format!("{shown}: {}", stderr.trim())));
        }
    }
    if !keep_git_dir {
        fs::remove_dir_all(checkout.join(".git")).map_err(io_error("removing .git"))?;
    }
    let store = backend.store().clone();
    let layer = blocking(move || {
        let name = import_host_dir(&store, &checkout, &Filter::default())?;
        drop(temp);
        Ok(name)
    })
    .await?;
    let output = backend.fs_value(Snapshot::default().with_layer(layer))?;
    Ok(TaskValue::structure([("output", output)]))
}
