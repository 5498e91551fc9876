//! `cuedag do`.

use std::process::ExitCode;

/// Arguments of `cuedag do`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments (not parsed yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `cuedag do`.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`cuedag do` is not implemented yet"))
}
