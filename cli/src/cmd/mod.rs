//! One module per subcommand.

pub mod parse;

/// Prints an error report to stderr.
pub fn print_report(report: &miette::Report) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{report:?}");
    }
}
