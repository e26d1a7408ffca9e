//! Circle's Action Cable channels (`circle-websockets.md`): identifiers, stream names,
//! and the typed events each channel carries.
//!
//! # Channels
//!
//! | channel name | identifier param | stream |
//! |---|---|---|
//! | `ChatRoomChannel` | `community_member_id` (named by the doc) | `chat-room-channel-<member id>` |
//! | `NotificationChannel` | `community_member_id` (*chosen*) | `notification-channel-<member id>` |
//! | `Chats::RoomChannel` | `chat_room_id` (*chosen*) | `chat-room-<chat room id>-channel` |
//! | `Chats::CommunityMemberThreadsChannel` | `community_member_id` (*chosen*) | `chat-community-member-<member id>-threads-channel` |
//!
//! The doc names an identifier param only for `ChatRoomChannel`; for the others this
//! crate uses the variable its pubsub queue is named after. Identifiers render as
//! `JSON.stringify({channel, <param>})` does: `channel` first, then the param, no
//! spaces. Parsing accepts the param as a JSON integer or as a string of digits
//! (Rails' `params[...]` accepts both), and keeps any other params in `extra`.
//!
//! # Events and the envelope
//!
//! The doc names the events and their payloads but not the object around them. This
//! crate uses `{"event": <name>, "data": <payload>}`; the two key names live in
//! [`envelope`] and nowhere else. Which event travels on which channel follows the
//! doc exactly ([`CircleChannelKind::events`]); `chatRoomUpdated` is also on
//! `Chats::RoomChannel`, as the doc's note says.
//!
//! # Nullable fields
//!
//! Fields every version of a doc interface has are always encoded; those that real
//! payloads leave `null` (ids of optional relations, `edited_at`, names of direct
//! message rooms, the `Record<string, any>` fields) are `Option`/[`Value`] and encode
//! `None` as `null`. Fields only one version of an interface has (`ParentMessage`'s
//! `chat_room_uuid`, `body`, `sent_at`, present on `Chats::RoomChannel` but not on the
//! threads channel) are omitted when `None`.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::action_cable::{ChannelIdentifier, ChannelMessage};
use crate::tagged::{into_object, parse_object};
use crate::{encode_json, DecodeError, IdValue, Object, Value};

/// The envelope around a Circle event. Change these two names and every encoder and
/// decoder of this module follows.
pub mod envelope {
    /// The key holding the event name.
    pub const EVENT_KEY: &str = "event";
    /// The key holding the event's payload.
    pub const DATA_KEY: &str = "data";
}

// ------------------------------------------------------------------ channels

/// The four Circle channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircleChannelKind {
    /// `ChatRoomChannel`: member-specific chat updates.
    ChatRoom,
    /// `NotificationChannel`: a member's in-app notifications.
    Notification,
    /// `Chats::RoomChannel`: events of one chat room, for all its members.
    ChatsRoom,
    /// `Chats::CommunityMemberThreadsChannel`: events of the threads a member is in.
    ChatsCommunityMemberThreads,
}

use CircleEventName as E;

impl CircleChannelKind {
    /// All four channels.
    pub const ALL: [CircleChannelKind; 4] = [
        CircleChannelKind::ChatRoom,
        CircleChannelKind::Notification,
        CircleChannelKind::ChatsRoom,
        CircleChannelKind::ChatsCommunityMemberThreads,
    ];

    /// The Rails channel class name, the identifier's `channel`.
    pub fn channel_name(self) -> &'static str {
        match self {
            CircleChannelKind::ChatRoom => "ChatRoomChannel",
            CircleChannelKind::Notification => "NotificationChannel",
            CircleChannelKind::ChatsRoom => "Chats::RoomChannel",
            CircleChannelKind::ChatsCommunityMemberThreads => {
                "Chats::CommunityMemberThreadsChannel"
            }
        }
    }

    /// The channel for a channel class name.
    pub fn from_channel_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.channel_name() == name)
    }

    /// The identifier param holding the channel's id (see the module docs).
    pub fn param_name(self) -> &'static str {
        match self {
            CircleChannelKind::ChatsRoom => "chat_room_id",
            _ => "community_member_id",
        }
    }

    /// The pubsub stream for an id.
    pub fn stream_name(self, id: u64) -> String {
        match self {
            CircleChannelKind::ChatRoom => chat_room_channel_stream(id),
            CircleChannelKind::Notification => notification_channel_stream(id),
            CircleChannelKind::ChatsRoom => chat_room_stream(id),
            CircleChannelKind::ChatsCommunityMemberThreads => community_member_threads_stream(id),
        }
    }

    /// The events the doc lists for this channel.
    pub fn events(self) -> &'static [CircleEventName] {
        match self {
            CircleChannelKind::Notification => &[
                E::NewNotification,
                E::UpdateNewNotificationCount,
                E::ResetNewNotificationCount,
            ],
            CircleChannelKind::ChatRoom => &[
                E::ChatRoomCreated,
                E::ChatRoomUpdated,
                E::ChatRoomDeleted,
                E::ChatRoomRead,
                E::ChatRoomPinned,
                E::ChatRoomUnPinned,
                E::NewMessage,
            ],
            CircleChannelKind::ChatsRoom => &[
                E::NewMessage,
                E::DeletedMessage,
                E::UpdatedMessage,
                E::ChatRoomUpdated,
            ],
            CircleChannelKind::ChatsCommunityMemberThreads => &[
                E::NewMessage,
                E::UpdatedMessage,
                E::DeletedMessage,
                E::ChatThreadRead,
            ],
        }
    }

    /// Whether the doc lists `event` for this channel.
    pub fn allows(self, event: CircleEventName) -> bool {
        self.events().contains(&event)
    }
}

impl fmt::Display for CircleChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.channel_name())
    }
}

/// `chat-room-channel-<community member id>` (`ChatRoomChannel`).
pub fn chat_room_channel_stream(community_member_id: u64) -> String {
    format!("chat-room-channel-{community_member_id}")
}

/// `notification-channel-<community member id>` (`NotificationChannel`).
pub fn notification_channel_stream(community_member_id: u64) -> String {
    format!("notification-channel-{community_member_id}")
}

/// `chat-room-<chat room id>-channel` (`Chats::RoomChannel`).
pub fn chat_room_stream(chat_room_id: u64) -> String {
    format!("chat-room-{chat_room_id}-channel")
}

/// `chat-community-member-<community member id>-threads-channel`
/// (`Chats::CommunityMemberThreadsChannel`).
pub fn community_member_threads_stream(community_member_id: u64) -> String {
    format!("chat-community-member-{community_member_id}-threads-channel")
}

/// A Circle channel identifier: the channel, its id, and any other params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleIdentifier {
    /// Which channel.
    pub kind: CircleChannelKind,
    /// The value of the channel's param ([`CircleChannelKind::param_name`]).
    pub id: u64,
    /// Other params, encoded after the id (keys `channel` and the param are skipped).
    pub extra: Object,
}

impl CircleIdentifier {
    /// An identifier with no extra params.
    pub fn new(kind: CircleChannelKind, id: u64) -> Self {
        Self {
            kind,
            id,
            extra: Object::new(),
        }
    }

    /// `{"channel":"ChatRoomChannel","community_member_id":N}`.
    pub fn chat_room(community_member_id: u64) -> Self {
        Self::new(CircleChannelKind::ChatRoom, community_member_id)
    }

    /// `{"channel":"NotificationChannel","community_member_id":N}`.
    pub fn notification(community_member_id: u64) -> Self {
        Self::new(CircleChannelKind::Notification, community_member_id)
    }

    /// `{"channel":"Chats::RoomChannel","chat_room_id":N}`.
    pub fn chats_room(chat_room_id: u64) -> Self {
        Self::new(CircleChannelKind::ChatsRoom, chat_room_id)
    }

    /// `{"channel":"Chats::CommunityMemberThreadsChannel","community_member_id":N}`.
    pub fn community_member_threads(community_member_id: u64) -> Self {
        Self::new(
            CircleChannelKind::ChatsCommunityMemberThreads,
            community_member_id,
        )
    }

    /// The pubsub stream this subscription streams from.
    pub fn stream_name(&self) -> String {
        self.kind.stream_name(self.id)
    }

    /// Parses an identifier string.
    pub fn parse(identifier: &str) -> Result<Self, DecodeError> {
        let mut obj = parse_object(identifier)?;
        let channel = crate::tagged::take_string(&mut obj, "channel")?;
        let kind = CircleChannelKind::from_channel_name(&channel)
            .ok_or(DecodeError::UnknownChannel(channel))?;
        let param = kind.param_name();
        let invalid = DecodeError::InvalidField {
            field: param,
            expected: "a non-negative integer or a string of digits",
        };
        let id = match obj.shift_remove(param) {
            None => return Err(DecodeError::MissingField { field: param }),
            Some(Value::Number(n)) => n.as_u64().ok_or(invalid)?,
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map_err(|_| invalid)?
            }
            Some(_) => return Err(invalid),
        };
        Ok(Self {
            kind,
            id,
            extra: obj,
        })
    }
}

impl Serialize for CircleIdentifier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let param = self.kind.param_name();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("channel", self.kind.channel_name())?;
        map.serialize_entry(param, &self.id)?;
        for (k, v) in self
            .extra
            .iter()
            .filter(|(k, _)| *k != "channel" && *k != param)
        {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl ChannelIdentifier for CircleIdentifier {
    fn identifier(&self) -> String {
        encode_json(self)
    }
}

impl fmt::Display for CircleIdentifier {
    /// The identifier string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.identifier())
    }
}

// -------------------------------------------------------------------- events

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
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(envelope::EVENT_KEY, self.event.name())?;
        map.serialize_entry(envelope::DATA_KEY, &Payload(&self.event))?;
        for (k, v) in self
            .extra
            .iter()
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

// ------------------------------------------------------------------ payloads

/// Payload of `updateNewNotificationCount` and `resetNewNotificationCount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCount {
    /// The member's count of new notifications (`0` on reset).
    pub new_notifications_count: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `ChatRoom`, payload of `chatRoomCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRoom {
    /// `id: number`
    pub id: u64,
    /// `uuid: string`
    pub uuid: String,
    /// `identifier: string`
    pub identifier: String,
    /// `unread_messages_count: number`
    pub unread_messages_count: u64,
    /// `chat_room_kind: string`
    pub chat_room_kind: String,
    /// `chat_room_name: string` (`null` for rooms without a name)
    pub chat_room_name: Option<String>,
    /// `chat_room_description: string` (may be `null`)
    pub chat_room_description: Option<String>,
    /// `chat_room_show_history: boolean`
    pub chat_room_show_history: bool,
    /// `other_participants_preview: Record<string, any>[]`
    #[serde(default)]
    pub other_participants_preview: Vec<Value>,
    /// `current_participant: Record<string, any>`
    #[serde(default)]
    pub current_participant: Value,
    /// `last_message: Record<string, any>` (`null` in an empty room)
    #[serde(default)]
    pub last_message: Value,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `SimplifiedChatRoom`, payload of `chatRoomUpdated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimplifiedChatRoom {
    /// `uuid: string`
    pub uuid: String,
    /// `chat_room_name: string` (may be `null`)
    pub chat_room_name: Option<String>,
    /// `chat_room_description: string` (may be `null`)
    pub chat_room_description: Option<String>,
    /// `chat_room_show_history: boolean`
    pub chat_room_show_history: bool,
    /// `pinned_message: Record<string, any>` (`null` when nothing is pinned)
    #[serde(default)]
    pub pinned_message: Value,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{ chat_room_uuid: string }`, payload of `chatRoomDeleted` and `chatRoomRead`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRoomRef {
    /// `chat_room_uuid: string`
    pub chat_room_uuid: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{ chat_room_id: number, pinned_at: string }`, payload of `chatRoomPinned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRoomPinned {
    /// `chat_room_id: number`
    pub chat_room_id: u64,
    /// `pinned_at: string`
    pub pinned_at: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{ chat_room_id: number }`, payload of `chatRoomUnPinned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRoomUnpinned {
    /// `chat_room_id: number`
    pub chat_room_id: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `JSONMessage`, payload of `newMessage` (on all three chat channels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// `id: number`
    pub id: u64,
    /// `chat_room_uuid: string`
    pub chat_room_uuid: String,
    /// `chat_room_kind: string`
    pub chat_room_kind: String,
    /// `chat_room_participant_id: number`
    pub chat_room_participant_id: Option<u64>,
    /// `body: string`
    pub body: String,
    /// `rich_text_body: Record<string, any>`
    #[serde(default)]
    pub rich_text_body: Value,
    /// `sent_at: string`
    pub sent_at: String,
    /// `created_at: string`
    pub created_at: String,
    /// `sender: Record<string, any>`
    #[serde(default)]
    pub sender: Value,
    /// `creation_uuid: string`
    pub creation_uuid: Option<String>,
    /// `chat_thread_id: number` (`null` outside threads)
    pub chat_thread_id: Option<u64>,
    /// `parent_message_id: number` (`null` unless a reply)
    pub parent_message_id: Option<u64>,
    /// `lesson_id: number` (`null` outside lessons)
    pub lesson_id: Option<u64>,
    /// `edited_at: string` (`null` until edited)
    pub edited_at: Option<String>,
    /// `replies_count: number`
    pub replies_count: u64,
    /// `total_thread_participants_count: number`
    pub total_thread_participants_count: u64,
    /// `thread_participants_preview: Record<string, any>`
    #[serde(default)]
    pub thread_participants_preview: Value,
    /// `chat_thread_replies_count: number`
    pub chat_thread_replies_count: Option<u64>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// The message of `updatedMessage` (the doc's `JSONMessage` on `Chats::RoomChannel`
/// and `ChatMessage` on the threads channel, which have the same fields: those of
/// [`JsonMessage`] without `chat_room_kind` and `chat_thread_replies_count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `id: number`
    pub id: u64,
    /// `chat_room_uuid: string`
    pub chat_room_uuid: String,
    /// `chat_room_participant_id: number`
    pub chat_room_participant_id: Option<u64>,
    /// `body: string`
    pub body: String,
    /// `rich_text_body: Record<string, any>`
    #[serde(default)]
    pub rich_text_body: Value,
    /// `sent_at: string`
    pub sent_at: String,
    /// `created_at: string`
    pub created_at: String,
    /// `sender: Record<string, any>`
    #[serde(default)]
    pub sender: Value,
    /// `creation_uuid: string`
    pub creation_uuid: Option<String>,
    /// `chat_thread_id: number`
    pub chat_thread_id: Option<u64>,
    /// `parent_message_id: number`
    pub parent_message_id: Option<u64>,
    /// `lesson_id: number`
    pub lesson_id: Option<u64>,
    /// `edited_at: string`
    pub edited_at: Option<String>,
    /// `replies_count: number`
    pub replies_count: u64,
    /// `total_thread_participants_count: number`
    pub total_thread_participants_count: u64,
    /// `thread_participants_preview: Record<string, any>`
    #[serde(default)]
    pub thread_participants_preview: Value,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `MessageWithParent`, payload of `deletedMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageWithParent {
    /// `id: number`, the deleted message.
    pub id: u64,
    /// `parent_message: ParentMessage`
    pub parent_message: ParentMessage,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `ParentMessage`. The doc gives two versions: on `Chats::RoomChannel` it has
/// `chat_room_uuid`, `body`, `sent_at` and a numeric `chat_room_participant_id`; on
/// the threads channel it lacks those three and its `chat_room_participant_id` is a
/// string. The three are omitted when `None`; the participant id keeps its JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentMessage {
    /// `id: number`
    pub id: u64,
    /// `chat_room_uuid: string` (room channel version only)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_room_uuid: Option<String>,
    /// `chat_room_participant_id: number` (room channel) / `string` (threads channel)
    pub chat_room_participant_id: Option<IdValue>,
    /// `body: string` (room channel version only)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `rich_text_body: Record<string, any>`
    #[serde(default)]
    pub rich_text_body: Value,
    /// `sent_at: string` (room channel version only)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// `created_at: string`
    pub created_at: String,
    /// `sender: Record<string, any>`
    #[serde(default)]
    pub sender: Value,
    /// `creation_uuid: string`
    pub creation_uuid: Option<String>,
    /// `chat_thread_id: number`
    pub chat_thread_id: Option<u64>,
    /// `parent_message_id: number`
    pub parent_message_id: Option<u64>,
    /// `lesson_id: number`
    pub lesson_id: Option<u64>,
    /// `edited_at: string`
    pub edited_at: Option<String>,
    /// `replies_count: number`
    pub replies_count: u64,
    /// `total_thread_participants_count: number`
    pub total_thread_participants_count: u64,
    /// `thread_participants_preview: Record<string, any>`
    #[serde(default)]
    pub thread_participants_preview: Value,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}

/// `{ chat_thread_id: number }`, payload of `chatThreadRead`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatThreadRead {
    /// `chat_thread_id: number`
    pub chat_thread_id: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Object,
}
