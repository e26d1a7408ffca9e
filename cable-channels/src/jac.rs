//! Jac Cloud's `/websocket` endpoint (`jac-cloud-websocket.md`, and the recorded
//! behaviour of the real server, `jac-cloud` 0.2.11, in `../shared/jacref/README.md`).
//!
//! Plain WebSocket, JSON text frames. Clients send events tagged by `type`
//! ([`JacClientEvent`]); the server sends one of five shapes ([`JacServerFrame`]):
//! connection info, a walker reply, a walker error, a validation error list, a
//! traceback, and otherwise the delivered `data` object verbatim, with no envelope.
//!
//! # Ids
//!
//! | type | format | other forms |
//! |---|---|---|
//! | [`ClientId`] | `<unix seconds>:<32 lowercase hex>` ([`GeneratedId`]) | kept as [`ClientId::Other`] (a client may name any id; the server just finds nobody) |
//! | [`ChannelId`] | the generated format when the server picks it | any string given in `?channel_id=` is [`ChannelId::Named`] |
//! | [`RootId`] | `n:<name>:<24 lowercase hex ObjectId>`, name usually empty (`n::…`) | kept as [`RootId::Other`] (the server answers a traceback) |
//!
//! Decoding never rejects an id string: every string is representable, and the
//! strict parsers ([`GeneratedId`] and [`ObjectId`] via `FromStr`) say whether it is
//! in the generated format. Classification is exact: a string in the generated
//! format is always the structured variant, so `Display` gives back the same string.

use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tagged::{into_object, serialize_unknown, take_string, typed};
use crate::{encode_json, DecodeError, Object, Value};

// ----------------------------------------------------------------------- ids

/// `<unix seconds>:<uuid4 as 32 lowercase hex>`: the client ids and default channel
/// ids the server generates (e.g. `1795329544:d7844122882c4fe68c2afb45471d322b`).
///
/// Parsing is strict: canonical decimal seconds (no sign, no leading zero), one `:`,
/// exactly 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GeneratedId {
    /// The server's clock when the id was made.
    pub unix_seconds: u64,
    /// The uuid4, as a number.
    pub uuid: u128,
}

impl FromStr for GeneratedId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, DecodeError> {
        let bad = |reason| DecodeError::InvalidId {
            kind: "generated id",
            reason,
        };
        let (secs, hex) = s.split_once(':').ok_or(bad("no `:`"))?;
        if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("seconds are not decimal digits"));
        }
        if secs.len() > 1 && secs.starts_with('0') {
            return Err(bad("seconds have a leading zero"));
        }
        let unix_seconds = secs.parse().map_err(|_| bad("seconds overflow u64"))?;
        if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("not 32 lowercase hex digits after `:`"));
        }
        let uuid = u128::from_str_radix(hex, 16).map_err(|_| bad("bad hex"))?;
        Ok(GeneratedId { unix_seconds, uuid })
    }
}

impl fmt::Display for GeneratedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:032x}", self.unix_seconds, self.uuid)
    }
}

/// A WebSocket client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// In the server's generated format.
    Generated(GeneratedId),
    /// Any other string (never one in the generated format).
    Other(String),
}

/// A channel id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelId {
    /// Picked by the server (no or empty `?channel_id=`).
    Generated(GeneratedId),
    /// Named by the client, URL-decoded (e.g. `room1`, `my room/1`); never a string
    /// in the generated format.
    Named(String),
}

macro_rules! generated_or_string {
    ($ty:ident, $other:ident) => {
        impl $ty {
            /// The structured id, if the string is in the generated format.
            pub fn generated(&self) -> Option<GeneratedId> {
                match self {
                    $ty::Generated(g) => Some(*g),
                    $ty::$other(_) => None,
                }
            }
        }
        impl From<&str> for $ty {
            fn from(s: &str) -> Self {
                match s.parse() {
                    Ok(g) => $ty::Generated(g),
                    Err(_) => $ty::$other(s.to_owned()),
                }
            }
        }
        impl From<String> for $ty {
            fn from(s: String) -> Self {
                match s.parse() {
                    Ok(g) => $ty::Generated(g),
                    Err(_) => $ty::$other(s),
                }
            }
        }
        impl From<GeneratedId> for $ty {
            fn from(g: GeneratedId) -> Self {
                $ty::Generated(g)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $ty::Generated(g) => g.fmt(f),
                    $ty::$other(s) => f.write_str(s),
                }
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($ty::from)
            }
        }
    };
}

generated_or_string!(ClientId, Other);
generated_or_string!(ChannelId, Named);

/// A MongoDB ObjectId: 12 bytes, written as 24 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId(pub [u8; 12]);

impl FromStr for ObjectId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, DecodeError> {
        let b = s.as_bytes();
        if b.len() != 24 {
            return Err(DecodeError::InvalidId {
                kind: "object id",
                reason: "not 24 hex digits",
            });
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(DecodeError::InvalidId {
                kind: "object id",
                reason: "not lowercase hex",
            }),
        };
        let mut out = [0u8; 12];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
        }
        Ok(ObjectId(out))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A node reference such as a user's root: `n:<name>:<ObjectId>`.
///
/// The WebSocket root id is `"n::" + <root_id from /user/login>`. The server matches
/// users by ObjectId only, so `n:Root:<hex>` reaches the same user
/// ([`RootId::same_node`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootId {
    /// `n:<name>:<24 lowercase hex>`.
    Node {
        /// The name segment (usually empty).
        name: String,
        /// The ObjectId.
        object_id: ObjectId,
    },
    /// Any other string (e.g. `"garbage"`); never one in the node format.
    Other(String),
}

impl RootId {
    /// The public (unauthenticated) root, `n::000000000000000000000001`.
    pub const PUBLIC_OBJECT_ID: ObjectId = ObjectId([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    /// `n::000000000000000000000001`, the root every anonymous socket shares.
    pub fn public() -> Self {
        Self::node(Self::PUBLIC_OBJECT_ID)
    }

    /// `n::<object id>`.
    pub fn node(object_id: ObjectId) -> Self {
        RootId::Node {
            name: String::new(),
            object_id,
        }
    }

    /// The ObjectId, if the string is in the node format.
    pub fn object_id(&self) -> Option<ObjectId> {
        match self {
            RootId::Node { object_id, .. } => Some(*object_id),
            RootId::Other(_) => None,
        }
    }

    /// Whether this is the public root (by ObjectId, as the server matches).
    pub fn is_public(&self) -> bool {
        self.object_id() == Some(Self::PUBLIC_OBJECT_ID)
    }

    /// Whether both name the same node (same ObjectId, any name).
    pub fn same_node(&self, other: &RootId) -> bool {
        match (self.object_id(), other.object_id()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

impl From<&str> for RootId {
    fn from(s: &str) -> Self {
        let parsed = s
            .strip_prefix("n:")
            .and_then(|rest| rest.rsplit_once(':'))
            .and_then(|(name, hex)| Some((name, hex.parse::<ObjectId>().ok()?)));
        match parsed {
            Some((name, object_id)) => RootId::Node {
                name: name.to_owned(),
                object_id,
            },
            None => RootId::Other(s.to_owned()),
        }
    }
}

impl From<String> for RootId {
    fn from(s: String) -> Self {
        match RootId::from(s.as_str()) {
            RootId::Other(_) => RootId::Other(s),
            node => node,
        }
    }
}

impl fmt::Display for RootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootId::Node { name, object_id } => write!(f, "n:{name}:{object_id}"),
            RootId::Other(s) => f.write_str(s),
        }
    }
}

impl Serialize for RootId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RootId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RootId::from)
    }
}

/// The path a client connects to: `/websocket`, plus `?channel_id=<id>` (percent-
/// encoded as `encodeURIComponent` does) to join a channel, which is Jac Cloud's
/// notion of subscribing.
pub fn websocket_path(channel_id: Option<&str>) -> String {
    let mut path = String::from("/websocket");
    if let Some(id) = channel_id {
        path.push_str("?channel_id=");
        for b in id.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
    }
    path
}

// ------------------------------------------------------------- client events

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

// ------------------------------------------------------------- server frames

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
