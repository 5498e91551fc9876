//! The `cuedag` command. `main` only parses arguments, sets up tracing and
//! maps results to exit codes: 0 ok, 1 diagnostics or failure, 2 usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Runs Dagger 0.2 CUE build plans.
#[derive(Debug, Parser)]
#[command(name = "cuedag", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse CUE files and report syntax errors.
    Parse(cmd::parse::Args),
    /// Print the evaluated configuration as JSON, YAML or CUE (like `cue export`).
    Export(cmd::export::Args),
    /// Print the evaluated configuration as CUE, non-concrete values allowed (like `cue eval`).
    Eval(cmd::eval::Args),
    /// Run an action of a Dagger plan.
    Do(cmd::do_::Args),
    /// Inspect a plan (`plan graph`).
    Plan(cmd::plan::Args),
    /// Create or update a project (`project init`, `project update`).
    Project(cmd::project::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => cmd::parse::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Do(args) => cmd::do_::run(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Project(args) => cmd::project::run(args),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            cmd::print_report(&report);
            ExitCode::from(1)
        }
    }
}
