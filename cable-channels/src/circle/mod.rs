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
//!
//! # Publishing: which streams get an event
//!
//! A backend that publishes Circle events (through Redis or cable-server's
//! `POST /_broadcast`) names the event and what it [`Concerns`];
//! [`CircleEvent::publications`] answers with the `(stream, payload)` pairs Circle's
//! server broadcasts, the payload being the envelope text ([`CircleEvent::encode`]),
//! the same on every stream.
//!
//! | event | concerns | streams, in this order |
//! |---|---|---|
//! | `newNotification`, `updateNewNotificationCount`, `resetNewNotificationCount` | `Member(m)`: the recipient | `notification-channel-<m>` |
//! | `chatRoomCreated`, `chatRoomPinned`, `chatRoomUnPinned` | `RoomMember { m, embedded }` | `chat-room-channel-<m>` if not embedded; none otherwise |
//! | `chatRoomUpdated` (the room was pinned by `m`) | `RoomMember { m, embedded }` | `chat-room-channel-<m>` if not embedded; none otherwise |
//! | `chatRoomUpdated` (room attributes updated) | `RoomAttributes { room, renamed }` | `chat-room-<room>-channel`; then, if `renamed` and not embedded, `chat-room-channel-<p>` for each participant `p` |
//! | `chatRoomDeleted` | `RoomParticipants(room)` | `chat-room-channel-<p>` for each participant (embedded or not) |
//! | `chatRoomRead` | `Member(m)`: the reader | `chat-room-channel-<m>` |
//! | `newMessage` | `Message { room, thread_participants }` | `chat-room-<room>-channel` (always); then, if not a reply and not embedded, `chat-room-channel-<p>` for each participant; or, if a reply, `chat-community-member-<t>-threads-channel` for each thread participant `t` |
//! | `updatedMessage` | `Message { room, thread_participants }` | `chat-room-<room>-channel`; then, if a reply, the thread streams of each thread participant |
//! | `deletedMessage` | `Message { room, thread_participants }` | `chat-room-<room>-channel`; then the thread streams of each thread participant |
//! | `chatThreadRead` | `Member(m)`: the reader | `chat-community-member-<m>-threads-channel` |
//!
//! Any other pairing of event and concerns is [`RouteError::Mismatch`]; an unknown event
//! is [`RouteError::UnknownEvent`]. A reply is a message with a `parent_message_id`.
//! A member listed twice is published to once.
//!
//! Where the doc is ambiguous, this crate chose:
//!
//! - **Member streams of `chatRoomUpdated`**: the doc sends it there "when non embedded
//!   chat room name is changed" and "when non embedded chat room gets pinned", and on
//!   the room stream for "room specific attributes like `pinned_message_id`,
//!   `show_history`, `description`, `name`". So every attribute update goes on the room
//!   stream, a rename of a non-embedded room also on every participant's stream, and a
//!   pin (which is one member's, like `chatRoomPinned`) on the pinning member's stream
//!   only.
//! - **`chatRoomDeleted`**: the doc does not restrict it to non-embedded rooms (unlike
//!   `chatRoomCreated`), so it goes to every participant of any room; it is not on the
//!   room stream (`Chats::RoomChannel` does not list it).
//! - **`chatRoomRead`, `chatRoomPinned`, `chatRoomUnPinned`, `chatThreadRead`** are one
//!   member's actions and go on that member's stream only; `chatRoomCreated` carries
//!   one member's view of the room, so it is published per member.
//! - **Thread streams**: "each new message in the chat thread" is read as each reply
//!   (a message with a `parent_message_id`); `updatedMessage` goes there when the
//!   updated message is a reply, and `deletedMessage` always, since its payload always
//!   names the parent message. Edits of a thread's root message go on the room stream
//!   only.
//! - **`updatedMessage` and `deletedMessage`** are not on member streams
//!   (`ChatRoomChannel` does not list them), in embedded rooms or not.
//!
//! ```
//! use cable_channels::circle::{broadcast_body, CircleMessage, Concerns, Room};
//!
//! // A new message (not a reply) in a non-embedded room with two participants.
//! let text = r#"{"event":"newMessage","data":{"id":501,"chat_room_uuid":"0b8f0c6e","chat_room_kind":"direct","chat_room_participant_id":9001,"body":"Hi","rich_text_body":null,"sent_at":"2024-10-25T11:17:36.000Z","created_at":"2024-10-25T11:17:36.000Z","sender":{"id":77,"name":"Ada"},"creation_uuid":"c-1","chat_thread_id":null,"parent_message_id":null,"lesson_id":null,"edited_at":null,"replies_count":0,"total_thread_participants_count":0,"thread_participants_preview":null,"chat_thread_replies_count":0}}"#;
//! let event = CircleMessage::decode(text).unwrap().event;
//! let room = Room { chat_room_id: 987, embedded: false, participants: vec![1234, 5678] };
//! let publications = event
//!     .publications(&Concerns::Message { room, thread_participants: vec![] })
//!     .unwrap();
//! let streams: Vec<&str> = publications.iter().map(|p| p.stream.as_str()).collect();
//! assert_eq!(streams, ["chat-room-987-channel", "chat-room-channel-1234", "chat-room-channel-5678"]);
//! assert!(publications.iter().all(|p| p.payload == text));
//!
//! // The same, as one `POST /_broadcast` body: each payload as a JSON string.
//! let body = broadcast_body(&publications);
//! assert!(body.starts_with(r#"[{"stream":"chat-room-987-channel","data":"{\"event\":\"newMessage\","#));
//! ```

mod channels;
mod events;
mod identifier;
mod payloads;
mod routing;

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
pub use routing::{broadcast_body, Concerns, Publication, Room, RouteError};

/// The envelope around a Circle event. Change these two names and every encoder and
/// decoder of this module follows.
pub mod envelope {
    /// The key holding the event name.
    pub const EVENT_KEY: &str = "event";
    /// The key holding the event's payload.
    pub const DATA_KEY: &str = "data";
}
