//! Target `dialect`: the BuddyBoss dialect's frame parser and a hub mixed
//! across three dialects (Action Cable subscriptions, BuddyBoss connections,
//! a third dialect's envelope), against a naive model.
//!
//! Each step is a BuddyBoss frame (arbitrary bytes, or one built from picks
//! over a few users and threads, numeric and string ids alike), a broadcast
//! (typed or not), or a close. The parser must never panic; a refused frame
//! answers exactly the sender one `{"type":"error","message":...}` frame; an
//! accepted one reaches exactly the model's recipients, once each, and what
//! a BuddyBoss member receives from a broadcast is the payload itself (typed)
//! or the `message` wrapper.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`
//! and `serde_json` only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cable_proto::dialect::buddyboss::{Request, PRESENCE_STREAM};
use cable_proto::dialect::BuddyBoss;
use cable_proto::server::{Config, Event, Frame, Limits, Protocol, Server, SubscriptionAccept};
use cable_proto::{ConnectionId, HandshakeRequest, Identity, OriginPolicy};
use serde_json::Value;

use crate::input::Input;

/// Most steps one input runs.
pub const MAX_STEPS: usize = 256;

/// Connections: three of each kind, kind = index % 3 (0 BuddyBoss, 1 Action
/// Cable, 2 third dialect).
const CONNS: usize = 9;
const IDS: [&str; 4] = ["1", "2", "a", "t1"];

struct Model {
    server: Server,
    now: Instant,
    conns: Vec<ConnectionId>,
    open: BTreeSet<usize>,
    user: BTreeMap<usize, String>,
    members: BTreeMap<String, BTreeSet<usize>>,
    threads: BTreeMap<usize, BTreeSet<String>>,
}

fn open(server: &mut Server, now: Instant, protocol: Protocol, user: &str) -> ConnectionId {
    let incoming = server
        .handle_open_as(&HandshakeRequest::default(), protocol, now)
        .expect("any origin");
    server
        .accept_connection(incoming.pending, Identity::new(user), now)
        .expect("pending");
    incoming.connection
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = Limits {
        max_subscriptions: *input.pick(&[2, 100]),
        max_identifier_bytes: *input.pick(&[24, 1024]),
        ..Limits::default()
    };
    // The host reads the clock once; the core's time never moves here.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let config = Config {
        origins: OriginPolicy::allow_any(),
        limits,
        ..Config::default()
    };
    let mut m = Model {
        server: Server::new(config, now, Duration::from_secs(1_700_000_000)),
        now,
        conns: Vec::new(),
        open: BTreeSet::new(),
        user: BTreeMap::new(),
        members: BTreeMap::new(),
        threads: BTreeMap::new(),
    };
    let bb = BuddyBoss::new(Protocol::Custom(7));
    for i in 0..CONNS {
        let stream = IDS[i % 4].to_owned();
        let conn = match i % 3 {
            0 => {
                let c = open(&mut m.server, now, Protocol::Custom(7), "");
                bb.on_open(&mut m.server, c, now).expect("open");
                c
            }
            1 => {
                let user = IDS[i % 4];
                let c = open(&mut m.server, now, Protocol::ActionCable, user);
                m.user.insert(i, user.to_owned());
                let frame = serde_json::json!({"command": "subscribe", "identifier": format!("{{\"channel\":\"C\",\"n\":{i}}}")});
                m.server
                    .handle_text(c, frame.to_string().as_bytes(), now)
                    .expect("open");
                let pending = loop {
                    match m.server.poll_event() {
                        Some(Event::SubscriptionRequested { pending, .. }) => break pending,
                        Some(_) => {}
                        None => panic!("no subscription request"),
                    }
                };
                m.server
                    .accept_subscription(
                        pending,
                        SubscriptionAccept::new().stream(stream.clone()),
                        now,
                    )
                    .expect("pending");
                m.members.entry(stream).or_default().insert(i);
                c
            }
            _ => {
                let c = open(&mut m.server, now, Protocol::Custom(3), "z");
                m.server
                    .join(
                        c,
                        stream.clone(),
                        cable_proto::server::Envelope::verbatim(),
                        now,
                    )
                    .expect("open");
                m.members.entry(stream).or_default().insert(i);
                c
            }
        };
        m.conns.push(conn);
        m.open.insert(i);
    }
    drain(&mut m);
    let mut steps = 0;
    while !input.is_empty() && steps < MAX_STEPS {
        steps += 1;
        match input.below(8) {
            0 => {
                let sender = 3 * input.below(3);
                let frame = input.bytes(200).to_vec();
                frame_step(&mut m, &bb, sender, &frame);
            }
            1 => {
                let stream = IDS[input.below(4)];
                let payload = *input.pick(&[
                    r#"{"n":1}"#,
                    r#"{"type":"message","message":"x"}"#,
                    r#""s""#,
                    r#"{"type":1}"#,
                ]);
                broadcast_step(&mut m, stream, payload);
            }
            2 => {
                let i = 3 * input.below(3);
                if m.open.remove(&i) {
                    m.server.handle_close(m.conns[i], m.now).expect("live");
                    for set in m.members.values_mut() {
                        set.remove(&i);
                    }
                    m.user.remove(&i);
                    m.threads.remove(&i);
                    drain(&mut m);
                }
            }
            _ => {
                let sender = 3 * input.below(3);
                let id = |input: &mut Input<'_>| -> Value {
                    let s = [
                        IDS[0],
                        IDS[1],
                        IDS[2],
                        IDS[3],
                        "a-thread-id-of-thirty-bytes...",
                    ][input.below(5)];
                    match s.parse::<u64>() {
                        Ok(n) if input.bool() => Value::from(n),
                        _ => Value::from(s),
                    }
                };
                let t = *input.pick(&[
                    "user_connected",
                    "join_thread",
                    "send_message",
                    "typing",
                    "offer",
                    "call_initiated",
                    "bogus",
                ]);
                let mut obj = serde_json::Map::new();
                obj.insert("type".into(), Value::from(t));
                for field in ["userId", "threadId", "recipientId", "message", "token"] {
                    if input.bool() {
                        let v = if field == "message" || field == "token" {
                            Value::from(*input.pick(&["m", "ok", "bad"]))
                        } else {
                            id(&mut input)
                        };
                        obj.insert(field.into(), v);
                    }
                }
                let frame = Value::Object(obj).to_string();
                frame_step(&mut m, &bb, sender, frame.as_bytes());
            }
        }
    }
}

fn drain(m: &mut Model) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(t) = m.server.poll_transmit() {
        let i = m
            .conns
            .iter()
            .position(|c| *c == t.connection)
            .expect("a known connection");
        if let Frame::Text(bytes) = t.frame {
            out.push((i, bytes.to_vec()));
        }
    }
    while m.server.poll_event().is_some() {}
    out
}

fn bb_with_user(m: &Model, key: &str) -> BTreeSet<usize> {
    m.open
        .iter()
        .copied()
        .filter(|&i| i % 3 == 0 && m.user.get(&i).map(String::as_str) == Some(key))
        .collect()
}

fn frame_step(m: &mut Model, bb: &BuddyBoss, sender: usize, frame: &[u8]) {
    if !m.open.contains(&sender) {
        return;
    }
    let verify = |t: &str| t == "ok";
    let limits = m.server.config().limits.clone();
    let parsed = BuddyBoss::parse(frame, &limits);
    let joined = m.threads.get(&sender).map_or(0, BTreeSet::len);
    let expected: Option<BTreeSet<usize>> = match &parsed {
        Err(_) => None,
        Ok(Request::UserConnected { user }) => {
            m.user.insert(sender, user.key.clone());
            Some(
                m.open
                    .iter()
                    .copied()
                    .filter(|&i| i % 3 == 0 && i != sender)
                    .collect(),
            )
        }
        Ok(Request::JoinThread { thread }) => {
            if joined >= limits.max_subscriptions {
                None
            } else {
                m.threads
                    .entry(sender)
                    .or_default()
                    .insert(thread.key.clone());
                m.members
                    .entry(thread.key.clone())
                    .or_default()
                    .insert(sender);
                Some(BTreeSet::new())
            }
        }
        Ok(Request::SendMessage {
            token,
            thread,
            recipient,
            ..
        }) => {
            if token.as_deref().is_none_or(|t| !verify(t)) {
                None
            } else if let Some(thread) = thread {
                Some(others(m, &thread.key, sender))
            } else {
                recipient.as_ref().map(|r| bb_with_user(m, &r.key))
            }
        }
        Ok(Request::Typing { thread }) => Some(others(m, &thread.key, sender)),
        Ok(Request::Signal { recipient, .. }) => Some(bb_with_user(m, &recipient.key)),
    };
    let now = m.now;
    let handled = bb
        .handle(
            &mut m.server,
            m.conns[sender],
            frame,
            false,
            Some(&verify),
            now,
        )
        .expect("an open connection");
    let out = drain(m);
    let got: Vec<usize> = out.iter().map(|(i, _)| *i).collect();
    match expected {
        None => {
            assert!(handled.error.is_some(), "refused by the model: {parsed:?}");
            assert_eq!(got, vec![sender], "an error reaches the sender only");
            let v: Value = serde_json::from_slice(&out[0].1).expect("JSON");
            assert_eq!(v["type"], "error");
            assert!(v["message"].as_str().is_some_and(|s| !s.is_empty()));
        }
        Some(expected) => {
            assert_eq!(handled.error, None, "{parsed:?}");
            let set: BTreeSet<usize> = got.iter().copied().collect();
            assert_eq!(set.len(), got.len(), "one frame each: {got:?}");
            assert_eq!(set, expected, "{parsed:?}");
            assert_eq!(handled.recipients, got.len());
        }
    }
    // The presence stream is every open BuddyBoss connection.
    assert_eq!(
        m.server.subscriber_count(PRESENCE_STREAM),
        m.open.iter().filter(|&&i| i % 3 == 0).count()
    );
}

fn others(m: &Model, stream: &str, sender: usize) -> BTreeSet<usize> {
    m.members
        .get(stream)
        .map(|s| s.iter().copied().filter(|&i| i != sender).collect())
        .unwrap_or_default()
}

fn broadcast_step(m: &mut Model, stream: &str, payload: &str) {
    let now = m.now;
    let delivery = m.server.broadcast(stream, payload, now);
    let out = drain(m);
    let expected = m.members.get(stream).cloned().unwrap_or_default();
    let got: BTreeSet<usize> = out.iter().map(|(i, _)| *i).collect();
    assert_eq!(got.len(), out.len());
    assert_eq!(got, expected);
    assert_eq!(delivery.recipients, out.len());
    let typed = payload.starts_with("{\"type\"");
    for (i, bytes) in out {
        if i % 3 == 0 {
            let v: Value = serde_json::from_slice(&bytes).expect("JSON");
            if typed {
                assert_eq!(bytes, payload.as_bytes());
            } else {
                assert_eq!(v["type"], "message");
                assert_eq!(v["threadId"], stream);
                assert_eq!(
                    v["message"],
                    serde_json::from_str::<Value>(payload).expect("JSON")
                );
            }
        }
    }
}
