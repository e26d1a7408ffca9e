//! Golden tests of Circle's events: one frame per Circle event and channel decodes to the
//! expected typed value and encodes back to the same JSON value; events are refused on
//! channels that do not carry them.

mod common;

use cable_channels::circle::{
    self, CircleChannelKind, CircleEvent, CircleIdentifier, CircleMessage,
};
use cable_channels::{ChannelIdentifier, ChannelMessage, IdValue, Object, Value};
use common::{jsonl, object as o, value as j};

fn s(text: &str) -> String {
    text.to_owned()
}

// ==================================================== circle_events.jsonl

fn sender() -> Value {
    j(r#"{"id":77,"name":"Ada Lovelace","avatar_url":null}"#)
}
fn rich() -> Value {
    j(
        r#"{"body":{"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":"Hi <all> & \"you\""}]}]}}"#,
    )
}
fn preview() -> Value {
    j(r#"{"count":1,"avatars":[]}"#)
}
const ROOM_UUID: &str = "0b8f0c6e-9a52-4b8e-9c53-2a7b9f1e2d10";

fn json_message() -> circle::JsonMessage {
    circle::JsonMessage {
        id: 501,
        chat_room_uuid: s(ROOM_UUID),
        chat_room_kind: s("direct"),
        chat_room_participant_id: Some(9001),
        body: s("Hi <all> & \"you\""),
        rich_text_body: rich(),
        sent_at: s("2024-10-25T11:17:36.000Z"),
        created_at: s("2024-10-25T11:17:36.000Z"),
        sender: sender(),
        creation_uuid: Some(s("c0ffee00-0000-4000-8000-000000000001")),
        chat_thread_id: None,
        parent_message_id: None,
        lesson_id: None,
        edited_at: None,
        replies_count: 0,
        total_thread_participants_count: 0,
        thread_participants_preview: preview(),
        chat_thread_replies_count: Some(0),
        extra: Object::new(),
    }
}

fn chat_message() -> circle::ChatMessage {
    let m = json_message();
    circle::ChatMessage {
        id: m.id,
        chat_room_uuid: m.chat_room_uuid,
        chat_room_participant_id: m.chat_room_participant_id,
        body: m.body,
        rich_text_body: m.rich_text_body,
        sent_at: m.sent_at,
        created_at: m.created_at,
        sender: m.sender,
        creation_uuid: m.creation_uuid,
        chat_thread_id: m.chat_thread_id,
        parent_message_id: m.parent_message_id,
        lesson_id: m.lesson_id,
        edited_at: m.edited_at,
        replies_count: m.replies_count,
        total_thread_participants_count: m.total_thread_participants_count,
        thread_participants_preview: m.thread_participants_preview,
        extra: Object::new(),
    }
}

fn room_parent() -> circle::ParentMessage {
    let m = chat_message();
    circle::ParentMessage {
        id: 400,
        chat_room_uuid: Some(m.chat_room_uuid),
        chat_room_participant_id: Some(IdValue::Number(9001)),
        body: Some(m.body),
        rich_text_body: m.rich_text_body,
        sent_at: Some(m.sent_at),
        created_at: m.created_at,
        sender: m.sender,
        creation_uuid: m.creation_uuid,
        chat_thread_id: Some(31),
        parent_message_id: None,
        lesson_id: None,
        edited_at: Some(s("2024-10-25T11:20:00.000Z")),
        replies_count: 2,
        total_thread_participants_count: 2,
        thread_participants_preview: m.thread_participants_preview,
        extra: Object::new(),
    }
}

fn simplified() -> circle::SimplifiedChatRoom {
    circle::SimplifiedChatRoom {
        uuid: s(ROOM_UUID),
        chat_room_name: Some(s("Renamed")),
        chat_room_description: Some(s("About things")),
        chat_room_show_history: false,
        pinned_message: j(r#"{"id":501,"body":"pinned"}"#),
        extra: Object::new(),
    }
}

fn circle_expected(name: &str) -> (CircleIdentifier, CircleEvent, Object) {
    use CircleEvent as C;
    let cr = CircleIdentifier::chat_room(1234);
    let no = CircleIdentifier::notification(1234);
    let rm = CircleIdentifier::chats_room(987);
    let th = CircleIdentifier::community_member_threads(1234);
    let room_ref = || circle::ChatRoomRef {
        chat_room_uuid: s(ROOM_UUID),
        extra: Object::new(),
    };
    let count = |n, extra| circle::NotificationCount {
        new_notifications_count: n,
        extra,
    };
    let none = Object::new();
    match name {
        "new_notification" => (
            no,
            C::NewNotification(j(r#"{"id":3,"action":"mention","notifiable_type":"Post"}"#)),
            none,
        ),
        "update_count" => (
            no,
            C::UpdateNewNotificationCount(count(5, Object::new())),
            none,
        ),
        "reset_count" => (
            no,
            C::ResetNewNotificationCount(count(0, Object::new())),
            none,
        ),
        "extra_fields" => (
            no,
            C::UpdateNewNotificationCount(count(6, o(r#"{"community_id":1}"#))),
            none,
        ),
        "chat_room_created" => (
            cr,
            C::ChatRoomCreated(circle::ChatRoom {
                id: 987,
                uuid: s(ROOM_UUID),
                identifier: s("ada-and-grace"),
                unread_messages_count: 0,
                chat_room_kind: s("direct"),
                chat_room_name: Some(s("Ada & Grace")),
                chat_room_description: None,
                chat_room_show_history: true,
                other_participants_preview: vec![j(r#"{"id":9002,"name":"Grace Hopper"}"#)],
                current_participant: j(r#"{"id":9001,"muted_at":null}"#),
                last_message: Value::Null,
                extra: Object::new(),
            }),
            none,
        ),
        "chat_room_updated" => (cr, C::ChatRoomUpdated(simplified()), none),
        "chat_room_updated_room" => (rm, C::ChatRoomUpdated(simplified()), none),
        "chat_room_deleted" => (cr, C::ChatRoomDeleted(room_ref()), none),
        "chat_room_read" => (cr, C::ChatRoomRead(room_ref()), none),
        "chat_room_pinned" => (
            cr,
            C::ChatRoomPinned(circle::ChatRoomPinned {
                chat_room_id: 987,
                pinned_at: s("2024-10-25T11:17:36.000Z"),
                extra: Object::new(),
            }),
            none,
        ),
        "chat_room_unpinned" => (
            cr,
            C::ChatRoomUnPinned(circle::ChatRoomUnpinned {
                chat_room_id: 987,
                extra: Object::new(),
            }),
            none,
        ),
        "new_message_chat_room" => (cr, C::NewMessage(json_message()), none),
        "new_message_room" => (
            rm,
            C::NewMessage(circle::JsonMessage {
                chat_thread_id: Some(31),
                parent_message_id: Some(400),
                chat_thread_replies_count: Some(3),
                ..json_message()
            }),
            none,
        ),
        "deleted_message_room" => (
            rm,
            C::DeletedMessage(circle::MessageWithParent {
                id: 502,
                parent_message: room_parent(),
                extra: Object::new(),
            }),
            none,
        ),
        "updated_message_room" => (
            rm,
            C::UpdatedMessage(circle::ChatMessage {
                edited_at: Some(s("2024-10-25T11:19:00.000Z")),
                ..chat_message()
            }),
            none,
        ),
        "new_message_threads" => (
            th,
            C::NewMessage(circle::JsonMessage {
                chat_thread_id: Some(31),
                parent_message_id: Some(400),
                lesson_id: Some(12),
                ..json_message()
            }),
            none,
        ),
        "updated_message_threads" => (
            th,
            C::UpdatedMessage(circle::ChatMessage {
                chat_thread_id: Some(31),
                parent_message_id: Some(400),
                ..chat_message()
            }),
            none,
        ),
        "deleted_message_threads" => (
            th,
            C::DeletedMessage(circle::MessageWithParent {
                id: 503,
                parent_message: circle::ParentMessage {
                    chat_room_uuid: None,
                    body: None,
                    sent_at: None,
                    chat_room_participant_id: Some(IdValue::Text(s("9001"))),
                    ..room_parent()
                },
                extra: Object::new(),
            }),
            none,
        ),
        "chat_thread_read" => (
            th,
            C::ChatThreadRead(circle::ChatThreadRead {
                chat_thread_id: 31,
                extra: Object::new(),
            }),
            none,
        ),
        "unknown_event" => (
            cr,
            C::Unknown {
                event: s("chatRoomArchived"),
                data: j(r#"{"chat_room_uuid":"x","archived":true}"#),
            },
            none,
        ),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn circle_event_per_channel() {
    let lines = jsonl("circle_events.jsonl");
    assert_eq!(lines.len(), 20);
    let mut seen = std::collections::HashSet::new();
    for line in lines {
        let name = line["name"].as_str().unwrap();
        let frame = line["frame"].as_str().unwrap();
        let (id, msg) = circle::decode_frame(frame).unwrap().unwrap();
        let (want_id, want_event, want_extra) = circle_expected(name);
        assert_eq!(id, want_id, "{name}");
        assert_eq!(msg.event, want_event, "{name}");
        assert_eq!(msg.extra, want_extra, "{name}");
        if let Some(n) = msg.event.known_name() {
            assert!(id.kind.allows(n));
            seen.insert((id.kind, n));
        }
        // Encode back: identifier + envelope, byte for byte.
        let rebuilt = ChannelMessage {
            identifier: id.identifier(),
            message: j(&msg.encode()),
        };
        assert_eq!(rebuilt.encode(), frame, "{name}");
    }
    // Every (channel, event) pair the doc lists has a golden frame.
    for kind in CircleChannelKind::ALL {
        for &event in kind.events() {
            assert!(
                seen.contains(&(kind, event)),
                "no golden frame for {event} on {kind}"
            );
        }
    }
}

#[test]
fn circle_events_rejected_on_channels_that_do_not_carry_them() {
    let data = r#"{"event":"chatThreadRead","data":{"chat_thread_id":31}}"#;
    assert!(
        CircleMessage::decode_for(CircleChannelKind::ChatsCommunityMemberThreads, data).is_ok()
    );
    for kind in [
        CircleChannelKind::ChatRoom,
        CircleChannelKind::Notification,
        CircleChannelKind::ChatsRoom,
    ] {
        assert!(matches!(
            CircleMessage::decode_for(kind, data),
            Err(cable_channels::DecodeError::EventNotAllowed {
                event: "chatThreadRead",
                ..
            })
        ));
    }
    // Unknown events pass on any channel.
    let unknown = r#"{"event":"somethingNew","data":[1]}"#;
    for kind in CircleChannelKind::ALL {
        assert!(CircleMessage::decode_for(kind, unknown).is_ok());
    }
    // Stream names.
    assert_eq!(
        CircleIdentifier::chat_room(7).stream_name(),
        "chat-room-channel-7"
    );
    assert_eq!(
        CircleIdentifier::notification(7).stream_name(),
        "notification-channel-7"
    );
    assert_eq!(
        CircleIdentifier::chats_room(8).stream_name(),
        "chat-room-8-channel"
    );
    assert_eq!(
        CircleIdentifier::community_member_threads(7).stream_name(),
        "chat-community-member-7-threads-channel"
    );
}
