//! The Jac Cloud dialect on the hub: connection info, user/channel/client
//! events, change_user, walkers as decisions with strict per-socket order,
//! and the error frames, against what the real server sent
//! (`shared/jacref/README.md`, quoted).
#![allow(clippy::disallowed_methods)]

mod common;

use cable_proto::dialect::jac::{
    Answer, Credential, Decision, Jac, OpenParams, RootId, WalkerAnswer,
};
use cable_proto::dialect::BuddyBoss;
use cable_proto::server::Protocol;
use cable_proto::{ConnectionId, JsonText};
use common::*;
use serde_json::Value;

const JAC: u16 = 3;
const BB: u16 = 4;
const ALICE: &str = "6b028e084b49d9ccc6934a7d";
const BOB: &str = "6b028e084b49d9ccc6934a7f";

struct Room {
    host: Host,
    jac: Jac,
    n: u32,
}

impl Room {
    fn new() -> Self {
        Self {
            host: Host::new(),
            jac: Jac::new(Protocol::Custom(JAC)),
            n: 0,
        }
    }

    /// A socket; with `user`, its token `tok-<user>` is verified as that
    /// user's root.
    fn open(&mut self, channel: Option<&str>, user: Option<&str>) -> (ConnectionId, String) {
        self.n += 1;
        let client_id = format!("1795329544:{:032x}", self.n);
        let (conn, pending) = self.host.open_pending_as(Protocol::Custom(JAC));
        let now = self.host.now;
        let handled = self
            .jac
            .open(
                &mut self.host.server,
                pending,
                conn,
                OpenParams {
                    client_id: client_id.clone(),
                    channel_id: channel.map_or_else(
                        || format!("1795329544:{:032x}", 1000 + self.n),
                        str::to_owned,
                    ),
                    credential: user.map(|u| format!("Bearer tok-{u}")),
                    authorization: user.map(|u| format!("Bearer tok-{u}")),
                },
                now,
            )
            .unwrap();
        if let Some(user) = user {
            assert_eq!(
                handled.decisions,
                vec![Decision::Authenticate {
                    connection: conn,
                    token: format!("tok-{user}")
                }]
            );
            self.authenticate(conn, Some(user));
        }
        let frames = self.host.frames(conn);
        assert_eq!(frames.len(), 1, "{frames:?}");
        (conn, client_id)
    }

    fn authenticate(&mut self, conn: ConnectionId, user: Option<&str>) {
        let now = self.host.now;
        let credential = user.map(|u| Credential {
            root: RootId::from_hex(u).unwrap(),
            token: format!("tok-{u}"),
        });
        self.jac
            .answer(
                &mut self.host.server,
                conn,
                Answer::Authenticated(credential),
                now,
            )
            .unwrap();
    }

    fn say(&mut self, conn: ConnectionId, frame: &str) -> cable_proto::dialect::jac::Handled {
        let now = self.host.now;
        self.jac
            .handle(&mut self.host.server, conn, frame.as_bytes(), false, now)
            .unwrap()
    }

    fn texts(&mut self) -> Vec<(ConnectionId, String)> {
        self.host
            .all_frames()
            .into_iter()
            .map(|(c, out)| match out {
                Out::Text(t) => (c, t),
                Out::Close(code) => (c, format!("CLOSE {code}")),
            })
            .collect()
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn connection_info_on_open_and_on_request() {
    let mut room = Room::new();
    let (a, client) = room.open(Some("room1"), None);
    room.say(a, r#"{"type":"connection","extra":1}"#);
    let frames = room.texts();
    assert_eq!(
        frames,
        vec![(
            a,
            format!(
                r#"{{"type":"connection","data":{{"client_id":"{client}","root_id":"n::000000000000000000000001","channel_id":"room1"}}}}"#
            )
        )]
    );
}

#[test]
fn user_events_reach_every_socket_of_each_root_duplicates_twice_sender_only_as_target() {
    let mut room = Room::new();
    let (a, _) = room.open(None, Some(ALICE));
    let (b1, _) = room.open(None, Some(BOB));
    let (b2, _) = room.open(None, Some(BOB));
    let (p, _) = room.open(None, None);
    let hi = r#"{"type":"chat","data":{"m":"hi bob"}}"#;
    let handled = room.say(
        a,
        &format!(r#"{{"type":"user","root_ids":["n::{BOB}"],"data":{hi}}}"#),
    );
    assert_eq!(room.texts(), vec![(b1, hi.to_owned()), (b2, hi.to_owned())]);
    assert_eq!(
        handled.relay,
        vec![JsonText::new(format!(
            r#"{{"type":"user","root_ids":["n::{BOB}"],"data":{hi}}}"#
        ))
        .unwrap()]
    );
    room.say(
        a,
        &format!(r#"{{"type":"user","root_ids":["n::{BOB}","n:Root:{BOB}"],"data":{{}}}}"#),
    );
    assert_eq!(room.texts().len(), 4);
    room.say(
        b1,
        r#"{"type":"user","root_ids":["n::000000000000000000000001"],"data":{"from":"bob"}}"#,
    );
    assert_eq!(room.texts(), vec![(p, r#"{"from":"bob"}"#.to_owned())]);
    // Unknown root: nothing, no error; garbage: the real server's exception.
    room.say(
        a,
        r#"{"type":"user","root_ids":["n::0123456789abcdef01234567"],"data":{}}"#,
    );
    assert_eq!(room.texts(), vec![]);
    room.say(a, r#"{"type":"user","root_ids":["garbage"],"data":{}}"#);
    let frames = room.texts();
    assert_eq!(frames.len(), 1);
    let error = json(&frames[0].1);
    let lines = error["error"].as_array().unwrap();
    assert_eq!(lines[0], "Traceback (most recent call last):\n");
    assert_eq!(
        lines.last().unwrap(),
        "ValueError: [garbage] is not a valid reference!\n"
    );
}

#[test]
fn channel_events_include_the_sender_and_cross_protocol_members() {
    let mut room = Room::new();
    let (a, _) = room.open(Some("room1"), None);
    let (b, _) = room.open(Some("room1"), None);
    let (c, _) = room.open(Some("room2"), None);
    // A BuddyBoss client in thread "room1" and an Action Cable stream
    // "room1": one room.
    let bb = room.host.connect_custom(BB, "");
    let now = room.host.now;
    BuddyBoss::new(Protocol::Custom(BB))
        .handle(
            &mut room.host.server,
            bb,
            br#"{"type":"join_thread","threadId":"room1"}"#,
            false,
            None,
            now,
        )
        .unwrap();
    let cable = room.host.connect("x");
    room.host.subscribe(cable, CHAT, &["room1"]);
    room.host.all_frames();
    let m = r#"{"type":"chat","data":{"m":"hello room1"}}"#;
    room.say(
        a,
        &format!(r#"{{"type":"channel","channel_ids":["room1"],"data":{m}}}"#),
    );
    let mut frames = room.texts();
    frames.sort();
    let mut expected = vec![
        (a, m.to_owned()),
        (b, m.to_owned()),
        (bb, m.to_owned()),
        (
            cable,
            format!(
                r#"{{"identifier":{},"message":{m}}}"#,
                serde_json::to_string(CHAT).unwrap()
            ),
        ),
    ];
    expected.sort();
    assert_eq!(frames, expected);
    room.say(
        c,
        r#"{"type":"channel","channel_ids":["nobody-here"],"data":{"m":1}}"#,
    );
    assert_eq!(room.texts(), vec![]);
}

#[test]
fn client_events_reach_one_socket_by_client_id_until_it_closes() {
    let mut room = Room::new();
    let (a, _) = room.open(None, None);
    let (b, b_id) = room.open(None, None);
    room.say(
        a,
        &format!(r#"{{"type":"client","client_ids":["{b_id}","1700000000:deadbeef"],"data":{{"m":"to B"}}}}"#),
    );
    assert_eq!(room.texts(), vec![(b, r#"{"m":"to B"}"#.to_owned())]);
    let now = room.host.now;
    room.host.server.handle_close(b, now).unwrap();
    room.jac.close(b);
    room.say(
        a,
        &format!(r#"{{"type":"client","client_ids":["{b_id}"],"data":{{}}}}"#),
    );
    assert_eq!(room.texts(), vec![]);
}

#[test]
fn change_user_switches_the_root_keeping_client_and_channel() {
    let mut room = Room::new();
    let (a, client) = room.open(Some("room1"), None);
    let (b, _) = room.open(None, Some(BOB));
    let handled = room.say(a, r#"{"type":"change_user","token":"Bearer tok-alice"}"#);
    assert_eq!(
        handled.decisions,
        vec![Decision::Authenticate {
            connection: a,
            token: "tok-alice".into()
        }]
    );
    // Frames wait for the answer.
    room.say(a, r#"{"type":"connection"}"#);
    assert_eq!(room.texts(), vec![]);
    room.authenticate(a, Some(ALICE));
    let info = format!(
        r#"{{"type":"connection","data":{{"client_id":"{client}","root_id":"n::{ALICE}","channel_id":"room1"}}}}"#
    );
    assert_eq!(room.texts(), vec![(a, info.clone()), (a, info)]);
    room.say(
        b,
        &format!(r#"{{"type":"user","root_ids":["n::{ALICE}"],"data":{{"m":1}}}}"#),
    );
    assert_eq!(room.texts(), vec![(a, r#"{"m":1}"#.to_owned())]);
    // No token and no header: public at once.
    let handled = room.say(a, r#"{"type":"change_user","token":null}"#);
    assert!(handled.decisions.is_empty());
    assert!(room.texts()[0].1.contains("n::000000000000000000000001"));
}

#[test]
fn change_user_without_token_falls_back_to_the_header() {
    let mut room = Room::new();
    let (a, _) = room.open(None, Some(ALICE));
    for frame in [
        r#"{"type":"change_user"}"#,
        r#"{"type":"change_user","token":""}"#,
    ] {
        let handled = room.say(a, frame);
        assert_eq!(
            handled.decisions,
            vec![Decision::Authenticate {
                connection: a,
                token: "tok-6b028e084b49d9ccc6934a7d".into()
            }]
        );
        room.authenticate(a, Some(ALICE));
        room.texts();
    }
}

#[test]
fn walkers_are_decisions_and_hold_the_sockets_later_frames() {
    let mut room = Room::new();
    let (a, _) = room.open(None, None);
    let handled = room.say(
        a,
        r#"{"type":"walker","walker":"echo_report","response":"yes","context":{"val":7}}"#,
    );
    let Decision::Walker { event, token, .. } = &handled.decisions[0] else {
        panic!("{handled:?}")
    };
    assert_eq!(event.walker, "echo_report");
    assert!(event.response);
    assert_eq!(event.context["val"], 7);
    assert_eq!(*token, None);
    let handled = room.say(a, r#"{"type":"walker","walker":"silent"}"#);
    assert!(handled.decisions.is_empty());
    let now = room.host.now;
    let body = JsonText::new(r#"{"status":200,"reports":[{"echo":7},"second"]}"#).unwrap();
    let handled = room
        .jac
        .answer(
            &mut room.host.server,
            a,
            Answer::Walker(WalkerAnswer::Reports(body.clone())),
            now,
        )
        .unwrap();
    assert_eq!(room.texts(), vec![(a, body.as_str().to_owned())]);
    // The held walker is now pending; its reports are not sent (no response),
    // an error would be.
    assert_eq!(handled.decisions.len(), 1);
    let error = JsonText::new(
        r#"{"type":"walker","error":"Invalid request! Please use valid walker event!"}"#,
    )
    .unwrap();
    room.jac
        .answer(
            &mut room.host.server,
            a,
            Answer::Walker(WalkerAnswer::Error(error.clone())),
            now,
        )
        .unwrap();
    assert_eq!(room.texts(), vec![(a, error.as_str().to_owned())]);
    // A stale answer is a usage error.
    assert!(room
        .jac
        .answer(
            &mut room.host.server,
            a,
            Answer::Walker(WalkerAnswer::Reports(body)),
            now
        )
        .is_err());
}

#[test]
fn held_frames_are_bounded() {
    let mut room = Room::new();
    let (a, _) = room.open(None, None);
    room.say(a, r#"{"type":"walker","walker":"x"}"#);
    let max = room.host.server.config().limits.max_held_frames;
    for _ in 0..max {
        assert!(!room.say(a, r#"{"type":"connection"}"#).overflowed);
    }
    assert!(room.say(a, r#"{"type":"connection"}"#).overflowed);
    assert!(room.jac.is_empty());
    assert_eq!(room.texts(), vec![(a, "CLOSE 1000".to_owned())]);
}

/// What a socket holds is counted for the host's window, and a lone frame
/// is held whatever its size (a host admits one when nothing is in flight).
#[test]
fn held_frames_are_counted_and_a_lone_big_frame_is_held() {
    let mut room = Room::new();
    let (a, _) = room.open(None, None);
    room.say(a, r#"{"type":"walker","walker":"x"}"#);
    assert_eq!((room.jac.held_frames(a), room.jac.held_bytes(a)), (0, 0));
    let max_bytes = room.host.server.config().limits.max_held_bytes;
    let big = format!(
        r#"{{"type":"connection","pad":"{}"}}"#,
        "x".repeat(max_bytes)
    );
    assert!(!room.say(a, &big).overflowed);
    assert_eq!(room.jac.held_frames(a), 1);
    assert_eq!(room.jac.held_bytes(a), big.len());
    // Past the bytes with something held: closed.
    assert!(room.say(a, r#"{"type":"connection"}"#).overflowed);
    assert_eq!(room.jac.held_frames(a), 0);
}

/// Each refusal, as the real server answered it (jacref README, 28-30 and
/// 16 and 26).
#[test]
fn validation_errors_in_the_recorded_shapes() {
    let mut room = Room::new();
    let (a, _) = room.open(None, None);
    let cases: &[(&str, &str)] = &[
        (
            r#"{"type":"xyz"}"#,
            r#"{"error":[{"type":"union_tag_invalid","loc":["event"],"msg":"Input tag 'xyz' found using 'type' does not match any of the expected tags: 'connection', 'walker', 'user', 'channel', 'client', 'change_user'","input":{"type":"xyz"},"ctx":{"discriminator":"'type'","tag":"xyz","expected_tags":"'connection', 'walker', 'user', 'channel', 'client', 'change_user'"},"url":"https://errors.pydantic.dev/2.10/v/union_tag_invalid"}]}"#,
        ),
        (
            "{}",
            r#"{"error":[{"type":"union_tag_not_found","loc":["event"],"msg":"Unable to extract tag using discriminator 'type'","input":{},"ctx":{"discriminator":"'type'"},"url":"https://errors.pydantic.dev/2.10/v/union_tag_not_found"}]}"#,
        ),
        (
            "[1,2]",
            r#"{"error":[{"type":"model_attributes_type","loc":["event"],"msg":"Input should be a valid dictionary or object to extract fields from","input":[1,2],"url":"https://errors.pydantic.dev/2.10/v/model_attributes_type"}]}"#,
        ),
        (
            r#"{"type":"walker","response":true}"#,
            r#"{"error":[{"type":"missing","loc":["event","walker","walker"],"msg":"Field required","input":{"type":"walker","response":true},"url":"https://errors.pydantic.dev/2.10/v/missing"}]}"#,
        ),
        (
            r#"{"type":"change_user","token":123}"#,
            r#"{"error":[{"type":"string_type","loc":["event","change_user","token"],"msg":"Input should be a valid string","input":123,"url":"https://errors.pydantic.dev/2.10/v/string_type"}]}"#,
        ),
        (
            r#"{"type":"channel","channel_ids":[],"data":{}}"#,
            r#"{"error":[{"type":"too_short","loc":["event","channel","channel_ids"],"msg":"List should have at least 1 item after validation, not 0","input":[],"ctx":{"field_type":"List","min_length":1,"actual_length":0},"url":"https://errors.pydantic.dev/2.10/v/too_short"}]}"#,
        ),
    ];
    for (sent, expected) in cases {
        room.say(a, sent);
        assert_eq!(room.texts(), vec![(a, (*expected).to_owned())], "{sent}");
    }
    // Two errors in one frame; an index in the location.
    room.say(a, r#"{"type":"user"}"#);
    let e = json(&room.texts()[0].1);
    assert_eq!(e["error"].as_array().unwrap().len(), 2);
    room.say(a, r#"{"type":"client","client_ids":[1],"data":{}}"#);
    let e = json(&room.texts()[0].1);
    assert_eq!(
        e["error"][0]["loc"],
        json(r#"["event","client","client_ids",0]"#)
    );
    assert_eq!(e["error"][0]["type"], "string_type");
    // Bad JSON and binary frames: traceback-shaped lists.
    room.say(a, "this is not json");
    let e = json(&room.texts()[0].1);
    assert!(e["error"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("json.decoder.JSONDecodeError: "));
    let now = room.host.now;
    room.jac
        .handle(
            &mut room.host.server,
            a,
            br#"{"type":"connection"}"#,
            true,
            now,
        )
        .unwrap();
    let e = json(&room.texts()[0].1);
    assert_eq!(e["error"][1], "KeyError: 'text'\n");
}

#[test]
fn replica_events_reach_local_targets() {
    let mut room = Room::new();
    let (a, a_id) = room.open(Some("room1"), None);
    let now = room.host.now;
    let reached = room
        .jac
        .deliver(
            &mut room.host.server,
            br#"{"type":"channel","channel_ids":["room1"],"data":{"message":"to_group"}}"#,
            now,
        )
        .unwrap();
    assert_eq!(reached, 1);
    room.jac
        .deliver(
            &mut room.host.server,
            format!(r#"{{"type":"client","client_ids":["{a_id}"],"data":{{"x":1}}}}"#).as_bytes(),
            now,
        )
        .unwrap();
    assert_eq!(
        room.texts(),
        vec![
            (a, r#"{"message":"to_group"}"#.to_owned()),
            (a, r#"{"x":1}"#.to_owned())
        ]
    );
}

/// The vocabulary of `cable-channels` (Jac Cloud's client events and server
/// frames): its encoded events are what the dialect parses, and what the
/// dialect sends decodes as the frame the vocabulary expects.
#[test]
fn the_channels_vocabulary_speaks_with_the_dialect() {
    use cable_channels::jac::{JacClientEvent, JacServerFrame, WalkerError};
    let mut room = Room::new();
    let (a, a_id) = room.open(Some("room1"), None);
    let (b, _) = room.open(None, Some(BOB));
    let mut data = serde_json::Map::new();
    data.insert("m".into(), Value::from(1));
    let events = [
        JacClientEvent::connection(),
        JacClientEvent::user(vec![format!("n::{BOB}").as_str().into()], data.clone()),
        JacClientEvent::channel(vec!["room1".to_owned().into()], data.clone()),
        JacClientEvent::client(vec![a_id.clone().into()], data.clone()),
    ];
    for event in &events {
        let handled = room.say(a, &event.encode());
        assert!(handled.errors.is_empty(), "{}", event.encode());
    }
    let frames = room.texts();
    let decoded: Vec<(ConnectionId, JacServerFrame)> = frames
        .iter()
        .map(|(c, t)| (*c, JacServerFrame::decode(t).unwrap()))
        .collect();
    assert!(
        matches!(&decoded[0], (c, JacServerFrame::Connection(info)) if *c == a && info.client_id.to_string() == a_id)
    );
    for (c, frame) in &decoded[1..] {
        assert!([a, b].contains(c));
        assert_eq!(
            *frame,
            JacServerFrame::Notification(Value::Object(data.clone()))
        );
    }
    assert_eq!(decoded.len(), 4);
    // A change_user of the vocabulary is a decision; a refusal decodes as one.
    let handled = room.say(a, &JacClientEvent::change_user(Some("Bearer tok")).encode());
    assert_eq!(handled.decisions.len(), 1);
    room.authenticate(a, None);
    room.texts();
    let now = room.host.now;
    let error = cable_proto::dialect::jac::WalkerAnswer::Error(
        JsonText::new(
            r#"{"type":"walker","error":"Invalid request! Please use valid walker event!"}"#,
        )
        .unwrap(),
    );
    room.say(
        a,
        &JacClientEvent::walker("w", true, serde_json::Map::new()).encode(),
    );
    room.jac
        .answer(&mut room.host.server, a, Answer::Walker(error), now)
        .unwrap();
    let frames = room.texts();
    assert_eq!(
        JacServerFrame::decode(&frames[0].1).unwrap(),
        JacServerFrame::WalkerError(WalkerError::invalid_request())
    );
    room.say(a, r#"{"type":"user"}"#);
    let frames = room.texts();
    assert!(matches!(
        JacServerFrame::decode(&frames[0].1).unwrap(),
        JacServerFrame::ValidationErrors(errors) if errors.len() == 2
    ));
    room.say(a, "nope");
    let frames = room.texts();
    assert!(matches!(
        JacServerFrame::decode(&frames[0].1).unwrap(),
        JacServerFrame::Traceback(lines) if lines.len() == 2
    ));
}

/// The hub's internal streams (BuddyBoss' presence) are out of a Jac
/// client's reach: neither joined as a channel nor reached by an event.
#[test]
fn internal_streams_are_out_of_reach() {
    use cable_proto::dialect::buddyboss::PRESENCE_STREAM;
    let mut room = Room::new();
    let bb = room.host.connect_custom(BB, "");
    let now = room.host.now;
    BuddyBoss::new(Protocol::Custom(BB))
        .on_open(&mut room.host.server, bb, now)
        .unwrap();
    let (a, _) = room.open(Some(PRESENCE_STREAM), None);
    assert_eq!(room.host.server.subscriber_count(PRESENCE_STREAM), 1);
    room.say(
        a,
        &serde_json::json!({"type": "channel", "channel_ids": [PRESENCE_STREAM], "data": {"x": 1}})
            .to_string(),
    );
    assert_eq!(room.texts(), vec![]);
}
