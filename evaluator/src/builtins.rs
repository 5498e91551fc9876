//! Builtin packages (`strings`, `list`, `path`, `encoding/json`, ...) with
//! CUE v0.4 behaviour.
//!
//! The evaluator resolves an import of a builtin package through
//! [`package`] and calls its members with concrete [`Value`] arguments (see
//! `docs/notes/evaluator-api.md`). The predeclared functions (`len`, `close`,
//! `and`, `or`, `div`, `mod`, `quo`, `rem`) live in the evaluator core.
//!
//! Functions that need the evaluator itself (a comparator struct for
//! `list.Sort`, a schema for `json.Validate`/`yaml.Validate`) are only
//! declared here with a [`Special`] marker: the evaluator runs them.

use crate::value::{BuiltinError, BuiltinFn, Func, Member, Package, Special, Value};

mod crypto;
mod encoding;
mod json;
mod list;
mod math;
mod path;
mod regexp;
mod strconv;
mod strings;
mod structs;
mod time;
mod yaml;
mod yaml_read;

pub use regexp::go_regex;

/// Every builtin package, by import path.
static PACKAGES: &[&Package] = &[
    &strings::PACKAGE,
    &list::PACKAGE,
    &path::PACKAGE,
    &strconv::PACKAGE,
    &structs::PACKAGE,
    &math::PACKAGE,
    &regexp::PACKAGE,
    &json::PACKAGE,
    &yaml::PACKAGE,
    &encoding::BASE64,
    &encoding::HEX,
    &crypto::SHA256,
    &crypto::SHA512,
    &crypto::MD5,
    &crypto::SHA1,
    &time::PACKAGE,
];

/// The builtin package with this import path (`strings`, `encoding/json`).
pub fn package(path: &str) -> Option<&'static Package> {
    PACKAGES.iter().copied().find(|p| p.path == path)
}

/// The import paths of all builtin packages.
pub fn package_paths() -> impl Iterator<Item = &'static str> {
    PACKAGES.iter().map(|p| p.path)
}

// ---------------------------------------------------------------------------
// Helpers shared by the packages.

/// A function member taking exactly `n` arguments.
const fn func(n: usize, f: BuiltinFn) -> Member {
    Member::Func(Func {
        min_args: n,
        max_args: n,
        validator: false,
        f,
        special: Special::Plain,
        scalar_list: None,
    })
}

/// A function the evaluator runs itself (see [`Special`]); `f` is the
/// decoder for the validating ones.
const fn special(n: usize, special: Special, f: BuiltinFn) -> Member {
    Member::Func(Func {
        min_args: n,
        max_args: n,
        validator: false,
        f,
        special,
        scalar_list: None,
    })
}

/// The body of a special function that only the evaluator calls.
fn evaluator_only(_args: &[Value]) -> R {
    Err(invalid("this function needs the evaluator"))
}

/// A function member taking `min..=max` arguments.
const fn func_opt(min: usize, max: usize, f: BuiltinFn) -> Member {
    Member::Func(Func {
        min_args: min,
        max_args: max,
        validator: false,
        f,
        special: Special::Plain,
        scalar_list: None,
    })
}

/// A function member taking `min..=max` arguments, argument `arg` of which
/// is a list of `kind` (`"string"` or `"number"`) whose elements must be
/// concrete without taking defaults (see [`Func::scalar_list`]).
const fn func_scalar_list(
    min: usize,
    max: usize,
    arg: usize,
    kind: &'static str,
    f: BuiltinFn,
) -> Member {
    Member::Func(Func {
        min_args: min,
        max_args: max,
        validator: false,
        f,
        special: Special::Plain,
        scalar_list: Some((arg, kind)),
    })
}

/// A validator member: the validated value is the first of `n` arguments.
const fn validator(n: usize, f: BuiltinFn) -> Member {
    Member::Func(Func {
        min_args: n,
        max_args: n,
        validator: true,
        f,
        special: Special::Plain,
        scalar_list: None,
    })
}

type R = Result<Value, BuiltinError>;

fn invalid(msg: impl Into<String>) -> BuiltinError {
    BuiltinError::Invalid(msg.into())
}

fn type_error(args: &[Value], i: usize, want: &str) -> BuiltinError {
    match args.get(i) {
        Some(v) => invalid(format!(
            "cannot use {} (type {}) as {want} in argument {}",
            short_text(v),
            v.kind_name(),
            i + 1
        )),
        None => invalid(format!("missing argument {}", i + 1)),
    }
}

/// A short CUE-like rendering of a value for messages.
fn short_text(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(d) | Value::Float(d) => d.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Bytes(b) => format!("'{}'", String::from_utf8_lossy(b)),
        Value::List(_) => "list".to_string(),
        Value::Struct(_) => "struct".to_string(),
    }
}

fn arg_str(args: &[Value], i: usize) -> Result<&str, BuiltinError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(type_error(args, i, "string")),
    }
}

/// A string or bytes argument, as bytes.
fn arg_bytes(args: &[Value], i: usize) -> Result<&[u8], BuiltinError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes()),
        Some(Value::Bytes(b)) => Ok(b),
        _ => Err(type_error(args, i, "bytes")),
    }
}

fn arg_int(args: &[Value], i: usize) -> Result<i128, BuiltinError> {
    match args.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::BigInt(d)) => Err(invalid(format!("int {d} overflows int64 in argument {i}"))),
        _ => Err(type_error(args, i, "int")),
    }
}

/// An int argument that must fit in a (Go) `int`.
fn arg_i64(args: &[Value], i: usize) -> Result<i64, BuiltinError> {
    let n = arg_int(args, i)?;
    i64::try_from(n).map_err(|_| invalid(format!("argument {} out of range: {n}", i + 1)))
}

fn arg_num(args: &[Value], i: usize) -> Result<f64, BuiltinError> {
    match args.get(i) {
        Some(Value::Int(n)) => Ok(*n as f64),
        Some(Value::BigInt(d) | Value::Float(d)) => Ok(d.to_f64()),
        _ => Err(type_error(args, i, "number")),
    }
}

fn arg_bool(args: &[Value], i: usize) -> Result<bool, BuiltinError> {
    match args.get(i) {
        Some(Value::Bool(b)) => Ok(*b),
        _ => Err(type_error(args, i, "bool")),
    }
}

fn arg_list(args: &[Value], i: usize) -> Result<&[Value], BuiltinError> {
    match args.get(i) {
        Some(Value::List(l)) => Ok(l),
        _ => Err(type_error(args, i, "list")),
    }
}

/// A list of strings argument.
fn arg_strings(args: &[Value], i: usize) -> Result<Vec<&str>, BuiltinError> {
    let list = arg_list(args, i)?;
    list.iter()
        .enumerate()
        .map(|(j, v)| match v {
            Value::String(s) => Ok(s.as_str()),
            other => Err(invalid(format!(
                "invalid list element {j} in argument {i} to call: cannot use value {} ({}) as string",
                short_text(other),
                other.kind_name()
            ))),
        })
        .collect()
}

fn string_list<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
}

/// A number result: an `Int` when `x` is integral and exactly
/// representable, a `Float` otherwise (CUE prints `math.Floor(1.7)` as `1`).
fn number(x: f64) -> Value {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        Value::Int(x as i128)
    } else {
        Value::float_from_f64(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `pkg.name(args)` and returns the result.
    pub(crate) fn call(pkg: &str, name: &str, args: &[Value]) -> R {
        let Some(p) = package(pkg) else {
            panic!("no package {pkg}")
        };
        match p.member(name) {
            Some(Member::Func(f)) => {
                assert!(
                    args.len() >= f.min_args && args.len() <= f.max_args,
                    "{pkg}.{name}: arity {} not in {}..={}",
                    args.len(),
                    f.min_args,
                    f.max_args
                );
                (f.f)(args)
            }
            Some(Member::Const(c)) => Ok(c()),
            None => panic!("no member {pkg}.{name}"),
        }
    }

    pub(crate) fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    pub(crate) fn i(x: i128) -> Value {
        Value::Int(x)
    }

    /// A float from its decimal text.
    pub(crate) fn fl(x: &str) -> Value {
        Value::Float(crate::num::Decimal::parse(x).unwrap())
    }

    pub(crate) fn list(items: Vec<Value>) -> Value {
        Value::List(items)
    }

    pub(crate) fn strs(items: &[&str]) -> Value {
        string_list(items.iter().copied())
    }

    #[test]
    fn every_package_is_found_by_path() {
        for path in package_paths() {
            assert_eq!(package(path).map(|p| p.path), Some(path));
        }
        assert!(package("nosuchpkg").is_none());
        assert!(package("strings").is_some());
        assert!(package("encoding/yaml").is_some());
    }

    #[test]
    fn numbers_are_ints_when_integral() {
        assert_eq!(number(3.0), Value::Int(3));
        assert_eq!(number(2.5).number_text().as_deref(), Some("2.5"));
    }

    #[test]
    fn type_errors_name_the_argument() {
        let err = call("strings", "ToUpper", &[i(1)]);
        assert_eq!(
            err,
            Err(BuiltinError::Invalid(
                "cannot use 1 (type int) as string in argument 1".to_string()
            ))
        );
    }
}
