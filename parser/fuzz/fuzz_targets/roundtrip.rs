//! The token stream is lossless: printing a parse gives back the input, and
//! re-parsing the printed text gives the same tree and the same errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let first = cuedag_parser::parse(&text);
    let printed = cuedag_parser::print(&first);
    assert_eq!(printed, text);
    let second = cuedag_parser::parse(&printed);
    assert_eq!(first.file, second.file);
    assert_eq!(first.errors, second.errors);
});
