//! Properties: commands round-trip; no sequence of inputs panics or leaks a
//! subscription; `poll_timeout` never goes back in time; every broadcast
//! reaches exactly the subscribers a naive model expects, in order.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cable_proto::command::{parse, Command};
use cable_proto::server::{
    Config, Event, Frame, LimitAction, Limits, PendingConnection, PerformOutcome,
    SubscriptionAccept,
};
use cable_proto::{
    ConnectionId, HandshakeRequest, Identity, OriginPolicy, StreamMode, SubscriptionId,
};
use common::*;
use proptest::prelude::*;

fn command() -> impl Strategy<Value = Command<'static>> {
    let text = || any::<String>();
    prop_oneof![
        text().prop_map(|i| Command::Subscribe {
            identifier: i.into()
        }),
        text().prop_map(|i| Command::Unsubscribe {
            identifier: i.into()
        }),
        (text(), text()).prop_map(|(i, d)| Command::Message {
            identifier: i.into(),
            data: d.into()
        }),
    ]
}

proptest! {
    #[test]
    fn encode_then_parse_gives_back_the_command(cmd in command()) {
        let encoded = cmd.encode();
        prop_assert_eq!(parse(encoded.as_bytes()).unwrap(), cmd);
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&bytes);
    }
}

const IDENTIFIERS: [&str; 5] = [
    r#"{"channel":"ChatChannel","room":"a"}"#,
    r#"{"room":"a","channel":"ChatChannel"}"#,
    r#"{"channel":"ChatChannel","room":"b"}"#,
    r#"{"channel":"FeedChannel"}"#,
    r#"{"channel":"Forbidden"}"#,
];
const STREAMS: [&str; 3] = ["s0", "s1", "s2"];

/// The streams the test app gives identifier `k` when it accepts it.
fn initial_streams(k: usize) -> Vec<&'static str> {
    vec![STREAMS[k % 3], STREAMS[(k + 1) % 3]]
}

#[derive(Debug, Clone)]
enum Op {
    Open,
    Accept(usize),
    Reject(usize),
    Subscribe(usize, usize),
    Unsubscribe(usize, usize),
    Garbage(usize, Vec<u8>),
    Binary(usize),
    Follow(usize, usize, usize),
    Unfollow(usize, usize, usize),
    StopAll(usize, usize),
    Broadcast(usize),
    BroadcastExcept(usize, usize),
    Close(usize),
    Tick(u64),
    Written(usize, usize),
    Restart,
    DisconnectUser(usize),
    Ready(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0usize..6;
    let i = 0usize..IDENTIFIERS.len();
    let s = 0usize..STREAMS.len();
    prop_oneof![
        3 => Just(Op::Open),
        3 => c.clone().prop_map(Op::Accept),
        1 => c.clone().prop_map(Op::Reject),
        6 => (c.clone(), i.clone()).prop_map(|(c, i)| Op::Subscribe(c, i)),
        2 => (c.clone(), i.clone()).prop_map(|(c, i)| Op::Unsubscribe(c, i)),
        1 => (c.clone(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(c, g)| Op::Garbage(c, g)),
        1 => c.clone().prop_map(Op::Binary),
        2 => (c.clone(), i.clone(), s.clone()).prop_map(|(c, i, s)| Op::Follow(c, i, s)),
        2 => (c.clone(), i.clone(), s.clone()).prop_map(|(c, i, s)| Op::Unfollow(c, i, s)),
        1 => (c.clone(), i).prop_map(|(c, i)| Op::StopAll(c, i)),
        6 => s.clone().prop_map(Op::Broadcast),
        2 => (s, c.clone()).prop_map(|(s, c)| Op::BroadcastExcept(s, c)),
        2 => c.clone().prop_map(Op::Close),
        2 => (0u64..5000).prop_map(Op::Tick),
        2 => (c.clone(), 0usize..400).prop_map(|(c, n)| Op::Written(c, n)),
        1 => Just(Op::Restart),
        1 => c.prop_map(Op::DisconnectUser),
        2 => (0usize..STREAMS.len()).prop_map(Op::Ready),
    ]
}

/// What the model knows of one connection.
#[derive(Debug, Default)]
struct ModelConn {
    id: Option<ConnectionId>,
    pending: Option<PendingConnection>,
    open: bool,
    closing: bool,
    user: String,
    /// identifier index -> (subscription, streams)
    subs: BTreeMap<usize, (SubscriptionId, BTreeSet<usize>)>,
    /// What each broadcast must have brought: (sequence number, frame).
    expected: Vec<(u64, String)>,
    received: Vec<(u64, String)>,
}

struct World {
    host: Host,
    conns: Vec<ModelConn>,
    seq: u64,
    last_timeout: Option<std::time::Instant>,
    limit: usize,
}

impl World {
    fn new(confirm_when_streams_ready: bool) -> Self {
        let limit = 600;
        let host = Host::with_config(Config {
            origins: OriginPolicy::allow_any(),
            limits: Limits {
                max_queued_bytes: limit,
                max_held_frames: 4,
                on_hold_overflow: LimitAction::Disconnect { reconnect: true },
                ..Limits::default()
            },
            confirm_when_streams_ready,
            ..Config::default()
        });
        Self {
            host,
            conns: Vec::new(),
            seq: 0,
            last_timeout: None,
            limit,
        }
    }

    fn conn_at(&self, c: usize) -> Option<usize> {
        if self.conns.is_empty() {
            None
        } else {
            Some(c % self.conns.len())
        }
    }

    fn id(&self, c: usize) -> Option<ConnectionId> {
        self.conn_at(c).and_then(|i| self.conns[i].id)
    }

    fn index_of(&self, id: ConnectionId) -> Option<usize> {
        self.conns.iter().position(|m| m.id == Some(id))
    }

    fn apply(&mut self, op: Op) {
        let now = self.host.now;
        match op {
            Op::Open => {
                let request = HandshakeRequest::default();
                let incoming = self.host.server.handle_open(&request, now).unwrap();
                let user = format!("u{}", self.conns.len() % 3);
                self.conns.push(ModelConn {
                    id: Some(incoming.connection),
                    pending: Some(incoming.pending),
                    user,
                    ..ModelConn::default()
                });
            }
            Op::Accept(c) | Op::Reject(c) => {
                let Some(i) = self.conn_at(c) else { return };
                let Some(pending) = self.conns[i].pending.take() else {
                    return;
                };
                if let Op::Accept(_) = op {
                    let ok = self
                        .host
                        .server
                        .accept_connection(pending, Identity::new(self.conns[i].user.as_str()), now)
                        .is_ok();
                    self.conns[i].open = ok;
                } else {
                    let _ = self.host.server.reject_connection(pending, now);
                }
            }
            Op::Subscribe(c, k) => {
                let Some(id) = self.id(c) else { return };
                let _ = self
                    .host
                    .server
                    .handle_text(id, subscribe(IDENTIFIERS[k]).as_bytes(), now);
            }
            Op::Unsubscribe(c, k) => {
                let Some(id) = self.id(c) else { return };
                let _ =
                    self.host
                        .server
                        .handle_text(id, unsubscribe(IDENTIFIERS[k]).as_bytes(), now);
            }
            Op::Garbage(c, bytes) => {
                let Some(id) = self.id(c) else { return };
                let _ = self.host.server.handle_text(id, &bytes, now);
            }
            Op::Binary(c) => {
                let Some(id) = self.id(c) else { return };
                let _ = self.host.server.handle_binary(id, b"\x00\x01", now);
            }
            Op::Follow(c, k, s) | Op::Unfollow(c, k, s) => {
                let Some(i) = self.conn_at(c) else { return };
                let Some((sub, streams)) = self.conns[i].subs.get_mut(&k) else {
                    return;
                };
                if let Op::Follow(..) = op {
                    self.host
                        .server
                        .stream_from(*sub, STREAMS[s], StreamMode::Json, now)
                        .unwrap();
                    streams.insert(s);
                } else {
                    self.host
                        .server
                        .stop_stream_from(*sub, STREAMS[s], now)
                        .unwrap();
                    streams.remove(&s);
                }
            }
            Op::StopAll(c, k) => {
                let Some(i) = self.conn_at(c) else { return };
                let Some((sub, streams)) = self.conns[i].subs.get_mut(&k) else {
                    return;
                };
                self.host.server.stop_all_streams(*sub, now).unwrap();
                streams.clear();
            }
            Op::Broadcast(s) | Op::BroadcastExcept(s, _) => {
                self.seq += 1;
                let payload = format!(r#"{{"seq":{}}}"#, self.seq);
                let except = match op {
                    Op::BroadcastExcept(_, c) => self.id(c),
                    _ => None,
                };
                for m in &mut self.conns {
                    if !m.open || m.closing || m.id == except {
                        continue;
                    }
                    for (&k, (_, streams)) in &m.subs {
                        if streams.contains(&s) {
                            m.expected
                                .push((self.seq, data_frame(IDENTIFIERS[k], &payload)));
                        }
                    }
                }
                match except {
                    Some(e) => self
                        .host
                        .server
                        .broadcast_except(STREAMS[s], &payload, e, now),
                    None => self.host.server.broadcast(STREAMS[s], &payload, now),
                };
            }
            Op::Close(c) => {
                let Some(i) = self.conn_at(c) else { return };
                let Some(id) = self.conns[i].id.take() else {
                    return;
                };
                self.host.server.handle_close(id, now).unwrap();
                assert_eq!(self.host.server.subscriptions(id).count(), 0);
                let m = &mut self.conns[i];
                m.open = false;
                m.pending = None;
                m.subs.clear();
            }
            Op::Tick(ms) => {
                self.host.now += Duration::from_millis(ms);
                let now = self.host.now;
                self.host.server.handle_timeout(now);
                if let Some(t) = self.host.server.poll_timeout() {
                    assert!(t > now, "poll_timeout {t:?} not after the handled time");
                }
            }
            Op::Written(c, n) => {
                let Some(id) = self.id(c) else { return };
                let _ = self.host.server.handle_written(id, n, now);
            }
            Op::Restart => self.host.server.restart(now),
            Op::Ready(s) => self.host.server.stream_ready(STREAMS[s], now),
            Op::DisconnectUser(u) => {
                let _ = self
                    .host
                    .server
                    .disconnect_identity(&format!("u{}", u % 3), true, now);
            }
        }
        self.settle();
        self.check();
    }

    /// Plays the application (accept every subscription but `Forbidden`)
    /// and the socket (write only data frames into `received`, and leave
    /// queued bytes unreported so that slow consumers happen).
    fn settle(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.host.server.poll_event() {
                progressed = true;
                match event {
                    Event::SubscriptionRequested {
                        connection,
                        identifier,
                        pending,
                        ..
                    } => {
                        let k = IDENTIFIERS
                            .iter()
                            .position(|i| *i == identifier.as_str())
                            .unwrap();
                        let sub = pending.subscription();
                        let now = self.host.now;
                        if k == 4 {
                            self.host.server.reject_subscription(pending, now).unwrap();
                        } else {
                            let streams = initial_streams(k);
                            let mut accept = SubscriptionAccept::new();
                            for s in &streams {
                                accept = accept.stream(*s);
                            }
                            self.host
                                .server
                                .accept_subscription(pending, accept, now)
                                .unwrap();
                            let i = self.index_of(connection).unwrap();
                            let set = streams
                                .iter()
                                .map(|s| STREAMS.iter().position(|x| x == s).unwrap())
                                .collect();
                            self.conns[i].subs.insert(k, (sub, set));
                        }
                    }
                    Event::Unsubscribed {
                        connection,
                        identifier,
                        ..
                    } => {
                        let k = IDENTIFIERS
                            .iter()
                            .position(|i| *i == identifier.as_str())
                            .unwrap();
                        if let Some(i) = self.index_of(connection) {
                            self.conns[i].subs.remove(&k);
                        }
                    }
                    Event::Disconnecting { connection, .. } => {
                        if let Some(i) = self.index_of(connection) {
                            self.conns[i].closing = true;
                        }
                    }
                    // A message the garbage happened to spell: the action
                    // does nothing (later commands wait for the answer).
                    Event::Perform(perform) => {
                        let now = self.host.now;
                        self.host
                            .server
                            .complete_perform(perform.pending, PerformOutcome::new(), now)
                            .unwrap();
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.host.server.poll_transmit() {
                progressed = true;
                let Some(i) = self.index_of(t.connection) else {
                    continue;
                };
                if let Frame::Text(bytes) = t.frame {
                    let text = String::from_utf8(bytes.to_vec()).unwrap();
                    let value: serde_json::Value =
                        serde_json::from_str(&text).expect("frames are JSON");
                    if let Some(seq) = value
                        .get("message")
                        .and_then(|m| m.get("seq"))
                        .and_then(|s| s.as_u64())
                    {
                        self.conns[i].received.push((seq, text));
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn check(&mut self) {
        let live: usize = self
            .conns
            .iter()
            .filter_map(|m| m.id)
            .map(|id| self.host.server.subscriptions(id).count())
            .sum();
        assert_eq!(
            live,
            self.host.server.subscription_count(),
            "no subscription outlives its connection"
        );
        for m in &self.conns {
            if let Some(id) = m.id {
                assert!(self.host.server.queued_bytes(id) <= self.limit);
            }
            // Broadcasts arrive in publish order; one broadcast reaches the
            // connection once per subscribed identifier (in no set order).
            assert!(
                m.received.windows(2).all(|w| w[0].0 <= w[1].0),
                "out of order: {:?}",
                m.received
            );
            let mut received = m.received.clone();
            let mut expected = m.expected.clone();
            received.sort();
            expected.sort();
            if m.closing {
                // The model stops expecting at the disconnect: what came
                // before is a part of the expectation.
                assert!(
                    received.iter().all(|r| expected.binary_search(r).is_ok()),
                    "{received:?} vs {expected:?}"
                );
            } else {
                assert_eq!(received, expected);
            }
        }
        if let Some(t) = self.host.server.poll_timeout() {
            if let Some(last) = self.last_timeout {
                assert!(t >= last, "poll_timeout went back in time");
            }
            self.last_timeout = Some(t);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_keeps_the_invariants(
        ops in proptest::collection::vec(op(), 0..120),
        confirm_when_streams_ready in any::<bool>(),
    ) {
        let mut world = World::new(confirm_when_streams_ready);
        for op in ops {
            world.apply(op);
        }
        // Close everything: nothing may remain.
        for c in 0..world.conns.len() {
            world.apply(Op::Close(c));
        }
        prop_assert_eq!(world.host.server.subscription_count(), 0);
        prop_assert_eq!(world.host.server.stream_count(), 0);
        prop_assert_eq!(world.host.server.connection_count(), 0);
    }
}
