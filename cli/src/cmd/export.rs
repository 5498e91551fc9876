//! `cuedag export`: like `cue export`. Results go to stdout only on
//! success; errors go to stderr as `path: message` plus positions, exit 1.

use std::io::Write as _;
use std::process::ExitCode;

use cuedag_evaluator::{
    load_instance, render_eval_errors, Error, Evaluation, Instance, LoadOptions, Loader,
};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Out {
    /// JSON, 4-space indented.
    Json,
    /// YAML.
    Yaml,
    /// CUE.
    Cue,
}

/// Arguments of `cuedag export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Export this expression (a path like `actions.build`, or any CUE expression).
    #[arg(short = 'e', long = "expression")]
    pub expression: Option<String>,
    /// Output format.
    #[arg(long = "out", value_enum, default_value = "json")]
    pub out: Out,
    /// Extra CUE source unified at the root.
    #[arg(long = "with")]
    pub with: Vec<String>,
    /// Directories or `.cue` files (default: the current directory).
    pub paths: Vec<String>,
}

/// The real file system behind the evaluator's loader trait.
#[derive(Debug, Default)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn read_dir(&self, dir: &str) -> Option<Vec<(String, bool)>> {
        let dir = if dir.is_empty() { "." } else { dir };
        let entries = std::fs::read_dir(dir).ok()?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // Follow symlinks (vendored packages are often symlinked).
            let is_dir = std::fs::metadata(entry.path())
                .map(|m| m.is_dir())
                .unwrap_or(false);
            out.push((name, is_dir));
        }
        Some(out)
    }

    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Load options with the embedded universe packages.
pub fn load_options(with: &[String]) -> LoadOptions {
    LoadOptions {
        embedded: cuedag_universe::files()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
        overlays: with.to_vec(),
    }
}

/// Renders load problems like `cue` does.
pub fn render_load_error(err: &Error) -> String {
    match err {
        Error::Load(problems) => {
            let mut out = String::new();
            for p in problems {
                out.push_str(&p.diagnostic.message);
                if let Some(l) = &p.location {
                    out.push_str(&format!(":\n    {}:{}:{}", l.file, l.line, l.col));
                }
                if let Some(h) = &p.diagnostic.help {
                    out.push_str(&format!("\n    help: {h}"));
                }
                out.push('\n');
            }
            out
        }
        Error::Eval(errs) => render_eval_errors(errs),
        other => format!("{other}\n"),
    }
}

const EXPR_FIELD: &str = "_cuedag_expression";

/// Loads the instance, adding `-e EXPR` as a hidden overlay field when it is
/// not a plain path.
pub fn load(
    paths: &[String],
    with: &[String],
    expr: Option<&str>,
) -> Result<(Instance, Option<String>), Error> {
    let opts = load_options(with);
    let inst = load_instance(&FsLoader, paths, &opts)?;
    let Some(e) = expr else {
        return Ok((inst, None));
    };
    // A path is looked up in the evaluated root; any other expression is
    // evaluated as a hidden field added to the package.
    if let Ok(path) = cuedag_evaluator::Path::parse(e) {
        let is_path = !path.0.is_empty()
            && e.chars()
                .all(|c| c.is_alphanumeric() || "_$#.\"-/".contains(c));
        if is_path && inst.evaluate().lookup(&path).is_some() {
            return Ok((inst, Some(e.to_string())));
        }
    }
    let mut overlays = with.to_vec();
    overlays.push(format!("{EXPR_FIELD}: ({e})\n"));
    let inst = load_instance(&FsLoader, paths, &load_options(&overlays))?;
    Ok((inst, Some(EXPR_FIELD.to_string())))
}

/// Finds the value to print.
pub fn target(ev: &mut Evaluation, lookup: Option<&str>) -> Option<cuedag_evaluator::ValueId> {
    match lookup {
        None => Some(ev.root()),
        Some(p) => ev.lookup_str(p),
    }
}

fn fail(text: &str) -> ExitCode {
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(text.as_bytes());
    ExitCode::from(1)
}

/// Runs `cuedag export`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let (inst, lookup) = match load(&args.paths, &args.with, args.expression.as_deref()) {
        Ok(x) => x,
        Err(e) => return Ok(fail(&render_load_error(&e))),
    };
    let mut ev = inst.evaluate();
    let Some(v) = target(&mut ev, lookup.as_deref()) else {
        return Ok(fail("expression not found\n"));
    };
    let result = match args.out {
        Out::Json => ev.export_json(v),
        Out::Yaml => ev.export_yaml(v),
        Out::Cue => ev.export_cue(v),
    };
    match result {
        Ok(text) => {
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(text.as_bytes());
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => Ok(fail(&render_eval_errors(&errs))),
    }
}
