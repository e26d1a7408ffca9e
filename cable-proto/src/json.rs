//! JSON the way Rails writes it.
//!
//! Action Cable encodes every server frame with `ActiveSupport::JSON.encode`,
//! which escapes `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026` and the
//! line separators U+2028 and U+2029 as `\u2028` and `\u2029`, leaves other
//! non-ASCII characters as UTF-8 and does not escape `/`. Control characters
//! get Ruby's JSON generator escapes: `\b \f \n \r \t` and `\u00xx` (lower-case
//! hex) for the rest. This module reproduces that byte for byte, so frames
//! built from Rust values match what Rails sends.
//!
//! ```
//! use cable_proto::json::to_rails_json;
//! let frame = to_rails_json(&serde_json::json!({"html": "<b>&</b>", "path": "a/b"})).unwrap();
//! assert_eq!(frame, r#"{"html":"\u003cb\u003e\u0026\u003c/b\u003e","path":"a/b"}"#);
//! ```

use std::io;

use serde::de::IgnoredAny;
use serde::Serialize;
use serde_json::ser::Formatter;

/// A [`serde_json`] formatter that escapes strings as ActiveSupport does.
#[derive(Debug, Clone, Copy, Default)]
pub struct RailsFormatter;

impl Formatter for RailsFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        write_html_safe(writer, fragment)
    }
}

/// Writes `fragment` (already free of quotes, backslashes and control
/// characters) with `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn write_html_safe<W: ?Sized + io::Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let bytes = fragment.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (escape, width): (&[u8], usize) = match bytes[i] {
            b'<' => (b"\\u003c", 1),
            b'>' => (b"\\u003e", 1),
            b'&' => (b"\\u0026", 1),
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                (b"\\u2028", 3)
            }
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA9) => {
                (b"\\u2029", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        writer.write_all(&bytes[start..i])?;
        writer.write_all(escape)?;
        i += width;
        start = i;
    }
    writer.write_all(&bytes[start..])
}

/// Serializes `value` as compact JSON with Rails' escaping.
pub fn to_rails_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(64);
    write_rails_json(&mut out, value)?;
    // The serializer only writes valid UTF-8.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Appends `value` as compact JSON with Rails' escaping to `out`.
pub fn write_rails_json<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    let mut serializer = serde_json::Serializer::with_formatter(out, RailsFormatter);
    value.serialize(&mut serializer)
}

/// Appends `text` as a JSON string literal (quotes included) with Rails' escaping.
pub fn write_rails_string(out: &mut Vec<u8>, text: &str) {
    // Serializing a str into a Vec cannot fail.
    let _ = write_rails_json(out, text);
}

/// Checks that `text` is exactly one JSON value (surrounding whitespace allowed).
pub fn validate(text: &str) -> Result<(), InvalidJson> {
    serde_json::from_str::<IgnoredAny>(text)
        .map(|_| ())
        .map_err(InvalidJson::from_serde)
}

/// Where and why a JSON text failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at line {line} column {column}")]
pub struct InvalidJson {
    /// The kind of failure.
    pub kind: JsonErrorKind,
    /// 1-based line of the failure.
    pub line: usize,
    /// 1-based column of the failure.
    pub column: usize,
}

/// The kinds of JSON failure, after `serde_json::error::Category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonErrorKind {
    /// Not JSON at all: a syntax error or trailing characters.
    #[error("syntax error")]
    Syntax,
    /// The text ended in the middle of a value.
    #[error("unexpected end of input")]
    Eof,
    /// Valid JSON of the wrong shape.
    #[error("unexpected JSON type")]
    Data,
}

impl InvalidJson {
    pub(crate) fn from_serde(err: serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match err.classify() {
            Category::Eof => JsonErrorKind::Eof,
            Category::Data => JsonErrorKind::Data,
            Category::Syntax | Category::Io => JsonErrorKind::Syntax,
        };
        Self {
            kind,
            line: err.line(),
            column: err.column(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_active_support() {
        let s = to_rails_json(&json!("<>&/\u{2028}\u{2029}é😀\"\\")).unwrap();
        assert_eq!(s, "\"\\u003c\\u003e\\u0026/\\u2028\\u2029é😀\\\"\\\\\"");
    }

    #[test]
    fn control_characters_use_ruby_escapes() {
        let s = to_rails_json(&json!("\u{1}\u{1f}\t\n\r\u{8}\u{c}\u{7f}")).unwrap();
        assert_eq!(s, "\"\\u0001\\u001f\\t\\n\\r\\b\\f\u{7f}\"");
    }

    #[test]
    fn keys_are_escaped_too_and_order_is_kept() {
        let mut map = serde_json::Map::new();
        map.insert("z<".into(), json!(1));
        map.insert("a".into(), json!([true, null, 1.5]));
        let s = to_rails_json(&map).unwrap();
        // The workspace enables serde_json's `preserve_order`: insertion order,
        // as Ruby hashes keep it.
        assert_eq!(s, r#"{"z\u003c":1,"a":[true,null,1.5]}"#);
    }

    #[test]
    fn validate_reports_kind() {
        assert!(validate(" {\"a\":1} ").is_ok());
        assert_eq!(validate("{\"a\":").unwrap_err().kind, JsonErrorKind::Eof);
        assert_eq!(validate("{} x").unwrap_err().kind, JsonErrorKind::Syntax);
        assert_eq!(validate("").unwrap_err().kind, JsonErrorKind::Eof);
    }
}

/// JSON text known to be valid: a payload ready to splice into frames.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(bytes::Bytes);

impl JsonText {
    /// Validates `text` as one JSON value.
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidJson> {
        let text = text.into();
        validate(&text)?;
        Ok(Self(bytes::Bytes::from(text)))
    }

    /// Encodes `value` with Rails' escaping.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        let mut out = Vec::with_capacity(64);
        write_rails_json(&mut out, value)?;
        Ok(Self(bytes::Bytes::from(out)))
    }

    /// `text` as a JSON string, with Rails' escaping.
    pub fn string(text: &str) -> Self {
        let mut out = Vec::with_capacity(text.len() + 2);
        write_rails_string(&mut out, text);
        Self(bytes::Bytes::from(out))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        // Built only from `String`s and the serializer's UTF-8 output.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The JSON text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JsonText").field(&self.as_str()).finish()
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
