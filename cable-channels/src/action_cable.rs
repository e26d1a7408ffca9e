//! The few Action Cable frames the typed channels need: subscribe/unsubscribe/message
//! commands built from an identifier, and the `{"identifier","message"}` frame that
//! carries a channel's payload. Everything else about the protocol (welcome, pings,
//! confirmations, the connection state machine) belongs to `cable-proto`.
//!
//! Commands are built the way the Rails JavaScript client builds them: keys in the
//! order `command`, `identifier`, `data`, compact, with the identifier (and `data`)
//! as JSON *strings*. serde_json's compact output escapes strings exactly as
//! `JSON.stringify` does (`"` `\` and control characters only; `<`, `>`, `&`, `/`
//! and non-ASCII stay raw), so the bytes match the browser's.

use serde::Serialize;

use crate::{encode_json, DecodeError, Object, Value};

/// A typed channel identifier: something that renders to the identifier string a
/// client puts in its `subscribe` command.
pub trait ChannelIdentifier {
    /// The identifier string, byte for byte what `JSON.stringify(params)` gives in
    /// the doc's JavaScript.
    fn identifier(&self) -> String;

    /// The subscribe command frame for this identifier:
    /// `{"command":"subscribe","identifier":"<identifier>"}`.
    fn subscribe_command(&self) -> String {
        subscribe_command(&self.identifier())
    }

    /// The unsubscribe command frame for this identifier.
    fn unsubscribe_command(&self) -> String {
        unsubscribe_command(&self.identifier())
    }
}

#[derive(Serialize)]
struct Command<'a> {
    command: &'a str,
    identifier: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
}

/// `{"command":"subscribe","identifier":"<identifier>"}` for a raw identifier string.
///
/// ```
/// assert_eq!(
///     cable_channels::subscribe_command(r#"{"channel":"conversate","room_id":12}"#),
///     r#"{"command":"subscribe","identifier":"{\"channel\":\"conversate\",\"room_id\":12}"}"#
/// );
/// ```
pub fn subscribe_command(identifier: &str) -> String {
    encode_json(&Command {
        command: "subscribe",
        identifier,
        data: None,
    })
}

/// `{"command":"unsubscribe","identifier":"<identifier>"}`.
pub fn unsubscribe_command(identifier: &str) -> String {
    encode_json(&Command {
        command: "unsubscribe",
        identifier,
        data: None,
    })
}

/// `{"command":"message","identifier":"<identifier>","data":"<data as JSON>"}`: what
/// the Rails JavaScript client's `subscription.send(data)` puts on the wire (`data`
/// is JSON-encoded into a string, keys in their order; `perform(action, data)` is
/// `send` with an `action` key appended last).
pub fn message_command(identifier: &str, data: &Object) -> String {
    let data = encode_json(data);
    encode_json(&Command {
        command: "message",
        identifier,
        data: Some(&data),
    })
}

/// A server frame that carries a payload for one subscription:
/// `{"identifier":"<identifier>","message":<any JSON>}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    /// The identifier string, as the server sent it (match it byte for byte).
    pub identifier: String,
    /// The payload: for Circle a [`CircleMessage`](crate::circle::CircleMessage),
    /// for platformOS a [`ConversateMessage`](crate::platformos::ConversateMessage).
    pub message: Value,
}

impl ChannelMessage {
    /// Decodes a server frame. `Ok(None)` for Action Cable control frames (those with
    /// a `type`: welcome, ping, confirm/reject_subscription, disconnect), which are
    /// `cable-proto`'s business.
    pub fn decode(text: &str) -> Result<Option<ChannelMessage>, DecodeError> {
        let mut obj = match crate::json::parse(text)? {
            Value::Object(o) => o,
            other => {
                return Err(DecodeError::NotAnObject {
                    found: crate::json::kind(&other),
                })
            }
        };
        if obj.contains_key("type") {
            return Ok(None);
        }
        let identifier = match obj.shift_remove("identifier") {
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(DecodeError::InvalidField {
                    field: "identifier",
                    expected: "a string",
                })
            }
            None => {
                return Err(DecodeError::MissingField {
                    field: "identifier",
                })
            }
        };
        let message = obj
            .shift_remove("message")
            .ok_or(DecodeError::MissingField { field: "message" })?;
        Ok(Some(ChannelMessage {
            identifier,
            message,
        }))
    }

    /// The frame, in Rails key order: `{"identifier":...,"message":...}`.
    pub fn encode(&self) -> String {
        #[derive(Serialize)]
        struct Frame<'a> {
            identifier: &'a str,
            message: &'a Value,
        }
        encode_json(&Frame {
            identifier: &self.identifier,
            message: &self.message,
        })
    }
}
