//! `core.#Pull`, `#Push` and `#Export` through `cuedag-oci`.

use std::fs;
use std::path::PathBuf;

use cuedag_evaluator::plan::TaskValue;
use cuedag_oci::{Credentials, Platform, PullOptions, Reference, ResolveMode};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::lazy::{BlobInfo, LazySource};
use super::store::{io_error, Snapshot};
use super::tree::{components, copy_tree, ensure_parents, Filter, StackView};
use super::{blocking, failed, opt_str, secret_text, str_field, LocalBackend};
use crate::backend::TaskContext;
use crate::events::Level;
use crate::BackendError;

fn platform(context: &TaskContext) -> Result<Platform, BackendError> {
    match &context.session.platform {
        Some(text) => Platform::parse(text).map_err(|error| failed(error.to_string())),
        None => Ok(Platform::host()),
    }
}

fn credentials(
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<Option<Credentials>, BackendError> {
    let Some(auth) = inputs.get("auth").filter(|auth| auth.as_struct().is_some()) else {
        return Ok(None);
    };
    let username = str_field(auth, "username")?;
    let secret = match auth.get("secret") {
        Some(TaskValue::Secret(id)) => secret_text(context, id)?,
        _ => return Err(failed("field `auth.secret` must be a dagger.#Secret")),
    };
    Ok(Some(Credentials::new(username, secret)))
}

fn parse_ref(text: &str) -> Result<Reference, BackendError> {
    Reference::parse(text).map_err(|error| failed(format!("failed to parse ref {text}: {error}")))
}

/// `core.#Pull`.
pub async fn pull(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let source = str_field(inputs, "source")?;
    let reference = parse_ref(source)?;
    let resolve_mode = match opt_str(inputs, "resolveMode").unwrap_or("default") {
        "forcePull" => ResolveMode::ForcePull,
        "preferLocal" => ResolveMode::PreferLocal,
        _ => ResolveMode::Default,
    };
    let credentials = credentials(inputs, context)?;
    // Without credentials the layers are lazy: only the manifest and config
    // are fetched now, each layer when a task needs its files (the
    // registry client can fetch it again later without the task's auth).
    let lazy = credentials.is_none();
    let options = PullOptions {
        platform: platform(context)?,
        credentials,
        resolve_mode,
        metadata_only: lazy,
    };
    let client = backend.registry()?;
    // A pull whose reference still resolves to the manifest of an earlier
    // pull reuses that pull's outputs (one manifest request, no blobs).
    let key = super::step_key(
        "Pull",
        &TaskValue::structure([
            ("source", TaskValue::string(reference.to_string())),
            ("platform", TaskValue::string(options.platform.to_string())),
        ]),
    );
    let record_path = backend.store().step_path(&key);
    let authenticated = options.credentials.is_some();
    let reuse = !authenticated && !context.session.no_cache;
    if reuse && options.resolve_mode == ResolveMode::PreferLocal {
        if let Some(outputs) = backend.load_record(&record_path) {
            return Ok(outputs);
        }
    }
    let recorded_warning =
        || format!("registry unreachable; using the image `{reference}` recorded in the store");
    if reuse && options.resolve_mode != ResolveMode::ForcePull {
        if let Ok(resolved) = client.resolve(&reference, &options).await {
            let tag = resolved.manifest_digest.to_string();
            if let Some(outputs) = backend.load_tagged_record(&record_path, &tag) {
                if resolved.source == "store" {
                    context.log(Level::Warn, &recorded_warning());
                }
                return Ok(outputs);
            }
        }
    }
    let image = client
        .pull(&reference, &options)
        .await
        .map_err(|error| failed(error.to_string()))?;
    if image.source == "store" {
        context.log(Level::Warn, &recorded_warning());
    }
    let mut names = Vec::new();
    let mut lazy_layers = Vec::new();
    for layer in &image.layers {
        let name = layer
            .diff_id
            .as_ref()
            .unwrap_or(&layer.digest)
            .hex()
            .to_string();
        if lazy && !backend.store().layer_path(&name).is_dir() {
            let blob = BlobInfo {
                digest: layer.digest.to_string(),
                size: layer.size,
                media_type: layer.media_type.clone(),
                diff_id: layer.diff_id.as_ref().map(ToString::to_string),
            };
            let reference = image.reference.to_string();
            lazy_layers.push((name.clone(), vec![LazySource::Image { reference, blob }]));
        } else if !backend.store().layer_path(&name).is_dir() {
            let temp = backend.store().temp_dir("pull-")?;
            let dest = temp.path().join("layer");
            cuedag_oci::layer::extract_blob_async(
                client.store().clone(),
                layer.digest.clone(),
                dest.clone(),
            )
            .await
            .map_err(|error| failed(error.to_string()))?;
            backend.store().commit_layer_as(&dest, &name)?;
        }
        names.push(name);
    }
    backend.register_lazy(&lazy_layers)?;
    let output = backend.fs_value(Snapshot { layers: names })?;
    let raw: Value = serde_json::from_slice(&image.raw_config).unwrap_or(Value::Null);
    let config = raw
        .get("config")
        .and_then(Value::as_object)
        .map(image_config_from_oci)
        .unwrap_or_else(TaskValue::empty_struct);
    let outputs = TaskValue::structure([
        ("output", output),
        ("digest", TaskValue::string(image.digest.to_string())),
        ("config", config),
    ]);
    if !authenticated {
        backend.save_record(
            &record_path,
            "Pull",
            &image.manifest_digest.to_string(),
            &outputs,
        )?;
    }
    Ok(outputs)
}

fn json_to_value(value: &Value) -> TaskValue {
    super::from_json(value)
}

fn empty_json(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    }
}

/// OCI config (`Env`, `WorkingDir`, …) → `#ImageConfig` (`env` as a map).
pub fn image_config_from_oci(config: &Map<String, Value>) -> TaskValue {
    let mut out = IndexMap::new();
    for (oci, ours) in FIELDS {
        let Some(value) = config.get(*oci).filter(|value| !empty_json(value)) else {
            continue;
        };
        let converted = match *ours {
            "env" => {
                let mut env = IndexMap::new();
                for item in value.as_array().into_iter().flatten() {
                    if let Some(text) = item.as_str() {
                        let (key, val) = text.split_once('=').unwrap_or((text, ""));
                        env.insert(key.to_string(), TaskValue::string(val));
                    }
                }
                TaskValue::Struct(env)
            }
            "healthcheck" => {
                let mut check = IndexMap::new();
                for (oci_key, our_key) in HEALTH_FIELDS {
                    if let Some(value) = value.get(*oci_key).filter(|v| !empty_json(v)) {
                        check.insert(our_key.to_string(), json_to_value(value));
                    }
                }
                TaskValue::Struct(check)
            }
            _ => json_to_value(value),
        };
        out.insert(ours.to_string(), converted);
    }
    TaskValue::Struct(out)
}

const FIELDS: &[(&str, &str)] = &[
    ("User", "user"),
    ("ExposedPorts", "expose"),
    ("Env", "env"),
    ("Entrypoint", "entrypoint"),
    ("Cmd", "cmd"),
    ("Volumes", "volume"),
    ("WorkingDir", "workdir"),
    ("Labels", "label"),
    ("StopSignal", "stopsignal"),
    ("Healthcheck", "healthcheck"),
    ("ArgsEscaped", "argsescaped"),
    ("OnBuild", "onbuild"),
    ("StopTimeout", "stoptimeout"),
    ("Shell", "shell"),
];

const HEALTH_FIELDS: &[(&str, &str)] = &[
    ("Test", "test"),
    ("Interval", "interval"),
    ("Timeout", "timeout"),
    ("StartPeriod", "startperiod"),
    ("Retries", "retries"),
];

fn to_json(value: &TaskValue) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `#ImageConfig` → OCI config object (`env` back to a `KEY=VALUE` list).
pub fn image_config_to_oci(config: Option<&TaskValue>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(fields) = config.and_then(TaskValue::as_struct) else {
        return out;
    };
    for (oci, ours) in FIELDS {
        let Some(value) = fields.get(*ours) else {
            continue;
        };
        if matches!(value, TaskValue::Declared(_)) {
            continue;
        }
        let converted = match *ours {
            "env" => Value::Array(
                value
                    .as_struct()
                    .into_iter()
                    .flatten()
                    .filter_map(|(key, val)| Some(json!(format!("{key}={}", val.as_str()?))))
                    .collect(),
            ),
            "healthcheck" => {
                let mut check = Map::new();
                for (oci_key, our_key) in HEALTH_FIELDS {
                    if let Some(v) = value.get(our_key) {
                        check.insert(oci_key.to_string(), to_json(v));
                    }
                }
                Value::Object(check)
            }
            _ => to_json(value),
        };
        out.insert(oci.to_string(), converted);
    }
    out
}

/// Packs the merged `input` FS into one gzip layer blob in the store.
async fn pack_input(
    backend: &LocalBackend,
    inputs: &TaskValue,
) -> Result<cuedag_oci::PackedLayer, BackendError> {
    let layers = backend
        .store()
        .layer_paths(&backend.fs_field(inputs, "input")?);
    let temp = backend.store().temp_dir("pack-")?;
    let blobs = backend.registry()?.store().clone();
    let dir = temp.path().join("tree");
    blocking(move || {
        fs::create_dir(&dir).map_err(io_error("creating a pack directory"))?;
        let view = StackView::new(&layers);
        copy_tree(&view, &mut Vec::new(), &dir, &Filter::default(), "")?;
        let packed = cuedag_oci::layer::pack_to_store(&blobs, &dir, true)
            .map_err(|error| failed(error.to_string()))?;
        drop(temp);
        Ok(packed)
    })
    .await
}

/// `core.#Push`: a single-layer image of `input` plus `config`.
pub async fn push(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let dest = parse_ref(str_field(inputs, "dest")?)?;
    let platform = platform(context)?;
    let packed = pack_input(backend, inputs).await?;
    let config = cuedag_oci::image::config_json(
        &platform,
        &image_config_to_oci(inputs.get("config")),
        std::slice::from_ref(&packed.diff_id),
        None,
    );
    let image = cuedag_oci::PushImage {
        config,
        layers: vec![packed.info()],
        docker_media_types: false,
    };
    let credentials = credentials(inputs, context)?;
    let digest = backend
        .registry()?
        .push_image(&dest, &image, credentials.as_ref())
        .await
        .map_err(|error| failed(error.to_string()))?;
    Ok(TaskValue::structure([(
        "result",
        TaskValue::string(dest.name_at(&digest)),
    )]))
}

/// `core.#Export`: an image archive of `input` plus `config`, as the only
/// file of the output FS.
pub async fn export(
    backend: &LocalBackend,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    let format =
        cuedag_oci::export::ArchiveFormat::parse(opt_str(inputs, "type").unwrap_or("docker"))
            .map_err(|_| failed("unsupported export type"))?;
    let tag = parse_ref(str_field(inputs, "tag")?)?;
    let path = opt_str(inputs, "path").unwrap_or("/image.tar").to_string();
    let packed = pack_input(backend, inputs).await?;
    let config = cuedag_oci::image::config_json(
        &platform(context)?,
        &image_config_to_oci(inputs.get("config")),
        std::slice::from_ref(&packed.diff_id),
        None,
    );
    let blobs = backend.registry()?.store().clone();
    let store = backend.store().clone();
    let (name, info) = blocking(move || {
        let temp = store.temp_dir("export-")?;
        let layer = temp.path().join("layer");
        fs::create_dir(&layer).map_err(io_error("creating an export layer"))?;
        let comps = components(&path);
        if comps.is_empty() {
            return Err(failed(format!("invalid export path \"{path}\"")));
        }
        let no_layers: Vec<PathBuf> = Vec::new();
        ensure_parents(&StackView::new(&no_layers), &layer, &comps)?;
        let file_path = super::tree::join(&layer, &comps);
        let file = fs::File::create(&file_path).map_err(io_error("creating the image archive"))?;
        let info = cuedag_oci::export::write_archive(
            &blobs,
            std::io::BufWriter::new(file),
            format,
            &tag,
            &config,
            &[packed.info()],
        )
        .map_err(|error| failed(error.to_string()))?;
        let name = store.commit_layer(&layer)?;
        Ok((name, info))
    })
    .await?;
    let output = backend.fs_value(Snapshot::default().with_layer(name))?;
    Ok(TaskValue::structure([
        ("imageID", TaskValue::string(info.config_digest.to_string())),
        ("output", output),
    ]))
}
