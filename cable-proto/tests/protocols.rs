//! Connections of the host's own protocols beside Action Cable: frames
//! handed out in order, joins with envelopes, one frame per group in a
//! mixed room, no welcome or pings, bare closes, identities that change.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use cable_proto::server::{ConnectionAccept, Envelope, Event, Frame, Protocol};
use cable_proto::{CommandError, DisconnectReason, Identity, JsonText, StreamMode, UsageError};
use common::*;

fn chat_envelope() -> Envelope {
    Envelope::new(r#"{"type":"new_message","data":"#, "}", StreamMode::Json)
}

fn raw_envelope() -> Envelope {
    Envelope::new(r#"["room","#, "]", StreamMode::RawString)
}

fn received(connection: cable_proto::ConnectionId, frame: &[u8], binary: bool) -> Event {
    Event::Received {
        connection,
        frame: Bytes::copy_from_slice(frame),
        binary,
    }
}

#[test]
fn a_room_mixed_across_action_cable_and_two_envelopes_builds_one_frame_per_group() {
    let mut host = Host::new();
    let cable = host.connect("alice");
    host.subscribe(cable, CHAT, &["room"]);
    let c1 = host.connect_custom(1, "bob");
    let c2 = host.connect_custom(2, "carol");
    let c3 = host.connect_custom(1, "dave");
    host.server
        .join(c1, "room", chat_envelope(), host.now)
        .unwrap();
    host.server
        .join(c2, "room", raw_envelope(), host.now)
        .unwrap();
    host.server
        .join(c3, "room", chat_envelope(), host.now)
        .unwrap();
    // Joining twice with an equal envelope: no-op.
    host.server
        .join(c1, "room", chat_envelope(), host.now)
        .unwrap();
    assert_eq!(host.events(), vec![], "the stream existed already");
    assert_eq!(host.server.subscriber_count("room"), 4);
    assert_eq!(host.server.joined_streams(c1), vec!["room".into()]);

    let payload = r#"{"text":"<hi>"}"#;
    let delivery = host.server.broadcast("room", payload, host.now);
    assert_eq!(
        (
            delivery.recipients,
            delivery.encoded,
            delivery.skipped_invalid_json
        ),
        (4, 3, 0)
    );
    let transmits: Vec<_> = std::iter::from_fn(|| host.server.poll_transmit()).collect();
    let frames: Vec<_> = transmits
        .iter()
        .map(|t| match &t.frame {
            Frame::Text(bytes) => (t.connection, bytes.clone()),
            Frame::Close { .. } => panic!("close"),
        })
        .collect();
    let chat = br#"{"type":"new_message","data":{"text":"<hi>"}}"#;
    let raw = br#"["room","{\"text\":\"\u003chi\u003e\"}"]"#;
    assert_eq!(
        frames
            .iter()
            .map(|(c, b)| (*c, b.to_vec()))
            .collect::<Vec<_>>(),
        vec![
            (cable, data_frame(CHAT, payload).into_bytes()),
            (c1, chat.to_vec()),
            (c3, chat.to_vec()),
            (c2, raw.to_vec()),
        ]
    );
    assert_eq!(
        frames[1].1.as_ptr(),
        frames[2].1.as_ptr(),
        "one frame, shared"
    );

    // Not JSON: only the raw envelope takes it.
    let delivery = host.server.broadcast("room", "plain", host.now);
    assert_eq!(
        (
            delivery.recipients,
            delivery.encoded,
            delivery.skipped_invalid_json
        ),
        (1, 1, 3)
    );
    assert_eq!(
        host.all_frames(),
        vec![(c2, Out::Text(r#"["room","plain"]"#.into()))]
    );

    // Except a custom connection.
    let delivery = host
        .server
        .broadcast_except("room", r#"{"n":1}"#, c1, host.now);
    assert_eq!((delivery.recipients, delivery.encoded), (3, 3));
    assert_eq!(
        host.all_frames(),
        vec![
            (cable, Out::Text(data_frame(CHAT, r#"{"n":1}"#))),
            (
                c3,
                Out::Text(r#"{"type":"new_message","data":{"n":1}}"#.into())
            ),
            (c2, Out::Text(r#"["room","{\"n\":1}"]"#.into())),
        ]
    );

    // Leaving: with another envelope, no-op; with its own, gone; the stream
    // goes with its last member.
    host.server
        .leave(c1, "room", Some(&raw_envelope()), host.now)
        .unwrap();
    assert_eq!(host.server.subscriber_count("room"), 4);
    host.server
        .leave(c1, "room", Some(&chat_envelope()), host.now)
        .unwrap();
    host.server.leave(c2, "room", None, host.now).unwrap();
    assert_eq!(host.server.joined_streams(c1), vec![]);
    assert_eq!(host.server.subscriber_count("room"), 2);
    host.server.handle_close(c3, host.now).unwrap();
    host.send(cable, &unsubscribe(CHAT));
    let events = host.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::StreamStopped(s) if s.as_str() == "room"))
            .count(),
        1,
        "{events:?}"
    );
    assert_eq!(host.server.stream_count(), 0);
}

#[test]
fn a_connection_joined_with_two_envelopes_gets_both_frames() {
    let mut host = Host::new();
    let conn = host.connect_custom(7, "bob");
    host.server
        .join(conn, "room", chat_envelope(), host.now)
        .unwrap();
    assert_eq!(host.events(), vec![Event::StreamStarted("room".into())]);
    host.server
        .join(conn, "room", raw_envelope(), host.now)
        .unwrap();
    host.server
        .join(conn, "other", Envelope::verbatim(), host.now)
        .unwrap();
    assert_eq!(
        host.server.joined_streams(conn),
        vec!["room".into(), "room".into(), "other".into()]
    );
    host.server.broadcast("room", "[1]", host.now);
    host.server.broadcast("other", "[2]", host.now);
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(r#"{"type":"new_message","data":[1]}"#.into()),
            Out::Text(r#"["room","[1]"]"#.into()),
            Out::Text("[2]".into()),
        ]
    );
    // `None` leaves every envelope of the stream.
    host.server.leave(conn, "room", None, host.now).unwrap();
    assert_eq!(host.server.joined_streams(conn), vec!["other".into()]);
    assert_eq!(host.server.broadcast("room", "[3]", host.now).recipients, 0);
}

#[test]
fn frames_of_a_custom_connection_come_out_in_order_and_wait_for_its_acceptance() {
    let mut host = Host::new();
    let (conn, pending) = host.open_pending_as(Protocol::Custom(3));
    assert_eq!(host.server.protocol(conn), Some(Protocol::Custom(3)));
    host.server
        .handle_text(conn, br#"{"op":"hello"}"#, host.now)
        .unwrap();
    host.server
        .handle_binary(conn, &[0, 159, 146, 150], host.now)
        .unwrap();
    host.server
        .handle_text(conn, b"not json", host.now)
        .unwrap();
    assert_eq!(host.events(), vec![], "held until the decision");
    assert_eq!(host.server.held_frames(conn), 3);
    host.server
        .accept_connection(
            pending,
            ConnectionAccept::new(Identity::new("bob"))
                .transmit(JsonText::new(r#"{"op":"ready"}"#).unwrap()),
            host.now,
        )
        .unwrap();
    // No welcome: only what the protocol layer asked for.
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(r#"{"op":"ready"}"#.into())]
    );
    assert_eq!(
        host.events(),
        vec![
            received(conn, br#"{"op":"hello"}"#, false),
            received(conn, &[0, 159, 146, 150], true),
            received(conn, b"not json", false),
        ]
    );
    assert_eq!(host.server.held_frames(conn), 0);
    // After the acceptance, at once.
    host.server.handle_binary(conn, b"\x01", host.now).unwrap();
    host.server.handle_text(conn, b"{}", host.now).unwrap();
    assert_eq!(
        host.events(),
        vec![received(conn, b"\x01", true), received(conn, b"{}", false)]
    );
    // An Action Cable connection refuses binary frames, as before.
    let cable = host.connect("alice");
    assert_eq!(host.server.protocol(cable), Some(Protocol::ActionCable));
    host.server.handle_binary(cable, b"\x01", host.now).unwrap();
    assert_eq!(
        host.events(),
        vec![Event::CommandFailed {
            connection: cable,
            error: CommandError::BinaryFrame { len: 1 }
        }]
    );
}

#[test]
fn custom_connections_get_no_pings_and_a_bare_close() {
    let mut host = Host::new();
    let cable = host.connect("alice");
    let custom = host.connect_custom(1, "bob");
    let expiring = host.connect_custom(1, "carol");
    host.server
        .set_expiry(expiring, Some(host.now + Duration::from_secs(2)), host.now)
        .unwrap();
    host.advance(Duration::from_secs(3));
    assert_eq!(
        host.all_frames(),
        vec![
            (expiring, Out::Close(1000)),
            (
                cable,
                Out::Text(r#"{"type":"ping","message":1700000003}"#.into())
            ),
        ]
    );
    assert_eq!(
        host.events(),
        vec![Event::Disconnecting {
            connection: expiring,
            reason: DisconnectReason::TokenExpired,
            reconnect: false
        }]
    );
    host.server
        .disconnect(custom, DisconnectReason::Remote, true, host.now)
        .unwrap();
    assert_eq!(host.frames(custom), vec![Out::Close(1000)]);
    assert_eq!(
        host.events(),
        vec![Event::Disconnecting {
            connection: custom,
            reason: DisconnectReason::Remote,
            reconnect: true
        }]
    );
    // A rejected custom connection: a bare close too.
    let (rejected, pending) = host.open_pending_as(Protocol::Custom(1));
    host.server.reject_connection(pending, host.now).unwrap();
    assert_eq!(host.frames(rejected), vec![Out::Close(1000)]);
    // Restart: Action Cable gets its frame, the others a bare close.
    let other = host.connect_custom(2, "dave");
    host.events();
    host.server.restart(host.now);
    assert_eq!(
        host.all_frames(),
        vec![
            (
                cable,
                Out::Text(
                    r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#.into()
                )
            ),
            (cable, Out::Close(1000)),
            (other, Out::Close(1000)),
        ]
    );
}

#[test]
fn set_identity_retargets_frames_and_remote_disconnects() {
    let mut host = Host::new();
    let first = host.connect_custom(1, "anonymous");
    let second = host.connect_custom(1, "anonymous");
    let alice = host.connect("alice");
    let frame = JsonText::new(r#"{"op":"note"}"#).unwrap();
    host.server
        .set_identity(second, Identity::new("alice"), host.now)
        .unwrap();
    assert_eq!(
        host.server.identity(second).map(Identity::as_str),
        Some("alice")
    );
    assert_eq!(
        host.server.connections_of_identity("anonymous"),
        vec![first]
    );
    assert_eq!(
        host.server.connections_of_identity("alice"),
        vec![alice, second],
        "appended: in the order they took the identity"
    );
    assert_eq!(
        host.server
            .send_frame_to_identity("anonymous", &frame, host.now),
        1
    );
    assert_eq!(
        host.all_frames(),
        vec![(first, Out::Text(frame.as_str().into()))]
    );
    assert_eq!(
        host.server
            .send_frame_to_identity("alice", &frame, host.now),
        2
    );
    assert_eq!(
        host.all_frames(),
        vec![
            (alice, Out::Text(frame.as_str().into())),
            (second, Out::Text(frame.as_str().into()))
        ]
    );
    assert_eq!(host.server.disconnect_identity("alice", false, host.now), 2);
    assert_eq!(
        host.all_frames(),
        vec![
            (
                alice,
                Out::Text(r#"{"type":"disconnect","reason":"remote","reconnect":false}"#.into())
            ),
            (alice, Out::Close(1000)),
            (second, Out::Close(1000)),
        ]
    );
    assert!(host.server.is_open(first));
    // Only an open connection takes an identity.
    assert_eq!(
        host.server
            .set_identity(second, Identity::new("bob"), host.now),
        Err(UsageError::ConnectionNotOpen)
    );
    let (pending_conn, _pending) = host.open_pending_as(Protocol::Custom(1));
    assert_eq!(
        host.server
            .set_identity(pending_conn, Identity::new("bob"), host.now),
        Err(UsageError::ConnectionNotOpen)
    );
    // The closed event carries the identity it had last.
    host.events();
    host.server.handle_close(second, host.now).unwrap();
    assert_eq!(
        host.events(),
        vec![Event::Closed {
            connection: second,
            identity: Some(Identity::new("alice"))
        }]
    );
}

#[test]
fn an_action_cable_connection_can_join_too() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    let sub = host.subscribe(conn, CHAT, &["room"]);
    host.server
        .join(conn, "room", Envelope::verbatim(), host.now)
        .unwrap();
    let delivery = host.server.broadcast("room", r#"{"n":1}"#, host.now);
    assert_eq!((delivery.recipients, delivery.encoded), (2, 2));
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(data_frame(CHAT, r#"{"n":1}"#)),
            Out::Text(r#"{"n":1}"#.into()),
        ]
    );
    // Ending the subscription keeps the join, and the stream.
    host.server.unsubscribe(sub, host.now).unwrap();
    assert!(matches!(&host.events()[..], [Event::Unsubscribed { .. }]));
    assert_eq!(host.server.broadcast("room", "[]", host.now).recipients, 1);
    assert_eq!(host.frames(conn), vec![Out::Text("[]".into())]);
}
