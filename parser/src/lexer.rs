//! The lexer: turns source text into a lossless token stream.
//!
//! Every byte of the input belongs to exactly one [`Token`]; whitespace,
//! newlines and comments are tokens too ("trivia"). A string literal is one
//! token, interpolations included: the parser re-lexes the inside of each
//! `\(...)` when it decodes the literal. Bytes that cannot start any token
//! become [`TokenKind::ErrorChar`] tokens, so lexing never fails.

use logos::Logos;

use crate::ast::Span;

/// How deeply string interpolations may nest inside each other.
const MAX_STRING_NESTING: u32 = 64;

/// Why a stretch of input could not be lexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LexError {
    /// A character that starts no token.
    #[default]
    BadChar,
    /// A string literal without its closing quote.
    UnterminatedString,
    /// Interpolations nested too deeply.
    StringTooDeep,
    /// An attribute without a balanced `(...)` body.
    BadAttribute,
}

/// The kind of a token.
#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[logos(error = LexError)]
pub enum TokenKind {
    /// Spaces, tabs and carriage returns.
    #[regex(r"[ \t\r]+")]
    Whitespace,
    /// One `\n`.
    #[token("\n")]
    Newline,
    /// `// ...` up to (not including) the newline.
    #[regex(r"//[^\n]*", allow_greedy = true)]
    Comment,
    /// An identifier: `x`, `#Def`, `_h`, `_#h`, `$x`, `_`.
    #[regex(r"(#|_#)?[\p{L}_$][\p{L}\p{Nd}_$]*")]
    Ident,
    /// `package`
    #[token("package")]
    Package,
    /// `import`
    #[token("import")]
    Import,
    /// `for`
    #[token("for")]
    For,
    /// `in`
    #[token("in")]
    In,
    /// `if`
    #[token("if")]
    If,
    /// `let`
    #[token("let")]
    Let,
    /// `null`
    #[token("null")]
    Null,
    /// `true`
    #[token("true")]
    True,
    /// `false`
    #[token("false")]
    False,
    /// `_|_`
    #[token("_|_")]
    Bottom,
    /// A number literal (validated by the parser).
    #[regex(r"[0-9][0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9_]*)?([KMGTP]i?)?")]
    #[regex(r"\.[0-9][0-9_]*([eE][+-]?[0-9_]*)?([KMGTP]i?)?")]
    #[regex(r"0[xX][0-9a-fA-F_]*")]
    #[regex(r"0[oO][0-7_]*")]
    #[regex(r"0[bB][01_]*")]
    Number,
    /// A string or bytes literal in any form, interpolations included.
    #[regex(r#"#*""#, lex_string)]
    #[regex(r"#*'", lex_string)]
    String,
    /// `@name(body)`.
    #[regex(r"@[a-zA-Z_$#][a-zA-Z0-9_$#]*", lex_attribute)]
    Attribute,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `[`
    #[token("[")]
    LBrack,
    /// `]`
    #[token("]")]
    RBrack,
    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `,`
    #[token(",")]
    Comma,
    /// `:`
    #[token(":")]
    Colon,
    /// `?`
    #[token("?")]
    Question,
    /// `!`
    #[token("!")]
    Not,
    /// `=`
    #[token("=")]
    Assign,
    /// `==`
    #[token("==")]
    Eq,
    /// `!=`
    #[token("!=")]
    Neq,
    /// `<`
    #[token("<")]
    Lss,
    /// `<=`
    #[token("<=")]
    Leq,
    /// `>`
    #[token(">")]
    Gtr,
    /// `>=`
    #[token(">=")]
    Geq,
    /// `=~`
    #[token("=~")]
    Match,
    /// `!~`
    #[token("!~")]
    NotMatch,
    /// `+`
    #[token("+")]
    Add,
    /// `-`
    #[token("-")]
    Sub,
    /// `*`
    #[token("*")]
    Mul,
    /// `/`
    #[token("/")]
    Quo,
    /// `&`
    #[token("&")]
    And,
    /// `&&`
    #[token("&&")]
    Land,
    /// `|`
    #[token("|")]
    Or,
    /// `||`
    #[token("||")]
    Lor,
    /// `...`
    #[token("...")]
    Ellipsis,
    /// `.`
    #[token(".")]
    Period,
    /// Bytes that start no token.
    ErrorChar,
    /// A string literal without its closing quote (up to the end of the line,
    /// or of the file for multi-line strings).
    ErrorString,
    /// A string whose interpolations nest too deeply.
    ErrorStringDepth,
    /// An attribute without a balanced `(...)` body.
    ErrorAttribute,
    /// The end of the input (never stored in a token list).
    Eof,
}

impl TokenKind {
    /// Whitespace, newlines and comments.
    pub fn is_trivia(self) -> bool {
        matches!(
            self,
            TokenKind::Whitespace | TokenKind::Newline | TokenKind::Comment
        )
    }

    /// Whether a newline after this token ends the current element (CUE's
    /// automatic comma insertion).
    pub fn ends_line(self) -> bool {
        matches!(
            self,
            TokenKind::Ident
                | TokenKind::Package
                | TokenKind::Import
                | TokenKind::For
                | TokenKind::In
                | TokenKind::If
                | TokenKind::Let
                | TokenKind::Null
                | TokenKind::True
                | TokenKind::False
                | TokenKind::Bottom
                | TokenKind::Number
                | TokenKind::String
                | TokenKind::Attribute
                | TokenKind::RBrace
                | TokenKind::RBrack
                | TokenKind::RParen
                | TokenKind::Ellipsis
                | TokenKind::ErrorString
                | TokenKind::ErrorStringDepth
                | TokenKind::ErrorAttribute
        )
    }

    /// Keywords, which may also be used as labels.
    pub fn is_keyword(self) -> bool {
        matches!(
            self,
            TokenKind::Package
                | TokenKind::Import
                | TokenKind::For
                | TokenKind::In
                | TokenKind::If
                | TokenKind::Let
                | TokenKind::Null
                | TokenKind::True
                | TokenKind::False
        )
    }

    /// Whether the token is a lexing error.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            TokenKind::ErrorChar
                | TokenKind::ErrorString
                | TokenKind::ErrorStringDepth
                | TokenKind::ErrorAttribute
        )
    }

    /// A short description for messages: `` `{` ``, `identifier`, ...
    pub fn describe(self) -> &'static str {
        match self {
            TokenKind::Whitespace => "whitespace",
            TokenKind::Newline => "newline",
            TokenKind::Comment => "comment",
            TokenKind::Ident => "identifier",
            TokenKind::Package => "keyword `package`",
            TokenKind::Import => "keyword `import`",
            TokenKind::For => "keyword `for`",
            TokenKind::In => "keyword `in`",
            TokenKind::If => "keyword `if`",
            TokenKind::Let => "keyword `let`",
            TokenKind::Null => "`null`",
            TokenKind::True => "`true`",
            TokenKind::False => "`false`",
            TokenKind::Bottom => "`_|_`",
            TokenKind::Number => "number",
            TokenKind::String => "string",
            TokenKind::Attribute => "attribute",
            TokenKind::LBrace => "`{`",
            TokenKind::RBrace => "`}`",
            TokenKind::LBrack => "`[`",
            TokenKind::RBrack => "`]`",
            TokenKind::LParen => "`(`",
            TokenKind::RParen => "`)`",
            TokenKind::Comma => "`,`",
            TokenKind::Colon => "`:`",
            TokenKind::Question => "`?`",
            TokenKind::Not => "`!`",
            TokenKind::Assign => "`=`",
            TokenKind::Eq => "`==`",
            TokenKind::Neq => "`!=`",
            TokenKind::Lss => "`<`",
            TokenKind::Leq => "`<=`",
            TokenKind::Gtr => "`>`",
            TokenKind::Geq => "`>=`",
            TokenKind::Match => "`=~`",
            TokenKind::NotMatch => "`!~`",
            TokenKind::Add => "`+`",
            TokenKind::Sub => "`-`",
            TokenKind::Mul => "`*`",
            TokenKind::Quo => "`/`",
            TokenKind::And => "`&`",
            TokenKind::Land => "`&&`",
            TokenKind::Or => "`|`",
            TokenKind::Lor => "`||`",
            TokenKind::Ellipsis => "`...`",
            TokenKind::Period => "`.`",
            TokenKind::ErrorChar => "invalid character",
            TokenKind::ErrorString => "unterminated string",
            TokenKind::ErrorStringDepth => "string",
            TokenKind::ErrorAttribute => "malformed attribute",
            TokenKind::Eof => "end of file",
        }
    }
}

/// One token: a kind and the bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Which bytes it covers.
    pub span: Span,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Splits `text` into tokens covering every byte, in order.
pub fn lex(text: &str) -> Vec<Token> {
    lex_at(text, 0)
}

/// Like [`lex`], with every span shifted by `offset` (used to lex the inside
/// of an interpolation).
pub(crate) fn lex_at(text: &str, offset: u32) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::with_capacity(text.len() / 2 + 4);
    let mut lexer = TokenKind::lexer(text);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let kind = match result {
            Ok(kind) => kind,
            Err(LexError::BadChar) => TokenKind::ErrorChar,
            Err(LexError::UnterminatedString) => TokenKind::ErrorString,
            Err(LexError::StringTooDeep) => TokenKind::ErrorStringDepth,
            Err(LexError::BadAttribute) => TokenKind::ErrorAttribute,
        };
        let span = Span::new(to_u32(range.start) + offset, to_u32(range.end) + offset);
        if kind == TokenKind::ErrorChar {
            // Merge runs of bad bytes so a multi-byte character is one token.
            if let Some(last) = tokens.last_mut() {
                if last.kind == TokenKind::ErrorChar && last.span.end == span.start {
                    last.span.end = span.end;
                    continue;
                }
            }
        }
        tokens.push(Token { kind, span });
    }
    tokens
}

fn lex_string(lex: &mut logos::Lexer<TokenKind>) -> Result<(), LexError> {
    let start = lex.span().start;
    let matched_end = lex.span().end;
    let (end, result) = scan_string(lex.source().as_bytes(), start, 0);
    lex.bump(end.saturating_sub(matched_end));
    result
}

fn lex_attribute(lex: &mut logos::Lexer<TokenKind>) -> Result<(), LexError> {
    let src = lex.source().as_bytes();
    let start = lex.span().end;
    if src.get(start) != Some(&b'(') {
        return Err(LexError::BadAttribute);
    }
    let mut depth = 0u32;
    let mut i = start;
    while let Some(&c) = src.get(i) {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    lex.bump(i + 1 - start);
                    return Ok(());
                }
            }
            b'\n' => break,
            b'"' | b'\'' | b'#' if starts_string(src, i) => {
                let (end, result) = scan_string(src, i, 0);
                if result.is_err() {
                    lex.bump(end - start);
                    return Err(LexError::BadAttribute);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    lex.bump(i - start);
    Err(LexError::BadAttribute)
}

/// Whether a string literal (`"`, `'`, or `#`s then a quote) starts at `i`.
fn starts_string(src: &[u8], i: usize) -> bool {
    let mut j = i;
    while src.get(j) == Some(&b'#') {
        j += 1;
    }
    matches!(src.get(j), Some(b'"' | b'\''))
}

/// The shape of a string literal's delimiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delims {
    /// Number of `#`.
    pub hashes: usize,
    /// `"` or `'`.
    pub quote: u8,
    /// Triple quotes.
    pub multiline: bool,
}

impl Delims {
    /// Reads the opening delimiter at `start`; returns it and the offset of
    /// the first byte after it.
    pub(crate) fn open(src: &[u8], start: usize) -> (Delims, usize) {
        let mut i = start;
        while src.get(i) == Some(&b'#') {
            i += 1;
        }
        let hashes = i - start;
        let quote = src.get(i).copied().unwrap_or(b'"');
        let multiline = src.get(i + 1) == Some(&quote) && src.get(i + 2) == Some(&quote);
        let body = if multiline { i + 3 } else { i + 1 };
        (
            Delims {
                hashes,
                quote,
                multiline,
            },
            body,
        )
    }

    /// Whether the closing delimiter starts at `i`; returns its length.
    pub(crate) fn close_at(&self, src: &[u8], i: usize) -> Option<usize> {
        let quotes = if self.multiline { 3 } else { 1 };
        for k in 0..quotes {
            if src.get(i + k) != Some(&self.quote) {
                return None;
            }
        }
        for k in 0..self.hashes {
            if src.get(i + quotes + k) != Some(&b'#') {
                return None;
            }
        }
        Some(quotes + self.hashes)
    }

    /// Whether an escape (`\` and the right number of `#`) starts at `i`;
    /// returns the offset of the escaped character.
    pub(crate) fn escape_at(&self, src: &[u8], i: usize) -> Option<usize> {
        if src.get(i) != Some(&b'\\') {
            return None;
        }
        for k in 0..self.hashes {
            if src.get(i + 1 + k) != Some(&b'#') {
                return None;
            }
        }
        Some(i + 1 + self.hashes)
    }
}

/// Scans the string literal starting at `start`; returns the offset just
/// past it and whether it was well terminated.
pub(crate) fn scan_string(src: &[u8], start: usize, depth: u32) -> (usize, Result<(), LexError>) {
    if depth > MAX_STRING_NESTING {
        return (skip_line(src, start), Err(LexError::StringTooDeep));
    }
    let (delims, mut i) = Delims::open(src, start);
    loop {
        let Some(&c) = src.get(i) else {
            return (src.len(), Err(LexError::UnterminatedString));
        };
        if c == b'\n' && !delims.multiline {
            return (i, Err(LexError::UnterminatedString));
        }
        if let Some(len) = delims.close_at(src, i) {
            return (i + len, Ok(()));
        }
        if let Some(j) = delims.escape_at(src, i) {
            match src.get(j) {
                Some(b'(') => {
                    let (end, result) = scan_interpolation(src, j + 1, delims.multiline, depth);
                    if result.is_err() {
                        return (end, result);
                    }
                    i = end;
                }
                Some(b'\n') if !delims.multiline => {
                    return (j, Err(LexError::UnterminatedString));
                }
                Some(_) => i = j + 1,
                None => return (src.len(), Err(LexError::UnterminatedString)),
            }
            continue;
        }
        i += 1;
    }
}

/// Scans the inside of `\(...)` starting after the `(`; returns the offset
/// just past the closing `)`.
fn scan_interpolation(
    src: &[u8],
    start: usize,
    multiline: bool,
    depth: u32,
) -> (usize, Result<(), LexError>) {
    let mut parens = 1u32;
    let mut i = start;
    while let Some(&c) = src.get(i) {
        match c {
            b'(' => parens += 1,
            b')' => {
                parens -= 1;
                if parens == 0 {
                    return (i + 1, Ok(()));
                }
            }
            b'\n' if !multiline => return (i, Err(LexError::UnterminatedString)),
            b'"' | b'\'' | b'#' if starts_string(src, i) => {
                let (end, result) = scan_string(src, i, depth + 1);
                if result.is_err() {
                    return (end, result);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (src.len(), Err(LexError::UnterminatedString))
}

fn skip_line(src: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&c) = src.get(i) {
        if c == b'\n' {
            return i;
        }
        i += 1;
    }
    src.len()
}
