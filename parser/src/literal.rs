//! Decoding of string and number literals.
//!
//! Strings: escapes are resolved, multi-line indentation is removed (every
//! line must start with the whitespace that precedes the closing quotes), and
//! interpolations are located so that the parser can parse them. Numbers:
//! `_` separators, `0x`/`0o`/`0b` prefixes, floats and SI multipliers.

use crate::ast::{Number, Span};
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::lexer::{scan_string, Delims};

/// A piece of a decoded string literal.
#[derive(Debug)]
pub(crate) enum Segment {
    /// Literal text.
    Text { text: String, span: Span },
    /// `\(...)`: `inner` is the expression text, `outer` includes `\(` and `)`.
    Interp { inner: Span, outer: Span },
}

/// A decoded string literal.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub delims: Delims,
    pub segments: Vec<Segment>,
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn sp(start: usize, end: usize) -> Span {
    Span::new(u32_of(start), u32_of(end))
}

struct TextBuf {
    bytes: Vec<u8>,
    start: usize,
}

impl TextBuf {
    fn flush(&mut self, end: usize, segments: &mut Vec<Segment>) {
        if !self.bytes.is_empty() {
            let text = match String::from_utf8(std::mem::take(&mut self.bytes)) {
                Ok(text) => text,
                Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
            };
            segments.push(Segment::Text {
                text,
                span: sp(self.start, end),
            });
        }
        self.start = end;
    }
}

/// Decodes the string literal token at `span` of `text`.
pub(crate) fn decode_string(text: &str, span: Span, errors: &mut Vec<Diagnostic>) -> Decoded {
    let src = text.as_bytes();
    let start = span.start as usize;
    let end = span.end as usize;
    let (delims, body_start) = Delims::open(src, start);
    let close_len = if delims.multiline { 3 } else { 1 } + delims.hashes;
    let body_end = end.saturating_sub(close_len).max(body_start);
    let mut segments = Vec::new();

    // Fast path: a one-line literal with nothing to decode.
    if !delims.multiline {
        let body = src.get(body_start..body_end).unwrap_or_default();
        if !body.contains(&b'\\') {
            if body_end > body_start {
                let text = text
                    .get(body_start..body_end)
                    .unwrap_or_default()
                    .to_owned();
                segments.push(Segment::Text {
                    text,
                    span: sp(body_start, body_end),
                });
            }
            return Decoded { delims, segments };
        }
    }

    let mut content_start = body_start;
    let mut content_end = body_end;
    let mut prefix: &[u8] = &[];
    if delims.multiline {
        let after = src.get(body_start..).unwrap_or_default();
        if after.starts_with(b"\n") {
            content_start = body_start + 1;
        } else if after.starts_with(b"\r\n") {
            content_start = body_start + 2;
        } else {
            errors.push(
                Diagnostic::error(
                    codes::E0108,
                    "expected newline after opening `\"\"\"` of a multi-line string",
                    sp(start, body_start),
                    "text follows the opening quotes",
                )
                .with_help("start the text on the line after the opening quotes"),
            );
            return Decoded { delims, segments };
        }
        // The closing quotes' indentation is removed from every line.
        let body = src.get(content_start..body_end).unwrap_or_default();
        match body.iter().rposition(|&b| b == b'\n') {
            Some(pos) => {
                let last_line = body.get(pos + 1..).unwrap_or_default();
                if last_line.iter().all(|&b| b == b' ' || b == b'\t') {
                    prefix = last_line;
                    content_end = content_start + pos;
                }
            }
            None => {
                if body.iter().all(|&b| b == b' ' || b == b'\t') {
                    content_end = content_start;
                }
            }
        }
    }

    let mut buf = TextBuf {
        bytes: Vec::with_capacity(content_end.saturating_sub(content_start)),
        start: content_start,
    };
    let mut i = content_start;
    let mut line_start = delims.multiline;
    while i < content_end {
        if line_start {
            line_start = false;
            let rest = src.get(i..content_end).unwrap_or_default();
            if rest.starts_with(prefix) {
                i += prefix.len();
                if i >= content_end {
                    break;
                }
            } else if !(rest.starts_with(b"\n") || rest.starts_with(b"\r\n")) {
                let line_len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                errors.push(
                    Diagnostic::error(
                        codes::E0107,
                        "invalid indentation in multi-line string",
                        sp(i, i + line_len),
                        "this line is indented less than the closing quotes",
                    )
                    .with_help(
                        "indent every line at least as much as the closing `\"\"\"`, \
                         with the same mix of tabs and spaces",
                    ),
                );
            }
        }
        let Some(&c) = src.get(i) else { break };
        if c == b'\n' {
            buf.bytes.push(b'\n');
            line_start = true;
            i += 1;
            continue;
        }
        let Some(j) = delims.escape_at(src, i) else {
            buf.bytes.push(c);
            i += 1;
            continue;
        };
        let esc = src.get(j).copied().unwrap_or(b'\\');
        let bytes_lit = delims.quote == b'\'';
        let simple = match esc {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'/' => Some(b'/'),
            b'\\' => Some(b'\\'),
            b'"' if !bytes_lit || delims.multiline => Some(b'"'),
            b'\'' if bytes_lit || delims.multiline => Some(b'\''),
            _ => None,
        };
        if let Some(b) = simple {
            buf.bytes.push(b);
            i = j + 1;
            continue;
        }
        match esc {
            b'(' => {
                let (after, _) = scan_interp_end(src, j);
                buf.flush(i, &mut segments);
                let inner_end = after.saturating_sub(1).max(j + 1);
                segments.push(Segment::Interp {
                    inner: sp(j + 1, inner_end),
                    outer: sp(i, after),
                });
                i = after;
                buf.start = i;
            }
            b'u' | b'U' => {
                let n = if esc == b'u' { 4 } else { 8 };
                let digits = src.get(j + 1..j + 1 + n).unwrap_or_default();
                let code = parse_radix(digits, 16, n);
                match code.and_then(char::from_u32) {
                    Some(ch) => {
                        let mut tmp = [0u8; 4];
                        buf.bytes
                            .extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                    }
                    None => errors.push(
                        Diagnostic::error(
                            codes::E0104,
                            format!("invalid unicode escape: expected {n} hex digits naming a valid code point"),
                            sp(i, (j + 1 + n).min(content_end)),
                            "invalid escape",
                        )
                        .with_help(if n == 4 { "write `\\u` and four hex digits, e.g. `\\u00e9`" } else { "write `\\U` and eight hex digits, e.g. `\\U0001F600`" }),
                    ),
                }
                i = (j + 1 + n).min(content_end);
            }
            b'x' if bytes_lit => {
                let digits = src.get(j + 1..j + 3).unwrap_or_default();
                match parse_radix(digits, 16, 2) {
                    Some(v) => buf.bytes.push(v as u8),
                    None => errors.push(bad_escape(
                        sp(i, (j + 3).min(content_end)),
                        "write `\\x` and two hex digits",
                    )),
                }
                i = (j + 3).min(content_end);
            }
            b'0'..=b'7' if bytes_lit => {
                let digits = src.get(j..j + 3).unwrap_or_default();
                match parse_radix(digits, 8, 3).filter(|v| *v <= 255) {
                    Some(v) => buf.bytes.push(v as u8),
                    None => errors.push(bad_escape(
                        sp(i, (j + 3).min(content_end)),
                        "write `\\` and three octal digits up to `\\377`",
                    )),
                }
                i = (j + 3).min(content_end);
            }
            _ => {
                let width = text
                    .get(j..)
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                let help = match esc {
                    b'x' | b'0'..=b'7' => {
                        "hex and octal escapes are only allowed in bytes literals `'...'`"
                    }
                    b'\'' => "`\\'` is only allowed in bytes literals; write `'` as is",
                    b'"' => "`\\\"` is only allowed in string literals; write `\"` as is",
                    _ => {
                        "valid escapes are `\\n \\t \\r \\a \\b \\f \\v \\\\ \\/ \\\" \\' \\uXXXX \\UXXXXXXXX` and `\\(expr)`"
                    }
                };
                errors.push(bad_escape(sp(i, (j + width).min(end)), help));
                i = j + width;
            }
        }
    }
    buf.flush(content_end.max(buf.start), &mut segments);
    Decoded { delims, segments }
}

fn bad_escape(span: Span, help: &str) -> Diagnostic {
    Diagnostic::error(
        codes::E0104,
        "unknown escape sequence",
        span,
        "invalid escape",
    )
    .with_help(help)
}

/// Finds the end of the interpolation whose `(` is at `open`.
fn scan_interp_end(src: &[u8], open: usize) -> (usize, bool) {
    let mut parens = 0u32;
    let mut i = open;
    while let Some(&c) = src.get(i) {
        match c {
            b'(' => parens += 1,
            b')' => {
                parens = parens.saturating_sub(1);
                if parens == 0 {
                    return (i + 1, true);
                }
            }
            b'"' | b'\'' | b'#' => {
                let mut k = i;
                while src.get(k) == Some(&b'#') {
                    k += 1;
                }
                if matches!(src.get(k), Some(b'"' | b'\'')) {
                    let (end, _) = scan_string(src, i, 1);
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (src.len(), false)
}

fn parse_radix(digits: &[u8], radix: u32, n: usize) -> Option<u32> {
    if digits.len() != n {
        return None;
    }
    let mut v: u32 = 0;
    for &d in digits {
        v = v
            .checked_mul(radix)?
            .checked_add(char::from(d).to_digit(radix)?)?;
    }
    Some(v)
}

/// Why a number literal is invalid: code, message, label, help.
pub(crate) type NumberError = (&'static str, String, &'static str, Option<&'static str>);

fn bad_number(message: impl Into<String>, help: Option<&'static str>) -> NumberError {
    (codes::E0105, message.into(), "invalid number", help)
}

/// Checks that `_` only stands between two digits.
fn check_separators(digits: &str) -> Result<(), NumberError> {
    let bytes = digits.as_bytes();
    for (k, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let before = k.checked_sub(1).and_then(|p| bytes.get(p));
            let after = bytes.get(k + 1);
            let ok = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_hexdigit());
            if !ok(before) || !ok(after) {
                return Err(bad_number(
                    "illegal `_` in number",
                    Some("`_` may only stand between two digits, e.g. `1_000`"),
                ));
            }
        }
    }
    Ok(())
}

/// Decodes a number literal.
pub(crate) fn decode_number(lit: &str) -> Result<Number, NumberError> {
    // Fast path: a plain decimal integer.
    let bytes = lit.as_bytes();
    if bytes.len() < 20
        && bytes.iter().all(u8::is_ascii_digit)
        && !(bytes.len() > 1 && bytes.first() == Some(&b'0'))
    {
        let mut v: i128 = 0;
        for &b in bytes {
            v = v * 10 + i128::from(b - b'0');
        }
        return Ok(Number::Int(v));
    }
    let radix = match lit.get(..2) {
        Some("0x" | "0X") => Some(16),
        Some("0o" | "0O") => Some(8),
        Some("0b" | "0B") => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        let rest = lit.get(2..).unwrap_or_default();
        // `0x_1` is allowed: a separator may follow the prefix.
        let check = format!("0{rest}");
        check_separators(&check)?;
        let digits: String = rest.chars().filter(|&c| c != '_').collect();
        if digits.is_empty() {
            return Err(bad_number(
                "expected digits after the number prefix",
                Some("write e.g. `0x1f`, `0o755` or `0b101`"),
            ));
        }
        return i128::from_str_radix(&digits, radix)
            .map(Number::Int)
            .map_err(|_| too_large());
    }
    check_separators(lit)?;
    let clean: String = lit.chars().filter(|&c| c != '_').collect();
    let (mantissa, multiplier) = split_multiplier(&clean);
    let (int_part, frac_part, exp_part) = split_float(mantissa);
    if exp_part.is_some_and(str::is_empty) || exp_part.is_some_and(|e| matches!(e, "+" | "-")) {
        return Err(bad_number(
            "expected digits in the exponent",
            Some("write e.g. `1e3` or `1.5e-3`"),
        ));
    }
    if let Some(mult) = multiplier {
        if exp_part.is_some() {
            return Err(bad_number(
                "a number cannot have both an exponent and a multiplier",
                None,
            ));
        }
        let digits = format!("{int_part}{}", frac_part.unwrap_or_default());
        let scale = 10i128.checked_pow(u32_of(frac_part.map_or(0, str::len)));
        let m: Option<i128> = if digits.is_empty() {
            Some(0)
        } else {
            digits.parse::<i128>().ok()
        };
        let (Some(m), Some(scale)) = (m, scale) else {
            return Err(too_large());
        };
        let product = m.checked_mul(mult).ok_or_else(too_large)?;
        if product % scale != 0 {
            return Err((
                codes::E0109,
                "number with multiplier is not an integer".to_owned(),
                "not a whole number",
                Some("a multiplier (`K`, `Ki`, `M`, ...) must give a whole number"),
            ));
        }
        return Ok(Number::Int(product / scale));
    }
    if frac_part.is_none() && exp_part.is_none() {
        if int_part.len() > 1 && int_part.starts_with('0') {
            return Err(bad_number(
                "illegal integer number: legacy octal literal",
                Some("write octal numbers with the `0o` prefix, e.g. `0o755`"),
            ));
        }
        if int_part.is_empty() {
            return Err(bad_number("expected digits", None));
        }
        return Ok(int_part
            .parse::<i128>()
            .map_or_else(|_| Number::BigInt(int_part.to_owned()), Number::Int));
    }
    // A float: canonical text `I.F` or `I.Fe±X`.
    let mut out = String::with_capacity(clean.len() + 3);
    out.push_str(if int_part.is_empty() { "0" } else { int_part });
    if let Some(frac) = frac_part {
        out.push('.');
        out.push_str(if frac.is_empty() { "0" } else { frac });
    }
    if let Some(exp) = exp_part {
        out.push('e');
        if !exp.starts_with(['+', '-']) {
            out.push('+');
        }
        out.push_str(exp);
    }
    Ok(Number::Float(out))
}

fn too_large() -> NumberError {
    (
        codes::E0106,
        "number out of range".to_owned(),
        "too large",
        Some("integers written with a prefix (`0x`) or a multiplier (`Ki`) must fit in 128 bits"),
    )
}

fn split_multiplier(lit: &str) -> (&str, Option<i128>) {
    let (body, binary) = match lit.strip_suffix('i') {
        Some(body) => (body, true),
        None => (lit, false),
    };
    let Some(last) = body.chars().last() else {
        return (lit, None);
    };
    let power = match last {
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        'P' => 5,
        _ => return (lit, None),
    };
    let base: i128 = if binary { 1024 } else { 1000 };
    let mantissa = body.get(..body.len() - 1).unwrap_or_default();
    (mantissa, base.checked_pow(power))
}

fn split_float(lit: &str) -> (&str, Option<&str>, Option<&str>) {
    let (mantissa, exp) = match lit.find(['e', 'E']) {
        Some(pos) => (
            lit.get(..pos).unwrap_or_default(),
            Some(lit.get(pos + 1..).unwrap_or_default()),
        ),
        None => (lit, None),
    };
    match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac), exp),
        None => (mantissa, None, exp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_decode() {
        assert_eq!(decode_number("1_000").unwrap(), Number::Int(1000));
        assert_eq!(
            decode_number("123_456_789_012_345_678_901_234_567_890_123_456_789_0").unwrap(),
            Number::BigInt("1234567890123456789012345678901234567890".to_owned())
        );
        assert_eq!(decode_number("0o755").unwrap(), Number::Int(0o755));
        assert_eq!(decode_number("0x_1f").unwrap(), Number::Int(31));
        assert_eq!(decode_number("0b101").unwrap(), Number::Int(5));
        assert_eq!(decode_number("1.5Ki").unwrap(), Number::Int(1536));
        assert_eq!(decode_number("2M").unwrap(), Number::Int(2_000_000));
        assert_eq!(decode_number("1Gi").unwrap(), Number::Int(1 << 30));
        assert_eq!(decode_number(".5K").unwrap(), Number::Int(500));
        assert_eq!(
            decode_number("1e3").unwrap(),
            Number::Float("1e+3".to_owned())
        );
        assert_eq!(
            decode_number(".5").unwrap(),
            Number::Float("0.5".to_owned())
        );
        assert_eq!(
            decode_number("1.5E-3").unwrap(),
            Number::Float("1.5e-3".to_owned())
        );
        assert_eq!(decode_number("0755").unwrap_err().0, codes::E0105);
        assert_eq!(decode_number("1__0").unwrap_err().0, codes::E0105);
        assert_eq!(decode_number("1.1Ki").unwrap_err().0, codes::E0109);
        assert_eq!(decode_number("1e").unwrap_err().0, codes::E0105);
        assert_eq!(decode_number("0x").unwrap_err().0, codes::E0105);
        assert_eq!(
            decode_number("0xffffffffffffffffffffffffffffffffff")
                .unwrap_err()
                .0,
            codes::E0106
        );
    }
}
