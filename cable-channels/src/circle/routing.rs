//! The typed publisher: the streams Circle's server broadcasts an event on, and the
//! text it broadcasts there. The routing table, and what was chosen where the doc is
//! ambiguous, are in the [module docs](super#publishing-which-streams-get-an-event).

use std::collections::HashSet;

use serde::Serialize;

use super::{
    chat_room_channel_stream, chat_room_stream, community_member_threads_stream,
    notification_channel_stream, CircleEvent, CircleEventName,
};
use crate::encode_json;

/// One broadcast: a pubsub stream and the JSON text to publish on it.
///
/// With Rails' Redis adapter (which cable-server also reads), publish `payload` on the
/// Redis channel `<channel_prefix>:<stream>`; over HTTP, POST [`broadcast_body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The stream, e.g. `chat-room-987-channel`.
    pub stream: String,
    /// The event in its envelope, `{"event":<name>,"data":<payload>}`
    /// ([`CircleEvent::encode`]): what a subscriber receives as the frame's `message`.
    pub payload: String,
}

/// A chat room, as far as routing needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    /// The room's id; its stream is `chat-room-<chat_room_id>-channel`.
    pub chat_room_id: u64,
    /// Whether the room is embedded (not one of the members' chat rooms): the doc
    /// sends member-stream events only for non-embedded rooms.
    pub embedded: bool,
    /// The community member ids of the room's participants, whose
    /// `chat-room-channel-<id>` streams get the events meant for every member. A
    /// repeated id is published to once.
    pub participants: Vec<u64>,
}

/// What an event concerns: everything, besides the event itself, that decides the
/// streams it goes on. Each event takes one kind (two for `chatRoomUpdated`); see the
/// routing table in the [module docs](super#publishing-which-streams-get-an-event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concerns {
    /// One community member alone: the recipient of `newNotification`,
    /// `updateNewNotificationCount` and `resetNewNotificationCount`; the member who read,
    /// for `chatRoomRead` and `chatThreadRead`.
    Member(u64),
    /// One member and one of their rooms: `chatRoomCreated` (its payload is that
    /// member's view of the room: unread count, current participant), the member's
    /// `chatRoomPinned` and `chatRoomUnPinned`, and the `chatRoomUpdated` sent when the
    /// member pinned the room.
    RoomMember {
        /// The member.
        community_member_id: u64,
        /// Whether the room is embedded: then nothing is published.
        embedded: bool,
    },
    /// Attributes of a room were updated (name, description, show history, pinned
    /// message): `chatRoomUpdated` for everyone in the room.
    RoomAttributes {
        /// The room.
        room: Room,
        /// Whether the name is among the updated attributes: only a rename (of a
        /// non-embedded room) goes on the participants' member streams.
        renamed: bool,
    },
    /// A room and all its participants: `chatRoomDeleted`.
    RoomParticipants(Room),
    /// A message of a room: `newMessage`, `updatedMessage`, `deletedMessage`. Whether the
    /// message is a reply is read from the payload (`parent_message_id`; a
    /// `deletedMessage` always names its parent).
    Message {
        /// The room. Its `participants` are used by a `newMessage` only.
        room: Room,
        /// The community member ids of the participants of the thread the message
        /// replies in; used for replies only (empty for any other message).
        thread_participants: Vec<u64>,
    },
}

impl Concerns {
    /// The variant's name, for errors.
    fn kind(&self) -> &'static str {
        match self {
            Concerns::Member(_) => "Concerns::Member",
            Concerns::RoomMember { .. } => "Concerns::RoomMember",
            Concerns::RoomAttributes { .. } => "Concerns::RoomAttributes",
            Concerns::RoomParticipants(_) => "Concerns::RoomParticipants",
            Concerns::Message { .. } => "Concerns::Message",
        }
    }
}

/// Why an event cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A [`CircleEvent::Unknown`]: the doc names no stream for it.
    #[error("`{0}` is not an event of Circle's doc: no stream is known for it")]
    UnknownEvent(String),
    /// The [`Concerns`] given are not the kind the event takes.
    #[error("`{event}` is routed by {expected}, not by {given}")]
    Mismatch {
        /// The event.
        event: CircleEventName,
        /// The kind of concerns given.
        given: &'static str,
        /// The kind(s) the event takes.
        expected: &'static str,
    },
}

/// The kinds of [`Concerns`] an event takes, for [`RouteError::Mismatch`].
fn expected(event: CircleEventName) -> &'static str {
    use CircleEventName as E;
    match event {
        E::NewNotification
        | E::UpdateNewNotificationCount
        | E::ResetNewNotificationCount
        | E::ChatRoomRead
        | E::ChatThreadRead => "Concerns::Member",
        E::ChatRoomCreated | E::ChatRoomPinned | E::ChatRoomUnPinned => "Concerns::RoomMember",
        E::ChatRoomUpdated => "Concerns::RoomMember or Concerns::RoomAttributes",
        E::ChatRoomDeleted => "Concerns::RoomParticipants",
        E::NewMessage | E::UpdatedMessage | E::DeletedMessage => "Concerns::Message",
    }
}

impl CircleEvent {
    /// The broadcasts Circle's doc prescribes for this event: each stream it goes on,
    /// with the same payload ([`CircleEvent::encode`]) on every one.
    ///
    /// Order: the room stream (`chat-room-<room>-channel`) first, then the member
    /// streams (`chat-room-channel-<member>`) in `participants` order, then the thread
    /// streams (`chat-community-member-<member>-threads-channel`) in
    /// `thread_participants` order; a member listed twice is published to once. An
    /// empty list is a valid answer (e.g. `chatRoomPinned` in an embedded room).
    pub fn publications(&self, concerns: &Concerns) -> Result<Vec<Publication>, RouteError> {
        let name = self
            .known_name()
            .ok_or_else(|| RouteError::UnknownEvent(self.name().to_owned()))?;
        let streams = self.streams(concerns).ok_or(RouteError::Mismatch {
            event: name,
            given: concerns.kind(),
            expected: expected(name),
        })?;
        let payload = self.encode();
        Ok(streams
            .into_iter()
            .map(|stream| Publication {
                stream,
                payload: payload.clone(),
            })
            .collect())
    }

    /// The streams, in order; `None` when `concerns` is not the kind the event takes.
    fn streams(&self, concerns: &Concerns) -> Option<Vec<String>> {
        use CircleEvent as C;
        let mut out = Vec::new();
        match (self, concerns) {
            (
                C::NewNotification(_)
                | C::UpdateNewNotificationCount(_)
                | C::ResetNewNotificationCount(_),
                Concerns::Member(member),
            ) => out.push(notification_channel_stream(*member)),
            (C::ChatRoomRead(_), Concerns::Member(member)) => {
                out.push(chat_room_channel_stream(*member))
            }
            (C::ChatThreadRead(_), Concerns::Member(member)) => {
                out.push(community_member_threads_stream(*member))
            }
            (
                C::ChatRoomCreated(_)
                | C::ChatRoomPinned(_)
                | C::ChatRoomUnPinned(_)
                | C::ChatRoomUpdated(_),
                Concerns::RoomMember {
                    community_member_id,
                    embedded,
                },
            ) => {
                if !embedded {
                    out.push(chat_room_channel_stream(*community_member_id));
                }
            }
            (C::ChatRoomUpdated(_), Concerns::RoomAttributes { room, renamed }) => {
                out.push(chat_room_stream(room.chat_room_id));
                if *renamed && !room.embedded {
                    push_each(&mut out, &room.participants, chat_room_channel_stream);
                }
            }
            (C::ChatRoomDeleted(_), Concerns::RoomParticipants(room)) => {
                push_each(&mut out, &room.participants, chat_room_channel_stream);
            }
            (
                C::NewMessage(_) | C::UpdatedMessage(_) | C::DeletedMessage(_),
                Concerns::Message {
                    room,
                    thread_participants,
                },
            ) => {
                let reply = match self {
                    C::NewMessage(m) => m.parent_message_id.is_some(),
                    C::UpdatedMessage(m) => m.parent_message_id.is_some(),
                    _ => true,
                };
                out.push(chat_room_stream(room.chat_room_id));
                if matches!(self, C::NewMessage(_)) && !reply && !room.embedded {
                    push_each(&mut out, &room.participants, chat_room_channel_stream);
                }
                if reply {
                    push_each(
                        &mut out,
                        thread_participants,
                        community_member_threads_stream,
                    );
                }
            }
            _ => return None,
        }
        Some(out)
    }
}

/// Pushes the stream of each member, in order, once per member.
fn push_each(out: &mut Vec<String>, members: &[u64], stream: fn(u64) -> String) {
    let mut seen = HashSet::with_capacity(members.len());
    out.extend(
        members
            .iter()
            .filter(|m| seen.insert(**m))
            .map(|m| stream(*m)),
    );
}

/// One item of a `POST /_broadcast` body.
#[derive(Serialize)]
struct BroadcastItem<'a> {
    stream: &'a str,
    data: &'a str,
}

/// The body of cable-server's `POST /_broadcast` publishing `publications`:
/// `[{"stream":<stream>,"data":<payload as a JSON string>},...]`. The payload travels as
/// a string holding JSON text (AnyCable's form), so subscribers receive its exact bytes.
pub fn broadcast_body(publications: &[Publication]) -> String {
    let items: Vec<BroadcastItem<'_>> = publications
        .iter()
        .map(|p| BroadcastItem {
            stream: &p.stream,
            data: &p.payload,
        })
        .collect();
    encode_json(&items)
}
