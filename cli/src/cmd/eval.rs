//! `cuedag eval`.

use std::process::ExitCode;

/// Arguments of `cuedag eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments (not parsed yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `cuedag eval`.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`cuedag eval` is not implemented yet"))
}
