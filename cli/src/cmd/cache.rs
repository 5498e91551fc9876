//! `cuedag cache prune --dir D [--keep N] [--max-size SIZE]` and
//! `cuedag cache verify --dir D`: maintenance of a `type=local` cache
//! directory (what `--cache-to type=local,dest=D` writes).
//!
//! `prune` removes the oldest entries of `index.json` (order of last export)
//! beyond `--keep`, then more until the blobs still used total at most
//! `--max-size`, then every blob no remaining entry uses (blobs shared
//! between entries stay while one entry uses them). `index.json` is replaced
//! atomically under the directory's lock, so exports may run meanwhile.
//! `verify` hashes every blob the entries use and removes the corrupt ones
//! (the next export writes them again).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cuedag_cache::{LocalCache, PrunePolicy};
use miette::{miette, Result};

/// Arguments of `cuedag cache`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// Subcommands of `cuedag cache`.
#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Remove old entries and unreferenced blobs from a `type=local` cache directory.
    Prune(PruneArgs),
    /// Check every blob of a `type=local` cache directory against its digest.
    Verify(VerifyArgs),
}

/// Arguments of `cuedag cache prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// The cache directory (the `dest=` of `--cache-to type=local`).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Keep the N most recently exported entries, remove older ones.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Remove the oldest entries until the blobs kept total at most SIZE
    /// (`500MB`, `2GiB`, bytes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
}

/// Arguments of `cuedag cache verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The cache directory (the `dest=` of `--cache-to type=local`).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

fn parse_size(text: &str) -> Result<u64, String> {
    cuedag_backends::local::parse_size(text).map_err(|error| error.to_string())
}

/// Refuses a directory that holds no cache: pruning it would treat every
/// file under `blobs/` as unreferenced.
fn check_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(miette!("no cache directory at `{}`", dir.display()));
    }
    if !dir.join("index.json").is_file() && !dir.join("oci-layout").is_file() {
        return Err(miette!(
            "`{}` is not a cache directory (it has no `index.json`)",
            dir.display()
        ));
    }
    Ok(())
}

/// Runs `cuedag cache`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        CacheCommand::Prune(args) => prune(args),
        CacheCommand::Verify(args) => verify(args),
    }
}

fn prune(args: PruneArgs) -> Result<ExitCode> {
    check_dir(&args.dir)?;
    let policy = PrunePolicy {
        keep_last: args.keep,
        max_size: args.max_size,
    };
    let report = LocalCache::new(&args.dir)
        .prune(&policy)
        .map_err(|error| miette!("pruning `{}`: {error}", args.dir.display()))?;
    let removed = if report.removed_entries.is_empty() {
        String::new()
    } else {
        format!(" ({})", report.removed_entries.join(", "))
    };
    #[allow(clippy::print_stdout)]
    {
        println!(
            "removed {} entries{removed} and {} blobs, freed {} bytes, {} bytes kept in {}",
            report.removed_entries.len(),
            report.removed_blobs,
            report.freed_bytes,
            report.kept_bytes,
            args.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    check_dir(&args.dir)?;
    let report = LocalCache::new(&args.dir)
        .verify()
        .map_err(|error| miette!("verifying `{}`: {error}", args.dir.display()))?;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "{} blobs valid, {} corrupt (removed), {} missing in {}",
            report.valid,
            report.corrupt.len(),
            report.missing.len(),
            args.dir.display()
        );
        for digest in &report.corrupt {
            println!("corrupt: {digest}");
        }
        for digest in &report.missing {
            println!("missing: {digest}");
        }
    }
    Ok(if report.corrupt.is_empty() && report.missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
