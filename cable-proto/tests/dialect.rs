//! The BuddyBoss dialect on the hub: each message type, each targeting rule,
//! each refusal, one namespace shared with Action Cable, and a model check
//! of who a delivery reaches across dialects.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use cable_proto::dialect::buddyboss::{BuddyBossError, PRESENCE_STREAM};
use cable_proto::dialect::BuddyBoss;
use cable_proto::server::{Envelope, Protocol};
use cable_proto::{ConnectionId, StreamMode};
use common::*;
use proptest::prelude::*;

const BB: u16 = 7;

fn bb() -> BuddyBoss {
    BuddyBoss::new(Protocol::Custom(BB))
}

/// An anonymous BuddyBoss connection, in the presence stream.
fn open(host: &mut Host) -> ConnectionId {
    let conn = host.connect_custom(BB, "");
    bb().on_open(&mut host.server, conn, host.now).unwrap();
    host.events();
    conn
}

fn say(host: &mut Host, conn: ConnectionId, frame: &str) -> Option<BuddyBossError> {
    say_verified(host, conn, frame, None)
}

fn say_verified(
    host: &mut Host,
    conn: ConnectionId,
    frame: &str,
    verify: Option<&dyn Fn(&str) -> bool>,
) -> Option<BuddyBossError> {
    let now = host.now;
    bb().handle(&mut host.server, conn, frame.as_bytes(), false, verify, now)
        .unwrap()
        .error
}

fn text(s: &str) -> Out {
    Out::Text(s.into())
}

/// Three users: alice (a), bob (b), carol (c) on BuddyBoss, all in thread 9.
fn trio(host: &mut Host) -> [ConnectionId; 3] {
    let conns = [open(host), open(host), open(host)];
    for (conn, user) in conns.iter().zip(["a", "b", "c"]) {
        say(
            host,
            *conn,
            &format!(r#"{{"type":"user_connected","userId":"{user}"}}"#),
        );
        say(host, *conn, r#"{"type":"join_thread","threadId":"9"}"#);
    }
    host.all_frames();
    conns
}

#[test]
fn user_connected_identifies_and_announces_to_every_other_client() {
    let mut host = Host::new();
    let a = open(&mut host);
    let b = open(&mut host);
    let cable = host.connect("x");
    assert_eq!(
        say(&mut host, a, r#"{"type":"user_connected","userId":42}"#),
        None
    );
    assert_eq!(host.server.identity(a).unwrap().as_str(), "42");
    assert_eq!(
        host.all_frames(),
        vec![(b, text(r#"{"type":"user_connected","userId":42}"#))]
    );
    let _ = cable;
}

#[test]
fn send_message_to_a_thread_reaches_every_other_member() {
    let mut host = Host::new();
    let [a, b, c] = trio(&mut host);
    let outsider = open(&mut host);
    host.all_frames();
    let frame =
        r#"{"type":"send_message","recipientId":"b","message":"hi","threadId":"9","token":"T"}"#;
    let verify = |t: &str| t == "T";
    assert_eq!(say_verified(&mut host, a, frame, Some(&verify)), None);
    let expected =
        r#"{"type":"message","message":"hi","threadId":"9","recipientId":"b","senderId":"a"}"#;
    assert_eq!(
        host.all_frames(),
        vec![(b, text(expected)), (c, text(expected))]
    );
    let _ = outsider;
}

#[test]
fn send_message_without_a_thread_reaches_every_connection_of_the_recipient() {
    let mut host = Host::new();
    let [a, b, c] = trio(&mut host);
    let b2 = open(&mut host);
    say(&mut host, b2, r#"{"type":"user_connected","userId":"b"}"#);
    host.all_frames();
    let cable_b = host.connect("b");
    host.all_frames();
    say(
        &mut host,
        a,
        r#"{"type":"send_message","recipientId":"b","message":"psst"}"#,
    );
    let expected = r#"{"type":"message","message":"psst","recipientId":"b","senderId":"a"}"#;
    assert_eq!(
        host.all_frames(),
        vec![(b, text(expected)), (b2, text(expected))],
        "BuddyBoss connections of b only; not c, not b's Action Cable one"
    );
    let _ = (c, cable_b);
}

#[test]
fn typing_reaches_every_other_member_never_the_sender() {
    let mut host = Host::new();
    let [a, b, c] = trio(&mut host);
    say(&mut host, b, r#"{"type":"typing","threadId":"9"}"#);
    let expected = r#"{"type":"typing","threadId":"9","userId":"b","typing":true}"#;
    assert_eq!(
        host.all_frames(),
        vec![(a, text(expected)), (c, text(expected))]
    );
}

#[test]
fn signalling_reaches_only_the_recipient_untouched() {
    let mut host = Host::new();
    let [a, b, c] = trio(&mut host);
    for frame in [
        r#"{"type":"call_initiated","senderId":"a","recipientId":"c","threadId":"9"}"#,
        r#"{"type":"offer","offer":{"sdp":"v=0","type":"offer"},"recipientId":"c","senderId":"a","threadId":"9"}"#,
        r#"{"type":"answer","answer":"ANSWER_SDP","recipientId":"c","senderId":"a","threadId":"9"}"#,
        r#"{"type":"ice-candidate","candidate":"ICE CANDIDATE","recipientId":"c","senderId":"a","threadId":"9"}"#,
    ] {
        assert_eq!(say(&mut host, a, frame), None, "{frame}");
        assert_eq!(host.all_frames(), vec![(c, text(frame))]);
    }
    let _ = b;
}

#[test]
fn every_bad_input_answers_the_sender_and_delivers_nothing() {
    let mut host = Host::new();
    let [a, _b, _c] = trio(&mut host);
    let verify = |t: &str| t == "T";
    let cases: &[(&str, &str)] = &[
        ("{not json", "invalid JSON"),
        ("[1]", "frame is not a JSON object"),
        (r#"{"threadId":"9"}"#, "missing \"type\""),
        (r#"{"type":"dance"}"#, "unknown type \"dance\""),
        (
            r#"{"type":"join_thread"}"#,
            "join_thread: missing \"threadId\"",
        ),
        (
            r#"{"type":"typing","threadId":[1]}"#,
            "typing: \"threadId\" must be a non-empty string or a number",
        ),
        (
            r#"{"type":"user_connected"}"#,
            "user_connected: missing \"userId\"",
        ),
        (
            r#"{"type":"send_message","threadId":"9","token":"T"}"#,
            "send_message: missing \"message\"",
        ),
        (
            r#"{"type":"send_message","message":"x","token":"T"}"#,
            "send_message: needs \"threadId\" or \"recipientId\"",
        ),
        (
            r#"{"type":"send_message","message":"x","threadId":"9"}"#,
            "send_message: missing \"token\"",
        ),
        (
            r#"{"type":"send_message","message":"x","threadId":"9","token":"bad"}"#,
            "send_message: invalid token",
        ),
        (
            r#"{"type":"offer","offer":"o","senderId":"a","threadId":"9"}"#,
            "offer: missing \"recipientId\"",
        ),
    ];
    for (frame, message) in cases {
        let error = say_verified(&mut host, a, frame, Some(&verify)).expect(frame);
        let frames = host.all_frames();
        assert_eq!(frames.len(), 1, "{frame}: {frames:?}");
        let (to, Out::Text(out)) = &frames[0] else {
            panic!()
        };
        assert_eq!(*to, a);
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        assert_eq!(v["type"], "error");
        let got = v["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{frame}: {got}");
        assert_eq!(got, error.to_string());
        assert!(host.server.is_open(a));
    }
}

#[test]
fn limits_are_the_action_cable_limits() {
    let mut config = cable_proto::server::Config::default();
    config.limits.max_subscriptions = 2;
    config.limits.max_identifier_bytes = 8;
    let mut host = Host::with_config(config);
    let a = open(&mut host);
    assert_eq!(
        say(&mut host, a, r#"{"type":"join_thread","threadId":"1"}"#),
        None
    );
    assert_eq!(
        say(&mut host, a, r#"{"type":"join_thread","threadId":"2"}"#),
        None
    );
    assert_eq!(
        say(&mut host, a, r#"{"type":"join_thread","threadId":"3"}"#),
        Some(BuddyBossError::TooManyThreads(2))
    );
    assert!(matches!(
        say(
            &mut host,
            a,
            r#"{"type":"user_connected","userId":"123456789"}"#
        ),
        Some(BuddyBossError::TooLong { limit: 8, .. })
    ));
}

#[test]
fn one_namespace_and_one_frame_per_group_across_protocols() {
    let mut host = Host::new();
    let [a, b, _c] = trio(&mut host);
    let cable = host.connect("a");
    host.subscribe(cable, CHAT, &["9"]);
    // Another dialect's envelope on the same stream.
    let other = host.connect_custom(3, "z");
    host.server
        .join(
            other,
            "9",
            Envelope::new(r#"["x","#, "]", StreamMode::Json),
            host.now,
        )
        .unwrap();
    host.all_frames();
    // A BuddyBoss thread message reaches the Action Cable subscriber of stream "9".
    say(
        &mut host,
        b,
        r#"{"type":"send_message","message":"yo","threadId":"9"}"#,
    );
    let payload = r#"{"type":"message","message":"yo","threadId":"9","senderId":"b"}"#;
    let frames = host.all_frames();
    assert!(frames.contains(&(cable, text(&data_frame(CHAT, payload)))));
    assert!(frames.contains(&(a, text(payload))));
    assert!(frames.contains(&(other, text(&format!(r#"["x",{payload}]"#)))));
    // A plain broadcast: BuddyBoss members get it wrapped, once per group.
    let delivery = host.server.broadcast("9", r#"{"n":1}"#, host.now);
    assert_eq!((delivery.recipients, delivery.encoded), (5, 3));
    let frames = host.all_frames();
    assert!(frames.contains(&(
        a,
        text(r#"{"type":"message","threadId":"9","message":{"n":1}}"#)
    )));
    assert!(frames.contains(&(cable, text(&data_frame(CHAT, r#"{"n":1}"#)))));
    // A direct message to "a" reaches a's BuddyBoss connection, not its Action Cable one.
    say(
        &mut host,
        b,
        r#"{"type":"send_message","message":"dm","recipientId":"a"}"#,
    );
    assert_eq!(
        host.all_frames()
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>(),
        vec![a]
    );
    // The presence stream is not a thread.
    assert_eq!(
        host.server.joined_streams(a).first().unwrap().as_str(),
        PRESENCE_STREAM
    );
}

#[test]
fn the_vocabulary_matches_cable_channels() {
    use cable_channels::buddyboss::BuddyBossMessage;
    for frame in [
        r#"{"type":"user_connected","userId":"U"}"#,
        r#"{"type":"join_thread","threadId":7}"#,
        r#"{"type":"send_message","recipientId":"R","message":"m","threadId":"T","token":"k"}"#,
        r#"{"type":"typing","threadId":"T"}"#,
        r#"{"type":"call_initiated","senderId":"S","recipientId":"R","threadId":"T"}"#,
        r#"{"type":"offer","offer":"O","recipientId":"R","senderId":"S","threadId":"T"}"#,
        r#"{"type":"answer","answer":"A","recipientId":"R","senderId":"S","threadId":"T"}"#,
        r#"{"type":"ice-candidate","candidate":"C","recipientId":"R","senderId":"S","threadId":"T"}"#,
    ] {
        let ours = BuddyBoss::parse(frame.as_bytes(), &Default::default()).unwrap();
        let theirs = BuddyBossMessage::decode(frame).unwrap();
        assert_eq!(ours.type_name(), theirs.type_name());
    }
    // What the server sends decodes as cable-channels' types.
    let mut host = Host::new();
    let [a, b, _c] = trio(&mut host);
    say(
        &mut host,
        a,
        r#"{"type":"send_message","message":"hi","threadId":"9"}"#,
    );
    say(&mut host, a, r#"{"type":"typing","threadId":"9"}"#);
    say(&mut host, a, "nope");
    for (_, out) in host.all_frames() {
        let Out::Text(t) = out else { panic!() };
        let m = BuddyBossMessage::decode(&t).unwrap();
        assert!(
            matches!(
                m,
                BuddyBossMessage::Message(_)
                    | BuddyBossMessage::Typing(_)
                    | BuddyBossMessage::Error(_)
            ),
            "{t}"
        );
    }
    let _ = b;
}

#[derive(Debug, Clone)]
enum Op {
    Identify(usize, usize),
    Join(usize, usize),
    Thread(usize, usize),
    Typing(usize, usize),
    Direct(usize, usize),
    Signal(usize, usize),
    Broadcast(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..8usize;
    let x = 0..3usize;
    prop_oneof![
        (c.clone(), x.clone()).prop_map(|(c, x)| Op::Identify(c, x)),
        (c.clone(), x.clone()).prop_map(|(c, x)| Op::Join(c, x)),
        (c.clone(), x.clone()).prop_map(|(c, x)| Op::Thread(c, x)),
        (c.clone(), x.clone()).prop_map(|(c, x)| Op::Typing(c, x)),
        (c.clone(), x.clone()).prop_map(|(c, x)| Op::Direct(c, x)),
        (c, x.clone()).prop_map(|(c, x)| Op::Signal(c, x)),
        x.prop_map(Op::Broadcast),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// Connections 0..4 speak BuddyBoss, 4..6 Action Cable (subscribed to
    /// stream "t0" / "t1" as user "u0" / "u1"), 6..8 a third dialect joined
    /// to "t0" / "t2": every delivery reaches exactly the model's recipients.
    #[test]
    fn a_delivery_reaches_exactly_the_intended_recipients(ops in prop::collection::vec(op(), 1..40)) {
        let mut host = Host::new();
        let mut conns = Vec::new();
        let mut user: BTreeMap<usize, String> = BTreeMap::new();
        let mut members: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for _ in 0..4 {
            conns.push(open(&mut host));
        }
        for i in 0..2 {
            let c = host.connect(&format!("u{i}"));
            let id = format!(r#"{{"channel":"C","n":{i}}}"#);
            host.subscribe(c, &id, &[&format!("t{i}")]);
            user.insert(4 + i, format!("u{i}"));
            members.entry(format!("t{i}")).or_default().insert(4 + i);
            conns.push(c);
        }
        for (i, t) in [(6, "t0"), (7, "t2")] {
            let c = host.connect_custom(3, "z");
            host.server.join(c, t, Envelope::verbatim(), host.now).unwrap();
            members.entry(t.into()).or_default().insert(i);
            conns.push(c);
        }
        host.all_frames();
        for op in ops {
            let bbs = |c: usize| c % 4;
            let expected: BTreeSet<usize> = match &op {
                Op::Identify(c, u) => {
                    let c = bbs(*c);
                    say(&mut host, conns[c], &format!(r#"{{"type":"user_connected","userId":"u{u}"}}"#));
                    user.insert(c, format!("u{u}"));
                    (0..4).filter(|&o| o != c).collect()
                }
                Op::Join(c, t) => {
                    let c = bbs(*c);
                    say(&mut host, conns[c], &format!(r#"{{"type":"join_thread","threadId":"t{t}"}}"#));
                    members.entry(format!("t{t}")).or_default().insert(c);
                    BTreeSet::new()
                }
                Op::Thread(c, t) | Op::Typing(c, t) => {
                    let c = bbs(*c);
                    let frame = if matches!(op, Op::Thread(..)) {
                        format!(r#"{{"type":"send_message","message":"m","threadId":"t{t}"}}"#)
                    } else {
                        format!(r#"{{"type":"typing","threadId":"t{t}"}}"#)
                    };
                    say(&mut host, conns[c], &frame);
                    members.get(&format!("t{t}")).cloned().unwrap_or_default().into_iter().filter(|&o| o != c).collect()
                }
                Op::Direct(c, u) | Op::Signal(c, u) => {
                    let c = bbs(*c);
                    let frame = if matches!(op, Op::Direct(..)) {
                        format!(r#"{{"type":"send_message","message":"m","recipientId":"u{u}"}}"#)
                    } else {
                        format!(r#"{{"type":"offer","offer":"o","recipientId":"u{u}","senderId":"s","threadId":"t"}}"#)
                    };
                    say(&mut host, conns[c], &frame);
                    (0..4).filter(|o| user.get(o) == Some(&format!("u{u}"))).collect()
                }
                Op::Broadcast(t) => {
                    host.server.broadcast(&format!("t{t}"), r#"{"k":1}"#, host.now);
                    members.get(&format!("t{t}")).cloned().unwrap_or_default()
                }
            };
            let mut got = BTreeSet::new();
            for (conn, _) in host.all_frames() {
                let i = conns.iter().position(|c| *c == conn).unwrap();
                prop_assert!(got.insert(i), "{i} got two frames for {op:?}");
            }
            prop_assert_eq!(got, expected, "{:?}", op);
        }
    }
}
