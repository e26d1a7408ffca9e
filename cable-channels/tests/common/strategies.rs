//! proptest strategies shared by the integration tests: JSON values and every Circle
//! type.

use cable_channels::circle::{
    self, CircleChannelKind, CircleEvent, CircleIdentifier, CircleMessage,
};
use cable_channels::{IdValue, Object, Value};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

// ------------------------------------------------------------------ values

pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(Value::Number),
    ]
}

pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((any::<String>(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

pub fn object() -> impl Strategy<Value = Object> {
    vec((any::<String>(), json()), 0..4).prop_map(|kv| kv.into_iter().collect())
}

/// Unknown fields: keys prefixed `x_`, which no known field has.
pub fn extra() -> impl Strategy<Value = Object> {
    vec(("x_[a-z]{0,6}", json()), 0..3).prop_map(|kv| kv.into_iter().collect())
}

pub fn id_value() -> impl Strategy<Value = IdValue> {
    prop_oneof![
        any::<u64>().prop_map(IdValue::Number),
        any::<String>().prop_map(IdValue::Text)
    ]
}

pub fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

// ------------------------------------------------------------------ Circle

pub fn circle_kind() -> impl Strategy<Value = CircleChannelKind> {
    proptest::sample::select(CircleChannelKind::ALL.to_vec())
}

pub fn circle_identifier() -> impl Strategy<Value = CircleIdentifier> {
    (circle_kind(), any::<u64>(), extra()).prop_map(|(kind, id, extra)| CircleIdentifier {
        kind,
        id,
        extra,
    })
}

pub fn json_message() -> impl Strategy<Value = circle::JsonMessage> {
    (
        (
            any::<u64>(),
            text(),
            text(),
            of(any::<u64>()),
            text(),
            json(),
        ),
        (
            text(),
            text(),
            json(),
            of(text()),
            of(any::<u64>()),
            of(any::<u64>()),
        ),
        (
            of(any::<u64>()),
            of(text()),
            any::<u64>(),
            any::<u64>(),
            json(),
            of(any::<u64>()),
        ),
        extra(),
    )
        .prop_map(|(a, b, c, extra)| circle::JsonMessage {
            id: a.0,
            chat_room_uuid: a.1,
            chat_room_kind: a.2,
            chat_room_participant_id: a.3,
            body: a.4,
            rich_text_body: a.5,
            sent_at: b.0,
            created_at: b.1,
            sender: b.2,
            creation_uuid: b.3,
            chat_thread_id: b.4,
            parent_message_id: b.5,
            lesson_id: c.0,
            edited_at: c.1,
            replies_count: c.2,
            total_thread_participants_count: c.3,
            thread_participants_preview: c.4,
            chat_thread_replies_count: c.5,
            extra,
        })
}

pub fn chat_message() -> impl Strategy<Value = circle::ChatMessage> {
    json_message().prop_map(|m| circle::ChatMessage {
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
        extra: m.extra,
    })
}

pub fn parent_message() -> impl Strategy<Value = circle::ParentMessage> {
    (chat_message(), any::<bool>(), of(id_value())).prop_map(|(m, room_version, participant)| {
        circle::ParentMessage {
            id: m.id,
            chat_room_uuid: room_version.then_some(m.chat_room_uuid),
            chat_room_participant_id: participant,
            body: room_version.then_some(m.body),
            rich_text_body: m.rich_text_body,
            sent_at: room_version.then_some(m.sent_at),
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
            extra: m.extra,
        }
    })
}

pub fn circle_event() -> impl Strategy<Value = CircleEvent> {
    let count = || {
        (any::<u64>(), extra()).prop_map(|(n, extra)| circle::NotificationCount {
            new_notifications_count: n,
            extra,
        })
    };
    let room_ref = || {
        (text(), extra()).prop_map(|(chat_room_uuid, extra)| circle::ChatRoomRef {
            chat_room_uuid,
            extra,
        })
    };
    let chat_room = (
        (
            any::<u64>(),
            text(),
            text(),
            any::<u64>(),
            text(),
            of(text()),
        ),
        (
            of(text()),
            any::<bool>(),
            vec(json(), 0..3),
            json(),
            json(),
            extra(),
        ),
    )
        .prop_map(|(a, b)| circle::ChatRoom {
            id: a.0,
            uuid: a.1,
            identifier: a.2,
            unread_messages_count: a.3,
            chat_room_kind: a.4,
            chat_room_name: a.5,
            chat_room_description: b.0,
            chat_room_show_history: b.1,
            other_participants_preview: b.2,
            current_participant: b.3,
            last_message: b.4,
            extra: b.5,
        });
    let simplified = (
        text(),
        of(text()),
        of(text()),
        any::<bool>(),
        json(),
        extra(),
    )
        .prop_map(|(uuid, name, description, show, pinned, extra)| {
            circle::SimplifiedChatRoom {
                uuid,
                chat_room_name: name,
                chat_room_description: description,
                chat_room_show_history: show,
                pinned_message: pinned,
                extra,
            }
        });
    let unknown_name = "[a-zA-Z]{1,12}".prop_filter("not a known event", |n| {
        circle::CircleEventName::from_name(n).is_none()
    });
    prop_oneof![
        json().prop_map(CircleEvent::NewNotification),
        count().prop_map(CircleEvent::UpdateNewNotificationCount),
        count().prop_map(CircleEvent::ResetNewNotificationCount),
        chat_room.prop_map(CircleEvent::ChatRoomCreated),
        simplified.prop_map(CircleEvent::ChatRoomUpdated),
        room_ref().prop_map(CircleEvent::ChatRoomDeleted),
        room_ref().prop_map(CircleEvent::ChatRoomRead),
        (any::<u64>(), text(), extra()).prop_map(|(chat_room_id, pinned_at, extra)| {
            CircleEvent::ChatRoomPinned(circle::ChatRoomPinned {
                chat_room_id,
                pinned_at,
                extra,
            })
        }),
        (any::<u64>(), extra()).prop_map(|(chat_room_id, extra)| {
            CircleEvent::ChatRoomUnPinned(circle::ChatRoomUnpinned {
                chat_room_id,
                extra,
            })
        }),
        json_message().prop_map(CircleEvent::NewMessage),
        (any::<u64>(), parent_message(), extra()).prop_map(|(id, parent_message, extra)| {
            CircleEvent::DeletedMessage(circle::MessageWithParent {
                id,
                parent_message,
                extra,
            })
        }),
        chat_message().prop_map(CircleEvent::UpdatedMessage),
        (any::<u64>(), extra()).prop_map(|(chat_thread_id, extra)| {
            CircleEvent::ChatThreadRead(circle::ChatThreadRead {
                chat_thread_id,
                extra,
            })
        }),
        (unknown_name, json()).prop_map(|(event, data)| CircleEvent::Unknown { event, data }),
    ]
}

pub fn circle_message() -> impl Strategy<Value = CircleMessage> {
    (circle_event(), extra()).prop_map(|(event, extra)| CircleMessage { event, extra })
}
