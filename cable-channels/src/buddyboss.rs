//! The BuddyBoss Node.js messaging server (`buddyboss-websocket-server.md`): plain
//! WebSocket, every frame a JSON object tagged by `type`, in both directions.
//!
//! Field names are the doc's (camelCase: `userId`, `threadId`, `recipientId`,
//! `senderId`). Ids keep their JSON form ([`IdValue`]): the doc's examples use strings
//! (`"USER_ID"`), BuddyBoss's own ids are numbers. The WebRTC payloads (`offer`,
//! `answer`, `candidate`) are [`Value`]: the doc shows strings (`"OFFER_SDP"`), browsers
//! send `RTCSessionDescription`/`RTCIceCandidate` objects.
//!
//! The `message` frames the server sends are described only by the doc's React client
//! (`data.type === 'message'`, then `message.message` is shown): [`ServerMessage`]
//! types `message` and keeps everything else in `extra`. The server's broadcast of
//! `typing` carries `typing` (the client reads `data.typing`), hence
//! [`Typing::typing`]. Optional fields are omitted when `None`.
//!
//! What cable's own server sends (`cable_proto::dialect::buddyboss`, tested to decode
//! as these types), where the doc leaves it open:
//!
//! - a thread message: `{"type":"message","message":M,"threadId":T,"senderId":S}` (and
//!   `recipientId` when the sender gave one) to every other member of the thread; a
//!   message without `threadId`: `{"type":"message","message":M,"recipientId":R,"senderId":S}`
//!   to every connection of `R`; `senderId` is the sender's `userId` as a string, `null`
//!   before its `user_connected`;
//! - [`Typing`] relayed as `{"type":"typing","threadId":T,"userId":U,"typing":true}`;
//! - [`UserConnected`] relayed as sent (`userId` in its JSON form) to every other client;
//! - `call_initiated`, [`Offer`], [`Answer`], [`IceCandidate`]: the frame as sent, to
//!   `recipientId`'s connections only;
//! - [`SendMessage::token`]: required when the server has a verifier; [`ErrorMessage`]
//!   says what was wrong (`send_message: invalid token`, `join_thread: missing
//!   "threadId"`, `unknown type "x"`, `invalid JSON: ...`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tagged::{into_object, serialize_unknown, take_string, typed};
use crate::{encode_json, DecodeError, IdValue, Object, Value};

/// Every BuddyBoss message, by its `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuddyBossMessage {
    /// `user_connected`: a client announces its user; the server relays it to all.
    UserConnected(UserConnected),
    /// `join_thread`: join a message thread.
    JoinThread(JoinThread),
    /// `send_message`: send a message to a user or thread.
    SendMessage(SendMessage),
    /// `typing`: the user is typing in a thread (relayed to the thread).
    Typing(Typing),
    /// `call_initiated`: a call starts.
    CallInitiated(CallInitiated),
    /// `offer`: WebRTC offer.
    Offer(Offer),
    /// `answer`: WebRTC answer.
    Answer(Answer),
    /// `ice-candidate`: WebRTC ICE candidate.
    IceCandidate(IceCandidate),
    /// `error`: the server reports an error.
    Error(ErrorMessage),
    /// `message`: a chat message the server delivers.
    Message(ServerMessage),
    /// A type this crate does not know: its name and the other fields.
    Unknown {
        /// The `type`.
        message_type: String,
        /// All other fields, in order.
        payload: Object,
    },
}

/// `{"type":"user_connected","userId":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConnected {
    /// `userId`
    #[serde(rename = "userId")]
    pub user_id: IdValue,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

impl UserConnected {
    /// The message for a user.
    pub fn new(user_id: impl Into<IdValue>) -> Self {
        Self {
            user_id: user_id.into(),
            extra: Object::new(),
        }
    }
}

/// `{"type":"join_thread","threadId":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinThread {
    /// `threadId`
    #[serde(rename = "threadId")]
    pub thread_id: IdValue,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

impl JoinThread {
    /// The message for a thread.
    pub fn new(thread_id: impl Into<IdValue>) -> Self {
        Self {
            thread_id: thread_id.into(),
            extra: Object::new(),
        }
    }
}

/// `{"type":"send_message","recipientId":...,"message":...,"threadId":...,"token":...}`
///
/// "Send a message to a user or thread": `recipientId` and `threadId` may each be
/// absent; `token` is the BuddyBoss API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    /// `recipientId`
    #[serde(
        rename = "recipientId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub recipient_id: Option<IdValue>,
    /// `message`: the text.
    pub message: String,
    /// `threadId`
    #[serde(rename = "threadId", default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<IdValue>,
    /// `token`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"typing","threadId":...}` (from the client), with `typing` when the
/// server relays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// `threadId`
    #[serde(rename = "threadId")]
    pub thread_id: IdValue,
    /// `typing`: the status the doc's React client reads (`data.typing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing: Option<bool>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"call_initiated","senderId":...,"recipientId":...,"threadId":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInitiated {
    /// `senderId`
    #[serde(rename = "senderId")]
    pub sender_id: IdValue,
    /// `recipientId`
    #[serde(rename = "recipientId")]
    pub recipient_id: IdValue,
    /// `threadId`
    #[serde(rename = "threadId")]
    pub thread_id: IdValue,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"offer","offer":...,"recipientId":...,"senderId":...,"threadId":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// `offer`: the SDP offer.
    pub offer: Value,
    /// `recipientId`
    #[serde(rename = "recipientId")]
    pub recipient_id: IdValue,
    /// `senderId`
    #[serde(rename = "senderId")]
    pub sender_id: IdValue,
    /// `threadId`
    #[serde(rename = "threadId")]
    pub thread_id: IdValue,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"answer","answer":...,"recipientId":...,"senderId":...,"threadId":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// `answer`: the SDP answer.
    pub answer: Value,
    /// `recipientId`
    #[serde(rename = "recipientId")]
    pub recipient_id: IdValue,
    /// `senderId`
    #[serde(rename = "senderId")]
    pub sender_id: IdValue,
    /// `threadId`
    #[serde(rename = "threadId")]
    pub thread_id: IdValue,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"ice-candidate","candidate":...,"recipientId":...,"senderId":...,"threadId":...}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// `candidate`: the ICE candidate.
    pub candidate: Value,
    /// `recipientId`
    #[serde(rename = "recipientId")]
    pub recipient_id: IdValue,
    /// `senderId`
    #[serde(rename = "senderId")]
    pub sender_id: IdValue,
    /// `threadId`
    #[serde(rename = "threadId")]
    pub thread_id: IdValue,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"error","message":"Error message"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// `message`
    pub message: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{"type":"message","message":...}`: a chat message delivered by the server. The
/// doc shows only `message`; anything else the server adds is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMessage {
    /// `message`: the text.
    pub message: String,
    /// Other fields (sender, thread...).
    #[serde(flatten)]
    pub extra: Object,
}

/// Serialization of the known variants, tag first.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Tagged<'a> {
    #[serde(rename = "user_connected")]
    UserConnected(&'a UserConnected),
    #[serde(rename = "join_thread")]
    JoinThread(&'a JoinThread),
    #[serde(rename = "send_message")]
    SendMessage(&'a SendMessage),
    #[serde(rename = "typing")]
    Typing(&'a Typing),
    #[serde(rename = "call_initiated")]
    CallInitiated(&'a CallInitiated),
    #[serde(rename = "offer")]
    Offer(&'a Offer),
    #[serde(rename = "answer")]
    Answer(&'a Answer),
    #[serde(rename = "ice-candidate")]
    IceCandidate(&'a IceCandidate),
    #[serde(rename = "error")]
    Error(&'a ErrorMessage),
    #[serde(rename = "message")]
    Message(&'a ServerMessage),
}

impl BuddyBossMessage {
    /// Every known `type`.
    pub const TYPES: [&'static str; 10] = [
        "user_connected",
        "join_thread",
        "send_message",
        "typing",
        "call_initiated",
        "offer",
        "answer",
        "ice-candidate",
        "error",
        "message",
    ];

    /// Decodes a frame.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::from_json(crate::json::parse(text)?)
    }

    /// Decodes a parsed frame.
    pub fn from_json(value: Value) -> Result<Self, DecodeError> {
        let mut obj = into_object(value)?;
        let tag = take_string(&mut obj, "type")?;
        Ok(match tag.as_str() {
            "user_connected" => Self::UserConnected(typed(&tag, obj)?),
            "join_thread" => Self::JoinThread(typed(&tag, obj)?),
            "send_message" => Self::SendMessage(typed(&tag, obj)?),
            "typing" => Self::Typing(typed(&tag, obj)?),
            "call_initiated" => Self::CallInitiated(typed(&tag, obj)?),
            "offer" => Self::Offer(typed(&tag, obj)?),
            "answer" => Self::Answer(typed(&tag, obj)?),
            "ice-candidate" => Self::IceCandidate(typed(&tag, obj)?),
            "error" => Self::Error(typed(&tag, obj)?),
            "message" => Self::Message(typed(&tag, obj)?),
            _ => Self::Unknown {
                message_type: tag,
                payload: obj,
            },
        })
    }

    /// The `type`.
    pub fn type_name(&self) -> &str {
        match self {
            Self::UserConnected(_) => "user_connected",
            Self::JoinThread(_) => "join_thread",
            Self::SendMessage(_) => "send_message",
            Self::Typing(_) => "typing",
            Self::CallInitiated(_) => "call_initiated",
            Self::Offer(_) => "offer",
            Self::Answer(_) => "answer",
            Self::IceCandidate(_) => "ice-candidate",
            Self::Error(_) => "error",
            Self::Message(_) => "message",
            Self::Unknown { message_type, .. } => message_type,
        }
    }

    /// Compact JSON, `type` first, then the fields in the doc's order.
    pub fn encode(&self) -> String {
        encode_json(self)
    }
}

impl Serialize for BuddyBossMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::UserConnected(v) => Tagged::UserConnected(v).serialize(s),
            Self::JoinThread(v) => Tagged::JoinThread(v).serialize(s),
            Self::SendMessage(v) => Tagged::SendMessage(v).serialize(s),
            Self::Typing(v) => Tagged::Typing(v).serialize(s),
            Self::CallInitiated(v) => Tagged::CallInitiated(v).serialize(s),
            Self::Offer(v) => Tagged::Offer(v).serialize(s),
            Self::Answer(v) => Tagged::Answer(v).serialize(s),
            Self::IceCandidate(v) => Tagged::IceCandidate(v).serialize(s),
            Self::Error(v) => Tagged::Error(v).serialize(s),
            Self::Message(v) => Tagged::Message(v).serialize(s),
            Self::Unknown {
                message_type,
                payload,
            } => serialize_unknown(s, "type", message_type, payload),
        }
    }
}

impl<'de> Deserialize<'de> for BuddyBossMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(v).map_err(serde::de::Error::custom)
    }
}
