//! The frames the server sends, recognised by their exact shape.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{encode_json, DecodeError, Object, Value};

use super::ids::{ChannelId, ClientId, RootId};

/// A frame the server sends. Recognised by its exact shape (set of keys and their
/// types, any key order); anything else is a delivered payload,
/// [`JacServerFrame::Notification`].
///
/// Delivered payloads are arbitrary client data, so one that happens to have exactly
/// the shape of a server frame (say `{"status":200,"reports":[]}`) decodes as that
/// frame: the wire cannot tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JacServerFrame {
    /// `{"type":"connection","data":{"client_id":…,"root_id":…,"channel_id":…}}`: on
    /// open, on a `connection` event, after every `change_user`.
    Connection(ConnectionInfo),
    /// `{"status":200,"reports":[…]}`: a walker's reply (only when `response` was true).
    WalkerResponse(WalkerResponse),
    /// `{"type":"walker","error":"<message>"}`.
    WalkerError(WalkerError),
    /// `{"error":[{"type","loc","msg","input",["ctx"],"url"},…]}`: pydantic
    /// validation errors (never empty).
    ValidationErrors(Vec<ValidationError>),
    /// `{"error":["Traceback (most recent call last):\n",…]}`: any other exception,
    /// as Python's `traceback.format_exception` lines.
    Traceback(Vec<String>),
    /// Anything else: the `data` of a user/channel/client event or of a `notify_*`
    /// call, verbatim.
    Notification(Value),
}

/// The `data` of a connection frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// `client_id`: this socket.
    pub client_id: ClientId,
    /// `root_id`: the user's root, or the public root.
    pub root_id: RootId,
    /// `channel_id`: the channel this socket listens on.
    pub channel_id: ChannelId,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"status":<status>,"reports":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkerResponse {
    /// `status` (200 on the WebSocket).
    pub status: u16,
    /// `reports`: what the walker reported, in order.
    pub reports: Vec<Value>,
}

/// `{"type":"walker","error":<message>}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkerError {
    /// The message; the server has exactly four (see the constructors).
    pub error: String,
}

impl WalkerError {
    /// `Invalid request! Please use valid walker event!` (unknown walker, or one
    /// without `"websocket"` in its methods).
    pub fn invalid_request() -> Self {
        Self {
            error: "Invalid request! Please use valid walker event!".to_owned(),
        }
    }

    /// `Event <walker> requires to be authenticated!`
    pub fn requires_authentication(walker: &str) -> Self {
        Self {
            error: format!("Event {walker} requires to be authenticated!"),
        }
    }

    /// `Event <walker> requires to be unauthenticated!`
    pub fn requires_unauthentication(walker: &str) -> Self {
        Self {
            error: format!("Event {walker} requires to be unauthenticated!"),
        }
    }

    /// `You don't have access on target entry <node>!`
    pub fn no_access(node: &RootId) -> Self {
        Self {
            error: format!("You don't have access on target entry {node}!"),
        }
    }
}

/// One pydantic error of a validation error frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// `type`: pydantic's error type (`missing`, `int_parsing`, `union_tag_invalid`...).
    #[serde(rename = "type")]
    pub error_type: String,
    /// `loc`: where; `["event", "<type tag>", ...]` for event errors, `[field]` for
    /// walker context errors.
    pub loc: Vec<LocItem>,
    /// `msg`: human-readable message.
    pub msg: String,
    /// `input`: the offending input.
    #[serde(default)]
    pub input: Value,
    /// `ctx`: extra context of some error types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Object>,
    /// `url`: `https://errors.pydantic.dev/2.10/v/<type>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// An element of a pydantic `loc`: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LocItem {
    /// A field name.
    Field(String),
    /// A list index.
    Index(i64),
}

impl Serialize for LocItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LocItem::Field(f) => s.serialize_str(f),
            LocItem::Index(i) => s.serialize_i64(*i),
        }
    }
}

impl<'de> Deserialize<'de> for LocItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = LocItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name or an index")
            }
            fn visit_str<E>(self, v: &str) -> Result<LocItem, E> {
                Ok(LocItem::Field(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<LocItem, E> {
                Ok(LocItem::Index(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LocItem, E> {
                i64::try_from(v)
                    .map(LocItem::Index)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

impl JacServerFrame {
    /// Decodes a server frame. Only text that is not JSON is an error: every JSON
    /// value is at least a [`JacServerFrame::Notification`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Ok(Self::from_json(crate::json::parse(text)?))
    }

    /// Classifies a parsed frame.
    pub fn from_json(value: Value) -> Self {
        Self::classify(&value).unwrap_or(JacServerFrame::Notification(value))
    }

    fn classify(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        let keys = |expected: &[&str]| {
            obj.len() == expected.len() && expected.iter().all(|k| obj.contains_key(*k))
        };
        if keys(&["type", "data"]) && obj.get("type")?.as_str()? == "connection" {
            let data = obj.get("data")?.clone();
            return crate::json::typed(data)
                .ok()
                .map(JacServerFrame::Connection);
        }
        if keys(&["status", "reports"]) {
            return crate::json::typed(value.clone())
                .ok()
                .map(JacServerFrame::WalkerResponse);
        }
        if keys(&["type", "error"]) && obj.get("type")?.as_str()? == "walker" {
            let error = obj.get("error")?.as_str()?.to_owned();
            return Some(JacServerFrame::WalkerError(WalkerError { error }));
        }
        if keys(&["error"]) {
            let Value::Array(items) = obj.get("error")? else {
                return None;
            };
            if items.iter().all(|i| matches!(i, Value::String(_))) {
                let lines = items.iter().filter_map(|i| i.as_str().map(str::to_owned));
                return Some(JacServerFrame::Traceback(lines.collect()));
            }
            return crate::json::typed(Value::Array(items.clone()))
                .ok()
                .map(JacServerFrame::ValidationErrors);
        }
        None
    }

    /// For a [`JacServerFrame::Notification`] object with a string `type` (the
    /// seed doc's `{"type":"chat","data":…}` convention), that type.
    pub fn notification_type(&self) -> Option<&str> {
        match self {
            JacServerFrame::Notification(Value::Object(o)) => o.get("type")?.as_str(),
            _ => None,
        }
    }

    /// Compact JSON, as the server's orjson writes it.
    pub fn encode(&self) -> String {
        encode_json(self)
    }
}

impl Serialize for JacServerFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JacServerFrame::Connection(info) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("type", "connection")?;
                map.serialize_entry("data", info)?;
                map.end()
            }
            JacServerFrame::WalkerResponse(r) => r.serialize(s),
            JacServerFrame::WalkerError(e) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("type", "walker")?;
                map.serialize_entry("error", &e.error)?;
                map.end()
            }
            JacServerFrame::ValidationErrors(errors) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("error", errors)?;
                map.end()
            }
            JacServerFrame::Traceback(lines) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("error", lines)?;
                map.end()
            }
            JacServerFrame::Notification(v) => v.serialize(s),
        }
    }
}
