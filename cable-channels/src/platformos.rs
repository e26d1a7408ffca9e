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
//!
//! A room's stream is `<channel_name>:<room_id>` ([`room_stream`]), the room id
//! without quotes, so `12` and `"12"` are one room. A server-side broadcast (the
//! doc's `channel_send_message(channel_name, room_id, payload)` mutation) is a
//! broadcast to that stream: [`channel_send_message`].
//!
//! ```
//! use cable_channels::platformos::{channel_send_message, ConversateIdentifier};
//! use cable_channels::IdValue;
//! let b = channel_send_message("conversate", IdValue::Text("12".into()), &serde_json::json!({"message": "hi"}));
//! assert_eq!(b.stream, "conversate:12");
//! assert_eq!(ConversateIdentifier::new(12u64).stream(), "conversate:12");
//! assert_eq!(b.broadcast_body(), r#"{"stream":"conversate:12","data":"{\"message\":\"hi\"}"}"#);
//! ```

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

impl ConversateIdentifier {
    /// The room's stream, `conversate:<room_id>` ([`room_stream`]).
    pub fn stream(&self) -> String {
        room_stream(CONVERSATE_CHANNEL, &self.room_id)
    }
}

/// The stream of a channel's room: `<channel_name>:<room_id>`, the id without
/// quotes (`12` and `"12"` give `conversate:12`).
pub fn room_stream(channel_name: &str, room_id: &IdValue) -> String {
    format!("{channel_name}:{room_id}")
}

/// A broadcast to a channel's room, as the doc's `channel_send_message`
/// mutation makes it: the stream and the payload's JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomBroadcast {
    /// `<channel_name>:<room_id>`.
    pub stream: String,
    /// The payload, compact JSON: what every subscriber's `received(data)` gets.
    pub data: String,
}

/// A broadcast of `payload` to `channel_name`'s room `room_id` (the doc's
/// `channel_send_message(channel_name, room_id, payload)`).
pub fn channel_send_message<T: Serialize + ?Sized>(
    channel_name: &str,
    room_id: impl Into<IdValue>,
    payload: &T,
) -> RoomBroadcast {
    RoomBroadcast {
        stream: room_stream(channel_name, &room_id.into()),
        data: encode_json(payload),
    }
}

#[derive(Serialize)]
struct BroadcastBody<'a> {
    stream: &'a str,
    data: &'a str,
}

impl RoomBroadcast {
    /// The body of cable-server's `POST /_broadcast`:
    /// `{"stream":<stream>,"data":<payload as a JSON string>}`.
    pub fn broadcast_body(&self) -> String {
        encode_json(&BroadcastBody {
            stream: &self.stream,
            data: &self.data,
        })
    }

    /// The Redis channel Rails' adapter (and cable-server's `--redis-url`
    /// bridge) reads for this stream: `<prefix>:<stream>`; `PUBLISH` it with
    /// [`data`](Self::data) as the message (an empty prefix: the stream alone).
    pub fn redis_channel(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            self.stream.clone()
        } else {
            format!("{prefix}:{}", self.stream)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_and_a_string_room_id_are_one_room() {
        let number =
            ConversateIdentifier::parse(r#"{"channel":"conversate","room_id":12}"#).unwrap();
        let string =
            ConversateIdentifier::parse(r#"{"channel":"conversate","room_id":"12"}"#).unwrap();
        assert_eq!(number.stream(), "conversate:12");
        assert_eq!(string.stream(), number.stream());
        let b = channel_send_message(
            "conversate",
            12u64,
            &ConversateMessage::new("hi", 7u64, "Al", "t"),
        );
        assert_eq!(b.stream, "conversate:12");
        assert_eq!(ConversateMessage::decode(&b.data).unwrap().message, "hi");
        assert_eq!(b.redis_channel(""), "conversate:12");
        assert_eq!(b.redis_channel("app"), "app:conversate:12");
    }
}
