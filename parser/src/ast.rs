//! The CUE syntax tree.
//!
//! Every node carries a [`Span`]: a byte range into the source text. The tree
//! is typed (not a green tree); losslessness is provided by the token stream
//! kept beside it in [`crate::Parse`]. Shorthand fields `a: b: c: 1` are kept
//! as nested fields whose value is an implicit struct
//! ([`StructLit::implicit`] is `true`), as CUE's own syntax tree does.

use serde::Serialize;

/// A byte range `[start, end)` into one source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// Builds a span from two byte offsets.
    pub fn new(start: u32, end: u32) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn cover(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span is empty.
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// The span as a `usize` range, for slicing the source.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A `//` comment, without the slashes and the newline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comment {
    /// Text after `//`, leading single space kept as written.
    pub text: String,
    /// Where the comment stands.
    pub span: Span,
}

/// The comments that stand directly above a declaration (no blank line in
/// between), in source order. Used for `dagger do` action help and hover.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Doc {
    /// The comment lines.
    pub lines: Vec<Comment>,
}

impl Doc {
    /// The doc text: lines joined with `\n`, one leading space per line removed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(line.text.strip_prefix(' ').unwrap_or(&line.text));
        }
        out
    }

    /// Whether there is no comment.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// One source file.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct File {
    /// Attributes before the package clause (`@if(foo)`), and file-level ones.
    pub attrs: Vec<Attribute>,
    /// The `package name` clause, if any.
    pub package: Option<PackageClause>,
    /// All import specs, from single and grouped import declarations, in order.
    pub imports: Vec<ImportSpec>,
    /// Declarations after the imports.
    pub decls: Vec<Decl>,
    /// The whole file.
    pub span: Span,
}

/// `package name`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageClause {
    /// The package name.
    pub name: Ident,
    /// Comments above the clause.
    pub doc: Doc,
    /// The whole clause.
    pub span: Span,
}

/// One import: `"path"`, `name "path"`, or `"path:pkg"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportSpec {
    /// The local name given before the path, if any.
    pub alias: Option<Ident>,
    /// The decoded import path, including any `:pkg` qualifier.
    pub path: String,
    /// The span of the path string literal.
    pub path_span: Span,
    /// The whole spec.
    pub span: Span,
}

impl ImportSpec {
    /// The name the import is referred to by: the alias, else the explicit
    /// `:pkg` qualifier, else the last path element.
    pub fn local_name(&self) -> &str {
        if let Some(alias) = &self.alias {
            return &alias.name;
        }
        if let Some((_, pkg)) = self.path.rsplit_once(':') {
            return pkg;
        }
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The import path without the `:pkg` qualifier.
    pub fn path_without_qualifier(&self) -> &str {
        match self.path.rsplit_once(':') {
            Some((path, _)) => path,
            None => &self.path,
        }
    }
}

/// A declaration inside a file or a struct.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Decl {
    /// `label: value`.
    Field(Field),
    /// An embedded expression: `#Def`, `*"x" | string`, `1`.
    Embed(Embed),
    /// `let x = expr`.
    Let(LetClause),
    /// `for ... {}` / `if ... {}` in a struct.
    Comprehension(Comprehension),
    /// `...` or `...T` in a struct.
    Ellipsis(Ellipsis),
    /// A declaration attribute such as `@dagger(generated)` standing alone.
    Attribute(Attribute),
    /// Text that could not be parsed; a diagnostic was reported for it.
    Bad(BadNode),
}

impl Decl {
    /// The span of the declaration.
    pub fn span(&self) -> Span {
        match self {
            Decl::Field(f) => f.span,
            Decl::Embed(e) => e.span,
            Decl::Let(l) => l.span,
            Decl::Comprehension(c) => c.span,
            Decl::Ellipsis(e) => e.span,
            Decl::Attribute(a) => a.span,
            Decl::Bad(b) => b.span,
        }
    }
}

/// Whether a field is regular, optional (`?`) or required (`!`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Constraint {
    /// `a: v`.
    Regular,
    /// `a?: v`.
    Optional,
    /// `a!: v` (CUE v0.6 syntax; parsed, the evaluator may reject it).
    Required,
}

/// `label: value` with optional attributes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// The label.
    pub label: Label,
    /// `?`, `!` or neither.
    pub constraint: Constraint,
    /// The value. For `a: b: 1` this is an implicit struct holding `b: 1`.
    pub value: Expr,
    /// Attributes after the value: `@dagger(generated)`.
    pub attrs: Vec<Attribute>,
    /// Comments directly above the field.
    pub doc: Doc,
    /// The whole field, label to last attribute.
    pub span: Span,
}

/// An embedded expression in a struct or file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embed {
    /// The expression.
    pub expr: Expr,
    /// Comments directly above it.
    pub doc: Doc,
    /// Its span.
    pub span: Span,
}

/// `...` or `...T`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ellipsis {
    /// The element or field type, if any.
    pub ty: Option<Box<Expr>>,
    /// Its span.
    pub span: Span,
}

/// Text the parser skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadNode {
    /// What was skipped.
    pub span: Span,
}

/// A field label.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Label {
    /// `name`, `#Def`, `_hidden`, `_#hiddenDef`, `$dagger`; also keywords
    /// used as labels (`package`, `if`, `for`, `in`, `let`, ...).
    Ident(Ident),
    /// `"quoted"` or `"interp\(x)"`.
    String(StringLit),
    /// `(expr)`: a dynamic label.
    Paren(ParenLabel),
    /// `[expr]` or `[Name=expr]`: a pattern constraint.
    Pattern(PatternLabel),
    /// `X=label`: a label alias.
    Alias(AliasLabel),
}

impl Label {
    /// The span of the label.
    pub fn span(&self) -> Span {
        match self {
            Label::Ident(i) => i.span,
            Label::String(s) => s.span,
            Label::Paren(p) => p.span,
            Label::Pattern(p) => p.span,
            Label::Alias(a) => a.span,
        }
    }
}

/// `(expr)` label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParenLabel {
    /// The label expression.
    pub expr: Box<Expr>,
    /// Including the parentheses.
    pub span: Span,
}

/// `[expr]` or `[Name=expr]` label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternLabel {
    /// `Name` in `[Name=expr]`: binds the matched label as a string.
    pub alias: Option<Ident>,
    /// The pattern: `string`, `=~"re"`, `!~"re"`, ...
    pub expr: Box<Expr>,
    /// Including the brackets.
    pub span: Span,
}

/// `X=label`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasLabel {
    /// The alias name.
    pub alias: Ident,
    /// The aliased label.
    pub label: Box<Label>,
    /// The whole `X=label`.
    pub span: Span,
}

/// An identifier (also definitions, hidden names and `$`-names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Ident {
    /// The name as written (`#Def`, `_x`, `$dagger`).
    pub name: String,
    /// Where it stands.
    pub span: Span,
}

impl Ident {
    /// `#Def` or `_#def`.
    pub fn is_definition(&self) -> bool {
        self.name.starts_with('#') || self.name.starts_with("_#")
    }

    /// `_x` or `_#x` (but not `_` alone).
    pub fn is_hidden(&self) -> bool {
        self.name.starts_with('_') && self.name.len() > 1
    }
}

/// An attribute `@name(body)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    /// The name after `@`.
    pub name: String,
    /// The raw text between the parentheses.
    pub body: String,
    /// The whole attribute.
    pub span: Span,
}

/// `let name = expr`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LetClause {
    /// The bound name.
    pub name: Ident,
    /// The bound expression.
    pub expr: Expr,
    /// The whole clause.
    pub span: Span,
}

/// A comprehension: clauses followed by a struct body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comprehension {
    /// The first clause is `for` or `if`; later ones also `let`.
    pub clauses: Vec<Clause>,
    /// The struct produced per iteration.
    pub body: StructLit,
    /// The whole comprehension.
    pub span: Span,
}

/// One comprehension clause.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Clause {
    /// `for key, value in source` or `for value in source`.
    For(ForClause),
    /// `if condition`.
    If(IfClause),
    /// `let name = expr`.
    Let(LetClause),
}

/// `for key, value in source`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForClause {
    /// The key (label or index) variable, if two are given.
    pub key: Option<Ident>,
    /// The value variable.
    pub value: Ident,
    /// What is iterated.
    pub source: Expr,
    /// The whole clause.
    pub span: Span,
}

/// `if condition`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IfClause {
    /// The condition.
    pub condition: Expr,
    /// The whole clause.
    pub span: Span,
}

/// A struct literal `{ ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StructLit {
    /// The declarations in order.
    pub decls: Vec<Decl>,
    /// `true` for the struct implied by a shorthand `a: b: 1` (no braces).
    pub implicit: bool,
    /// Including the braces (for an implicit struct, the inner field).
    pub span: Span,
}

/// A list literal `[ ... ]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListLit {
    /// The elements in order; an ellipsis may only come last.
    pub elems: Vec<ListElem>,
    /// Including the brackets.
    pub span: Span,
}

/// One element of a list literal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum ListElem {
    /// A plain element.
    Expr(Expr),
    /// `for ... {}` producing elements.
    Comprehension(Comprehension),
    /// `...` or `...T`: the list is open.
    Ellipsis(Ellipsis),
}

/// One piece of an interpolated string.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum StringPart {
    /// Decoded literal text (escapes resolved, multi-line indentation removed).
    Text {
        /// The text.
        text: String,
        /// Where it stands.
        span: Span,
    },
    /// `\(expr)`.
    Interp {
        /// The interpolated expression.
        expr: Box<Expr>,
        /// Including `\(` and `)`.
        span: Span,
    },
}

/// A string or bytes literal, possibly interpolated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StringLit {
    /// `true` for `'...'` bytes literals.
    pub bytes: bool,
    /// `true` for `"""` / `'''` forms.
    pub multiline: bool,
    /// The number of `#` around a raw string.
    pub hashes: u32,
    /// The pieces; a plain string has one `Text` part (or none when empty).
    pub parts: Vec<StringPart>,
    /// The whole literal including quotes.
    pub span: Span,
}

impl StringLit {
    /// The decoded text when the literal has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StringPart::Text { text, .. } => out.push_str(text),
                StringPart::Interp { .. } => return None,
            }
        }
        Some(out)
    }
}

/// A number literal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberLit {
    /// The literal as written (`0o755`, `1_000`, `1.5Ki`, `1e3`).
    pub text: String,
    /// The decoded value.
    pub value: Number,
    /// Where it stands.
    pub span: Span,
}

/// A decoded number.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value")]
pub enum Number {
    /// An integer (SI multipliers applied: `1.5Ki` is 1536).
    Int(i128),
    /// A decimal integer too large for `i128`, as its digits (CUE integers
    /// have no size limit).
    BigInt(String),
    /// A float, in canonical decimal text (`1.5`, `1e+3`), to keep precision.
    Float(String),
}

/// Unary operators, including the unary bounds and the default mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnaryOp {
    /// `+x`
    Plus,
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `*x` (default mark; only meaningful inside a disjunction)
    Default,
    /// `!=x`
    NotEqual,
    /// `<x`
    Less,
    /// `<=x`
    LessEqual,
    /// `>x`
    Greater,
    /// `>=x`
    GreaterEqual,
    /// `=~x`
    Match,
    /// `!~x`
    NotMatch,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    /// `|` (precedence 1)
    Disjunction,
    /// `&` (precedence 2)
    Unification,
    /// `||` (precedence 3)
    Or,
    /// `&&` (precedence 4)
    And,
    /// `==` (precedence 5)
    Equal,
    /// `!=`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterEqual,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    /// `+` (precedence 6)
    Add,
    /// `-`
    Sub,
    /// `*` (precedence 7)
    Mul,
    /// `/`
    Div,
}

impl BinaryOp {
    /// CUE's precedence: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Disjunction => 1,
            BinaryOp::Unification => 2,
            BinaryOp::Or => 3,
            BinaryOp::And => 4,
            BinaryOp::Equal
            | BinaryOp::NotEqual
            | BinaryOp::Less
            | BinaryOp::LessEqual
            | BinaryOp::Greater
            | BinaryOp::GreaterEqual
            | BinaryOp::Match
            | BinaryOp::NotMatch => 5,
            BinaryOp::Add | BinaryOp::Sub => 6,
            BinaryOp::Mul | BinaryOp::Div => 7,
        }
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Disjunction => "|",
            BinaryOp::Unification => "&",
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Equal => "==",
            BinaryOp::NotEqual => "!=",
            BinaryOp::Less => "<",
            BinaryOp::LessEqual => "<=",
            BinaryOp::Greater => ">",
            BinaryOp::GreaterEqual => ">=",
            BinaryOp::Match => "=~",
            BinaryOp::NotMatch => "!~",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Expr {
    /// A reference: `x`, `#Def`, `_h`, `$dagger`, and also the predeclared
    /// names (`string`, `int`, `len`, ...), which the evaluator resolves.
    Ident(Ident),
    /// `_`
    Top {
        /// Where it stands.
        span: Span,
    },
    /// `_|_`
    Bottom {
        /// Where it stands.
        span: Span,
    },
    /// `null`
    Null {
        /// Where it stands.
        span: Span,
    },
    /// `true` / `false`
    Bool {
        /// The value.
        value: bool,
        /// Where it stands.
        span: Span,
    },
    /// A number.
    Number(NumberLit),
    /// A string or bytes literal, possibly interpolated.
    String(StringLit),
    /// `{ ... }`
    Struct(StructLit),
    /// `[ ... ]`
    List(ListLit),
    /// `x.name`, `x.#Def`, `x."quoted"`.
    Selector {
        /// The operand.
        base: Box<Expr>,
        /// The selected label (an `Ident` or a plain `String` label).
        label: Box<Label>,
        /// The whole expression.
        span: Span,
    },
    /// `x[i]`
    Index {
        /// The operand.
        base: Box<Expr>,
        /// The index.
        index: Box<Expr>,
        /// The whole expression.
        span: Span,
    },
    /// `x[lo:hi]`
    Slice {
        /// The operand.
        base: Box<Expr>,
        /// Low bound.
        low: Option<Box<Expr>>,
        /// High bound.
        high: Option<Box<Expr>>,
        /// The whole expression.
        span: Span,
    },
    /// `f(a, b)`
    Call {
        /// The callee.
        func: Box<Expr>,
        /// The arguments.
        args: Vec<Expr>,
        /// The whole expression.
        span: Span,
    },
    /// `op x`
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
        /// The whole expression.
        span: Span,
    },
    /// `x op y`
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// The whole expression.
        span: Span,
    },
    /// `(x)`
    Paren {
        /// The inner expression.
        expr: Box<Expr>,
        /// Including the parentheses.
        span: Span,
    },
    /// `X=expr` used as a value alias (`f: X=expr`).
    Alias {
        /// The alias.
        alias: Ident,
        /// The aliased expression.
        expr: Box<Expr>,
        /// The whole expression.
        span: Span,
    },
    /// Text that could not be parsed; a diagnostic was reported for it.
    Bad(BadNode),
}

impl Expr {
    /// The span of the expression.
    pub fn span(&self) -> Span {
        match self {
            Expr::Ident(i) => i.span,
            Expr::Top { span }
            | Expr::Bottom { span }
            | Expr::Null { span }
            | Expr::Bool { span, .. }
            | Expr::Selector { span, .. }
            | Expr::Index { span, .. }
            | Expr::Slice { span, .. }
            | Expr::Call { span, .. }
            | Expr::Unary { span, .. }
            | Expr::Binary { span, .. }
            | Expr::Paren { span, .. }
            | Expr::Alias { span, .. } => *span,
            Expr::Number(n) => n.span,
            Expr::String(s) => s.span,
            Expr::Struct(s) => s.span,
            Expr::List(l) => l.span,
            Expr::Bad(b) => b.span,
        }
    }
}
