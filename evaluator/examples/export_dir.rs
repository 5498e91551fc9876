//! `cargo run --release -p cuedag-evaluator --example export_dir -- DIR`:
//! exports the package in DIR as JSON, reading files from disk. Used by
//! `benches/vs_reference.sh` to measure the peak memory of one export
//! (`/usr/bin/time -v`) without building the whole CLI.

use std::io::Write as _;
use std::process::ExitCode;

use cuedag_evaluator::{load_instance, LoadOptions, Loader};

struct FsLoader;

impl Loader for FsLoader {
    fn read_dir(&self, dir: &str) -> Option<Vec<(String, bool)>> {
        let dir = if dir.is_empty() { "." } else { dir };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        Some(out)
    }

    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let instance = match load_instance(&FsLoader, &args, &LoadOptions::default()) {
        Ok(instance) => instance,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "load error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut evaluation = instance.evaluate();
    let root = evaluation.root();
    match evaluation.export_json(root) {
        Ok(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                let _ = writeln!(std::io::stderr(), "{}", e.render());
            }
            ExitCode::FAILURE
        }
    }
}
