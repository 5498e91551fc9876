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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => cmd::parse::run(args),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            cmd::print_report(&report);
            ExitCode::from(1)
        }
    }
}
