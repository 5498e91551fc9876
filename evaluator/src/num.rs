//! Decimal numbers as CUE v0.4 computes them.
//!
//! CUE keeps every number as an arbitrary-precision decimal (a coefficient
//! and a base-10 exponent, the model of the General Decimal Arithmetic
//! specification) and computes with a context of 24 significant digits,
//! rounding half up. Literals are kept exactly; `+`, `-`, `*` and `/` round
//! their result to 24 digits; the integer operators `div`, `mod`, `quo` and
//! `rem` are exact. A number prints in the specification's scientific
//! string form (`1E+3`, `2.50`, `0.333333333333333333333333`).
//!
//! The evaluator keeps small exact integers as `i128` and uses [`Decimal`]
//! for floats and for integers that do not fit that fast path.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Significant digits kept by arithmetic (CUE's decimal context).
pub const PRECISION: usize = 24;

/// Largest adjusted exponent of an arithmetic result (CUE's context: larger
/// is "exponent out of range"); the smallest is its negation.
pub const MAX_EXPONENT: i64 = 100_000;

/// Largest exponent a literal may have (keeps aligning two operands cheap).
const MAX_LITERAL_EXPONENT: i64 = 1_000_000;

/// An arbitrary-precision decimal: `(-1)^neg * coef * 10^exp`.
///
/// Zero keeps its sign and exponent (`-0.0` and `0.00` print as written),
/// as the specification's numbers do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal {
    neg: bool,
    coef: BigUint,
    exp: i64,
}

/// Why a decimal operation has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumError {
    /// The divisor is zero.
    #[error("division by zero")]
    DivisionByZero,
}

fn pow10(n: u64) -> BigUint {
    num_traits::pow(
        BigUint::from(10u32),
        usize::try_from(n).unwrap_or(usize::MAX),
    )
}

fn num_digits(c: &BigUint) -> usize {
    if c.is_zero() {
        return 1;
    }
    // `bits * log10(2)` is a close estimate; correct it by comparison.
    let bits = c.bits();
    let mut est = ((bits.saturating_sub(1)) as f64 * std::f64::consts::LOG10_2) as u64 + 1;
    if *c >= pow10(est) {
        est += 1;
    } else if est > 1 && *c < pow10(est - 1) {
        est -= 1;
    }
    usize::try_from(est).unwrap_or(usize::MAX)
}

impl Decimal {
    /// Zero (`0`).
    pub fn zero() -> Decimal {
        Decimal {
            neg: false,
            coef: BigUint::zero(),
            exp: 0,
        }
    }

    /// An exact integer.
    pub fn from_i128(i: i128) -> Decimal {
        Decimal {
            neg: i < 0,
            coef: BigUint::from(i.unsigned_abs()),
            exp: 0,
        }
    }

    /// An exact big integer.
    pub fn from_bigint(i: &BigInt) -> Decimal {
        Decimal {
            neg: i.sign() == Sign::Minus,
            coef: i.magnitude().clone(),
            exp: 0,
        }
    }

    /// The shortest decimal that reads back as `f` (`0.1`, `1e+21`), or
    /// `None` for infinities and NaN.
    pub fn from_f64(f: f64) -> Option<Decimal> {
        if !f.is_finite() {
            return None;
        }
        Decimal::parse(&format!("{f:e}"))
    }

    /// Parses decimal text: `[+-]digits[.digits][(e|E)[+-]digits]`, also
    /// `.5` and `5.`. Underscores and multipliers are not accepted.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (neg, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp_text) = match rest.find(['e', 'E']) {
            Some(k) => (&rest[..k], Some(&rest[k + 1..])),
            None => (rest, None),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut exp: i64 = match exp_text {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                e.parse::<i64>().ok()?
            }
        };
        if exp.abs() > MAX_LITERAL_EXPONENT {
            return None;
        }
        exp = exp.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
        let digits = format!("{int_part}{frac_part}");
        let coef = BigUint::parse_bytes(digits.as_bytes(), 10)?;
        Some(Decimal { neg, coef, exp })
    }

    /// The value without trailing zeros (`1.00` and `1.0` give `1`), as
    /// text: equal values give equal text.
    pub fn reduced(&self) -> String {
        if self.coef.is_zero() {
            return "0".to_owned();
        }
        let mut coef = self.coef.clone();
        let mut exp = self.exp;
        loop {
            let (q, r) = coef.div_rem(&BigUint::from(10u32));
            if !r.is_zero() {
                break;
            }
            coef = q;
            exp += 1;
        }
        let sign = if self.neg { "-" } else { "" };
        format!("{sign}{coef}e{exp}")
    }

    /// Whether the value is zero (of either sign).
    pub fn is_zero(&self) -> bool {
        self.coef.is_zero()
    }

    /// Whether the sign is negative (also for `-0`).
    pub fn is_negative(&self) -> bool {
        self.neg
    }

    /// The exponent (`2.50` has -2).
    pub fn exponent(&self) -> i64 {
        self.exp
    }

    /// Whether an arithmetic result is within CUE's exponent range.
    pub fn in_range(&self) -> bool {
        if self.coef.is_zero() {
            return true;
        }
        let adjusted = self.exp + num_digits(&self.coef) as i64 - 1;
        (-MAX_EXPONENT..=MAX_EXPONENT).contains(&adjusted)
    }

    /// Whether the value is a whole number.
    pub fn is_integral(&self) -> bool {
        if self.exp >= 0 || self.coef.is_zero() {
            return true;
        }
        if self.exp.unsigned_abs() > num_digits(&self.coef) as u64 {
            return false;
        }
        let scale = pow10(self.exp.unsigned_abs());
        (&self.coef % scale).is_zero()
    }

    /// The integer value, truncated toward zero.
    pub fn to_bigint_trunc(&self) -> BigInt {
        let mag = if self.exp < 0 && self.exp.unsigned_abs() > num_digits(&self.coef) as u64 {
            BigUint::zero()
        } else if self.exp >= 0 {
            &self.coef * pow10(self.exp.unsigned_abs())
        } else {
            &self.coef / pow10(self.exp.unsigned_abs())
        };
        let sign = if self.neg { Sign::Minus } else { Sign::Plus };
        BigInt::from_biguint(sign, mag)
    }

    /// The value as `i128` when it is a whole number that fits.
    pub fn to_i128(&self) -> Option<i128> {
        if !self.is_integral() || self.exp > 40 {
            return None;
        }
        self.to_bigint_trunc().to_i128()
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse::<f64>().unwrap_or(f64::NAN)
    }

    /// `-self`; zero becomes positive zero, as the specification's `minus`.
    pub fn neg(&self) -> Decimal {
        Decimal {
            neg: !self.neg && !self.coef.is_zero(),
            coef: self.coef.clone(),
            exp: self.exp,
        }
    }

    /// `|self|`.
    pub fn abs(&self) -> Decimal {
        Decimal {
            neg: false,
            coef: self.coef.clone(),
            exp: self.exp,
        }
    }

    /// Rounds to [`PRECISION`] significant digits, half up.
    pub fn round(mut self) -> Decimal {
        let digits = num_digits(&self.coef);
        if digits <= PRECISION {
            return self;
        }
        let shift = (digits - PRECISION) as u64;
        let divisor = pow10(shift);
        let (mut q, r) = self.coef.div_rem(&divisor);
        if r * 2u32 >= divisor {
            q += 1u32;
        }
        self.exp += shift as i64;
        if num_digits(&q) > PRECISION {
            q /= 10u32;
            self.exp += 1;
        }
        self.coef = q;
        self
    }

    /// Both coefficients at the smaller exponent.
    fn aligned(&self, other: &Decimal) -> (BigInt, BigInt, i64) {
        let exp = self.exp.min(other.exp);
        let scale = |d: &Decimal| {
            let mag = &d.coef * pow10((d.exp - exp).unsigned_abs());
            BigInt::from_biguint(if d.neg { Sign::Minus } else { Sign::Plus }, mag)
        };
        (scale(self), scale(other), exp)
    }

    /// `self + other`, rounded.
    pub fn add(&self, other: &Decimal) -> Decimal {
        let (a, b, exp) = self.aligned(other);
        let sum = a + b;
        let neg = if sum.is_zero() {
            self.neg && other.neg
        } else {
            sum.is_negative()
        };
        Decimal {
            neg,
            coef: sum.magnitude().clone(),
            exp,
        }
        .round()
    }

    /// `self - other`, rounded.
    pub fn sub(&self, other: &Decimal) -> Decimal {
        let negated = Decimal {
            neg: !other.neg,
            coef: other.coef.clone(),
            exp: other.exp,
        };
        self.add(&negated)
    }

    /// `self * other`, rounded.
    pub fn mul(&self, other: &Decimal) -> Decimal {
        Decimal {
            neg: self.neg != other.neg,
            coef: &self.coef * &other.coef,
            exp: self.exp + other.exp,
        }
        .round()
    }

    /// `self * other`, exact (not rounded).
    pub fn mul_exact(&self, other: &Decimal) -> Decimal {
        Decimal {
            neg: self.neg != other.neg,
            coef: &self.coef * &other.coef,
            exp: self.exp + other.exp,
        }
    }

    /// `self / other` to [`PRECISION`] digits, with the specification's
    /// exponent rules (`6.0 / 2` is `3.0`, `1 / 4` is `0.25`).
    pub fn quo(&self, other: &Decimal) -> Result<Decimal, NumError> {
        if other.coef.is_zero() {
            return Err(NumError::DivisionByZero);
        }
        let mut quo = BigUint::zero();
        let mut adjust: i64 = 0;
        let mut carry: i64 = 0;
        if !self.coef.is_zero() {
            let mut dividend = self.coef.clone();
            let mut divisor = other.coef.clone();
            while dividend < divisor {
                dividend *= 10u32;
                adjust += 1;
            }
            loop {
                let ten = &divisor * 10u32;
                if dividend < ten {
                    break;
                }
                divisor = ten;
                adjust -= 1;
            }
            loop {
                let (digit, rest) = dividend.div_rem(&divisor);
                quo += digit;
                dividend = rest;
                if (dividend.is_zero() && adjust >= 0) || num_digits(&quo) == PRECISION {
                    break;
                }
                quo *= 10u32;
                dividend *= 10u32;
                adjust += 1;
            }
            if !dividend.is_zero() {
                let twice = dividend * 2u32;
                if twice >= divisor {
                    quo += 1u32;
                    if num_digits(&quo) > PRECISION {
                        quo /= 10u32;
                        carry = 1;
                    }
                }
            }
        }
        Ok(Decimal {
            neg: self.neg != other.neg,
            coef: quo,
            exp: self.exp - other.exp - adjust + carry,
        })
    }

    /// Compares by value (`1.0 == 1`, `-0 == 0`).
    pub fn cmp_value(&self, other: &Decimal) -> Ordering {
        match (self.coef.is_zero(), other.coef.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => {
                return if other.neg {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                return if self.neg {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            _ => {}
        }
        if self.neg != other.neg {
            return if self.neg {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        // Same sign: compare magnitudes, first by adjusted exponent.
        let adj_a = self.exp + num_digits(&self.coef) as i64;
        let adj_b = other.exp + num_digits(&other.coef) as i64;
        let mag = if adj_a != adj_b {
            adj_a.cmp(&adj_b)
        } else {
            let (a, b, _) = self.abs().aligned(&other.abs());
            a.cmp(&b)
        };
        if self.neg {
            mag.reverse()
        } else {
            mag
        }
    }

    /// Whether two decimals have the same value.
    pub fn eq_value(&self, other: &Decimal) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}

/// The specification's to-scientific-string.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.coef.to_str_radix(10);
        let n = digits.len() as i64;
        let adjusted = self.exp + n - 1;
        let sign = if self.neg { "-" } else { "" };
        if self.exp <= 0 && adjusted >= -6 {
            if self.exp == 0 {
                return write!(f, "{sign}{digits}");
            }
            let point = n + self.exp;
            if point > 0 {
                let (i, frac) = digits.split_at(point as usize);
                return write!(f, "{sign}{i}.{frac}");
            }
            let zeros = "0".repeat((-point) as usize);
            return write!(f, "{sign}0.{zeros}{digits}");
        }
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let esign = if adjusted >= 0 { "+" } else { "-" };
        write!(
            f,
            "{sign}{first}{point}{rest}E{esign}{}",
            adjusted.unsigned_abs()
        )
    }
}

/// Integer division as CUE's `div`, `mod`, `quo` and `rem` (Euclidean for
/// `div`/`mod`, truncated for `quo`/`rem`), exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntDivOp {
    /// `div`: Euclidean quotient.
    Div,
    /// `mod`: Euclidean remainder (never negative).
    Mod,
    /// `quo`: quotient truncated toward zero.
    Quo,
    /// `rem`: remainder of `quo`.
    Rem,
}

/// `a op b` on big integers; `None` when `b` is zero.
pub fn int_div(op: IntDivOp, a: &BigInt, b: &BigInt) -> Option<BigInt> {
    if b.is_zero() {
        return None;
    }
    let (q, r) = (a / b, a % b); // truncated
    Some(match op {
        IntDivOp::Quo => q,
        IntDivOp::Rem => r,
        IntDivOp::Div => {
            if r.is_negative() {
                if b.is_positive() {
                    q - BigInt::one()
                } else {
                    q + BigInt::one()
                }
            } else {
                q
            }
        }
        IntDivOp::Mod => {
            if r.is_negative() {
                r + b.abs()
            } else {
                r
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn prints_as_the_specification() {
        for (text, shown) in [
            ("1.0e400", "1.0E+400"),
            ("2.50", "2.50"),
            ("1e3", "1E+3"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("1.23e10", "1.23E+10"),
            ("-1.50", "-1.50"),
            ("0.0", "0.0"),
            (".5", "0.5"),
            ("0.5e1", "5"),
            ("2.5e-2", "0.025"),
            ("1.5E2", "1.5E+2"),
            ("1e-7", "1E-7"),
            (
                "123456789012345678901234567890.123456789",
                "123456789012345678901234567890.123456789",
            ),
        ] {
            assert_eq!(d(text).to_string(), shown, "{text}");
        }
    }

    #[test]
    fn arithmetic_rounds_to_24_digits_half_up() {
        let q = |a: &str, b: &str| d(a).quo(&d(b)).unwrap().to_string();
        assert_eq!(q("1", "3"), "0.333333333333333333333333");
        assert_eq!(q("2", "3"), "0.666666666666666666666667");
        assert_eq!(q("1e3", "7"), "142.857142857142857142857");
        assert_eq!(q("10", "4"), "2.5");
        assert_eq!(q("7.0", "2"), "3.5");
        assert_eq!(q("6.0", "2"), "3.0");
        assert_eq!(q("3", "1"), "3");
        assert_eq!(d("1").quo(&d("0")), Err(NumError::DivisionByZero));
        let third = d("1").quo(&d("3")).unwrap();
        assert_eq!(third.mul(&d("3")).to_string(), "0.999999999999999999999999");
        assert_eq!(
            d("99999999999999999999")
                .mul(&d("99999999999999999999"))
                .to_string(),
            "9.99999999999999999980000E+39"
        );
        assert_eq!(
            d("100000000000000000000000000.0").add(&d("1")).to_string(),
            "1.00000000000000000000000E+26"
        );
        assert_eq!(
            d("100000000000000000000002.5").add(&d("0")).to_string(),
            "100000000000000000000003"
        );
        assert_eq!(d("0.1").add(&d("0.2")).to_string(), "0.3");
        assert_eq!(d("1.50").add(&d("1.50")).to_string(), "3.00");
        assert_eq!(d("0").mul(&d("-1.5")).to_string(), "-0.0");
        assert_eq!(d("-1.5").add(&d("1.5")).to_string(), "0.0");
        assert_eq!(d("0.0").neg().to_string(), "0.0");
        assert_eq!(
            d("1e400").add(&d("1")).to_string(),
            "1.00000000000000000000000E+400"
        );
        assert_eq!(
            d("1e400").sub(&d("1")).to_string(),
            "1.00000000000000000000000E+400"
        );
        assert!(!d("1e99999").mul(&d("1e99999")).in_range());
        assert!(Decimal::parse("1e9999999").is_none());
    }

    #[test]
    fn compares_by_value() {
        assert!(d("1.0").eq_value(&d("1")));
        assert!(d("-0").eq_value(&d("0.00")));
        assert_eq!(d("1e30").cmp_value(&d("999")), Ordering::Greater);
        assert_eq!(d("-2").cmp_value(&d("-1.5")), Ordering::Less);
        assert_eq!(d("0.5").cmp_value(&d("0.25")), Ordering::Greater);
    }

    #[test]
    fn integer_division_is_euclidean_or_truncated() {
        let i = |v: i64| BigInt::from(v);
        assert_eq!(int_div(IntDivOp::Div, &i(-7), &i(2)), Some(i(-4)));
        assert_eq!(int_div(IntDivOp::Mod, &i(7), &i(-2)), Some(i(1)));
        assert_eq!(int_div(IntDivOp::Mod, &i(-7), &i(2)), Some(i(1)));
        assert_eq!(int_div(IntDivOp::Quo, &i(7), &i(-2)), Some(i(-3)));
        assert_eq!(int_div(IntDivOp::Rem, &i(-7), &i(2)), Some(i(-1)));
        assert_eq!(int_div(IntDivOp::Div, &i(1), &i(0)), None);
    }
}
