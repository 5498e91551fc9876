//! The evaluation engine: vertices with conjuncts, unification, closedness,
//! disjunctions, comprehensions.
//!
//! A vertex is a node of the value tree. Its conjuncts are expressions with
//! their environment; evaluating a vertex gathers the conjuncts (expanding
//! references into the referenced vertex's conjuncts, so that references
//! inside a referenced struct resolve against the new vertex), creating arcs
//! (children) with their own conjuncts, which are evaluated lazily.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

use cuedag_parser::ast::{self, BinaryOp, UnaryOp};
use indexmap::IndexMap;

use crate::fasthash::{FastIndexMap, FastIndexSet};
use crate::ir::{
    kind, ClauseC, Compr, DeclC, Ek, FieldDecl, FieldLabel, Interner, Label, ListElemC, ListLit,
    PkgId, Pos, Predeclared, Ref, StructLit, E,
};
use crate::num::{Decimal, IntDivOp, NumError};
use crate::value::{Func, Member, Package, Special, Value, ASCENDING, DESCENDING};

/// A vertex number.
pub type VId = u32;

/// Most nested vertex evaluations before reporting an error.
const MAX_DEPTH: u32 = 100;
/// Most nested reference expansions into one vertex.
const MAX_EXPAND_DEPTH: u32 = 2000;
/// Deepest nesting of a value made concrete for a builtin (as export's).
const MAX_VALUE_DEPTH: u32 = 300;
/// Most combinations of disjunction arms evaluated for one vertex.
const MAX_COMBOS: usize = 512;
/// Most finished vertex builders kept for reuse.
const MAX_SPARE_BUILDERS: usize = 128;

/// A concrete scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    /// `null`
    Null,
    /// bool
    Bool(bool),
    /// int: an exact integer that fits the fast path (exponent 0, not `-0`)
    Int(i128),
    /// int: any other integer (huge, `-0`, or a rounded result such as
    /// `9.99999999999999999980000E+39`)
    BigInt(Rc<Decimal>),
    /// float: a decimal, printed as CUE does (`2.50`, `1E+3`)
    Float(Rc<Decimal>),
    /// string
    Str(Rc<str>),
    /// bytes
    Bytes(Rc<[u8]>),
}

impl Atom {
    fn kind(&self) -> u16 {
        match self {
            Atom::Null => kind::NULL,
            Atom::Bool(_) => kind::BOOL,
            Atom::Int(_) | Atom::BigInt(_) => kind::INT,
            Atom::Float(..) => kind::FLOAT,
            Atom::Str(_) => kind::STRING,
            Atom::Bytes(_) => kind::BYTES,
        }
    }

    /// The number as a decimal, for ints and floats.
    fn dec(&self) -> Option<Decimal> {
        match self {
            Atom::Int(i) => Some(Decimal::from_i128(*i)),
            Atom::BigInt(d) | Atom::Float(d) => Some((**d).clone()),
            _ => None,
        }
    }

    fn is_num(&self) -> bool {
        matches!(self, Atom::Int(_) | Atom::BigInt(_) | Atom::Float(_))
    }

    /// An int atom for an integer decimal (the `i128` fast path when it fits).
    pub(crate) fn int(d: Decimal) -> Atom {
        if d.exponent() == 0 && !(d.is_zero() && d.is_negative()) {
            if let Some(i) = d.to_i128() {
                return Atom::Int(i);
            }
        }
        Atom::BigInt(Rc::new(d))
    }

    /// A float atom.
    pub(crate) fn float(d: Decimal) -> Atom {
        Atom::Float(Rc::new(d))
    }

    /// The atom as a literal in CUE output (numbers as
    /// [`cue_number_literal`]; other atoms as [`Atom::to_cue`]).
    pub fn to_cue_literal(&self) -> String {
        match self {
            Atom::BigInt(d) => cue_number_literal(d, true),
            Atom::Float(d) => cue_number_literal(d, false),
            other => other.to_cue(),
        }
    }

    /// CUE syntax for the atom.
    pub fn to_cue(&self) -> String {
        match self {
            Atom::Null => "null".into(),
            Atom::Bool(b) => b.to_string(),
            Atom::Int(i) => i.to_string(),
            Atom::BigInt(d) | Atom::Float(d) => d.to_string(),
            Atom::Str(s) => quote(s),
            Atom::Bytes(b) => format!("'{}'", String::from_utf8_lossy(b)),
        }
    }
}

/// A number as `cue export --out cue` and `cue eval` write it: the decimal's
/// text with a lowercase exponent, and a float always looking like one
/// (`1e+3`, `5.0`, `9.99999999999999999980000e+39`). Error messages keep
/// the decimal's own text (`1E+3`).
pub fn cue_number_literal(d: &Decimal, is_int: bool) -> String {
    let text = d.to_string().to_lowercase();
    if is_int || text.contains(['.', 'e']) {
        text
    } else {
        format!("{text}.0")
    }
}

/// Quotes a string as CUE/JSON does.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A bound operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `!=`
    Ne,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
}

impl BoundOp {
    fn as_str(self) -> &'static str {
        match self {
            BoundOp::Lt => "<",
            BoundOp::Le => "<=",
            BoundOp::Gt => ">",
            BoundOp::Ge => ">=",
            BoundOp::Ne => "!=",
            BoundOp::Match => "=~",
            BoundOp::NotMatch => "!~",
        }
    }
}

/// A validator from a builtin package (`strings.MinRunes(1)`).
#[derive(Debug, Clone)]
pub struct Validator {
    /// The function.
    pub func: &'static Func,
    /// The arguments after the validated value.
    pub args: Vec<Value>,
    /// `strings.MinRunes(1)` as written for messages.
    pub name: Rc<str>,
}

/// A non-concrete scalar constraint: kinds plus bounds plus validators.
#[derive(Debug, Clone)]
pub struct Cons {
    /// Allowed kinds.
    pub kinds: u16,
    /// Bounds.
    pub bounds: Vec<(BoundOp, Atom)>,
    /// Validators.
    pub validators: Vec<Validator>,
}

/// An error value.
#[derive(Debug, Clone)]
pub struct Bottom {
    /// Stable code.
    pub code: &'static str,
    /// The message.
    pub msg: String,
    /// Positions involved.
    pub pos: Vec<Pos>,
    /// Incomplete (may be resolved by more information) rather than fatal.
    pub incomplete: bool,
    /// A hint.
    pub hint: Option<String>,
    /// Sub-errors (disjunction arms).
    pub causes: Vec<Rc<Bottom>>,
}

/// Error codes.
pub mod code {
    /// Conflicting values.
    pub const CONFLICT: &str = "E0401";
    /// Incomplete value.
    pub const INCOMPLETE: &str = "E0402";
    /// Field not allowed.
    pub const NOT_ALLOWED: &str = "E0403";
    /// Out of bound / invalid value.
    pub const INVALID: &str = "E0404";
    /// Undefined field.
    pub const UNDEFINED: &str = "E0405";
    /// Empty disjunction.
    pub const DISJ: &str = "E0406";
    /// Structural cycle.
    pub const STRUCT_CYCLE: &str = "E0407";
    /// Cycle.
    pub const CYCLE: &str = "E0408";
    /// Invalid operands.
    pub const OPERANDS: &str = "E0409";
    /// Explicit `_|_`.
    pub const EXPLICIT: &str = "E0410";
    /// Reference not found.
    pub const NOT_FOUND: &str = "E0411";
    /// Import problem.
    pub const IMPORT: &str = "E0412";
    /// Builtin error.
    pub const BUILTIN: &str = "E0413";
    /// Too deep.
    pub const DEPTH: &str = "E0414";
}

fn bot(code: &'static str, msg: impl Into<String>, pos: Vec<Pos>, incomplete: bool) -> Rc<Bottom> {
    Rc::new(Bottom {
        code,
        msg: msg.into(),
        pos,
        incomplete,
        hint: None,
        causes: Vec::new(),
    })
}

/// A value as seen by expressions.
#[derive(Debug, Clone)]
pub enum Val {
    /// `_`
    Top,
    /// An error.
    Bottom(Rc<Bottom>),
    /// A concrete scalar.
    Atom(Atom),
    /// A scalar constraint.
    Cons(Rc<Cons>),
    /// A vertex (struct, list, or anything evaluated through a vertex).
    V(VId),
    /// A builtin package.
    Pkg(&'static Package),
    /// A builtin function.
    Func(&'static Func, Rc<str>),
    /// A predeclared function.
    Pre(Predeclared),
}

/// One binding in a binding frame.
#[derive(Debug, Clone)]
pub enum Binding {
    /// A value (a label, an index).
    Val(Val),
    /// A vertex.
    Vertex(VId),
}

/// One environment frame.
#[derive(Debug)]
pub enum Frame {
    /// The struct whose fields are in scope.
    Struct(VId),
    /// Bound variables.
    Bind(Vec<Binding>),
}

/// An environment: a chain of frames.
#[derive(Debug)]
pub struct EnvFrame {
    /// The enclosing environment.
    pub parent: Env,
    /// This frame.
    pub frame: Frame,
}

/// An environment.
pub type Env = Option<Rc<EnvFrame>>;

fn push(env: &Env, frame: Frame) -> Env {
    Some(Rc::new(EnvFrame {
        parent: env.clone(),
        frame,
    }))
}

/// Closedness information carried by a conjunct.
#[derive(Debug, Clone, Copy, Default)]
pub struct CI {
    /// A struct literal reached with this joins this group.
    pub group: Option<u32>,
    /// The group of the literal that declared the field (for fresh groups).
    pub parent: Option<u32>,
    /// Whether the conjunct is embedded in a literal of `group`.
    pub embedded: bool,
    /// Expanded immediately (pattern constraints), never deferred.
    pub immediate: bool,
    /// The group of the struct this conjunct is an operand of an embedded
    /// `&` expression in (`{ #D & {...} }`).
    pub embed_in: Option<u32>,
}

/// What a conjunct is.
#[derive(Debug, Clone)]
pub enum CK {
    /// An expression.
    Expr(Rc<E>),
    /// A struct literal's fields only (embeddings already expanded).
    Fields(Rc<StructLit>, u32),
    /// A comprehension in a struct of the given group.
    Compr(Rc<Compr>),
    /// A value.
    Val(Val, Pos),
    /// The conjuncts of another vertex.
    Vertex(VId),
    /// A list whose elements are these vertices.
    Elems(Rc<Vec<VId>>, Pos),
    /// Concrete data.
    Data(Rc<Value>, Pos),
    /// A list literal (elements only).
    List(Rc<ListLit>),
}

/// A conjunct.
#[derive(Debug, Clone)]
pub struct Conj {
    /// What.
    pub kind: CK,
    /// In which environment.
    pub env: Env,
    /// Closedness.
    pub ci: CI,
}

/// Evaluation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started.
    New,
    /// In progress.
    Evaluating,
    /// Finished.
    Done,
}

/// Declared labels of one closedness group in one vertex.
#[derive(Debug, Clone, Default)]
struct LitGroup {
    group: u32,
    labels: Vec<Label>,
    patterns: Vec<(Rc<E>, Env)>,
    open: bool,
}

/// A vertex.
#[derive(Debug, Clone)]
pub struct Vertex {
    /// Parent vertex.
    pub parent: Option<VId>,
    /// Label in the parent.
    pub label: Option<Label>,
    /// Conjuncts.
    pub conjs: Vec<Conj>,
    /// Evaluation state.
    pub state: State,
    /// The scalar value (Top if struct/list only).
    pub value: Val,
    /// Positions of the contributing scalar conjuncts.
    pub value_pos: Vec<Pos>,
    /// Is a struct.
    pub is_struct: bool,
    /// Is a list.
    pub is_list: bool,
    /// Open list (`...`).
    pub list_open: bool,
    /// Arcs in order.
    pub arcs: FastIndexMap<Label, VId>,
    /// Declared only as optional.
    pub optional: bool,
    /// For a field first declared as optional, then set: when it was set
    /// (CUE v0.4 iterates such fields after the others, in that order).
    pub set_late: Option<u32>,
    /// Attributes from all declarations.
    pub attrs: Vec<ast::Attribute>,
    /// Doc comments from all declarations.
    pub docs: Vec<Rc<str>>,
    /// Declaration positions.
    pub decl_pos: Vec<Pos>,
    /// Surviving disjuncts (vertex, is default) when unresolved.
    pub disj: Option<Rc<Vec<(VId, bool)>>>,
    /// Vertices referenced while evaluating this one.
    pub refs: Vec<VId>,
    /// Why the vertex is incomplete although its value is not bottom.
    pub incomplete: Option<Rc<Bottom>>,
    /// Is closed (for printing).
    pub closed: bool,
    /// Validators to check on the manifested struct or list.
    pub validators: Vec<Validator>,
    /// A disjunct clone (its arm conjuncts come first).
    pub clone: bool,
    /// The order in which the arcs were created, when `arcs` was reordered
    /// for export: `for` clauses iterate in creation order, as CUE does.
    pub creation_order: Option<Rc<Vec<Label>>>,
}

impl Vertex {
    fn new(parent: Option<VId>, label: Option<Label>) -> Self {
        Vertex {
            parent,
            label,
            conjs: Vec::new(),
            state: State::New,
            value: Val::Top,
            value_pos: Vec::new(),
            is_struct: false,
            is_list: false,
            list_open: false,
            arcs: FastIndexMap::default(),
            optional: true,
            set_late: None,
            attrs: Vec::new(),
            docs: Vec::new(),
            decl_pos: Vec::new(),
            disj: None,
            refs: Vec::new(),
            incomplete: None,
            closed: false,
            validators: Vec::new(),
            clone: false,
            creation_order: None,
        }
    }
}

struct PendingDisj {
    arms: Vec<(Conj, bool)>,
    has_default: bool,
}

struct Builder {
    v: VId,
    acc: Val,
    acc_pos: Vec<Pos>,
    has_struct: bool,
    has_list: bool,
    struct_pos: Option<Pos>,
    leaves: Vec<Conj>,
    disjs: Vec<PendingDisj>,
    comprs: Vec<(Conj, usize)>,
    lists: Vec<(Rc<ListLit>, Env, CI, u32)>,
    elems: Vec<(Rc<Vec<VId>>, Pos)>,
    groups: Vec<LitGroup>,
    patterns: Vec<(Rc<E>, Rc<E>, Env, CI)>,
    /// The vertices whose conjuncts are being added, innermost last (a
    /// stack with O(1) membership: reference chains can be long).
    expanding: FastIndexSet<VId>,
    incomplete: Option<Rc<Bottom>>,
    cycle: Option<Rc<Bottom>>,
    deferred: Vec<(Rc<E>, Env, CI)>,
    deferring: bool,
    /// The static labels of each struct literal added, in the order the
    /// literals were added (CUE's `Vertex.Structs`): the export field order
    /// is a merge of these lists.
    fronts: Vec<(Rc<StructLit>, Vec<Label>)>,
    /// Fields with computed labels, added after the struct's conjuncts.
    dynamics: Vec<(FieldDecl, Env, u32, usize)>,
}

impl Builder {
    fn new(v: VId) -> Self {
        Builder {
            v,
            acc: Val::Top,
            acc_pos: Vec::new(),
            has_struct: false,
            has_list: false,
            struct_pos: None,
            leaves: Vec::new(),
            disjs: Vec::new(),
            comprs: Vec::new(),
            lists: Vec::new(),
            elems: Vec::new(),
            groups: Vec::new(),
            patterns: Vec::new(),
            expanding: FastIndexSet::default(),
            incomplete: None,
            cycle: None,
            deferred: Vec::new(),
            // Deferring local references did not reproduce CUE's field order better.
            deferring: false,
            fronts: Vec::new(),
            dynamics: Vec::new(),
        }
    }

    /// Back to the state of [`Builder::new`], keeping the vectors' capacity.
    fn clear(&mut self) {
        // Destructured so that a new field cannot be forgotten here.
        let Builder {
            v: _,
            acc,
            acc_pos,
            has_struct,
            has_list,
            struct_pos,
            leaves,
            disjs,
            comprs,
            lists,
            elems,
            groups,
            patterns,
            expanding,
            incomplete,
            cycle,
            deferred,
            deferring,
            fronts,
            dynamics,
        } = self;
        *acc = Val::Top;
        acc_pos.clear();
        *has_struct = false;
        *has_list = false;
        *struct_pos = None;
        leaves.clear();
        disjs.clear();
        comprs.clear();
        lists.clear();
        elems.clear();
        groups.clear();
        patterns.clear();
        expanding.clear();
        *incomplete = None;
        *cycle = None;
        deferred.clear();
        *deferring = false;
        fronts.clear();
        dynamics.clear();
    }
}

/// Closedness group data.
#[derive(Debug, Clone, Copy)]
struct Group {
    parent: Option<u32>,
    closed_self: bool,
    /// Closedness is checked through the embedding group (the parent).
    delegate: bool,
    /// Closed at its own level only (embedding, `close()`).
    closed_here: bool,
}

/// A compiled package: its files' root literals.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct PkgData {
    /// Import path (empty for the main instance).
    pub path: String,
    /// Root literals with the group-less environment.
    pub files: Vec<Rc<StructLit>>,
    /// The root vertex once created.
    pub root: Option<VId>,
}

/// The engine: the vertex arena and global state.
pub struct Engine {
    /// Vertices.
    pub vs: Vec<Vertex>,
    /// Interned names.
    pub interner: Interner,
    groups: Vec<Group>,
    /// Packages by id.
    pub pkgs: Vec<PkgData>,
    depth: u32,
    stack: Vec<VId>,
    regex_cache: HashMap<String, Option<regex::Regex>>,
    /// Counter of [`Vertex::set_late`].
    n_set_late: u32,
    expand_depth: u32,
    /// Finished builders, for reuse (boxed: a builder moves between this
    /// list and an evaluation frame as a pointer, not by copying it).
    #[allow(clippy::vec_box)]
    builders: Vec<Box<Builder>>,
    /// Constraints of predeclared kinds, by kind.
    kind_cons: Vec<(u16, Rc<Cons>)>,
}

type R<T> = Result<T, Rc<Bottom>>;

impl Engine {
    /// A new engine over compiled packages.
    pub fn new(interner: Interner, pkgs: Vec<PkgData>) -> Self {
        Engine {
            vs: Vec::new(),
            interner,
            groups: Vec::new(),
            pkgs,
            depth: 0,
            stack: Vec::new(),
            regex_cache: HashMap::new(),
            n_set_late: 0,
            expand_depth: 0,
            builders: Vec::new(),
            kind_cons: Vec::new(),
        }
    }

    /// Creates a vertex.
    pub fn new_vertex(&mut self, parent: Option<VId>, label: Option<Label>) -> VId {
        let id = self.vs.len() as VId;
        self.vs.push(Vertex::new(parent, label));
        id
    }

    fn v(&self, id: VId) -> &Vertex {
        &self.vs[id as usize]
    }

    fn vm(&mut self, id: VId) -> &mut Vertex {
        &mut self.vs[id as usize]
    }

    fn new_group(&mut self, parent: Option<u32>, closed_self: bool) -> u32 {
        self.groups.push(Group {
            parent,
            closed_self,
            delegate: false,
            closed_here: false,
        });
        (self.groups.len() - 1) as u32
    }

    fn group_closed(&self, g: u32) -> bool {
        let mut cur = Some(g);
        let mut n = 0;
        while let Some(x) = cur {
            let Some(gr) = self.groups.get(x as usize) else {
                return false;
            };
            if gr.closed_self {
                return true;
            }
            cur = gr.parent;
            n += 1;
            if n > 10_000 {
                break;
            }
        }
        false
    }

    /// The constraint of a predeclared kind (`string`, `int`), shared.
    fn kind_cons(&mut self, kinds: u16) -> Rc<Cons> {
        if let Some((_, c)) = self.kind_cons.iter().find(|(k, _)| *k == kinds) {
            return c.clone();
        }
        let c = Rc::new(Cons {
            kinds,
            bounds: Vec::new(),
            validators: Vec::new(),
        });
        self.kind_cons.push((kinds, c.clone()));
        c
    }

    /// `g` and its ancestor groups (at most 10,001).
    fn group_chain_iter(&self, g: u32) -> impl Iterator<Item = u32> + '_ {
        let mut cur = Some(g);
        std::iter::from_fn(move || {
            let x = cur?;
            cur = self.groups.get(x as usize).and_then(|gr| gr.parent);
            Some(x)
        })
        .take(10_001)
    }

    #[allow(dead_code)]
    fn group_key(&self, g: u32) -> Option<u32> {
        let mut cur = Some(g);
        while let Some(x) = cur {
            let gr = self.groups.get(x as usize)?;
            if gr.closed_self {
                return Some(x);
            }
            cur = gr.parent;
        }
        None
    }

    /// The root vertex of package `pkg`.
    pub fn pkg_root(&mut self, pkg: PkgId) -> VId {
        if let Some(root) = self.pkgs.get(pkg as usize).and_then(|p| p.root) {
            return root;
        }
        let root = self.new_vertex(None, None);
        let files = self
            .pkgs
            .get(pkg as usize)
            .map(|p| p.files.clone())
            .unwrap_or_default();
        let group = self.new_group(None, false);
        for lit in files {
            let pos = lit.pos;
            self.vm(root).conjs.push(Conj {
                kind: CK::Expr(Rc::new(E {
                    kind: Ek::Struct(lit),
                    pos,
                })),
                env: None,
                ci: CI {
                    group: Some(group),
                    parent: None,
                    embedded: false,
                    immediate: false,
                    embed_in: None,
                },
            });
        }
        if let Some(p) = self.pkgs.get_mut(pkg as usize) {
            p.root = Some(root);
        }
        root
    }

    // ----- vertex evaluation -----

    /// Evaluates a vertex (not its arcs).
    pub fn eval_vertex(&mut self, v: VId) {
        cuedag_parser::stack::grow(|| self.eval_vertex_inner(v))
    }

    fn eval_vertex_inner(&mut self, v: VId) {
        if self.v(v).state != State::New {
            return;
        }
        if self.depth > MAX_DEPTH {
            let pos = self.v(v).decl_pos.clone();
            let vm = self.vm(v);
            vm.state = State::Done;
            vm.value = Val::Bottom(bot(code::STRUCT_CYCLE, "structural cycle", pos, false));
            return;
        }
        self.depth += 1;
        self.vm(v).state = State::Evaluating;
        self.stack.push(v);
        // A definition's conjuncts without a group join a new closed one.
        let mut def_group = None;
        if let Some(label) = self.v(v).label {
            if label.is_def() {
                let parent = self.v(v).conjs.first().and_then(|c| c.ci.parent);
                def_group = Some(self.new_group(parent, true));
            }
        }
        // Boxed: this frame is on every level of nested evaluation. Builders
        // are reused (with their vectors' capacity).
        let mut b = match self.builders.pop() {
            Some(mut b) => {
                b.v = v;
                b
            }
            None => Box::new(Builder::new(v)),
        };
        // Conjuncts pushed to `v` from here on are not part of this
        // evaluation (as with a copy of the list).
        let n_conjs = self.v(v).conjs.len();
        for i in 0..n_conjs {
            let Some(c) = self.v(v).conjs.get(i) else {
                break;
            };
            let mut c = c.clone();
            if c.ci.group.is_none() {
                c.ci.group = def_group;
            }
            self.add_conj(&mut b, c);
        }
        b.deferring = false;
        self.expand(&mut b);
        let cycle = b.cycle.take();
        if b.disjs.is_empty() {
            self.finish(&mut b);
            if self.builders.len() < MAX_SPARE_BUILDERS {
                b.clear();
                self.builders.push(b);
            }
        } else {
            self.resolve_disjunctions(*b);
        }
        self.stack.pop();
        self.vm(v).state = State::Done;
        self.depth -= 1;
        if let Some(err) = cycle {
            let nested = !self.stack.is_empty();
            let vm = self.vm(v);
            if !matches!(vm.value, Val::Atom(_)) && !vm.is_struct && !vm.is_list {
                if vm.arcs.is_empty() && vm.disj.is_none() && nested {
                    // Evaluate again once the cycle is broken.
                    vm.state = State::New;
                }
                if matches!(vm.value, Val::Top) {
                    vm.value = Val::Bottom(err);
                }
            }
        }
    }

    /// Forgets what was computed for a finished vertex so that the next use
    /// evaluates it again from its conjuncts (which are kept).
    fn reopen(&mut self, v: VId) {
        let vm = self.vm(v);
        vm.state = State::New;
        vm.value = Val::Top;
        vm.value_pos.clear();
        vm.is_struct = false;
        vm.is_list = false;
        vm.list_open = false;
        vm.arcs.clear();
        vm.disj = None;
        vm.refs.clear();
        vm.incomplete = None;
        vm.closed = false;
        vm.validators.clear();
        vm.creation_order = None;
    }

    fn record_ref(&mut self, target: VId) {
        if let Some(&top) = self.stack.last() {
            let refs = &mut self.vs[top as usize].refs;
            if refs.last() != Some(&target) {
                refs.push(target);
            }
        }
    }

    fn add_conj(&mut self, b: &mut Builder, c: Conj) {
        match &c.kind {
            CK::Expr(e) => {
                let e = e.clone();
                self.add_expr(b, &e, &c.env, c.ci);
            }
            CK::Fields(lit, g) => {
                let (lit, g) = (lit.clone(), c.ci.group.unwrap_or(*g));
                b.leaves.push(c.clone());
                self.add_fields(b, &lit, &c.env, g, c.ci, false);
            }
            CK::Compr(_) => {
                b.leaves.push(c.clone());
                let at = self.v(b.v).arcs.len();
                b.comprs.push((c, at));
            }
            CK::Val(val, pos) => {
                let (val, pos) = (val.clone(), *pos);
                match val {
                    Val::V(w) => self.add_vertex(b, w, c.ci, false, pos),
                    other => {
                        b.leaves.push(c.clone());
                        self.add_val(b, other, pos);
                    }
                }
            }
            CK::Vertex(w) => {
                let w = *w;
                self.add_vertex(b, w, c.ci, false, Pos::default());
            }
            CK::Elems(elems, pos) => {
                b.leaves.push(c.clone());
                b.has_list = true;
                b.elems.push((elems.clone(), *pos));
            }
            CK::Data(data, pos) => {
                b.leaves.push(c.clone());
                let (data, pos) = (data.clone(), *pos);
                if let Value::Struct(fields) = &*data {
                    // A builtin's struct declares its fields as a literal
                    // would, in the closedness group of its conjunct.
                    let g = match c.ci.group {
                        Some(g) => g,
                        None => self.new_group(c.ci.parent, false),
                    };
                    let labels: Vec<Label> = fields
                        .iter()
                        .map(|(k, _)| Label::Regular(self.interner.intern(k)))
                        .collect();
                    match b.groups.iter_mut().find(|x| x.group == g) {
                        Some(group) => group.labels.extend(labels),
                        None => b.groups.push(LitGroup {
                            group: g,
                            labels,
                            ..LitGroup::default()
                        }),
                    }
                }
                self.add_data(b, &data, pos);
            }
            CK::List(lit) => {
                b.leaves.push(c.clone());
                let g = match c.ci.group {
                    Some(g) => g,
                    None => self.new_group(c.ci.parent, false),
                };
                b.has_list = true;
                b.lists.push((lit.clone(), c.env.clone(), c.ci, g));
            }
        }
    }

    fn add_data(&mut self, b: &mut Builder, data: &Value, pos: Pos) {
        match data {
            Value::Struct(fields) => {
                b.has_struct = true;
                b.struct_pos.get_or_insert(pos);
                for (k, val) in fields {
                    let label = Label::Regular(self.interner.intern(k));
                    let arc = self.arc(b.v, label);
                    let a = self.vm(arc);
                    a.optional = false;
                    a.conjs.push(Conj {
                        kind: CK::Data(Rc::new(val.clone()), pos),
                        env: None,
                        ci: CI::default(),
                    });
                }
            }
            Value::List(items) => {
                let mut ids = Vec::new();
                for item in items {
                    let w = self.new_vertex(None, None);
                    self.vm(w).conjs.push(Conj {
                        kind: CK::Data(Rc::new(item.clone()), pos),
                        env: None,
                        ci: CI::default(),
                    });
                    ids.push(w);
                }
                b.has_list = true;
                b.elems.push((Rc::new(ids), pos));
            }
            other => {
                let atom = value_to_atom(other);
                self.add_val(b, Val::Atom(atom), pos);
            }
        }
    }

    /// Returns the arc `label` of `v`, creating it.
    fn arc(&mut self, v: VId, label: Label) -> VId {
        if let Some(a) = self.v(v).arcs.get(&label) {
            return *a;
        }
        let a = self.new_vertex(Some(v), Some(label));
        self.vm(v).arcs.insert(label, a);
        a
    }

    fn add_expr(&mut self, b: &mut Builder, e: &Rc<E>, env: &Env, ci: CI) {
        match &e.kind {
            Ek::Struct(lit) => {
                let g = match ci.group {
                    Some(g) => g,
                    None => self.new_group(ci.parent, false),
                };
                let lit = lit.clone();
                let fenv = push(env, Frame::Struct(b.v));
                let fields_ci = CI {
                    group: Some(g),
                    parent: ci.parent,
                    embedded: ci.embedded,
                    immediate: false,
                    embed_in: None,
                };
                b.leaves.push(Conj {
                    kind: CK::Fields(lit.clone(), g),
                    env: env.clone(),
                    ci: fields_ci,
                });
                self.add_fields(b, &lit, env, g, fields_ci, true);
                for decl in &lit.decls {
                    match decl {
                        DeclC::Embed(x) if !embed_now(x, &fenv, b.v) => {
                            let eci = CI {
                                group: Some(g),
                                parent: ci.parent,
                                embedded: true,
                                immediate: false,
                                embed_in: None,
                            };
                            if refers_into(x, &fenv, b.v) {
                                b.deferred.push((x.clone(), fenv.clone(), eci));
                            } else {
                                self.add_expr(b, x, &fenv, eci);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Ek::List(lit) => {
                let conj = Conj {
                    kind: CK::List(lit.clone()),
                    env: env.clone(),
                    ci,
                };
                self.add_conj(b, conj);
            }
            Ek::Unify(parts) => {
                let part_ci = if ci.embedded {
                    // Operands of an embedded `&`: literals are their own
                    // structs; definitions close the embedding struct.
                    CI {
                        group: None,
                        parent: ci.parent,
                        embedded: false,
                        immediate: false,
                        embed_in: ci.group,
                    }
                } else {
                    CI {
                        embedded: false,
                        ..ci
                    }
                };
                for p in parts {
                    self.add_expr(b, p, env, part_ci);
                }
            }
            Ek::Disj(arms) => {
                let mut flat = Vec::new();
                let has_default = self.flatten_arms(arms, env, ci, &mut flat);
                b.disjs.push(PendingDisj {
                    arms: flat,
                    has_default,
                });
            }
            Ek::Ref(_) | Ek::Select(..) | Ek::Index(..)
                if b.deferring && !ci.immediate && !embed_inline_ref(e) =>
            {
                b.deferred.push((e.clone(), env.clone(), ci));
            }
            Ek::Ref(_) | Ek::Select(..) | Ek::Index(..) => {
                let is_def = match &e.kind {
                    Ek::Ref(Ref::Field { label, .. }) => label.is_def(),
                    Ek::Select(_, label) => label.is_def(),
                    _ => false,
                };
                match self.eval(e, env) {
                    Val::V(w) => self.add_vertex(b, w, ci, is_def, e.pos),
                    other => {
                        let conj = Conj {
                            kind: CK::Val(other.clone(), e.pos),
                            env: None,
                            ci,
                        };
                        b.leaves.push(conj);
                        self.add_val(b, other, e.pos);
                    }
                }
            }
            Ek::Call(f, args) => {
                let fv = self.eval(f, env);
                match fv {
                    Val::Pre(Predeclared::Close) if args.len() == 1 => {
                        let g = self.new_group(ci.group.or(ci.parent), false);
                        // Embedded (`{close({a: 1}), b: 2}`), it closes the
                        // embedding struct over the union, as a definition.
                        let embedded_in = if ci.embedded { ci.group } else { None };
                        if let Some(outer) = embedded_in {
                            if let Some(gr) = self.groups.get_mut(outer as usize) {
                                gr.closed_here = true;
                            }
                        }
                        if let Some(gr) = self.groups.get_mut(g as usize) {
                            gr.closed_here = true;
                            gr.delegate = embedded_in.is_some();
                        }
                        let cci = CI {
                            group: Some(g),
                            parent: ci.parent,
                            embedded: false,
                            immediate: false,
                            embed_in: None,
                        };
                        self.add_expr(b, &args[0], env, cci);
                    }
                    Val::Pre(Predeclared::And) if args.len() == 1 => {
                        match self.eval_list_elems(&args[0], env) {
                            Ok(elems) => {
                                for el in elems {
                                    self.add_vertex(b, el, ci, false, e.pos);
                                }
                            }
                            Err(err) => self.add_val(b, Val::Bottom(err), e.pos),
                        }
                    }
                    Val::Pre(Predeclared::Or) if args.len() == 1 => {
                        match self.eval_list_elems(&args[0], env) {
                            Ok(elems) => {
                                if elems.is_empty() {
                                    self.add_val(
                                        b,
                                        Val::Bottom(bot(
                                            code::BUILTIN,
                                            "empty list in call to or",
                                            vec![e.pos],
                                            false,
                                        )),
                                        e.pos,
                                    );
                                } else {
                                    let arms = elems
                                        .into_iter()
                                        .map(|el| {
                                            (
                                                Conj {
                                                    kind: CK::Vertex(el),
                                                    env: None,
                                                    ci,
                                                },
                                                false,
                                            )
                                        })
                                        .collect();
                                    b.disjs.push(PendingDisj {
                                        arms,
                                        has_default: false,
                                    });
                                }
                            }
                            Err(err) => self.add_val(b, Val::Bottom(err), e.pos),
                        }
                    }
                    _ => {
                        let val = self.eval_call(fv, args, env, e.pos);
                        self.add_value_conj(b, val, e.pos, ci);
                    }
                }
            }
            _ => {
                let val = self.eval(e, env);
                self.add_value_conj(b, val, e.pos, ci);
            }
        }
    }

    fn add_value_conj(&mut self, b: &mut Builder, val: Val, pos: Pos, ci: CI) {
        match val {
            Val::V(w) => self.add_vertex(b, w, ci, false, pos),
            other => {
                b.leaves.push(Conj {
                    kind: CK::Val(other.clone(), pos),
                    env: None,
                    ci,
                });
                self.add_val(b, other, pos);
            }
        }
    }

    fn flatten_arms(
        &mut self,
        arms: &[(Rc<E>, bool)],
        env: &Env,
        ci: CI,
        out: &mut Vec<(Conj, bool)>,
    ) -> bool {
        let has_marks = arms.iter().any(|(_, d)| *d);
        let mut has_default = has_marks;
        for (arm, marked) in arms {
            if let Ek::Disj(inner) = &arm.kind {
                let mut sub = Vec::new();
                let inner_default = self.flatten_arms(inner, env, ci, &mut sub);
                for (c, d) in sub {
                    let is_default = if has_marks {
                        *marked && (d || !inner_default)
                    } else {
                        d
                    };
                    out.push((c, is_default));
                }
                if !has_marks && inner_default {
                    has_default = true;
                }
            } else {
                out.push((
                    Conj {
                        kind: CK::Expr(arm.clone()),
                        env: env.clone(),
                        ci,
                    },
                    *marked,
                ));
            }
        }
        has_default
    }

    fn add_vertex(&mut self, b: &mut Builder, w: VId, ci: CI, is_def: bool, pos: Pos) {
        if self.expand_depth > MAX_EXPAND_DEPTH {
            let err = bot(
                code::DEPTH,
                "reference chain too deep (more than 2000 nested references)",
                vec![pos],
                false,
            );
            self.add_val(b, Val::Bottom(err), pos);
            return;
        }
        self.expand_depth += 1;
        cuedag_parser::stack::grow(|| self.add_vertex_inner(b, w, ci, is_def, pos));
        self.expand_depth -= 1;
    }

    fn add_vertex_inner(&mut self, b: &mut Builder, w: VId, ci: CI, is_def: bool, pos: Pos) {
        self.record_ref(w);
        if w == b.v || b.expanding.contains(&w) {
            return;
        }
        // A reference to an ancestor is a structural cycle.
        let mut cur = self.v(b.v).parent;
        let mut n = 0;
        while let Some(p) = cur {
            if p == w {
                let err = bot(code::STRUCT_CYCLE, "structural cycle", vec![pos], false);
                self.add_val(b, Val::Bottom(err), pos);
                return;
            }
            cur = self.v(p).parent;
            n += 1;
            if n > 1000 {
                break;
            }
        }
        if self.v(w).state == State::Evaluating && self.v(w).conjs.is_empty() {
            return;
        }
        // Make sure the target's conjuncts are complete: its parent must be
        // evaluated (patterns and comprehensions add conjuncts).
        if let Some(p) = self.v(w).parent {
            self.eval_vertex(p);
        }
        // Conjuncts pushed to `w` from here on are not part of this
        // expansion (as with a copy of the list).
        let n_conjs = self.v(w).conjs.len();
        let target_label_def = self.v(w).label.map(|l| l.is_def()).unwrap_or(false);
        let is_def = is_def || target_label_def;
        let new_ci = if is_def {
            if ci.embedded {
                if let Some(g) = ci.group {
                    // `{#D, f: 1}`: closed over the union, at this level;
                    // the definition's own structs stay closed below.
                    if let Some(gr) = self.groups.get_mut(g as usize) {
                        gr.closed_here = true;
                    }
                    let gd = self.new_group(Some(g), true);
                    if let Some(gr) = self.groups.get_mut(gd as usize) {
                        gr.delegate = true;
                    }
                    Some(CI {
                        group: Some(gd),
                        parent: ci.parent,
                        embedded: false,
                        immediate: false,
                        embed_in: None,
                    })
                } else {
                    None
                }
            } else {
                None
            }
        } else {
            Some(ci)
        };
        let new_ci = match new_ci {
            Some(c) => c,
            None if ci.embed_in.is_some() => {
                let outer = ci.embed_in.unwrap_or_default();
                if let Some(gr) = self.groups.get_mut(outer as usize) {
                    gr.closed_here = true;
                }
                let g = self.new_group(Some(outer), true);
                if let Some(gr) = self.groups.get_mut(g as usize) {
                    gr.delegate = true;
                }
                CI {
                    group: Some(g),
                    parent: ci.parent,
                    embedded: false,
                    immediate: false,
                    embed_in: None,
                }
            }
            None => {
                let g = self.new_group(ci.group.or(ci.parent), true);
                // A definition reached directly from an embedded definition
                // (`{#A, f: 1}` with `#A: #B`) closes over the embedding
                // struct too.
                let via_embedding = ci
                    .group
                    .and_then(|p| self.groups.get(p as usize))
                    .is_some_and(|p| p.delegate);
                if via_embedding {
                    if let Some(gr) = self.groups.get_mut(g as usize) {
                        gr.delegate = true;
                    }
                }
                CI {
                    group: Some(g),
                    parent: ci.parent,
                    embedded: false,
                    immediate: false,
                    embed_in: None,
                }
            }
        };
        // Conjuncts that were closed in their original context stay closed.
        let mut closed_group: Option<u32> = None;
        b.expanding.insert(w);
        for i in 0..n_conjs {
            let Some(c) = self.v(w).conjs.get(i) else {
                break;
            };
            let (kind, env, c_ci) = (c.kind.clone(), c.env.clone(), c.ci);
            let mut cci = new_ci;
            if !is_def && new_ci.group.is_none() {
                let was_closed = c_ci.group.map(|g| self.group_closed(g)).unwrap_or(false)
                    || c_ci.parent.map(|g| self.group_closed(g)).unwrap_or(false);
                if was_closed {
                    let g = match closed_group {
                        Some(g) => g,
                        None => {
                            let g = self.new_group(ci.group.or(ci.parent), true);
                            closed_group = Some(g);
                            g
                        }
                    };
                    cci = CI {
                        group: Some(g),
                        parent: ci.parent,
                        embedded: false,
                        immediate: false,
                        embed_in: None,
                    };
                }
            }
            self.add_conj(b, Conj { kind, env, ci: cci });
        }
        b.expanding.pop();
    }

    fn add_fields(
        &mut self,
        b: &mut Builder,
        lit: &Rc<StructLit>,
        env: &Env,
        g: u32,
        ci: CI,
        inline_embeds: bool,
    ) {
        if lit.is_struct {
            b.has_struct = true;
            b.struct_pos.get_or_insert(lit.pos);
        }
        let fenv = push(env, Frame::Struct(b.v));
        record_front(&mut b.fronts, lit);
        if self.v(b.v).arcs.is_empty() {
            // Allocated once at its likely size.
            self.vm(b.v).arcs.reserve(lit.decls.len());
        }
        let gi = match b.groups.iter().position(|x| x.group == g) {
            Some(i) => i,
            None => {
                b.groups.push(LitGroup {
                    group: g,
                    ..LitGroup::default()
                });
                b.groups.len() - 1
            }
        };
        for decl in &lit.decls {
            match decl {
                DeclC::Field(f) => {
                    // Static fields are added after the other declarations,
                    // dynamic ones after all the struct's conjuncts, as CUE
                    // v0.4 does (this decides the order of the arcs).
                    if let FieldLabel::Dynamic(_) = &f.label {
                        b.dynamics.push((f.clone(), fenv.clone(), g, gi));
                    }
                }
                DeclC::Pattern(p, value) => {
                    if let Some(group) = b.groups.get_mut(gi) {
                        group.patterns.push((p.clone(), fenv.clone()));
                    }
                    b.patterns.push((
                        p.clone(),
                        value.clone(),
                        fenv.clone(),
                        CI {
                            group: None,
                            parent: Some(g),
                            embedded: false,
                            immediate: false,
                            embed_in: None,
                        },
                    ));
                }
                DeclC::Ellipsis => {
                    if let Some(group) = b.groups.get_mut(gi) {
                        group.open = true;
                    }
                }
                DeclC::Embed(x) => {
                    if inline_embeds && embed_now(x, &fenv, b.v) {
                        let eci = CI {
                            group: Some(g),
                            parent: ci.parent,
                            embedded: true,
                            immediate: false,
                            embed_in: None,
                        };
                        self.add_expr(b, x, &fenv, eci);
                    }
                }
                DeclC::Compr(c) => {
                    if inline_embeds {
                        let conj = Conj {
                            kind: CK::Compr(c.clone()),
                            env: fenv.clone(),
                            ci: CI {
                                group: Some(g),
                                parent: ci.parent,
                                embedded: true,
                                immediate: false,
                                embed_in: None,
                            },
                        };
                        b.leaves.push(conj.clone());
                        let at = self.v(b.v).arcs.len();
                        b.comprs.push((conj, at));
                    }
                }
            }
        }
        for decl in &lit.decls {
            if let DeclC::Field(f) = decl {
                if let FieldLabel::Static(l) = &f.label {
                    self.insert_field(b, f, *l, &fenv, g, gi);
                }
            }
        }
    }

    /// Adds a field whose label is computed (queued by `add_fields`).
    fn add_dynamic_field(&mut self, b: &mut Builder, f: &FieldDecl, fenv: &Env, g: u32, gi: usize) {
        let label = match &f.label {
            FieldLabel::Static(l) => *l,
            FieldLabel::Dynamic(x) => match self.eval_concrete(x, fenv) {
                Ok(Val::Atom(Atom::Str(s))) => Label::Regular(self.interner.intern(&s)),
                Ok(_) => {
                    let err = bot(
                        code::OPERANDS,
                        "invalid label: not a string",
                        vec![f.pos],
                        false,
                    );
                    self.add_val(b, Val::Bottom(err), f.pos);
                    return;
                }
                Err(err) => {
                    if err.incomplete {
                        b.incomplete.get_or_insert(err);
                    } else {
                        self.add_val(b, Val::Bottom(err), f.pos);
                    }
                    return;
                }
            },
        };
        self.insert_field(b, f, label, fenv, g, gi);
    }

    /// Adds a field of a struct literal to the vertex being built.
    fn insert_field(
        &mut self,
        b: &mut Builder,
        f: &FieldDecl,
        label: Label,
        fenv: &Env,
        g: u32,
        gi: usize,
    ) {
        if let Some(group) = b.groups.get_mut(gi) {
            group.labels.push(label);
        }
        let arc = self.arc(b.v, label);
        if self.v(arc).state == State::Done && self.v(b.v).state == State::Evaluating {
            // The arc was finished early (a comprehension of a
            // sibling read it) and now gets another conjunct:
            // evaluate it again with all its conjuncts.
            self.reopen(arc);
        }
        let late = !f.optional
            && self.v(arc).optional
            && !self.v(arc).decl_pos.is_empty()
            && self.v(arc).set_late.is_none();
        if late {
            self.n_set_late += 1;
        }
        let n_set_late = self.n_set_late;
        let a = self.vm(arc);
        if late {
            a.set_late = Some(n_set_late);
        }
        if !f.optional {
            a.optional = false;
        }
        a.attrs.extend(f.attrs.iter().cloned());
        if let Some(doc) = &f.doc {
            a.docs.push(doc.clone());
        }
        a.decl_pos.push(f.pos);
        a.conjs.push(Conj {
            kind: CK::Expr(f.value.clone()),
            env: fenv.clone(),
            ci: CI {
                group: None,
                parent: Some(g),
                embedded: false,
                immediate: false,
                embed_in: None,
            },
        });
    }

    fn add_val(&mut self, b: &mut Builder, val: Val, pos: Pos) {
        match val {
            Val::Top => {}
            Val::Func(f, name) if f.validator && f.min_args == 1 => {
                let cons = Val::Cons(Rc::new(Cons {
                    kinds: kind::TOP,
                    bounds: Vec::new(),
                    validators: vec![Validator {
                        func: f,
                        args: Vec::new(),
                        name,
                    }],
                }));
                self.add_val(b, cons, pos);
            }
            Val::Pkg(_) | Val::Func(..) | Val::Pre(_) => {
                b.acc = Val::Bottom(bot(
                    code::OPERANDS,
                    "invalid value: a function or package is not a value",
                    vec![pos],
                    false,
                ));
            }
            Val::V(_) => {}
            Val::Bottom(e) if e.incomplete && e.code == code::CYCLE => {
                // A reference cycle: other conjuncts may resolve it.
                b.cycle.get_or_insert(e);
            }
            other => {
                let acc = std::mem::replace(&mut b.acc, Val::Top);
                let mut positions = std::mem::take(&mut b.acc_pos);
                positions.push(pos);
                b.acc = self.unify_scalar(acc, other, &positions);
                b.acc_pos = positions;
            }
        }
    }

    /// Adds what waits until the struct's conjuncts are added, in CUE
    /// v0.4's order (which decides the order of the arcs and of the struct
    /// literals, so the export order): in rounds, the fields with computed
    /// labels; else every pending comprehension starting with `if` (also
    /// those their results add); else every one starting with `for`; else
    /// the embedded references into the struct itself. Comprehensions run
    /// only when there is no disjunction (each disjunct runs them).
    fn expand(&mut self, b: &mut Builder) {
        fn starts_with_if(c: &Conj) -> bool {
            matches!(&c.kind, CK::Compr(x) if matches!(x.clauses.first(), Some(ClauseC::If(_))))
        }
        let mut done: Vec<bool> = Vec::new();
        loop {
            if !b.dynamics.is_empty() {
                for (f, fenv, g, gi) in std::mem::take(&mut b.dynamics) {
                    self.add_dynamic_field(b, &f, &fenv, g, gi);
                }
                continue;
            }
            let mut ran = false;
            if b.disjs.is_empty() {
                done.resize(b.comprs.len(), false);
                let ifs = b
                    .comprs
                    .iter()
                    .zip(&done)
                    .any(|((c, _), d)| !*d && starts_with_if(c));
                let mut i = 0;
                while i < b.comprs.len() {
                    done.resize(b.comprs.len(), false);
                    let (c, _) = b.comprs[i].clone();
                    i += 1;
                    if done[i - 1] || starts_with_if(&c) != ifs {
                        continue;
                    }
                    done[i - 1] = true;
                    ran = true;
                    self.run_comprehension(b, c);
                }
            }
            if ran {
                continue;
            }
            if b.deferred.is_empty() {
                break;
            }
            for (e, env, ci) in std::mem::take(&mut b.deferred) {
                self.add_expr(b, &e, &env, ci);
            }
        }
    }

    fn run_comprehension(&mut self, b: &mut Builder, c: Conj) {
        let CK::Compr(compr) = &c.kind else { return };
        let mut envs = Vec::new();
        match self.compr_envs(&compr.clauses, &c.env, &mut envs) {
            Ok(()) => {
                // The arcs it creates come after the literal's fields (the
                // export order is computed separately).
                for env in envs {
                    self.add_expr(b, &compr.body, &env, c.ci);
                }
            }
            Err(err) => {
                // Errors of the values a comprehension reads are
                // reported where they are; the struct is only pending.
                b.incomplete.get_or_insert(err);
            }
        }
    }

    fn compr_envs(&mut self, clauses: &[ClauseC], env: &Env, out: &mut Vec<Env>) -> R<()> {
        let Some((first, rest)) = clauses.split_first() else {
            out.push(env.clone());
            return Ok(());
        };
        match first {
            ClauseC::For(src) => {
                let val = self.eval_concrete(src, env)?;
                let Val::V(w) = val else {
                    return Err(bot(
                        code::OPERANDS,
                        match &val {
                            Val::Atom(a) => format!(
                                "invalid operand {} (found {}, want list or struct)",
                                a.to_cue(),
                                kind_name(a.kind())
                            ),
                            _ => format!("cannot range over {}", self.val_to_cue(&val)),
                        },
                        vec![src.pos],
                        false,
                    ));
                };
                let w = self.resolve_default(w)?;
                let items: Vec<(Val, VId)> = if self.v(w).is_list {
                    self.v(w)
                        .arcs
                        .iter()
                        .filter_map(|(l, a)| match l {
                            Label::Index(i) => Some((Val::Atom(Atom::Int(i128::from(*i))), *a)),
                            _ => None,
                        })
                        .collect()
                } else {
                    let vw = self.v(w);
                    let arcs: Vec<(Label, VId)> = match &vw.creation_order {
                        Some(order) => order
                            .iter()
                            .filter_map(|l| vw.arcs.get(l).map(|a| (*l, *a)))
                            .collect(),
                        None => vw.arcs.iter().map(|(l, a)| (*l, *a)).collect(),
                    };
                    let mut items = Vec::new();
                    let mut late = Vec::new();
                    for (l, a) in arcs {
                        if let Label::Regular(sym) = l {
                            if self.v(a).optional {
                                continue;
                            }
                            let name = Rc::from(self.interner.text(sym));
                            match self.v(a).set_late {
                                Some(seq) => late.push((seq, Val::Atom(Atom::Str(name)), a)),
                                None => items.push((Val::Atom(Atom::Str(name)), a)),
                            }
                        }
                    }
                    // Like CUE v0.4: fields declared optional and set later
                    // come after the others, in the order they were set.
                    late.sort_by_key(|(seq, _, _)| *seq);
                    items.extend(late.into_iter().map(|(_, k, a)| (k, a)));
                    items
                };
                for (k, a) in items {
                    self.record_ref(a);
                    let env2 = push(env, Frame::Bind(vec![Binding::Val(k), Binding::Vertex(a)]));
                    self.compr_envs(rest, &env2, out)?;
                }
                Ok(())
            }
            ClauseC::If(cond) => match self.eval_concrete(cond, env)? {
                Val::Atom(Atom::Bool(true)) => self.compr_envs(rest, env, out),
                Val::Atom(Atom::Bool(false)) => Ok(()),
                other => Err(bot(
                    code::OPERANDS,
                    format!(
                        "invalid condition: {} is not a boolean",
                        self.val_to_cue(&other)
                    ),
                    vec![cond.pos],
                    false,
                )),
            },
            ClauseC::Let(x) => {
                let w = self.new_vertex(None, None);
                self.vm(w).conjs.push(Conj {
                    kind: CK::Expr(x.clone()),
                    env: env.clone(),
                    ci: CI::default(),
                });
                let env2 = push(env, Frame::Bind(vec![Binding::Vertex(w)]));
                self.compr_envs(rest, &env2, out)
            }
        }
    }

    fn finish(&mut self, b: &mut Builder) {
        let v = b.v;
        // Lists.
        if !b.lists.is_empty() || !b.elems.is_empty() {
            self.finish_list(b);
        }
        // Patterns.
        if !b.patterns.is_empty() {
            let arcs: Vec<(Label, VId)> = self.v(v).arcs.iter().map(|(l, a)| (*l, *a)).collect();
            let patterns = b.patterns.clone();
            for (label, arc) in arcs {
                let Label::Regular(sym) = label else { continue };
                let name: Rc<str> = Rc::from(self.interner.text(sym));
                for (p, value, env, ci) in &patterns {
                    if self.label_matches(p, env, &name) {
                        let env2 = push(
                            env,
                            Frame::Bind(vec![Binding::Val(Val::Atom(Atom::Str(name.clone())))]),
                        );
                        self.vm(arc).conjs.push(Conj {
                            kind: CK::Expr(value.clone()),
                            env: env2,
                            ci: CI {
                                immediate: true,
                                ..*ci
                            },
                        });
                    }
                }
            }
        }
        // Closedness: every closed group in the chain of a literal of this
        // vertex restricts the regular fields to those declared by the
        // literals that are members of that group.
        // Each closed group is checked against the literals that are its
        // members (a definition embedded in a struct checks against the
        // embedding struct's members).
        let mut closed_set: Vec<u32> = Vec::new();
        for lit_group in &b.groups {
            for (k, g) in self.group_chain_iter(lit_group.group).enumerate() {
                let Some(gr) = self.groups.get(g as usize).copied() else {
                    continue;
                };
                let counts = gr.closed_self || (k == 0 && gr.closed_here);
                if !counts {
                    continue;
                }
                // A definition embedded in a definition that is itself
                // embedded delegates all the way up to the outermost
                // embedding struct (`#T: {f: 1, #C}`, `#C: {#R}`).
                let mut key = g;
                let mut hops = 0;
                while let Some(group) = self.groups.get(key as usize).copied() {
                    match (group.delegate, group.parent) {
                        (true, Some(parent)) if hops < 64 => {
                            key = parent;
                            hops += 1;
                        }
                        _ => break,
                    }
                }
                if !closed_set.contains(&key) {
                    closed_set.push(key);
                }
            }
        }
        if !closed_set.is_empty() {
            // `member[k * n_groups + i]`: closed group `k` is in the chain of
            // literal group `i`.
            let n_groups = b.groups.len();
            let mut member = vec![false; closed_set.len() * n_groups];
            for (i, g) in b.groups.iter().enumerate() {
                for x in self.group_chain_iter(g.group) {
                    if let Some(k) = closed_set.iter().position(|c| *c == x) {
                        member[k * n_groups + i] = true;
                    }
                }
            }
            // Closed for selectors only when no literal opens it (`...`).
            self.vm(v).closed = !b.groups.iter().any(|g| g.open);
            let arcs: Vec<(Label, VId)> = self.v(v).arcs.iter().map(|(l, a)| (*l, *a)).collect();
            let groups = &b.groups;
            // Every field not allowed: the first is the error, the others
            // its causes (`export` reports each one).
            let mut violations: Vec<Rc<Bottom>> = Vec::new();
            for (label, arc) in arcs {
                let Label::Regular(sym) = label else { continue };
                // Optional fields are constraints: closedness does not apply.
                if self.v(arc).optional {
                    continue;
                }
                for k in 0..closed_set.len() {
                    let members = &member[k * n_groups..(k + 1) * n_groups];
                    let mut allowed = false;
                    for (other, _) in groups.iter().zip(members).filter(|(_, m)| **m) {
                        if other.open || other.labels.contains(&label) {
                            allowed = true;
                            break;
                        }
                        if other.patterns.is_empty() {
                            continue;
                        }
                        let name = self.interner.text(sym).to_string();
                        if other
                            .patterns
                            .iter()
                            .any(|(p, env)| self.label_matches(p, env, &name))
                        {
                            allowed = true;
                            break;
                        }
                    }
                    if !allowed {
                        // The labels of the members, for the hint.
                        let member_labels: Vec<Label> = groups
                            .iter()
                            .zip(members)
                            .filter(|(_, m)| **m)
                            .flat_map(|(other, _)| other.labels.iter().copied())
                            .collect();
                        let name = cue_label(self.interner.text(sym));
                        let allowed_names: Vec<String> = member_labels
                            .iter()
                            .filter_map(|l| match l {
                                Label::Regular(s) => Some(self.interner.text(*s).to_string()),
                                _ => None,
                            })
                            .collect();
                        let mut pos = self.v(arc).decl_pos.clone();
                        pos.sort();
                        let err = Bottom {
                            code: code::NOT_ALLOWED,
                            msg: format!("field {name} not allowed"),
                            pos,
                            incomplete: false,
                            hint: Some(format!(
                                "the struct is closed (it comes from a definition); allowed fields: {}",
                                if allowed_names.is_empty() {
                                    "none".to_string()
                                } else {
                                    allowed_names.join(", ")
                                }
                            )),
                            causes: Vec::new(),
                        };
                        violations.push(Rc::new(err));
                        break;
                    }
                }
            }
            if let Some(first) = violations.first() {
                if !matches!(b.acc, Val::Bottom(_)) {
                    let mut err = (**first).clone();
                    err.causes = violations[1..].to_vec();
                    b.acc = Val::Bottom(Rc::new(err));
                }
            }
        }
        // Kinds.
        let mut value = std::mem::replace(&mut b.acc, Val::Top);
        if b.has_struct && b.has_list {
            value = Val::Bottom(bot(
                code::CONFLICT,
                "conflicting values struct and list (mismatched types struct and list)",
                b.acc_pos.clone(),
                false,
            ));
        } else if b.has_struct || b.has_list {
            let (k, name) = if b.has_struct {
                (kind::STRUCT, "struct")
            } else {
                (kind::LIST, "list")
            };
            match &value {
                Val::Atom(a) => {
                    let mut pos = b.acc_pos.clone();
                    if let Some(p) = b.struct_pos {
                        pos.push(p);
                    }
                    pos.sort();
                    value = Val::Bottom(bot(
                        code::CONFLICT,
                        format!(
                            "conflicting values {} and {{...}} (mismatched types {} and {})",
                            a.to_cue(),
                            kind_name(a.kind()),
                            name
                        ),
                        pos,
                        false,
                    ));
                }
                Val::Cons(c) if c.kinds & k == 0 => {
                    let mut pos = b.acc_pos.clone();
                    if let Some(p) = b.struct_pos {
                        pos.push(p);
                    }
                    pos.sort();
                    value = Val::Bottom(bot(
                        code::CONFLICT,
                        format!(
                            "conflicting values {} and {{...}} (mismatched types {} and {})",
                            cons_to_cue(c),
                            kinds_name(c.kinds),
                            name
                        ),
                        pos,
                        false,
                    ));
                }
                Val::Cons(c) => {
                    self.vm(v).validators = c.validators.clone();
                    value = Val::Top;
                }
                _ => {}
            }
        }
        if b.has_struct {
            self.order_arcs(v, &b.fronts);
        }
        let vm = self.vm(v);
        vm.value = value;
        vm.value_pos = std::mem::take(&mut b.acc_pos);
        vm.is_struct = b.has_struct;
        vm.is_list = b.has_list && !b.has_struct;
        if b.incomplete.is_some() {
            vm.incomplete = b.incomplete.take();
        }
    }

    fn finish_list(&mut self, b: &mut Builder) {
        let v = b.v;
        // Element conjunct lists.
        let mut lits: Vec<(Vec<Conj>, Option<Conj>, Pos)> = Vec::new();
        for (lit, env, _ci, g) in b.lists.clone() {
            let elem_ci = CI {
                group: None,
                parent: Some(g),
                embedded: false,
                immediate: false,
                embed_in: None,
            };
            let mut elems = Vec::new();
            for el in &lit.elems {
                match el {
                    ListElemC::Expr(x) => elems.push(Conj {
                        kind: CK::Expr(x.clone()),
                        env: env.clone(),
                        ci: elem_ci,
                    }),
                    ListElemC::Compr(c) => {
                        let mut envs = Vec::new();
                        match self.compr_envs(&c.clauses, &env, &mut envs) {
                            Ok(()) => {
                                for env2 in envs {
                                    elems.push(Conj {
                                        kind: CK::Expr(c.body.clone()),
                                        env: env2,
                                        ci: elem_ci,
                                    });
                                }
                            }
                            Err(err) => {
                                if err.incomplete {
                                    b.incomplete.get_or_insert(err);
                                } else {
                                    b.acc = Val::Bottom(err);
                                }
                            }
                        }
                    }
                }
            }
            let ellipsis = lit.ellipsis.as_ref().map(|t| Conj {
                kind: CK::Expr(t.clone()),
                env: env.clone(),
                ci: elem_ci,
            });
            lits.push((elems, ellipsis, lit.pos));
        }
        for (ids, pos) in b.elems.clone() {
            let elems = ids
                .iter()
                .map(|id| Conj {
                    kind: CK::Vertex(*id),
                    env: None,
                    ci: CI::default(),
                })
                .collect();
            lits.push((elems, None, pos));
        }
        let max = lits.iter().map(|(e, _, _)| e.len()).max().unwrap_or(0);
        let mut open = true;
        for (elems, ellipsis, pos) in &lits {
            if ellipsis.is_none() {
                open = false;
                if elems.len() != max {
                    let mut positions = vec![*pos];
                    positions.extend(lits.iter().filter(|l| l.0.len() == max).map(|l| l.2));
                    positions.sort();
                    positions.dedup();
                    b.acc = Val::Bottom(bot(
                        code::CONFLICT,
                        format!("incompatible list lengths ({} and {})", elems.len(), max),
                        positions,
                        false,
                    ));
                    return;
                }
            }
        }
        for i in 0..max {
            let arc = self.arc(v, Label::Index(i as u32));
            self.vm(arc).optional = false;
            for (elems, ellipsis, _) in &lits {
                if let Some(c) = elems.get(i) {
                    self.vm(arc).conjs.push(c.clone());
                } else if let Some(t) = ellipsis {
                    self.vm(arc).conjs.push(t.clone());
                }
            }
        }
        self.vm(v).list_open = open;
    }

    fn label_matches(&mut self, p: &Rc<E>, env: &Env, name: &str) -> bool {
        let pv = self.eval(p, env);
        let pv = match pv {
            Val::V(w) => {
                self.eval_vertex(w);
                self.v(w).value.clone()
            }
            other => other,
        };
        let r = self.unify_scalar(pv, Val::Atom(Atom::Str(Rc::from(name))), &[]);
        !matches!(r, Val::Bottom(_))
    }

    fn resolve_disjunctions(&mut self, b: Builder) {
        let v = b.v;
        let Builder { leaves, disjs, .. } = b;
        // Cartesian product of arms.
        let mut combos: Vec<(Vec<Conj>, bool)> = vec![(Vec::new(), true)];
        let any_default = disjs.iter().any(|d| d.has_default);
        for d in &disjs {
            let mut next = Vec::new();
            for (prefix, def) in &combos {
                for (arm, arm_def) in &d.arms {
                    let mut p = prefix.clone();
                    p.push(arm.clone());
                    next.push((p, *def && (!d.has_default || *arm_def)));
                }
                if next.len() > MAX_COMBOS {
                    break;
                }
            }
            combos = next;
        }
        let parent = self.v(v).parent;
        let label = self.v(v).label;
        let mut survivors: Vec<(VId, bool)> = Vec::new();
        let mut errors: Vec<Rc<Bottom>> = Vec::new();
        for (arms, is_default) in combos {
            let c = self.new_vertex(parent, label);
            {
                let src = self.v(v);
                let (attrs, docs, decl_pos, optional) = (
                    src.attrs.clone(),
                    src.docs.clone(),
                    src.decl_pos.clone(),
                    src.optional,
                );
                let cv = self.vm(c);
                cv.attrs = attrs;
                cv.docs = docs;
                cv.decl_pos = decl_pos;
                cv.optional = optional;
            }
            let mut conjs = Vec::with_capacity(leaves.len() + arms.len());
            conjs.extend(leaves.iter().cloned());
            conjs.extend(arms);
            self.vm(c).conjs = conjs;
            self.vm(c).clone = true;
            self.eval_vertex(c);
            if let Some(err) = self.first_fatal(c, 0) {
                errors.push(err);
                continue;
            }
            if let Some(inner) = self.v(c).disj.clone() {
                let inner_has_default = inner.iter().any(|(_, d)| *d);
                for (arm, d) in inner.iter() {
                    survivors.push((*arm, is_default && (*d || !inner_has_default)));
                }
            } else {
                survivors.push((c, is_default));
            }
        }
        // Dedup.
        let mut unique: Vec<(VId, bool, String)> = Vec::new();
        let single = survivors.len() == 1;
        for (c, d) in survivors {
            let fp = if single {
                String::new()
            } else {
                self.fingerprint(c)
            };
            if let Some(existing) = unique.iter_mut().find(|u| u.2 == fp) {
                // Equal values: keep the default arm's vertex, whose
                // references say where the value comes from (in
                // `docker.#Image | *_build.output` the default reaches the
                // build's tasks, the schema arm reaches nothing).
                if d && !existing.1 {
                    existing.0 = c;
                }
                existing.1 |= d;
            } else {
                unique.push((c, d, fp));
            }
        }
        let _ = any_default;
        if unique.is_empty() {
            let n = errors.len();
            let mut pos: Vec<Pos> = errors.iter().flat_map(|e| e.pos.clone()).collect();
            pos.sort();
            pos.dedup();
            let err = Bottom {
                code: code::DISJ,
                msg: if n == 1 {
                    errors[0].msg.clone()
                } else {
                    format!("{n} errors in empty disjunction:")
                },
                pos,
                incomplete: false,
                hint: None,
                causes: errors,
            };
            let vm = self.vm(v);
            vm.value = Val::Bottom(Rc::new(err));
            return;
        }
        if unique.len() == 1 {
            let c = unique[0].0;
            self.adopt(v, c);
            return;
        }
        let arms: Vec<(VId, bool)> = unique.into_iter().map(|(c, d, _)| (c, d)).collect();
        self.vm(v).disj = Some(Rc::new(arms));
    }

    /// Orders the arcs of `v` as CUE v0.4 exports them: the field orders of
    /// the struct literals that made the vertex (`fronts`), then the arcs no
    /// literal declares (dynamic labels, data) in creation order as one more
    /// list, merged by [`merge_fronts`].
    #[inline(never)]
    fn order_arcs(&mut self, v: VId, fronts: &[(Rc<StructLit>, Vec<Label>)]) {
        let n_arcs = self.v(v).arcs.len();
        if n_arcs < 2 || fronts.is_empty() {
            return;
        }
        let mut lists: Vec<Vec<Label>> = fronts.iter().map(|(_, l)| l.clone()).collect();
        let declared: rustc_hash::FxHashSet<Label> = lists.iter().flatten().copied().collect();
        let extra: Vec<Label> = self
            .v(v)
            .arcs
            .keys()
            .filter(|l| !declared.contains(l))
            .copied()
            .collect();
        if !extra.is_empty() {
            lists.push(extra);
        }
        let order = merge_fronts(lists);
        let vm = self.vm(v);
        if order.iter().zip(vm.arcs.keys()).all(|(a, b)| a == b) {
            return;
        }
        vm.creation_order = Some(Rc::new(vm.arcs.keys().copied().collect()));
        let mut sorted = FastIndexMap::with_capacity_and_hasher(n_arcs, Default::default());
        for l in &order {
            if let Some(a) = vm.arcs.get(l) {
                sorted.insert(*l, *a);
            }
        }
        for (l, a) in &vm.arcs {
            sorted.entry(*l).or_insert(*a);
        }
        vm.arcs = sorted;
    }

    fn adopt(&mut self, v: VId, c: VId) {
        let src = self.v(c).clone();
        let arcs: Vec<VId> = src.arcs.values().copied().collect();
        for a in arcs {
            self.vm(a).parent = Some(v);
        }
        let vm = self.vm(v);
        vm.value = src.value;
        vm.value_pos = src.value_pos;
        vm.is_struct = src.is_struct;
        vm.is_list = src.is_list;
        vm.list_open = src.list_open;
        vm.arcs = src.arcs;
        vm.disj = src.disj;
        vm.incomplete = src.incomplete;
        vm.closed = src.closed;
        vm.validators = src.validators;
        vm.creation_order = src.creation_order;
        vm.refs.extend(src.refs);
    }

    /// The first fatal error in the subtree of `v` (evaluating it).
    pub fn first_fatal(&mut self, v: VId, depth: u32) -> Option<Rc<Bottom>> {
        cuedag_parser::stack::grow(|| self.first_fatal_inner(v, depth))
    }

    fn first_fatal_inner(&mut self, v: VId, depth: u32) -> Option<Rc<Bottom>> {
        self.eval_vertex(v);
        if let Val::Bottom(b) = &self.v(v).value {
            if !b.incomplete {
                return Some(b.clone());
            }
            return None;
        }
        if depth > 60 {
            return None;
        }
        if let Some(arms) = self.v(v).disj.clone() {
            // An unresolved disjunction is fine; arms were checked already.
            let _ = arms;
            return None;
        }
        let arcs: Vec<(Label, VId)> = self.v(v).arcs.iter().map(|(l, a)| (*l, *a)).collect();
        for (l, a) in arcs {
            if l.is_def() || matches!(l, Label::Let(_)) || self.v(a).optional {
                continue;
            }
            if let Some(err) = self.first_fatal(a, depth + 1) {
                return Some(err);
            }
        }
        None
    }

    /// Picks the default of an unresolved disjunction (recursively).
    pub fn resolve_default(&mut self, v: VId) -> R<VId> {
        self.eval_vertex(v);
        let mut cur = v;
        for _ in 0..100 {
            let Some(arms) = self.v(cur).disj.clone() else {
                return Ok(cur);
            };
            let defaults: Vec<VId> = arms.iter().filter(|(_, d)| *d).map(|(a, _)| *a).collect();
            if defaults.len() == 1 {
                cur = defaults[0];
                self.eval_vertex(cur);
                continue;
            }
            let shown: Vec<String> = arms
                .iter()
                .map(|(a, _)| self.vertex_to_cue(*a, 0))
                .collect();
            let msg = format!("incomplete value {}", shown.join(" | "));
            let mut err = Bottom {
                code: code::INCOMPLETE,
                msg,
                pos: self.v(v).decl_pos.clone(),
                incomplete: true,
                hint: None,
                causes: Vec::new(),
            };
            err.hint = Some(format!(
                "the disjunction has {} remaining values and no unique default; unify it with one of: {}",
                arms.len(),
                shown.join(", ")
            ));
            return Err(Rc::new(err));
        }
        Ok(cur)
    }

    /// A structural fingerprint for deduplication.
    fn fingerprint(&mut self, v: VId) -> String {
        self.fingerprint_rec(v, 0)
    }

    fn fingerprint_rec(&mut self, w: VId, depth: u32) -> String {
        cuedag_parser::stack::grow(|| self.fingerprint_rec_inner(w, depth))
    }

    fn fingerprint_rec_inner(&mut self, w: VId, depth: u32) -> String {
        self.eval_vertex(w);
        if depth > 40 {
            return "...".into();
        }
        let vx = self.v(w);
        if vx.disj.is_none() {
            // Numbers by value: `1.0 | 1.00` is one value, as in CUE.
            match &vx.value {
                Val::Atom(Atom::BigInt(d)) => return format!("int:{}", d.reduced()),
                Val::Atom(Atom::Float(d)) => return format!("float:{}", d.reduced()),
                _ => {}
            }
        }
        if vx.disj.is_some() || !vx.is_struct {
            return self.vertex_to_cue(w, depth);
        }
        let arcs: Vec<(Label, VId)> = vx.arcs.iter().map(|(l, a)| (*l, *a)).collect();
        let mut parts: Vec<String> = Vec::new();
        for (l, a) in arcs {
            if matches!(l, Label::Let(_)) {
                continue;
            }
            let opt = if self.v(a).optional { "?" } else { "" };
            let inner = self.fingerprint_rec(a, depth + 1);
            parts.push(format!("{l:?}{opt}:{inner}"));
        }
        parts.sort();
        format!("{{{}}}", parts.join(","))
    }

    // ----- expressions -----

    /// Evaluates an expression in operand position.
    pub fn eval(&mut self, e: &Rc<E>, env: &Env) -> Val {
        cuedag_parser::stack::grow(|| self.eval_inner(e, env))
    }

    fn eval_inner(&mut self, e: &Rc<E>, env: &Env) -> Val {
        match &e.kind {
            Ek::Top => Val::Top,
            Ek::Bottom => Val::Bottom(bot(
                code::EXPLICIT,
                "explicit error (_|_ literal) in source",
                vec![e.pos],
                false,
            )),
            Ek::Null => Val::Atom(Atom::Null),
            Ek::Bool(x) => Val::Atom(Atom::Bool(*x)),
            Ek::Int(i) => Val::Atom(Atom::Int(*i)),
            Ek::BigInt(d) => Val::Atom(Atom::BigInt(d.clone())),
            Ek::Float(d) => Val::Atom(Atom::Float(d.clone())),
            Ek::Str(s) => Val::Atom(Atom::Str(s.clone())),
            Ek::Bytes(b) => Val::Atom(Atom::Bytes(b.clone())),
            Ek::Error(msg) => {
                Val::Bottom(bot(code::NOT_FOUND, msg.to_string(), vec![e.pos], false))
            }
            Ek::Data(d) => value_to_val(self, d, e.pos),
            Ek::Struct(_) | Ek::List(_) | Ek::Disj(_) | Ek::Unify(_) => {
                let w = self.new_vertex(None, None);
                self.vm(w).conjs.push(Conj {
                    kind: CK::Expr(e.clone()),
                    env: env.clone(),
                    ci: CI::default(),
                });
                Val::V(w)
            }
            Ek::Ref(r) => self.resolve_ref(r, env, e.pos),
            Ek::Select(base, label) => {
                let bv = self.eval(base, env);
                self.select(bv, *label, e.pos)
            }
            Ek::Index(base, idx) => {
                let bv = self.eval(base, env);
                let iv = match self.eval_concrete(idx, env) {
                    Ok(v) => v,
                    Err(err) => return Val::Bottom(err),
                };
                let label = match iv {
                    Val::Atom(Atom::Str(s)) => Label::Regular(self.interner.intern(&s)),
                    // CUE's labels hold indices up to 2^28 - 2.
                    Val::Atom(Atom::Int(i)) if (0..=MAX_INDEX).contains(&i) => {
                        Label::Index(i as u32)
                    }
                    Val::Atom(Atom::Int(i)) if i >= 0 && i <= i128::from(i64::MAX) => {
                        return Val::Bottom(bot(
                            code::OPERANDS,
                            format!("int label out of range ({i} not >=0 and <= {MAX_INDEX})"),
                            vec![e.pos],
                            false,
                        ))
                    }
                    Val::Atom(ref a @ (Atom::Int(_) | Atom::BigInt(_))) => {
                        let shown = a.to_cue();
                        return Val::Bottom(bot(
                            code::OPERANDS,
                            format!("invalid index {shown}: {shown}: greater than max int64"),
                            vec![e.pos],
                            false,
                        ));
                    }
                    other => {
                        return Val::Bottom(bot(
                            code::OPERANDS,
                            format!("invalid index {}", self.val_to_cue(&other)),
                            vec![e.pos],
                            false,
                        ))
                    }
                };
                self.select(bv, label, e.pos)
            }
            Ek::Slice(base, lo, hi) => self.eval_slice(base, lo.as_ref(), hi.as_ref(), env, e.pos),
            Ek::Call(f, args) => {
                let fv = self.eval(f, env);
                match fv {
                    Val::Pre(Predeclared::Close | Predeclared::And | Predeclared::Or) => {
                        let w = self.new_vertex(None, None);
                        self.vm(w).conjs.push(Conj {
                            kind: CK::Expr(e.clone()),
                            env: env.clone(),
                            ci: CI::default(),
                        });
                        Val::V(w)
                    }
                    _ => self.eval_call(fv, args, env, e.pos),
                }
            }
            Ek::Unary(op, x) => self.eval_unary(*op, x, env, e.pos),
            Ek::Binary(op, l, r) => self.eval_binary(*op, l, r, env, e.pos),
            Ek::Interp(parts, is_bytes) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        crate::ir::InterpPart::Text(t) => out.push_str(t),
                        crate::ir::InterpPart::Expr(x) => match self.eval_concrete(x, env) {
                            Ok(Val::Atom(a)) => match a {
                                Atom::Str(s) => out.push_str(&s),
                                Atom::Bytes(b) => out.push_str(&String::from_utf8_lossy(&b)),
                                Atom::Int(i) => out.push_str(&i.to_string()),
                                Atom::BigInt(d) | Atom::Float(d) => out.push_str(&d.to_string()),
                                Atom::Bool(b) => out.push_str(&b.to_string()),
                                Atom::Null => {
                                    return Val::Bottom(bot(
                                        code::OPERANDS,
                                        "invalid interpolation: cannot use null as string",
                                        vec![x.pos],
                                        false,
                                    ))
                                }
                            },
                            Ok(other) => {
                                return Val::Bottom(bot(
                                    code::OPERANDS,
                                    format!(
                                        "invalid interpolation: cannot use {} as string",
                                        self.val_to_cue(&other)
                                    ),
                                    vec![x.pos],
                                    false,
                                ))
                            }
                            Err(err) => {
                                let mut b = (*err).clone();
                                if !b.msg.starts_with("invalid interpolation") {
                                    b.msg = format!("invalid interpolation: {}", b.msg);
                                }
                                return Val::Bottom(Rc::new(b));
                            }
                        },
                    }
                }
                if *is_bytes {
                    Val::Atom(Atom::Bytes(Rc::from(out.into_bytes())))
                } else {
                    Val::Atom(Atom::Str(Rc::from(out)))
                }
            }
            Ek::IsBottom(x, eq) => {
                let val = self.eval(x, env);
                let is_bottom = match val {
                    Val::Bottom(_) => true,
                    Val::Top | Val::Cons(_) => true,
                    Val::Atom(_) => false,
                    Val::V(w) => {
                        if self.v(w).state == State::Evaluating {
                            true
                        } else {
                            self.eval_vertex(w);
                            // A field declared only as optional is absent:
                            // `auth != _|_` is false for `auth?: {...}`.
                            let vx = self.v(w);
                            if vx.optional
                                && vx.parent.is_some()
                                && matches!(vx.label, Some(Label::Regular(_)))
                            {
                                return Val::Atom(Atom::Bool(*eq));
                            }
                            match self.resolve_default(w) {
                                Err(_) => true,
                                Ok(w) => {
                                    let vx = self.v(w);
                                    match &vx.value {
                                        Val::Bottom(_) => true,
                                        Val::Top if vx.is_struct || vx.is_list => {
                                            self.first_fatal(w, 0).is_some()
                                        }
                                        Val::Top => true,
                                        Val::Cons(_) => true,
                                        _ => false,
                                    }
                                }
                            }
                        }
                    }
                    _ => false,
                };
                Val::Atom(Atom::Bool(if *eq { is_bottom } else { !is_bottom }))
            }
        }
    }

    fn resolve_ref(&mut self, r: &Ref, env: &Env, pos: Pos) -> Val {
        match r {
            Ref::Field { up, label } => {
                let Some(frame) = walk(env, *up) else {
                    return Val::Bottom(bot(
                        code::NOT_FOUND,
                        "reference not found",
                        vec![pos],
                        false,
                    ));
                };
                let Frame::Struct(w) = &frame.frame else {
                    return Val::Bottom(bot(
                        code::NOT_FOUND,
                        "reference not found",
                        vec![pos],
                        false,
                    ));
                };
                let w = *w;
                match self.v(w).arcs.get(label).copied() {
                    Some(a) => {
                        self.record_ref(a);
                        Val::V(a)
                    }
                    None => {
                        if self.v(w).state == State::New {
                            self.eval_vertex(w);
                        }
                        match self.v(w).arcs.get(label).copied() {
                            Some(a) => {
                                self.record_ref(a);
                                Val::V(a)
                            }
                            None => {
                                let name = self.label_name(*label);
                                Val::Bottom(bot(
                                    code::UNDEFINED,
                                    format!("undefined field: {name}"),
                                    vec![pos],
                                    true,
                                ))
                            }
                        }
                    }
                }
            }
            Ref::Var { up, index } => {
                let Some(frame) = walk(env, *up) else {
                    return Val::Bottom(bot(
                        code::NOT_FOUND,
                        "reference not found",
                        vec![pos],
                        false,
                    ));
                };
                match &frame.frame {
                    Frame::Bind(bs) => match bs.get(*index as usize) {
                        Some(Binding::Val(v)) => v.clone(),
                        Some(Binding::Vertex(w)) => {
                            let w = *w;
                            self.record_ref(w);
                            Val::V(w)
                        }
                        None => Val::Bottom(bot(
                            code::NOT_FOUND,
                            "reference not found",
                            vec![pos],
                            false,
                        )),
                    },
                    Frame::Struct(_) => Val::Bottom(bot(
                        code::NOT_FOUND,
                        "reference not found",
                        vec![pos],
                        false,
                    )),
                }
            }
            Ref::Import(pkg) => Val::V(self.pkg_root(*pkg)),
            Ref::BuiltinPkg(path) => match crate::builtins::package(path) {
                Some(p) => Val::Pkg(p),
                None => Val::Bottom(bot(
                    code::IMPORT,
                    format!("{path} undefined ({path} is incomplete)"),
                    vec![pos],
                    true,
                )),
            },
            Ref::Predeclared(p) => match p {
                Predeclared::Kind(k) => Val::Cons(self.kind_cons(*k)),
                Predeclared::Bounded(name) => bounded_type(name),
                other => Val::Pre(*other),
            },
            Ref::Unresolved(name) => Val::Bottom(bot(
                code::NOT_FOUND,
                format!("reference {name:?} not found"),
                vec![pos],
                false,
            )),
        }
    }

    fn label_name(&self, label: Label) -> String {
        match label {
            Label::Regular(s) | Label::Def(s) | Label::Hidden(s, _) | Label::HiddenDef(s, _) => {
                self.interner.text(s).to_string()
            }
            Label::Let(_) => "let".into(),
            Label::Index(i) => i.to_string(),
        }
    }

    /// Selects `label` from a value.
    pub fn select(&mut self, base: Val, label: Label, pos: Pos) -> Val {
        match base {
            Val::V(w) => {
                if self.v(w).state == State::Evaluating {
                    if let Some(a) = self.v(w).arcs.get(&label).copied() {
                        self.record_ref(a);
                        return Val::V(a);
                    }
                    return Val::Bottom(bot(
                        code::CYCLE,
                        format!("cycle: field {} not yet known", self.label_name(label)),
                        vec![pos],
                        true,
                    ));
                }
                let w = match self.resolve_default(w) {
                    Ok(w) => w,
                    Err(e) => return Val::Bottom(e),
                };
                if let Val::Bottom(b) = &self.v(w).value {
                    return Val::Bottom(b.clone());
                }
                match self.v(w).arcs.get(&label).copied() {
                    Some(a) if self.v(a).optional && label.is_regular() => {
                        // Pending, like CUE's: a later conjunct may declare it.
                        self.record_ref(a);
                        Val::Bottom(bot(
                            code::UNDEFINED,
                            format!("cannot reference optional field {}", self.label_name(label)),
                            vec![pos],
                            true,
                        ))
                    }
                    Some(a) => {
                        self.record_ref(a);
                        Val::V(a)
                    }
                    None => {
                        let vx = self.v(w);
                        let name = self.label_name(label);
                        if vx.is_list {
                            if let Label::Index(i) = label {
                                return Val::Bottom(bot(
                                    code::UNDEFINED,
                                    format!(
                                        "index out of range [{i}] with length {}",
                                        vx.arcs.len()
                                    ),
                                    vec![pos],
                                    false,
                                ));
                            }
                            if !vx.is_struct {
                                // A field selector on a list is an error, not
                                // a pending reference.
                                return Val::Bottom(bot(
                                    code::OPERANDS,
                                    format!("invalid list index {name} (type string)"),
                                    vec![pos],
                                    false,
                                ));
                            }
                        }
                        if vx.is_struct || matches!(vx.value, Val::Top) {
                            // A closed struct cannot get the field later.
                            let pending = !vx.closed;
                            Val::Bottom(bot(
                                code::UNDEFINED,
                                format!("undefined field: {name}"),
                                vec![pos],
                                pending,
                            ))
                        } else {
                            let value = vx.value.clone();
                            let is_cons = matches!(value, Val::Cons(_));
                            let shown = self.val_to_cue(&value);
                            let msg = match &value {
                                Val::Atom(a) => format!(
                                    "invalid operand {shown} (found {}, want list or struct)",
                                    kind_name(a.kind())
                                ),
                                _ => format!("invalid selector {name} on {shown}"),
                            };
                            Val::Bottom(bot(code::OPERANDS, msg, vec![pos], is_cons))
                        }
                    }
                }
            }
            Val::Pkg(p) => {
                let name = self.label_name(label);
                match p.member(&name) {
                    Some(Member::Func(f)) => Val::Func(f, Rc::from(format!("{}.{}", p.path, name))),
                    Some(Member::Const(c)) => value_to_val(self, &c(), pos),
                    None => Val::Bottom(bot(
                        code::UNDEFINED,
                        format!("undefined field: {name}"),
                        vec![pos],
                        false,
                    )),
                }
            }
            Val::Bottom(b) => Val::Bottom(b),
            Val::Top | Val::Cons(_) => Val::Bottom(bot(
                code::INCOMPLETE,
                format!("undefined field: {}", self.label_name(label)),
                vec![pos],
                true,
            )),
            other => Val::Bottom(bot(
                code::OPERANDS,
                format!(
                    "invalid selector {} on {}",
                    self.label_name(label),
                    self.val_to_cue(&other)
                ),
                vec![pos],
                false,
            )),
        }
    }

    /// Evaluates to a concrete value: an atom or a struct/list vertex.
    pub fn eval_concrete(&mut self, e: &Rc<E>, env: &Env) -> R<Val> {
        let val = self.eval(e, env);
        self.concrete(val, e.pos)
    }

    /// Makes a value concrete (selecting defaults).
    pub fn concrete(&mut self, val: Val, pos: Pos) -> R<Val> {
        match val {
            Val::Atom(a) => Ok(Val::Atom(a)),
            Val::Bottom(b) => Err(b),
            Val::Top => Err(bot(code::INCOMPLETE, "incomplete value _", vec![pos], true)),
            Val::Cons(c) => Err(bot(
                code::INCOMPLETE,
                format!("incomplete value {}", cons_to_cue(&c)),
                vec![pos],
                true,
            )),
            Val::V(w) => {
                if self.v(w).state == State::Evaluating {
                    return Err(bot(code::CYCLE, "cycle error", vec![pos], true));
                }
                let w = self.resolve_default(w)?;
                let vx = self.v(w);
                match &vx.value {
                    Val::Bottom(b) => Err(b.clone()),
                    Val::Atom(a) => Ok(Val::Atom(a.clone())),
                    _ if vx.is_struct || vx.is_list => Ok(Val::V(w)),
                    other => {
                        let other = other.clone();
                        self.concrete(other, pos)
                    }
                }
            }
            Val::Pkg(_) | Val::Func(..) | Val::Pre(_) => Ok(val),
        }
    }

    fn eval_list_elems(&mut self, e: &Rc<E>, env: &Env) -> R<Vec<VId>> {
        match self.eval_concrete(e, env)? {
            Val::V(w) if self.v(w).is_list => Ok(self.v(w).arcs.values().copied().collect()),
            other => Err(bot(
                code::OPERANDS,
                format!("expected list, found {}", self.val_to_cue(&other)),
                vec![e.pos],
                false,
            )),
        }
    }

    fn eval_slice(
        &mut self,
        base: &Rc<E>,
        lo: Option<&Rc<E>>,
        hi: Option<&Rc<E>>,
        env: &Env,
        pos: Pos,
    ) -> Val {
        let b = match self.eval_concrete(base, env) {
            Ok(Val::V(w)) if self.v(w).is_list => w,
            Ok(_) => {
                return Val::Bottom(bot(
                    code::OPERANDS,
                    "cannot slice a non-list",
                    vec![pos],
                    false,
                ))
            }
            Err(e) => return Val::Bottom(e),
        };
        let elems: Vec<VId> = self.v(b).arcs.values().copied().collect();
        let get = |s: &mut Self, x: Option<&Rc<E>>, d: usize| -> R<usize> {
            match x {
                None => Ok(d),
                Some(x) => match s.eval_concrete(x, env)? {
                    Val::Atom(Atom::Int(i)) if i >= 0 => {
                        Ok(usize::try_from(i).unwrap_or(usize::MAX))
                    }
                    _ => Err(bot(code::OPERANDS, "invalid slice index", vec![pos], false)),
                },
            }
        };
        let l = match get(self, lo, 0) {
            Ok(l) => l,
            Err(e) => return Val::Bottom(e),
        };
        let h = match get(self, hi, elems.len()) {
            Ok(h) => h,
            Err(e) => return Val::Bottom(e),
        };
        if l > h || h > elems.len() {
            return Val::Bottom(bot(
                code::OPERANDS,
                "slice bounds out of range",
                vec![pos],
                false,
            ));
        }
        self.list_of(elems[l..h].to_vec(), pos)
    }

    fn list_of(&mut self, elems: Vec<VId>, pos: Pos) -> Val {
        let w = self.new_vertex(None, None);
        self.vm(w).conjs.push(Conj {
            kind: CK::Elems(Rc::new(elems), pos),
            env: None,
            ci: CI::default(),
        });
        Val::V(w)
    }

    fn eval_unary(&mut self, op: UnaryOp, x: &Rc<E>, env: &Env, pos: Pos) -> Val {
        let bound = match op {
            UnaryOp::NotEqual => Some(BoundOp::Ne),
            UnaryOp::Less => Some(BoundOp::Lt),
            UnaryOp::LessEqual => Some(BoundOp::Le),
            UnaryOp::Greater => Some(BoundOp::Gt),
            UnaryOp::GreaterEqual => Some(BoundOp::Ge),
            UnaryOp::Match => Some(BoundOp::Match),
            UnaryOp::NotMatch => Some(BoundOp::NotMatch),
            _ => None,
        };
        let val = match self.eval_concrete(x, env) {
            Ok(v) => v,
            Err(e) => return Val::Bottom(e),
        };
        let Val::Atom(a) = val else {
            return Val::Bottom(bot(
                code::OPERANDS,
                format!(
                    "invalid operand {} for unary operator",
                    self.val_to_cue(&val)
                ),
                vec![pos],
                false,
            ));
        };
        if let Some(bop) = bound {
            let kinds = match bop {
                BoundOp::Match | BoundOp::NotMatch => {
                    if !matches!(a, Atom::Str(_)) {
                        return Val::Bottom(bot(
                            code::OPERANDS,
                            "regular expression must be a string",
                            vec![pos],
                            false,
                        ));
                    }
                    kind::STRING
                }
                BoundOp::Ne => kind::SCALAR,
                _ => match a {
                    Atom::Int(_) | Atom::BigInt(_) | Atom::Float(_) => kind::NUMBER,
                    Atom::Str(_) => kind::STRING,
                    Atom::Bytes(_) => kind::BYTES,
                    _ => {
                        return Val::Bottom(bot(code::OPERANDS, "invalid bound", vec![pos], false));
                    }
                },
            };
            return Val::Cons(Rc::new(Cons {
                kinds,
                bounds: vec![(bop, a)],
                validators: Vec::new(),
            }));
        }
        match (op, a) {
            (UnaryOp::Neg, Atom::Int(i)) if i != i128::MIN => Val::Atom(Atom::Int(-i)),
            (UnaryOp::Neg, Atom::Int(i)) => Val::Atom(Atom::int(Decimal::from_i128(i).neg())),
            (UnaryOp::Neg, Atom::BigInt(d)) => Val::Atom(Atom::int(d.neg())),
            (UnaryOp::Neg, Atom::Float(d)) => Val::Atom(Atom::float(d.neg())),
            (UnaryOp::Plus, a @ (Atom::Int(_) | Atom::BigInt(_) | Atom::Float(_))) => Val::Atom(a),
            (UnaryOp::Not, Atom::Bool(b)) => Val::Atom(Atom::Bool(!b)),
            (_, a) => Val::Bottom(bot(
                code::OPERANDS,
                format!("invalid operation on {}", a.to_cue()),
                vec![pos],
                false,
            )),
        }
    }

    fn eval_binary(&mut self, op: BinaryOp, l: &Rc<E>, r: &Rc<E>, env: &Env, pos: Pos) -> Val {
        // Short-circuit logic.
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            let lv = match self.eval_concrete(l, env) {
                Ok(v) => v,
                Err(e) => return Val::Bottom(e),
            };
            let Val::Atom(Atom::Bool(lb)) = lv else {
                let shown = self.val_to_cue(&lv);
                let kind = match &lv {
                    Val::Atom(a) => kind_name(a.kind()),
                    Val::V(_) => "struct",
                    _ => "_",
                };
                return Val::Bottom(bot(
                    code::OPERANDS,
                    format!(
                        "cannot use {shown} (type {kind}) as type bool in {}",
                        op.as_str()
                    ),
                    vec![l.pos],
                    false,
                ));
            };
            if (op == BinaryOp::And && !lb) || (op == BinaryOp::Or && lb) {
                return Val::Atom(Atom::Bool(lb));
            }
            let rv = match self.eval_concrete(r, env) {
                Ok(v) => v,
                Err(e) => return Val::Bottom(e),
            };
            return match rv {
                Val::Atom(Atom::Bool(rb)) => Val::Atom(Atom::Bool(rb)),
                other => Val::Bottom(bot(
                    code::OPERANDS,
                    format!(
                        "cannot use {} as type bool in {}",
                        self.val_to_cue(&other),
                        op.as_str()
                    ),
                    vec![r.pos],
                    false,
                )),
            };
        }
        let lv = match self.eval_concrete(l, env) {
            Ok(v) => v,
            Err(e) => return Val::Bottom(e),
        };
        let rv = match self.eval_concrete(r, env) {
            Ok(v) => v,
            Err(e) => return Val::Bottom(e),
        };
        match (lv, rv) {
            (Val::Atom(a), Val::Atom(b)) => binary_atoms(op, a, b, pos, &mut self.regex_cache),
            (Val::V(a), Val::V(b))
                if op == BinaryOp::Add && self.v(a).is_list && self.v(b).is_list =>
            {
                let mut elems: Vec<VId> = self.v(a).arcs.values().copied().collect();
                elems.extend(self.v(b).arcs.values().copied());
                self.list_of(elems, pos)
            }
            (Val::V(a), Val::Atom(Atom::Int(n))) | (Val::Atom(Atom::Int(n)), Val::V(a))
                if op == BinaryOp::Mul && self.v(a).is_list =>
            {
                let one: Vec<VId> = self.v(a).arcs.values().copied().collect();
                if one
                    .len()
                    .saturating_mul(usize::try_from(n.max(0)).unwrap_or(usize::MAX))
                    > MAX_REPEAT
                {
                    return Val::Bottom(bot(
                        code::OPERANDS,
                        format!("list repeated {n} times is too long"),
                        vec![pos],
                        false,
                    ));
                }
                let mut elems = Vec::new();
                for _ in 0..n.max(0) {
                    elems.extend(one.iter().copied());
                }
                self.list_of(elems, pos)
            }
            (Val::V(a), Val::V(b)) if matches!(op, BinaryOp::Equal | BinaryOp::NotEqual) => {
                let fa = self.fingerprint(a);
                let fb = self.fingerprint(b);
                Val::Atom(Atom::Bool((fa == fb) == (op == BinaryOp::Equal)))
            }
            (Val::Atom(Atom::Null), Val::V(_)) | (Val::V(_), Val::Atom(Atom::Null))
                if matches!(op, BinaryOp::Equal | BinaryOp::NotEqual) =>
            {
                Val::Atom(Atom::Bool(op == BinaryOp::NotEqual))
            }
            (a, b) => {
                let (sa, sb) = (self.val_to_cue(&a), self.val_to_cue(&b));
                Val::Bottom(bot(
                    code::OPERANDS,
                    format!("invalid operands {sa} and {sb} to '{}'", op.as_str()),
                    vec![pos],
                    false,
                ))
            }
        }
    }

    fn eval_call(&mut self, fv: Val, args: &[Rc<E>], env: &Env, pos: Pos) -> Val {
        match fv {
            // CUE reports an unknown callee as a call of bottom.
            Val::Bottom(b) if b.code == code::UNDEFINED && !b.incomplete => {
                let mut err = (*bot(
                    code::OPERANDS,
                    "cannot call non-function (type _|_)",
                    b.pos.clone(),
                    false,
                ))
                .clone();
                err.hint = Some(b.msg.clone());
                Val::Bottom(Rc::new(err))
            }
            Val::Bottom(b) => Val::Bottom(b),
            Val::Pre(p) => self.call_predeclared(p, args, env, pos),
            Val::Func(f, name) if f.special != Special::Plain && args.len() == f.min_args => {
                self.call_special(f, &name, args, env, pos)
            }
            Val::Func(f, name) => {
                let nargs = args.len();
                if f.validator
                    && nargs + 1 >= f.min_args
                    && nargs < f.max_args
                    && nargs < f.min_args
                {
                    let mut vals = Vec::new();
                    for a in args {
                        match self
                            .eval_concrete(a, env)
                            .and_then(|v| self.manifest(v, a.pos))
                        {
                            Ok(v) => vals.push(v),
                            Err(e) => return Val::Bottom(e),
                        }
                    }
                    let shown: Vec<String> = vals.iter().map(value_to_cue).collect();
                    return Val::Cons(Rc::new(Cons {
                        kinds: kind::TOP,
                        bounds: Vec::new(),
                        validators: vec![Validator {
                            func: f,
                            args: vals,
                            name: Rc::from(format!("{name}({})", shown.join(", "))),
                        }],
                    }));
                }
                if nargs < f.min_args || nargs > f.max_args {
                    let (which, want) = if nargs > f.max_args {
                        ("too many", f.max_args)
                    } else {
                        ("not enough", f.min_args)
                    };
                    return Val::Bottom(bot(
                        code::OPERANDS,
                        format!("{which} arguments in call to {name} (have {nargs}, want {want})"),
                        vec![pos],
                        false,
                    ));
                }
                let mut vals = Vec::new();
                for (j, a) in args.iter().enumerate() {
                    let arg = self.eval_concrete(a, env);
                    if let (Some((list_arg, kind)), Ok(v)) = (f.scalar_list, &arg) {
                        if list_arg == j {
                            if let Some(err) = self.defaulted_elem(v, kind, j, pos, a.pos) {
                                return Val::Bottom(err);
                            }
                        }
                    }
                    match arg.and_then(|v| self.manifest(v, a.pos)) {
                        Ok(v) => vals.push(v),
                        Err(e) => {
                            let mut b = (*e).clone();
                            if !b.incomplete {
                                b.msg = format!("error in call to {name}: {}", b.msg);
                            }
                            return Val::Bottom(Rc::new(b));
                        }
                    }
                }
                match (f.f)(&vals) {
                    Ok(v) => value_to_val(self, &v, pos),
                    Err(crate::value::BuiltinError::Incomplete(m)) => {
                        Val::Bottom(bot(code::INCOMPLETE, m, vec![pos], true))
                    }
                    // Argument type errors carry the field's path in CUE;
                    // other builtin errors do not.
                    Err(crate::value::BuiltinError::Invalid(m))
                        if m.starts_with("cannot use") || m.starts_with("invalid list element") =>
                    {
                        Val::Bottom(bot(code::OPERANDS, m, vec![pos], false))
                    }
                    Err(crate::value::BuiltinError::Invalid(m)) => Val::Bottom(bot(
                        code::BUILTIN,
                        format!("error in call to {name}: {m}"),
                        vec![pos],
                        false,
                    )),
                }
            }
            other => Val::Bottom(bot(
                code::OPERANDS,
                format!("cannot call non-function {}", self.val_to_cue(&other)),
                vec![pos],
                false,
            )),
        }
    }

    /// Runs a builtin whose second argument is CUE rather than data
    /// (`list.Sort(xs, cmp)`, `yaml.Validate(text, schema)`).
    /// For a builtin's list-of-scalars argument: the error for its first
    /// element that is still a disjunction (CUE v0.4 does not take the
    /// defaults of such elements).
    fn defaulted_elem(
        &mut self,
        v: &Val,
        kind: &str,
        j: usize,
        pos: Pos,
        arg_pos: Pos,
    ) -> Option<Rc<Bottom>> {
        let Val::V(w) = v else { return None };
        let w = self.resolve_default(*w).ok()?;
        self.eval_vertex(w);
        if !self.v(w).is_list {
            return None;
        }
        let elems: Vec<VId> = self.v(w).arcs.values().copied().collect();
        for (i, e) in elems.into_iter().enumerate() {
            self.eval_vertex(e);
            if self.v(e).disj.is_some() {
                let shown = self.vertex_to_cue(e, 0);
                let elem_pos = self
                    .v(e)
                    .conjs
                    .iter()
                    .find_map(|c| match &c.kind {
                        CK::Expr(x) => Some(x.pos),
                        _ => None,
                    })
                    .unwrap_or(arg_pos);
                return Some(bot(
                    code::INCOMPLETE,
                    format!(
                        "non-concrete value {shown} for element {i} of {kind} list argument {j}"
                    ),
                    vec![pos, elem_pos],
                    true,
                ));
            }
        }
        None
    }

    fn call_special(
        &mut self,
        f: &'static Func,
        name: &str,
        args: &[Rc<E>],
        env: &Env,
        pos: Pos,
    ) -> Val {
        let wrap = |e: Rc<Bottom>| {
            let mut b = (*e).clone();
            if !b.incomplete {
                b.msg = format!("error in call to {name}: {}", b.msg);
            }
            Val::Bottom(Rc::new(b))
        };
        let (Some(first), Some(second)) = (args.first(), args.get(1)) else {
            return Val::Bottom(bot(
                code::OPERANDS,
                "not enough arguments",
                vec![pos],
                false,
            ));
        };
        let data = match self
            .eval_concrete(first, env)
            .and_then(|v| self.manifest(v, first.pos))
        {
            Ok(v) => v,
            Err(e) => return wrap(e),
        };
        let other = self.eval(second, env);
        match f.special {
            Special::Sort | Special::IsSorted => {
                let Value::List(items) = data else {
                    return Val::Bottom(bot(
                        code::OPERANDS,
                        format!(
                            "cannot use {} (type {}) as list in argument 1 to {name}",
                            value_to_cue(&data),
                            data.kind_name()
                        ),
                        vec![first.pos],
                        false,
                    ));
                };
                if f.special == Special::IsSorted {
                    for pair in items.windows(2) {
                        match self.less(&other, &pair[1], &pair[0], pos) {
                            Ok(true) => return Val::Atom(Atom::Bool(false)),
                            Ok(false) => {}
                            Err(e) => return wrap(e),
                        }
                    }
                    return Val::Atom(Atom::Bool(true));
                }
                match self.merge_sort(&other, items, pos) {
                    Ok(sorted) => value_to_val(self, &Value::List(sorted), pos),
                    Err(e) => wrap(e),
                }
            }
            Special::Validate | Special::ValidatePartial => {
                let decoded = match (f.f)(&[data]) {
                    Ok(v) => v,
                    Err(e) => {
                        return Val::Bottom(bot(
                            code::BUILTIN,
                            format!("error in call to {name}: {e}"),
                            vec![pos],
                            false,
                        ))
                    }
                };
                let c = self.new_vertex(None, None);
                let schema = match other {
                    Val::V(w) => CK::Vertex(w),
                    v => CK::Val(v, second.pos),
                };
                for kind in [schema, CK::Data(Rc::new(decoded), pos)] {
                    self.vm(c).conjs.push(Conj {
                        kind,
                        env: None,
                        ci: CI::default(),
                    });
                }
                if let Some(e) = self.first_fatal(c, 0) {
                    return wrap(e);
                }
                if f.special == Special::Validate {
                    if let Err(e) = self.manifest(Val::V(c), pos) {
                        return wrap(e);
                    }
                }
                Val::Atom(Atom::Bool(true))
            }
            Special::Plain => Val::Bottom(bot(
                code::BUILTIN,
                format!("{name} is not special"),
                vec![pos],
                false,
            )),
        }
    }

    /// A stable merge sort of `items` by the comparator `cmp`.
    fn merge_sort(&mut self, cmp: &Val, items: Vec<Value>, pos: Pos) -> R<Vec<Value>> {
        if items.len() < 2 {
            return Ok(items);
        }
        let mut left = items;
        let right = left.split_off(left.len() / 2);
        let left = self.merge_sort(cmp, left, pos)?;
        let right = self.merge_sort(cmp, right, pos)?;
        let mut out = Vec::with_capacity(left.len() + right.len());
        let mut li = left.into_iter().peekable();
        let mut ri = right.into_iter().peekable();
        while let (Some(l), Some(r)) = (li.peek(), ri.peek()) {
            // Take from the right only when it is strictly less (stable).
            if self.less(cmp, r, l, pos)? {
                out.extend(ri.next());
            } else {
                out.extend(li.next());
            }
        }
        out.extend(li);
        out.extend(ri);
        Ok(out)
    }

    /// `cmp.less` with `x: a, y: b`. `list.Ascending` and `list.Descending`
    /// compare numbers and strings natively.
    fn less(&mut self, cmp: &Val, a: &Value, b: &Value, pos: Pos) -> R<bool> {
        if let Val::Atom(Atom::Str(s)) = cmp {
            let descending = &**s == DESCENDING;
            if descending || &**s == ASCENDING {
                let (x, y) = if descending { (b, a) } else { (a, b) };
                return match (x, y) {
                    (Value::String(x), Value::String(y)) => Ok(x < y),
                    (Value::Bytes(x), Value::Bytes(y)) => Ok(x < y),
                    _ => match (x.as_f64(), y.as_f64()) {
                        (Some(x), Some(y)) => Ok(x < y),
                        _ => Err(bot(
                            code::OPERANDS,
                            format!(
                                "invalid operands {} and {} to '<'",
                                value_to_cue(x),
                                value_to_cue(y)
                            ),
                            vec![pos],
                            false,
                        )),
                    },
                };
            }
        }
        let Val::V(w) = cmp else {
            return Err(bot(
                code::OPERANDS,
                format!(
                    "invalid comparator {}: want a struct with `x`, `y` and `less`",
                    self.val_to_cue(cmp)
                ),
                vec![pos],
                false,
            ));
        };
        let c = self.new_vertex(None, None);
        self.vm(c).conjs.push(Conj {
            kind: CK::Vertex(*w),
            env: None,
            ci: CI::default(),
        });
        for (field, value) in [("x", a), ("y", b)] {
            let label = Label::Regular(self.interner.intern(field));
            let arc = self.arc(c, label);
            let vm = self.vm(arc);
            vm.optional = false;
            vm.conjs.push(Conj {
                kind: CK::Data(Rc::new(value.clone()), pos),
                env: None,
                ci: CI::default(),
            });
        }
        self.eval_vertex(c);
        let less_label = Label::Regular(self.interner.intern("less"));
        let selected = self.select(Val::V(c), less_label, pos);
        match self.concrete(selected, pos)? {
            Val::Atom(Atom::Bool(b)) => Ok(b),
            other => Err(bot(
                code::OPERANDS,
                format!(
                    "comparator `less` is {}, not a bool",
                    self.val_to_cue(&other)
                ),
                vec![pos],
                false,
            )),
        }
    }

    fn call_predeclared(&mut self, p: Predeclared, args: &[Rc<E>], env: &Env, pos: Pos) -> Val {
        let want = match p {
            Predeclared::Len => 1,
            _ => 2,
        };
        if args.len() != want {
            return Val::Bottom(bot(
                code::BUILTIN,
                "wrong number of arguments",
                vec![pos],
                false,
            ));
        }
        let mut vals = Vec::new();
        for a in args {
            match self.eval_concrete(a, env) {
                Ok(v) => vals.push(v),
                Err(e) => return Val::Bottom(e),
            }
        }
        match p {
            Predeclared::Len => match &vals[0] {
                Val::Atom(Atom::Str(s)) => Val::Atom(Atom::Int(s.len() as i128)),
                Val::Atom(Atom::Bytes(b)) => Val::Atom(Atom::Int(b.len() as i128)),
                Val::V(w) => {
                    let w = *w;
                    let n = if self.v(w).is_list {
                        self.v(w).arcs.len()
                    } else {
                        let arcs: Vec<(Label, VId)> =
                            self.v(w).arcs.iter().map(|(l, a)| (*l, *a)).collect();
                        arcs.iter()
                            .filter(|(l, a)| l.is_regular() && !self.v(*a).optional)
                            .count()
                    };
                    Val::Atom(Atom::Int(n as i128))
                }
                other => Val::Bottom(bot(
                    code::OPERANDS,
                    format!("invalid argument {} to len", self.val_to_cue(other)),
                    vec![pos],
                    false,
                )),
            },
            Predeclared::Div | Predeclared::Mod | Predeclared::Quo | Predeclared::Rem => {
                let op = match p {
                    Predeclared::Div => IntDivOp::Div,
                    Predeclared::Mod => IntDivOp::Mod,
                    Predeclared::Quo => IntDivOp::Quo,
                    _ => IntDivOp::Rem,
                };
                int_div_atoms(op, &vals[0], &vals[1], pos)
            }
            _ => Val::Bottom(bot(code::BUILTIN, "invalid call", vec![pos], false)),
        }
    }

    /// Converts a concrete value to data (regular fields only).
    pub fn manifest(&mut self, val: Val, pos: Pos) -> R<Value> {
        match val {
            Val::Atom(a) => Ok(atom_to_value(&a)),
            Val::V(w) => self.vertex_value(w, pos, 0),
            other => Err(bot(
                code::INCOMPLETE,
                format!("incomplete value {}", self.val_to_cue(&other)),
                vec![pos],
                true,
            )),
        }
    }

    fn vertex_value(&mut self, w: VId, pos: Pos, depth: u32) -> R<Value> {
        cuedag_parser::stack::grow(|| self.vertex_value_inner(w, pos, depth))
    }

    fn vertex_value_inner(&mut self, w: VId, pos: Pos, depth: u32) -> R<Value> {
        if depth > MAX_VALUE_DEPTH {
            return Err(bot(code::DEPTH, "value too deep", vec![pos], false));
        }
        let val = self.concrete(Val::V(w), pos)?;
        let w = match val {
            Val::V(w) => w,
            Val::Atom(a) => return Ok(atom_to_value(&a)),
            _ => return Err(bot(code::INCOMPLETE, "incomplete value", vec![pos], true)),
        };
        if let Some(inc) = self.v(w).incomplete.clone() {
            return Err(inc);
        }
        let arcs: Vec<(Label, VId)> = self.v(w).arcs.iter().map(|(l, a)| (*l, *a)).collect();
        if self.v(w).is_list {
            let mut out = Vec::new();
            for (_, a) in arcs {
                out.push(self.vertex_value(a, pos, depth + 1)?);
            }
            Ok(Value::List(out))
        } else {
            let mut out = IndexMap::new();
            for (l, a) in arcs {
                if let Label::Regular(sym) = l {
                    if self.v(a).optional {
                        continue;
                    }
                    let v = self.vertex_value(a, pos, depth + 1)?;
                    out.insert(self.interner.text(sym).to_string(), v);
                }
            }
            Ok(Value::Struct(out))
        }
    }

    // ----- scalar unification -----

    /// Unifies two scalar-level values.
    pub fn unify_scalar(&mut self, a: Val, b: Val, pos: &[Pos]) -> Val {
        // Without a conflict, no positions are needed.
        match (&a, &b) {
            (Val::Top, _) => return b,
            (_, Val::Top) | (Val::Bottom(_), _) => return a,
            _ => {}
        }
        let mut positions = pos.to_vec();
        positions.sort();
        positions.dedup();
        match (a, b) {
            (Val::Top, x) | (x, Val::Top) => x,
            (Val::Bottom(e), _) | (_, Val::Bottom(e)) => Val::Bottom(e),
            (Val::Atom(x), Val::Atom(y)) => {
                if atoms_equal(&x, &y) {
                    Val::Atom(x)
                } else {
                    let (kx, ky) = (x.kind(), y.kind());
                    let msg = if kx != ky {
                        format!(
                            "conflicting values {} and {} (mismatched types {} and {})",
                            y.to_cue(),
                            x.to_cue(),
                            kind_name(ky),
                            kind_name(kx)
                        )
                    } else {
                        format!("conflicting values {} and {}", y.to_cue(), x.to_cue())
                    };
                    Val::Bottom(bot(code::CONFLICT, msg, positions, false))
                }
            }
            (Val::Atom(x), Val::Cons(c)) | (Val::Cons(c), Val::Atom(x)) => {
                self.check_atom(&x, &c, positions)
            }
            (Val::Cons(c1), Val::Cons(c2)) => {
                let kinds = c1.kinds & c2.kinds;
                if kinds == 0 {
                    return Val::Bottom(bot(
                        code::CONFLICT,
                        format!(
                            "conflicting values {} and {} (mismatched types {} and {})",
                            cons_to_cue(&c2),
                            cons_to_cue(&c1),
                            kinds_name(c2.kinds),
                            kinds_name(c1.kinds)
                        ),
                        positions,
                        false,
                    ));
                }
                let mut bounds = c1.bounds.clone();
                for bd in &c2.bounds {
                    if !bounds
                        .iter()
                        .any(|x| x.0 == bd.0 && atoms_equal(&x.1, &bd.1))
                    {
                        bounds.push(bd.clone());
                    }
                }
                let mut validators = c1.validators.clone();
                validators.extend(c2.validators.iter().cloned());
                simplify_cons(kinds, bounds, validators, positions)
            }
            (x, _) => x,
        }
    }

    fn check_atom(&mut self, x: &Atom, c: &Cons, positions: Vec<Pos>) -> Val {
        let k = x.kind();
        if c.kinds & k == 0 {
            return Val::Bottom(bot(
                code::CONFLICT,
                format!(
                    "conflicting values {} and {} (mismatched types {} and {})",
                    x.to_cue(),
                    cons_to_cue(c),
                    kind_name(k),
                    kinds_name(c.kinds)
                ),
                positions,
                false,
            ));
        }
        for (op, b) in &c.bounds {
            let ok = check_bound(*op, x, b, &mut self.regex_cache).unwrap_or_default();
            if !ok {
                return Val::Bottom(bot(
                    code::INVALID,
                    format!(
                        "invalid value {} (out of bound {}{})",
                        x.to_cue(),
                        op.as_str(),
                        b.to_cue()
                    ),
                    positions,
                    false,
                ));
            }
        }
        for v in &c.validators {
            let mut args = vec![atom_to_value(x)];
            args.extend(v.args.iter().cloned());
            match (v.func.f)(&args) {
                Ok(Value::Bool(true)) => {}
                Ok(_) => {
                    return Val::Bottom(bot(
                        code::INVALID,
                        format!("invalid value {} (does not satisfy {})", x.to_cue(), v.name),
                        positions,
                        false,
                    ))
                }
                Err(crate::value::BuiltinError::Incomplete(m)) => {
                    return Val::Bottom(bot(code::INCOMPLETE, m, positions, true))
                }
                Err(crate::value::BuiltinError::Invalid(m)) => {
                    return Val::Bottom(bot(
                        code::INVALID,
                        format!("invalid value {} ({m})", x.to_cue()),
                        positions,
                        false,
                    ))
                }
            }
        }
        Val::Atom(x.clone())
    }

    // ----- printing -----

    /// CUE text for a value.
    pub fn val_to_cue(&mut self, v: &Val) -> String {
        match v {
            Val::Top => "_".into(),
            Val::Bottom(_) => "_|_".into(),
            Val::Atom(a) => a.to_cue(),
            Val::Cons(c) => cons_to_cue(c),
            Val::V(w) => self.vertex_to_cue(*w, 0),
            Val::Pkg(p) => format!("<package {}>", p.path),
            Val::Func(_, n) => n.to_string(),
            Val::Pre(_) => "<builtin>".into(),
        }
    }

    /// CUE text for a vertex (inline, regular fields and definitions).
    pub fn vertex_to_cue(&mut self, w: VId, depth: u32) -> String {
        cuedag_parser::stack::grow(|| self.vertex_to_cue_inner(w, depth))
    }

    fn vertex_to_cue_inner(&mut self, w: VId, depth: u32) -> String {
        self.eval_vertex(w);
        if depth > 40 {
            return "...".into();
        }
        if let Some(arms) = self.v(w).disj.clone() {
            let parts: Vec<String> = arms
                .iter()
                .map(|(a, d)| {
                    let s = self.vertex_to_cue(*a, depth + 1);
                    if *d {
                        format!("*{s}")
                    } else {
                        s
                    }
                })
                .collect();
            return parts.join(" | ");
        }
        let vx = self.v(w);
        if let Val::Bottom(_) = vx.value {
            return "_|_".into();
        }
        if vx.is_list {
            let arcs: Vec<VId> = vx.arcs.values().copied().collect();
            let open = vx.list_open;
            let mut parts: Vec<String> = arcs
                .iter()
                .map(|a| self.vertex_to_cue(*a, depth + 1))
                .collect();
            if open {
                parts.push("...".into());
            }
            return format!("[{}]", parts.join(", "));
        }
        if vx.is_struct {
            let arcs: Vec<(Label, VId)> = vx.arcs.iter().map(|(l, a)| (*l, *a)).collect();
            let mut parts = Vec::new();
            for (l, a) in arcs {
                if matches!(l, Label::Let(_) | Label::Index(_)) {
                    continue;
                }
                let name = match l {
                    Label::Regular(s) => cue_label(self.interner.text(s)),
                    _ => self.label_name(l),
                };
                let opt = if self.v(a).optional { "?" } else { "" };
                let s = self.vertex_to_cue(a, depth + 1);
                parts.push(format!("{name}{opt}: {s}"));
            }
            return format!("{{{}}}", parts.join(", "));
        }
        let value = vx.value.clone();
        self.val_to_cue(&value)
    }
}

/// Records the static labels of a struct literal added to a vertex, for the
/// export field order. A literal added twice (two comprehension results,
/// two references to one struct) counts twice, as in CUE v0.4.
#[inline(never)]
fn record_front(fronts: &mut Vec<(Rc<StructLit>, Vec<Label>)>, lit: &Rc<StructLit>) {
    let labels: Vec<Label> = lit
        .decls
        .iter()
        .filter_map(|d| match d {
            DeclC::Field(f) => match &f.label {
                FieldLabel::Static(l) => Some(*l),
                FieldLabel::Dynamic(_) => None,
            },
            _ => None,
        })
        .collect();
    if !labels.is_empty() {
        fronts.push((lit.clone(), labels));
    }
}

/// Merges label lists into one order as CUE v0.4's export does (a variant
/// of Kahn's topological sort): a label waits while it stands behind another
/// label in some list. After each label placed, the scan restarts at the
/// first list and places the first head that waits for nothing. Placing a
/// head releases the list's next label only when at least one more label
/// follows it (so the last label of a list is released only as below). When
/// no head is free, the head of the first non-empty list is placed.
fn merge_fronts(mut lists: Vec<Vec<Label>>) -> Vec<Label> {
    let mut waiting: rustc_hash::FxHashMap<Label, usize> = Default::default();
    for list in &lists {
        for l in list.iter().skip(1) {
            *waiting.entry(*l).or_default() += 1;
        }
    }
    for list in &mut lists {
        list.reverse();
    }
    let mut placed: rustc_hash::FxHashSet<Label> = Default::default();
    let mut order: Vec<Label> = Vec::new();
    loop {
        let free = lists.iter().position(|list| {
            list.last()
                .is_some_and(|l| placed.contains(l) || waiting.get(l).copied().unwrap_or(0) == 0)
        });
        let i = match free {
            Some(i) => i,
            None => match lists.iter().position(|list| !list.is_empty()) {
                Some(i) => i,
                None => break,
            },
        };
        let Some(l) = lists[i].pop() else {
            break;
        };
        if lists[i].len() > 1 {
            if let Some(w) = lists[i].last().and_then(|next| waiting.get_mut(next)) {
                *w = w.saturating_sub(1);
            }
        }
        if placed.insert(l) {
            order.push(l);
        }
    }
    order
}

/// Embeddings added where they stand even when replayed: struct literals
/// and values from imported packages (which are already evaluated).
fn embed_inline(x: &E) -> bool {
    match &x.kind {
        Ek::Struct(_) => true,
        Ek::Select(base, _) => embed_inline_ref(base),
        Ek::Unify(parts) => parts.first().map(|p| embed_inline(p)).unwrap_or(false),
        _ => false,
    }
}

/// Whether an embedding is added where it stands among the literal's
/// declarations (before the literal's own fields, as CUE v0.4 does): struct
/// literals, imported values, and references that do not point into the
/// struct being built (`v`). Those wait until the struct's fields exist.
fn embed_now(x: &E, env: &Env, v: VId) -> bool {
    if embed_inline(x) {
        return true;
    }
    let mut base = x;
    while let Ek::Select(inner, _) | Ek::Index(inner, _) = &base.kind {
        base = inner;
    }
    matches!(
        &base.kind,
        Ek::Ref(Ref::Field { .. }) | Ek::Ref(Ref::Var { .. })
    ) && !refers_into(x, env, v)
}

/// Whether `x` is a reference (or a selection from one) to a field or `let`
/// of the struct `v` being built.
fn refers_into(x: &E, env: &Env, v: VId) -> bool {
    let mut base = x;
    while let Ek::Select(inner, _) | Ek::Index(inner, _) = &base.kind {
        base = inner;
    }
    match &base.kind {
        Ek::Ref(Ref::Field { up, .. }) => {
            walk(env, *up).is_some_and(|f| matches!(f.frame, Frame::Struct(w) if w == v))
        }
        _ => false,
    }
}

fn embed_inline_ref(x: &E) -> bool {
    match &x.kind {
        Ek::Ref(Ref::Import(_)) => true,
        Ek::Select(base, _) => embed_inline_ref(base),
        _ => false,
    }
}

fn walk(env: &Env, up: u32) -> Option<Rc<EnvFrame>> {
    let mut cur = env.clone()?;
    for _ in 0..up {
        cur = cur.parent.clone()?;
    }
    Some(cur)
}

/// A CUE label as written (quoted when needed).
pub fn cue_label(name: &str) -> String {
    let ident = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c == '_' || c == '$' || c == '#' || c.is_alphabetic() || (i > 0 && c.is_ascii_digit())
        });
    if ident && !name.starts_with('#') && !name.starts_with('_') {
        name.to_string()
    } else {
        quote(name)
    }
}

fn atoms_equal(a: &Atom, b: &Atom) -> bool {
    if a.is_num() && b.is_num() && a.kind() == b.kind() {
        return num_cmp(a, b) == Some(std::cmp::Ordering::Equal);
    }
    a == b
}

/// Orders two numbers by value (`None` if either is not a number).
fn num_cmp(a: &Atom, b: &Atom) -> Option<std::cmp::Ordering> {
    if let (Atom::Int(x), Atom::Int(y)) = (a, b) {
        return Some(x.cmp(y));
    }
    Some(a.dec()?.cmp_value(&b.dec()?))
}

/// Kind name of a single kind bit.
pub fn kind_name(k: u16) -> &'static str {
    match k {
        kind::NULL => "null",
        kind::BOOL => "bool",
        kind::INT => "int",
        kind::FLOAT => "float",
        kind::STRING => "string",
        kind::BYTES => "bytes",
        kind::LIST => "list",
        kind::STRUCT => "struct",
        kind::NUMBER => "number",
        _ => "_",
    }
}

/// Name of a kind set (`int|string`).
pub fn kinds_name(k: u16) -> String {
    if k == kind::TOP {
        return "_".into();
    }
    let mut parts = Vec::new();
    let mut rest = k;
    if rest & kind::NUMBER == kind::NUMBER {
        parts.push("number");
        rest &= !kind::NUMBER;
    }
    for bit in [
        kind::NULL,
        kind::BOOL,
        kind::INT,
        kind::FLOAT,
        kind::STRING,
        kind::BYTES,
        kind::LIST,
        kind::STRUCT,
    ] {
        if rest & bit != 0 {
            parts.push(kind_name(bit));
        }
    }
    parts.join("|")
}

/// CUE text of a constraint.
pub fn cons_to_cue(c: &Cons) -> String {
    let mut parts: Vec<String> = Vec::new();
    let implied = c.bounds.iter().fold(0u16, |acc, (op, a)| {
        acc | match op {
            BoundOp::Match | BoundOp::NotMatch => kind::STRING,
            BoundOp::Ne => kind::SCALAR,
            _ => match a {
                Atom::Str(_) => kind::STRING,
                Atom::Bytes(_) => kind::BYTES,
                _ => kind::NUMBER,
            },
        }
    });
    let show_kind = c.bounds.is_empty() && c.validators.is_empty()
        || (c.kinds != implied && c.kinds != kind::TOP && c.kinds != kind::SCALAR);
    if show_kind {
        parts.push(kinds_name(c.kinds));
    }
    for (op, a) in &c.bounds {
        parts.push(format!("{}{}", op.as_str(), a.to_cue()));
    }
    for v in &c.validators {
        parts.push(v.name.to_string());
    }
    parts.join(" & ")
}

fn simplify_cons(
    kinds: u16,
    mut bounds: Vec<(BoundOp, Atom)>,
    validators: Vec<Validator>,
    positions: Vec<Pos>,
) -> Val {
    // Numeric bounds: keep the tightest lower and upper.
    let mut lower: Option<(BoundOp, Atom)> = None;
    let mut upper: Option<(BoundOp, Atom)> = None;
    let mut others = Vec::new();
    for (op, a) in bounds.drain(..) {
        match op {
            BoundOp::Gt | BoundOp::Ge if a.is_num() => {
                let replace = match &lower {
                    None => true,
                    Some((lop, la)) => match num_cmp(&a, la) {
                        Some(Ordering::Greater) => true,
                        Some(Ordering::Equal) => op == BoundOp::Gt && *lop == BoundOp::Ge,
                        _ => false,
                    },
                };
                if replace {
                    lower = Some((op, a));
                }
            }
            BoundOp::Lt | BoundOp::Le if a.is_num() => {
                let replace = match &upper {
                    None => true,
                    Some((uop, ua)) => match num_cmp(&a, ua) {
                        Some(Ordering::Less) => true,
                        Some(Ordering::Equal) => op == BoundOp::Lt && *uop == BoundOp::Le,
                        _ => false,
                    },
                };
                if replace {
                    upper = Some((op, a));
                }
            }
            _ => others.push((op, a)),
        }
    }
    if let (Some((lop, la)), Some((uop, ua))) = (&lower, &upper) {
        let ord = num_cmp(la, ua).unwrap_or(Ordering::Less);
        if ord == Ordering::Greater
            || (ord == Ordering::Equal && (*lop == BoundOp::Gt || *uop == BoundOp::Lt))
        {
            return Val::Bottom(bot(
                code::CONFLICT,
                format!(
                    "incompatible bounds {}{} and {}{}",
                    uop.as_str(),
                    ua.to_cue(),
                    lop.as_str(),
                    la.to_cue()
                ),
                positions,
                false,
            ));
        }
        if ord == Ordering::Equal && *lop == BoundOp::Ge && *uop == BoundOp::Le {
            if let Atom::Int(i) = la {
                return Val::Atom(Atom::Int(*i));
            }
        }
        if kinds == kind::INT {
            if let (Atom::Int(l), Atom::Int(u)) = (la, ua) {
                let lo = if *lop == BoundOp::Gt {
                    l.saturating_add(1)
                } else {
                    *l
                };
                let hi = if *uop == BoundOp::Lt {
                    u.saturating_sub(1)
                } else {
                    *u
                };
                if lo == hi {
                    return Val::Atom(Atom::Int(lo));
                }
            }
        }
    }
    let mut out = Vec::new();
    out.extend(lower);
    out.extend(upper);
    out.extend(others);
    Val::Cons(Rc::new(Cons {
        kinds,
        bounds: out,
        validators,
    }))
}

fn check_bound(
    op: BoundOp,
    x: &Atom,
    b: &Atom,
    cache: &mut HashMap<String, Option<regex::Regex>>,
) -> Option<bool> {
    use std::cmp::Ordering;
    let ord = match (x, b) {
        (Atom::Str(p), Atom::Str(q)) if matches!(op, BoundOp::Match | BoundOp::NotMatch) => {
            let re = cache
                .entry(q.to_string())
                .or_insert_with(|| regex::Regex::new(q).ok())
                .clone()?;
            let m = re.is_match(p);
            return Some(if op == BoundOp::Match { m } else { !m });
        }
        (Atom::Str(p), Atom::Str(q)) => p.cmp(q),
        (Atom::Bytes(p), Atom::Bytes(q)) => p.cmp(q),
        _ => {
            if op == BoundOp::Ne {
                return Some(!atoms_equal(x, b));
            }
            num_cmp(x, b)?
        }
    };
    Some(match op {
        BoundOp::Lt => ord == Ordering::Less,
        BoundOp::Le => ord != Ordering::Greater,
        BoundOp::Gt => ord == Ordering::Greater,
        BoundOp::Ge => ord != Ordering::Less,
        BoundOp::Ne => ord != Ordering::Equal,
        BoundOp::Match | BoundOp::NotMatch => false,
    })
}

/// `>=-max & <=max` for a float type.
fn float_bounds(max: &str) -> (u16, Option<Atom>, Option<Atom>) {
    let max = Decimal::parse(max).unwrap_or_else(Decimal::zero);
    (
        kind::NUMBER,
        Some(Atom::float(max.neg())),
        Some(Atom::float(max)),
    )
}

fn bounded_type(name: &str) -> Val {
    let (kinds, lo, hi): (u16, Option<Atom>, Option<Atom>) = match name {
        "int8" => (kind::INT, Some(Atom::Int(-128)), Some(Atom::Int(127))),
        "int16" => (kind::INT, Some(Atom::Int(-32768)), Some(Atom::Int(32767))),
        "int32" => (
            kind::INT,
            Some(Atom::Int(i128::from(i32::MIN))),
            Some(Atom::Int(i128::from(i32::MAX))),
        ),
        "rune" => (kind::INT, Some(Atom::Int(0)), Some(Atom::Int(0x10FFFF))),
        "int64" => (
            kind::INT,
            Some(Atom::Int(i128::from(i64::MIN))),
            Some(Atom::Int(i128::from(i64::MAX))),
        ),
        "int128" => (
            kind::INT,
            Some(Atom::Int(i128::MIN)),
            Some(Atom::Int(i128::MAX)),
        ),
        "uint" => (kind::INT, Some(Atom::Int(0)), None),
        "uint8" => (kind::INT, Some(Atom::Int(0)), Some(Atom::Int(255))),
        "uint16" => (kind::INT, Some(Atom::Int(0)), Some(Atom::Int(65535))),
        "uint32" => (
            kind::INT,
            Some(Atom::Int(0)),
            Some(Atom::Int(i128::from(u32::MAX))),
        ),
        "uint64" => (
            kind::INT,
            Some(Atom::Int(0)),
            Some(Atom::Int(i128::from(u64::MAX))),
        ),
        "uint128" => (
            kind::INT,
            Some(Atom::Int(0)),
            Some(Atom::int(Decimal::from_bigint(&num_bigint::BigInt::from(
                u128::MAX,
            )))),
        ),
        "float32" => float_bounds("3.40282346638528859811704183484516925440e+38"),
        _ => float_bounds("1.797693134862315708145274237317043567981e+308"),
    };
    let mut bounds = Vec::new();
    if let Some(l) = lo {
        bounds.push((BoundOp::Ge, l));
    }
    if let Some(h) = hi {
        bounds.push((BoundOp::Le, h));
    }
    Val::Cons(Rc::new(Cons {
        kinds,
        bounds,
        validators: Vec::new(),
    }))
}

fn binary_atoms(
    op: BinaryOp,
    a: Atom,
    b: Atom,
    pos: Pos,
    cache: &mut HashMap<String, Option<regex::Regex>>,
) -> Val {
    use Atom::*;
    let err = |msg: String| Val::Bottom(bot(code::OPERANDS, msg, vec![pos], false));
    let invalid = |a: &Atom, b: &Atom| {
        err(format!(
            "invalid operands {} and {} to '{}' (type {} and {})",
            a.to_cue(),
            b.to_cue(),
            op.as_str(),
            kind_name(a.kind()),
            kind_name(b.kind())
        ))
    };
    match op {
        BinaryOp::Equal | BinaryOp::NotEqual => {
            let eq = if a.is_num() && b.is_num() {
                num_cmp(&a, &b) == Some(Ordering::Equal)
            } else {
                a == b
            };
            let comparable = a.kind() == b.kind()
                || (a.kind() & kind::NUMBER != 0 && b.kind() & kind::NUMBER != 0)
                || matches!(a, Null)
                || matches!(b, Null);
            if !comparable {
                return invalid(&a, &b);
            }
            Val::Atom(Bool(eq == (op == BinaryOp::Equal)))
        }
        BinaryOp::Less | BinaryOp::LessEqual | BinaryOp::Greater | BinaryOp::GreaterEqual => {
            let bop = match op {
                BinaryOp::Less => BoundOp::Lt,
                BinaryOp::LessEqual => BoundOp::Le,
                BinaryOp::Greater => BoundOp::Gt,
                _ => BoundOp::Ge,
            };
            let comparable = a.kind() == b.kind() || (a.is_num() && b.is_num());
            if !comparable || matches!(a, Null | Bool(_)) {
                return invalid(&a, &b);
            }
            match check_bound(bop, &a, &b, cache) {
                Some(r) => Val::Atom(Bool(r)),
                None => invalid(&a, &b),
            }
        }
        BinaryOp::Match | BinaryOp::NotMatch => {
            let bop = if op == BinaryOp::Match {
                BoundOp::Match
            } else {
                BoundOp::NotMatch
            };
            match (&a, &b) {
                (Str(_), Str(_)) => match check_bound(bop, &a, &b, cache) {
                    Some(r) => Val::Atom(Bool(r)),
                    None => err("invalid regular expression".into()),
                },
                _ => invalid(&a, &b),
            }
        }
        BinaryOp::Add => match (&a, &b) {
            (Str(x), Str(y)) => Val::Atom(Str(Rc::from(format!("{x}{y}")))),
            (Bytes(x), Bytes(y)) => {
                let mut v = x.to_vec();
                v.extend_from_slice(y);
                Val::Atom(Bytes(Rc::from(v)))
            }
            _ => arith(op, &a, &b, pos).unwrap_or_else(|| invalid(&a, &b)),
        },
        BinaryOp::Sub => arith(op, &a, &b, pos).unwrap_or_else(|| invalid(&a, &b)),
        BinaryOp::Mul => match (&a, &b) {
            (Str(s), Int(n)) | (Int(n), Str(s)) => {
                let n = usize::try_from((*n).max(0)).unwrap_or(usize::MAX);
                if s.len().saturating_mul(n) > MAX_REPEAT {
                    return err(format!("string repeated {n} times is too long"));
                }
                Val::Atom(Str(Rc::from(s.repeat(n))))
            }
            _ => arith(op, &a, &b, pos).unwrap_or_else(|| invalid(&a, &b)),
        },
        BinaryOp::Div => match (a.dec(), b.dec()) {
            (Some(x), Some(y)) => match x.quo(&y) {
                Ok(q) if !q.in_range() => exponent_error(pos),
                Ok(q) => Val::Atom(Atom::float(q)),
                Err(NumError::DivisionByZero) => err("failed arithmetic: division by zero".into()),
            },
            _ => invalid(&a, &b),
        },
        _ => invalid(&a, &b),
    }
}

/// The error of an arithmetic result beyond CUE's exponent range.
fn exponent_error(pos: Pos) -> Val {
    Val::Bottom(bot(
        code::OPERANDS,
        "failed arithmetic: exponent out of range",
        vec![pos],
        false,
    ))
}

/// The largest list index CUE accepts.
const MAX_INDEX: i128 = 268_435_454;

/// Most bytes a string or list repetition (`"ab" * n`) may produce.
const MAX_REPEAT: usize = 1 << 30;

/// Below this an `i128` result of `+`, `-` or `*` needs no rounding (it has
/// at most 24 digits).
const EXACT_LIMIT: i128 = 1_000_000_000_000_000_000_000_000;

/// `+`, `-`, `*` on two numbers with CUE's decimal context: ints stay ints,
/// anything with a float is a float; `None` if either is not a number.
fn arith(op: BinaryOp, a: &Atom, b: &Atom, pos: Pos) -> Option<Val> {
    if let (Atom::Int(x), Atom::Int(y)) = (a, b) {
        let r = match op {
            BinaryOp::Add => x.checked_add(*y),
            BinaryOp::Sub => x.checked_sub(*y),
            _ => x
                .checked_mul(*y)
                .filter(|r| *r != 0 || (*x < 0) == (*y < 0)),
        };
        if let Some(r) = r.filter(|r| r.unsigned_abs() < EXACT_LIMIT.unsigned_abs()) {
            return Some(Val::Atom(Atom::Int(r)));
        }
    }
    if !a.is_num() || !b.is_num() {
        return None;
    }
    let (x, y) = (a.dec()?, b.dec()?);
    let r = match op {
        BinaryOp::Add => x.add(&y),
        BinaryOp::Sub => x.sub(&y),
        _ => x.mul(&y),
    };
    if !r.in_range() {
        return Some(exponent_error(pos));
    }
    Some(Val::Atom(
        if a.kind() == kind::INT && b.kind() == kind::INT {
            Atom::int(r)
        } else {
            Atom::float(r)
        },
    ))
}

/// `div`, `mod`, `quo` and `rem` on two int atoms: exact, as CUE's big
/// integer division (a fast path for `i128`).
fn int_div_atoms(op: IntDivOp, a: &Val, b: &Val, pos: Pos) -> Val {
    let (Val::Atom(a), Val::Atom(b)) = (a, b) else {
        return Val::Bottom(bot(
            code::OPERANDS,
            "arguments must be integers",
            vec![pos],
            false,
        ));
    };
    if !matches!(a, Atom::Int(_) | Atom::BigInt(_)) || !matches!(b, Atom::Int(_) | Atom::BigInt(_))
    {
        return Val::Bottom(bot(
            code::OPERANDS,
            "arguments must be integers",
            vec![pos],
            false,
        ));
    }
    if let (Atom::Int(x), Atom::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        if y == 0 {
            return Val::Bottom(bot(code::OPERANDS, "division by zero", vec![pos], false));
        }
        let r = match op {
            IntDivOp::Div => x.checked_div_euclid(y),
            IntDivOp::Mod => x.checked_rem_euclid(y),
            IntDivOp::Quo => x.checked_div(y),
            IntDivOp::Rem => x.checked_rem(y),
        };
        if let Some(r) = r {
            return Val::Atom(Atom::Int(r));
        }
    }
    let (Some(x), Some(y)) = (a.dec(), b.dec()) else {
        return Val::Bottom(bot(
            code::OPERANDS,
            "arguments must be integers",
            vec![pos],
            false,
        ));
    };
    match crate::num::int_div(op, &x.to_bigint_trunc(), &y.to_bigint_trunc()) {
        Some(r) => Val::Atom(Atom::int(Decimal::from_bigint(&r))),
        None => Val::Bottom(bot(code::OPERANDS, "division by zero", vec![pos], false)),
    }
}

/// Converts concrete data to an atom (lists and structs excluded).
fn value_to_atom(v: &Value) -> Atom {
    match v {
        Value::Null => Atom::Null,
        Value::Bool(b) => Atom::Bool(*b),
        Value::Int(i) => Atom::Int(*i),
        Value::BigInt(d) => Atom::int(d.clone()),
        Value::Float(d) => Atom::float(d.clone()),
        Value::String(s) => Atom::Str(Rc::from(s.as_str())),
        Value::Bytes(b) => Atom::Bytes(Rc::from(b.as_slice())),
        Value::List(_) | Value::Struct(_) => Atom::Null,
    }
}

fn atom_to_value(a: &Atom) -> Value {
    match a {
        Atom::Null => Value::Null,
        Atom::Bool(b) => Value::Bool(*b),
        Atom::Int(i) => Value::Int(*i),
        Atom::BigInt(d) => Value::BigInt((**d).clone()),
        Atom::Float(d) => Value::Float((**d).clone()),
        Atom::Str(s) => Value::String(s.to_string()),
        Atom::Bytes(b) => Value::Bytes(b.to_vec()),
    }
}

fn value_to_val(engine: &mut Engine, v: &Value, pos: Pos) -> Val {
    match v {
        Value::List(_) | Value::Struct(_) => {
            let w = engine.new_vertex(None, None);
            engine.vm(w).conjs.push(Conj {
                kind: CK::Data(Rc::new(v.clone()), pos),
                env: None,
                ci: CI::default(),
            });
            Val::V(w)
        }
        other => Val::Atom(value_to_atom(other)),
    }
}

/// CUE text of concrete data.
pub fn value_to_cue(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(d) | Value::Float(d) => d.to_string(),
        Value::String(s) => quote(s),
        Value::Bytes(b) => format!("'{}'", String::from_utf8_lossy(b)),
        Value::List(l) => format!(
            "[{}]",
            l.iter().map(value_to_cue).collect::<Vec<_>>().join(", ")
        ),
        Value::Struct(s) => format!(
            "{{{}}}",
            s.iter()
                .map(|(k, v)| format!("{}: {}", cue_label(k), value_to_cue(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod order_tests {
    use super::{merge_fronts, Label};

    fn labels(s: &str) -> Vec<Label> {
        s.bytes().map(|b| Label::Regular(u32::from(b))).collect()
    }

    fn merged(lists: &[&str]) -> String {
        let order = merge_fronts(lists.iter().map(|s| labels(s)).collect());
        order
            .iter()
            .map(|l| match l {
                Label::Regular(c) => char::from(u8::try_from(*c).unwrap_or(b'?')),
                _ => '?',
            })
            .collect()
    }

    // Each expectation was checked against `cue export` (v0.4.0-beta.1):
    // `x: {a: 1, b: 2, c: 3, ("d"): 4, ("e"): 5}` exports `a b d c e`.
    #[test]
    fn last_label_of_a_list_waits_for_the_fallback() {
        assert_eq!(merged(&["abc", "de"]), "abdce");
        assert_eq!(merged(&["ab", "de"]), "adbe");
        assert_eq!(merged(&["abcd", "efg"]), "abcefdg");
    }

    #[test]
    fn one_list_keeps_its_order() {
        assert_eq!(merged(&["abcde"]), "abcde");
        assert_eq!(merged(&["ba", "ba"]), "ba");
    }
}
