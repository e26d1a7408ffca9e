//! Target `dialect`: the BuddyBoss and Jac dialects' frame parsers and a
//! hub mixed across three dialects (Action Cable subscriptions, BuddyBoss
//! connections, Jac sockets), against a naive model.
//!
//! Each step is a BuddyBoss frame (arbitrary bytes, or one built from picks
//! over a few users and threads, numeric and string ids alike), a broadcast
//! (typed or not), or a close. The parser must never panic; a refused frame
//! answers exactly the sender one `{"type":"error","message":...}` frame; an
//! accepted one reaches exactly the model's recipients, once each, and what
//! a BuddyBoss member receives from a broadcast is the payload itself (typed)
//! or the `message` wrapper. A Jac frame (arbitrary bytes, text or binary,
//! or one built from picks of types, roots, channels and client ids) is
//! either refused with exactly one `{"error":...}` frame to the sender, or
//! reaches exactly the model's recipients (duplicates as many times as
//! listed, stopping at a bad root reference), its `data` verbatim;
//! `change_user` and walkers are decisions answered at once.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`
//! and `serde_json` only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cable_proto::dialect::buddyboss::{Request, PRESENCE_STREAM};
use cable_proto::dialect::jac::{
    self, Answer, Credential, Decision, Event as JacEvent, Jac, OpenParams, RootId, TargetKind,
    WalkerAnswer,
};
use cable_proto::dialect::BuddyBoss;
use cable_proto::server::{Config, Event, Frame, Limits, Protocol, Server, SubscriptionAccept};
use cable_proto::{ConnectionId, HandshakeRequest, Identity, OriginPolicy};
use serde_json::Value;

use crate::input::Input;

/// Most steps one input runs.
pub const MAX_STEPS: usize = 256;

/// Connections: three of each kind, kind = index % 3 (0 BuddyBoss, 1 Action
/// Cable, 2 Jac).
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
    /// Each Jac socket's root ObjectId.
    roots: BTreeMap<usize, String>,
}

/// The protocol number of the Jac sockets.
const JAC: u16 = 3;
/// The root a Jac `change_user` with token `"ok"` becomes.
const ALICE: &str = "6b028e084b49d9ccc6934a7d";

fn client_id(i: usize) -> String {
    format!("1700000000:{i:032x}")
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
        roots: BTreeMap::new(),
    };
    let mut jac = Jac::new(Protocol::Custom(JAC));
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
                let incoming = m
                    .server
                    .handle_open_as(&HandshakeRequest::default(), Protocol::Custom(JAC), now)
                    .expect("any origin");
                let c = incoming.connection;
                let params = OpenParams {
                    client_id: client_id(i),
                    channel_id: stream.clone(),
                    credential: None,
                    authorization: None,
                };
                let handled = jac
                    .open(&mut m.server, incoming.pending, c, params, now)
                    .expect("open");
                assert!(handled.decisions.is_empty());
                m.roots.insert(i, jac::PUBLIC_ROOT.to_owned());
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
        match input.below(12) {
            8 => {
                let sender = 3 * input.below(3) + 2;
                let binary = input.bool();
                let frame = input.bytes(200).to_vec();
                jac_step(&mut m, &mut jac, sender, &frame, binary);
            }
            9..=11 => {
                let sender = 3 * input.below(3) + 2;
                let frame = built_jac_frame(&mut input);
                jac_step(&mut m, &mut jac, sender, frame.as_bytes(), false);
            }
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
                let i = 3 * input.below(3) + if input.bool() { 2 } else { 0 };
                if m.open.remove(&i) {
                    m.server.handle_close(m.conns[i], m.now).expect("live");
                    jac.close(m.conns[i]);
                    m.roots.remove(&i);
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

/// A Jac frame from picks: a type, and fields that are right, wrong or absent.
fn built_jac_frame(input: &mut Input<'_>) -> String {
    let t = *input.pick(&[
        "connection",
        "user",
        "channel",
        "client",
        "change_user",
        "walker",
        "Walker",
    ]);
    let mut obj = serde_json::Map::new();
    if input.below(8) > 0 {
        obj.insert("type".into(), Value::from(t));
    }
    let list = |input: &mut Input<'_>, items: &[String]| -> Value {
        let n = input.below(4);
        Value::Array(
            (0..n)
                .map(|_| Value::from(items[input.below(items.len())].clone()))
                .collect(),
        )
    };
    let roots = [
        format!("n::{}", jac::PUBLIC_ROOT),
        format!("n::{ALICE}"),
        format!("n:Root:{ALICE}"),
        "garbage".to_owned(),
    ];
    let channels: Vec<String> = IDS.iter().map(|s| (*s).to_owned()).collect();
    let clients: Vec<String> = (0..CONNS)
        .map(client_id)
        .chain(["1700000000:deadbeef".to_owned()])
        .collect();
    for field in [
        "root_ids",
        "channel_ids",
        "client_ids",
        "data",
        "token",
        "walker",
        "response",
    ] {
        if !input.bool() {
            continue;
        }
        let v = match field {
            "root_ids" => list(input, &roots),
            "channel_ids" => list(input, &channels),
            "client_ids" => list(input, &clients),
            "data" => input
                .pick(&[
                    serde_json::json!({}),
                    serde_json::json!({"type": "chat", "data": {"m": "h\u{e9}"}}),
                    Value::from("str"),
                ])
                .clone(),
            "token" => input
                .pick(&[
                    Value::from("ok"),
                    Value::from("Bearer bad"),
                    Value::Null,
                    Value::from(1),
                ])
                .clone(),
            "walker" => Value::from("w"),
            _ => input
                .pick(&[Value::Bool(true), Value::from("no"), Value::from(2)])
                .clone(),
        };
        obj.insert(field.into(), v);
    }
    Value::Object(obj).to_string()
}

/// Who a Jac event reaches, in the model: a multiset, in delivery order.
fn jac_recipients(m: &Model, sender: usize, event: &JacEvent) -> Vec<usize> {
    let mut out = Vec::new();
    match event {
        JacEvent::Connection | JacEvent::ChangeUser { .. } => out.push(sender),
        JacEvent::Walker(w) => {
            if w.response {
                out.push(sender);
            }
        }
        JacEvent::Notify { kind, targets, .. } => {
            for t in targets {
                match kind {
                    TargetKind::User => match RootId::parse_ref(t) {
                        Ok(root) => out.extend(
                            m.roots
                                .iter()
                                .filter(|(i, r)| m.open.contains(i) && r.as_str() == root.hex())
                                .map(|(i, _)| *i),
                        ),
                        Err(_) => {
                            out.push(sender);
                            break;
                        }
                    },
                    TargetKind::Channel => {
                        out.extend(m.members.get(t).into_iter().flatten().copied())
                    }
                    TargetKind::Client => out.extend(
                        (0..CONNS)
                            .filter(|&i| i % 3 == 2 && m.open.contains(&i) && client_id(i) == *t),
                    ),
                }
            }
        }
    }
    out
}

fn jac_step(m: &mut Model, jac: &mut Jac, sender: usize, frame: &[u8], binary: bool) {
    if !m.open.contains(&sender) {
        return;
    }
    let parsed = if binary {
        Err(jac::EventError::Binary)
    } else {
        jac::event::parse(frame)
    };
    let now = m.now;
    let mut handled = jac
        .handle(&mut m.server, m.conns[sender], frame, binary, now)
        .expect("an open socket");
    // Decisions answered at once: a token "ok" is alice, any other public.
    while let Some(decision) = handled.decisions.pop() {
        let answer = match &decision {
            Decision::Authenticate { token, .. } => {
                Answer::Authenticated((token == "ok").then(|| Credential {
                    root: RootId::from_hex(ALICE).expect("hex"),
                    token: token.clone(),
                }))
            }
            Decision::Walker { .. } => Answer::Walker(WalkerAnswer::Reports(
                cable_proto::JsonText::new(r#"{"status":200,"reports":[]}"#).expect("JSON"),
            )),
        };
        let more = jac
            .answer(&mut m.server, decision.connection(), answer, now)
            .expect("pending");
        handled.decisions.extend(more.decisions);
    }
    let out = drain(m);
    let mut got: Vec<usize> = out.iter().map(|(i, _)| *i).collect();
    match &parsed {
        Err(_) => {
            assert_eq!(got, vec![sender], "an error reaches the sender only");
            let v: Value = serde_json::from_slice(&out[0].1).expect("JSON");
            assert!(v.get("error").is_some(), "{v}");
        }
        Ok(event) => {
            let mut expected = jac_recipients(m, sender, event);
            if let JacEvent::ChangeUser { token } = event {
                let root = if token.as_deref() == Some("ok") {
                    ALICE
                } else {
                    jac::PUBLIC_ROOT
                };
                m.roots.insert(sender, root.to_owned());
            }
            got.sort_unstable();
            expected.sort_unstable();
            assert_eq!(got, expected, "{event:?}");
            if let JacEvent::Notify { data, .. } = event {
                let data = Value::Object(data.clone()).to_string();
                for (i, bytes) in &out {
                    if i % 3 == 2
                        && serde_json::from_slice::<Value>(bytes)
                            .is_ok_and(|v| v.get("error").is_none())
                    {
                        assert_eq!(bytes, data.as_bytes());
                    }
                }
            }
        }
    }
}
