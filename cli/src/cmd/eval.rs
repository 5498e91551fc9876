//! `cuedag eval`: prints the evaluated configuration as CUE, non-concrete
//! values allowed (like `cue eval`).

use std::io::Write as _;
use std::process::ExitCode;

use cuedag_evaluator::render_eval_errors;

use super::export::{load, render_load_error, target};

/// Arguments of `cuedag eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Evaluate this expression (a path like `actions.build`, or any CUE expression).
    #[arg(short = 'e', long = "expression")]
    pub expression: Option<String>,
    /// Extra CUE source unified at the root.
    #[arg(long = "with")]
    pub with: Vec<String>,
    /// Directories or `.cue` files (default: the current directory).
    pub paths: Vec<String>,
}

/// Runs `cuedag eval`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let (inst, lookup) = match load(&args.paths, &args.with, args.expression.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            let _ = std::io::stderr().write_all(render_load_error(&e).as_bytes());
            return Ok(ExitCode::from(1));
        }
    };
    let mut ev = inst.evaluate();
    let Some(v) = target(&mut ev, lookup.as_deref()) else {
        let _ = std::io::stderr().write_all(b"expression not found\n");
        return Ok(ExitCode::from(1));
    };
    let text = ev.eval_text(v);
    let _ = std::io::stdout().write_all(text.as_bytes());
    // Like `cue eval`: incomplete values are fine, errors (conflicts,
    // closedness, failed constraints) are reported and fail the command.
    let errors: Vec<_> = match ev.to_value(v) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().filter(|e| !e.incomplete).collect(),
    };
    if errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let _ = std::io::stderr().write_all(render_eval_errors(&errors).as_bytes());
    Ok(ExitCode::from(1))
}
