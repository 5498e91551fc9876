//! The public face of the evaluator: load an instance, evaluate it (with
//! fills), navigate, export, and report errors.

use std::rc::Rc;

use cuedag_parser::{Diagnostic, Severity, SpanLabel};
use indexmap::IndexMap;

use crate::eval::{code, Bottom, Engine, State, VId, Val, CK};
use crate::export::PathError;
use crate::ir::{kind, DeclC, Ek, FieldDecl, FieldLabel, Label, PkgId, Pos, StructLit, E};
use crate::load::{self, LoadOptions, LoadProblem, Loader, Location, Sources};
use crate::value::Value;

/// The evaluator's error type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The sources could not be loaded or parsed.
    #[error("{} problem(s) loading the instance", .0.len())]
    Load(Vec<LoadProblem>),
    /// Evaluation found errors.
    #[error("{}", render_errors(.0))]
    Eval(Vec<EvalError>),
    /// A path does not exist or is malformed.
    #[error("invalid path `{0}`")]
    Path(String),
}

/// One evaluation error, located.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    /// Stable code (`E0401` conflicting values, ...).
    pub code: &'static str,
    /// The CUE path (`actions.build.source`), empty at the root.
    pub path: String,
    /// The message (`conflicting values "a" and "b"`).
    pub message: String,
    /// Whether more information (a fill) could resolve it.
    pub incomplete: bool,
    /// Source positions, sorted.
    pub locations: Vec<Location>,
    /// A hint on how to fix it.
    pub hint: Option<String>,
}

impl EvalError {
    /// `cue export` style: `path: message` then indented positions.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Like `cue export`, errors raised by builtins, cycles and explicit
        // bottoms carry no path.
        let pathless = matches!(self.code, "E0408" | "E0410" | "E0413");
        if self.path.is_empty() || pathless {
            out.push_str(&self.message);
        } else {
            out.push_str(&format!("{}: {}", self.path, self.message));
        }
        if !self.locations.is_empty() && !self.message.ends_with(':') {
            out.push(':');
        }
        for l in &self.locations {
            out.push_str(&format!("\n    {}:{}:{}", l.file, l.line, l.col));
        }
        out
    }

    /// The error as a diagnostic: labels point into the file of the first
    /// location (`file()` names it).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let first_file = self.locations.first().map(|l| l.file.clone());
        let labels = self
            .locations
            .iter()
            .filter(|l| Some(&l.file) == first_file.as_ref())
            .map(|l| SpanLabel {
                span: l.span,
                message: String::new(),
            })
            .collect();
        Diagnostic {
            code: self.code,
            severity: Severity::Error,
            message: if self.path.is_empty() {
                self.message.clone()
            } else {
                format!("{}: {}", self.path, self.message)
            },
            labels,
            help: self.hint.clone(),
        }
    }

    /// The file the diagnostic's labels point into.
    pub fn file(&self) -> Option<&str> {
        self.locations.first().map(|l| l.file.as_str())
    }
}

fn render_errors(errs: &[EvalError]) -> String {
    errs.iter()
        .map(EvalError::render)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Renders errors like `cue export` does on stderr.
pub fn render_eval_errors(errs: &[EvalError]) -> String {
    let mut s = render_errors(errs);
    s.push('\n');
    s
}

/// One selector of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    /// A regular field.
    Field(String),
    /// A definition `#A`.
    Def(String),
    /// A hidden field or hidden definition with the import path of its
    /// package (empty for the main package).
    Hidden {
        /// `_name` or `_#name`.
        name: String,
        /// The package import path (`dagger.io/dagger`), empty for main.
        pkg: String,
    },
    /// A list index.
    Index(usize),
}

/// A path from the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<Selector>);

impl Path {
    /// Parses `a.b."c-d".#E._f.0`; hidden labels belong to the main package.
    pub fn parse(s: &str) -> Result<Path, Error> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        let mut cur = String::new();
        let mut quoted = false;
        let flush = |cur: &mut String, quoted: bool, out: &mut Vec<Selector>| {
            if cur.is_empty() && !quoted {
                return;
            }
            let name = std::mem::take(cur);
            out.push(if quoted {
                Selector::Field(name)
            } else if let Ok(i) = name.parse::<usize>() {
                Selector::Index(i)
            } else if name.starts_with('#') {
                Selector::Def(name)
            } else if name.starts_with('_') && name.len() > 1 {
                Selector::Hidden {
                    name,
                    pkg: String::new(),
                }
            } else {
                Selector::Field(name)
            });
        };
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    flush(&mut cur, quoted, &mut out);
                    quoted = false;
                }
                '"' => {
                    quoted = true;
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some(n) = chars.next() {
                                    cur.push(n);
                                }
                            }
                            '"' => {
                                closed = true;
                                break;
                            }
                            c => cur.push(c),
                        }
                    }
                    if !closed {
                        return Err(Error::Path(s.to_string()));
                    }
                }
                c => cur.push(c),
            }
        }
        flush(&mut cur, quoted, &mut out);
        Ok(Path(out))
    }

    /// Appends a selector.
    pub fn child(&self, sel: Selector) -> Path {
        let mut p = self.clone();
        p.0.push(sel);
        p
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, sel) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match sel {
                Selector::Field(n) => f.write_str(&crate::eval::cue_label(n))?,
                Selector::Def(n) => f.write_str(n)?,
                Selector::Hidden { name, .. } => f.write_str(name)?,
                Selector::Index(i) => write!(f, "{i}")?,
            }
        }
        Ok(())
    }
}

/// A loaded, compiled instance (the main package and its imports).
pub struct Instance {
    sources: Rc<Sources>,
    interner: crate::ir::Interner,
    pkgs: Vec<crate::eval::PkgData>,
    pkg_paths: Vec<String>,
    problems: Vec<LoadProblem>,
}

/// Loads an instance: `args` are directories or `.cue` files (the current
/// directory when empty). Syntax errors and missing imports are returned as
/// [`Error::Load`].
pub fn load_instance(
    loader: &dyn Loader,
    args: &[String],
    opts: &LoadOptions,
) -> Result<Instance, Error> {
    let compiled = load::load(loader, args, opts);
    let inst = Instance {
        sources: Rc::new(compiled.sources),
        interner: compiled.interner,
        pkgs: compiled.pkgs,
        pkg_paths: compiled.pkg_paths,
        problems: compiled.problems,
    };
    if !inst.problems.is_empty() {
        return Err(Error::Load(inst.problems));
    }
    Ok(inst)
}

/// Compiles one CUE source text as a whole instance (tests, `-e`).
pub fn load_text(text: &str) -> Result<Instance, Error> {
    let mut mem = load::MemLoader::default();
    mem.add("in.cue", text);
    load_instance(&mem, &["in.cue".to_string()], &LoadOptions::default())
}

/// A value to fill in at a path.
pub type FillValue = Value;

impl Instance {
    /// The source files (for rendering positions).
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Evaluates the instance.
    pub fn evaluate(&self) -> Evaluation {
        match self.evaluate_with_fills(&[]) {
            Ok(e) => e,
            Err(_) => {
                let engine = Engine::new(self.interner.clone(), self.pkgs.clone());
                self.wrap(engine)
            }
        }
    }

    fn wrap(&self, mut engine: Engine) -> Evaluation {
        let root = engine.pkg_root(0);
        Evaluation {
            engine,
            root,
            sources: self.sources.clone(),
            pkg_paths: self.pkg_paths.clone(),
        }
    }

    /// Evaluates from scratch with concrete values unified at the given
    /// paths (hidden selectors name their package). The fills are merged
    /// into one struct literal added to the main package (a path filled
    /// several times gets one field per value), so that each vertex on a
    /// filled path has one more conjunct however many fills there are.
    pub fn evaluate_with_fills(&self, fills: &[(Path, FillValue)]) -> Result<Evaluation, Error> {
        let mut interner = self.interner.clone();
        let mut pkgs = self.pkgs.clone();
        if let Some(lit) = self.fill_literal(&mut interner, fills)? {
            if let Some(main) = pkgs.get_mut(0) {
                main.files.push(Rc::new(lit));
            }
        }
        let engine = Engine::new(interner, pkgs);
        Ok(self.wrap(engine))
    }

    /// Evaluates the main package again with `fills` (as
    /// [`evaluate_with_fills`](Self::evaluate_with_fills) does), keeping
    /// what `eval` evaluated of the imported packages: they cannot refer to
    /// the main package, so fills do not change them. The main package's
    /// old values stay in the arena, unreachable; once the arena has grown
    /// past `max_vertices`, evaluation starts over in a new one instead.
    pub fn reevaluate_with_fills(
        &self,
        eval: &mut Evaluation,
        fills: &[(Path, FillValue)],
        max_vertices: usize,
    ) -> Result<(), Error> {
        if eval.engine.vs.len() > max_vertices {
            *eval = self.evaluate_with_fills(fills)?;
            return Ok(());
        }
        let lit = self.fill_literal(&mut eval.engine.interner, fills)?;
        let Some(main) = eval.engine.pkgs.get_mut(0) else {
            return Ok(());
        };
        main.files = self
            .pkgs
            .first()
            .map(|p| p.files.clone())
            .unwrap_or_default();
        if let Some(lit) = lit {
            main.files.push(Rc::new(lit));
        }
        main.root = None;
        eval.root = eval.engine.pkg_root(0);
        Ok(())
    }

    /// The fills merged into one struct literal (`None` without fills).
    fn fill_literal(
        &self,
        interner: &mut crate::ir::Interner,
        fills: &[(Path, FillValue)],
    ) -> Result<Option<StructLit>, Error> {
        let mut tree = FillNode::default();
        for (path, value) in fills {
            let mut node = &mut tree;
            for sel in &path.0 {
                let label = match sel {
                    Selector::Field(n) => Label::Regular(interner.intern(n)),
                    Selector::Def(n) => Label::Def(interner.intern(n)),
                    Selector::Hidden { name, pkg } => {
                        let pkg_id = self
                            .pkg_paths
                            .iter()
                            .position(|p| p == pkg)
                            .ok_or_else(|| Error::Path(path.to_string()))?
                            as PkgId;
                        if name.starts_with("_#") {
                            Label::HiddenDef(interner.intern(name), pkg_id)
                        } else {
                            Label::Hidden(interner.intern(name), pkg_id)
                        }
                    }
                    Selector::Index(_) => return Err(Error::Path(path.to_string())),
                };
                node = node.children.entry(label).or_default();
            }
            node.values.push(value.clone());
        }
        Ok((!tree.children.is_empty()).then(|| tree.literal()))
    }
}

/// Fills grouped by path: the values filled at a node and its children.
#[derive(Default)]
struct FillNode {
    values: Vec<FillValue>,
    children: IndexMap<Label, FillNode>,
}

impl FillNode {
    /// The struct literal of the children: one field per value filled at a
    /// child, and one holding the child's own children.
    fn literal(&self) -> StructLit {
        let field = |label: Label, kind: Ek| {
            DeclC::Field(FieldDecl {
                label: FieldLabel::Static(label),
                optional: false,
                value: Rc::new(E {
                    kind,
                    pos: Pos::default(),
                }),
                attrs: Rc::new(Vec::new()),
                doc: None,
                pos: Pos::default(),
            })
        };
        let mut decls = Vec::new();
        for (label, child) in &self.children {
            for value in &child.values {
                decls.push(field(*label, Ek::Data(Rc::new(value.clone()))));
            }
            if !child.children.is_empty() {
                decls.push(field(*label, Ek::Struct(Rc::new(child.literal()))));
            }
        }
        StructLit {
            decls,
            is_struct: true,
            pos: Pos::default(),
        }
    }
}

/// A handle to a value inside an [`Evaluation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueId(VId);

/// The kind of an evaluated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `_` or a constraint of several kinds.
    Top,
    /// An error.
    Bottom,
    /// null
    Null,
    /// bool
    Bool,
    /// int
    Int,
    /// float
    Float,
    /// number (int or float)
    Number,
    /// string
    String,
    /// bytes
    Bytes,
    /// list
    List,
    /// struct
    Struct,
    /// An unresolved disjunction.
    Disjunction,
}

/// An attribute on a field: `@name(body)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// The name (`dagger`).
    pub name: String,
    /// The raw body (`generated`).
    pub body: String,
}

/// One field of a struct.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    /// The selector.
    pub selector: Selector,
    /// The field's value.
    pub value: ValueId,
    /// Declared only as optional.
    pub optional: bool,
    /// Hidden (`_x`, `_#x`).
    pub hidden: bool,
    /// Definition (`#X`, `_#x`).
    pub definition: bool,
    /// Attributes from all declarations.
    pub attrs: Vec<Attr>,
    /// Doc comments from all declarations.
    pub docs: Vec<String>,
    /// Declaration positions.
    pub locations: Vec<Location>,
}

/// An evaluated instance. Evaluation is lazy: navigation evaluates what it
/// touches, so methods take `&mut self`.
pub struct Evaluation {
    engine: Engine,
    root: VId,
    sources: Rc<Sources>,
    pkg_paths: Vec<String>,
}

impl Evaluation {
    /// The root value.
    pub fn root(&self) -> ValueId {
        ValueId(self.root)
    }

    /// The source files.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    fn label_for(&mut self, sel: &Selector) -> Option<Label> {
        let i = &mut self.engine.interner;
        Some(match sel {
            Selector::Field(n) => Label::Regular(i.get(n)?),
            Selector::Def(n) => Label::Def(i.get(n)?),
            Selector::Hidden { name, pkg } => {
                let pkg_id = self.pkg_paths.iter().position(|p| p == pkg)? as PkgId;
                let sym = i.get(name)?;
                if name.starts_with("_#") {
                    Label::HiddenDef(sym, pkg_id)
                } else {
                    Label::Hidden(sym, pkg_id)
                }
            }
            Selector::Index(i) => Label::Index(*i as u32),
        })
    }

    /// The value at `path` below `from` (defaults are followed).
    pub fn lookup_from(&mut self, from: ValueId, path: &Path) -> Option<ValueId> {
        let mut cur = from.0;
        for sel in &path.0 {
            let label = self.label_for(sel)?;
            self.engine.eval_vertex(cur);
            let w = self.engine.resolve_default(cur).ok()?;
            cur = *self.engine.vs[w as usize].arcs.get(&label)?;
        }
        self.engine.eval_vertex(cur);
        Some(ValueId(cur))
    }

    /// The value at `path` from the root.
    pub fn lookup(&mut self, path: &Path) -> Option<ValueId> {
        self.lookup_from(self.root(), path)
    }

    /// The value at a dotted path string (`actions.build`).
    pub fn lookup_str(&mut self, path: &str) -> Option<ValueId> {
        let p = Path::parse(path).ok()?;
        self.lookup(&p)
    }

    fn resolved(&mut self, v: ValueId) -> VId {
        self.engine.eval_vertex(v.0);
        self.engine.resolve_default(v.0).unwrap_or(v.0)
    }

    /// The fields of a struct in order (regular, optional, hidden and
    /// definitions; `let`s excluded). Empty for non-structs.
    pub fn fields(&mut self, v: ValueId) -> Vec<FieldInfo> {
        self.fields_of(v, true)
    }

    /// [`fields`](Self::fields) without `attrs`, `docs` and `locations`
    /// (left empty): for walks over many fields, such as task discovery,
    /// that need only selectors and values.
    pub fn field_values(&mut self, v: ValueId) -> Vec<FieldInfo> {
        self.fields_of(v, false)
    }

    /// [`fields`](Self::fields) with `attrs` but without `docs` and
    /// `locations` (left empty; [`locations`](Self::locations) gives a
    /// field's positions when needed).
    pub fn fields_with_attrs(&mut self, v: ValueId) -> Vec<FieldInfo> {
        let mut fields = self.fields_of(v, false);
        for info in &mut fields {
            info.attrs = self.engine.vs[info.value.0 as usize]
                .attrs
                .iter()
                .map(|a| Attr {
                    name: a.name.clone(),
                    body: a.body.clone(),
                })
                .collect();
        }
        fields
    }

    /// The declaration positions of a field's value, as in
    /// [`FieldInfo::locations`].
    pub fn locations(&self, v: ValueId) -> Vec<Location> {
        let mut locations: Vec<Location> = self
            .engine
            .vs
            .get(v.0 as usize)
            .map(|vx| {
                vx.decl_pos
                    .iter()
                    .filter_map(|p| self.sources.locate(*p))
                    .collect()
            })
            .unwrap_or_default();
        locations.sort();
        locations
    }

    fn fields_of(&mut self, v: ValueId, details: bool) -> Vec<FieldInfo> {
        let w = self.resolved(v);
        let arcs: Vec<(Label, VId)> = self.engine.vs[w as usize]
            .arcs
            .iter()
            .map(|(l, a)| (*l, *a))
            .collect();
        let mut out = Vec::new();
        for (l, a) in arcs {
            let selector = match l {
                Label::Regular(s) => Selector::Field(self.engine.interner.text(s).to_string()),
                Label::Def(s) => Selector::Def(self.engine.interner.text(s).to_string()),
                Label::Hidden(s, p) | Label::HiddenDef(s, p) => Selector::Hidden {
                    name: self.engine.interner.text(s).to_string(),
                    pkg: self.pkg_paths.get(p as usize).cloned().unwrap_or_default(),
                },
                Label::Index(i) => Selector::Index(i as usize),
                Label::Let(_) => continue,
            };
            let vx = &self.engine.vs[a as usize];
            let (attrs, docs) = if details {
                (
                    vx.attrs
                        .iter()
                        .map(|a| Attr {
                            name: a.name.clone(),
                            body: a.body.clone(),
                        })
                        .collect(),
                    vx.docs.iter().map(|d| d.to_string()).collect(),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            let optional = vx.optional && !matches!(l, Label::Index(_));
            out.push(FieldInfo {
                selector,
                value: ValueId(a),
                optional,
                hidden: l.is_hidden(),
                definition: l.is_def(),
                attrs,
                docs,
                locations: if details {
                    self.locations(ValueId(a))
                } else {
                    Vec::new()
                },
            });
        }
        out
    }

    /// The kind of a value (defaults applied when unique).
    pub fn kind(&mut self, v: ValueId) -> Kind {
        self.engine.eval_vertex(v.0);
        let Ok(w) = self.engine.resolve_default(v.0) else {
            return Kind::Disjunction;
        };
        let vx = &self.engine.vs[w as usize];
        if vx.is_struct {
            return Kind::Struct;
        }
        if vx.is_list {
            return Kind::List;
        }
        match &vx.value {
            Val::Bottom(_) => Kind::Bottom,
            Val::Atom(a) => match a {
                crate::eval::Atom::Null => Kind::Null,
                crate::eval::Atom::Bool(_) => Kind::Bool,
                crate::eval::Atom::Int(_) | crate::eval::Atom::BigInt(_) => Kind::Int,
                crate::eval::Atom::Float(..) => Kind::Float,
                crate::eval::Atom::Str(_) => Kind::String,
                crate::eval::Atom::Bytes(_) => Kind::Bytes,
            },
            Val::Cons(c) => match c.kinds {
                kind::NULL => Kind::Null,
                kind::BOOL => Kind::Bool,
                kind::INT => Kind::Int,
                kind::FLOAT => Kind::Float,
                kind::NUMBER => Kind::Number,
                kind::STRING => Kind::String,
                kind::BYTES => Kind::Bytes,
                _ => Kind::Top,
            },
            _ => Kind::Top,
        }
    }

    /// Whether the value (recursively) is concrete, defaults applied.
    pub fn is_concrete(&mut self, v: ValueId) -> bool {
        self.engine.check(v.0).is_ok()
    }

    /// Whether the value is an unresolved disjunction with a default.
    pub fn has_default(&mut self, v: ValueId) -> bool {
        self.engine.eval_vertex(v.0);
        match &self.engine.vs[v.0 as usize].disj {
            Some(arms) => arms.iter().filter(|(_, d)| *d).count() == 1,
            None => false,
        }
    }

    /// The default of a disjunction (the value itself otherwise).
    pub fn default_value(&mut self, v: ValueId) -> ValueId {
        ValueId(self.resolved(v))
    }

    /// The remaining disjuncts of an unresolved disjunction, as CUE text.
    pub fn disjuncts(&mut self, v: ValueId) -> Vec<String> {
        self.engine.eval_vertex(v.0);
        match self.engine.vs[v.0 as usize].disj.clone() {
            Some(arms) => arms
                .iter()
                .map(|(a, d)| {
                    let s = self.engine.vertex_to_cue(*a, 0);
                    if *d {
                        format!("*{s}")
                    } else {
                        s
                    }
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// Where the scalar conjuncts that make up a value are written (types,
    /// bounds and literals alike), in evaluation order. Empty for structs
    /// and lists.
    pub fn value_locations(&mut self, v: ValueId) -> Vec<Location> {
        let w = self.resolved(v);
        self.engine.vs[w as usize]
            .value_pos
            .iter()
            .filter_map(|p| self.sources.locate(*p))
            .collect()
    }

    /// Why the value is not concrete (first error), `None` when it is.
    pub fn not_concrete_reason(&mut self, v: ValueId) -> Option<EvalError> {
        match self.engine.check(v.0) {
            Ok(_) => None,
            Err(errs) => self.convert(errs).into_iter().next(),
        }
    }

    /// The concrete data of a value (defaults applied), or all errors.
    pub fn to_value(&mut self, v: ValueId) -> Result<Value, Vec<EvalError>> {
        self.engine.export(v.0).map_err(|e| self.convert(e))
    }

    /// The string value, if concrete.
    pub fn as_string(&mut self, v: ValueId) -> Option<String> {
        match self.to_value(v).ok()? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Exports the whole instance as data, or all errors.
    pub fn export(&mut self) -> Result<Value, Vec<EvalError>> {
        self.to_value(self.root())
    }

    /// `cue export --out json` text.
    pub fn export_json(&mut self, v: ValueId) -> Result<String, Vec<EvalError>> {
        self.to_value(v).map(|x| crate::export::to_json_text(&x))
    }

    /// `cue export --out yaml` text.
    pub fn export_yaml(&mut self, v: ValueId) -> Result<String, Vec<EvalError>> {
        self.to_value(v).map(|x| crate::export::to_yaml_text(&x))
    }

    /// `cue export --out cue` text (concrete data as CUE).
    pub fn export_cue(&mut self, v: ValueId) -> Result<String, Vec<EvalError>> {
        let data = self.to_value(v)?;
        Ok(data_to_cue_file(&data))
    }

    /// `cue eval` text: CUE syntax, non-concrete values allowed.
    pub fn eval_text(&mut self, v: ValueId) -> String {
        self.engine.cue_text(v.0, true)
    }

    /// CUE text of one value, inline.
    pub fn value_text(&mut self, v: ValueId) -> String {
        self.engine.vertex_to_cue(v.0, 0)
    }

    /// The path of a value (empty at the root, or for values not in the tree).
    pub fn path_of(&self, v: ValueId) -> Path {
        let mut sels = Vec::new();
        let mut cur = Some(v.0);
        while let Some(c) = cur {
            let vx = &self.engine.vs[c as usize];
            match vx.label {
                Some(l) => sels.push(match l {
                    Label::Regular(s) => Selector::Field(self.engine.interner.text(s).to_string()),
                    Label::Def(s) => Selector::Def(self.engine.interner.text(s).to_string()),
                    Label::Hidden(s, p) | Label::HiddenDef(s, p) => Selector::Hidden {
                        name: self.engine.interner.text(s).to_string(),
                        pkg: self.pkg_paths.get(p as usize).cloned().unwrap_or_default(),
                    },
                    Label::Index(i) => Selector::Index(i as usize),
                    Label::Let(i) => Selector::Hidden {
                        name: format!("let{i}"),
                        pkg: String::new(),
                    },
                }),
                None => {
                    if c != self.root {
                        return Path::default();
                    }
                }
            }
            cur = vx.parent;
        }
        sels.reverse();
        Path(sels)
    }

    fn is_in_main_tree(&self, v: VId) -> bool {
        let mut cur = Some(v);
        let mut n = 0;
        while let Some(c) = cur {
            if c == self.root {
                return true;
            }
            cur = self.engine.vs[c as usize].parent;
            n += 1;
            if n > 10_000 {
                break;
            }
        }
        false
    }

    /// The absolute paths (in the main package tree) that the expressions of
    /// the subtree at `v` referenced while being evaluated. Evaluates the
    /// subtree first.
    pub fn references(&mut self, v: ValueId) -> Vec<Path> {
        let _ = self.engine.check(v.0);
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![v.0];
        let mut visited = std::collections::HashSet::new();
        while let Some(x) = stack.pop() {
            if !visited.insert(x) {
                continue;
            }
            let vx = &self.engine.vs[x as usize];
            if vx.state != State::Done {
                continue;
            }
            for r in vx.refs.clone() {
                if self.is_in_main_tree(r) {
                    seen.insert(self.path_of(ValueId(r)));
                }
            }
            let vx = &self.engine.vs[x as usize];
            stack.extend(vx.arcs.values().copied());
            if let Some(arms) = &vx.disj {
                stack.extend(arms.iter().map(|(a, _)| *a));
            }
        }
        seen.into_iter().collect()
    }

    /// All errors of the instance, as `cue export` reports them.
    pub fn errors(&mut self) -> Vec<EvalError> {
        match self.engine.check(self.root) {
            Ok(_) => Vec::new(),
            Err(e) => self.convert(e),
        }
    }

    fn convert(&self, errs: Vec<PathError>) -> Vec<EvalError> {
        let mut out: Vec<EvalError> = errs
            .into_iter()
            .map(|e| self.convert_one(&e.path, &e.error))
            .collect();
        // A structural cycle found where it starts also makes the values
        // built through it too deep to export; those follow-on errors (at
        // paths like `l.tail.tail.tail...`) only repeat it.
        let cycle_found = out
            .iter()
            .any(|e| e.code == code::STRUCT_CYCLE && !e.locations.is_empty());
        if cycle_found {
            out.retain(|e| !e.message.starts_with("value too deep"));
        }
        out
    }

    fn convert_one(&self, path: &str, b: &Rc<Bottom>) -> EvalError {
        let mut positions: Vec<Pos> = b.pos.clone();
        for c in &b.causes {
            positions.extend(c.pos.iter().copied());
        }
        let mut locations: Vec<Location> = positions
            .iter()
            .filter(|p| **p != Pos::default() || self.sources.files.len() == 1)
            .filter(|p| !p.span.is_empty() || p.span.start > 0)
            .filter_map(|p| self.sources.locate(*p))
            .collect();
        locations.sort();
        locations.dedup();
        let mut message = b.msg.clone();
        for c in &b.causes {
            message.push_str(&format!("\n    {path}: {}", c.msg));
        }
        EvalError {
            code: b.code,
            path: path.to_string(),
            message,
            incomplete: b.incomplete,
            locations,
            hint: b.hint.clone(),
        }
    }

    /// Number of vertices created (for benchmarks and debugging).
    pub fn vertex_count(&self) -> usize {
        self.engine.vs.len()
    }
}

/// Concrete data as a CUE file body.
pub fn data_to_cue_file(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Struct(fields) => {
            for (k, x) in fields {
                out.push_str(&format!(
                    "{}: {}\n",
                    crate::eval::cue_label(k),
                    data_to_cue(x, 0)
                ));
            }
        }
        other => {
            out.push_str(&data_to_cue(other, 0));
            out.push('\n');
        }
    }
    out
}

fn data_to_cue(v: &Value, indent: usize) -> String {
    match v {
        Value::Struct(fields) => {
            if fields.is_empty() {
                return "{}".into();
            }
            let mut s = String::from("{\n");
            for (k, x) in fields {
                s.push_str(&"\t".repeat(indent + 1));
                s.push_str(&format!(
                    "{}: {}\n",
                    crate::eval::cue_label(k),
                    data_to_cue(x, indent + 1)
                ));
            }
            s.push_str(&"\t".repeat(indent));
            s.push('}');
            s
        }
        Value::List(items) => {
            if items.is_empty() {
                return "[]".into();
            }
            let mut s = String::from("[");
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&data_to_cue(x, indent));
            }
            s.push(']');
            s
        }
        Value::BigInt(d) => crate::eval::cue_number_literal(d, true),
        Value::Float(d) => crate::eval::cue_number_literal(d, false),
        other => crate::eval::value_to_cue(other),
    }
}

#[allow(dead_code)]
fn unused(_: IndexMap<String, Value>, _: CK) {}
