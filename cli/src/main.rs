//! The `cuedag` command. `main` only parses arguments, sets up tracing and
//! maps results to exit codes: 0 ok, 1 diagnostics or failure, 2 usage.
//!
//! Invoked as `dagger` (the executable's file name), it calls itself
//! `dagger` in usage and help, and behaves the same.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod cmd;
mod progress;

/// Runs Dagger 0.2 CUE build plans.
#[derive(Debug, Parser)]
#[command(name = "cuedag", version, about, long_about = None)]
struct Cli {
    /// Progress output: auto, plain, tty or json.
    #[arg(long, global = true, env = "DAGGER_LOG_FORMAT", default_value = "auto")]
    log_format: String,
    /// Log level: trace, debug, info, warn or error.
    #[arg(
        short = 'l',
        long,
        global = true,
        env = "DAGGER_LOG_LEVEL",
        default_value = "info"
    )]
    log_level: String,
    /// Unlock experimental flags.
    #[arg(long, global = true, env = "DAGGER_EXPERIMENTAL")]
    experimental: bool,
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
    #[command(disable_help_flag = true)]
    Do(cmd::do_::Args),
    /// Inspect a plan (`plan graph`).
    Plan(cmd::plan::Args),
    /// Create or update a project (`project init`, `project update`).
    Project(cmd::project::Args),
    /// Empty the local store, or trim it (`--keep-storage SIZE`).
    Prune(cmd::prune::Args),
    /// Maintain a `type=local` cache directory (`cache prune`, `cache verify`).
    Cache(cmd::cache::Args),
}

/// Options every subcommand shares (`--log-format`, `--log-level`,
/// `--experimental`) and the name the binary was called by.
#[derive(Debug, Clone)]
pub struct Global {
    /// `cuedag` or `dagger`.
    pub bin_name: String,
    /// `--log-format`, validated.
    pub log_format: progress::LogFormat,
    /// `--log-level`, validated.
    pub log_level: cuedag_backends::Level,
    /// `--experimental`.
    pub experimental: bool,
}

/// The name the binary was invoked by: `dagger` when the executable (or a
/// link to it) is called `dagger`, else `cuedag`.
fn bin_name() -> String {
    let invoked = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        });
    match invoked.as_deref() {
        Some("dagger") => "dagger".to_string(),
        _ => "cuedag".to_string(),
    }
}

fn fail(message: &str) -> ExitCode {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{message}");
    }
    ExitCode::from(1)
}

/// Shows the libraries' warnings (a corrupt cache blob, a registry falling
/// back to its mirror, ...) on stderr when `CUEDAG_LOG` does not set a
/// filter: as JSON objects with `--log-format json`, else as plain lines.
/// `--log-level error` keeps only errors.
fn init_warnings(log_format: progress::LogFormat, log_level: cuedag_backends::Level) {
    if std::env::var_os("CUEDAG_LOG").is_some() {
        return;
    }
    let filter = if log_level >= cuedag_backends::Level::Error {
        "error"
    } else {
        "warn"
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = if log_format.resolve() == progress::LogFormat::Json {
        builder.json().try_init()
    } else {
        builder.without_time().try_init()
    };
}

fn main() -> ExitCode {
    let bin_name = bin_name();
    let command = if bin_name == "dagger" {
        Cli::command().name("dagger").bin_name("dagger")
    } else {
        Cli::command()
    };
    let matches = command.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Ok(filter) = std::env::var("CUEDAG_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let Some(log_format) = progress::LogFormat::parse(&cli.log_format) else {
        return fail(&format!("invalid --log-format \"{}\"", cli.log_format));
    };
    let Some(log_level) = progress::parse_level(&cli.log_level) else {
        return fail(&format!("invalid --log-level \"{}\"", cli.log_level));
    };
    init_warnings(log_format, log_level);
    let global = Global {
        bin_name,
        log_format,
        log_level,
        experimental: cli.experimental,
    };
    let result = match cli.command {
        Command::Parse(args) => cmd::parse::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Do(args) => cmd::do_::run(args, &global),
        Command::Plan(args) => cmd::plan::run(args, &global),
        Command::Project(args) => cmd::project::run(args),
        Command::Prune(args) => cmd::prune::run(args),
        Command::Cache(args) => cmd::cache::run(args),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            cmd::print_report(&report);
            ExitCode::from(1)
        }
    }
}
