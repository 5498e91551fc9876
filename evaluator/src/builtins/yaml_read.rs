//! Reading YAML for `yaml.Unmarshal` with numbers taken exactly from their
//! text, as CUE does (`1.50` stays `1.50`, a 30-digit int stays exact).
//!
//! serde_yaml resolves a plain scalar to a number before a visitor sees it,
//! so the text is gone by then. Two passes over the same document: the
//! first learns the shape and the type of every scalar; the second, guided
//! by that shape, asks for each number as a string (serde_yaml then gives
//! the scalar's text) and parses that text as a decimal.

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};
use serde::Deserialize;

use crate::num::Decimal;
use crate::value::Value;

/// A parsed YAML node (first pass).
enum Shape {
    Null,
    Bool(bool),
    /// A number as serde_yaml read it (inexact for floats).
    Num(Value),
    Str(String),
    Seq(Vec<Shape>),
    Map(Vec<(String, Shape)>),
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

fn int_from_text(text: &str) -> Value {
    Decimal::parse(text).map_or(Value::Null, Value::int)
}

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Shape, E> {
        Ok(Shape::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Shape, E> {
        Ok(Shape::Num(Value::Int(i128::from(i))))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Shape, E> {
        Ok(Shape::Num(Value::Int(i128::from(u))))
    }
    fn visit_i128<E>(self, i: i128) -> Result<Shape, E> {
        Ok(Shape::Num(Value::Int(i)))
    }
    fn visit_u128<E>(self, u: u128) -> Result<Shape, E> {
        Ok(Shape::Num(int_from_text(&u.to_string())))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Shape, E> {
        Ok(Shape::Num(Value::float_from_f64(f)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Shape, E> {
        Ok(Shape::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Shape, E> {
        Ok(Shape::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Shape>()? {
            items.push(item);
        }
        Ok(Shape::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<Shape>()? {
            let value = map.next_value::<Shape>()?;
            fields.push((key_text(key), value));
        }
        Ok(Shape::Map(fields))
    }
    /// A tagged node (`!tag value`): the value.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Shape, A::Error> {
        let (_tag, variant) = data.variant::<IgnoredAny>()?;
        variant.newtype_variant::<Shape>()
    }
}

/// A mapping key as a field name.
fn key_text(key: Shape) -> String {
    match key {
        Shape::Str(s) => s,
        Shape::Null => "null".into(),
        Shape::Bool(b) => b.to_string(),
        Shape::Num(n) => n.number_text().unwrap_or_default(),
        Shape::Seq(_) | Shape::Map(_) => String::new(),
    }
}

impl Shape {
    /// The first pass's value (numbers as the parser read them).
    fn to_value(&self) -> Value {
        match self {
            Shape::Null => Value::Null,
            Shape::Bool(b) => Value::Bool(*b),
            Shape::Num(n) => n.clone(),
            Shape::Str(s) => Value::String(s.clone()),
            Shape::Seq(items) => Value::List(items.iter().map(Shape::to_value).collect()),
            Shape::Map(fields) => Value::Struct(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// The value of a plain scalar that the YAML parser read as a number, as
/// CUE v0.4's YAML decoder makes it (go-yaml v2 rules, then the scalar's
/// text as a CUE number literal):
/// - with `_` removed, an integer in Go syntax (`12`, `0x1F`, `0o17`, `017`
///   octal) is that int;
/// - otherwise, text of the form `[-+]?[0-9]*\.?[0-9]+([eE][-+][0-9]+)?` is
///   a number literal taken exactly (`1.50`, `.5`, `12e+2`, a 30-digit
///   int), `-x` being the negation of `x`;
/// - anything else (`1e3`, `5.`, `1.5e3`: go-yaml wants a signed exponent
///   and a digit after the point) is a string.
fn yaml_number(text: &str, first: &Value) -> Value {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.strip_prefix('+').unwrap_or(&plain)),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Go integer syntax with a leading zero is octal (`017` is 15); with a
    // base prefix the parser's value stands (it read `0x`/`0o`/`0b`).
    if body.len() > 1 && body.starts_with('0') && all_digits(body) {
        if let Ok(v) = i128::from_str_radix(body, 8) {
            return Value::Int(if neg { -v } else { v });
        }
        return first.clone();
    }
    if body.starts_with("0x") || body.starts_with("0o") || body.starts_with("0b") {
        return first.clone();
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(at) => body.split_at(at),
        None => (body, ""),
    };
    let exp_ok = exp.is_empty() || {
        let e = &exp[1..];
        matches!(e.as_bytes().first(), Some(b'-' | b'+')) && all_digits(&e[1..])
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => (int.is_empty() || all_digits(int)) && all_digits(frac),
        None => all_digits(mantissa),
    };
    if !exp_ok || !mantissa_ok {
        return Value::String(text.to_string());
    }
    // `.5` as the decimal parser reads it.
    let normal = if mantissa.starts_with('.') {
        format!("0{body}")
    } else {
        body.to_string()
    };
    super::json::literal_number(neg, &normal).unwrap_or_else(|| first.clone())
}

/// Second pass: the value of a node whose shape is known.
struct Guided<'s>(&'s Shape);

impl<'de> DeserializeSeed<'de> for Guided<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Shape::Num(first) => {
                let text = String::deserialize(d)?;
                Ok(yaml_number(text.trim(), first))
            }
            Shape::Seq(items) => d.deserialize_seq(GuidedSeq(items)),
            Shape::Map(fields) => d.deserialize_map(GuidedMap(fields)),
            Shape::Null | Shape::Bool(_) | Shape::Str(_) => {
                IgnoredAny::deserialize(d)?;
                Ok(self.0.to_value())
            }
        }
    }
}

struct GuidedSeq<'s>(&'s [Shape]);

impl<'de> Visitor<'de> for GuidedSeq<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(self.0.len());
        for shape in self.0 {
            match seq.next_element_seed(Guided(shape))? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::List(out))
    }
}

struct GuidedMap<'s>(&'s [(String, Shape)]);

impl<'de> Visitor<'de> for GuidedMap<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = indexmap::IndexMap::with_capacity(self.0.len());
        for (key, shape) in self.0 {
            if map.next_key::<IgnoredAny>()?.is_none() {
                break;
            }
            out.insert(key.clone(), map.next_value_seed(Guided(shape))?);
        }
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(Value::Struct(out))
    }
}

/// Parses one YAML document into a value, numbers exact.
pub(super) fn read(bytes: &[u8]) -> Result<Value, serde_yaml::Error> {
    let shape: Shape = serde_yaml::from_slice(bytes)?;
    // The second pass reads the same document guided by its shape; if the
    // document is one the guided reader cannot follow (a tag it resolves
    // differently), the first pass's values stand.
    let exact = Guided(&shape).deserialize(serde_yaml::Deserializer::from_slice(bytes));
    Ok(exact.unwrap_or_else(|_| shape.to_value()))
}
