//! An order-preserving JSON value.
//!
//! Payloads of these systems carry free-form objects (`Record<string, any>` in
//! Circle's interfaces, the `data` of Jac Cloud events, walker reports...). Encoding
//! must give back the exact bytes that came in, so objects keep the order their keys
//! arrived in. `serde_json::Value` sorts keys unless serde_json's `preserve_order`
//! feature is on, and turning that feature on here would change `serde_json::Map` for
//! every crate in the workspace. So this crate has its own small value type, [`Json`],
//! whose objects ([`Object`]) are insertion-ordered.
//!
//! Equality of objects ignores key order (like JSON itself). The order shows up only
//! in the encoded bytes.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Number;

use crate::DecodeError;

/// A JSON value whose objects keep their key order.
///
/// ```
/// use cable_channels::Json;
///
/// let v = Json::parse(r#"{"type":"chat","data":{"m":"hi"}}"#).unwrap();
/// assert_eq!(v.encode(), r#"{"type":"chat","data":{"m":"hi"}}"#); // order kept
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Json {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number: a `u64`, an `i64` or a finite `f64` (as in `serde_json`).
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in arrival order.
    Object(Object),
}

/// A JSON object whose keys keep their insertion order.
///
/// A duplicate key keeps its first position and takes the last value, as
/// `JSON.parse` and Python's `json.loads` do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object(IndexMap<String, Json>);

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self(IndexMap::new())
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the object has no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.get(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets `key` to `value`. A new key goes last; an existing key keeps its place.
    /// Returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Json>) -> Option<Json> {
        self.0.insert(key.into(), value.into())
    }

    /// Removes `key`, keeping the order of the other keys. Returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        self.0.shift_remove(key)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Compact JSON text, keys in order.
    pub fn encode(&self) -> String {
        crate::encode_json(self)
    }
}

impl<K: Into<String>, V: Into<Json>> FromIterator<(K, V)> for Object {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

impl IntoIterator for Object {
    type Item = (String, Json);
    type IntoIter = indexmap::map::IntoIter<String, Json>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Json {
    /// Parses JSON text. Depth is limited (128 levels, serde_json's limit), so deep
    /// input is an error, not a stack overflow.
    pub fn parse(text: &str) -> Result<Json, DecodeError> {
        serde_json::from_str(text).map_err(DecodeError::from_syntax)
    }

    /// Compact JSON text (no spaces, keys in order, non-ASCII as raw UTF-8), the
    /// form `JSON.stringify` and orjson produce.
    pub fn encode(&self) -> String {
        crate::encode_json(self)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The number as `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The name of this kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// Converts to a `serde_json::Value` (whose objects may sort their keys).
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Number(n) => serde_json::Value::Number(n.clone()),
            Json::String(s) => serde_json::Value::String(s.clone()),
            Json::Array(a) => serde_json::Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// Deserializes a typed value out of this one (used by the decoders).
    pub(crate) fn into_typed<T: de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        T::deserialize(self)
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl From<serde_json::Value> for Json {
    /// Converts from `serde_json::Value`; objects come in the order that type gives.
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(b),
            serde_json::Value::Number(n) => Json::Number(n),
            serde_json::Value::String(s) => Json::String(s),
            serde_json::Value::Array(a) => Json::Array(a.into_iter().map(Json::from).collect()),
            serde_json::Value::Object(o) => {
                Json::Object(o.into_iter().map(|(k, v)| (k, Json::from(v))).collect())
            }
        }
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}
impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Json::Number(n.into())
    }
}
impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Json::Number(n.into())
    }
}
impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::String(s.to_owned())
    }
}
impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::String(s)
    }
}
impl From<Vec<Json>> for Json {
    fn from(a: Vec<Json>) -> Self {
        Json::Array(a)
    }
}
impl From<Object> for Json {
    fn from(o: Object) -> Self {
        Json::Object(o)
    }
}

// ---------------------------------------------------------------- Serialize

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Json::Object(o) => o.serialize(s),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

// -------------------------------------------------------------- Deserialize

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        // Non-finite floats cannot come from JSON text; other formats map them to
        // null, as JSON.stringify does.
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json, A::Error> {
        ObjectVisitor.visit_map(map).map(Json::Object)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let mut out = Object::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            out.0.insert(k, v);
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        d.deserialize_map(ObjectVisitor)
    }
}

// ------------------------------------------- Json as a Deserializer (typed views)

impl<'de> Deserializer<'de> for Json {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => visitor.visit_string(s),
            Json::Array(a) => {
                let len = a.len();
                let mut seq = SeqDeser(a.into_iter());
                let v = visitor.visit_seq(&mut seq)?;
                if seq.0.len() == 0 {
                    Ok(v)
                } else {
                    Err(de::Error::invalid_length(len, &"fewer elements in array"))
                }
            }
            Json::Object(o) => visitor.visit_map(MapDeser {
                iter: o.0.into_iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Json::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Json::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => Err(de::Error::invalid_type(
                de::Unexpected::Other(other.kind()),
                &"a string naming an enum variant",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        drop(self);
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct SeqDeser(std::vec::IntoIter<Json>);

impl<'de> SeqAccess<'de> for SeqDeser {
    type Error = serde_json::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(v).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapDeser {
    iter: indexmap::map::IntoIter<String, Json>,
    value: Option<Json>,
}

impl<'de> MapAccess<'de> for MapDeser {
    type Error = serde_json::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let key: de::value::StringDeserializer<serde_json::Error> = k.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::custom("value is missing")),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
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
