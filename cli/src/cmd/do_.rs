//! `cuedag do ACTION [SUBACTION...] [flags]` (Dagger 0.2's `dagger do`).
//!
//! Flags are parsed by hand: the action words and the per-action input
//! flags are only known once the plan is loaded, and unknown flags are
//! tolerated, as in Dagger.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use cuedag_backends::{
    default_backends, Executor, Level, Progress, RunOptions, RunReport, SessionOptions,
};
use cuedag_evaluator::plan::{
    format_label, ActionNode, ActionOutput, CuePath, DeclaredKind, Plan, PlanError, TaskValue,
};
use cuedag_evaluator::{find_module_root, LoadOptions, Loader};
use tokio_util::sync::CancellationToken;

use crate::progress::{self, LogFormat};
use crate::Global;

/// Arguments of `cuedag do` (parsed by [`DoOptions::parse`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Action words and flags; run `do --help` for the list.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Reads plan sources from the filesystem for the evaluator.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn read_dir(&self, dir: &str) -> Option<Vec<(String, bool)>> {
        let dir = if dir.is_empty() { "." } else { dir };
        let entries = std::fs::read_dir(dir).ok()?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        out.sort();
        Some(out)
    }

    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Every option of `do`, from flags and `DAGGER_*` variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoOptions {
    /// Action words.
    pub words: Vec<String>,
    /// `-p/--plan`.
    pub plan: String,
    /// `-w/--with`.
    pub with: Vec<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--cache-from`.
    pub cache_from: Vec<String>,
    /// `--cache-to`.
    pub cache_to: Vec<String>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--output`.
    pub output: Option<String>,
    /// `--output-format`.
    pub output_format: Option<String>,
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--store` (local backend store directory).
    pub store: Option<String>,
    /// `-h/--help`.
    pub help: bool,
    /// `--log-format` given after `do`.
    pub log_format: Option<String>,
    /// `--log-level` given after `do`.
    pub log_level: Option<String>,
    /// `--experimental` given after `do`.
    pub experimental: bool,
    /// Other `--name[=value]` flags: action inputs.
    pub action_flags: Vec<(String, Option<String>)>,
}

fn truthy(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
        other => Err(format!("invalid boolean value \"{other}\"")),
    }
}

impl DoOptions {
    /// Parses `do`'s arguments; `env` supplies `DAGGER_*` defaults.
    pub fn parse(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DoOptions, String> {
        let mut options = DoOptions {
            plan: ".".into(),
            ..DoOptions::default()
        };
        let mut plan_flag = None;
        let mut given: BTreeSet<&'static str> = BTreeSet::new();
        let mut i = 0;
        let mut only_words = false;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if only_words || !arg.starts_with('-') || arg == "-" {
                options.words.push(arg.clone());
                continue;
            }
            if arg == "--" {
                only_words = true;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (arg.clone(), None),
            };
            let canonical: &'static str = match name.as_str() {
                "-p" | "--plan" => "plan",
                "-w" | "--with" => "with",
                "--no-cache" => "no-cache",
                "--cache-from" => "cache-from",
                "--cache-to" => "cache-to",
                "--platform" => "platform",
                "--dry-run" => "dry-run",
                "--output" => "output",
                "--output-format" => "output-format",
                "-j" | "--jobs" => "jobs",
                "--store" => "store",
                "-h" | "--help" => "help",
                "--log-format" => "log-format",
                "-l" | "--log-level" => "log-level",
                "--experimental" => "experimental",
                "--telemetry-log" => "telemetry-log",
                _ => {
                    let Some(flag) = name.strip_prefix("--") else {
                        return Err(format!(
                            "unknown shorthand flag: '{}' in {arg}",
                            name.trim_start_matches('-')
                        ));
                    };
                    let value = match inline {
                        Some(value) => Some(value),
                        None if args.get(i).is_some_and(|next| !next.starts_with('-')) => {
                            i += 1;
                            args.get(i - 1).cloned()
                        }
                        None => None,
                    };
                    options.action_flags.push((flag.to_string(), value));
                    continue;
                }
            };
            given.insert(canonical);
            let is_bool = matches!(
                canonical,
                "no-cache" | "dry-run" | "help" | "experimental" | "telemetry-log"
            );
            let value = if is_bool {
                inline.unwrap_or_else(|| "true".into())
            } else if let Some(value) = inline {
                value
            } else if let Some(next) = args.get(i) {
                i += 1;
                next.clone()
            } else {
                return Err(format!("flag needs an argument: {name}"));
            };
            match canonical {
                "plan" => plan_flag = Some(value),
                "with" => options.with.push(value),
                "no-cache" => options.no_cache = truthy(&value)?,
                "cache-from" => options.cache_from.push(value),
                "cache-to" => options.cache_to.push(value),
                "platform" => options.platform = Some(value),
                "dry-run" => options.dry_run = truthy(&value)?,
                "output" => options.output = Some(value),
                "output-format" => options.output_format = Some(value),
                "jobs" => {
                    options.jobs = Some(
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|jobs| *jobs > 0)
                            .ok_or_else(|| {
                                format!("invalid --jobs \"{value}\": expected a positive number")
                            })?,
                    )
                }
                "store" => options.store = Some(value),
                "help" => options.help = truthy(&value)?,
                "log-format" => options.log_format = Some(value),
                "log-level" => options.log_level = Some(value),
                "experimental" => options.experimental = truthy(&value)?,
                _ => {}
            }
        }
        // `DAGGER_<FLAG>` for flags not given on the command line.
        options.plan = plan_flag
            .or_else(|| env("DAGGER_PLAN"))
            .unwrap_or_else(|| ".".into());
        if !given.contains("with") {
            if let Some(with) = env("DAGGER_WITH") {
                options.with.push(with);
            }
        }
        if !given.contains("no-cache") {
            if let Some(value) = env("DAGGER_NO_CACHE") {
                options.no_cache = truthy(&value)?;
            }
        }
        if !given.contains("dry-run") {
            if let Some(value) = env("DAGGER_DRY_RUN") {
                options.dry_run = truthy(&value)?;
            }
        }
        if options.platform.is_none() {
            options.platform = env("DAGGER_PLATFORM").filter(|p| !p.is_empty());
        }
        if options.output.is_none() {
            options.output = env("DAGGER_OUTPUT").filter(|p| !p.is_empty());
        }
        if options.output_format.is_none() {
            options.output_format = env("DAGGER_OUTPUT_FORMAT").filter(|p| !p.is_empty());
        }
        if options.jobs.is_none() {
            if let Some(jobs) = env("DAGGER_JOBS") {
                options.jobs = jobs.parse().ok().filter(|jobs: &usize| *jobs > 0);
            }
        }
        Ok(options)
    }
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    }
}

/// A plan loaded for `do` or `plan graph`.
pub struct LoadedPlan {
    /// The plan.
    pub plan: Plan,
    /// Whether no `cue.mod` was found (embedded packages used).
    pub no_module: bool,
}

/// Loads the plan at `plan_arg` (a directory or a `.cue` file) with the
/// embedded universe packages and the `--with` overlays.
pub fn load_plan(plan_arg: &str, with: &[String]) -> Result<LoadedPlan, String> {
    let path = expand_home(plan_arg);
    let metadata = std::fs::metadata(&path)
        .map_err(|_| format!("plan path \"{}\" does not exist", path.display()))?;
    let text = path.to_string_lossy().into_owned();
    let dir = if metadata.is_dir() {
        text.clone()
    } else {
        path.parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into())
    };
    let no_module = find_module_root(&FsLoader, &dir).is_none();
    for overlay in with {
        if overlay.trim().is_empty() {
            return Err("--with: empty CUE snippet".into());
        }
    }
    let options = LoadOptions {
        embedded: cuedag_universe::files()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect(),
        overlays: with.to_vec(),
    };
    let plan =
        Plan::load(&FsLoader, &[text], &options).map_err(|error| render_plan_error(&error))?;
    Ok(LoadedPlan { plan, no_module })
}

/// A plan error with its code and hint.
pub fn render_plan_error(error: &PlanError) -> String {
    let mut text = format!("{error}");
    if let Some(hint) = error.hint() {
        text.push_str(&format!("\n  help: {hint}"));
    }
    text.push_str(&format!("\n  [{}]", error.code()));
    text
}

fn usage(bin: &str, node: &ActionNode, flags: &[(String, DeclaredKind, String)]) -> String {
    let mut text = String::from("Usage:\n");
    if node.path.labels().len() <= 1 {
        text.push_str(&format!("  {bin} do <action> [subaction...] [flags]\n"));
    } else {
        let words: Vec<String> = node.path.labels()[1..]
            .iter()
            .map(|w| format_label(w))
            .collect();
        text.push_str(&format!("  {bin} do {} [flags]\n", words.join(" ")));
        if !node.doc.is_empty() {
            text = format!("{}\n\n{text}", node.doc);
        }
    }
    if !flags.is_empty() {
        text.push_str("\nOptions:\n");
        let width = flags
            .iter()
            .map(|(name, kind, _)| name.len() + kind.name().len() + 3)
            .max()
            .unwrap_or(0);
        for (name, kind, doc) in flags {
            let left = format!("--{name} {}", kind.name());
            text.push_str(format!("  {left:<width$}  {doc}").trim_end());
            text.push('\n');
        }
    }
    if !node.children.is_empty() {
        text.push_str("\nAvailable Actions:\n");
        let width = node
            .children
            .iter()
            .map(|child| child.name.len())
            .max()
            .unwrap_or(0);
        for child in &node.children {
            let line = format!("  {:<width$}  {}", child.name, child.doc);
            text.push_str(line.trim_end());
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "\nFlags:\n{FLAGS_HELP}\nGlobal Flags:\n{GLOBAL_HELP}\nUse \"{bin} do <action> --help\" to list the sub-actions of an action.\n"
    ));
    text
}

const FLAGS_HELP: &str = "      --cache-from stringArray   Import build cache from the given sources (type=local,src=DIR | type=registry,ref=REF)
      --cache-to stringArray     Export build cache to the given destinations (type=local,dest=DIR,mode=max | type=registry,ref=REF)
      --dry-run                  Print the tasks that would run, in order, with their inputs; run nothing
  -h, --help                     Help for the action
  -j, --jobs int                 Number of tasks run at once (default: number of CPUs, at least 4)
      --no-cache                 Disable the cache
      --output string            File to write the action outputs to (mode 0600)
      --output-format string     Format of the outputs: plain, json or yaml (default: plain on a terminal, else json)
  -p, --plan string              Path to the plan: a directory or a .cue file (default \".\")
      --store string             Store of the local backend (default $CUEDAG_STORE, else ~/.cache/cuedag)
      --platform string          Target platform, os/arch[/variant] (experimental)
  -w, --with stringArray         CUE snippet unified with the plan before running
";

const GLOBAL_HELP: &str = "      --experimental        Enable experimental flags
      --log-format string   auto, plain, tty or json (default \"auto\")
  -l, --log-level string    trace, debug, info, warn or error (default \"info\")
";

fn cue_literal(kind: &DeclaredKind, value: &str) -> Result<String, String> {
    match kind {
        DeclaredKind::String => Ok(serde_json::Value::String(value.to_string()).to_string()),
        DeclaredKind::Int => value
            .parse::<i64>()
            .map(|i| i.to_string())
            .map_err(|_| format!("invalid integer \"{value}\"")),
        DeclaredKind::Number => value
            .parse::<f64>()
            .map(|_| value.to_string())
            .map_err(|_| format!("invalid number \"{value}\"")),
        DeclaredKind::Bool => truthy(value).map(|b| b.to_string()),
        other => Err(format!("unsupported flag type {}", other.name())),
    }
}

/// Runs `cuedag do`.
pub fn run(args: Args, global: &Global) -> miette::Result<ExitCode> {
    let env = |name: &str| std::env::var(name).ok();
    let options = match DoOptions::parse(&args.rest, &env) {
        Ok(options) => options,
        Err(message) => {
            err(&format!("{message}\n"));
            return Ok(ExitCode::from(1));
        }
    };
    Ok(run_options(options, global))
}

fn run_options(options: DoOptions, global: &Global) -> ExitCode {
    let mut global = global.clone();
    if let Some(format) = &options.log_format {
        match LogFormat::parse(format) {
            Some(format) => global.log_format = format,
            None => {
                err(&format!("invalid --log-format \"{format}\"\n"));
                return ExitCode::from(1);
            }
        }
    }
    if let Some(level) = &options.log_level {
        match progress::parse_level(level) {
            Some(level) => global.log_level = level,
            None => {
                err(&format!("invalid --log-level \"{level}\"\n"));
                return ExitCode::from(1);
            }
        }
    }
    global.experimental |= options.experimental;
    if options.platform.is_some() && !global.experimental {
        err("--platform requires --experimental flag\n");
        return ExitCode::from(1);
    }
    if let Some(format) = &options.output_format {
        if !matches!(format.as_str(), "" | "plain" | "json" | "yaml") {
            err(&format!(
                "invalid output format \"{format}\": expected plain, json or yaml\n"
            ));
            return ExitCode::from(1);
        }
    }
    let cache = match cuedag_cache::spec::CacheSpecs::from_args(
        &options.cache_to,
        &options.cache_from,
        &|name| std::env::var(name).ok(),
    ) {
        Ok(cache) => cache,
        Err(errors) => {
            for error in errors {
                err(&format!("{error}\n"));
            }
            return ExitCode::from(1);
        }
    };

    let bin = global.bin_name.clone();
    let mut loaded = match load_plan(&options.plan, &options.with) {
        Ok(loaded) => loaded,
        Err(message) => {
            err(&format!("failed to load plan: {message}\n"));
            return ExitCode::from(1);
        }
    };
    if loaded.no_module && global.log_level <= Level::Info {
        let hint = format!(
            "no cue.mod found; using the embedded dagger.io and universe.dagger.io packages (run `{bin} project init` to pin them)"
        );
        if global.log_format.resolve() == LogFormat::Json {
            let line = serde_json::json!({
                "level": "info",
                "time": progress::rfc3339(std::time::SystemTime::now()),
                "message": hint,
            });
            err(&format!("{line}\n"));
        } else {
            err(&format!("hint: {hint}\n"));
        }
    }
    let actions = loaded.plan.actions();
    if actions.children.is_empty() && !options.words.is_empty() {
        err("no action found\n");
        return ExitCode::from(1);
    }
    let Some(node) = actions.find(&options.words).cloned() else {
        let (nearest, _) = actions.nearest(&options.words);
        let flags = loaded.plan.input_flags(&nearest.path);
        err(&format!("action not found: {}\n", options.words.join(" ")));
        out(&usage(&bin, nearest, &flags));
        return ExitCode::from(1);
    };
    let target = node.path.clone();
    let flags = loaded.plan.input_flags(&target);
    if options.words.is_empty() || options.help {
        out(&usage(&bin, &node, &flags));
        return ExitCode::SUCCESS;
    }

    // Action input flags: fill the given ones and reload.
    let mut with = options.with.clone();
    let mut changed = Vec::new();
    for (name, value) in &options.action_flags {
        let Some((_, kind, _)) = flags.iter().find(|(flag, _, _)| flag == name) else {
            continue;
        };
        let value = value.clone().unwrap_or_else(|| "true".into());
        match cue_literal(kind, &value) {
            Ok(literal) => {
                with.push(nest(&target, name, &literal));
                changed.push(format!("Changed: {name}: {value}"));
            }
            Err(message) => {
                err(&format!("--{name}: {message}\n"));
                return ExitCode::from(1);
            }
        }
    }
    if !changed.is_empty() {
        loaded = match load_plan(&options.plan, &with) {
            Ok(loaded) => loaded,
            Err(message) => {
                err(&format!("failed to load plan: {message}\n"));
                return ExitCode::from(1);
            }
        };
        for line in &changed {
            err(&format!("{line}\n"));
        }
    }
    let mut plan = loaded.plan;
    let selected = plan.graph().select(&target);
    if let Err(error) = plan.validate(&selected) {
        err(&format!(
            "failed to load plan: {}\n",
            render_plan_error(&error)
        ));
        return ExitCode::from(1);
    }
    if let Err(message) = check_directory_reads(&mut plan, &selected) {
        err(&format!("failed to load plan: {message}\n"));
        return ExitCode::from(1);
    }
    let flag_names: Vec<String> = flags.iter().map(|(name, _, _)| name.clone()).collect();
    let pending: Vec<String> = plan
        .pending_outputs(&target)
        .into_iter()
        .filter(|name| !flag_names.contains(name))
        .collect();

    let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let session = SessionOptions {
        workdir,
        cache_from: options.cache_from.clone(),
        cache_to: options.cache_to.clone(),
        cache,
        no_cache: options.no_cache,
        platform: options.platform.clone(),
        action: target.labels().iter().skip(1).cloned().collect(),
    };
    let run_options = RunOptions {
        jobs: options.jobs.unwrap_or_else(|| RunOptions::default().jobs),
        dry_run: options.dry_run,
    };
    let (progress, events) = Progress::channel();
    let format = global.log_format;
    let level = global.log_level;
    let renderer = std::thread::spawn(move || progress::render(events, format, level));
    let store = options
        .store
        .clone()
        .or_else(|| std::env::var("CUEDAG_STORE").ok());
    let result = execute(&mut plan, &selected, session, run_options, progress, store);
    let _ = renderer.join();
    match result {
        Ok(report) => {
            if options.dry_run {
                out(&dry_run_listing(&report));
                return ExitCode::SUCCESS;
            }
            let outputs = plan.outputs(&target, &pending);
            print_outputs(&outputs, &options)
        }
        Err(message) => {
            if global.log_format.resolve() == LogFormat::Json {
                let line = serde_json::json!({
                    "level": "error",
                    "time": progress::rfc3339(std::time::SystemTime::now()),
                    "message": "failed to execute plan",
                    "error": message,
                });
                err(&format!("{line}\n"));
            } else {
                let location = failed_task_location(&mut plan, &message)
                    .map(|at| format!("\n    at {at}"))
                    .unwrap_or_default();
                err(&format!("failed to execute plan: {message}{location}\n"));
            }
            ExitCode::from(1)
        }
    }
}

/// Where the task a run failed in is written (`file:line:col`): the
/// task's position in the plan's own files, else that of its nearest
/// ancestor written there (a task hidden inside a universe definition),
/// else its position in the embedded packages. The failure message starts
/// with the task path.
fn failed_task_location(plan: &mut Plan, message: &str) -> Option<String> {
    let task = plan
        .tasks()
        .iter()
        .filter(|task| message.starts_with(&format!("{}: ", task.path)))
        .max_by_key(|task| task.path.to_string().len())?
        .clone();
    let own = |location: &&cuedag_evaluator::Location| !location.file.starts_with("<embedded>");
    let mut found = task.locations.iter().find(own).cloned();
    let eval = plan.evaluation();
    let mut path = task.eval_path.0.clone();
    while found.is_none() {
        let Some(last) = path.pop() else { break };
        let Some(parent) = eval.lookup(&cuedag_evaluator::Path(path.clone())) else {
            break;
        };
        found = eval
            .fields(parent)
            .into_iter()
            .find(|info| info.selector == last)
            .and_then(|info| info.locations.iter().find(own).cloned());
    }
    let location = found.or_else(|| task.locations.first().cloned())?;
    Some(format!(
        "{}:{}:{}",
        location.file, location.line, location.col
    ))
}

/// Pre-run checks (§4.5): client reads of a directory (`contents:
/// dagger.#FS`) need a static path that exists and is a directory; a
/// `core.#Source` path must stay inside, and exist in, the directory of the
/// CUE file that sets it.
fn check_directory_reads(
    plan: &mut Plan,
    selected: &cuedag_evaluator::plan::TaskGraph,
) -> Result<(), String> {
    let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    for (_, task) in selected.tasks() {
        if task.task_type == "Source" {
            // Its path, when already concrete, is checked against the
            // directory of the CUE file that sets it.
            let inputs = plan
                .preview_inputs(&task.path)
                .map_err(|error| format!("{}: {error}", task.path))?;
            if let Some(path) = inputs.get("path").and_then(TaskValue::as_str) {
                let origin = plan.field_origin(&task.path, "path");
                cuedag_backends::local::check_source_path(path, origin.as_ref(), &workdir)
                    .map_err(|message| format!("{}: {message}", task.path))?;
            }
            continue;
        }
        if task.task_type != "ClientFilesystemRead" {
            continue;
        }
        let inputs = plan
            .preview_inputs(&task.path)
            .map_err(|error| format!("{}: {error}", task.path))?;
        let is_fs = matches!(
            inputs.get("contents"),
            Some(TaskValue::Declared(declared)) if declared.kind == DeclaredKind::Fs
        );
        if !is_fs {
            continue;
        }
        let Some(path) = inputs.get("path").and_then(TaskValue::as_str) else {
            return Err(format!(
                "{}: reading directories without a static path is not supported",
                task.path
            ));
        };
        let absolute = cuedag_backends::builtin::client_path(path, &workdir);
        match std::fs::metadata(&absolute) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{}: path \"{}\" is not a directory",
                    task.path,
                    absolute.display()
                ))
            }
            Err(_) => {
                return Err(format!(
                    "{}: path \"{}\" does not exist",
                    task.path,
                    absolute.display()
                ))
            }
        }
    }
    Ok(())
}

fn nest(target: &CuePath, name: &str, literal: &str) -> String {
    let mut snippet = format!("{}: {literal}", format_label(name));
    for label in target.labels().iter().rev() {
        snippet = format!("{}: {snippet}", format_label(label));
    }
    snippet
}

fn execute(
    plan: &mut Plan,
    selected: &cuedag_evaluator::plan::TaskGraph,
    session: SessionOptions,
    options: RunOptions,
    progress: Progress,
    store: Option<String>,
) -> Result<RunReport, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("starting the runtime: {error}"))?;
    let backends = match store {
        Some(store) => cuedag_backends::backends_with_store(expand_home(&store))
            .map_err(|error| format!("opening the store: {error}"))?,
        None => default_backends(),
    };
    let executor = Executor::new(Arc::new(backends), progress, session);
    let interrupt = CancellationToken::new();
    let on_signal = interrupt.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let result = runtime.block_on(executor.run(selected, plan, &options, interrupt));
    drop(executor);
    runtime.shutdown_background();
    result.map_err(|error| error.to_string())
}

/// `--dry-run` output: the tasks in topological order with their inputs.
fn dry_run_listing(report: &RunReport) -> String {
    let mut text = String::new();
    for (i, task) in report.tasks.iter().enumerate() {
        text.push_str(&format!(
            "{:>2}. {} ({})\n",
            i + 1,
            task.path,
            task.task_type
        ));
        if let TaskValue::Struct(fields) = &task.inputs {
            for (name, value) in fields {
                text.push_str(&format!("      {}: {value}\n", format_label(name)));
            }
        }
    }
    text
}

fn output_json(value: &TaskValue) -> serde_json::Value {
    match value {
        TaskValue::Bool(b) => (*b).into(),
        TaskValue::Int(i) => (*i).into(),
        TaskValue::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        TaskValue::String(s) => s.clone().into(),
        other => other.to_string().into(),
    }
}

fn print_outputs(outputs: &[ActionOutput], options: &DoOptions) -> ExitCode {
    let format = match options.output_format.as_deref() {
        Some("") | None if std::io::stdout().is_terminal() || options.output.is_some() => "plain",
        Some("") | None => "json",
        Some(format) => format,
    };
    let text = match format {
        _ if outputs.is_empty() => String::new(),
        "json" | "yaml" => {
            let object: serde_json::Map<String, serde_json::Value> = outputs
                .iter()
                .map(|output| (output.name.clone(), output_json(&output.value)))
                .collect();
            if format == "json" {
                let mut text = serde_json::to_string_pretty(&object).unwrap_or_default();
                text.push('\n');
                text
            } else {
                serde_yaml::to_string(&object).unwrap_or_default()
            }
        }
        _ => {
            if outputs.is_empty() {
                String::new()
            } else {
                let width = outputs
                    .iter()
                    .map(|o| o.name.len())
                    .max()
                    .unwrap_or(0)
                    .max("Field".len());
                let mut text = format!("{:<width$}  Value\n", "Field");
                for output in outputs {
                    text.push_str(&format!("{:<width$}  {}\n", output.name, output.value));
                }
                text
            }
        }
    };
    match &options.output {
        Some(path) => match write_private(Path::new(path), &text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                err(&format!("failed to write outputs to \"{path}\": {error}\n"));
                ExitCode::from(1)
            }
        },
        None => {
            out(&text);
            ExitCode::SUCCESS
        }
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<DoOptions, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        DoOptions::parse(&args, &|name| match name {
            "DAGGER_NO_CACHE" => Some("1".into()),
            "DAGGER_PLAN" => Some("env-plan".into()),
            _ => None,
        })
    }

    #[test]
    fn parses_words_flags_and_env() {
        let options = parse(&[
            "build",
            "test",
            "-p",
            "./ci",
            "--with=actions: x: 1",
            "-w",
            "y: 2",
            "--dry-run",
            "--cache-to",
            "type=local,dest=c",
            "--jobs=3",
            "--name",
            "bob",
            "--flag",
            "--log-format",
            "plain",
        ])
        .unwrap();
        assert_eq!(options.words, ["build", "test"]);
        assert_eq!(options.plan, "./ci");
        assert_eq!(options.with, ["actions: x: 1", "y: 2"]);
        assert!(options.dry_run && options.no_cache);
        assert_eq!(options.cache_to, ["type=local,dest=c"]);
        assert_eq!(options.jobs, Some(3));
        assert_eq!(
            options.action_flags,
            [
                ("name".to_string(), Some("bob".to_string())),
                ("flag".to_string(), None)
            ]
        );
        assert_eq!(options.log_format.as_deref(), Some("plain"));
        assert_eq!(parse(&[]).unwrap().plan, "env-plan");
        assert_eq!(
            parse(&["--jobs", "0"]).unwrap_err(),
            "invalid --jobs \"0\": expected a positive number"
        );
        assert_eq!(
            parse(&["--plan"]).unwrap_err(),
            "flag needs an argument: --plan"
        );
        assert!(parse(&["-h"]).unwrap().help);
    }

    #[test]
    fn nests_flag_values_under_the_target() {
        let target = CuePath::new(["actions", "hello-world", "sub"]);
        assert_eq!(
            nest(&target, "name", "\"x\""),
            r#"actions: "hello-world": sub: name: "x""#
        );
        assert_eq!(cue_literal(&DeclaredKind::Int, "12").unwrap(), "12");
        assert!(cue_literal(&DeclaredKind::Int, "x").is_err());
    }
}
