//! Stable diagnostic codes of the parser. A code is never reused for another
//! meaning. `E01xx` are lexing and literal errors, `E02xx` syntax errors.

/// A character that starts no token (e.g. `~`, `%`, a stray `\`).
pub const E0101: &str = "E0101";
/// A string or bytes literal without its closing quote.
pub const E0102: &str = "E0102";
/// A malformed attribute: `@name` not followed by a balanced `(...)`.
pub const E0103: &str = "E0103";
/// An unknown or malformed escape sequence in a string.
pub const E0104: &str = "E0104";
/// A malformed number: legacy octal `0755`, misplaced `_`, missing digits.
pub const E0105: &str = "E0105";
/// A number that does not fit (integers written with a prefix or a
/// multiplier are limited to 128 bits; decimal integers are unlimited).
pub const E0106: &str = "E0106";
/// A line of a multi-line string indented less than its closing quotes.
pub const E0107: &str = "E0107";
/// Text after the opening `"""` of a multi-line string.
pub const E0108: &str = "E0108";
/// A number with an SI multiplier that is not a whole number (`1.1K`).
pub const E0109: &str = "E0109";
/// String interpolations nested too deeply.
pub const E0110: &str = "E0110";

/// An unexpected token: the message names what was expected.
pub const E0201: &str = "E0201";
/// An expression was expected.
pub const E0202: &str = "E0202";
/// Two declarations or elements not separated by `,` or a newline.
pub const E0203: &str = "E0203";
/// A label was expected before `:`, or a label is followed by something
/// other than `:`.
pub const E0204: &str = "E0204";
/// An unclosed `{`, `[` or `(`.
pub const E0205: &str = "E0205";
/// An ellipsis that is not the last element of a list.
pub const E0206: &str = "E0206";
/// An import declaration after other declarations.
pub const E0207: &str = "E0207";
/// An invalid import path or import spec.
pub const E0208: &str = "E0208";
/// An alias `X=` where none is allowed.
pub const E0209: &str = "E0209";
/// A comprehension (`for`, `if`) where an expression is expected.
pub const E0210: &str = "E0210";
/// An identifier was expected.
pub const E0211: &str = "E0211";
/// A stray closing `}`, `]` or `)`.
pub const E0212: &str = "E0212";
/// A `package` clause that is not at the top of the file.
pub const E0213: &str = "E0213";
/// Input nested too deeply (more than 256 levels of brackets or operators).
pub const E0299: &str = "E0299";
