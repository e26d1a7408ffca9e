//! platformOS's `conversate` channel (`platformos-websockets.md`), from the pOS
//! Marketplace Template's chat.
//!
//! The client subscribes with `consumer.subscriptions.create({channel: 'conversate',
//! room_id: module.conversationId})`, so the identifier is
//! `{"channel":"conversate","room_id":<id>}`. The room id keeps its JSON form
//! ([`IdValue`]): the doc's GraphQL example uses the string `"12"`, a JavaScript
//! number gives `12`, and the two are different identifier strings.
//!
//! Messages are sent with `subscription.send(messageData)`; the same object is what
//! the server broadcasts to the room and what `received(data)` gets.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::action_cable::{message_command, ChannelIdentifier};
use crate::tagged::{into_object, parse_object, take_string, typed};
use crate::{encode_json, DecodeError, IdValue, Object, Value};

/// The channel name.
pub const CONVERSATE_CHANNEL: &str = "conversate";

/// `{"channel":"conversate","room_id":<room id>}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversateIdentifier {
    /// The conversation (room) id, as a number or a string.
    pub room_id: IdValue,
    /// Other params, encoded after `room_id` (keys `channel` and `room_id` skipped).
    pub extra: Object,
}

impl ConversateIdentifier {
    /// The identifier of a room.
    pub fn new(room_id: impl Into<IdValue>) -> Self {
        Self {
            room_id: room_id.into(),
            extra: Object::new(),
        }
    }

    /// Parses an identifier string. The channel must be `conversate`.
    pub fn parse(identifier: &str) -> Result<Self, DecodeError> {
        let mut obj = parse_object(identifier)?;
        let channel = take_string(&mut obj, "channel")?;
        if channel != CONVERSATE_CHANNEL {
            return Err(DecodeError::UnknownChannel(channel));
        }
        let room_id = match obj.shift_remove("room_id") {
            None => return Err(DecodeError::MissingField { field: "room_id" }),
            Some(v) => crate::json::typed(v).map_err(|_| DecodeError::InvalidField {
                field: "room_id",
                expected: "a non-negative integer or a string",
            })?,
        };
        Ok(Self {
            room_id,
            extra: obj,
        })
    }
}

impl Serialize for ConversateIdentifier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("channel", CONVERSATE_CHANNEL)?;
        map.serialize_entry("room_id", &self.room_id)?;
        for (k, v) in self
            .extra
            .iter()
            .filter(|(k, _)| *k != "channel" && *k != "room_id")
        {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl ChannelIdentifier for ConversateIdentifier {
    fn identifier(&self) -> String {
        encode_json(self)
    }
}

/// The chat message the doc's client sends (`messageData`) and the server
/// broadcasts; also the `payload` of the `channel_send_message` GraphQL mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversateMessage {
    /// `message`: the text, HTML-encoded by the client (`encodeHtml(message)`).
    pub message: String,
    /// `author_id`: the current user's id (a number or a string; `null` if unset).
    pub author_id: Option<IdValue>,
    /// `sender_name`: from the input's `data-from-name` attribute (`null` if absent).
    pub sender_name: Option<String>,
    /// `created_at`: `new Date()` as `JSON.stringify` renders it
    /// (`2024-02-01T10:30:00.000Z`), or the mutation's `"2030-07-01 10:30:00"`.
    pub created_at: String,
    /// `create`: `true` asks the server's `receive.liquid` to persist the message.
    pub create: bool,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

impl ConversateMessage {
    /// A message as the doc's `sendMessage` builds it (`create: true`).
    pub fn new(
        message: impl Into<String>,
        author_id: impl Into<IdValue>,
        sender_name: impl Into<String>,
        created_at: impl Into<String>,
    ) -> Self {
        Self {
            message: message.into(),
            author_id: Some(author_id.into()),
            sender_name: Some(sender_name.into()),
            created_at: created_at.into(),
            create: true,
            extra: Object::new(),
        }
    }

    /// Decodes message text.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::from_json(crate::json::parse(text)?)
    }

    /// Decodes a parsed message (e.g. a [`ChannelMessage`](crate::ChannelMessage)'s `message`).
    pub fn from_json(value: Value) -> Result<Self, DecodeError> {
        typed("conversate message", into_object(value)?)
    }

    /// Compact JSON, keys in the doc's order.
    pub fn encode(&self) -> String {
        encode_json(self)
    }

    /// The message as an ordered [`Object`].
    pub fn to_object(&self) -> Object {
        match crate::json::parse(&self.encode()) {
            Ok(Value::Object(o)) => o,
            _ => Object::new(),
        }
    }

    /// The Action Cable command `subscription.send(this)` puts on the wire:
    /// `{"command":"message","identifier":...,"data":"<this message as JSON>"}`.
    pub fn send_command(&self, identifier: &ConversateIdentifier) -> String {
        message_command(&identifier.identifier(), &self.to_object())
    }
}
