//! Concrete CUE data and the interface between the evaluator and builtin
//! functions.
//!
//! A builtin receives its arguments already evaluated, with defaults selected
//! and fully concrete, as [`Value`]s. When an argument is not concrete the
//! evaluator does not call the builtin at all: the call stays incomplete.
//! A builtin returns a [`Value`] or a [`BuiltinError`].

use indexmap::IndexMap;

use crate::num::Decimal;

/// A concrete CUE value (what `cue export` can print).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i128` (CUE's exact integers with exponent 0).
    Int(i128),
    /// Any other integer: a huge one, `-0`, or a rounded result such as
    /// `9.99999999999999999980000E+39` (see [`Value::int`]).
    BigInt(Decimal),
    /// A float: a decimal number as CUE keeps it (`2.50`, `1E+3`).
    Float(Decimal),
    /// A string.
    String(String),
    /// Bytes (`'...'`).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A struct: regular fields in order.
    Struct(IndexMap<String, Value>),
}

impl Value {
    /// The CUE kind name: `null`, `bool`, `int`, `float`, `string`, `bytes`,
    /// `list` or `struct`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Struct(_) => "struct",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, for ints and floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::BigInt(d) | Value::Float(d) => Some(d.to_f64()),
            _ => None,
        }
    }

    /// The number as a decimal, for ints and floats.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Int(i) => Some(Decimal::from_i128(*i)),
            Value::BigInt(d) | Value::Float(d) => Some(d.clone()),
            _ => None,
        }
    }

    /// An int value (`Int` when it fits the fast path, else `BigInt`).
    pub fn int(d: Decimal) -> Value {
        if d.exponent() == 0 && !(d.is_zero() && d.is_negative()) {
            if let Some(i) = d.to_i128() {
                return Value::Int(i);
            }
        }
        Value::BigInt(d)
    }

    /// A number computed by a builtin from decimals: an int when the value is
    /// whole (CUE gives `math.Pow(2.0, 2)`, `4.00`, the kind int), else a
    /// float.
    pub fn decimal_result(d: Decimal) -> Value {
        if d.is_integral() {
            Value::int(d)
        } else {
            Value::Float(d)
        }
    }

    /// A float value from an `f64` (the shortest decimal that reads back as
    /// it; `null` for infinities and NaN).
    pub fn float_from_f64(f: f64) -> Value {
        Decimal::from_f64(f).map_or(Value::Null, Value::Float)
    }

    /// The CUE text of a number (`1`, `2.50`, `1E+3`).
    pub fn number_text(&self) -> Option<String> {
        match self {
            Value::Int(i) => Some(i.to_string()),
            Value::BigInt(d) | Value::Float(d) => Some(d.to_string()),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The fields, if this is a struct.
    pub fn as_struct(&self) -> Option<&IndexMap<String, Value>> {
        match self {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to JSON (bytes become base64 strings, as `cue export` does;
    /// numbers that `i64`/`u64` cannot hold become `f64`, so they may lose
    /// digits: `cuedag export` writes number text itself instead).
    pub fn to_json(&self) -> serde_json::Value {
        cuedag_parser::stack::grow(|| self.to_json_inner())
    }

    fn to_json_inner(&self) -> serde_json::Value {
        use base64::Engine as _;
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(v) => serde_json::Value::from(v),
                Err(_) => match u64::try_from(*i) {
                    Ok(v) => serde_json::Value::from(v),
                    Err(_) => serde_json::Value::from(*i as f64),
                },
            },
            Value::BigInt(d) | Value::Float(d) => serde_json::Number::from_f64(d.to_f64())
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Bytes(b) => {
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Struct(s) => {
                serde_json::Value::Object(s.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Converts from JSON: integers stay `Int`, other numbers become `Float`.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Value::Int(i128::from(u))
                } else {
                    Decimal::parse(&n.to_string()).map_or(Value::Null, Value::Float)
                }
            }
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Struct(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Why a builtin could not produce a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuiltinError {
    /// An argument is not concrete enough yet; the call stays pending.
    #[error("incomplete: {0}")]
    Incomplete(String),
    /// The arguments are wrong; becomes a bottom value with this message
    /// (lowercase, no final period, like CUE's: `invalid value "x" (does not
    /// satisfy strings.MinRunes(3))` is built by the evaluator for validators).
    #[error("{0}")]
    Invalid(String),
}

/// A builtin function: receives concrete arguments, returns a value.
pub type BuiltinFn = fn(&[Value]) -> Result<Value, BuiltinError>;

/// A builtin function with its arity.
#[derive(Debug, Clone, Copy)]
pub struct Func {
    /// Fewest arguments accepted.
    pub min_args: usize,
    /// Most arguments accepted (`usize::MAX` for variadic).
    pub max_args: usize,
    /// Whether the function may be used as a validator: called with one
    /// argument fewer (`strings.MinRunes(1)`), it becomes a constraint; when
    /// unified with a concrete value `v` the evaluator calls `f(v, args...)`
    /// and expects `Value::Bool(true)`.
    pub validator: bool,
    /// The implementation (for [`Special::Validate`], the decoder of the
    /// text; unused by the other special functions).
    pub f: BuiltinFn,
    /// Functions whose arguments are not all concrete data, which the
    /// evaluator runs itself.
    pub special: Special,
    /// An argument that is a list of strings or numbers (its index and
    /// `"string"` or `"number"`): as in CUE v0.4, the defaults of that
    /// list's elements are not taken (`strings.Join([v], "")` with
    /// `v: *"a" | string` is incomplete).
    pub scalar_list: Option<(usize, &'static str)>,
}

/// Builtins the evaluator runs itself because an argument is CUE, not data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// An ordinary function of concrete arguments.
    Plain,
    /// `list.Sort(list, cmp)` / `list.SortStable`: `cmp` is a struct with
    /// `x`, `y` and `less` (`list.Ascending`, `list.Descending`).
    Sort,
    /// `list.IsSorted(list, cmp)`.
    IsSorted,
    /// `json.Validate(text, schema)` / `yaml.Validate`: `f` decodes the text,
    /// the data is unified with the schema and must be concrete.
    Validate,
    /// `yaml.ValidatePartial(text, schema)`: like `Validate`, but the
    /// result need not be concrete.
    ValidatePartial,
}

/// The value of `list.Ascending` as the evaluator sees it (a comparator it
/// implements natively).
pub const ASCENDING: &str = "\u{0}list.Ascending";
/// The value of `list.Descending`.
pub const DESCENDING: &str = "\u{0}list.Descending";

/// A member of a builtin package.
#[derive(Debug, Clone, Copy)]
pub enum Member {
    /// A function (`strings.Join`).
    Func(Func),
    /// A constant (`path.Unix`, `time.Second`).
    Const(fn() -> Value),
}

/// A builtin package (`strings`, `encoding/json`, ...).
#[derive(Debug)]
pub struct Package {
    /// The import path.
    pub path: &'static str,
    /// Members by name.
    pub members: &'static [(&'static str, Member)],
}

impl Package {
    /// Looks up a member by name.
    pub fn member(&self, name: &str) -> Option<&'static Member> {
        self.members
            .iter()
            .find(|(member_name, _)| *member_name == name)
            .map(|(_, member)| member)
    }
}
