//! The `struct` package.

use super::{arg_int, type_error, validator, R};
use crate::value::{Package, Value};

/// `struct`.
pub(super) static PACKAGE: Package = Package {
    path: "struct",
    members: &[
        ("MaxFields", validator(2, max_fields)),
        ("MinFields", validator(2, min_fields)),
    ],
};

/// The number of regular fields of the struct argument.
fn field_count(args: &[Value]) -> Result<i128, crate::value::BuiltinError> {
    match args.first() {
        Some(Value::Struct(fields)) => Ok(fields.len() as i128),
        _ => Err(type_error(args, 0, "struct")),
    }
}

fn min_fields(args: &[Value]) -> R {
    Ok(Value::Bool(field_count(args)? >= arg_int(args, 1)?))
}

fn max_fields(args: &[Value]) -> R {
    Ok(Value::Bool(field_count(args)? <= arg_int(args, 1)?))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, i};
    use crate::value::Value;

    #[test]
    fn counts_regular_fields() {
        let one: Value = Value::Struct([("x".to_string(), i(1))].into_iter().collect());
        assert_eq!(
            call("struct", "MinFields", &[one.clone(), i(1)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("struct", "MinFields", &[one.clone(), i(2)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            call("struct", "MaxFields", &[one, i(1)]),
            Ok(Value::Bool(true))
        );
    }
}
