//! Benchmarks of the plan model: load + evaluate + task discovery +
//! dependency graph of the seed plan (`fixtures/go-hello/build.cue`, the
//! Dagger "Persistent cache" guide's plan) with its universe imports.

use cuedag_evaluator::plan::{CuePath, Plan};
use cuedag_evaluator::{load_instance, LoadOptions, MemLoader};

fn main() {
    divan::main();
}

const SEED: &str = include_str!("../../fixtures/go-hello/build.cue");
const CLIENT: &str = include_str!("../../fixtures/plans/cli/client.cue");

fn setup(text: &str) -> (MemLoader, LoadOptions) {
    let mut loader = MemLoader::default();
    loader.add("seed/build.cue", text);
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
    let (loader, options) = setup(SEED);
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

/// The same for a `dagger.#Plan` of client tasks and `core.#Nop`s
/// (`fixtures/plans/cli/client.cue`), selecting what `do greet` runs.
#[divan::bench]
fn plan_client_load_and_graph(bencher: divan::Bencher) {
    let (loader, options) = setup(CLIENT);
    let args = vec!["seed".to_string()];
    let target = CuePath::new(["actions", "greet"]);
    let n_tasks =
        Plan::load(&loader, &args, &options).map(|plan| plan.graph().select(&target).len());
    assert!(
        matches!(n_tasks, Ok(n) if n > 0),
        "the client plan does not load: {:?}",
        n_tasks.err()
    );
    bencher.bench(|| {
        Plan::load(&loader, &args, &options).map(|plan| plan.graph().select(&target).len())
    });
}

/// For comparison: load and evaluate the seed plan (all errors collected),
/// without task discovery or the graph.
#[divan::bench]
fn plan_seed_evaluate_only(bencher: divan::Bencher) {
    let (loader, options) = setup(SEED);
    let args = vec!["seed".to_string()];
    bencher.bench(|| {
        load_instance(&loader, &args, &options).map(|instance| instance.evaluate().errors().len())
    });
}
