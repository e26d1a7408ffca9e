//! proptest: for every type, encode then decode gives back the value, and encoding the
//! decoded value gives the same bytes.

mod common;

use cable_channels::buddyboss::{self, BuddyBossMessage};
use cable_channels::circle::{self, CircleChannelKind, CircleIdentifier, CircleMessage};
use cable_channels::jac::{
    self, ChangeUserEvent, ChannelId, ClientId, GeneratedId, JacClientEvent, JacServerFrame,
    LocItem, ObjectId, RootId,
};
use cable_channels::platformos::{ConversateIdentifier, ConversateMessage};
use cable_channels::{ChannelIdentifier, ChannelMessage};
use common::strategies::{circle_identifier, circle_message, extra, id_value, json, object, text};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

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
