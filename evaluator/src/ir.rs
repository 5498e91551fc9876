//! The compiled form of CUE source: expressions with references resolved to
//! environment frames, labels interned.

use std::collections::HashMap;
use std::rc::Rc;

use cuedag_parser::ast::{self, BinaryOp, UnaryOp};
use cuedag_parser::Span;

use crate::fasthash::FastMap;
use crate::num::Decimal;

/// An interned string.
pub type Sym = u32;

/// A package number (0 is the main instance).
pub type PkgId = u32;

/// Interns label names.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    map: FastMap<Rc<str>, Sym>,
    strs: Vec<Rc<str>>,
}

impl Interner {
    /// Interns `s`.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(sym) = self.map.get(s) {
            return *sym;
        }
        let rc: Rc<str> = Rc::from(s);
        let sym = self.strs.len() as Sym;
        self.strs.push(rc.clone());
        self.map.insert(rc, sym);
        sym
    }

    /// Looks up `s` without interning it.
    pub fn get(&self, s: &str) -> Option<Sym> {
        self.map.get(s).copied()
    }

    /// The text of `sym`.
    pub fn text(&self, sym: Sym) -> &str {
        self.strs.get(sym as usize).map(|s| &**s).unwrap_or("")
    }
}

/// A field label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// A regular field (`a`, `"a-b"`, `$dagger`).
    Regular(Sym),
    /// A definition `#A`.
    Def(Sym),
    /// A hidden field `_a`, scoped to a package.
    Hidden(Sym, PkgId),
    /// A hidden definition `_#a`, scoped to a package.
    HiddenDef(Sym, PkgId),
    /// A `let` binding (unique number).
    Let(u32),
    /// A list element.
    Index(u32),
}

impl Label {
    /// Regular fields and list elements (what export shows).
    pub fn is_regular(self) -> bool {
        matches!(self, Label::Regular(_) | Label::Index(_))
    }

    /// Definitions (`#A`, `_#a`).
    pub fn is_def(self) -> bool {
        matches!(self, Label::Def(_) | Label::HiddenDef(..))
    }

    /// Hidden (`_a`, `_#a`).
    pub fn is_hidden(self) -> bool {
        matches!(self, Label::Hidden(..) | Label::HiddenDef(..))
    }
}

/// A source position: file number and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Index into the program's files.
    pub file: u32,
    /// Byte range.
    pub span: Span,
}

/// Predeclared identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predeclared {
    /// `null` kind constraints etc.
    Kind(u16),
    /// A bounded integer/float type (`int8`, `uint`, `float32`).
    Bounded(&'static str),
    /// `len`
    Len,
    /// `close`
    Close,
    /// `and`
    And,
    /// `or`
    Or,
    /// `div`
    Div,
    /// `mod`
    Mod,
    /// `quo`
    Quo,
    /// `rem`
    Rem,
}

/// Kind bits.
pub mod kind {
    /// null
    pub const NULL: u16 = 1;
    /// bool
    pub const BOOL: u16 = 2;
    /// int
    pub const INT: u16 = 4;
    /// float
    pub const FLOAT: u16 = 8;
    /// string
    pub const STRING: u16 = 16;
    /// bytes
    pub const BYTES: u16 = 32;
    /// list
    pub const LIST: u16 = 64;
    /// struct
    pub const STRUCT: u16 = 128;
    /// number
    pub const NUMBER: u16 = INT | FLOAT;
    /// scalars
    pub const SCALAR: u16 = NULL | BOOL | NUMBER | STRING | BYTES;
    /// everything
    pub const TOP: u16 = SCALAR | LIST | STRUCT;
}

/// A resolved reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Ref {
    /// A field of the struct `up` frames out.
    Field {
        /// Frames to walk up.
        up: u32,
        /// The label.
        label: Label,
    },
    /// A binding (comprehension variable, pattern alias) `up` frames out.
    Var {
        /// Frames to walk up.
        up: u32,
        /// Index in the binding frame.
        index: u32,
    },
    /// An imported package.
    Import(PkgId),
    /// An imported builtin package.
    BuiltinPkg(Rc<str>),
    /// A predeclared identifier.
    Predeclared(Predeclared),
    /// An unresolved name.
    Unresolved(Rc<str>),
}

/// An expression node with its position.
#[derive(Debug, Clone)]
pub struct E {
    /// What it is.
    pub kind: Ek,
    /// Where it is.
    pub pos: Pos,
}

/// Expression kinds.
#[derive(Debug, Clone)]
pub enum Ek {
    /// `_`
    Top,
    /// `_|_`
    Bottom,
    /// `null`
    Null,
    /// `true`/`false`
    Bool(bool),
    /// Integer literal.
    Int(i128),
    /// Integer literal too large for `i128`.
    BigInt(Rc<Decimal>),
    /// Float literal, exact.
    Float(Rc<Decimal>),
    /// String literal.
    Str(Rc<str>),
    /// Bytes literal.
    Bytes(Rc<[u8]>),
    /// Interpolated string (`bytes` flag).
    Interp(Vec<InterpPart>, bool),
    /// Struct literal.
    Struct(Rc<StructLit>),
    /// List literal.
    List(Rc<ListLit>),
    /// A reference.
    Ref(Ref),
    /// `x.label`
    Select(Rc<E>, Label),
    /// `x[i]`
    Index(Rc<E>, Rc<E>),
    /// `x[a:b]`
    Slice(Rc<E>, Option<Rc<E>>, Option<Rc<E>>),
    /// `f(args)`
    Call(Rc<E>, Vec<Rc<E>>),
    /// Unary operator (not `*`).
    Unary(UnaryOp, Rc<E>),
    /// Binary operator other than `|` and `&`.
    Binary(BinaryOp, Rc<E>, Rc<E>),
    /// `a & b & ...`
    Unify(Vec<Rc<E>>),
    /// `a | *b | ...` (arm, default-marked).
    Disj(Vec<(Rc<E>, bool)>),
    /// `x == _|_` (true) / `x != _|_` (false).
    IsBottom(Rc<E>, bool),
    /// A compile error.
    Error(Rc<str>),
    /// Concrete data (fills).
    Data(Rc<crate::value::Value>),
}

/// A piece of an interpolation.
#[derive(Debug, Clone)]
pub enum InterpPart {
    /// Literal text.
    Text(Rc<str>),
    /// An expression.
    Expr(Rc<E>),
}

/// A compiled field.
#[derive(Debug, Clone)]
pub struct FieldDecl {
    /// A static label, or a dynamic one.
    pub label: FieldLabel,
    /// Optional (`?`).
    pub optional: bool,
    /// The value.
    pub value: Rc<E>,
    /// Attributes.
    pub attrs: Rc<Vec<ast::Attribute>>,
    /// Doc comment text.
    pub doc: Option<Rc<str>>,
    /// The label position.
    pub pos: Pos,
}

/// A field's label.
#[derive(Debug, Clone)]
pub enum FieldLabel {
    /// Known at compile time.
    Static(Label),
    /// `"\(x)"` or `(x)`.
    Dynamic(Rc<E>),
}

/// A compiled declaration.
#[derive(Debug, Clone)]
pub enum DeclC {
    /// A field.
    Field(FieldDecl),
    /// A pattern constraint `[p]: v`; `v` is compiled in a binding frame
    /// holding the label.
    Pattern(Rc<E>, Rc<E>),
    /// An embedding.
    Embed(Rc<E>),
    /// `...`
    Ellipsis,
    /// A comprehension.
    Compr(Rc<Compr>),
}

/// A compiled struct literal.
#[derive(Debug, Clone)]
pub struct StructLit {
    /// Declarations.
    pub decls: Vec<DeclC>,
    /// Whether the literal contributes struct-ness (not only embeddings).
    pub is_struct: bool,
    /// Position.
    pub pos: Pos,
}

/// A compiled list literal.
#[derive(Debug, Clone)]
pub struct ListLit {
    /// Elements.
    pub elems: Vec<ListElemC>,
    /// The ellipsis type (`...` is `Some(Top)`), if open.
    pub ellipsis: Option<Rc<E>>,
    /// Position.
    pub pos: Pos,
}

/// A list element.
#[derive(Debug, Clone)]
pub enum ListElemC {
    /// Plain.
    Expr(Rc<E>),
    /// Comprehension (its body is `{ $v }`-like: a struct whose embed is the element).
    Compr(Rc<Compr>),
}

/// A comprehension.
#[derive(Debug, Clone)]
pub struct Compr {
    /// Clauses; each `for` and `let` opens one binding frame.
    pub clauses: Vec<ClauseC>,
    /// The body.
    pub body: Rc<E>,
    /// Position.
    #[allow(dead_code)]
    pub pos: Pos,
}

/// A comprehension clause.
#[derive(Debug, Clone)]
pub enum ClauseC {
    /// `for k, v in src` (frame: [k, v]).
    For(Rc<E>),
    /// `if cond`.
    If(Rc<E>),
    /// `let x = e` (frame: [x]).
    Let(Rc<E>),
}

/// A compiled file.
#[derive(Debug, Clone)]
pub struct FileC {
    /// The root struct literal of the file.
    pub root: Rc<StructLit>,
}

/// How names are resolved in one scope.
#[derive(Debug, Default, Clone)]
struct Scope {
    /// Names of fields (identifier text → label), lets and aliases.
    names: FastMap<String, Label>,
    /// Names bound in a binding frame (index).
    vars: FastMap<String, u32>,
    /// Whether this is a binding frame.
    is_bind: bool,
}

/// Compiles AST to IR.
pub struct Compiler<'a> {
    /// Interner.
    pub interner: &'a mut Interner,
    /// The package hidden labels belong to.
    pub pkg: PkgId,
    /// The file number.
    pub file: u32,
    /// Imports of the file: local name → reference.
    pub imports: HashMap<String, Ref>,
    /// Counter for let labels (shared across the program).
    pub let_counter: &'a mut u32,
    scopes: Vec<Scope>,
    depth: u32,
    /// Value aliases being compiled, and whether their value used them.
    alias_watch: Vec<(String, bool)>,
    /// Compile errors.
    pub errors: Vec<(Pos, String)>,
}

/// Deepest expression nesting compiled.
const MAX_EXPR_DEPTH: u32 = 2000;

fn predeclared(name: &str) -> Option<Predeclared> {
    use kind::*;
    Some(match name {
        "bool" => Predeclared::Kind(BOOL),
        "int" => Predeclared::Kind(INT),
        "float" => Predeclared::Kind(FLOAT),
        "number" => Predeclared::Kind(NUMBER),
        "string" => Predeclared::Kind(STRING),
        "bytes" => Predeclared::Kind(BYTES),
        "null" => Predeclared::Kind(NULL),
        "len" => Predeclared::Len,
        "close" => Predeclared::Close,
        "and" => Predeclared::And,
        "or" => Predeclared::Or,
        "div" => Predeclared::Div,
        "mod" => Predeclared::Mod,
        "quo" => Predeclared::Quo,
        "rem" => Predeclared::Rem,
        "int8" => Predeclared::Bounded("int8"),
        "int16" => Predeclared::Bounded("int16"),
        "int32" => Predeclared::Bounded("int32"),
        "int64" => Predeclared::Bounded("int64"),
        "int128" => Predeclared::Bounded("int128"),
        "uint" => Predeclared::Bounded("uint"),
        "uint8" => Predeclared::Bounded("uint8"),
        "byte" => Predeclared::Bounded("uint8"),
        "uint16" => Predeclared::Bounded("uint16"),
        "uint32" => Predeclared::Bounded("uint32"),
        "uint64" => Predeclared::Bounded("uint64"),
        "uint128" => Predeclared::Bounded("uint128"),
        "rune" => Predeclared::Bounded("rune"),
        "float32" => Predeclared::Bounded("float32"),
        "float64" => Predeclared::Bounded("float64"),
        _ => return None,
    })
}

impl<'a> Compiler<'a> {
    /// A compiler for one file of package `pkg`.
    pub fn new(
        interner: &'a mut Interner,
        let_counter: &'a mut u32,
        pkg: PkgId,
        file: u32,
    ) -> Self {
        Compiler {
            interner,
            pkg,
            file,
            imports: HashMap::new(),
            let_counter,
            scopes: Vec::new(),
            depth: 0,
            alias_watch: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn pos(&self, span: Span) -> Pos {
        Pos {
            file: self.file,
            span,
        }
    }

    /// The label for an identifier name.
    pub fn ident_label(&mut self, name: &str) -> Label {
        if let Some(rest) = name.strip_prefix("_#") {
            let _ = rest;
            Label::HiddenDef(self.interner.intern(name), self.pkg)
        } else if name.starts_with('#') {
            Label::Def(self.interner.intern(name))
        } else if name.starts_with('_') && name.len() > 1 {
            Label::Hidden(self.interner.intern(name), self.pkg)
        } else {
            Label::Regular(self.interner.intern(name))
        }
    }

    fn static_label(&mut self, label: &ast::Label) -> Option<Label> {
        match label {
            ast::Label::Ident(id) => Some(self.ident_label(&id.name)),
            ast::Label::String(s) => s
                .as_plain()
                .map(|text| Label::Regular(self.interner.intern(&text))),
            ast::Label::Alias(a) => self.static_label(&a.label),
            _ => None,
        }
    }

    /// Collects the names a struct's declarations bind.
    fn scope_for(&mut self, decls: &[ast::Decl], extra: &[(String, Label)]) -> Scope {
        let mut scope = Scope::default();
        for (n, l) in extra {
            scope.names.insert(n.clone(), *l);
        }
        for decl in decls {
            match decl {
                ast::Decl::Field(f) => {
                    let name = match &f.label {
                        ast::Label::Ident(id) => Some(id.name.clone()),
                        // Quoted labels are not visible as identifiers.
                        ast::Label::String(_) => None,
                        ast::Label::Alias(a) => {
                            if let Some(l) = self.static_label(&a.label) {
                                scope.names.insert(a.alias.name.clone(), l);
                            }
                            match &*a.label {
                                ast::Label::Ident(id) => Some(id.name.clone()),
                                ast::Label::String(s) => s.as_plain(),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    if let Some(name) = name {
                        let label = self.ident_label_for_field(&f.label, &name);
                        scope.names.entry(name).or_insert(label);
                    }
                }
                ast::Decl::Let(l) => {
                    *self.let_counter += 1;
                    scope
                        .names
                        .insert(l.name.name.clone(), Label::Let(*self.let_counter));
                }
                _ => {}
            }
        }
        scope
    }

    fn ident_label_for_field(&mut self, label: &ast::Label, name: &str) -> Label {
        match label {
            ast::Label::String(_) => Label::Regular(self.interner.intern(name)),
            ast::Label::Alias(a) => self.ident_label_for_field(&a.label, name),
            _ => self.ident_label(name),
        }
    }

    /// Compiles the files of one package as one struct: `extra_names` are
    /// the top-level names of all files of the package.
    pub fn compile_file(&mut self, file: &ast::File, package_names: &[(String, Label)]) -> FileC {
        let scope = self.scope_for(&file.decls, package_names);
        self.scopes.push(scope);
        let root = self.struct_body(&file.decls, file.span);
        self.scopes.pop();
        FileC {
            root: Rc::new(root),
        }
    }

    /// The top-level names of a file (for package scope).
    pub fn top_names(&mut self, file: &ast::File) -> Vec<(String, Label)> {
        let scope = self.scope_for(&file.decls, &[]);
        scope
            .names
            .into_iter()
            .filter(|(_, l)| !matches!(l, Label::Let(_)))
            .collect()
    }

    fn struct_lit(&mut self, lit: &ast::StructLit) -> StructLit {
        let scope = self.scope_for(&lit.decls, &[]);
        self.scopes.push(scope);
        let out = self.struct_body(&lit.decls, lit.span);
        self.scopes.pop();
        out
    }

    /// Compiles declarations; the scope is already pushed.
    fn struct_body(&mut self, decls: &[ast::Decl], span: Span) -> StructLit {
        let mut out = Vec::new();
        let mut is_struct = decls.is_empty();
        for decl in decls {
            match decl {
                ast::Decl::Field(f) => {
                    let hidden_or_def = match &f.label {
                        ast::Label::Ident(id) => id.is_hidden() || id.is_definition(),
                        _ => false,
                    };
                    if !hidden_or_def {
                        is_struct = true;
                    }
                    self.field(f, &mut out);
                }
                ast::Decl::Embed(e) => {
                    let expr = self.expr(&e.expr);
                    out.push(DeclC::Embed(expr));
                }
                ast::Decl::Let(l) => {
                    // The scope of these declarations (aliases a field
                    // adds to it are removed again after the field).
                    let label = self
                        .scopes
                        .last()
                        .and_then(|s| s.names.get(&l.name.name).copied())
                        .unwrap_or(Label::Let(0));
                    let value = self.expr(&l.expr);
                    out.push(DeclC::Field(FieldDecl {
                        label: FieldLabel::Static(label),
                        optional: false,
                        value,
                        attrs: Rc::new(Vec::new()),
                        doc: None,
                        pos: self.pos(l.name.span),
                    }));
                }
                ast::Decl::Comprehension(c) => {
                    // A comprehension yielding only embeddings (`if x {[a]}`)
                    // does not make the enclosing literal a struct.
                    if c.body
                        .decls
                        .iter()
                        .any(|d| !matches!(d, ast::Decl::Embed(_) | ast::Decl::Comprehension(_)))
                    {
                        is_struct = true;
                    }
                    let compr = self.comprehension(c, None);
                    out.push(DeclC::Compr(Rc::new(compr)));
                }
                ast::Decl::Ellipsis(_) => {
                    is_struct = true;
                    out.push(DeclC::Ellipsis);
                }
                ast::Decl::Attribute(_) => {}
                ast::Decl::Bad(b) => {
                    let pos = self.pos(b.span);
                    out.push(DeclC::Embed(Rc::new(E {
                        kind: Ek::Error(Rc::from("syntax error")),
                        pos,
                    })));
                }
            }
        }
        let has_embed = decls
            .iter()
            .any(|d| matches!(d, ast::Decl::Embed(_) | ast::Decl::Comprehension(_)));
        StructLit {
            decls: out,
            is_struct: is_struct || !has_embed,
            pos: self.pos(span),
        }
    }

    fn field(&mut self, f: &ast::Field, out: &mut Vec<DeclC>) {
        if f.constraint == ast::Constraint::Required {
            self.errors.push((
                self.pos(f.label.span()),
                "expected label or ':', found '!' (required fields `a!:` are not part of CUE v0.4)"
                    .into(),
            ));
        }
        let optional = !matches!(f.constraint, ast::Constraint::Regular);
        let doc = if f.doc.is_empty() {
            None
        } else {
            Some(Rc::from(f.doc.text()))
        };
        let value_expr = match &f.value {
            ast::Expr::Alias { expr, .. } => &**expr,
            other => other,
        };
        let pos = self.pos(f.label.span());
        let label = match &f.label {
            ast::Label::Pattern(p) => {
                let pattern = self.expr(&p.expr);
                let mut scope = Scope {
                    is_bind: true,
                    ..Scope::default()
                };
                if let Some(alias) = &p.alias {
                    scope.vars.insert(alias.name.clone(), 0);
                }
                self.scopes.push(scope);
                let value = self.expr(value_expr);
                self.scopes.pop();
                out.push(DeclC::Pattern(pattern, value));
                return;
            }
            ast::Label::Paren(p) => FieldLabel::Dynamic(self.expr(&p.expr)),
            ast::Label::String(s) if s.as_plain().is_none() => {
                FieldLabel::Dynamic(self.expr(&ast::Expr::String(s.clone())))
            }
            other => match self.static_label(other) {
                Some(l) => FieldLabel::Static(l),
                None => {
                    self.errors.push((pos, "invalid label".into()));
                    return;
                }
            },
        };
        // A value alias `f: X=expr` names the field inside `expr` only.
        let alias = match (&f.value, &label) {
            (ast::Expr::Alias { alias, .. }, FieldLabel::Static(l)) => {
                Some((alias.name.clone(), *l))
            }
            _ => None,
        };
        let alias_span = match &f.value {
            ast::Expr::Alias { alias, .. } => Some(alias.span),
            _ => None,
        };
        if let Some((name, _)) = &alias {
            self.alias_watch.push((name.clone(), false));
        }
        let saved = alias.as_ref().and_then(|(name, l)| {
            self.scopes
                .last_mut()
                .and_then(|scope| scope.names.insert(name.clone(), *l))
        });
        let value = self.expr(value_expr);
        if let Some((name, _)) = &alias {
            // As in CUE, an alias its value never uses is an error (it is
            // not visible outside the value, so it is likely a mistake).
            if let Some((_, false)) = self.alias_watch.pop() {
                let at = self.pos(alias_span.unwrap_or(f.span));
                self.errors
                    .push((at, format!("unreferenced alias or let clause {name}")));
            }
            if let Some(scope) = self.scopes.last_mut() {
                match saved {
                    Some(prev) => {
                        scope.names.insert(name.clone(), prev);
                    }
                    None => {
                        scope.names.remove(name);
                    }
                }
            }
        }
        out.push(DeclC::Field(FieldDecl {
            label,
            optional,
            value,
            attrs: Rc::new(f.attrs.clone()),
            doc,
            pos,
        }));
    }

    fn comprehension(&mut self, c: &ast::Comprehension, list_elem: Option<()>) -> Compr {
        let mut clauses = Vec::new();
        let mut pushed = 0;
        for clause in &c.clauses {
            match clause {
                ast::Clause::For(f) => {
                    let src = self.expr(&f.source);
                    clauses.push(ClauseC::For(src));
                    let mut scope = Scope {
                        is_bind: true,
                        ..Scope::default()
                    };
                    if let Some(k) = &f.key {
                        scope.vars.insert(k.name.clone(), 0);
                    }
                    scope.vars.insert(f.value.name.clone(), 1);
                    self.scopes.push(scope);
                    pushed += 1;
                }
                ast::Clause::If(i) => {
                    let cond = self.expr(&i.condition);
                    clauses.push(ClauseC::If(cond));
                }
                ast::Clause::Let(l) => {
                    let e = self.expr(&l.expr);
                    clauses.push(ClauseC::Let(e));
                    let mut scope = Scope {
                        is_bind: true,
                        ..Scope::default()
                    };
                    scope.vars.insert(l.name.name.clone(), 0);
                    self.scopes.push(scope);
                    pushed += 1;
                }
            }
        }
        let body = if list_elem.is_some() {
            // A list comprehension yields the body struct as the element.
            let lit = self.struct_lit(&c.body);
            Rc::new(E {
                kind: Ek::Struct(Rc::new(lit)),
                pos: self.pos(c.body.span),
            })
        } else {
            let lit = self.struct_lit(&c.body);
            Rc::new(E {
                kind: Ek::Struct(Rc::new(lit)),
                pos: self.pos(c.body.span),
            })
        };
        for _ in 0..pushed {
            self.scopes.pop();
        }
        Compr {
            clauses,
            body,
            pos: self.pos(c.span),
        }
    }

    fn resolve(&mut self, name: &str) -> Ref {
        let n_scopes = self.scopes.len();
        for (up, scope) in self.scopes.iter().rev().enumerate() {
            // In the file scope an import name wins over a top-level field,
            // let or alias of the same name (CUE inserts imports last).
            if up + 1 == n_scopes {
                if let Some(r) = self.imports.get(name) {
                    return r.clone();
                }
            }
            let up = up as u32;
            if scope.is_bind {
                if let Some(index) = scope.vars.get(name) {
                    return Ref::Var { up, index: *index };
                }
            } else if let Some(label) = scope.names.get(name) {
                for (watched, used) in self.alias_watch.iter_mut().rev() {
                    if watched == name {
                        *used = true;
                        break;
                    }
                }
                return Ref::Field { up, label: *label };
            }
        }
        if let Some(r) = self.imports.get(name) {
            return r.clone();
        }
        if let Some(p) = predeclared(name) {
            return Ref::Predeclared(p);
        }
        Ref::Unresolved(Rc::from(name))
    }

    fn mk(&self, kind: Ek, span: Span) -> Rc<E> {
        Rc::new(E {
            kind,
            pos: self.pos(span),
        })
    }

    /// Compiles an expression.
    pub fn expr(&mut self, e: &ast::Expr) -> Rc<E> {
        if self.depth > MAX_EXPR_DEPTH {
            let pos = self.pos(e.span());
            self.errors.push((
                pos,
                "expression nested too deeply (more than 2000 levels)".into(),
            ));
            return Rc::new(E {
                kind: Ek::Error(Rc::from("expression nested too deeply")),
                pos,
            });
        }
        self.depth += 1;
        let out = cuedag_parser::stack::grow(|| self.expr_inner(e));
        self.depth -= 1;
        out
    }

    fn expr_inner(&mut self, e: &ast::Expr) -> Rc<E> {
        let span = e.span();
        let kind = match e {
            ast::Expr::Ident(id) => {
                let r = self.resolve(&id.name);
                Ek::Ref(r)
            }
            ast::Expr::Top { .. } => Ek::Top,
            ast::Expr::Bottom { .. } => Ek::Bottom,
            ast::Expr::Null { .. } => Ek::Null,
            ast::Expr::Bool { value, .. } => Ek::Bool(*value),
            ast::Expr::Number(n) => match &n.value {
                ast::Number::Int(i) => Ek::Int(*i),
                ast::Number::BigInt(digits) => match Decimal::parse(digits) {
                    Some(d) => Ek::BigInt(Rc::new(d)),
                    None => Ek::Error(Rc::from(format!("invalid number `{}`", n.text))),
                },
                ast::Number::Float(text) => match Decimal::parse(text) {
                    Some(d) => Ek::Float(Rc::new(d)),
                    None => Ek::Error(Rc::from(format!("invalid number `{}`", n.text))),
                },
            },
            ast::Expr::String(s) => {
                if let Some(text) = s.as_plain() {
                    if s.bytes {
                        Ek::Bytes(Rc::from(text.as_bytes()))
                    } else {
                        Ek::Str(Rc::from(text.as_str()))
                    }
                } else {
                    let parts = s
                        .parts
                        .iter()
                        .map(|p| match p {
                            ast::StringPart::Text { text, .. } => {
                                InterpPart::Text(Rc::from(text.as_str()))
                            }
                            ast::StringPart::Interp { expr, .. } => {
                                InterpPart::Expr(self.expr(expr))
                            }
                        })
                        .collect();
                    Ek::Interp(parts, s.bytes)
                }
            }
            ast::Expr::Struct(s) => Ek::Struct(Rc::new(self.struct_lit(s))),
            ast::Expr::List(l) => {
                let mut elems = Vec::new();
                let mut ellipsis = None;
                for el in &l.elems {
                    match el {
                        ast::ListElem::Expr(x) => elems.push(ListElemC::Expr(self.expr(x))),
                        ast::ListElem::Comprehension(c) => {
                            elems.push(ListElemC::Compr(Rc::new(self.comprehension(c, Some(())))))
                        }
                        ast::ListElem::Ellipsis(el) => {
                            ellipsis = Some(match &el.ty {
                                Some(t) => self.expr(t),
                                None => self.mk(Ek::Top, el.span),
                            })
                        }
                    }
                }
                Ek::List(Rc::new(ListLit {
                    elems,
                    ellipsis,
                    pos: self.pos(l.span),
                }))
            }
            ast::Expr::Selector { base, label, .. } => {
                let base = self.expr(base);
                match self.selector_label(label) {
                    Some(l) => Ek::Select(base, l),
                    None => Ek::Error(Rc::from("invalid selector")),
                }
            }
            ast::Expr::Index { base, index, .. } => Ek::Index(self.expr(base), self.expr(index)),
            ast::Expr::Slice {
                base, low, high, ..
            } => Ek::Slice(
                self.expr(base),
                low.as_ref().map(|l| self.expr(l)),
                high.as_ref().map(|h| self.expr(h)),
            ),
            ast::Expr::Call { func, args, .. } => {
                let f = self.expr(func);
                let args = args.iter().map(|a| self.expr(a)).collect();
                Ek::Call(f, args)
            }
            ast::Expr::Unary { op, expr, .. } => {
                let inner = self.expr(expr);
                if *op == UnaryOp::Default {
                    // A default mark outside a disjunction is ignored.
                    return inner;
                }
                Ek::Unary(*op, inner)
            }
            ast::Expr::Binary { op, lhs, rhs, .. } => match op {
                BinaryOp::Disjunction => {
                    let mut arms = Vec::new();
                    self.flatten_disj(e, &mut arms);
                    Ek::Disj(arms)
                }
                BinaryOp::Unification => {
                    let mut parts = Vec::new();
                    self.flatten_unify(e, &mut parts);
                    Ek::Unify(parts)
                }
                BinaryOp::Equal | BinaryOp::NotEqual
                    if matches!(strip_paren(rhs), ast::Expr::Bottom { .. })
                        || matches!(strip_paren(lhs), ast::Expr::Bottom { .. }) =>
                {
                    let other = if matches!(strip_paren(rhs), ast::Expr::Bottom { .. }) {
                        lhs
                    } else {
                        rhs
                    };
                    Ek::IsBottom(self.expr(other), *op == BinaryOp::Equal)
                }
                _ => Ek::Binary(*op, self.expr(lhs), self.expr(rhs)),
            },
            ast::Expr::Paren { expr, .. } => return self.expr(expr),
            ast::Expr::Alias { expr, .. } => return self.expr(expr),
            ast::Expr::Bad(_) => Ek::Error(Rc::from("syntax error")),
        };
        self.mk(kind, span)
    }

    fn selector_label(&mut self, label: &ast::Label) -> Option<Label> {
        match label {
            ast::Label::Ident(id) => Some(self.ident_label(&id.name)),
            ast::Label::String(s) => s
                .as_plain()
                .map(|t| Label::Regular(self.interner.intern(&t))),
            _ => None,
        }
    }

    fn flatten_disj(&mut self, e: &ast::Expr, arms: &mut Vec<(Rc<E>, bool)>) {
        if self.depth > MAX_EXPR_DEPTH {
            self.errors.push((
                self.pos(e.span()),
                "expression nested too deeply (more than 2000 levels)".into(),
            ));
            return;
        }
        self.depth += 1;
        self.flatten_disj_inner(e, arms);
        self.depth -= 1;
    }

    fn flatten_disj_inner(&mut self, e: &ast::Expr, arms: &mut Vec<(Rc<E>, bool)>) {
        match e {
            ast::Expr::Binary {
                op: BinaryOp::Disjunction,
                ..
            } => {
                // `a | b | c | ...` nests to the left: walk that spine without
                // recursion, so long enumerations (aws/cli's service names)
                // are not limited by the nesting bound.
                let mut rights = Vec::new();
                let mut current = e;
                while let ast::Expr::Binary {
                    op: BinaryOp::Disjunction,
                    lhs,
                    rhs,
                    ..
                } = current
                {
                    rights.push(rhs.as_ref());
                    current = lhs.as_ref();
                }
                self.flatten_disj(current, arms);
                for rhs in rights.into_iter().rev() {
                    self.flatten_disj(rhs, arms);
                }
            }
            ast::Expr::Unary {
                op: UnaryOp::Default,
                expr,
                ..
            } => arms.push((self.expr(expr), true)),
            other => arms.push((self.expr(other), false)),
        }
    }

    fn flatten_unify(&mut self, e: &ast::Expr, parts: &mut Vec<Rc<E>>) {
        if self.depth > MAX_EXPR_DEPTH {
            self.errors.push((
                self.pos(e.span()),
                "expression nested too deeply (more than 2000 levels)".into(),
            ));
            return;
        }
        self.depth += 1;
        self.flatten_unify_inner(e, parts);
        self.depth -= 1;
    }

    fn flatten_unify_inner(&mut self, e: &ast::Expr, parts: &mut Vec<Rc<E>>) {
        match e {
            ast::Expr::Binary {
                op: BinaryOp::Unification,
                lhs,
                rhs,
                ..
            } => {
                self.flatten_unify(lhs, parts);
                self.flatten_unify(rhs, parts);
            }
            other => parts.push(self.expr(other)),
        }
    }
}

fn strip_paren(e: &ast::Expr) -> &ast::Expr {
    match e {
        ast::Expr::Paren { expr, .. } => strip_paren(expr),
        other => other,
    }
}
