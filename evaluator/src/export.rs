//! Manifestation: evaluated vertices to JSON, YAML and CUE text, gathering
//! every error with its path.

use std::rc::Rc;

use indexmap::IndexMap;

use crate::eval::{cue_label, quote, Atom, Bottom, Engine, VId, Val};
use crate::ir::Label;
use crate::value::Value;

/// An error found while exporting, with the CUE path.
#[derive(Debug, Clone)]
pub struct PathError {
    /// Dotted path (`a.b.2.c`).
    pub path: String,
    /// The error.
    pub error: Rc<Bottom>,
}

/// Maximum nesting exported.
const MAX_EXPORT_DEPTH: u32 = 300;

impl Engine {
    /// The dotted path of a vertex.
    pub fn path_of(&self, v: VId) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(v);
        let mut n = 0;
        while let Some(c) = cur {
            let vx = &self.vs[c as usize];
            if let Some(l) = vx.label {
                parts.push(self.label_text(l));
            }
            cur = vx.parent;
            n += 1;
            if n > 10_000 {
                break;
            }
        }
        parts.reverse();
        parts.join(".")
    }

    /// A label as shown in paths.
    pub fn label_text(&self, l: Label) -> String {
        match l {
            Label::Regular(s) => {
                let t = self.interner.text(s);
                cue_label(t)
            }
            Label::Def(s) | Label::Hidden(s, _) | Label::HiddenDef(s, _) => {
                self.interner.text(s).to_string()
            }
            Label::Let(i) => format!("let{i}"),
            Label::Index(i) => i.to_string(),
        }
    }

    /// Exports a vertex as concrete data, gathering all errors.
    pub fn export(&mut self, v: VId) -> Result<Value, Vec<PathError>> {
        let mut errs = Vec::new();
        let out = self.export_rec(v, 0, &mut errs);
        self.validate_hidden(v, 0, &mut errs);
        // Like `cue export`, incomplete values are only reported when there
        // is no real error.
        if errs.iter().any(|e| !e.error.incomplete) {
            errs.retain(|e| !e.error.incomplete);
        }
        // An unresolved reference is a compile error in CUE: `cue export`
        // reports those alone, before evaluating anything.
        let not_found = crate::eval::code::NOT_FOUND;
        if errs.iter().any(|e| e.error.code == not_found) {
            errs.retain(|e| e.error.code == not_found);
        }
        if errs.is_empty() {
            if let Some(out) = out {
                return Ok(out);
            }
        }
        Err(errs)
    }

    fn push_err(&self, v: VId, err: Rc<Bottom>, errs: &mut Vec<PathError>) {
        if err.code == crate::eval::code::NOT_ALLOWED && !err.causes.is_empty() {
            // Each field not allowed is an error of its own, as in CUE.
            let mut first = (*err).clone();
            let rest = std::mem::take(&mut first.causes);
            self.push_err(v, Rc::new(first), errs);
            for cause in rest {
                self.push_err(v, cause, errs);
            }
            return;
        }
        let path = self.path_of(v);
        if errs
            .iter()
            .any(|e| e.path == path && e.error.msg == err.msg)
        {
            return;
        }
        errs.push(PathError { path, error: err });
    }

    fn export_rec(&mut self, v: VId, depth: u32, errs: &mut Vec<PathError>) -> Option<Value> {
        cuedag_parser::stack::grow(|| self.export_rec_inner(v, depth, errs))
    }

    fn export_rec_inner(&mut self, v: VId, depth: u32, errs: &mut Vec<PathError>) -> Option<Value> {
        let w = self.export_target(v, depth, errs)?;
        let vx = &self.vs[w as usize];
        if vx.is_list {
            let arcs: Vec<VId> = vx.arcs.values().copied().collect();
            let mut out = Vec::with_capacity(arcs.len());
            let mut ok = true;
            for a in arcs {
                match self.export_rec(a, depth + 1, errs) {
                    Some(x) => out.push(x),
                    None => ok = false,
                }
            }
            let out = Value::List(out);
            return (ok && self.run_validators(v, w, &out, errs)).then_some(out);
        }
        if vx.is_struct {
            let arcs: Vec<(Label, VId)> = vx.arcs.iter().map(|(l, a)| (*l, *a)).collect();
            let mut out = IndexMap::with_capacity(arcs.len());
            let mut ok = true;
            for (l, a) in arcs {
                let Label::Regular(sym) = l else { continue };
                if self.vs[a as usize].optional {
                    continue;
                }
                match self.export_rec(a, depth + 1, errs) {
                    Some(x) => {
                        out.insert(self.interner.text(sym).to_string(), x);
                    }
                    None => ok = false,
                }
            }
            let out = Value::Struct(out);
            return (ok && self.run_validators(v, w, &out, errs)).then_some(out);
        }
        match &vx.value {
            Val::Atom(a) => Some(atom_value(a)),
            _ => {
                self.push_incomplete(v, w, errs);
                None
            }
        }
    }

    /// The vertex `export_rec` manifests for `v` (its default), evaluated;
    /// `None`, with the error recorded, when `v` is too deep, an error, or
    /// an unresolved disjunction.
    fn export_target(&mut self, v: VId, depth: u32, errs: &mut Vec<PathError>) -> Option<VId> {
        if depth > MAX_EXPORT_DEPTH {
            let err = Rc::new(Bottom {
                code: crate::eval::code::DEPTH,
                msg: "value too deep (structural cycle?)".into(),
                pos: Vec::new(),
                incomplete: false,
                hint: None,
                causes: Vec::new(),
            });
            self.push_err(v, err, errs);
            return None;
        }
        self.eval_vertex(v);
        let w = match self.resolve_default(v) {
            Ok(w) => w,
            Err(e) => {
                self.push_err(v, e, errs);
                return None;
            }
        };
        let vx = &self.vs[w as usize];
        if let Val::Bottom(b) = &vx.value {
            let b = b.clone();
            let fields_evaluated = b.code == crate::eval::code::NOT_ALLOWED && vx.is_struct;
            self.push_err(v, b, errs);
            if fields_evaluated {
                // A closedness error leaves the fields evaluated: report
                // their errors too, as CUE does.
                let arcs: Vec<(Label, VId)> = self.vs[w as usize]
                    .arcs
                    .iter()
                    .map(|(l, a)| (*l, *a))
                    .collect();
                for (l, a) in arcs {
                    if l.is_regular() && !self.vs[a as usize].optional {
                        let _ = self.export_rec(a, depth + 1, errs);
                    }
                }
            }
            return None;
        }
        if let Some(inc) = vx.incomplete.clone() {
            self.push_err(v, inc, errs);
            return None;
        }
        Some(w)
    }

    /// Records that the scalar at `v` (manifested as `w`) is not concrete.
    fn push_incomplete(&mut self, v: VId, w: VId, errs: &mut Vec<PathError>) {
        let shown = self.val_to_cue(&self.vs[w as usize].value.clone());
        let pos = self.vs[w as usize].value_pos.clone();
        let mut pos = if pos.is_empty() {
            self.vs[w as usize].decl_pos.clone()
        } else {
            pos
        };
        pos.sort();
        pos.dedup();
        let err = Rc::new(Bottom {
            code: crate::eval::code::INCOMPLETE,
            msg: format!("incomplete value {shown}"),
            pos,
            incomplete: true,
            hint: None,
            causes: Vec::new(),
        });
        self.push_err(v, err, errs);
    }

    /// The errors [`export`](Self::export) would report for `v`, without
    /// building the data (only values with validators are built, to run
    /// them): for error checks and concreteness tests.
    pub fn check(&mut self, v: VId) -> Result<(), Vec<PathError>> {
        let mut errs = Vec::new();
        let ok = self.check_rec(v, 0, &mut errs);
        self.validate_hidden(v, 0, &mut errs);
        if errs.iter().any(|e| !e.error.incomplete) {
            errs.retain(|e| !e.error.incomplete);
        }
        if ok && errs.is_empty() {
            return Ok(());
        }
        Err(errs)
    }

    /// [`export_rec`](Self::export_rec) without the data: whether `v`
    /// exports, errors recorded in the same order.
    fn check_rec(&mut self, v: VId, depth: u32, errs: &mut Vec<PathError>) -> bool {
        cuedag_parser::stack::grow(|| self.check_rec_inner(v, depth, errs))
    }

    fn check_rec_inner(&mut self, v: VId, depth: u32, errs: &mut Vec<PathError>) -> bool {
        let Some(w) = self.export_target(v, depth, errs) else {
            return false;
        };
        let vx = &self.vs[w as usize];
        if vx.is_list || vx.is_struct {
            if !vx.validators.is_empty() {
                return self.export_rec(v, depth, errs).is_some();
            }
            let is_list = vx.is_list;
            let arcs: Vec<(Label, VId)> = vx.arcs.iter().map(|(l, a)| (*l, *a)).collect();
            let mut ok = true;
            for (l, a) in arcs {
                if !is_list && (!matches!(l, Label::Regular(_)) || self.vs[a as usize].optional) {
                    continue;
                }
                ok &= self.check_rec(a, depth + 1, errs);
            }
            return ok;
        }
        if matches!(vx.value, Val::Atom(_)) {
            return true;
        }
        self.push_incomplete(v, w, errs);
        false
    }

    fn run_validators(&mut self, v: VId, w: VId, value: &Value, errs: &mut Vec<PathError>) -> bool {
        let validators = self.vs[w as usize].validators.clone();
        for val in validators {
            let mut args = vec![value.clone()];
            args.extend(val.args.iter().cloned());
            let msg = match (val.func.f)(&args) {
                Ok(Value::Bool(true)) => continue,
                Ok(_) => format!(
                    "invalid value {} (does not satisfy {})",
                    crate::eval::value_to_cue(value),
                    val.name
                ),
                Err(e) => format!("invalid value {} ({e})", crate::eval::value_to_cue(value)),
            };
            let mut pos = self.vs[w as usize].decl_pos.clone();
            pos.sort();
            let err = Rc::new(Bottom {
                code: crate::eval::code::INVALID,
                msg,
                pos,
                incomplete: false,
                hint: None,
                causes: Vec::new(),
            });
            self.push_err(v, err, errs);
            return false;
        }
        true
    }

    /// Reports fatal errors in definitions and hidden fields (not exported,
    /// but still checked by `cue export`).
    fn validate_hidden(&mut self, v: VId, depth: u32, errs: &mut Vec<PathError>) {
        if depth > 30 {
            return;
        }
        self.eval_vertex(v);
        let Ok(w) = self.resolve_default(v) else {
            return;
        };
        let arcs: Vec<(Label, VId)> = self.vs[w as usize]
            .arcs
            .iter()
            .map(|(l, a)| (*l, *a))
            .collect();
        for (l, a) in arcs {
            if matches!(l, Label::Let(_)) {
                continue;
            }
            if self.vs[a as usize].optional {
                continue;
            }
            if l.is_def() || l.is_hidden() {
                self.hidden_fatal_errors(a, 0, errs);
            } else {
                self.validate_hidden(a, depth + 1, errs);
            }
        }
    }

    /// Every fatal error in the subtree of a hidden field or definition
    /// (as `first_fatal` walks it), each at the deepest vertex holding it.
    fn hidden_fatal_errors(&mut self, v: VId, depth: u32, errs: &mut Vec<PathError>) {
        self.eval_vertex(v);
        if let Val::Bottom(b) = &self.vs[v as usize].value {
            let fields_evaluated =
                b.code == crate::eval::code::NOT_ALLOWED && self.vs[v as usize].is_struct;
            if !b.incomplete {
                let err = b.clone();
                let at = self.find_error_vertex(v, &err, 0).unwrap_or(v);
                self.push_err(at, err, errs);
            }
            if !fields_evaluated {
                return;
            }
        }
        if depth > 60 || self.vs[v as usize].disj.is_some() {
            return;
        }
        let arcs: Vec<(Label, VId)> = self.vs[v as usize]
            .arcs
            .iter()
            .map(|(l, a)| (*l, *a))
            .collect();
        for (l, a) in arcs {
            if l.is_def() || matches!(l, Label::Let(_)) || self.vs[a as usize].optional {
                continue;
            }
            self.hidden_fatal_errors(a, depth + 1, errs);
        }
    }

    fn find_error_vertex(&mut self, v: VId, err: &Rc<Bottom>, depth: u32) -> Option<VId> {
        if depth > 60 {
            return None;
        }
        if let Val::Bottom(b) = &self.vs[v as usize].value {
            if Rc::ptr_eq(b, err) {
                return Some(v);
            }
        }
        let arcs: Vec<VId> = self.vs[v as usize].arcs.values().copied().collect();
        for a in arcs {
            if self.vs[a as usize].state == crate::eval::State::New {
                continue;
            }
            if let Some(x) = self.find_error_vertex(a, err, depth + 1) {
                return Some(x);
            }
        }
        None
    }

    /// CUE text of a vertex as a file body (`cue eval` style), non-concrete
    /// values allowed. Definitions are included when `defs` is true.
    pub fn cue_text(&mut self, v: VId, defs: bool) -> String {
        let mut out = String::new();
        self.eval_vertex(v);
        let w = self.resolve_default(v).unwrap_or(v);
        if self.vs[w as usize].is_struct {
            self.write_fields(w, 0, defs, &mut out);
        } else {
            let s = self.write_value(w, 0, defs);
            out.push_str(&s);
            out.push('\n');
        }
        out
    }

    fn write_fields(&mut self, w: VId, indent: usize, defs: bool, out: &mut String) {
        let arcs: Vec<(Label, VId)> = self.vs[w as usize]
            .arcs
            .iter()
            .map(|(l, a)| (*l, *a))
            .collect();
        for (l, a) in arcs {
            match l {
                Label::Regular(_) => {}
                Label::Def(_) if defs => {}
                _ => continue,
            }
            let opt = if self.vs[a as usize].optional {
                if !defs {
                    continue;
                }
                "?"
            } else {
                ""
            };
            let name = self.label_text(l);
            let value = self.write_value(a, indent, defs);
            out.push_str(&"\t".repeat(indent));
            out.push_str(&format!("{name}{opt}: {value}\n"));
        }
    }

    fn write_value(&mut self, v: VId, indent: usize, defs: bool) -> String {
        if indent > 60 {
            return "_|_ // too deep".into();
        }
        self.eval_vertex(v);
        if let Some(arms) = self.vs[v as usize].disj.clone() {
            let parts: Vec<String> = arms
                .iter()
                .map(|(a, d)| {
                    let s = self.write_value(*a, indent, defs);
                    if *d {
                        format!("*{s}")
                    } else {
                        s
                    }
                })
                .collect();
            return parts.join(" | ");
        }
        let vx = &self.vs[v as usize];
        if let Val::Bottom(b) = &vx.value {
            return format!("_|_ // {}", b.msg);
        }
        if vx.is_list {
            let arcs: Vec<VId> = vx.arcs.values().copied().collect();
            let open = vx.list_open;
            if arcs.is_empty() {
                return if open { "[...]".into() } else { "[]".into() };
            }
            let mut s = String::from("[");
            for a in arcs {
                s.push('\n');
                s.push_str(&"\t".repeat(indent + 1));
                let x = self.write_value(a, indent + 1, defs);
                s.push_str(&x);
                s.push(',');
            }
            if open {
                s.push('\n');
                s.push_str(&"\t".repeat(indent + 1));
                s.push_str("...");
            }
            s.push('\n');
            s.push_str(&"\t".repeat(indent));
            s.push(']');
            return s;
        }
        if vx.is_struct {
            let mut body = String::new();
            self.write_fields(v, indent + 1, defs, &mut body);
            if body.is_empty() {
                return "{}".into();
            }
            return format!("{{\n{body}{}}}", "\t".repeat(indent));
        }
        let value = vx.value.clone();
        match &value {
            Val::Atom(a) => a.to_cue_literal(),
            other => self.val_to_cue(other),
        }
    }
}

fn atom_value(a: &Atom) -> Value {
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

/// JSON text like `cue export` (4-space indent, trailing newline).
pub fn to_json_text(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, 0, &mut out);
    out.push('\n');
    out
}

fn write_json(v: &Value, indent: usize, out: &mut String) {
    cuedag_parser::stack::grow(|| write_json_inner(v, indent, out))
}

fn write_json_inner(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::List(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                push_indent(indent + 1, out);
                write_json(item, indent + 1, out);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            push_indent(indent, out);
            out.push(']');
        }
        Value::Struct(fields) => {
            if fields.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{\n");
            let n = fields.len();
            for (i, (k, item)) in fields.iter().enumerate() {
                push_indent(indent + 1, out);
                push_json_string(k, out);
                out.push_str(": ");
                write_json(item, indent + 1, out);
                if i + 1 < n {
                    out.push(',');
                }
                out.push('\n');
            }
            push_indent(indent, out);
            out.push('}');
        }
        Value::BigInt(d) | Value::Float(d) => out.push_str(&d.to_string()),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::String(s) => push_json_string(s, out),
        other => out.push_str(&other.to_json().to_string()),
    }
}

/// Four spaces per level.
fn push_indent(indent: usize, out: &mut String) {
    for _ in 0..indent {
        out.push_str("    ");
    }
}

/// Appends the JSON string literal of `s` with Go's HTML-safe escaping, as
/// `cue export` does.
fn push_json_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// YAML text like cue's yaml.v3 encoder (indent 2).
pub fn to_yaml_text(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Struct(f) if !f.is_empty() => write_yaml_map(f, 0, &mut out),
        Value::List(l) if !l.is_empty() => write_yaml_list(l, 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn write_yaml_map(fields: &IndexMap<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in fields {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_key(k));
        out.push(':');
        write_yaml_child(v, indent, out);
    }
}

fn write_yaml_child(v: &Value, indent: usize, out: &mut String) {
    cuedag_parser::stack::grow(|| write_yaml_child_inner(v, indent, out))
}

fn write_yaml_child_inner(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Struct(f) if !f.is_empty() => {
            out.push('\n');
            write_yaml_map(f, indent + 2, out);
        }
        Value::List(l) if !l.is_empty() => {
            out.push('\n');
            write_yaml_list(l, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&yaml_scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn write_yaml_list(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Struct(f) if !f.is_empty() => {
                let mut inner = String::new();
                write_yaml_map(f, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start());
            }
            Value::List(l) if !l.is_empty() => {
                let mut inner = String::new();
                write_yaml_list(l, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start());
            }
            other => {
                out.push(' ');
                out.push_str(&yaml_scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn yaml_key(k: &str) -> String {
    if yaml_needs_quote(k) {
        quote(k)
    } else {
        k.to_string()
    }
}

fn yaml_needs_quote(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "null" | "~" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) {
        return true;
    }
    if s.parse::<f64>().is_ok() || s.starts_with("0x") || s.starts_with("0o") {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@` ".contains(first) {
        return !(first == '-' && s.len() > 1 && !s.starts_with("- ") && s != "---")
            || s.starts_with("--");
    }
    if s.ends_with(' ') || s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return true;
    }
    s.chars().any(|c| c.is_control())
}

/// A number as CUE's YAML encoder writes it: an int's exponent in
/// lowercase (`1.23e+25`), a float's as the decimal prints it (`1E+3`), with
/// a point when its text has neither point nor exponent (`5.`).
pub(crate) fn yaml_number(d: &crate::num::Decimal, is_int: bool) -> String {
    let text = d.to_string();
    if is_int {
        text.to_lowercase()
    } else if text.contains(['.', 'E']) {
        text
    } else {
        format!("{text}.")
    }
}

fn yaml_scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(d) => yaml_number(d, true),
        Value::Float(d) => yaml_number(d, false),
        Value::String(s) => {
            if s.contains('\n') && !s.chars().any(|c| c.is_control() && c != '\n') {
                let chomp = if s.ends_with('\n') { "" } else { "-" };
                let body = s.strip_suffix('\n').unwrap_or(s);
                let mut out = format!("|{chomp}");
                for line in body.split('\n') {
                    out.push('\n');
                    if !line.is_empty() {
                        out.push_str(&" ".repeat(indent));
                        out.push_str(line);
                    }
                }
                out
            } else if yaml_needs_quote(s) {
                quote(s)
            } else {
                s.clone()
            }
        }
        Value::Bytes(_) => v.to_json().to_string(),
        Value::List(_) => "[]".into(),
        Value::Struct(_) => "{}".into(),
    }
}
