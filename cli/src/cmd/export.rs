//! `cuedag export`.

use std::process::ExitCode;

/// Arguments of `cuedag export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments (not parsed yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `cuedag export`.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`cuedag export` is not implemented yet"))
}
