//! Helpers shared by the integration tests: golden files and JSON comparisons.
#![allow(dead_code)]

pub mod strategies;

use std::path::PathBuf;

use serde::Serialize;

/// The text of `tests/golden/<name>`.
pub fn golden(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of a golden JSONL file, parsed.
pub fn jsonl(name: &str) -> Vec<serde_json::Value> {
    golden(name)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect()
}

/// The JSON value of a text (order-insensitive comparison).
pub fn value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The JSON object of a text.
pub fn object(text: &str) -> serde_json::Map<String, serde_json::Value> {
    match value(text) {
        serde_json::Value::Object(o) => o,
        other => panic!("not an object: {other}"),
    }
}

/// Asserts two texts hold the same JSON value.
#[track_caller]
pub fn assert_same_value(encoded: &str, original: &str) {
    assert_eq!(
        value(encoded),
        value(original),
        "\nencoded:  {encoded}\noriginal: {original}"
    );
}

/// serde_json formatter writing Python's `json.dumps` default separators
/// (`", "` and `": "`), the form the recordings' client frames were sent in.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// A value encoded as Python's `json.dumps(v)` would (ASCII input only).
pub fn python_dumps<T: Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    v.serialize(&mut ser).expect("serializable");
    String::from_utf8(out).expect("utf-8")
}
