//! The payload of each event, one struct per interface of the doc.

use serde::{Deserialize, Serialize};

use crate::{IdValue, Object, Value};

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
