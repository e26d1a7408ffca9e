//! The events a client sends, tagged by `type`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tagged::{into_object, serialize_unknown, take_string, typed};
use crate::{encode_json, DecodeError, Object, Value};

use super::ids::{ChannelId, ClientId, RootId};

/// An event a client sends, by its `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JacClientEvent {
    /// `walker`: run a walker.
    Walker(WalkerEvent),
    /// `user`: send `data` to every socket of the listed roots.
    User(UserEvent),
    /// `channel`: send `data` to every socket on the listed channels.
    Channel(ChannelEvent),
    /// `client`: send `data` to the listed sockets.
    Client(ClientEvent),
    /// `change_user`: switch the socket's user (answered by a connection frame).
    ChangeUser(ChangeUserEvent),
    /// `connection`: ask for the connection info again.
    Connection(ConnectionEvent),
    /// A type this crate does not know (the real server answers `union_tag_invalid`).
    Unknown {
        /// The `type`.
        event_type: String,
        /// The other fields, in order.
        payload: Object,
    },
}

/// `{"type":"walker","walker":...,"response":...,"context":{...},"node":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkerEvent {
    /// `walker`: the walker's name.
    pub walker: String,
    /// `response`: whether to send the reply frame (server default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<bool>,
    /// `context`: the walker's fields (server default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Object>,
    /// `node`: the entry node (not in the seed doc; server default: the socket's root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<RootId>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"user","root_ids":[...],"data":{...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvent {
    /// `root_ids`: target users.
    pub root_ids: Vec<RootId>,
    /// `data`: delivered verbatim.
    pub data: Object,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"channel","channel_ids":[...],"data":{...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEvent {
    /// `channel_ids`: target channels.
    pub channel_ids: Vec<ChannelId>,
    /// `data`: delivered verbatim.
    pub data: Object,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"client","client_ids":[...],"data":{...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEvent {
    /// `client_ids`: target sockets.
    pub client_ids: Vec<ClientId>,
    /// `data`: delivered verbatim.
    pub data: Object,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"change_user","token":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeUserEvent {
    /// `token`: `None` = absent, `Some(None)` = `null` (both fall back to the
    /// handshake's Authorization header), `Some(Some(t))` = `"Bearer <jwt>"` or the
    /// raw JWT.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub token: Option<Option<String>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"connection"}`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnectionEvent {
    /// Unknown fields (the server ignores them).
    #[serde(flatten)]
    pub extra: Object,
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        v: &Option<Option<String>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(Some(t)) => s.serialize_str(t),
            _ => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum TaggedEvent<'a> {
    #[serde(rename = "walker")]
    Walker(&'a WalkerEvent),
    #[serde(rename = "user")]
    User(&'a UserEvent),
    #[serde(rename = "channel")]
    Channel(&'a ChannelEvent),
    #[serde(rename = "client")]
    Client(&'a ClientEvent),
    #[serde(rename = "change_user")]
    ChangeUser(&'a ChangeUserEvent),
    #[serde(rename = "connection")]
    Connection(&'a ConnectionEvent),
}

impl JacClientEvent {
    /// The known `type`s, in the server's order.
    pub const TYPES: [&'static str; 6] = [
        "connection",
        "walker",
        "user",
        "channel",
        "client",
        "change_user",
    ];

    /// `{"type":"walker","walker":<name>,"response":<response>,"context":<context>}`.
    pub fn walker(name: impl Into<String>, response: bool, context: Object) -> Self {
        Self::Walker(WalkerEvent {
            walker: name.into(),
            response: Some(response),
            context: Some(context),
            node: None,
            extra: Object::new(),
        })
    }

    /// `{"type":"user","root_ids":[...],"data":{...}}`.
    pub fn user(root_ids: Vec<RootId>, data: Object) -> Self {
        Self::User(UserEvent {
            root_ids,
            data,
            extra: Object::new(),
        })
    }

    /// `{"type":"channel","channel_ids":[...],"data":{...}}`.
    pub fn channel(channel_ids: Vec<ChannelId>, data: Object) -> Self {
        Self::Channel(ChannelEvent {
            channel_ids,
            data,
            extra: Object::new(),
        })
    }

    /// `{"type":"client","client_ids":[...],"data":{...}}`.
    pub fn client(client_ids: Vec<ClientId>, data: Object) -> Self {
        Self::Client(ClientEvent {
            client_ids,
            data,
            extra: Object::new(),
        })
    }

    /// `{"type":"change_user","token":<token>}`, or `{"type":"change_user"}` for `None`.
    pub fn change_user(token: Option<&str>) -> Self {
        Self::ChangeUser(ChangeUserEvent {
            token: token.map(|t| Some(t.to_owned())),
            extra: Object::new(),
        })
    }

    /// `{"type":"connection"}`.
    pub fn connection() -> Self {
        Self::Connection(ConnectionEvent::default())
    }

    /// Decodes a client frame.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::from_json(crate::json::parse(text)?)
    }

    /// Decodes a parsed client frame.
    pub fn from_json(value: Value) -> Result<Self, DecodeError> {
        let mut obj = into_object(value)?;
        let tag = take_string(&mut obj, "type")?;
        Ok(match tag.as_str() {
            "walker" => Self::Walker(typed(&tag, obj)?),
            "user" => Self::User(typed(&tag, obj)?),
            "channel" => Self::Channel(typed(&tag, obj)?),
            "client" => Self::Client(typed(&tag, obj)?),
            "change_user" => Self::ChangeUser(typed(&tag, obj)?),
            "connection" => Self::Connection(typed(&tag, obj)?),
            _ => Self::Unknown {
                event_type: tag,
                payload: obj,
            },
        })
    }

    /// The `type`.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Walker(_) => "walker",
            Self::User(_) => "user",
            Self::Channel(_) => "channel",
            Self::Client(_) => "client",
            Self::ChangeUser(_) => "change_user",
            Self::Connection(_) => "connection",
            Self::Unknown { event_type, .. } => event_type,
        }
    }

    /// Compact JSON, `type` first, then the fields in the doc's order.
    pub fn encode(&self) -> String {
        encode_json(self)
    }
}

impl Serialize for JacClientEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Walker(v) => TaggedEvent::Walker(v).serialize(s),
            Self::User(v) => TaggedEvent::User(v).serialize(s),
            Self::Channel(v) => TaggedEvent::Channel(v).serialize(s),
            Self::Client(v) => TaggedEvent::Client(v).serialize(s),
            Self::ChangeUser(v) => TaggedEvent::ChangeUser(v).serialize(s),
            Self::Connection(v) => TaggedEvent::Connection(v).serialize(s),
            Self::Unknown {
                event_type,
                payload,
            } => serialize_unknown(s, "type", event_type, payload),
        }
    }
}

impl<'de> Deserialize<'de> for JacClientEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(v).map_err(serde::de::Error::custom)
    }
}
