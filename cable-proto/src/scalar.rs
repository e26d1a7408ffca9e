//! A JSON value as the one-pass parsers (client commands in
//! [`crate::command`], server frames in [`crate::frame`]) need to see it: a
//! string borrowed from the frame when it has no escapes, `null`, a boolean,
//! a number, or an object or array (skipped, not built); an object key,
//! which must be a string; and the reading of a whole text as one object.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::truncate;
use crate::json::{InvalidJson, JsonErrorKind};

/// One JSON value, read in one pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// A string, borrowed when it has no escapes.
    Str(Cow<'a, str>),
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// An object (its content skipped).
    Object,
    /// An array (its content skipped).
    Array,
}

impl Scalar<'_> {
    /// The value as an error message shows it, cut to 64 bytes.
    pub(crate) fn describe(&self) -> Box<str> {
        match self {
            Self::Str(s) => truncate(&serde_json::to_string(s).unwrap_or_default(), 64),
            Self::Null => "null".into(),
            Self::Bool(v) => v.to_string().into(),
            Self::Int(v) => v.to_string().into(),
            Self::UInt(v) => v.to_string().into(),
            Self::Float(v) => v.to_string().into(),
            Self::Object => "{…}".into(),
            Self::Array => "[…]".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Array)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// An object key, borrowed when it has no escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(deserializer)? {
            Scalar::Str(key) => Ok(Key(key)),
            _ => Err(de::Error::custom("a key must be a string")),
        }
    }
}

/// Why a text is not the object a one-pass reader wanted.
#[derive(Debug)]
pub(crate) enum NotAnObject {
    /// Valid JSON, but not an object.
    OtherValue,
    /// Not JSON.
    Invalid(InvalidJson),
}

/// Reads `text` with `T`'s object visitor (which accepts every value inside
/// the object), telling a valid non-object apart from text that is not JSON:
/// the visitor refuses a non-object at its first token, a data error.
pub(crate) fn read_object<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, NotAnObject> {
    serde_json::from_str(text).map_err(|e| {
        let err = InvalidJson::from_serde(e);
        if err.kind != JsonErrorKind::Data {
            return NotAnObject::Invalid(err);
        }
        match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => NotAnObject::OtherValue,
            Err(e) => NotAnObject::Invalid(InvalidJson::from_serde(e)),
        }
    })
}
