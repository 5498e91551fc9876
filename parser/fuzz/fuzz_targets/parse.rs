//! Parsing any input must not panic, and every diagnostic must point inside
//! the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parse = cuedag_parser::parse(&text);
    for diag in &parse.errors {
        if let Some(span) = diag.primary_span() {
            assert!(span.start <= span.end && span.end as usize <= text.len());
        }
    }
});
