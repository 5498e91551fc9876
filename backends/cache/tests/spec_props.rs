//! Properties of the spec parser: it never panics, and quoting any value
//! CSV-style gives it back unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cuedag_cache::spec::{CacheSpec, Direction, Origin};
use proptest::prelude::*;

fn no_env(_: &str) -> Option<String> {
    None
}

/// CSV-quotes a field (`"` doubled).
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

proptest! {
    #[test]
    fn never_panics_and_errors_point_inside_the_text(text in "\\PC{0,60}") {
        for direction in [Direction::To, Direction::From] {
            if let Err(err) = CacheSpec::parse(direction, Origin::Flag, &text, &no_env) {
                prop_assert!(err.column >= 1 && err.column <= text.len() + 1, "{err}");
                prop_assert!(!err.to_string().is_empty());
            }
        }
    }

    #[test]
    fn structured_noise_never_panics(
        fields in prop::collection::vec(
            ("(type|dest|src|mode|tag|ref|\"|=|,| )*", "[a-z=\",~/ :@]{0,12}"),
            0..6,
        )
    ) {
        let text: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let text = text.join(",");
        let _ = CacheSpec::parse(Direction::To, Origin::Env, &text, &no_env);
    }

    #[test]
    fn quoted_values_round_trip(dest in "[^\\x00]{1,40}", whole_field in any::<bool>()) {
        prop_assume!(!dest.starts_with('~'));
        let field = if whole_field {
            quote(&format!("dest={dest}"))
        } else {
            format!("dest={}", quote(&dest))
        };
        let text = format!("type=local,{field},mode=max");
        let spec = CacheSpec::parse(Direction::To, Origin::Flag, &text, &no_env).unwrap();
        prop_assert_eq!(spec.attrs.get("dest"), Some(dest.as_str()));
        prop_assert_eq!(spec.attrs.get("mode"), Some("max"));
    }
}
