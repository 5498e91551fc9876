//! Runner for `fixtures/cue/parse/`: every file parses without a diagnostic
//! and prints back to exactly its source.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/cue/parse")
}

fn cue_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "cue") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn corpus_parses_cleanly_and_roundtrips() {
    let files = cue_files(&corpus_dir());
    assert!(
        files.len() >= 100,
        "expected at least 100 corpus files, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let parse = cuedag_parser::parse(&text);
        let index = cuedag_parser::LineIndex::new(&text);
        for diag in &parse.errors {
            let (line, col) = index.line_col(diag.primary_span().unwrap_or_default().start);
            failures.push(format!(
                "{}:{line}:{col}: {} {}",
                path.display(),
                diag.code,
                diag.message
            ));
        }
        if cuedag_parser::print(&parse) != text {
            failures.push(format!("{}: print(parse(s)) != s", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
