//! The shape of the syntax tree for each construct, printed as compact
//! S-expressions and checked with `expect!` (update with `UPDATE_EXPECT=1`).

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cuedag_parser::ast::*;
use expect_test::{expect, Expect};

fn label(l: &Label) -> String {
    match l {
        Label::Ident(i) => i.name.clone(),
        Label::String(s) => string(s),
        Label::Paren(p) => format!("({})", expr(&p.expr)),
        Label::Pattern(p) => match &p.alias {
            Some(a) => format!("[{}={}]", a.name, expr(&p.expr)),
            None => format!("[{}]", expr(&p.expr)),
        },
        Label::Alias(a) => format!("{}={}", a.alias.name, label(&a.label)),
    }
}

fn string(s: &StringLit) -> String {
    let mut out = String::new();
    if s.bytes {
        out.push('b');
    }
    if s.multiline {
        out.push('m');
    }
    for _ in 0..s.hashes {
        out.push('#');
    }
    out.push('"');
    for part in &s.parts {
        match part {
            StringPart::Text { text, .. } => out.push_str(&text.escape_debug().to_string()),
            StringPart::Interp { expr: e, .. } => {
                out.push_str("\\(");
                out.push_str(&expr(e));
                out.push(')');
            }
        }
    }
    out.push('"');
    out
}

fn clause(c: &Clause) -> String {
    match c {
        Clause::For(f) => match &f.key {
            Some(k) => format!("for {}, {} in {}", k.name, f.value.name, expr(&f.source)),
            None => format!("for {} in {}", f.value.name, expr(&f.source)),
        },
        Clause::If(i) => format!("if {}", expr(&i.condition)),
        Clause::Let(l) => format!("let {} = {}", l.name.name, expr(&l.expr)),
    }
}

fn comprehension(c: &Comprehension) -> String {
    let clauses: Vec<String> = c.clauses.iter().map(clause).collect();
    format!("<{}> {}", clauses.join(" "), structure(&c.body))
}

fn structure(s: &StructLit) -> String {
    let decls: Vec<String> = s.decls.iter().map(decl).collect();
    if s.implicit {
        format!("{{~ {}}}", decls.join("; "))
    } else {
        format!("{{{}}}", decls.join("; "))
    }
}

fn decl(d: &Decl) -> String {
    match d {
        Decl::Field(f) => {
            let marker = match f.constraint {
                Constraint::Regular => "",
                Constraint::Optional => "?",
                Constraint::Required => "!",
            };
            let mut out = format!("{}{marker}: {}", label(&f.label), expr(&f.value));
            for a in &f.attrs {
                out.push_str(&format!(" @{}({})", a.name, a.body));
            }
            if !f.doc.is_empty() {
                out = format!("/*{}*/ {out}", f.doc.text());
            }
            out
        }
        Decl::Embed(e) => {
            if e.doc.is_empty() {
                format!("embed {}", expr(&e.expr))
            } else {
                format!("/*{}*/ embed {}", e.doc.text(), expr(&e.expr))
            }
        }
        Decl::Let(l) => format!("let {} = {}", l.name.name, expr(&l.expr)),
        Decl::Comprehension(c) => comprehension(c),
        Decl::Ellipsis(e) => ellipsis(e),
        Decl::Attribute(a) => format!("@{}({})", a.name, a.body),
        Decl::Bad(_) => "BAD".to_owned(),
    }
}

fn ellipsis(e: &Ellipsis) -> String {
    match &e.ty {
        Some(t) => format!("...{}", expr(t)),
        None => "...".to_owned(),
    }
}

fn expr(e: &Expr) -> String {
    match e {
        Expr::Ident(i) => i.name.clone(),
        Expr::Top { .. } => "_".to_owned(),
        Expr::Bottom { .. } => "_|_".to_owned(),
        Expr::Null { .. } => "null".to_owned(),
        Expr::Bool { value, .. } => value.to_string(),
        Expr::Number(n) => match &n.value {
            Number::Int(v) => v.to_string(),
            Number::BigInt(v) => v.clone(),
            Number::Float(f) => format!("f{f}"),
        },
        Expr::String(s) => string(s),
        Expr::Struct(s) => structure(s),
        Expr::List(l) => {
            let elems: Vec<String> = l
                .elems
                .iter()
                .map(|el| match el {
                    ListElem::Expr(e) => expr(e),
                    ListElem::Comprehension(c) => comprehension(c),
                    ListElem::Ellipsis(e) => ellipsis(e),
                })
                .collect();
            format!("[{}]", elems.join(", "))
        }
        Expr::Selector { base, label: l, .. } => format!("{}.{}", expr(base), label(l)),
        Expr::Index { base, index, .. } => format!("{}[{}]", expr(base), expr(index)),
        Expr::Slice {
            base, low, high, ..
        } => format!(
            "{}[{}:{}]",
            expr(base),
            low.as_deref().map(expr).unwrap_or_default(),
            high.as_deref().map(expr).unwrap_or_default()
        ),
        Expr::Call { func, args, .. } => {
            let args: Vec<String> = args.iter().map(expr).collect();
            format!("{}({})", expr(func), args.join(", "))
        }
        Expr::Unary { op, expr: x, .. } => format!("({op:?} {})", expr(x)),
        Expr::Binary { op, lhs, rhs, .. } => {
            format!("({} {} {})", op.as_str(), expr(lhs), expr(rhs))
        }
        Expr::Paren { expr: x, .. } => format!("(paren {})", expr(x)),
        Expr::Alias { alias, expr: x, .. } => format!("{}={}", alias.name, expr(x)),
        Expr::Bad(_) => "BAD".to_owned(),
    }
}

fn file(text: &str) -> String {
    let parse = cuedag_parser::parse(text);
    let mut out = String::new();
    for attr in &parse.file.attrs {
        out.push_str(&format!("@{}({})\n", attr.name, attr.body));
    }
    if let Some(p) = &parse.file.package {
        if !p.doc.is_empty() {
            out.push_str(&format!("/*{}*/ ", p.doc.text()));
        }
        out.push_str(&format!("package {}\n", p.name.name));
    }
    for i in &parse.file.imports {
        out.push_str(&format!(
            "import {} {:?} as {}\n",
            i.alias.as_ref().map_or("-", |a| a.name.as_str()),
            i.path,
            i.local_name()
        ));
    }
    for d in &parse.file.decls {
        out.push_str(&decl(d));
        out.push('\n');
    }
    for d in &parse.errors {
        out.push_str(&format!("error {} {}\n", d.code, d.message));
    }
    assert_eq!(cuedag_parser::print(&parse), text);
    out
}

fn check(text: &str, expected: Expect) {
    expected.assert_eq(&file(text));
}

#[test]
fn precedence_follows_cue() {
    check(
        "a: 1 | 2 & 3 || 4 && 5 == 6 + 7 * 8\nb: *1 | int & >=0\nc: -a.b[0] * +2 / 3 - 4\n",
        expect![[r#"
            a: (| 1 (& 2 (|| 3 (&& 4 (== 5 (+ 6 (* 7 8)))))))
            b: (| (Default 1) (& int (GreaterEqual 0)))
            c: (- (/ (* (Neg a.b[0]) (Plus 2)) 3) 4)
        "#]],
    );
}

#[test]
fn unary_bounds_and_regexps() {
    check(
        "a: !=\"\"\nb: =~\"^x\" & !~\"y$\"\nc: <1 | <=2 | >3 | >=4\nd: !x\ne: a =~ \"r\"\n",
        expect![[r#"
            a: (NotEqual "")
            b: (& (Match "^x") (NotMatch "y$"))
            c: (| (| (| (Less 1) (LessEqual 2)) (Greater 3)) (GreaterEqual 4))
            d: (Not x)
            e: (=~ a "r")
        "#]],
    );
}

#[test]
fn shorthand_fields_nest_implicit_structs() {
    check(
        "a: b: c: 1\n$dagger: task: _name: \"Exec\"\nx?: y!: z: 2 @attr(v)\n",
        expect![[r#"
            a: {~ b: {~ c: 1}}
            $dagger: {~ task: {~ _name: "Exec"}}
            x?: {~ y!: {~ z: 2 @attr(v)}}
        "#]],
    );
}

#[test]
fn labels_of_every_kind() {
    check(
        "\"q-l\": 1\n(k): 2\n[string]: 3\n[N=string]: {n: N}\n[=~\"^x\"]: 4\nX=lab: 5\nY=\"s\": 6\nZ=[string]: 7\npackage: 8\nif: 9\n\"\\(k)-x\": 10\n#D: 11\n_#h: 12\n",
        expect![[r#"
            "q-l": 1
            (k): 2
            [string]: 3
            [N=string]: {n: N}
            [(Match "^x")]: 4
            X=lab: 5
            Y="s": 6
            Z=[string]: 7
            package: 8
            if: 9
            "\(k)-x": 10
            #D: 11
            _#h: 12
        "#]],
    );
}

#[test]
fn package_imports_and_docs() {
    check(
        "// Package p.\npackage p\n\nimport (\n\t\"strings\"\n\tj \"encoding/json\"\n\t\"a.b/c:d\"\n)\nimport \"list\"\n\n// Doc of a.\n// Second line.\na: 1\n\n// Not attached (blank line).\n\nb: 2 // trailing\nc: 3\n",
        expect![[r#"
            /*Package p.*/ package p
            import - "strings" as strings
            import j "encoding/json" as j
            import - "a.b/c:d" as d
            import - "list" as list
            /*Doc of a.
            Second line.*/ a: 1
            b: 2
            c: 3
        "#]],
    );
}

#[test]
fn strings_decode_escapes_and_interpolations() {
    check(
        r###"a: "t\t\"q\" \u00e9 \U0001F600 \/ \\"
b: #"raw \n \#n \#(x) \(y)"#
c: 'b\x41\101\''
d: "x \(a + "in \(b)") y"
e: ##"two \##(z) "# still"##
"###,
        expect![[r##"
            a: "t\t\"q\" é 😀 / \\"
            b: #"raw \\n \n \(x) \\(y)"
            c: b"bAA\'"
            d: "x \((+ a "in \(b)")) y"
            e: ##"two \(z) \"# still"
        "##]],
    );
}

#[test]
fn multiline_strings_strip_closing_indentation() {
    check(
        "s: \"\"\"\n\t\tline one\n\t\t  indented\n\n\t\tlast \\(x)\n\t\t\"\"\"\nb: '''\n  bytes\n  '''\nr: #\"\"\"\n\tq \"\"\" \\#(y)\n\t\"\"\"#\n",
        expect![[r#"
            s: m"line one\n  indented\n\nlast \(x)"
            b: bm"bytes"
            r: m#"q \"\"\" \(y)"
        "#]],
    );
}

#[test]
fn numbers_decode() {
    check(
        "a: [1_000, 0x1F, 0o755, 0b101, 1.5Ki, 2M, 1Gi, .5K, 1.5, 1e3, 2.5E-3, .25, 1.]\n",
        expect![[r#"
            a: [1000, 31, 493, 5, 1536, 2000000, 1073741824, 500, f1.5, f1e+3, f2.5e-3, f0.25, f1.0]
        "#]],
    );
}

#[test]
fn lists_and_ellipsis() {
    check(
        "a: [...]\nb: [...string]\nc: [1, \"x\", ...int]\nd: #S & {x: 1, ...}\ne: {...string}\n",
        expect![[r#"
            a: [...]
            b: [...string]
            c: [1, "x", ...int]
            d: (& #S {x: 1; ...})
            e: {...string}
        "#]],
    );
}

#[test]
fn comprehensions_lets_and_embeddings() {
    check(
        "let base = 1\nfor k, v in src if v > 0 let w = v * 2 {\n\t\"\\(k)\": w\n}\nif package == null {p: 1}\nl: [for x in xs {x}, for i, x in xs if i > 0 {[i, x]}]\n#Base\n*1 | 2\n",
        expect![[r#"
            let base = 1
            <for k, v in src if (> v 0) let w = (* v 2)> {"\(k)": w}
            <if (== package null)> {p: 1}
            l: [<for x in xs> {embed x}, <for i, x in xs if (> i 0)> {embed [i, x]}]
            embed #Base
            embed (| (Default 1) 2)
        "#]],
    );
}

#[test]
fn selectors_index_slice_call_alias() {
    check(
        "a: x.y.\"z w\".#D[0][1:2][:3][4:]\nb: f(1, g(2))()\nc: V={v: V.v}\nd: 1 @a() @b(x, y=\"()\")\n@decl(attr)\ne: _ & _|_ & null & true & false\n",
        expect![[r#"
            a: x.y."z w".#D[0][1:2][:3][4:]
            b: f(1, g(2))()
            c: V={v: V.v}
            d: 1 @a() @b(x, y="()")
            @decl(attr)
            e: (& (& (& (& _ _|_) null) true) false)
        "#]],
    );
}

#[test]
fn file_attributes_before_package() {
    check(
        "@if(prod)\n@extern(x)\npackage p\n@decl()\na: 1\n",
        expect![[r#"
            @if(prod)
            @extern(x)
            package p
            @decl()
            a: 1
        "#]],
    );
}

#[test]
fn spans_cover_their_nodes() {
    let text = "a: {b: 1 + 2}\nc: \"s\"\n";
    let parse = cuedag_parser::parse(text);
    let Decl::Field(f) = &parse.file.decls[0] else {
        panic!("expected a field")
    };
    assert_eq!(&text[f.span.range()], "a: {b: 1 + 2}");
    assert_eq!(&text[f.value.span().range()], "{b: 1 + 2}");
    let Expr::Struct(s) = &f.value else {
        panic!("expected a struct")
    };
    let Decl::Field(inner) = &s.decls[0] else {
        panic!("expected a field")
    };
    assert_eq!(&text[inner.value.span().range()], "1 + 2");
    let index = cuedag_parser::LineIndex::new(text);
    assert_eq!(index.line_col(parse.file.decls[1].span().start), (2, 1));
}

#[test]
fn parse_expr_parses_one_expression() {
    let (e, errors) = cuedag_parser::parse_expr("a.b & {c: 1}");
    assert!(errors.is_empty());
    assert_eq!(expr(&e), "(& a.b {c: 1})");
    let (_, errors) = cuedag_parser::parse_expr("1 2");
    assert_eq!(errors.len(), 1);
}
