//! Evaluator benchmarks: export of a generated 10,000-field config and of a
//! plan-shaped package (definitions, disjunctions of structs,
//! comprehensions). `evaluator/benches/vs_reference.sh` runs the same
//! inputs through the reference evaluator and prints the ratio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cuedag_evaluator::{load_text, Instance};

const LARGE: &str = include_str!("../../fixtures/cue/bench/large/large.cue");
const PLAN: &str = include_str!("../../fixtures/cue/bench/plan/plan.cue");

fn main() {
    divan::main();
}

fn export(inst: &Instance) -> usize {
    let mut ev = inst.evaluate();
    let root = ev.root();
    ev.export_json(root).expect("export succeeds").len()
}

/// Parse, compile and export the 10,000-field config.
#[divan::bench]
fn eval_large_config_10k_fields() -> usize {
    let inst = load_text(divan::black_box(LARGE)).unwrap();
    export(&inst)
}

/// Parse, compile and export the plan-shaped package.
#[divan::bench]
fn eval_plan_shaped() -> usize {
    let inst = load_text(divan::black_box(PLAN)).unwrap();
    export(&inst)
}

/// Evaluation and export only (the instance is loaded once), as the plan
/// engine does on every fill.
#[divan::bench]
fn eval_plan_shaped_reevaluate(bencher: divan::Bencher) {
    let inst = load_text(PLAN).unwrap();
    bencher.bench_local(|| export(divan::black_box(&inst)));
}
