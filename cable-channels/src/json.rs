//! JSON values: serde_json's, with insertion-ordered objects.
//!
//! Payloads of these systems carry free-form objects (`Record<string, any>` in
//! Circle's interfaces, the `data` of Jac Cloud events, walker reports...). Encoding
//! must give back the exact bytes that came in, so objects keep the order their keys
//! arrived in: this crate turns on serde_json's `preserve_order` feature (the
//! workspace does too), which makes [`Object`] an insertion-ordered map. Equality of
//! objects still ignores key order (as JSON does); the order shows in the bytes.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use serde_json::Value;

use crate::DecodeError;

/// A JSON object whose keys keep their insertion order (serde_json's `Map` with
/// `preserve_order`). A duplicate key keeps its first position and takes the last
/// value, as `JSON.parse` and Python's `json.loads` do.
pub type Object = serde_json::Map<String, Value>;

/// Parses JSON text. Depth is limited (128 levels, serde_json's limit), so deep input
/// is an error, not a stack overflow.
pub(crate) fn parse(text: &str) -> Result<Value, DecodeError> {
    serde_json::from_str(text).map_err(DecodeError::from_syntax)
}

/// The name of a value's kind, for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserializes a typed value out of a JSON value (used by the decoders).
pub(crate) fn typed<T: de::DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v)
}

// ------------------------------------------------------------------ IdValue

/// An id that the wire carries either as a JSON number or as a JSON string.
///
/// The docs show ids both ways (platformOS's GraphQL example sends `room_id: "12"`,
/// its JavaScript client a number; BuddyBoss's examples use strings such as
/// `"USER_ID"` while its WordPress ids are numbers). Keeping which form arrived lets
/// encoding give back the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdValue {
    /// A non-negative integer id, e.g. `12`.
    Number(u64),
    /// A string id, e.g. `"12"` or `"USER_ID"`.
    Text(String),
}

impl fmt::Display for IdValue {
    /// The id without quotes: `12` for both `12` and `"12"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdValue::Number(n) => write!(f, "{n}"),
            IdValue::Text(s) => f.write_str(s),
        }
    }
}

impl From<u64> for IdValue {
    fn from(n: u64) -> Self {
        IdValue::Number(n)
    }
}
impl From<&str> for IdValue {
    fn from(s: &str) -> Self {
        IdValue::Text(s.to_owned())
    }
}
impl From<String> for IdValue {
    fn from(s: String) -> Self {
        IdValue::Text(s)
    }
}

impl Serialize for IdValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IdValue::Number(n) => s.serialize_u64(*n),
            IdValue::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or a string id")
            }
            fn visit_u64<E>(self, v: u64) -> Result<IdValue, E> {
                Ok(IdValue::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdValue, E> {
                u64::try_from(v)
                    .map(IdValue::Number)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E>(self, v: &str) -> Result<IdValue, E> {
                Ok(IdValue::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<IdValue, E> {
                Ok(IdValue::Text(v))
            }
        }
        d.deserialize_any(V)
    }
}
