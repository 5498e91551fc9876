//! `cuedag prune [--keep-storage SIZE] [--store DIR]`: empties the local
//! backend's store (layers, blobs, step records, cache mounts), or trims it
//! to SIZE, least recently written entries first.

use std::path::PathBuf;
use std::process::ExitCode;

use miette::{miette, Result};

/// Arguments of `cuedag prune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep up to this much (`512MB`, `10GB`, `1GiB`, bytes); default: nothing.
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// The store (default: `$CUEDAG_STORE`, else `$XDG_CACHE_HOME/cuedag`, else `~/.cache/cuedag`).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// Runs `cuedag prune`.
pub fn run(args: Args) -> Result<ExitCode> {
    use cuedag_backends::local;
    let keep = match &args.keep_storage {
        Some(size) => local::parse_size(size).map_err(|error| miette!("{error}"))?,
        None => 0,
    };
    let root = args.store.unwrap_or_else(local::default_store_root);
    let report = local::prune(&root, keep).map_err(|error| miette!("{error}"))?;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "removed {} entries, freed {} bytes, {} bytes kept in {}",
            report.removed,
            report.freed_bytes,
            report.kept_bytes,
            root.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
