//! The events: their names ([`CircleEventName`]), the typed event ([`CircleEvent`]),
//! the envelope around it ([`CircleMessage`]) and the frame decoder ([`decode_frame`]).

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::payloads::{
    ChatMessage, ChatRoom, ChatRoomPinned, ChatRoomRef, ChatRoomUnpinned, ChatThreadRead,
    JsonMessage, MessageWithParent, NotificationCount, SimplifiedChatRoom,
};
use super::{envelope, CircleChannelKind, CircleIdentifier};
use crate::action_cable::ChannelMessage;
use crate::tagged::into_object;
use crate::{encode_json, DecodeError, Object, Value};

use CircleEventName as E;

/// The names of the events the doc lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircleEventName {
    /// `newNotification`
    NewNotification,
    /// `updateNewNotificationCount`
    UpdateNewNotificationCount,
    /// `resetNewNotificationCount`
    ResetNewNotificationCount,
    /// `chatRoomCreated`
    ChatRoomCreated,
    /// `chatRoomUpdated`
    ChatRoomUpdated,
    /// `chatRoomDeleted`
    ChatRoomDeleted,
    /// `chatRoomRead`
    ChatRoomRead,
    /// `chatRoomPinned`
    ChatRoomPinned,
    /// `chatRoomUnPinned`
    ChatRoomUnPinned,
    /// `newMessage`
    NewMessage,
    /// `deletedMessage`
    DeletedMessage,
    /// `updatedMessage`
    UpdatedMessage,
    /// `chatThreadRead`
    ChatThreadRead,
}

impl CircleEventName {
    /// Every event name.
    pub const ALL: [CircleEventName; 13] = [
        E::NewNotification,
        E::UpdateNewNotificationCount,
        E::ResetNewNotificationCount,
        E::ChatRoomCreated,
        E::ChatRoomUpdated,
        E::ChatRoomDeleted,
        E::ChatRoomRead,
        E::ChatRoomPinned,
        E::ChatRoomUnPinned,
        E::NewMessage,
        E::DeletedMessage,
        E::UpdatedMessage,
        E::ChatThreadRead,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            E::NewNotification => "newNotification",
            E::UpdateNewNotificationCount => "updateNewNotificationCount",
            E::ResetNewNotificationCount => "resetNewNotificationCount",
            E::ChatRoomCreated => "chatRoomCreated",
            E::ChatRoomUpdated => "chatRoomUpdated",
            E::ChatRoomDeleted => "chatRoomDeleted",
            E::ChatRoomRead => "chatRoomRead",
            E::ChatRoomPinned => "chatRoomPinned",
            E::ChatRoomUnPinned => "chatRoomUnPinned",
            E::NewMessage => "newMessage",
            E::DeletedMessage => "deletedMessage",
            E::UpdatedMessage => "updatedMessage",
            E::ChatThreadRead => "chatThreadRead",
        }
    }

    /// The event for a wire name (case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl fmt::Display for CircleEventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Circle event with its typed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CircleEvent {
    /// `newNotification`. The doc gives no payload interface, so the payload is kept
    /// as it came.
    NewNotification(Value),
    /// `updateNewNotificationCount`.
    UpdateNewNotificationCount(NotificationCount),
    /// `resetNewNotificationCount` (the doc says the count is `0`).
    ResetNewNotificationCount(NotificationCount),
    /// `chatRoomCreated`.
    ChatRoomCreated(ChatRoom),
    /// `chatRoomUpdated`.
    ChatRoomUpdated(SimplifiedChatRoom),
    /// `chatRoomDeleted`.
    ChatRoomDeleted(ChatRoomRef),
    /// `chatRoomRead`.
    ChatRoomRead(ChatRoomRef),
    /// `chatRoomPinned`.
    ChatRoomPinned(ChatRoomPinned),
    /// `chatRoomUnPinned`.
    ChatRoomUnPinned(ChatRoomUnpinned),
    /// `newMessage`.
    NewMessage(JsonMessage),
    /// `deletedMessage`.
    DeletedMessage(MessageWithParent),
    /// `updatedMessage`.
    UpdatedMessage(ChatMessage),
    /// `chatThreadRead`.
    ChatThreadRead(ChatThreadRead),
    /// An event this crate does not know: its name and raw payload.
    Unknown {
        /// The event name.
        event: String,
        /// The payload as it came.
        data: Value,
    },
}

impl CircleEvent {
    /// The event's wire name.
    pub fn name(&self) -> &str {
        match self {
            CircleEvent::Unknown { event, .. } => event,
            known => known.known_name().map_or("", CircleEventName::as_str),
        }
    }

    /// The event in its envelope, as compact JSON: `{"event":<name>,"data":<payload>}`,
    /// what a Circle channel transmits. The same text as
    /// `CircleMessage::new(event).encode()`, without cloning the event.
    pub fn encode(&self) -> String {
        encode_json(&Envelope {
            event: self,
            extra: None,
        })
    }

    /// The event's name if it is one the doc lists.
    pub fn known_name(&self) -> Option<CircleEventName> {
        Some(match self {
            CircleEvent::NewNotification(_) => E::NewNotification,
            CircleEvent::UpdateNewNotificationCount(_) => E::UpdateNewNotificationCount,
            CircleEvent::ResetNewNotificationCount(_) => E::ResetNewNotificationCount,
            CircleEvent::ChatRoomCreated(_) => E::ChatRoomCreated,
            CircleEvent::ChatRoomUpdated(_) => E::ChatRoomUpdated,
            CircleEvent::ChatRoomDeleted(_) => E::ChatRoomDeleted,
            CircleEvent::ChatRoomRead(_) => E::ChatRoomRead,
            CircleEvent::ChatRoomPinned(_) => E::ChatRoomPinned,
            CircleEvent::ChatRoomUnPinned(_) => E::ChatRoomUnPinned,
            CircleEvent::NewMessage(_) => E::NewMessage,
            CircleEvent::DeletedMessage(_) => E::DeletedMessage,
            CircleEvent::UpdatedMessage(_) => E::UpdatedMessage,
            CircleEvent::ChatThreadRead(_) => E::ChatThreadRead,
            CircleEvent::Unknown { .. } => return None,
        })
    }

    /// Decodes an event from its name and payload. A known name with a payload that
    /// does not fit is an error; an unknown name is [`CircleEvent::Unknown`].
    pub fn from_parts(event: &str, data: Value) -> Result<Self, DecodeError> {
        let Some(name) = CircleEventName::from_name(event) else {
            return Ok(CircleEvent::Unknown {
                event: event.to_owned(),
                data,
            });
        };
        fn t<T: serde::de::DeserializeOwned>(event: &str, d: Value) -> Result<T, DecodeError> {
            crate::json::typed(d).map_err(|e| DecodeError::payload(event, e))
        }
        Ok(match name {
            E::NewNotification => CircleEvent::NewNotification(data),
            E::UpdateNewNotificationCount => {
                CircleEvent::UpdateNewNotificationCount(t(event, data)?)
            }
            E::ResetNewNotificationCount => CircleEvent::ResetNewNotificationCount(t(event, data)?),
            E::ChatRoomCreated => CircleEvent::ChatRoomCreated(t(event, data)?),
            E::ChatRoomUpdated => CircleEvent::ChatRoomUpdated(t(event, data)?),
            E::ChatRoomDeleted => CircleEvent::ChatRoomDeleted(t(event, data)?),
            E::ChatRoomRead => CircleEvent::ChatRoomRead(t(event, data)?),
            E::ChatRoomPinned => CircleEvent::ChatRoomPinned(t(event, data)?),
            E::ChatRoomUnPinned => CircleEvent::ChatRoomUnPinned(t(event, data)?),
            E::NewMessage => CircleEvent::NewMessage(t(event, data)?),
            E::DeletedMessage => CircleEvent::DeletedMessage(t(event, data)?),
            E::UpdatedMessage => CircleEvent::UpdatedMessage(t(event, data)?),
            E::ChatThreadRead => CircleEvent::ChatThreadRead(t(event, data)?),
        })
    }
}

/// Serializes only the payload of an event.
struct Payload<'a>(&'a CircleEvent);

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            CircleEvent::NewNotification(v) => v.serialize(s),
            CircleEvent::UpdateNewNotificationCount(v) => v.serialize(s),
            CircleEvent::ResetNewNotificationCount(v) => v.serialize(s),
            CircleEvent::ChatRoomCreated(v) => v.serialize(s),
            CircleEvent::ChatRoomUpdated(v) => v.serialize(s),
            CircleEvent::ChatRoomDeleted(v) => v.serialize(s),
            CircleEvent::ChatRoomRead(v) => v.serialize(s),
            CircleEvent::ChatRoomPinned(v) => v.serialize(s),
            CircleEvent::ChatRoomUnPinned(v) => v.serialize(s),
            CircleEvent::NewMessage(v) => v.serialize(s),
            CircleEvent::DeletedMessage(v) => v.serialize(s),
            CircleEvent::UpdatedMessage(v) => v.serialize(s),
            CircleEvent::ChatThreadRead(v) => v.serialize(s),
            CircleEvent::Unknown { data, .. } => data.serialize(s),
        }
    }
}

/// What a Circle channel transmits: an event in the [`envelope`], plus any other
/// keys the envelope carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleMessage {
    /// The event.
    pub event: CircleEvent,
    /// Other keys of the envelope, encoded after `event` and `data`.
    pub extra: Object,
}

impl From<CircleEvent> for CircleMessage {
    fn from(event: CircleEvent) -> Self {
        CircleMessage::new(event)
    }
}

impl CircleMessage {
    /// An envelope with no extra keys.
    pub fn new(event: CircleEvent) -> Self {
        Self {
            event,
            extra: Object::new(),
        }
    }

    /// Decodes envelope text, on any channel.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::from_json(crate::json::parse(text)?)
    }

    /// Decodes envelope text received on `channel`: a known event the doc does not
    /// list for that channel is [`DecodeError::EventNotAllowed`].
    pub fn decode_for(channel: CircleChannelKind, text: &str) -> Result<Self, DecodeError> {
        Self::from_json_for(channel, crate::json::parse(text)?)
    }

    /// Decodes an already parsed envelope (e.g. [`ChannelMessage::message`]).
    pub fn from_json(value: Value) -> Result<Self, DecodeError> {
        let mut obj = into_object(value)?;
        let name = match obj.shift_remove(envelope::EVENT_KEY) {
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(DecodeError::InvalidField {
                    field: envelope::EVENT_KEY,
                    expected: "a string",
                })
            }
            None => {
                return Err(DecodeError::MissingField {
                    field: envelope::EVENT_KEY,
                })
            }
        };
        let data = obj
            .shift_remove(envelope::DATA_KEY)
            .ok_or(DecodeError::MissingField {
                field: envelope::DATA_KEY,
            })?;
        Ok(Self {
            event: CircleEvent::from_parts(&name, data)?,
            extra: obj,
        })
    }

    /// [`CircleMessage::from_json`], checking the event against `channel`.
    pub fn from_json_for(channel: CircleChannelKind, value: Value) -> Result<Self, DecodeError> {
        let msg = Self::from_json(value)?;
        match msg.event.known_name() {
            Some(name) if !channel.allows(name) => Err(DecodeError::EventNotAllowed {
                event: name.as_str(),
                channel: channel.channel_name(),
            }),
            _ => Ok(msg),
        }
    }

    /// The envelope as compact JSON: `{"event":<name>,"data":<payload>}`.
    pub fn encode(&self) -> String {
        encode_json(self)
    }
}

impl Serialize for CircleMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Envelope {
            event: &self.event,
            extra: Some(&self.extra),
        }
        .serialize(s)
    }
}

/// `{"event":<name>,"data":<payload>}` then the extra keys, of borrowed parts: what
/// [`CircleMessage`] and [`CircleEvent::encode`] encode to.
struct Envelope<'a> {
    event: &'a CircleEvent,
    extra: Option<&'a Object>,
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(envelope::EVENT_KEY, self.event.name())?;
        map.serialize_entry(envelope::DATA_KEY, &Payload(self.event))?;
        for (k, v) in self
            .extra
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != envelope::EVENT_KEY && *k != envelope::DATA_KEY)
        {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Decodes an Action Cable server frame on a Circle channel: its identifier and its
/// event. `Ok(None)` for control frames (welcome, ping, confirmations).
pub fn decode_frame(text: &str) -> Result<Option<(CircleIdentifier, CircleMessage)>, DecodeError> {
    let Some(frame) = ChannelMessage::decode(text)? else {
        return Ok(None);
    };
    let identifier = CircleIdentifier::parse(&frame.identifier)?;
    let message = CircleMessage::from_json_for(identifier.kind, frame.message)?;
    Ok(Some((identifier, message)))
}
