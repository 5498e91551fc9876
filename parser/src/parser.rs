//! The recursive-descent parser.
//!
//! The parser walks the token list, skipping trivia. Automatic comma
//! insertion is done here: when a newline separates the previous token (an
//! identifier, a literal, a closing bracket, ...) from the current one, the
//! parser sees a virtual `,` first. Declarations are parsed expression-first:
//! `a`, `"a"`, `(a)`, `[a]` and `X=a` are parsed as expressions and turned
//! into labels when a `:` follows. Errors are recorded and parsing resumes at
//! the next `,`, newline or closing bracket.

use crate::ast::*;
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::lexer::{lex_at, Token, TokenKind};
use crate::literal::{decode_number, decode_string, Segment};

/// How deeply brackets, operators and shorthand fields may nest.
pub(crate) const MAX_DEPTH: u32 = 2000;
/// Most binary operators in one left-associative chain (`a + b + ...`).
pub(crate) const MAX_CHAIN: u32 = 4000;

/// At most this many errors are kept per file.
const MAX_ERRORS: usize = 500;

pub(crate) struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    /// Index of the current significant token (`toks.len()` at the end).
    pos: usize,
    prev_kind: TokenKind,
    prev_end: u32,
    virtual_comma: bool,
    depth: u32,
    pub(crate) errors: Vec<Diagnostic>,
    lex_error_starts: Vec<u32>,
    last_error_start: Option<u32>,
    too_deep: bool,
    /// Where the end of input is (the end of an interpolation for a
    /// sub-parser).
    end: u32,
    /// Scratch stacks: children are collected here and moved into an
    /// exactly-sized `Vec` when their parent is complete.
    decl_stack: Vec<Decl>,
    elem_stack: Vec<ListElem>,
    arg_stack: Vec<Expr>,
}

fn closes(open: TokenKind) -> TokenKind {
    match open {
        TokenKind::LBrace => TokenKind::RBrace,
        TokenKind::LBrack => TokenKind::RBrack,
        _ => TokenKind::RParen,
    }
}

fn binary_op(kind: TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Or => BinaryOp::Disjunction,
        TokenKind::And => BinaryOp::Unification,
        TokenKind::Lor => BinaryOp::Or,
        TokenKind::Land => BinaryOp::And,
        TokenKind::Eq => BinaryOp::Equal,
        TokenKind::Neq => BinaryOp::NotEqual,
        TokenKind::Lss => BinaryOp::Less,
        TokenKind::Leq => BinaryOp::LessEqual,
        TokenKind::Gtr => BinaryOp::Greater,
        TokenKind::Geq => BinaryOp::GreaterEqual,
        TokenKind::Match => BinaryOp::Match,
        TokenKind::NotMatch => BinaryOp::NotMatch,
        TokenKind::Add => BinaryOp::Add,
        TokenKind::Sub => BinaryOp::Sub,
        TokenKind::Mul => BinaryOp::Mul,
        TokenKind::Quo => BinaryOp::Div,
        _ => return None,
    })
}

fn unary_op(kind: TokenKind) -> Option<UnaryOp> {
    Some(match kind {
        TokenKind::Add => UnaryOp::Plus,
        TokenKind::Sub => UnaryOp::Neg,
        TokenKind::Not => UnaryOp::Not,
        TokenKind::Mul => UnaryOp::Default,
        TokenKind::Neq => UnaryOp::NotEqual,
        TokenKind::Lss => UnaryOp::Less,
        TokenKind::Leq => UnaryOp::LessEqual,
        TokenKind::Gtr => UnaryOp::Greater,
        TokenKind::Geq => UnaryOp::GreaterEqual,
        TokenKind::Match => UnaryOp::Match,
        TokenKind::NotMatch => UnaryOp::NotMatch,
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str, toks: Vec<Token>, depth: u32, end: u32) -> Self {
        let mut parser = Parser {
            end,
            decl_stack: Vec::new(),
            elem_stack: Vec::new(),
            arg_stack: Vec::new(),
            text,
            toks,
            pos: 0,
            prev_kind: TokenKind::Comma,
            prev_end: 0,
            virtual_comma: false,
            depth,
            errors: Vec::new(),
            lex_error_starts: Vec::new(),
            last_error_start: None,
            too_deep: false,
        };
        parser.report_lex_errors();
        if let Some(first) = parser.toks.first() {
            parser.prev_end = first.span.start;
        }
        parser.skip_trivia();
        parser
    }

    pub(crate) fn into_tokens(self) -> (Vec<Token>, Vec<Diagnostic>) {
        (self.toks, self.errors)
    }

    // ----- Token navigation -------------------------------------------------

    fn skip_trivia(&mut self) {
        let mut newline = false;
        while let Some(tok) = self.toks.get(self.pos) {
            match tok.kind {
                TokenKind::Newline => newline = true,
                TokenKind::Whitespace | TokenKind::Comment => {}
                _ => break,
            }
            self.pos += 1;
        }
        self.virtual_comma = newline && self.prev_kind.ends_line();
    }

    fn kind(&self) -> TokenKind {
        if self.virtual_comma {
            return TokenKind::Comma;
        }
        self.toks.get(self.pos).map_or(TokenKind::Eof, |t| t.kind)
    }

    fn span(&self) -> Span {
        if self.virtual_comma {
            return Span::new(self.prev_end, self.prev_end);
        }
        match self.toks.get(self.pos) {
            Some(t) => t.span,
            None => Span::new(self.end, self.end),
        }
    }

    fn start(&self) -> u32 {
        self.span().start
    }

    fn tok_text(&self, span: Span) -> &'a str {
        self.text.get(span.range()).unwrap_or_default()
    }

    fn bump(&mut self) {
        if self.virtual_comma {
            self.virtual_comma = false;
            return;
        }
        if let Some(tok) = self.toks.get(self.pos) {
            self.prev_kind = tok.kind;
            self.prev_end = tok.span.end;
            self.pos += 1;
            self.skip_trivia();
        }
    }

    /// The kind of the `n`-th significant token after the current real one.
    fn peek(&self, n: usize) -> TokenKind {
        let mut seen = 0;
        let mut i = self.pos + 1;
        while let Some(tok) = self.toks.get(i) {
            if !tok.kind.is_trivia() {
                seen += 1;
                if seen == n {
                    return tok.kind;
                }
            }
            i += 1;
        }
        TokenKind::Eof
    }

    /// Whether the `n`-th token after the current one starts `:`, `?:` or
    /// `!:` (so the current token is a label).
    fn label_follows(&self, n: usize) -> bool {
        match self.peek(n) {
            TokenKind::Colon => true,
            TokenKind::Question | TokenKind::Not => self.peek(n + 1) == TokenKind::Colon,
            _ => false,
        }
    }

    /// Whether the parser stands on `:`, `?:` or `!:` after a label. Like
    /// CUE, a newline may stand between a label and its `:`.
    fn at_label_end(&self) -> bool {
        if self.virtual_comma {
            return match self.toks.get(self.pos).map(|t| t.kind) {
                Some(TokenKind::Colon) => true,
                Some(TokenKind::Question | TokenKind::Not) => self.peek(1) == TokenKind::Colon,
                _ => false,
            };
        }
        match self.kind() {
            TokenKind::Colon => true,
            TokenKind::Question | TokenKind::Not => self.peek(1) == TokenKind::Colon,
            _ => false,
        }
    }

    fn found(&self) -> String {
        match self.kind() {
            TokenKind::Comma if self.virtual_comma => "newline".to_owned(),
            TokenKind::Ident => format!("identifier `{}`", self.tok_text(self.span())),
            TokenKind::Number => format!("number `{}`", self.tok_text(self.span())),
            kind => kind.describe().to_owned(),
        }
    }

    // ----- Errors -----------------------------------------------------------

    fn report_lex_errors(&mut self) {
        let mut found = Vec::new();
        for tok in &self.toks {
            let text = self.text.get(tok.span.range()).unwrap_or_default();
            let diag = match tok.kind {
                TokenKind::ErrorChar => {
                    let help = match text.chars().next() {
                        Some('\'') | Some('"') => None,
                        Some('#') => Some("`#` starts a definition name such as `#Def`, or a raw string such as `#\"...\"#`"),
                        Some('\\') => Some("a backslash is only meaningful inside a string"),
                        Some('%') => Some("CUE has no `%` operator; use `mod(a, b)` or `rem(a, b)`"),
                        Some(c) if !c.is_ascii() => Some("identifiers may only contain letters, digits, `_` and `$`"),
                        _ => None,
                    };
                    let d = Diagnostic::error(
                        codes::E0101,
                        format!("invalid character `{}`", text.escape_debug()),
                        tok.span,
                        "not valid here",
                    );
                    match help {
                        Some(h) => d.with_help(h),
                        None => d,
                    }
                }
                TokenKind::ErrorString => {
                    let (close, what) = closing_delimiter(text);
                    Diagnostic::error(
                        codes::E0102,
                        format!("unterminated {what} literal"),
                        Span::new(tok.span.start, tok.span.start + opening_len(text)),
                        format!("{what} starts here"),
                    )
                    .with_help(format!("close it with `{close}`"))
                }
                TokenKind::ErrorStringDepth => Diagnostic::error(
                    codes::E0110,
                    "string interpolations nested too deeply",
                    Span::new(tok.span.start, tok.span.start + 1),
                    "this string",
                )
                .with_help("move inner strings into separate fields"),
                TokenKind::ErrorAttribute => {
                    let has_paren = text.contains('(');
                    let d = Diagnostic::error(
                        codes::E0103,
                        if has_paren {
                            "unterminated attribute: expected `)`"
                        } else {
                            "expected `(` after attribute name"
                        },
                        tok.span,
                        "malformed attribute",
                    );
                    d.with_help("write attributes as `@name(args)`, e.g. `@dagger(generated)`")
                }
                _ => continue,
            };
            found.push(diag);
        }
        self.errors.extend(found);
        // Syntax errors at a bad token are not reported a second time.
        self.lex_error_starts = self
            .toks
            .iter()
            .filter(|t| t.kind.is_error())
            .map(|t| t.span.start)
            .collect();
    }

    fn error(&mut self, diag: Diagnostic) {
        if self.too_deep || self.errors.len() >= MAX_ERRORS {
            return;
        }
        let start = diag.primary_span().map_or(0, |s| s.start);
        if self.last_error_start == Some(start)
            || self.lex_error_starts.binary_search(&start).is_ok()
        {
            return;
        }
        self.last_error_start = Some(start);
        self.errors.push(diag);
    }

    fn error_expected(&mut self, code: &'static str, expected: &str) {
        let found = self.found();
        let span = self.span();
        self.error(Diagnostic::error(
            code,
            format!("expected {expected}, found {found}"),
            span,
            format!("expected {expected}"),
        ));
    }

    /// Enters one nesting level; `false` when too deep (reported once; the
    /// rest of the input is skipped).
    fn enter(&mut self) -> bool {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            if !self.too_deep {
                let span = self.span();
                self.error(
                    Diagnostic::error(
                        codes::E0299,
                        "nesting too deep",
                        span,
                        "too deep",
                    )
                    .with_help(
                        "at most about 1000 levels of brackets may nest; split the value into separate fields",
                    ),
                );
                self.too_deep = true;
            }
            while self.kind() != TokenKind::Eof {
                self.bump();
            }
            return false;
        }
        true
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Skips to the next `,` (or newline) or one of `stops`, keeping
    /// brackets balanced. Returns the skipped span.
    fn recover(&mut self, stops: &[TokenKind]) -> Span {
        let start = self.start();
        let mut end = start;
        let mut stack: Vec<TokenKind> = Vec::new();
        loop {
            let kind = self.kind();
            if kind == TokenKind::Eof {
                break;
            }
            if stack.is_empty() && (kind == TokenKind::Comma || stops.contains(&kind)) {
                break;
            }
            match kind {
                TokenKind::LBrace | TokenKind::LBrack | TokenKind::LParen => stack.push(kind),
                TokenKind::RBrace | TokenKind::RBrack | TokenKind::RParen => {
                    if let Some(pos) = stack.iter().rposition(|&open| closes(open) == kind) {
                        stack.truncate(pos);
                    } else if kind == TokenKind::RBrace && !stops.is_empty() {
                        // A `}` that closes an enclosing struct.
                        break;
                    }
                }
                _ => {}
            }
            end = self.span().end;
            self.bump();
        }
        Span::new(start, end.max(start))
    }

    fn expect_close(&mut self, close: TokenKind, open_span: Span, what: &str) {
        if self.kind() == close {
            self.bump();
            return;
        }
        let found = self.found();
        let span = self.span();
        let close_text = close.describe();
        let open_text = match close {
            TokenKind::RBrace => "`{`",
            TokenKind::RBrack => "`[`",
            _ => "`(`",
        };
        self.error(
            Diagnostic::error(
                codes::E0205,
                format!("expected {close_text} to close {what}, found {found}"),
                span,
                format!("expected {close_text}"),
            )
            .with_label(open_span, format!("unclosed {open_text}")),
        );
    }

    // ----- Files and declarations -------------------------------------------

    pub(crate) fn parse_file(&mut self) -> File {
        let end = self.end;
        let mut file = File {
            span: Span::new(0, end),
            ..File::default()
        };
        let mut leading_attrs = Vec::new();
        while self.kind() == TokenKind::Attribute {
            leading_attrs.push(self.parse_attribute());
            self.expect_separator(&[]);
        }
        if self.kind() == TokenKind::Package && self.peek(1) == TokenKind::Ident {
            file.attrs = leading_attrs;
            file.package = Some(self.parse_package());
            self.expect_separator(&[]);
        } else {
            file.decls
                .extend(leading_attrs.into_iter().map(Decl::Attribute));
        }
        let mut seen_decl = !file.decls.is_empty();
        loop {
            match self.kind() {
                TokenKind::Eof => break,
                TokenKind::Comma => self.stray_comma(),
                TokenKind::RBrace | TokenKind::RBrack | TokenKind::RParen => self.stray_close(),
                TokenKind::Import if self.import_follows() => {
                    if seen_decl {
                        let span = self.span();
                        self.error(
                            Diagnostic::error(
                                codes::E0207,
                                "imports must come before other declarations",
                                span,
                                "import after declarations",
                            )
                            .with_help("move this import above the first field"),
                        );
                    }
                    self.parse_import_decl(&mut file.imports);
                    self.expect_separator(&[]);
                }
                kind => {
                    // Attributes may stand between the package clause and
                    // the imports.
                    seen_decl |= kind != TokenKind::Attribute;
                    let decl = self.parse_decl();
                    file.decls.push(decl);
                    self.expect_separator(&[]);
                }
            }
        }
        file
    }

    fn stray_close(&mut self) {
        let found = self.found();
        let span = self.span();
        self.error(
            Diagnostic::error(
                codes::E0212,
                format!("unexpected {found}: nothing to close"),
                span,
                "no matching opening bracket",
            )
            .with_help("remove it, or add the matching opening bracket"),
        );
        self.bump();
    }

    fn stray_comma(&mut self) {
        if self.virtual_comma {
            self.bump();
            return;
        }
        let span = self.span();
        self.error(
            Diagnostic::error(
                codes::E0202,
                "expected declaration or expression, found `,`",
                span,
                "extra `,`",
            )
            .with_help("remove the extra comma"),
        );
        self.bump();
    }

    /// Whether, behind a virtual comma, the next line starts a field
    /// (`name:`), a sign that an open bracket was never closed.
    fn field_on_next_line(&self) -> bool {
        let kind = self.toks.get(self.pos).map_or(TokenKind::Eof, |t| t.kind);
        let label_like = matches!(kind, TokenKind::Ident | TokenKind::String) || kind.is_keyword();
        label_like && self.label_follows(1)
    }

    fn missing_comma_before_newline(&mut self, what: &str) {
        let span = Span::new(self.prev_end, self.prev_end);
        self.error(
            Diagnostic::error(
                codes::E0203,
                format!("missing `,` before newline in {what}"),
                span,
                "expected `,` here",
            )
            .with_help("separate elements with `,`; a newline only ends the last one"),
        );
    }

    fn import_follows(&self) -> bool {
        matches!(
            self.peek(1),
            TokenKind::String | TokenKind::Ident | TokenKind::LParen
        )
    }

    /// After a declaration: `,`, a newline, or the closing token.
    fn expect_separator(&mut self, closing: &[TokenKind]) {
        let kind = self.kind();
        if kind == TokenKind::Comma {
            self.bump();
            return;
        }
        if kind == TokenKind::Eof || closing.contains(&kind) {
            return;
        }
        let found = self.found();
        let span = self.span();
        let mut diag = Diagnostic::error(
            codes::E0203,
            format!("expected `,` or newline after declaration, found {found}"),
            span,
            "expected `,` or newline",
        );
        if kind == TokenKind::Assign {
            diag = Diagnostic::error(
                codes::E0204,
                "expected `:` or `?` after label, found `=`",
                span,
                "expected `:`",
            )
            .with_help(
                "fields are written `name: value`; to bind a name, write `let name = value`",
            );
        } else if kind == TokenKind::Colon {
            diag = diag.with_help("a label must stand on the same line as its `:`");
        }
        self.error(diag);
        let skipped = self.recover(&[TokenKind::RBrace]);
        let _ = skipped;
        if self.kind() == TokenKind::Comma {
            self.bump();
        }
    }

    fn parse_package(&mut self) -> PackageClause {
        let doc = self.doc_before(self.pos);
        let start = self.start();
        self.bump();
        let name = self.expect_ident();
        PackageClause {
            name,
            doc,
            span: Span::new(start, self.prev_end),
        }
    }

    fn parse_import_decl(&mut self, out: &mut Vec<ImportSpec>) {
        self.bump();
        if self.kind() == TokenKind::LParen {
            let open = self.span();
            self.bump();
            loop {
                match self.kind() {
                    TokenKind::RParen | TokenKind::RBrace | TokenKind::Eof => break,
                    TokenKind::Comma => {
                        self.bump();
                        continue;
                    }
                    _ => {}
                }
                let before = (self.pos, self.virtual_comma);
                if let Some(spec) = self.parse_import_spec() {
                    out.push(spec);
                }
                match self.kind() {
                    TokenKind::Comma => self.bump(),
                    TokenKind::RParen => {}
                    _ => {
                        self.error_expected(codes::E0201, "`,`, newline or `)` in import list");
                        self.recover(&[TokenKind::RParen]);
                    }
                }
                if (self.pos, self.virtual_comma) == before {
                    // No progress: give up on the import list.
                    break;
                }
            }
            self.expect_close(TokenKind::RParen, open, "import list");
        } else if let Some(spec) = self.parse_import_spec() {
            out.push(spec);
        }
    }

    fn parse_import_spec(&mut self) -> Option<ImportSpec> {
        let start = self.start();
        let alias = if self.kind() == TokenKind::Ident {
            Some(self.expect_ident())
        } else {
            None
        };
        if self.kind() != TokenKind::String {
            self.error_expected(codes::E0208, "import path string");
            self.recover(&[TokenKind::RParen]);
            return None;
        }
        let lit = self.parse_string_lit();
        let path_span = lit.span;
        let Some(path) = lit.as_plain() else {
            self.error(Diagnostic::error(
                codes::E0208,
                "import path must be a plain string",
                path_span,
                "interpolation not allowed here",
            ));
            return None;
        };
        if path.is_empty() || lit.bytes || lit.multiline {
            self.error(
                Diagnostic::error(
                    codes::E0208,
                    "invalid import path",
                    path_span,
                    "expected a non-empty `\"...\"` path",
                )
                .with_help("write e.g. `import \"dagger.io/dagger\"`"),
            );
            return None;
        }
        Some(ImportSpec {
            alias,
            path,
            path_span,
            span: Span::new(start, self.prev_end),
        })
    }

    fn parse_decl(&mut self) -> Decl {
        let doc = self.doc_before(self.pos);
        let start = self.start();
        match self.kind() {
            TokenKind::Let if self.peek(1) == TokenKind::Ident && !self.label_follows(1) => {
                Decl::Let(self.parse_let())
            }
            TokenKind::For | TokenKind::If if !self.label_follows(1) => {
                Decl::Comprehension(self.parse_comprehension())
            }
            TokenKind::Ellipsis => Decl::Ellipsis(self.parse_ellipsis(&[TokenKind::RBrace])),
            TokenKind::Attribute => Decl::Attribute(self.parse_attribute()),
            TokenKind::Package if self.peek(1) == TokenKind::Ident => self.misplaced_package(start),
            TokenKind::Import if self.import_follows() => self.misplaced_import(start),
            _ => self.parse_field_or_embed(doc, start),
        }
    }

    #[cold]
    #[inline(never)]
    fn misplaced_package(&mut self, start: u32) -> Decl {
        {
            {
                let span = self.span();
                self.error(
                    Diagnostic::error(
                        codes::E0213,
                        "the `package` clause must come first in the file",
                        span,
                        "misplaced package clause",
                    )
                    .with_help("move it to the top of the file, before imports and fields"),
                );
                self.bump();
                self.bump();
                Decl::Bad(BadNode {
                    span: Span::new(start, self.prev_end),
                })
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn misplaced_import(&mut self, start: u32) -> Decl {
        {
            {
                let span = self.span();
                self.error(
                    Diagnostic::error(
                        codes::E0207,
                        "imports are only allowed at the top of a file",
                        span,
                        "import not allowed here",
                    )
                    .with_help("move the import to the top of the file"),
                );
                let mut ignored = Vec::new();
                self.parse_import_decl(&mut ignored);
                Decl::Bad(BadNode {
                    span: Span::new(start, self.prev_end),
                })
            }
        }
    }

    fn parse_field_or_embed(&mut self, doc: Doc, start: u32) -> Decl {
        let expr = self.parse_alias_expr();
        if self.at_label_end() {
            let label = self.expr_to_label(expr);
            let field = self.parse_field_rest(label, doc, start);
            return Decl::Field(field);
        }
        if let Expr::Alias { alias, .. } = &expr {
            let eq = self.find_assign(alias.span.end);
            self.error(
                Diagnostic::error(
                    codes::E0204,
                    "expected `:` or `?` after label, found `=`",
                    eq,
                    "expected `:`",
                )
                .with_help(
                    "fields are written `name: value`; to bind a name, write `let name = value`",
                ),
            );
        }
        let span = Span::new(start, self.prev_end.max(start));
        Decl::Embed(Embed { expr, doc, span })
    }

    fn find_assign(&self, from: u32) -> Span {
        let rest = self.text.get(from as usize..).unwrap_or_default();
        let off = rest.find('=').unwrap_or(0) as u32;
        Span::new(from + off, from + off + 1)
    }

    /// Parses what follows a label: the marker, `:`, the value (or a nested
    /// shorthand field) and attributes.
    fn parse_field_rest(&mut self, label: Label, doc: Doc, start: u32) -> Field {
        if self.virtual_comma {
            self.bump();
        }
        let constraint = match self.kind() {
            TokenKind::Question => {
                self.bump();
                Constraint::Optional
            }
            TokenKind::Not => {
                self.bump();
                Constraint::Required
            }
            _ => Constraint::Regular,
        };
        if self.kind() == TokenKind::Colon {
            self.bump();
        } else {
            self.error_expected(codes::E0204, "`:` after label");
        }
        let value_start = self.start();
        let value = self.parse_alias_expr();
        let value = if self.at_label_end() {
            if self.enter() {
                let inner_label = self.expr_to_label(value);
                let inner = crate::stack::grow(|| {
                    self.parse_field_rest(inner_label, Doc::default(), value_start)
                });
                self.leave();
                let span = inner.span;
                Expr::Struct(StructLit {
                    decls: vec![Decl::Field(inner)],
                    implicit: true,
                    span,
                })
            } else {
                Expr::Bad(BadNode {
                    span: Span::new(value_start, self.prev_end),
                })
            }
        } else {
            value
        };
        let mut attrs = Vec::new();
        while self.kind() == TokenKind::Attribute {
            attrs.push(self.parse_attribute());
        }
        Field {
            label,
            constraint,
            value,
            attrs,
            doc,
            span: Span::new(start, self.prev_end.max(start)),
        }
    }

    fn expr_to_label(&mut self, expr: Expr) -> Label {
        match expr {
            Expr::Ident(ident) => Label::Ident(ident),
            Expr::Top { span } | Expr::Null { span } | Expr::Bool { span, .. } => {
                Label::Ident(Ident {
                    name: self.tok_text(span).to_owned(),
                    span,
                })
            }
            Expr::String(s) => Label::String(s),
            Expr::Paren { expr, span } => Label::Paren(ParenLabel { expr, span }),
            Expr::List(list) if list.elems.len() == 1 => {
                let span = list.span;
                match list.elems.into_iter().next() {
                    Some(ListElem::Expr(Expr::Alias { alias, expr, .. })) => {
                        Label::Pattern(PatternLabel {
                            alias: Some(alias),
                            expr,
                            span,
                        })
                    }
                    Some(ListElem::Expr(expr)) => Label::Pattern(PatternLabel {
                        alias: None,
                        expr: Box::new(expr),
                        span,
                    }),
                    _ => self.bad_label(span),
                }
            }
            Expr::Alias { alias, expr, span } => {
                if matches!(*expr, Expr::Alias { .. }) {
                    return self.bad_label(span);
                }
                let label = self.expr_to_label(*expr);
                Label::Alias(AliasLabel {
                    alias,
                    label: Box::new(label),
                    span,
                })
            }
            Expr::Bad(bad) => Label::Paren(ParenLabel {
                expr: Box::new(Expr::Bad(bad.clone())),
                span: bad.span,
            }),
            other => self.bad_label(other.span()),
        }
    }

    fn bad_label(&mut self, span: Span) -> Label {
        self.error(
            Diagnostic::error(
                codes::E0204,
                "invalid label: expected an identifier, a string, `(expr)` or `[pattern]`",
                span,
                "not a label",
            )
            .with_help(
                "quote the label, e.g. `\"my-label\": value`, or use `(expr)` for a computed label",
            ),
        );
        Label::Paren(ParenLabel {
            expr: Box::new(Expr::Bad(BadNode { span })),
            span,
        })
    }

    fn parse_let(&mut self) -> LetClause {
        let start = self.start();
        self.bump();
        let name = self.expect_ident();
        if self.kind() == TokenKind::Assign {
            self.bump();
        } else {
            self.error_expected(codes::E0201, "`=` after `let` name");
        }
        let expr = self.parse_expr();
        LetClause {
            name,
            expr,
            span: Span::new(start, self.prev_end),
        }
    }

    fn parse_ellipsis(&mut self, closing: &[TokenKind]) -> Ellipsis {
        let start = self.start();
        self.bump();
        let kind = self.kind();
        let ty = if kind == TokenKind::Comma || kind == TokenKind::Eof || closing.contains(&kind) {
            None
        } else {
            Some(Box::new(self.parse_expr()))
        };
        Ellipsis {
            ty,
            span: Span::new(start, self.prev_end),
        }
    }

    fn parse_attribute(&mut self) -> Attribute {
        let span = self.span();
        let text = self.tok_text(span);
        self.bump();
        let (name, body) = match text.split_once('(') {
            Some((name, rest)) => (name, rest.strip_suffix(')').unwrap_or(rest)),
            None => (text, ""),
        };
        Attribute {
            name: name.trim_start_matches('@').to_owned(),
            body: body.to_owned(),
            span,
        }
    }

    fn parse_comprehension(&mut self) -> Comprehension {
        let start = self.start();
        let mut clauses = Vec::new();
        loop {
            match self.kind() {
                TokenKind::For => {
                    let clause_start = self.start();
                    self.bump();
                    let first = self.expect_ident();
                    let (key, value) = if self.kind() == TokenKind::Comma && !self.virtual_comma {
                        self.bump();
                        (Some(first), self.expect_ident())
                    } else {
                        (None, first)
                    };
                    if self.kind() == TokenKind::In {
                        self.bump();
                    } else {
                        self.error_expected(codes::E0201, "`in` after `for` variables");
                    }
                    let source = self.parse_expr();
                    clauses.push(Clause::For(ForClause {
                        key,
                        value,
                        source,
                        span: Span::new(clause_start, self.prev_end),
                    }));
                }
                TokenKind::If => {
                    let clause_start = self.start();
                    self.bump();
                    let condition = self.parse_expr();
                    clauses.push(Clause::If(IfClause {
                        condition,
                        span: Span::new(clause_start, self.prev_end),
                    }));
                }
                TokenKind::Let if !clauses.is_empty() => {
                    clauses.push(Clause::Let(self.parse_let()))
                }
                _ => break,
            }
            // Clauses may be separated by `,` or a newline.
            if self.kind() == TokenKind::Comma {
                let next = if self.virtual_comma {
                    self.toks.get(self.pos).map_or(TokenKind::Eof, |t| t.kind)
                } else {
                    self.peek(1)
                };
                if matches!(
                    next,
                    TokenKind::For | TokenKind::If | TokenKind::Let | TokenKind::LBrace
                ) {
                    self.bump();
                }
            }
        }
        let body = if self.kind() == TokenKind::LBrace {
            self.parse_struct()
        } else {
            let found = self.found();
            let span = self.span();
            self.error(
                Diagnostic::error(
                    codes::E0201,
                    format!("expected `{{` after comprehension clauses, found {found}"),
                    span,
                    "expected `{`",
                )
                .with_help("a comprehension ends with a struct: `for x in xs { ... }`"),
            );
            StructLit {
                decls: Vec::new(),
                implicit: false,
                span: Span::new(span.start, span.start),
            }
        };
        Comprehension {
            clauses,
            body,
            span: Span::new(start, self.prev_end),
        }
    }

    fn expect_ident(&mut self) -> Ident {
        let span = self.span();
        if self.kind() == TokenKind::Ident {
            self.bump();
            return Ident {
                name: self.tok_text(span).to_owned(),
                span,
            };
        }
        self.error_expected(codes::E0211, "identifier");
        Ident {
            name: String::new(),
            span: Span::new(span.start, span.start),
        }
    }

    /// The comments directly above the token at raw index `pos`.
    fn doc_before(&self, pos: usize) -> Doc {
        let mut picked = Vec::new();
        let mut i = pos;
        let skip_ws = |mut i: usize| {
            while i > 0
                && self
                    .toks
                    .get(i - 1)
                    .is_some_and(|t| t.kind == TokenKind::Whitespace)
            {
                i -= 1;
            }
            i
        };
        loop {
            i = skip_ws(i);
            if i == 0 || self.toks.get(i - 1).map(|t| t.kind) != Some(TokenKind::Newline) {
                break;
            }
            i = skip_ws(i - 1);
            if i == 0 || self.toks.get(i - 1).map(|t| t.kind) != Some(TokenKind::Comment) {
                break;
            }
            let comment = i - 1;
            let before = skip_ws(comment);
            if before > 0 && self.toks.get(before - 1).map(|t| t.kind) != Some(TokenKind::Newline) {
                break;
            }
            picked.push(comment);
            i = comment;
        }
        let lines = picked
            .iter()
            .rev()
            .filter_map(|&k| self.toks.get(k))
            .map(|t| {
                let text = self.tok_text(t.span);
                let text = text.strip_prefix("//").unwrap_or(text);
                Comment {
                    text: text.strip_suffix('\r').unwrap_or(text).to_owned(),
                    span: t.span,
                }
            })
            .collect();
        Doc { lines }
    }

    // ----- Expressions ------------------------------------------------------

    /// `X=expr` or `expr`.
    fn parse_alias_expr(&mut self) -> Expr {
        if self.kind() == TokenKind::Ident && self.peek(1) == TokenKind::Assign {
            let alias = self.expect_ident();
            self.bump();
            let expr = self.parse_expr();
            let span = alias.span.cover(expr.span());
            return Expr::Alias {
                alias,
                expr: Box::new(expr),
                span,
            };
        }
        self.parse_expr()
    }

    /// Parses an expression of any precedence.
    pub(crate) fn parse_expr(&mut self) -> Expr {
        self.parse_binary(1)
    }

    fn parse_binary(&mut self, min_prec: u8) -> Expr {
        crate::stack::grow(|| self.parse_binary_inner(min_prec))
    }

    fn parse_binary_inner(&mut self, min_prec: u8) -> Expr {
        let start = self.start();
        if !self.enter() {
            return Expr::Bad(BadNode {
                span: Span::new(start, self.prev_end.max(start)),
            });
        }
        // Each link of a left-associative chain nests the tree one level
        // deeper; later passes and dropping the tree recurse over that
        // depth, so a chain's length is bounded too.
        let mut links = 0;
        let mut lhs = self.parse_unary();
        while let Some(op) = binary_op(self.kind()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            links += 1;
            if links > MAX_CHAIN {
                self.chain_too_long();
                break;
            }
            self.bump();
            let rhs = self.parse_binary(prec + 1);
            let span = Span::new(start, self.prev_end.max(start));
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                span,
            };
        }
        self.leave();
        lhs
    }

    /// Reports an operator chain longer than `MAX_CHAIN` (once) and skips
    /// the rest of the input.
    fn chain_too_long(&mut self) {
        if !self.too_deep {
            let span = self.span();
            self.error(
                Diagnostic::error(codes::E0299, "operator chain too long", span, "too long")
                    .with_help(format!(
                        "at most {MAX_CHAIN} operands may be chained by binary operators; split the expression over several fields"
                    )),
            );
            self.too_deep = true;
        }
        while self.kind() != TokenKind::Eof {
            self.bump();
        }
    }

    fn parse_unary(&mut self) -> Expr {
        let Some(op) = unary_op(self.kind()) else {
            return self.parse_primary();
        };
        let start = self.start();
        if !self.enter() {
            return Expr::Bad(BadNode {
                span: Span::new(start, self.prev_end.max(start)),
            });
        }
        self.bump();
        let expr = crate::stack::grow(|| self.parse_unary());
        self.leave();
        Expr::Unary {
            op,
            expr: Box::new(expr),
            span: Span::new(start, self.prev_end.max(start)),
        }
    }

    fn parse_primary(&mut self) -> Expr {
        let start = self.start();
        let mut expr = self.parse_operand();
        loop {
            match self.kind() {
                TokenKind::Period => {
                    self.bump();
                    let label = match self.kind() {
                        TokenKind::Ident | TokenKind::Package | TokenKind::Import => {
                            let span = self.span();
                            self.bump();
                            Label::Ident(Ident {
                                name: self.tok_text(span).to_owned(),
                                span,
                            })
                        }
                        TokenKind::String => Label::String(self.parse_string_lit()),
                        _ => {
                            self.error_expected(codes::E0211, "identifier or string after `.`");
                            return Expr::Bad(BadNode {
                                span: Span::new(start, self.prev_end),
                            });
                        }
                    };
                    expr = Expr::Selector {
                        base: Box::new(expr),
                        label: Box::new(label),
                        span: Span::new(start, self.prev_end),
                    };
                }
                TokenKind::LParen => {
                    let open = self.span();
                    self.bump();
                    let base = self.arg_stack.len();
                    loop {
                        match self.kind() {
                            TokenKind::RParen | TokenKind::Eof => break,
                            TokenKind::Comma => {
                                self.stray_comma();
                                continue;
                            }
                            _ => {}
                        }
                        let arg = self.parse_expr();
                        self.arg_stack.push(arg);
                        match self.kind() {
                            TokenKind::Comma => self.bump(),
                            TokenKind::RParen => {}
                            _ => {
                                self.error_expected(codes::E0201, "`,` or `)` in argument list");
                                self.recover(&[TokenKind::RParen, TokenKind::RBrace]);
                                if self.kind() == TokenKind::Comma {
                                    self.bump();
                                } else {
                                    break;
                                }
                            }
                        }
                    }
                    self.expect_close(TokenKind::RParen, open, "argument list");
                    let args: Vec<Expr> = self.arg_stack.drain(base..).collect();
                    expr = Expr::Call {
                        func: Box::new(expr),
                        args,
                        span: Span::new(start, self.prev_end),
                    };
                }
                TokenKind::LBrack => {
                    let open = self.span();
                    self.bump();
                    let low = if self.kind() == TokenKind::Colon {
                        None
                    } else {
                        Some(Box::new(self.parse_expr()))
                    };
                    if self.kind() == TokenKind::Colon {
                        self.bump();
                        let high = if self.kind() == TokenKind::RBrack {
                            None
                        } else {
                            Some(Box::new(self.parse_expr()))
                        };
                        self.expect_close(TokenKind::RBrack, open, "slice");
                        expr = Expr::Slice {
                            base: Box::new(expr),
                            low,
                            high,
                            span: Span::new(start, self.prev_end),
                        };
                    } else {
                        self.expect_close(TokenKind::RBrack, open, "index");
                        let index = low.unwrap_or_else(|| {
                            Box::new(Expr::Bad(BadNode {
                                span: Span::new(open.end, open.end),
                            }))
                        });
                        expr = Expr::Index {
                            base: Box::new(expr),
                            index,
                            span: Span::new(start, self.prev_end),
                        };
                    }
                }
                _ => break,
            }
        }
        expr
    }

    fn parse_operand(&mut self) -> Expr {
        let span = self.span();
        match self.kind() {
            TokenKind::Ident => {
                self.bump();
                let name = self.tok_text(span);
                if name == "_" {
                    Expr::Top { span }
                } else {
                    Expr::Ident(Ident {
                        name: name.to_owned(),
                        span,
                    })
                }
            }
            TokenKind::Package | TokenKind::Import | TokenKind::In => {
                self.bump();
                Expr::Ident(Ident {
                    name: self.tok_text(span).to_owned(),
                    span,
                })
            }
            TokenKind::For | TokenKind::If | TokenKind::Let => {
                let starts_operand = matches!(
                    self.peek(1),
                    TokenKind::Ident
                        | TokenKind::Package
                        | TokenKind::Import
                        | TokenKind::For
                        | TokenKind::If
                        | TokenKind::Let
                        | TokenKind::In
                        | TokenKind::Number
                        | TokenKind::String
                        | TokenKind::LBrace
                        | TokenKind::LParen
                        | TokenKind::Not
                        | TokenKind::Null
                        | TokenKind::True
                        | TokenKind::False
                        | TokenKind::Bottom
                );
                if !starts_operand || self.label_follows(1) {
                    self.bump();
                    return Expr::Ident(Ident {
                        name: self.tok_text(span).to_owned(),
                        span,
                    });
                }
                let keyword = self.tok_text(span).to_owned();
                self.error(
                    Diagnostic::error(
                        codes::E0210,
                        format!("expected expression, found keyword `{keyword}`"),
                        span,
                        "comprehension not allowed here",
                    )
                    .with_help(
                        "comprehensions stand as declarations in a struct (`{ for x in xs { ... } }`) or as list elements (`[ for x in xs { x } ]`)",
                    ),
                );
                Expr::Bad(BadNode {
                    span: Span::new(span.start, span.start),
                })
            }
            TokenKind::Bottom => {
                self.bump();
                Expr::Bottom { span }
            }
            TokenKind::Null => {
                self.bump();
                Expr::Null { span }
            }
            TokenKind::True | TokenKind::False => {
                let value = self.kind() == TokenKind::True;
                self.bump();
                Expr::Bool { value, span }
            }
            TokenKind::Number => {
                self.bump();
                let text = self.tok_text(span);
                match decode_number(text) {
                    Ok(value) => Expr::Number(NumberLit {
                        text: text.to_owned(),
                        value,
                        span,
                    }),
                    Err((code, message, label, help)) => {
                        let mut diag = Diagnostic::error(code, message, span, label);
                        if let Some(help) = help {
                            diag = diag.with_help(help);
                        }
                        self.error(diag);
                        Expr::Bad(BadNode { span })
                    }
                }
            }
            TokenKind::String => Expr::String(self.parse_string_lit()),
            TokenKind::ErrorChar
            | TokenKind::ErrorString
            | TokenKind::ErrorStringDepth
            | TokenKind::ErrorAttribute => {
                self.bump();
                Expr::Bad(BadNode { span })
            }
            TokenKind::LBrace | TokenKind::LBrack => self.parse_composite(),
            TokenKind::LParen => {
                self.bump();
                let inner = self.parse_expr();
                self.expect_close(TokenKind::RParen, span, "parenthesized expression");
                Expr::Paren {
                    expr: Box::new(inner),
                    span: Span::new(span.start, self.prev_end),
                }
            }
            _ => {
                let found = self.found();
                let mut diag = Diagnostic::error(
                    codes::E0202,
                    format!("expected expression, found {found}"),
                    span,
                    "expected expression",
                );
                if self.kind() == TokenKind::Colon {
                    diag = diag.with_help("write a label before the `:`, e.g. `name: value`");
                } else if self.kind() == TokenKind::Attribute {
                    diag = diag.with_help("attributes go after a field's value: `a: 1 @attr()`");
                } else if self.kind() == TokenKind::Ellipsis {
                    diag = diag.with_help("`...` may only stand as a declaration in a struct or as the last element of a list");
                }
                self.error(diag);
                Expr::Bad(BadNode {
                    span: Span::new(span.start, span.start),
                })
            }
        }
    }

    /// A struct or list literal; counts as one extra nesting level.
    #[inline(never)]
    fn parse_composite(&mut self) -> Expr {
        crate::stack::grow(|| self.parse_composite_inner())
    }

    fn parse_composite_inner(&mut self) -> Expr {
        let start = self.start();
        if !self.enter() {
            return Expr::Bad(BadNode {
                span: Span::new(start, self.prev_end.max(start)),
            });
        }
        let expr = if self.kind() == TokenKind::LBrace {
            Expr::Struct(self.parse_struct())
        } else {
            Expr::List(self.parse_list())
        };
        self.leave();
        expr
    }

    fn parse_struct(&mut self) -> StructLit {
        let open = self.span();
        self.bump();
        let base = self.decl_stack.len();
        loop {
            match self.kind() {
                TokenKind::RBrace | TokenKind::Eof => break,
                TokenKind::Comma => self.stray_comma(),
                TokenKind::RBrack | TokenKind::RParen => self.stray_close(),
                _ => {
                    let decl = self.parse_decl();
                    self.decl_stack.push(decl);
                    self.expect_separator(&[TokenKind::RBrace]);
                }
            }
        }
        self.expect_close(TokenKind::RBrace, open, "struct");
        let decls: Vec<Decl> = self.decl_stack.drain(base..).collect();
        StructLit {
            decls,
            implicit: false,
            span: Span::new(open.start, self.prev_end),
        }
    }

    fn parse_list(&mut self) -> ListLit {
        let open = self.span();
        self.bump();
        let base = self.elem_stack.len();
        let mut ellipsis_seen: Option<Span> = None;
        loop {
            match self.kind() {
                TokenKind::RBrack | TokenKind::Eof | TokenKind::RBrace => break,
                TokenKind::Comma => {
                    self.stray_comma();
                    continue;
                }
                _ => {}
            }
            if let Some(ellipsis) = ellipsis_seen {
                let span = self.span();
                self.error(
                    Diagnostic::error(
                        codes::E0206,
                        "an ellipsis must be the last element of a list",
                        ellipsis,
                        "ellipsis here",
                    )
                    .with_label(span, "element after the ellipsis")
                    .with_help("move `...` to the end of the list"),
                );
                ellipsis_seen = None;
            }
            let elem = match self.kind() {
                TokenKind::Ellipsis => {
                    let e = self.parse_ellipsis(&[TokenKind::RBrack]);
                    ellipsis_seen = Some(e.span);
                    ListElem::Ellipsis(e)
                }
                TokenKind::For | TokenKind::If if !self.label_follows(1) => {
                    ListElem::Comprehension(self.parse_comprehension())
                }
                _ => ListElem::Expr(self.parse_alias_expr()),
            };
            self.elem_stack.push(elem);
            match self.kind() {
                TokenKind::Comma if self.virtual_comma => {
                    if self.field_on_next_line() {
                        // `[1, 2` then `b: 3`: the list was never closed.
                        let span = self.span();
                        self.error(
                            Diagnostic::error(
                                codes::E0205,
                                "expected `]` to close list, found newline",
                                span,
                                "expected `]`",
                            )
                            .with_label(open, "unclosed `[`"),
                        );
                        return ListLit {
                            elems: self.elem_stack.drain(base..).collect(),
                            span: Span::new(open.start, self.prev_end),
                        };
                    }
                    self.bump();
                    if !matches!(
                        self.kind(),
                        TokenKind::RBrack | TokenKind::Eof | TokenKind::RBrace
                    ) {
                        self.missing_comma_before_newline("list");
                    }
                }
                TokenKind::Comma => self.bump(),
                TokenKind::RBrack | TokenKind::RBrace | TokenKind::Eof => break,
                _ => {
                    let found = self.found();
                    let span = self.span();
                    self.error(Diagnostic::error(
                        codes::E0203,
                        format!("expected `,` or `]` in list, found {found}"),
                        span,
                        "expected `,` or `]`",
                    ));
                    self.recover(&[TokenKind::RBrack, TokenKind::RBrace]);
                    if self.kind() == TokenKind::Comma {
                        self.bump();
                    }
                }
            }
        }
        self.expect_close(TokenKind::RBrack, open, "list");
        ListLit {
            elems: self.elem_stack.drain(base..).collect(),
            span: Span::new(open.start, self.prev_end),
        }
    }

    fn parse_string_lit(&mut self) -> StringLit {
        let span = self.span();
        self.bump();
        let mut errors = Vec::new();
        let decoded = decode_string(self.text, span, &mut errors);
        for diag in errors {
            self.error(diag);
        }
        let mut parts = Vec::with_capacity(decoded.segments.len());
        for segment in decoded.segments {
            match segment {
                Segment::Text { text, span } => parts.push(StringPart::Text { text, span }),
                Segment::Interp { inner, outer } => {
                    let expr = self.parse_interpolation(inner);
                    parts.push(StringPart::Interp {
                        expr: Box::new(expr),
                        span: outer,
                    });
                }
            }
        }
        StringLit {
            bytes: decoded.delims.quote == b'\'',
            multiline: decoded.delims.multiline,
            hashes: u32::try_from(decoded.delims.hashes).unwrap_or(u32::MAX),
            parts,
            span,
        }
    }

    /// Parses the expression of `\(...)`: the inside is lexed on its own and
    /// parsed by this parser with its token list swapped in.
    fn parse_interpolation(&mut self, inner: Span) -> Expr {
        let sub_text = self.text.get(inner.range()).unwrap_or_default();
        let sub_toks = lex_at(sub_text, inner.start);
        let saved_toks = std::mem::replace(&mut self.toks, sub_toks);
        let saved_lex_errors = std::mem::take(&mut self.lex_error_starts);
        let saved = (
            self.pos,
            self.prev_kind,
            self.prev_end,
            self.virtual_comma,
            self.end,
        );
        self.pos = 0;
        self.prev_kind = TokenKind::Comma;
        self.prev_end = inner.start;
        self.virtual_comma = false;
        self.end = inner.end;
        self.report_lex_errors();
        self.skip_trivia();
        self.depth += 1;
        let expr = self.parse_expr();
        if self.kind() != TokenKind::Eof {
            self.error_expected(codes::E0201, "`)` to end the interpolation");
        }
        self.depth = self.depth.saturating_sub(1);
        self.toks = saved_toks;
        self.lex_error_starts = saved_lex_errors;
        (
            self.pos,
            self.prev_kind,
            self.prev_end,
            self.virtual_comma,
            self.end,
        ) = saved;
        expr
    }
}

fn opening_len(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let hashes = bytes.iter().take_while(|&&b| b == b'#').count();
    let quote = bytes.get(hashes).copied().unwrap_or(b'"');
    let triple = bytes.get(hashes + 1) == Some(&quote) && bytes.get(hashes + 2) == Some(&quote);
    u32::try_from(hashes + if triple { 3 } else { 1 }).unwrap_or(1)
}

/// The closing delimiter of the unterminated literal `text`, and its name.
fn closing_delimiter(text: &str) -> (String, &'static str) {
    let bytes = text.as_bytes();
    let hashes = bytes.iter().take_while(|&&b| b == b'#').count();
    let quote = bytes.get(hashes).copied().unwrap_or(b'"');
    let triple = bytes.get(hashes + 1) == Some(&quote) && bytes.get(hashes + 2) == Some(&quote);
    let mut close = String::new();
    let q = char::from(quote);
    for _ in 0..if triple { 3 } else { 1 } {
        close.push(q);
    }
    for _ in 0..hashes {
        close.push('#');
    }
    let what = if quote == b'\'' { "bytes" } else { "string" };
    (close, what)
}

impl Parser<'_> {
    /// Parses one expression and reports anything after it.
    pub(crate) fn parse_expr_to_end(&mut self) -> Expr {
        let expr = self.parse_alias_expr();
        while self.kind() == TokenKind::Comma && self.virtual_comma {
            self.bump();
        }
        if self.kind() != TokenKind::Eof {
            self.error_expected(codes::E0201, "end of input after the expression");
        }
        expr
    }
}
