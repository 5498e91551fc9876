//! Deeply nested inputs: within the nesting limits they evaluate (on any
//! thread: the recursive passes grow their stack on demand), beyond them
//! they give a located error; never a stack overflow. Outputs were checked
//! against the reference evaluator at smaller depths (the `deep_*` cases of
//! the differential corpus).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cuedag_evaluator::{load_text, Error};

/// Exports `input` on a thread with a small (1 MiB) stack: the JSON text, or
/// the load/evaluation problems rendered as text.
fn export_on_small_stack(input: String) -> String {
    let worker = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || match load_text(&input) {
            Ok(inst) => match inst.evaluate().export() {
                Ok(v) => serde_json::to_string(&v.to_json()).unwrap(),
                Err(errs) => format!("eval error: {:?}", errs[0].message),
            },
            Err(Error::Load(problems)) => format!("load error: {problems:?}"),
            Err(other) => format!("error: {other}"),
        })
        .unwrap();
    worker.join().expect("the evaluation thread must not crash")
}

fn nested_struct(levels: usize) -> String {
    format!("a: {}1{}\n", "{b: ".repeat(levels), "}".repeat(levels))
}

#[test]
fn deeply_nested_structs_evaluate() {
    // Values nest at most 300 levels (deeper is taken for a structural
    // cycle, as before); syntax may nest deeper.
    let levels = 295;
    let out =
        export_on_small_stack(nested_struct(levels) + &format!("c: a{}\n", ".b".repeat(levels)));
    let expected = format!(
        r#"{{"a":{}1{},"c":1}}"#,
        r#"{"b":"#.repeat(levels),
        "}".repeat(levels)
    );
    assert_eq!(out, expected);
}

#[test]
fn long_operator_chains_evaluate() {
    let n = 1800;
    let input = format!("a: {}\n", vec!["1"; n].join(" + "));
    assert_eq!(export_on_small_stack(input), format!(r#"{{"a":{n}}}"#));
}

#[test]
fn long_reference_chains_evaluate() {
    let n = 600;
    let mut input: String = (0..n).map(|i| format!("a{i}: a{}\n", i + 1)).collect();
    input.push_str(&format!("a{n}: 7\n"));
    let out = export_on_small_stack(input);
    let expected: Vec<String> = (0..=n).map(|i| format!(r#""a{i}":7"#)).collect();
    assert_eq!(out, format!("{{{}}}", expected.join(",")));
}

#[test]
fn nesting_beyond_the_limit_is_a_located_error() {
    let out = export_on_small_stack(nested_struct(5000));
    assert!(out.starts_with("load error:"), "{out}");
    assert!(out.contains("nesting too deep"), "{out}");
}

#[test]
fn long_flat_chains_within_the_limit_are_dropped_safely() {
    // A 3,900-arm disjunction is flat for the evaluator but a 3,900-deep
    // tree for the parser (compiled and dropped without overflowing).
    let names: Vec<String> = (0..3900).map(|i| format!("\"n{i}\"")).collect();
    let out = export_on_small_stack(format!("a: {}\na: \"n3899\"\n", names.join(" | ")));
    assert_eq!(out, r#"{"a":"n3899"}"#);
    // A sum that long is compiled recursively: a located error.
    let out = export_on_small_stack(format!("a: {}\n", vec!["1"; 3900].join(" + ")));
    assert!(out.contains("nested too deeply"), "{out}");
}

#[test]
fn an_operator_chain_beyond_the_limit_is_a_located_error() {
    let input = format!("a: {}\n", vec!["1"; 200_000].join(" + "));
    let out = export_on_small_stack(input);
    assert!(out.starts_with("load error:"), "{out}");
    assert!(out.contains("operator chain too long"), "{out}");
}

#[test]
fn values_nested_beyond_the_export_limit_are_an_error() {
    let out = export_on_small_stack(nested_struct(900));
    assert!(out.starts_with("eval error:"), "{out}");
    assert!(out.contains("too deep"), "{out}");
}
