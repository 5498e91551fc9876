//! The filesystem tasks: `#Copy`, `#Mkdir`, `#WriteFile`, `#ReadFile`,
//! `#Rm`, `#Merge`, `#Diff`, `#NewSecret`. Each FS-producing task writes at
//! most one new layer on top of its input stack.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cuedag_evaluator::plan::TaskValue;
use globset::GlobBuilder;

use super::store::{io_error, Snapshot, Store};
use super::tree::{
    components, copy_attributes, copy_tree, ensure_dir, ensure_parents, join, make_whiteout,
    place_entry, Filter, StackView,
};
use super::{blocking, bool_or, failed, int_or, str_field, string_list, LocalBackend};
use crate::backend::TaskContext;
use crate::BackendError;

/// Runs one filesystem task.
pub async fn run(
    backend: &LocalBackend,
    task_type: &str,
    inputs: &TaskValue,
    context: &TaskContext,
) -> Result<TaskValue, BackendError> {
    match task_type {
        "Merge" => {
            let mut stacks = Vec::new();
            for item in inputs
                .get("inputs")
                .and_then(TaskValue::as_list)
                .unwrap_or_default()
            {
                match item {
                    TaskValue::Fs(fs) => stacks.push(backend.snapshot(fs)?),
                    _ => return Err(failed("field `inputs` must be a list of dagger.#FS")),
                }
            }
            let output = backend.fs_value(Snapshot::concat(&stacks))?;
            Ok(TaskValue::structure([("output", output)]))
        }
        "ReadFile" | "NewSecret" => {
            let snapshot = backend.fs_field(inputs, "input")?;
            let layers = backend.store().layer_paths(&snapshot);
            let path = str_field(inputs, "path")?.to_string();
            let shown = path.clone();
            let bytes = blocking(move || {
                cuedag_sandbox::read_stack_file(&layers, &path)
                    .map_err(|error| failed(format!("ReadFile {path}: {error}")))
            })
            .await?
            .ok_or_else(|| {
                failed(format!(
                    "ReadFile {shown}: open {shown}: no such file or directory"
                ))
            })?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if task_type == "ReadFile" {
                return Ok(TaskValue::structure([(
                    "contents",
                    TaskValue::String(text),
                )]));
            }
            let text = if bool_or(inputs, "trimSpace", true) {
                text.trim().to_string()
            } else {
                text
            };
            let id = context.secrets.register(text);
            Ok(TaskValue::structure([("output", TaskValue::Secret(id))]))
        }
        "Diff" => {
            let lower = backend.fs_field(inputs, "lower")?;
            let upper = backend.fs_field(inputs, "upper")?;
            let output = if upper.layers.starts_with(&lower.layers) {
                Snapshot {
                    layers: upper.layers[lower.layers.len()..].to_vec(),
                }
            } else {
                let store = backend.store().clone();
                let layer = blocking(move || diff_layer(&store, &lower, &upper)).await?;
                Snapshot::default().with_layer(layer)
            };
            Ok(TaskValue::structure([(
                "output",
                backend.fs_value(output)?,
            )]))
        }
        _ => {
            let input = match task_type {
                "Copy" | "Mkdir" | "WriteFile" | "Rm" => backend.fs_field(inputs, "input")?,
                other => {
                    return Err(BackendError::Unsupported {
                        task_type: other.to_string(),
                    })
                }
            };
            let contents = if task_type == "Copy" {
                Some(backend.fs_field(inputs, "contents")?)
            } else {
                None
            };
            let store = backend.store().clone();
            let task_type = task_type.to_string();
            let inputs = inputs.clone();
            let base = input.clone();
            let layer = blocking(move || {
                let temp = store.temp_dir("op-")?;
                let layer = temp.path().join("layer");
                fs::create_dir(&layer).map_err(io_error("creating a layer"))?;
                let lowers = store.layer_paths(&base);
                let view = StackView::new(&lowers);
                match task_type.as_str() {
                    "Copy" => {
                        let contents = contents.unwrap_or_default();
                        let sources = store.layer_paths(&contents);
                        copy(&StackView::new(&sources), &view, &layer, &inputs)?
                    }
                    "Mkdir" => mkdir(&view, &layer, &inputs)?,
                    "WriteFile" => write_file(&view, &layer, &inputs)?,
                    _ => rm(&view, &layer, &inputs)?,
                }
                store.commit_layer(&layer)
            })
            .await?;
            let output = backend.fs_value(input.with_layer(layer))?;
            Ok(TaskValue::structure([("output", output)]))
        }
    }
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The paths (component lists) in `view` matching `pattern`, whose
/// components may hold wildcards.
fn expand(view: &StackView<'_>, pattern: &str) -> Result<Vec<Vec<String>>, BackendError> {
    let mut matches: Vec<Vec<String>> = vec![Vec::new()];
    for comp in components(pattern) {
        let mut next = Vec::new();
        for base in &matches {
            if has_wildcard(&comp) {
                let glob = GlobBuilder::new(&comp)
                    .literal_separator(true)
                    .build()
                    .map_err(|error| failed(format!("invalid pattern `{pattern}`: {error}")))?
                    .compile_matcher();
                let resolved = view.resolve(&base.join("/"), true);
                for name in view.list(&resolved).into_keys() {
                    if glob.is_match(&name) {
                        let mut path = base.clone();
                        path.push(name);
                        next.push(path);
                    }
                }
            } else {
                let mut path = base.clone();
                path.push(comp.clone());
                next.push(path);
            }
        }
        matches = next;
    }
    Ok(matches)
}

/// `#Copy`: `source` of `contents` into `dest` of the input (§3.3).
fn copy(
    source_view: &StackView<'_>,
    view: &StackView<'_>,
    layer: &Path,
    inputs: &TaskValue,
) -> Result<(), BackendError> {
    let source = super::opt_str(inputs, "source").unwrap_or("/");
    let dest = super::opt_str(inputs, "dest").unwrap_or("/");
    let filter = Filter::new(
        &string_list(inputs, "include")?,
        &string_list(inputs, "exclude")?,
    )?;
    let sources: Vec<Vec<String>> = if has_wildcard(source) {
        expand(source_view, source)?
    } else {
        vec![source_view.resolve(source, true)]
    };
    let sources: Vec<(Vec<String>, super::tree::Entry)> = sources
        .into_iter()
        .filter_map(|comps| {
            let entry = source_view.lookup(&comps)?;
            Some((comps, entry))
        })
        .collect();
    if sources.is_empty() {
        return Err(failed(format!(
            "failed to copy: source \"{source}\": no such file or directory"
        )));
    }
    let dest_comps = view.resolve(dest, true);
    let dest_is_dir = dest.ends_with('/')
        || sources.len() > 1
        || view
            .lookup(&dest_comps)
            .is_some_and(|entry| entry.meta.is_dir());
    for (mut comps, entry) in sources {
        if entry.meta.is_dir() {
            ensure_parents(view, layer, &dest_comps)?;
            let target = join(layer, &dest_comps);
            let existed = view.lookup(&dest_comps).filter(|e| e.meta.is_dir());
            if fs::symlink_metadata(&target).is_err() {
                fs::create_dir_all(&target)
                    .map_err(io_error(format!("creating `{}`", target.display())))?;
            }
            copy_tree(source_view, &mut comps, &target, &filter, "")?;
            copy_attributes(&target, &existed.unwrap_or(entry).meta)?;
        } else {
            let name = comps.last().cloned().unwrap_or_default();
            if !filter.keeps(&name) {
                continue;
            }
            let mut target_comps = dest_comps.clone();
            if dest_is_dir || target_comps.is_empty() {
                ensure_dir(view, layer, &target_comps, 0o755)?;
                target_comps.push(name);
            } else {
                ensure_parents(view, layer, &target_comps)?;
            }
            let target = join(layer, &target_comps);
            let _ = fs::remove_file(&target);
            place_entry(&entry, &target)?;
        }
    }
    Ok(())
}

fn mode_of(inputs: &TaskValue, name: &str, default: u32) -> u32 {
    u32::try_from(int_or(inputs, name, i64::from(default))).unwrap_or(default) & 0o7777
}

/// `#Mkdir`.
fn mkdir(view: &StackView<'_>, layer: &Path, inputs: &TaskValue) -> Result<(), BackendError> {
    let path = str_field(inputs, "path")?;
    let comps = view.resolve(path, true);
    let mode = mode_of(inputs, "permissions", 0o755);
    if comps.is_empty() || view.lookup(&comps).is_some_and(|entry| entry.meta.is_dir()) {
        return Ok(());
    }
    if !bool_or(inputs, "parents", true) {
        let parent = &comps[..comps.len() - 1];
        if !parent.is_empty() && !view.lookup(parent).is_some_and(|entry| entry.meta.is_dir()) {
            return Err(failed(format!("mkdir {path}: no such file or directory")));
        }
    }
    for depth in 1..comps.len() {
        ensure_dir(view, layer, &comps[..depth], mode)?;
    }
    let target = join(layer, &comps);
    fs::create_dir(&target).map_err(io_error(format!("mkdir {path}")))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(mode))
        .map_err(io_error(format!("chmod {path}")))?;
    Ok(())
}

/// `#WriteFile`.
fn write_file(view: &StackView<'_>, layer: &Path, inputs: &TaskValue) -> Result<(), BackendError> {
    let path = str_field(inputs, "path")?;
    let contents = match inputs.get("contents") {
        Some(TaskValue::String(text)) => text.as_bytes().to_vec(),
        Some(TaskValue::Bytes(bytes)) => bytes.clone(),
        Some(TaskValue::Declared(_)) | None => {
            return Err(failed(format!("{path}: WriteFile contents is not set:")))
        }
        Some(other) => {
            return Err(failed(format!(
                "{path}: unhandled data type in WriteFile: {}",
                other.kind()
            )))
        }
    };
    let comps = view.resolve(path, true);
    if comps.is_empty() {
        return Err(failed(format!("WriteFile {path}: is a directory")));
    }
    let parent = &comps[..comps.len() - 1];
    if !parent.is_empty() && !view.lookup(parent).is_some_and(|entry| entry.meta.is_dir()) {
        return Err(failed(format!(
            "WriteFile {path}: open {path}: no such file or directory"
        )));
    }
    ensure_parents(view, layer, &comps)?;
    let target = join(layer, &comps);
    let mut file = fs::File::create(&target).map_err(io_error(format!("WriteFile {path}")))?;
    file.write_all(&contents)
        .map_err(io_error(format!("WriteFile {path}")))?;
    fs::set_permissions(
        &target,
        fs::Permissions::from_mode(mode_of(inputs, "permissions", 0o644)),
    )
    .map_err(io_error(format!("WriteFile {path}")))?;
    Ok(())
}

/// `#Rm`: whiteouts over the matched paths.
fn rm(view: &StackView<'_>, layer: &Path, inputs: &TaskValue) -> Result<(), BackendError> {
    let path = str_field(inputs, "path")?;
    let matches = if bool_or(inputs, "allowWildcard", true) && has_wildcard(path) {
        expand(view, path)?
    } else {
        vec![view.resolve(path, false)]
    };
    let matches: Vec<Vec<String>> = matches
        .into_iter()
        .filter(|comps| !comps.is_empty() && view.lookup(comps).is_some())
        .collect();
    if matches.is_empty() {
        return Err(failed(format!(
            "Rm {path}: lstat {path}: no such file or directory"
        )));
    }
    for comps in matches {
        ensure_parents(view, layer, &comps)?;
        make_whiteout(&join(layer, &comps))?;
    }
    Ok(())
}

/// A layer holding what `upper` has that `lower` lacks or has differently.
fn diff_layer(
    store: &Store,
    lower: &Snapshot,
    upper: &Snapshot,
) -> Result<Option<String>, BackendError> {
    let lower_paths = store.layer_paths(lower);
    let upper_paths = store.layer_paths(upper);
    let lower_view = StackView::new(&lower_paths);
    let upper_view = StackView::new(&upper_paths);
    let temp = store.temp_dir("diff-")?;
    let layer = temp.path().join("layer");
    fs::create_dir(&layer).map_err(io_error("creating a diff layer"))?;
    diff_dir(&lower_view, &upper_view, &mut Vec::new(), &layer)?;
    store.commit_layer(&layer)
}

fn same_file(a: &fs::Metadata, pa: &Path, b: &fs::Metadata, pb: &Path) -> bool {
    if a.file_type() != b.file_type()
        || a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
    {
        return false;
    }
    if a.dev() == b.dev() && a.ino() == b.ino() {
        return true;
    }
    if a.file_type().is_symlink() {
        return fs::read_link(pa).ok() == fs::read_link(pb).ok();
    }
    if a.is_file() {
        return a.len() == b.len() && fs::read(pa).ok() == fs::read(pb).ok();
    }
    a.rdev() == b.rdev()
}

/// Writes the changed entries under `comps` into `out` (the diff layer's
/// directory for `comps`); returns whether anything was written.
fn diff_dir(
    lower: &StackView<'_>,
    upper: &StackView<'_>,
    comps: &mut Vec<String>,
    out: &Path,
) -> Result<bool, BackendError> {
    let mut changed = false;
    for (name, entry) in upper.list(comps) {
        comps.push(name.clone());
        let previous = lower.lookup(comps);
        let target = out.join(&name);
        if entry.meta.is_dir() {
            fs::create_dir(&target)
                .map_err(io_error(format!("creating `{}`", target.display())))?;
            let same_dir = previous.as_ref().is_some_and(|p| {
                p.meta.is_dir()
                    && p.meta.mode() == entry.meta.mode()
                    && p.meta.uid() == entry.meta.uid()
                    && p.meta.gid() == entry.meta.gid()
            });
            let inner = if previous.as_ref().is_some_and(|p| p.meta.is_dir()) {
                diff_dir(lower, upper, comps, &target)?
            } else {
                copy_tree(upper, comps, &target, &Filter::default(), "")?;
                true
            };
            if inner || !same_dir {
                copy_attributes(&target, &entry.meta)?;
                changed = true;
            } else {
                let _ = fs::remove_dir(&target);
            }
        } else {
            let unchanged = previous
                .as_ref()
                .is_some_and(|p| same_file(&p.meta, &p.path, &entry.meta, &entry.path));
            if !unchanged {
                place_entry(&entry, &target)?;
                changed = true;
            }
        }
        comps.pop();
    }
    Ok(changed)
}
