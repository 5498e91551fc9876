//! `cuedag parse FILE|DIR... [--json]`: parses CUE files and reports every
//! syntax error. Exit 0 when all files parse, 1 otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr};

/// Arguments of `cuedag parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to parse (directories are searched recursively
    /// for `.cue` files).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print one JSON object per file (one per line): the syntax tree, or the
    /// diagnostics with line and column.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cuedag parse`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect(path, &mut files).wrap_err_with(|| format!("reading `{}`", path.display()))?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut n_failed = 0usize;
    for path in &files {
        let name = path.display().to_string();
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    n_failed += 1;
                    report_file_error(&mut out, args.json, &name, "file is not valid UTF-8")?;
                    continue;
                }
            },
            Err(err) => {
                n_failed += 1;
                report_file_error(&mut out, args.json, &name, &format!("cannot read: {err}"))?;
                continue;
            }
        };
        let parse = cuedag_parser::parse(&text);
        if !parse.errors.is_empty() {
            n_failed += 1;
        }
        if args.json {
            let object = json_object(&name, &text, &parse)?;
            writeln!(out, "{object}").into_diagnostic()?;
        } else {
            for diag in &parse.errors {
                super::print_report(&diag.to_report(&name, &text));
            }
        }
    }
    out.flush().into_diagnostic()?;
    if n_failed > 0 {
        if !args.json {
            super::print_report(&miette::miette!(
                "{n_failed} of {} file(s) had syntax errors",
                files.len()
            ));
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn json_object(
    name: &str,
    text: &str,
    parse: &cuedag_parser::Parse,
) -> miette::Result<serde_json::Value> {
    if parse.errors.is_empty() {
        let tree = serde_json::to_value(&parse.file).into_diagnostic()?;
        return Ok(serde_json::json!({ "file": name, "ok": true, "tree": tree }));
    }
    let index = cuedag_parser::LineIndex::new(text);
    let diagnostics: Vec<serde_json::Value> = parse
        .errors
        .iter()
        .map(|diag| {
            let span = diag.primary_span().unwrap_or_default();
            let (line, column) = index.line_col(span.start);
            let (end_line, end_column) = index.line_col(span.end);
            serde_json::json!({
                "code": diag.code,
                "severity": diag.severity,
                "message": diag.message,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "labels": diag.labels.iter().map(|label| {
                    let (line, column) = index.line_col(label.span.start);
                    serde_json::json!({
                        "message": label.message,
                        "line": line,
                        "column": column,
                        "span": label.span,
                    })
                }).collect::<Vec<_>>(),
                "help": diag.help,
            })
        })
        .collect();
    Ok(serde_json::json!({ "file": name, "ok": false, "diagnostics": diagnostics }))
}

fn report_file_error(
    out: &mut impl Write,
    json: bool,
    name: &str,
    message: &str,
) -> miette::Result<()> {
    if json {
        let object = serde_json::json!({
            "file": name,
            "ok": false,
            "diagnostics": [{ "code": "E0100", "message": message, "line": 1, "column": 1 }],
        });
        writeln!(out, "{object}").into_diagnostic()?;
    } else {
        super::print_report(&miette::miette!("{name}: {message}"));
    }
    Ok(())
}

/// Adds `path` (a file) or every `.cue` file under `path` (a directory), in
/// sorted order.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> miette::Result<()> {
    let meta = std::fs::metadata(path).into_diagnostic()?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .into_diagnostic()?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .into_diagnostic()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, out)?;
        } else if entry.extension().is_some_and(|ext| ext == "cue") {
            out.push(entry);
        }
    }
    Ok(())
}
