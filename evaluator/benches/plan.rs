//! Benchmarks of the plan model: load + evaluate + task discovery +
//! dependency graph of the seed plan (`fixtures/go-hello/build.cue`, the
//! Dagger "Persistent cache" guide's plan) with its universe imports.

use cuedag_evaluator::plan::{CuePath, DeclaredKind, FsRef, Plan, TaskValue};
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

/// What a made-up backend returns for a task of the seed plan: an FS id for
/// every declared `dagger.#FS` output, a digest and an image config for
/// `#Pull`, an exit code for `#Exec`.
fn fake_outputs(task_type: &str, path: &str, inputs: &TaskValue) -> TaskValue {
    let mut fields = indexmap::IndexMap::new();
    if let Some(inputs) = inputs.as_struct() {
        for (name, value) in inputs {
            let is_fs = value
                .as_declared()
                .is_some_and(|declared| declared.kind == DeclaredKind::Fs);
            if is_fs {
                fields.insert(
                    name.clone(),
                    TaskValue::Fs(FsRef::Id(format!("fs-{path}-{name}"))),
                );
            }
        }
    }
    match task_type {
        "Pull" => {
            fields.insert("digest".into(), TaskValue::string("sha256:0123"));
            fields.insert(
                "config".into(),
                TaskValue::structure([(
                    "env",
                    TaskValue::structure([("PATH", TaskValue::string("/usr/bin:/bin"))]),
                )]),
            );
        }
        "Exec" => {
            fields.insert("exit".into(), TaskValue::Int(0));
        }
        _ => {}
    }
    TaskValue::Struct(fields)
}

/// The plan side of a warm `do build` on the seed: load, select, validate,
/// then for each task in order its inputs and the fill-back of made-up
/// outputs (what the executor asks of the plan; no backend runs).
#[inline(never)]
fn run_seed_plan(loader: &MemLoader, args: &[String], options: &LoadOptions) -> usize {
    let target = CuePath::new(["actions", "build"]);
    let Ok(mut plan) = Plan::load(loader, args, options) else {
        return 0;
    };
    let selected = plan.graph().select(&target);
    if plan.validate(&selected).is_err() {
        return 0;
    }
    let mut filled = 0;
    for node in selected.topological_order() {
        let task = &selected.graph[node];
        let Ok(inputs) = plan.task_inputs(&task.path) else {
            return 0;
        };
        let outputs = fake_outputs(&task.task_type, &task.path.to_string(), &inputs);
        if plan.fill(&task.path, &outputs).is_err() {
            return 0;
        }
        filled += 1;
    }
    filled
}

/// Load, validate, then inputs and fill-back of every task of `do build`,
/// in order, with made-up outputs (the plan-side cost of a warm run).
#[divan::bench]
fn plan_seed_run_fills(bencher: divan::Bencher) {
    let (loader, options) = setup(SEED);
    let args = vec!["seed".to_string()];
    let filled = run_seed_plan(&loader, &args, &options);
    assert!(
        filled >= 8,
        "the seed plan did not run: {filled} tasks filled"
    );
    bencher.bench(|| run_seed_plan(&loader, &args, &options));
}
