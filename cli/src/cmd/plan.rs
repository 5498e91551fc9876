//! `cuedag plan graph [ACTION...] [--format dot|mermaid]`: the task graph of
//! a plan (or of what `do ACTION` would run) as Graphviz DOT or Mermaid.

use std::io::Write;
use std::process::ExitCode;

use cuedag_evaluator::plan::CuePath;

use crate::Global;

/// Arguments of `cuedag plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PlanCommand {
    /// Print the task graph (of the whole plan, or of what `do ACTION` runs).
    Graph(GraphArgs),
}

/// Output formats of `plan graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// The tasks in the order `do` would start them (one at a time), with
    /// their types.
    Order,
}

#[derive(Debug, clap::Args)]
struct GraphArgs {
    /// Action words (`build`, `test unit`); the whole plan when absent.
    action: Vec<String>,
    /// Path to the plan: a directory or a `.cue` file.
    #[arg(short = 'p', long, env = "DAGGER_PLAN", default_value = ".")]
    plan: String,
    /// CUE snippet unified with the plan (repeatable).
    #[arg(short = 'w', long = "with")]
    with: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    format: GraphFormat,
}

fn err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Runs `cuedag plan`.
pub fn run(args: Args, _global: &Global) -> miette::Result<ExitCode> {
    let PlanCommand::Graph(args) = args.command;
    let mut loaded = match super::do_::load_plan(&args.plan, &args.with) {
        Ok(loaded) => loaded,
        Err(message) => {
            err(&format!("failed to load plan: {message}\n"));
            return Ok(ExitCode::from(1));
        }
    };
    let graph = if args.action.is_empty() {
        loaded.plan.graph().clone()
    } else {
        let actions = loaded.plan.actions();
        if actions.find(&args.action).is_none() {
            err(&format!("action not found: {}\n", args.action.join(" ")));
            return Ok(ExitCode::from(1));
        }
        let mut labels = vec!["actions".to_string()];
        labels.extend(args.action.iter().cloned());
        loaded.plan.graph().select(&CuePath(labels))
    };
    let text = match args.format {
        GraphFormat::Dot => graph.to_dot(),
        GraphFormat::Mermaid => graph.to_mermaid(),
        GraphFormat::Order => graph
            .topological_order()
            .into_iter()
            .map(|node| {
                let task = &graph.graph[node];
                format!("{} ({})\n", task.path, task.task_type)
            })
            .collect(),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    Ok(ExitCode::SUCCESS)
}
