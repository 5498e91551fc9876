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
    fn into_value(self) -> Value {
        match self {
            Shape::Null => Value::Null,
            Shape::Bool(b) => Value::Bool(b),
            Shape::Num(n) => n,
            Shape::Str(s) => Value::String(s),
            Shape::Seq(items) => Value::List(items.into_iter().map(Shape::into_value).collect()),
            Shape::Map(fields) => Value::Struct(
                fields
                    .into_iter()
                    .map(|(k, v)| (k, v.into_value()))
                    .collect(),
            ),
        }
    }
}

/// The exact value of a YAML number written in decimal notation
/// (`-12`, `1.50`, `.5`, `1e3`); `None` for other notations (`0x1F`,
/// `0o17`, `.inf`), which keep the first pass's value.
fn decimal_number(text: &str) -> Option<Value> {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mantissa_end = body.find(['e', 'E']).unwrap_or(body.len());
    let (mantissa, exp) = body.split_at(mantissa_end);
    let digits_ok = !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mantissa.matches('.').count() <= 1
        && mantissa.chars().any(|c| c.is_ascii_digit());
    let exp_ok = exp.is_empty() || {
        let e = &exp[1..];
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    };
    if !digits_ok || !exp_ok {
        return None;
    }
    let is_float = mantissa.contains('.') || !exp.is_empty();
    // `.5` and `5.` as the decimal parser reads them.
    let mut normal = String::with_capacity(text.len() + 2);
    if mantissa.starts_with('.') {
        normal.push('0');
    }
    normal.push_str(mantissa);
    if mantissa.ends_with('.') {
        normal.push('0');
    }
    normal.push_str(exp);
    let d = Decimal::parse(&normal)?;
    // `-x` is the negation of `x`, as CUE reads it (so `-0` and `-0.0` are
    // zeros without a sign).
    let d = if text.starts_with('-') { d.neg() } else { d };
    Some(if is_float {
        Value::Float(d)
    } else {
        Value::int(d)
    })
}

/// Second pass: the value of a node whose shape is known.
struct Guided<'s>(&'s Shape);

impl<'de> DeserializeSeed<'de> for Guided<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Shape::Num(first) => {
                let text = String::deserialize(d)?;
                Ok(decimal_number(text.trim()).unwrap_or_else(|| first.clone()))
            }
            Shape::Seq(items) => d.deserialize_seq(GuidedSeq(items)),
            Shape::Map(fields) => d.deserialize_map(GuidedMap(fields)),
            Shape::Null | Shape::Bool(_) | Shape::Str(_) => {
                IgnoredAny::deserialize(d)?;
                Ok(shape_scalar(self.0))
            }
        }
    }
}

fn shape_scalar(s: &Shape) -> Value {
    match s {
        Shape::Null => Value::Null,
        Shape::Bool(b) => Value::Bool(*b),
        Shape::Str(s) => Value::String(s.clone()),
        Shape::Num(n) => n.clone(),
        Shape::Seq(_) | Shape::Map(_) => Value::Null,
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
    Ok(exact.unwrap_or_else(|_| shape.into_value()))
}
