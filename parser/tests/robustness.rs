//! Robustness: deep nesting is bounded and reported, random bytes and
//! mutated corpus files never make the parser panic, and the token stream
//! always covers the input exactly.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use proptest::prelude::*;

fn check_total(text: &str) -> cuedag_parser::Parse {
    let parse = cuedag_parser::parse(text);
    assert_eq!(
        cuedag_parser::print(&parse),
        text,
        "lossless printing failed"
    );
    let mut pos = 0;
    for token in &parse.tokens {
        assert_eq!(token.span.start, pos, "gap or overlap in the token stream");
        assert!(token.span.end > token.span.start, "empty token");
        pos = token.span.end;
    }
    assert_eq!(pos as usize, text.len(), "tokens do not reach the end");
    for diag in &parse.errors {
        let span = diag.primary_span().unwrap();
        assert!(
            span.end as usize <= text.len(),
            "diagnostic span out of range"
        );
        assert!(diag.code.starts_with("E0"), "unexpected code {}", diag.code);
        assert!(!diag.message.is_empty());
    }
    parse
}

fn has_code(parse: &cuedag_parser::Parse, code: &str) -> bool {
    parse.errors.iter().any(|d| d.code == code)
}

#[test]
fn deep_nesting_is_reported_not_overflowed() {
    for open in ["[", "{", "(", "a: {", "-", "!", "a: ", "\"\\("] {
        let text = format!("x: {}", open.repeat(100_000));
        let parse = check_total(&text);
        assert!(
            has_code(&parse, "E0299") || has_code(&parse, "E0110"),
            "no nesting error for {open:?}: {:?}",
            parse.errors
        );
    }
}

#[test]
fn nesting_just_below_the_limit_is_fine() {
    let depth = 100;
    let text = format!("x: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
    let parse = check_total(&text);
    assert!(parse.errors.is_empty(), "{:?}", parse.errors);
    let text = format!("x: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth));
    let parse = check_total(&text);
    assert!(parse.errors.is_empty(), "{:?}", parse.errors);
}

fn corpus() -> &'static [String] {
    static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(read_corpus)
}

fn read_corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/cue/parse");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cue"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A byte-level edit applied to a corpus file.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
    Duplicate(usize, usize),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Delete(at, n) => {
                let start = at % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
            Edit::Insert(at, piece) => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, piece.iter().copied());
            }
            Edit::Replace(at, b) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = *b;
                }
            }
            Edit::Duplicate(at, n) => {
                let start = at % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    let piece = bytes[start..end].to_vec();
                    bytes.splice(start..start, piece);
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(vec![
        b"{".to_vec(),
        b"}".to_vec(),
        b"[".to_vec(),
        b"]".to_vec(),
        b"(".to_vec(),
        b")".to_vec(),
        b"\"".to_vec(),
        b"\"\"\"".to_vec(),
        b"#\"".to_vec(),
        b"'".to_vec(),
        b"\\(".to_vec(),
        b"\\".to_vec(),
        b":".to_vec(),
        b",".to_vec(),
        b"\n".to_vec(),
        b"...".to_vec(),
        b"@a(".to_vec(),
        b"for x in ".to_vec(),
        b"if ".to_vec(),
        b"let ".to_vec(),
        b"X=".to_vec(),
        b"0x".to_vec(),
        b"1.5Ki".to_vec(),
        b"_|_".to_vec(),
        b"//".to_vec(),
        "é".as_bytes().to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), interesting).prop_map(|(a, p)| Edit::Insert(a, p)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Duplicate(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // A parse that does not end is a failure, not a hung test run.
        timeout: 20_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        check_total(&text);
    }

    #[test]
    fn random_cue_tokens_never_panic(pieces in prop::collection::vec(prop::sample::select(vec![
        "a", "#D", "_h", "$d", ":", "?", "!", "=", ",", "\n", " ", "{", "}", "[", "]", "(", ")",
        "\"s\"", "\"\\(", "\"\"\"\n", "'", "#\"", "1", "0o7", "1.5", "...", ".", "|", "&", "*",
        "&&", "||", "==", "!=", "=~", "<", ">=", "+", "-", "/", "for", "in", "if", "let",
        "package", "import", "null", "true", "_", "_|_", "@x(", "@y()", "// c\n",
    ]), 0..120)) {
        let text: String = pieces.concat();
        check_total(&text);
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        index in any::<usize>(),
        edits in prop::collection::vec(edit_strategy(), 1..6),
    ) {
        let files = corpus();
        let text = &files[index % files.len()];
        let mutated = apply(text, &edits);
        check_total(&mutated);
    }
}
