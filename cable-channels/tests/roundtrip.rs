//! proptest: for every type, encode then decode gives back the value, and encoding the
//! decoded value gives the same bytes.

use cable_channels::buddyboss::{self, BuddyBossMessage};
use cable_channels::circle::{
    self, CircleChannelKind, CircleEvent, CircleIdentifier, CircleMessage,
};
use cable_channels::jac::{
    self, ChangeUserEvent, ChannelId, ClientId, GeneratedId, JacClientEvent, JacServerFrame,
    LocItem, ObjectId, RootId,
};
use cable_channels::platformos::{ConversateIdentifier, ConversateMessage};
use cable_channels::{ChannelIdentifier, ChannelMessage, IdValue, Object, Value};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

// ------------------------------------------------------------------ values

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(Value::Number),
    ]
}

fn json() -> impl Strategy<Value = Value> {
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

fn object() -> impl Strategy<Value = Object> {
    vec((any::<String>(), json()), 0..4).prop_map(|kv| kv.into_iter().collect())
}

/// Unknown fields: keys prefixed `x_`, which no known field has.
fn extra() -> impl Strategy<Value = Object> {
    vec(("x_[a-z]{0,6}", json()), 0..3).prop_map(|kv| kv.into_iter().collect())
}

fn id_value() -> impl Strategy<Value = IdValue> {
    prop_oneof![
        any::<u64>().prop_map(IdValue::Number),
        any::<String>().prop_map(IdValue::Text)
    ]
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

/// Asserts decode(encode(v)) == v and that re-encoding is byte-stable.
fn round_trip<T: PartialEq + std::fmt::Debug>(
    v: &T,
    encode: impl Fn(&T) -> String,
    decode: impl Fn(&str) -> Result<T, cable_channels::DecodeError>,
) -> Result<(), TestCaseError> {
    let bytes = encode(v);
    let back = decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {bytes}")))?;
    prop_assert_eq!(&back, v, "{}", bytes);
    prop_assert_eq!(encode(&back), bytes);
    Ok(())
}

// ------------------------------------------------------------------ Circle

fn circle_kind() -> impl Strategy<Value = CircleChannelKind> {
    proptest::sample::select(CircleChannelKind::ALL.to_vec())
}

fn circle_identifier() -> impl Strategy<Value = CircleIdentifier> {
    (circle_kind(), any::<u64>(), extra()).prop_map(|(kind, id, extra)| CircleIdentifier {
        kind,
        id,
        extra,
    })
}

fn json_message() -> impl Strategy<Value = circle::JsonMessage> {
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

fn chat_message() -> impl Strategy<Value = circle::ChatMessage> {
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

fn parent_message() -> impl Strategy<Value = circle::ParentMessage> {
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

fn circle_event() -> impl Strategy<Value = CircleEvent> {
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

fn circle_message() -> impl Strategy<Value = CircleMessage> {
    (circle_event(), extra()).prop_map(|(event, extra)| CircleMessage { event, extra })
}

// ------------------------------------------------------------- platformOS

fn conversate_message() -> impl Strategy<Value = ConversateMessage> {
    (
        text(),
        of(id_value()),
        of(text()),
        text(),
        any::<bool>(),
        extra(),
    )
        .prop_map(
            |(message, author_id, sender_name, created_at, create, extra)| ConversateMessage {
                message,
                author_id,
                sender_name,
                created_at,
                create,
                extra,
            },
        )
}

// --------------------------------------------------------------- BuddyBoss

fn buddyboss_message() -> impl Strategy<Value = BuddyBossMessage> {
    use buddyboss as b;
    let ids = || (id_value(), id_value(), id_value());
    let unknown = "[a-z_-]{1,12}".prop_filter("unknown type", |t| {
        !BuddyBossMessage::TYPES.contains(&t.as_str())
    });
    prop_oneof![
        (id_value(), extra()).prop_map(|(user_id, extra)| BuddyBossMessage::UserConnected(
            b::UserConnected { user_id, extra }
        )),
        (id_value(), extra()).prop_map(|(thread_id, extra)| BuddyBossMessage::JoinThread(
            b::JoinThread { thread_id, extra }
        )),
        (of(id_value()), text(), of(id_value()), of(text()), extra()).prop_map(
            |(recipient_id, message, thread_id, token, extra)| {
                BuddyBossMessage::SendMessage(b::SendMessage {
                    recipient_id,
                    message,
                    thread_id,
                    token,
                    extra,
                })
            }
        ),
        (id_value(), of(any::<bool>()), extra()).prop_map(|(thread_id, typing, extra)| {
            BuddyBossMessage::Typing(b::Typing {
                thread_id,
                typing,
                extra,
            })
        }),
        (ids(), extra()).prop_map(|((s, r, t), extra)| BuddyBossMessage::CallInitiated(
            b::CallInitiated {
                sender_id: s,
                recipient_id: r,
                thread_id: t,
                extra
            }
        )),
        (json(), ids(), extra()).prop_map(|(offer, (s, r, t), extra)| BuddyBossMessage::Offer(
            b::Offer {
                offer,
                recipient_id: r,
                sender_id: s,
                thread_id: t,
                extra
            }
        )),
        (json(), ids(), extra()).prop_map(|(answer, (s, r, t), extra)| {
            BuddyBossMessage::Answer(b::Answer {
                answer,
                recipient_id: r,
                sender_id: s,
                thread_id: t,
                extra,
            })
        }),
        (json(), ids(), extra()).prop_map(|(candidate, (s, r, t), extra)| {
            BuddyBossMessage::IceCandidate(b::IceCandidate {
                candidate,
                recipient_id: r,
                sender_id: s,
                thread_id: t,
                extra,
            })
        }),
        (text(), extra()).prop_map(|(message, extra)| BuddyBossMessage::Error(b::ErrorMessage {
            message,
            extra
        })),
        (text(), extra()).prop_map(|(message, extra)| BuddyBossMessage::Message(
            b::ServerMessage { message, extra }
        )),
        (unknown, extra()).prop_map(|(message_type, payload)| BuddyBossMessage::Unknown {
            message_type,
            payload
        }),
    ]
}

// -------------------------------------------------------------------- Jac

fn generated() -> impl Strategy<Value = GeneratedId> {
    (any::<u64>(), any::<u128>())
        .prop_map(|(unix_seconds, uuid)| GeneratedId { unix_seconds, uuid })
}

fn client_id() -> impl Strategy<Value = ClientId> {
    prop_oneof![
        generated().prop_map(ClientId::Generated),
        text().prop_map(ClientId::from)
    ]
}

fn channel_id() -> impl Strategy<Value = ChannelId> {
    prop_oneof![
        generated().prop_map(ChannelId::Generated),
        text().prop_map(ChannelId::from)
    ]
}

fn root_id() -> impl Strategy<Value = RootId> {
    prop_oneof![
        (text(), any::<[u8; 12]>()).prop_map(|(name, b)| RootId::Node {
            name,
            object_id: ObjectId(b)
        }),
        text().prop_map(RootId::from),
    ]
}

fn jac_client_event() -> impl Strategy<Value = JacClientEvent> {
    let unknown = "[a-zA-Z_]{1,12}".prop_filter("unknown type", |t| {
        !JacClientEvent::TYPES.contains(&t.as_str())
    });
    prop_oneof![
        (
            text(),
            of(any::<bool>()),
            of(object()),
            of(root_id()),
            extra()
        )
            .prop_map(
                |(walker, response, context, node, extra)| JacClientEvent::Walker(
                    jac::WalkerEvent {
                        walker,
                        response,
                        context,
                        node,
                        extra
                    }
                )
            ),
        (vec(root_id(), 0..3), object(), extra()).prop_map(|(root_ids, data, extra)| {
            JacClientEvent::User(jac::UserEvent {
                root_ids,
                data,
                extra,
            })
        }),
        (vec(channel_id(), 0..3), object(), extra()).prop_map(|(channel_ids, data, extra)| {
            JacClientEvent::Channel(jac::ChannelEvent {
                channel_ids,
                data,
                extra,
            })
        }),
        (vec(client_id(), 0..3), object(), extra()).prop_map(|(client_ids, data, extra)| {
            JacClientEvent::Client(jac::ClientEvent {
                client_ids,
                data,
                extra,
            })
        }),
        (of(of(text())), extra()).prop_map(|(token, extra)| JacClientEvent::ChangeUser(
            ChangeUserEvent { token, extra }
        )),
        extra().prop_map(|extra| JacClientEvent::Connection(jac::ConnectionEvent { extra })),
        (unknown, extra()).prop_map(|(event_type, payload)| JacClientEvent::Unknown {
            event_type,
            payload
        }),
    ]
}

fn loc_item() -> impl Strategy<Value = LocItem> {
    prop_oneof![
        text().prop_map(LocItem::Field),
        any::<i64>().prop_map(LocItem::Index)
    ]
}

fn validation_error() -> impl Strategy<Value = jac::ValidationError> {
    (
        text(),
        vec(loc_item(), 0..4),
        text(),
        json(),
        of(object()),
        of(text()),
        extra(),
    )
        .prop_map(
            |(error_type, loc, msg, input, ctx, url, extra)| jac::ValidationError {
                error_type,
                loc,
                msg,
                input,
                ctx,
                url,
                extra,
            },
        )
}

fn jac_server_frame() -> impl Strategy<Value = JacServerFrame> {
    prop_oneof![
        (client_id(), root_id(), channel_id(), extra()).prop_map(
            |(client_id, root_id, channel_id, extra)| JacServerFrame::Connection(
                jac::ConnectionInfo {
                    client_id,
                    root_id,
                    channel_id,
                    extra
                }
            )
        ),
        (any::<u16>(), vec(json(), 0..4)).prop_map(|(status, reports)| {
            JacServerFrame::WalkerResponse(jac::WalkerResponse { status, reports })
        }),
        text().prop_map(|error| JacServerFrame::WalkerError(jac::WalkerError { error })),
        vec(validation_error(), 1..3).prop_map(JacServerFrame::ValidationErrors),
        vec(text(), 0..4).prop_map(JacServerFrame::Traceback),
        // A delivered payload is a notification unless it has a server frame's shape.
        json().prop_filter_map("shaped like a server frame", |v| {
            match JacServerFrame::from_json(v.clone()) {
                JacServerFrame::Notification(n) => Some(JacServerFrame::Notification(n)),
                _ => None,
            }
        }),
    ]
}

// ------------------------------------------------------------------ tests

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn circle_identifiers(id in circle_identifier()) {
        round_trip(&id, |v| v.identifier(), CircleIdentifier::parse)?;
        let cmd: serde_json::Value = serde_json::from_str(&id.subscribe_command()).unwrap();
        prop_assert_eq!(cmd["command"].as_str(), Some("subscribe"));
        let identifier = id.identifier();
        prop_assert_eq!(cmd["identifier"].as_str(), Some(identifier.as_str()));
        prop_assert_eq!(id.stream_name(), id.kind.stream_name(id.id));
    }

    #[test]
    fn circle_messages(msg in circle_message()) {
        round_trip(&msg, CircleMessage::encode, CircleMessage::decode)?;
        for kind in CircleChannelKind::ALL {
            let allowed = msg.event.known_name().is_none_or(|n| kind.allows(n));
            prop_assert_eq!(CircleMessage::decode_for(kind, &msg.encode()).is_ok(), allowed);
        }
    }

    #[test]
    fn circle_frames(id in circle_identifier(), msg in circle_message()) {
        prop_assume!(msg.event.known_name().is_none_or(|n| id.kind.allows(n)));
        let frame = ChannelMessage {
            identifier: id.identifier(),
            message: serde_json::from_str(&msg.encode()).unwrap(),
        };
        let (got_id, got_msg) = circle::decode_frame(&frame.encode()).unwrap().unwrap();
        prop_assert_eq!(got_id, id);
        prop_assert_eq!(got_msg, msg);
    }

    #[test]
    fn channel_messages(identifier in text(), message in json()) {
        let m = ChannelMessage { identifier, message };
        round_trip(&m, ChannelMessage::encode, |s| ChannelMessage::decode(s).map(Option::unwrap))?;
    }

    #[test]
    fn conversate_identifiers(room_id in id_value(), extra in extra()) {
        let id = ConversateIdentifier { room_id, extra };
        round_trip(&id, |v| v.identifier(), ConversateIdentifier::parse)?;
    }

    #[test]
    fn conversate_messages(msg in conversate_message(), room in id_value()) {
        round_trip(&msg, ConversateMessage::encode, ConversateMessage::decode)?;
        let cmd: serde_json::Value =
            serde_json::from_str(&msg.send_command(&ConversateIdentifier::new(room))).unwrap();
        prop_assert_eq!(
            ConversateMessage::decode(cmd["data"].as_str().unwrap()).unwrap(),
            msg
        );
    }

    #[test]
    fn buddyboss_messages(msg in buddyboss_message()) {
        round_trip(&msg, BuddyBossMessage::encode, BuddyBossMessage::decode)?;
    }

    #[test]
    fn jac_client_events(ev in jac_client_event()) {
        round_trip(&ev, JacClientEvent::encode, JacClientEvent::decode)?;
    }

    #[test]
    fn jac_server_frames(frame in jac_server_frame()) {
        round_trip(&frame, JacServerFrame::encode, JacServerFrame::decode)?;
    }

    #[test]
    fn jac_ids(g in generated(), s in text(), b in any::<[u8; 12]>()) {
        prop_assert_eq!(g.to_string().parse::<GeneratedId>().unwrap(), g);
        prop_assert_eq!(ClientId::from(g.to_string()), ClientId::Generated(g));
        prop_assert_eq!(ChannelId::from(g.to_string().as_str()), ChannelId::Generated(g));
        prop_assert_eq!(ObjectId(b).to_string().parse::<ObjectId>().unwrap(), ObjectId(b));
        // Every string is representable and displays as itself.
        prop_assert_eq!(ClientId::from(s.as_str()).to_string(), s.clone());
        prop_assert_eq!(ChannelId::from(s.as_str()).to_string(), s.clone());
        prop_assert_eq!(RootId::from(s.as_str()).to_string(), s.clone());
        prop_assert_eq!(RootId::from(RootId::from(s.as_str()).to_string()), RootId::from(s.as_str()));
    }
}
