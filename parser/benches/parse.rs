//! Lexer and parser throughput on a generated ~5 MB plan-like CUE file and
//! on the `fixtures/cue/parse` corpus. Run with `cargo bench -p cuedag-parser`;
//! divan reports bytes per second.

// Bench setup may unwrap: a missing corpus is a broken checkout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;

use divan::counter::BytesCount;
use divan::Bencher;

fn main() {
    divan::main();
}

/// One Dagger-style action, about 900 bytes.
fn action(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"
	// Run step {i} of the pipeline.
	// It writes one file.
	step_{i}: docker.#Run & {{
		input: _base.output
		always: false
		command: {{
			name: "sh"
			args: ["-c", "echo \(name) {i} > /out/{i}.txt", "--verbose"]
			flags: {{"-e": true, "-x": false, "--level": "debug"}}
		}}
		env: {{FOO: "bar_{i}", N: "{i}", HOME: client.env.HOME}}
		mounts: cache: {{dest: "/cache", contents: core.#CacheDir & {{id: "cache-{i}"}}}}
		export: files: "/out/{i}.txt": string
		retries: *3 | int & >=0 & <=10
		ratio: 1.5e-3 * 2 + 0x1f - 0o755 / 1Ki
		script: """
			#!/bin/sh
			set -eu
			echo "hello {i}" \(name)
			"""
		if retries > 2 {{
			for k, v in env {{
				"label_\(k)": v @dagger(generated)
			}}
		}}
		patterns: [string]: =~"^[a-z]+$" | !~"x"
		list: [for x in [1, 2, 3] if x > 1 {{x * {i}}}, ...int]
	}}
"#
    );
}

fn generated() -> String {
    let mut text = String::with_capacity(5_300_000);
    text.push_str(
        "package bench\n\nimport (\n\t\"dagger.io/dagger\"\n\t\"dagger.io/dagger/core\"\n\t\"universe.dagger.io/docker\"\n)\n\ndagger.#Plan & {\n\tactions: {\n",
    );
    let mut i = 0;
    while text.len() < 5_000_000 {
        action(&mut text, i);
        i += 1;
    }
    text.push_str("\t}\n}\n");
    text
}

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/cue/parse");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cue"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[divan::bench(sample_count = 20)]
fn lex_generated(bencher: Bencher) {
    let text = generated();
    bencher
        .counter(BytesCount::of_str(&text))
        .bench(|| cuedag_parser::lex(black_box(&text)));
}

#[divan::bench(sample_count = 20)]
fn parse_generated(bencher: Bencher) {
    let text = generated();
    assert!(cuedag_parser::parse(&text).errors.is_empty());
    bencher
        .counter(BytesCount::of_str(&text))
        .bench(|| cuedag_parser::parse(black_box(&text)));
}

#[divan::bench]
fn lex_corpus(bencher: Bencher) {
    let files = corpus();
    let total: usize = files.iter().map(String::len).sum();
    bencher.counter(BytesCount::new(total)).bench(|| {
        for text in &files {
            black_box(cuedag_parser::lex(black_box(text)));
        }
    });
}

#[divan::bench]
fn parse_corpus(bencher: Bencher) {
    let files = corpus();
    let total: usize = files.iter().map(String::len).sum();
    bencher.counter(BytesCount::new(total)).bench(|| {
        for text in &files {
            black_box(cuedag_parser::parse(black_box(text)));
        }
    });
}
