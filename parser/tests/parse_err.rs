//! Runner for `fixtures/parser/err/`: every file yields diagnostics, matched
//! against an insta snapshot (`line:col code message`, plus labels and help).

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/parser/err")
}

fn render(text: &str) -> String {
    let parse = cuedag_parser::parse(text);
    let index = cuedag_parser::LineIndex::new(text);
    let mut out = String::new();
    for diag in &parse.errors {
        for (i, label) in diag.labels.iter().enumerate() {
            let (line, col) = index.line_col(label.span.start);
            if i == 0 {
                writeln!(out, "{line}:{col} {} {}", diag.code, diag.message).unwrap();
            }
            writeln!(out, "  label {line}:{col}: {}", label.message).unwrap();
        }
        if let Some(help) = &diag.help {
            writeln!(out, "  help: {help}").unwrap();
        }
    }
    assert_eq!(
        cuedag_parser::print(&parse),
        text,
        "token stream is not lossless"
    );
    out
}

#[test]
fn broken_files_give_located_diagnostics() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cue"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "expected at least 40 broken files, found {}",
        files.len()
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let rendered = render(&text);
        assert!(
            !rendered.is_empty(),
            "{}: expected at least one diagnostic",
            path.display()
        );
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({
            snapshot_path => "snapshots",
            prepend_module_to_snapshot => false,
            input_file => &path,
        }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}
