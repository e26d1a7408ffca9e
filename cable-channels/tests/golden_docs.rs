//! Golden tests of the seed documents: every example of the four seed documents (as the
//! docs' JavaScript renders it, and every verbatim JSON block) decodes to the expected typed
//! value and encodes back to the same JSON value (and, where the source is compact JSON, to
//! the same bytes).

mod common;

use cable_channels::buddyboss::{self, BuddyBossMessage};
use cable_channels::circle::CircleIdentifier;
use cable_channels::jac::{
    ChannelId, ClientId, GeneratedId, JacClientEvent, JacServerFrame, RootId,
};
use cable_channels::platformos::{ConversateIdentifier, ConversateMessage};
use cable_channels::{ChannelIdentifier, ChannelMessage, IdValue, Object};
use common::{assert_same_value, golden, jsonl, object as o, value as j};

fn s(text: &str) -> String {
    text.to_owned()
}

// =========================================================== docs.jsonl (JS)

fn circle_identifier_for(name: &str) -> CircleIdentifier {
    match name.rsplit('.').next().unwrap() {
        "chat_room" => CircleIdentifier::chat_room(1234),
        "notification" => CircleIdentifier::notification(1234),
        "chats_room" => CircleIdentifier::chats_room(987),
        "threads" => CircleIdentifier::community_member_threads(1234),
        other => panic!("no identifier for {other}"),
    }
}

fn platformos_message() -> ConversateMessage {
    ConversateMessage::new(
        "Hello &lt;b&gt;there&lt;/b&gt;",
        2u64,
        "Some Sender",
        "2024-02-01T10:30:00.000Z",
    )
}

fn graphql_payload() -> ConversateMessage {
    ConversateMessage::new("Some message", 2u64, "Some Sender", "2030-07-01 10:30:00")
}

fn chat_data() -> Object {
    o(r#"{"type":"chat","data":{"any_field":"any_value"}}"#)
}

#[test]
fn doc_examples_rendered_by_the_docs_javascript() {
    let lines = jsonl("docs.jsonl");
    assert_eq!(lines.len(), 26);
    for line in lines {
        let name = line["name"].as_str().unwrap();
        let frame = line["frame"].as_str().unwrap();
        assert!(line["exact"].as_bool().unwrap());
        match line["decoder"].as_str().unwrap() {
            "circle_identifier" => {
                let id = CircleIdentifier::parse(frame).unwrap();
                assert_eq!(id, circle_identifier_for(name), "{name}");
                assert_eq!(id.identifier(), frame, "{name}");
            }
            "circle_subscribe" => {
                let expected = circle_identifier_for(name);
                assert_eq!(expected.subscribe_command(), frame, "{name}");
                let cmd = common::value(frame);
                let parsed = CircleIdentifier::parse(cmd["identifier"].as_str().unwrap()).unwrap();
                assert_eq!(parsed, expected);
            }
            "channel_message" => {
                let decoded = ChannelMessage::decode(frame).unwrap();
                match name {
                    "circle.confirm_subscription" | "circle.welcome" | "circle.ping" => {
                        assert_eq!(decoded, None, "{name} is a control frame")
                    }
                    "platformos.received" => {
                        let m = decoded.unwrap();
                        let id = ConversateIdentifier::parse(&m.identifier).unwrap();
                        assert_eq!(id, ConversateIdentifier::new("12"));
                        let msg = ConversateMessage::from_json(m.message.clone()).unwrap();
                        assert_eq!(msg, graphql_payload());
                        assert_eq!(m.encode(), frame);
                        let rebuilt = ChannelMessage {
                            identifier: id.identifier(),
                            message: j(&msg.encode()),
                        };
                        assert_eq!(rebuilt.encode(), frame);
                    }
                    _ => panic!("unexpected {name}"),
                }
            }
            "conversate_identifier" => {
                let id = ConversateIdentifier::parse(frame).unwrap();
                let expected = match name {
                    "platformos.identifier.number" => ConversateIdentifier::new(12u64),
                    _ => ConversateIdentifier::new("12"),
                };
                assert_eq!(id, expected, "{name}");
                assert_eq!(id.identifier(), frame);
            }
            "conversate_subscribe" => {
                assert_eq!(ConversateIdentifier::new(12u64).subscribe_command(), frame);
            }
            "conversate_message" => {
                let msg = ConversateMessage::decode(frame).unwrap();
                let expected = match name {
                    "platformos.message" => platformos_message(),
                    _ => graphql_payload(),
                };
                assert_eq!(msg, expected, "{name}");
                assert_eq!(msg.encode(), frame);
            }
            "conversate_send" => {
                let id = ConversateIdentifier::new(12u64);
                assert_eq!(platformos_message().send_command(&id), frame);
            }
            "buddyboss" => {
                let msg = BuddyBossMessage::decode(frame).unwrap();
                let expected = match name {
                    "buddyboss.react.send_message" => bb_send_message(),
                    "buddyboss.react.typing" => bb_typing(),
                    _ => panic!("unexpected {name}"),
                };
                assert_eq!(msg, expected, "{name}");
                assert_eq!(msg.encode(), frame);
            }
            "jac_client" => {
                let ev = JacClientEvent::decode(frame).unwrap();
                let expected = match name {
                    "jac.js.walker" => {
                        JacClientEvent::walker("your_walker_name", true, Object::new())
                    }
                    "jac.js.client" => JacClientEvent::client(
                        vec![ClientId::Other(s("target client_id from connection event"))],
                        chat_data(),
                    ),
                    "jac.js.channel" => JacClientEvent::channel(
                        vec![ChannelId::Named(s(
                            "target channel_id from connection event",
                        ))],
                        chat_data(),
                    ),
                    "jac.js.user" => JacClientEvent::user(
                        vec![RootId::Other(s("target root_id from connection event"))],
                        chat_data(),
                    ),
                    "jac.js.connection" => JacClientEvent::connection(),
                    "jac.js.change_user" => {
                        JacClientEvent::change_user(Some("Bearer {{user's token}}"))
                    }
                    _ => panic!("unexpected {name}"),
                };
                assert_eq!(ev, expected, "{name}");
                assert_eq!(ev.encode(), frame, "{name}");
            }
            other => panic!("unknown decoder {other}"),
        }
    }
}

// ================================================== doc_blocks (verbatim JSON)

fn bb_send_message() -> BuddyBossMessage {
    BuddyBossMessage::SendMessage(buddyboss::SendMessage {
        recipient_id: Some("RECIPIENT_ID".into()),
        message: s("Hello, this is a message."),
        thread_id: Some("THREAD_ID".into()),
        token: Some(s("YOUR_API_TOKEN")),
        extra: Object::new(),
    })
}

fn bb_typing() -> BuddyBossMessage {
    BuddyBossMessage::Typing(buddyboss::Typing {
        thread_id: "THREAD_ID".into(),
        typing: None,
        extra: Object::new(),
    })
}

/// What a doc block decodes to.
enum DocExpect {
    BuddyBoss(BuddyBossMessage),
    Jac(JacClientEvent),
}

fn doc_block_expected(name: &str) -> DocExpect {
    let id = |v: &str| IdValue::from(v);
    DocExpect::BuddyBoss(match name {
        "buddyboss.user_connected" => {
            BuddyBossMessage::UserConnected(buddyboss::UserConnected::new("USER_ID"))
        }
        "buddyboss.join_thread" => {
            BuddyBossMessage::JoinThread(buddyboss::JoinThread::new("THREAD_ID"))
        }
        "buddyboss.send_message" => bb_send_message(),
        "buddyboss.typing" => bb_typing(),
        "buddyboss.call_initiated" => BuddyBossMessage::CallInitiated(buddyboss::CallInitiated {
            sender_id: id("SENDER_ID"),
            recipient_id: id("RECIPIENT_ID"),
            thread_id: id("THREAD_ID"),
            extra: Object::new(),
        }),
        "buddyboss.offer" => BuddyBossMessage::Offer(buddyboss::Offer {
            offer: "OFFER_SDP".into(),
            recipient_id: id("RECIPIENT_ID"),
            sender_id: id("SENDER_ID"),
            thread_id: id("THREAD_ID"),
            extra: Object::new(),
        }),
        "buddyboss.answer" => BuddyBossMessage::Answer(buddyboss::Answer {
            answer: "ANSWER_SDP".into(),
            recipient_id: id("RECIPIENT_ID"),
            sender_id: id("SENDER_ID"),
            thread_id: id("THREAD_ID"),
            extra: Object::new(),
        }),
        "buddyboss.ice_candidate" => BuddyBossMessage::IceCandidate(buddyboss::IceCandidate {
            candidate: "ICE_CANDID ATE".into(),
            recipient_id: id("RECIPIENT_ID"),
            sender_id: id("SENDER_ID"),
            thread_id: id("THREAD_ID"),
            extra: Object::new(),
        }),
        "buddyboss.error" => BuddyBossMessage::Error(buddyboss::ErrorMessage {
            message: s("Error message"),
            extra: Object::new(),
        }),
        "jac.walker" => {
            return DocExpect::Jac(JacClientEvent::walker(
                "your_event_name",
                true,
                o(r#"{"val":1}"#),
            ))
        }
        "jac.user" => {
            return DocExpect::Jac(JacClientEvent::user(
                vec![RootId::node("672b35cec309e5ef8469c372".parse().unwrap())],
                o(r#"{"val":1}"#),
            ))
        }
        "jac.channel" => {
            return DocExpect::Jac(JacClientEvent::channel(
                vec![ChannelId::Named(s("anystring"))],
                o(r#"{"val":1}"#),
            ))
        }
        "jac.client" => {
            return DocExpect::Jac(JacClientEvent::client(
                vec![ClientId::Generated(GeneratedId {
                    unix_seconds: 1730887348,
                    uuid: 0xf46d85203c704c099e9f44e948322a20,
                })],
                o(r#"{"val":1}"#),
            ))
        }
        "jac.change_user" => {
            return DocExpect::Jac(JacClientEvent::change_user(Some("bearer {{user's token}}")))
        }
        other => panic!("no expectation for {other}"),
    })
}

#[test]
fn doc_json_blocks_verbatim() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/doc_blocks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 15);
    for file in names {
        let text = golden(&format!("doc_blocks/{file}"));
        let name = file.trim_end_matches(".json");
        // The doc's key order, compact: what the typed encoder must write.
        let doc_order = j(&text).to_string();
        if name == "jac.connection" {
            let frame = JacServerFrame::decode(&text).unwrap();
            let JacServerFrame::Connection(info) = &frame else {
                panic!("{frame:?}")
            };
            assert_eq!(
                info.client_id,
                ClientId::Generated(
                    "1730887348:f46d85203c704c099e9f44e948322a20"
                        .parse()
                        .unwrap()
                )
            );
            assert_eq!(
                info.root_id,
                RootId::node("672b35cec309e5ef8469c372".parse().unwrap())
            );
            assert!(matches!(info.channel_id, ChannelId::Generated(_)));
            assert_eq!(frame.encode(), doc_order);
            continue;
        }
        match doc_block_expected(name) {
            DocExpect::BuddyBoss(expected) => {
                let msg = BuddyBossMessage::decode(&text).unwrap();
                assert_eq!(msg, expected, "{name}");
                assert_eq!(msg.encode(), doc_order, "{name}");
                assert_same_value(&msg.encode(), &text);
            }
            DocExpect::Jac(expected) => {
                let ev = JacClientEvent::decode(&text).unwrap();
                assert_eq!(ev, expected, "{name}");
                assert_eq!(ev.encode(), doc_order, "{name}");
                assert_same_value(&ev.encode(), &text);
            }
        }
    }
}

#[test]
fn jac_doc_public_root_comment() {
    // "# non authenticated: "root_id": "n::000000000000000000000001""
    let public = RootId::from("n::000000000000000000000001");
    assert!(public.is_public());
    assert_eq!(public, RootId::public());
}
