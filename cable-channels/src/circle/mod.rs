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
//! message rooms, the `Record<string, any>` fields) are `Option`/[`Value`](crate::Value) and encode
//! `None` as `null`. Fields only one version of an interface has (`ParentMessage`'s
//! `chat_room_uuid`, `body`, `sent_at`, present on `Chats::RoomChannel` but not on the
//! threads channel) are omitted when `None`.

mod channels;
mod events;
mod identifier;
mod payloads;

pub use channels::{
    chat_room_channel_stream, chat_room_stream, community_member_threads_stream,
    notification_channel_stream, CircleChannelKind,
};
pub use events::{decode_frame, CircleEvent, CircleEventName, CircleMessage};
pub use identifier::CircleIdentifier;
pub use payloads::{
    ChatMessage, ChatRoom, ChatRoomPinned, ChatRoomRef, ChatRoomUnpinned, ChatThreadRead,
    JsonMessage, MessageWithParent, NotificationCount, ParentMessage, SimplifiedChatRoom,
};

/// The envelope around a Circle event. Change these two names and every encoder and
/// decoder of this module follows.
pub mod envelope {
    /// The key holding the event name.
    pub const EVENT_KEY: &str = "event";
    /// The key holding the event's payload.
    pub const DATA_KEY: &str = "data";
}
