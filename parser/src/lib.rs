//! CUE v0.4 lexer and parser.
//!
//! Depends on nothing else in the workspace and does no IO. Parsing never
//! fails and never panics: [`parse`] yields a syntax tree plus a list of
//! diagnostics. Every node has a byte [`ast::Span`]; the token stream kept in
//! [`Parse`] covers every byte of the input, so the source can be printed back
//! exactly.

pub mod ast;
pub mod codes;
pub mod diagnostic;
pub mod lexer;
mod literal;
mod parser;
pub mod stack;

pub use ast::Span;
pub use diagnostic::{Diagnostic, Severity, SpanLabel};
pub use lexer::{lex, Token, TokenKind};

/// The result of parsing one file: a tree and the problems found.
#[derive(Debug, Clone, Default)]
pub struct Parse {
    /// The syntax tree; parts that could not be parsed are `Bad` nodes.
    pub file: ast::File,
    /// Every syntax error, in source order.
    pub errors: Vec<Diagnostic>,
    /// Every token of the source, trivia included, in order; together they
    /// cover every byte (see [`print`]).
    pub tokens: Vec<Token>,
    /// The source text that was parsed.
    pub source: String,
}

impl Parse {
    /// Whether the file parsed without errors.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Parses one CUE source text.
pub fn parse(text: &str) -> Parse {
    let tokens = lex(text);
    let end = u32::try_from(text.len()).unwrap_or(u32::MAX);
    let mut parser = parser::Parser::new(text, tokens, 0, end);
    let file = parser.parse_file();
    let (tokens, errors) = parser.into_tokens();
    let errors = one_error_per_line(text, errors);
    Parse {
        file,
        errors,
        tokens,
        source: text.to_owned(),
    }
}

/// Parses a single expression (e.g. a `--with` value or a test snippet).
/// Text after the expression is reported as an error.
pub fn parse_expr(text: &str) -> (ast::Expr, Vec<Diagnostic>) {
    let tokens = lex(text);
    let end = u32::try_from(text.len()).unwrap_or(u32::MAX);
    let mut parser = parser::Parser::new(text, tokens, 0, end);
    let expr = parser.parse_expr_to_end();
    let (_, errors) = parser.into_tokens();
    (expr, one_error_per_line(text, errors))
}

/// Sorts errors by position and keeps the first one of each line: later
/// errors on a line are almost always consequences of the first.
fn one_error_per_line(text: &str, mut errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    errors.sort_by_key(|d| d.primary_span().map_or(0, |s| s.start));
    if errors.len() < 2 {
        return errors;
    }
    let index = LineIndex::new(text);
    let mut last_line = None;
    errors.retain(|d| {
        let (line, _) = index.line_col(d.primary_span().map_or(0, |s| s.start));
        let keep = last_line != Some(line);
        last_line = Some(line);
        keep
    });
    errors
}

/// Rebuilds the source text from the token stream of `parse`. Because the
/// tokens cover every byte, `print(&parse(s)) == s`.
pub fn print(parse: &Parse) -> String {
    print_tokens(&parse.source, &parse.tokens)
}

/// Concatenates the text of `tokens`, taken from `text`.
pub fn print_tokens(text: &str, tokens: &[Token]) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    for token in tokens {
        if let Some(piece) = text.as_bytes().get(token.span.range()) {
            bytes.extend_from_slice(piece);
        }
    }
    match String::from_utf8(bytes) {
        Ok(out) => out,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
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
