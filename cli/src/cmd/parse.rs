//! `cuedag parse FILE|DIR... [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `cuedag parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to parse (directories are searched for `.cue` files).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print one JSON object per file.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cuedag parse`.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`cuedag parse` is not implemented yet"))
}
