//! `cuedag plan`.

use std::process::ExitCode;

/// Arguments of `cuedag plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments (not parsed yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs `cuedag plan`.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`cuedag plan` is not implemented yet"))
}
