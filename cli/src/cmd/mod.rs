//! One module per subcommand.

pub mod cache;
pub mod do_;
pub mod eval;
pub mod export;
pub mod parse;
pub mod plan;
pub mod project;
pub mod prune;

/// Prints an error report to stderr.
pub fn print_report(report: &miette::Report) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{report:?}");
    }
}
