//! Benchmarks of the plan model: load + evaluate + task discovery +
//! dependency graph of the seed plan (`fixtures/go-hello/build.cue`, the
//! Dagger "Persistent cache" guide's plan) with its universe imports.

use cuedag_evaluator::plan::{CuePath, Plan};
use cuedag_evaluator::{LoadOptions, MemLoader};

fn main() {
    divan::main();
}

const SEED: &str = include_str!("../../fixtures/go-hello/build.cue");

fn setup() -> (MemLoader, LoadOptions) {
    let mut loader = MemLoader::default();
    loader.add("seed/build.cue", SEED);
    let options = LoadOptions {
        embedded: cuedag_universe::files()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect(),
        overlays: Vec::new(),
    };
    (loader, options)
}

/// Load, evaluate, discover tasks, build the dependency graph and select
/// what `do build` runs.
#[divan::bench]
fn plan_seed_load_and_graph(bencher: divan::Bencher) {
    let (loader, options) = setup();
    let args = vec!["seed".to_string()];
    let target = CuePath::new(["actions", "build"]);
    // Measure only a plan that loads: a broken evaluator must not look fast.
    let n_tasks =
        Plan::load(&loader, &args, &options).map(|plan| plan.graph().select(&target).len());
    assert!(
        matches!(n_tasks, Ok(n) if n > 0),
        "the seed plan does not load: {:?}",
        n_tasks.err()
    );
    bencher.bench(|| {
        Plan::load(&loader, &args, &options).map(|plan| plan.graph().select(&target).len())
    });
}
