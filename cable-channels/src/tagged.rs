//! Shared plumbing for the `{"type": <tag>, ...fields}` messages of BuddyBoss and Jac
//! Cloud: split the tag off, decode the rest as the tag's struct, or keep it raw.

use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::Serializer;

use crate::{DecodeError, Object, Value};

/// The JSON value as an object, or a typed error.
pub(crate) fn into_object(value: Value) -> Result<Object, DecodeError> {
    match value {
        Value::Object(o) => Ok(o),
        other => Err(DecodeError::NotAnObject {
            found: crate::json::kind(&other),
        }),
    }
}

/// Parses text that must be a JSON object.
pub(crate) fn parse_object(text: &str) -> Result<Object, DecodeError> {
    into_object(crate::json::parse(text)?)
}

/// Removes and returns the string at `key`.
pub(crate) fn take_string(obj: &mut Object, key: &'static str) -> Result<String, DecodeError> {
    match obj.shift_remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(DecodeError::InvalidField {
            field: key,
            expected: "a string",
        }),
        None => Err(DecodeError::MissingField { field: key }),
    }
}

/// Decodes the fields of a known tag into its struct.
pub(crate) fn typed<T: DeserializeOwned>(name: &str, fields: Object) -> Result<T, DecodeError> {
    crate::json::typed(Value::Object(fields)).map_err(|e| DecodeError::payload(name, e))
}

/// Encodes an unknown tagged message: the tag first, then the raw fields (a field
/// that repeats the tag key is skipped, so the output stays valid JSON).
pub(crate) fn serialize_unknown<S: Serializer>(
    s: S,
    tag_key: &str,
    tag: &str,
    fields: &Object,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    map.serialize_entry(tag_key, tag)?;
    for (k, v) in fields.iter().filter(|(k, _)| *k != tag_key) {
        map.serialize_entry(k, v)?;
    }
    map.end()
}
