//! Typed channels, identifiers and events of four real-time systems, with their exact
//! wire form, so that servers and clients built on `cable-proto` speak them without
//! hand-written JSON.
//!
//! | module | system | transport |
//! |---|---|---|
//! | [`circle`] | Circle's chat and notification channels | Action Cable |
//! | [`platformos`] | platformOS's `conversate` channel | Action Cable |
//! | [`buddyboss`] | BuddyBoss's Node.js messaging server | plain WebSocket, JSON with a `type` |
//! | [`jac`] | Jac Cloud's `/websocket` endpoint | plain WebSocket, JSON with a `type` |
//!
//! # Rules every decoder follows
//!
//! - **Never panics.** Malformed input is a [`DecodeError`]. Deeply nested input is
//!   rejected by the JSON parser's depth limit.
//! - **Unknown fields are kept**, in an `extra` [`Object`] on each type, and encoded
//!   again after the known fields.
//! - **Unknown event or message types** come back as an `Unknown` variant holding the
//!   name and the raw payload.
//! - Fields that real payloads leave `null` (ids of optional relations, `edited_at`,
//!   names of direct-message rooms...) are `Option`s.
//! - **Encoding gives the documented bytes**: compact JSON, keys in the documented
//!   order, free-form objects in arrival order (serde_json's `preserve_order`, see
//!   [`Object`]), strings escaped as `JSON.stringify` does.
//!
//! # Circle: build an identifier, subscribe, decode an incoming event
//!
//! ```
//! use cable_channels::circle::{CircleEvent, CircleIdentifier, decode_frame};
//! use cable_channels::ChannelIdentifier;
//!
//! let id = CircleIdentifier::notification(42);
//! assert_eq!(id.identifier(), r#"{"channel":"NotificationChannel","community_member_id":42}"#);
//! assert_eq!(id.stream_name(), "notification-channel-42");
//! assert_eq!(
//!     id.subscribe_command(),
//!     r#"{"command":"subscribe","identifier":"{\"channel\":\"NotificationChannel\",\"community_member_id\":42}"}"#
//! );
//!
//! // What the server sends on that subscription (Action Cable frame, Circle envelope).
//! let frame = r#"{"identifier":"{\"channel\":\"NotificationChannel\",\"community_member_id\":42}","message":{"event":"updateNewNotificationCount","data":{"new_notifications_count":3}}}"#;
//! let (on, msg) = decode_frame(frame).unwrap().expect("a channel message");
//! assert_eq!(on, id);
//! match &msg.event {
//!     CircleEvent::UpdateNewNotificationCount(c) => assert_eq!(c.new_notifications_count, 3),
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert_eq!(msg.encode(), r#"{"event":"updateNewNotificationCount","data":{"new_notifications_count":3}}"#);
//! ```
//!
//! # platformOS: the `conversate` channel
//!
//! ```
//! use cable_channels::platformos::{ConversateIdentifier, ConversateMessage};
//! use cable_channels::{ChannelIdentifier, ChannelMessage, IdValue};
//!
//! let id = ConversateIdentifier::new(12u64);
//! assert_eq!(id.identifier(), r#"{"channel":"conversate","room_id":12}"#);
//! let subscribe = id.subscribe_command();
//! assert_eq!(subscribe, r#"{"command":"subscribe","identifier":"{\"channel\":\"conversate\",\"room_id\":12}"}"#);
//!
//! // The client sends a message (`subscription.send(messageData)`)...
//! let msg = ConversateMessage::new("Hello", 2u64, "Some Sender", "2024-02-01T10:30:00.000Z");
//! assert_eq!(
//!     msg.send_command(&id),
//!     r#"{"command":"message","identifier":"{\"channel\":\"conversate\",\"room_id\":12}","data":"{\"message\":\"Hello\",\"author_id\":2,\"sender_name\":\"Some Sender\",\"created_at\":\"2024-02-01T10:30:00.000Z\",\"create\":true}"}"#
//! );
//!
//! // ...and every subscriber receives it as the frame's `message`.
//! let frame = r#"{"identifier":"{\"channel\":\"conversate\",\"room_id\":12}","message":{"message":"Hello","author_id":2,"sender_name":"Some Sender","created_at":"2024-02-01T10:30:00.000Z","create":true}}"#;
//! let incoming = ChannelMessage::decode(frame).unwrap().unwrap();
//! assert_eq!(ConversateIdentifier::parse(&incoming.identifier).unwrap().room_id, IdValue::Number(12));
//! let received = ConversateMessage::from_json(incoming.message).unwrap();
//! assert_eq!(received, msg);
//! ```
//!
//! # BuddyBoss: no identifiers; "subscribing" is announcing the user and joining a thread
//!
//! ```
//! use cable_channels::buddyboss::{BuddyBossMessage, JoinThread, UserConnected};
//!
//! let hello = BuddyBossMessage::UserConnected(UserConnected::new("USER_ID"));
//! assert_eq!(hello.encode(), r#"{"type":"user_connected","userId":"USER_ID"}"#);
//! let join = BuddyBossMessage::JoinThread(JoinThread::new("THREAD_ID"));
//! assert_eq!(join.encode(), r#"{"type":"join_thread","threadId":"THREAD_ID"}"#);
//!
//! match BuddyBossMessage::decode(r#"{"type":"typing","threadId":"THREAD_ID","typing":true}"#).unwrap() {
//!     BuddyBossMessage::Typing(t) => assert_eq!(t.typing, Some(true)),
//!     other => panic!("unexpected {other:?}"),
//! }
//! // Unknown types keep their name and payload.
//! let odd = BuddyBossMessage::decode(r#"{"type":"read_receipt","threadId":7}"#).unwrap();
//! assert_eq!(odd.type_name(), "read_receipt");
//! assert_eq!(odd.encode(), r#"{"type":"read_receipt","threadId":7}"#);
//! ```
//!
//! # Jac Cloud: connect to a channel, send a channel event, decode what arrives
//!
//! ```
//! use cable_channels::jac::{ChannelId, JacClientEvent, JacServerFrame, RootId, websocket_path};
//!
//! // "Subscribing" is connecting with ?channel_id=...
//! assert_eq!(websocket_path(Some("my room/1")), "/websocket?channel_id=my%20room%2F1");
//!
//! let first = JacServerFrame::decode(r#"{"type":"connection","data":{"client_id":"1795329544:c4184da5fc344eff8ae4e0b3b9bf6213","root_id":"n::000000000000000000000001","channel_id":"room1"}}"#).unwrap();
//! let JacServerFrame::Connection(info) = first else { panic!() };
//! assert!(info.root_id.is_public());
//! assert_eq!(info.channel_id, ChannelId::Named("room1".into()));
//!
//! let data = serde_json::json!({"m": "hello room1"}).as_object().cloned().unwrap();
//! let send = JacClientEvent::channel(vec![info.channel_id.clone()], data);
//! assert_eq!(send.encode(), r#"{"type":"channel","channel_ids":["room1"],"data":{"m":"hello room1"}}"#);
//!
//! // Delivered payloads arrive verbatim, with no envelope.
//! let got = JacServerFrame::decode(r#"{"m":"hello room1"}"#).unwrap();
//! assert!(matches!(got, JacServerFrame::Notification(_)));
//! let reply = JacServerFrame::decode(r#"{"status":200,"reports":[{"echo":7},"second"]}"#).unwrap();
//! assert!(matches!(reply, JacServerFrame::WalkerResponse(ref r) if r.reports.len() == 2));
//! ```

pub mod action_cable;
pub mod buddyboss;
pub mod circle;
mod error;
pub mod jac;
mod json;
pub mod platformos;
mod tagged;

pub use action_cable::{
    message_command, subscribe_command, unsubscribe_command, ChannelIdentifier, ChannelMessage,
};
pub use error::DecodeError;
pub use json::{IdValue, Object, Value};

/// Compact JSON text of a value of this crate. Serializing these types cannot fail
/// (every map key is a string, every number finite).
pub(crate) fn encode_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // The error case is unreachable for the types of this crate; an empty string
    // rather than a panic.
    serde_json::to_string(value).unwrap_or_default()
}

/// Runs every decoder on arbitrary bytes; never panics.
///
/// (Except on purpose: see below. A panic here is a bug the fuzzer found.)
///
/// This is the body of the fuzz target in `fuzz/`. Non-UTF-8 input is decoded
/// lossily so the decoders still see it. For every decoder that accepts the input,
/// the value is encoded, decoded again and compared: a mismatch **panics**, because
/// "what decodes re-encodes to the same value" is the invariant being fuzzed.
pub fn fuzz_decode_all(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    fn check<T: PartialEq + std::fmt::Debug>(
        what: &str,
        decoded: Result<T, DecodeError>,
        encode: impl Fn(&T) -> String,
        decode: impl Fn(&str) -> Result<T, DecodeError>,
    ) {
        if let Ok(v) = decoded {
            let bytes = encode(&v);
            match decode(&bytes) {
                Ok(again) => {
                    assert_eq!(again, v, "{what}: decode(encode(v)) != v for {bytes}");
                    assert_eq!(encode(&again), bytes, "{what}: encoding is not stable");
                }
                Err(e) => panic!("{what}: re-encoded {bytes} does not decode: {e}"),
            }
        }
    }

    check("Value", json::parse(text), Value::to_string, json::parse);
    check(
        "ChannelMessage",
        ChannelMessage::decode(text).and_then(|m| {
            m.ok_or(DecodeError::MissingField {
                field: "identifier",
            })
        }),
        ChannelMessage::encode,
        |s| {
            ChannelMessage::decode(s).and_then(|m| {
                m.ok_or(DecodeError::MissingField {
                    field: "identifier",
                })
            })
        },
    );

    // Circle
    check(
        "CircleIdentifier",
        circle::CircleIdentifier::parse(text),
        |v| v.identifier(),
        circle::CircleIdentifier::parse,
    );
    check(
        "CircleMessage",
        circle::CircleMessage::decode(text),
        circle::CircleMessage::encode,
        circle::CircleMessage::decode,
    );
    for kind in circle::CircleChannelKind::ALL {
        check(
            "CircleMessage::decode_for",
            circle::CircleMessage::decode_for(kind, text),
            circle::CircleMessage::encode,
            |s| circle::CircleMessage::decode_for(kind, s),
        );
    }
    let _ = circle::decode_frame(text);

    // platformOS
    check(
        "ConversateIdentifier",
        platformos::ConversateIdentifier::parse(text),
        |v| v.identifier(),
        platformos::ConversateIdentifier::parse,
    );
    check(
        "ConversateMessage",
        platformos::ConversateMessage::decode(text),
        platformos::ConversateMessage::encode,
        platformos::ConversateMessage::decode,
    );

    // BuddyBoss
    check(
        "BuddyBossMessage",
        buddyboss::BuddyBossMessage::decode(text),
        buddyboss::BuddyBossMessage::encode,
        buddyboss::BuddyBossMessage::decode,
    );

    // Jac Cloud
    check(
        "JacClientEvent",
        jac::JacClientEvent::decode(text),
        jac::JacClientEvent::encode,
        jac::JacClientEvent::decode,
    );
    check(
        "JacServerFrame",
        jac::JacServerFrame::decode(text),
        jac::JacServerFrame::encode,
        jac::JacServerFrame::decode,
    );
    check(
        "GeneratedId",
        text.parse::<jac::GeneratedId>(),
        |v| v.to_string(),
        str::parse::<jac::GeneratedId>,
    );
    check(
        "ObjectId",
        text.parse::<jac::ObjectId>(),
        |v| v.to_string(),
        str::parse::<jac::ObjectId>,
    );
    for id in [
        jac::ClientId::from(text).to_string(),
        jac::ChannelId::from(text).to_string(),
        jac::RootId::from(text).to_string(),
    ] {
        assert_eq!(id, text, "id types must keep the string they were given");
    }
}
