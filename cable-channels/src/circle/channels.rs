//! The four channels: their class names, identifier params, pubsub stream names and
//! the events the doc lists for each.

use std::fmt;

use super::CircleEventName;

use CircleEventName as E;

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

    /// The channel and id whose [`stream_name`](Self::stream_name) is `stream`: its
    /// inverse. `None` for any other text (ids are canonical decimal: no sign, no
    /// leading zeros).
    pub fn from_stream_name(stream: &str) -> Option<(Self, u64)> {
        // Every stream name holds its id as its only run of digits.
        let start = stream.find(|c: char| c.is_ascii_digit())?;
        let len = stream[start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(stream.len() - start);
        let id: u64 = stream[start..start + len].parse().ok()?;
        Self::ALL
            .into_iter()
            .find(|kind| kind.stream_name(id) == stream)
            .map(|kind| (kind, id))
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
