//! Properties of deadlines under random schedules: connections opened and
//! answered after random delays, subscriptions and performs answered,
//! vetoed or answered late, credentials set and moved, time advancing by
//! random steps and to the exact instants the core asks for. A model keeps
//! every deadline the application can know of (the decision's start plus its
//! timeout, the credential's expiry) and checks after every input:
//!
//! - no deadline fires early: each `DecisionExpired` and each `token_expired`
//!   disconnect comes from a call whose `now` is at or past that deadline,
//!   and is the connection's current one (a moved credential or an answered
//!   decision never fires);
//! - none is missed: after a call at `now`, no deadline at or before `now` is
//!   still pending, and `poll_timeout` is at or before every pending one (a
//!   host that sleeps until it never oversleeps one);
//! - `poll_timeout` is after `now`, and never earlier than it was before the
//!   input unless it is a deadline that input created;
//! - a late answer is `UsageError::DecisionExpired`, an answer on a closed or
//!   closing connection `StaleDecision`, any other answer `Ok`;
//! - a vetoed, expired or late perform sends nothing (its transmission and
//!   broadcast carry its number; only completed numbers may be seen);
//! - commands are handled in arrival order, each only when its connection has
//!   no pending decision;
//! - the timer store stays within `5 × (connections + streams + 1) + 64`
//!   entries however often deadlines move.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use cable_proto::server::{
    Config, ConnectionAccept, DecisionTimeouts, Event, ExpiredDecision, Frame, Limits,
    PendingConnection, PendingPerform, PendingSubscription, PerformOutcome, SubscriptionAccept,
};
use cable_proto::{
    CommandError, ConnectionId, DisconnectReason, HandshakeRequest, Identity, JsonText,
    OriginPolicy, SubscriptionId, UsageError,
};
use common::*;
use proptest::prelude::*;

const CONNECT: Duration = Duration::from_millis(1000);
const SUBSCRIBE: Duration = Duration::from_millis(700);
const PERFORM: Duration = Duration::from_millis(500);
const IDENTIFIERS: [&str; 3] = [
    r#"{"channel":"ChatChannel","room":"a"}"#,
    r#"{"channel":"ChatChannel","room":"b"}"#,
    r#"{"channel":"FeedChannel"}"#,
];

#[derive(Debug, Clone)]
enum Op {
    Open,
    /// Accept with a credential expiring that many ms from now (0: already).
    Accept(usize, Option<u64>),
    Reject(usize),
    Subscribe(usize, usize),
    Message(usize, usize),
    /// Answer the oldest subscription token held: accept or reject.
    AnswerSubscription(usize, bool),
    /// Answer the oldest perform token held: complete or veto.
    AnswerPerform(usize, bool),
    SetExpiry(usize, Option<u64>),
    /// Move the credential later this many times in a row.
    Refresh(usize, u8),
    Advance(u64),
    /// Advance to exactly `poll_timeout`, as a host's run loop does.
    AdvanceToNext,
    /// Advance to 1 ns before `poll_timeout`.
    AdvanceJustBefore,
    Close(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0usize..5;
    let k = 0usize..IDENTIFIERS.len();
    let ms = prop_oneof![Just(0u64), 1u64..1500];
    prop_oneof![
        3 => Just(Op::Open),
        3 => (c.clone(), proptest::option::of(ms.clone())).prop_map(|(c, e)| Op::Accept(c, e)),
        1 => c.clone().prop_map(Op::Reject),
        4 => (c.clone(), k.clone()).prop_map(|(c, k)| Op::Subscribe(c, k)),
        5 => (c.clone(), k).prop_map(|(c, k)| Op::Message(c, k)),
        4 => (c.clone(), any::<bool>()).prop_map(|(c, a)| Op::AnswerSubscription(c, a)),
        5 => (c.clone(), any::<bool>()).prop_map(|(c, a)| Op::AnswerPerform(c, a)),
        2 => (c.clone(), proptest::option::of(ms)).prop_map(|(c, e)| Op::SetExpiry(c, e)),
        1 => (c.clone(), 1u8..60).prop_map(|(c, n)| Op::Refresh(c, n)),
        4 => (0u64..1200).prop_map(Op::Advance),
        3 => Just(Op::AdvanceToNext),
        2 => Just(Op::AdvanceJustBefore),
        1 => c.prop_map(Op::Close),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connection,
    Subscription,
    Perform,
}

#[derive(Debug)]
enum Token {
    Connection(PendingConnection),
    Subscription(PendingSubscription, usize),
    Perform(PendingPerform, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Subscribe(usize),
    Message(usize, u64),
}

#[derive(Debug)]
struct Conn {
    id: ConnectionId,
    /// Tokens the application holds, with the model's number of their decision.
    tokens: Vec<(u32, Token)>,
    decisions: u32,
    /// The decision the core waits for: number, deadline, kind.
    current: Option<(u32, Instant, Kind)>,
    last_expired: Option<u32>,
    open: bool,
    closing: bool,
    closed: bool,
    expiry: Option<Instant>,
    live: BTreeMap<usize, SubscriptionId>,
    /// Commands sent and not yet handled, in arrival order.
    sent: VecDeque<Sent>,
}

struct World {
    host: Host,
    conns: Vec<Conn>,
    next_perform: u64,
    completed: BTreeSet<u64>,
    /// Deadlines the current input created.
    created: Vec<Instant>,
    last_poll: Instant,
}

impl World {
    fn new() -> Self {
        let host = Host::with_config(Config {
            origins: OriginPolicy::allow_any(),
            limits: Limits {
                max_held_frames: 10_000,
                max_held_bytes: usize::MAX,
                max_queued_bytes: usize::MAX,
                ..Limits::default()
            },
            decision_timeouts: DecisionTimeouts {
                connect: Some(CONNECT),
                subscribe: Some(SUBSCRIBE),
                perform: Some(PERFORM),
            },
            ..Config::default()
        });
        let last_poll = host.server.poll_timeout().unwrap();
        Self {
            host,
            conns: Vec::new(),
            next_perform: 0,
            completed: BTreeSet::new(),
            created: Vec::new(),
            last_poll,
        }
    }

    fn pick(&self, c: usize) -> Option<usize> {
        (!self.conns.is_empty()).then(|| c % self.conns.len())
    }

    fn by_id(&mut self, id: ConnectionId) -> &mut Conn {
        self.conns
            .iter_mut()
            .find(|m| m.id == id)
            .expect("a known connection")
    }

    /// What answering decision `number` of connection `i` must return.
    fn expected(&self, i: usize, number: u32) -> Result<(), UsageError> {
        let m = &self.conns[i];
        if m.closed {
            Err(UsageError::StaleDecision)
        } else if m.last_expired == Some(number) {
            Err(UsageError::DecisionExpired)
        } else if !m.closing && m.current.is_some_and(|(n, _, _)| n == number) {
            Ok(())
        } else {
            Err(UsageError::StaleDecision)
        }
    }

    fn take_token(&mut self, i: usize, kind: Kind) -> Option<(u32, Token)> {
        let tokens = &mut self.conns[i].tokens;
        let at = tokens.iter().position(|(_, t)| {
            matches!(
                (t, kind),
                (Token::Connection(_), Kind::Connection)
                    | (Token::Subscription(..), Kind::Subscription)
                    | (Token::Perform(..), Kind::Perform)
            )
        })?;
        Some(tokens.remove(at))
    }

    fn send(&mut self, i: usize, sent: Sent) {
        let m = &self.conns[i];
        if m.closed {
            return;
        }
        let (id, closing) = (m.id, m.closing);
        let frame = match sent {
            Sent::Subscribe(k) => subscribe(IDENTIFIERS[k]),
            Sent::Message(k, n) => {
                message(IDENTIFIERS[k], &format!(r#"{{"action":"speak","n":{n}}}"#))
            }
        };
        let now = self.host.now;
        self.host
            .server
            .handle_text(id, frame.as_bytes(), now)
            .unwrap();
        if !closing {
            self.conns[i].sent.push_back(sent);
        }
    }

    fn apply(&mut self, op: Op) {
        let now = self.host.now;
        self.created.clear();
        match op {
            Op::Open => {
                let incoming = self
                    .host
                    .server
                    .handle_open(&HandshakeRequest::default(), now)
                    .unwrap();
                self.created.push(now + CONNECT);
                self.conns.push(Conn {
                    id: incoming.connection,
                    tokens: vec![(1, Token::Connection(incoming.pending))],
                    decisions: 1,
                    current: Some((1, now + CONNECT, Kind::Connection)),
                    last_expired: None,
                    open: false,
                    closing: false,
                    closed: false,
                    expiry: None,
                    live: BTreeMap::new(),
                    sent: VecDeque::new(),
                });
            }
            Op::Accept(c, _) | Op::Reject(c) => {
                let Some(i) = self.pick(c) else { return };
                let Some((number, Token::Connection(pending))) =
                    self.take_token(i, Kind::Connection)
                else {
                    return;
                };
                let expected = self.expected(i, number);
                let result = if let Op::Accept(_, expiry) = op {
                    let at = expiry.map(|ms| now + Duration::from_millis(ms));
                    let mut accept = ConnectionAccept::new(Identity::new("u"));
                    if let Some(at) = at {
                        accept = accept.expires_at(at);
                    }
                    let result = self.host.server.accept_connection(pending, accept, now);
                    if result.is_ok() {
                        let m = &mut self.conns[i];
                        m.open = true;
                        m.expiry = at;
                        self.created.extend(at);
                    }
                    result
                } else {
                    self.host.server.reject_connection(pending, now)
                };
                assert_eq!(result, expected, "{op:?}");
                if result.is_ok() {
                    self.conns[i].current = None;
                }
            }
            Op::Subscribe(c, k) => {
                let Some(i) = self.pick(c) else { return };
                self.send(i, Sent::Subscribe(k));
            }
            Op::Message(c, k) => {
                let Some(i) = self.pick(c) else { return };
                self.next_perform += 1;
                self.send(i, Sent::Message(k, self.next_perform));
            }
            Op::AnswerSubscription(c, accept) => {
                let Some(i) = self.pick(c) else { return };
                let Some((number, Token::Subscription(pending, k))) =
                    self.take_token(i, Kind::Subscription)
                else {
                    return;
                };
                let expected = self.expected(i, number);
                let sub = pending.subscription();
                let result = if accept {
                    let accept = SubscriptionAccept::new()
                        .stream("room")
                        .transmit(JsonText::new(r#"{"hello":true}"#).unwrap());
                    self.host.server.accept_subscription(pending, accept, now)
                } else {
                    self.host.server.reject_subscription(pending, now)
                };
                assert_eq!(result, expected, "{op:?}");
                if result.is_ok() {
                    self.conns[i].current = None;
                    if accept {
                        self.conns[i].live.insert(k, sub);
                    }
                }
            }
            Op::AnswerPerform(c, complete) => {
                let Some(i) = self.pick(c) else { return };
                let Some((number, Token::Perform(pending, n))) = self.take_token(i, Kind::Perform)
                else {
                    return;
                };
                let expected = self.expected(i, number);
                let result = if complete {
                    // Marked before the frames are looked at: a frame of `n`
                    // may only be seen once it is completed.
                    if expected.is_ok() {
                        self.completed.insert(n);
                    }
                    let payload = JsonText::new(format!(r#"{{"perform":{n}}}"#)).unwrap();
                    let outcome = PerformOutcome::new()
                        .transmit(payload.clone())
                        .broadcast("room", payload);
                    self.host.server.complete_perform(pending, outcome, now)
                } else {
                    self.host.server.veto_perform(pending, now)
                };
                assert_eq!(result, expected, "{op:?}");
                if result.is_ok() {
                    self.conns[i].current = None;
                }
            }
            Op::SetExpiry(c, expiry) => {
                let Some(i) = self.pick(c) else { return };
                let at = expiry.map(|ms| now + Duration::from_millis(ms));
                self.set_expiry(i, at);
            }
            Op::Refresh(c, times) => {
                let Some(i) = self.pick(c) else { return };
                for t in 0..u64::from(times) {
                    let at = now + Duration::from_millis(1000 + 10 * t);
                    self.set_expiry(i, Some(at));
                }
            }
            Op::Advance(ms) => self.advance_to(now + Duration::from_millis(ms)),
            Op::AdvanceToNext => {
                let next = self.host.server.poll_timeout().unwrap();
                self.advance_to(next.max(now));
            }
            Op::AdvanceJustBefore => {
                let next = self.host.server.poll_timeout().unwrap();
                let before = next - Duration::from_nanos(1);
                self.advance_to(before.max(now));
            }
            Op::Close(c) => {
                let Some(i) = self.pick(c) else { return };
                if self.conns[i].closed {
                    return;
                }
                let id = self.conns[i].id;
                self.host.server.handle_close(id, now).unwrap();
                let m = &mut self.conns[i];
                m.closed = true;
                m.current = None;
                m.sent.clear();
                m.live.clear();
            }
        }
        self.settle();
        self.check();
    }

    fn set_expiry(&mut self, i: usize, at: Option<Instant>) {
        let m = &self.conns[i];
        if m.closed || !m.open {
            return;
        }
        let (id, closing) = (m.id, m.closing);
        let now = self.host.now;
        let result = self.host.server.set_expiry(id, at, now);
        if closing {
            assert_eq!(result, Err(UsageError::ConnectionNotOpen));
            return;
        }
        result.unwrap();
        self.conns[i].expiry = at;
        self.created.extend(at);
        // A deadline already due closes the connection within the call.
        self.settle();
    }

    fn advance_to(&mut self, to: Instant) {
        self.host.now = to;
        self.host.server.handle_timeout(to);
    }

    /// Plays the application's half: every event is checked against the
    /// model and the model follows it.
    fn settle(&mut self) {
        let now = self.host.now;
        while let Some(event) = self.host.server.poll_event() {
            match event {
                Event::SubscriptionRequested {
                    connection,
                    identifier,
                    pending,
                    ..
                } => {
                    let m = self.by_id(connection);
                    let k = IDENTIFIERS
                        .iter()
                        .position(|i| *i == identifier.as_str())
                        .unwrap();
                    assert_eq!(
                        m.current, None,
                        "a command handled while a decision is pending"
                    );
                    assert_eq!(m.sent.pop_front(), Some(Sent::Subscribe(k)), "out of order");
                    m.decisions += 1;
                    let number = m.decisions;
                    m.current = Some((number, now + SUBSCRIBE, Kind::Subscription));
                    m.tokens.push((number, Token::Subscription(pending, k)));
                    self.created.push(now + SUBSCRIBE);
                }
                Event::Perform(perform) => {
                    let m = self.by_id(perform.connection);
                    let k = IDENTIFIERS
                        .iter()
                        .position(|i| *i == perform.identifier.as_str())
                        .unwrap();
                    let n = perform.data_value()["n"].as_u64().unwrap();
                    assert_eq!(
                        m.current, None,
                        "a command handled while a decision is pending"
                    );
                    assert_eq!(
                        m.sent.pop_front(),
                        Some(Sent::Message(k, n)),
                        "out of order"
                    );
                    assert_eq!(m.live.get(&k), Some(&perform.subscription));
                    m.decisions += 1;
                    let number = m.decisions;
                    m.current = Some((number, now + PERFORM, Kind::Perform));
                    m.tokens.push((number, Token::Perform(perform.pending, n)));
                    self.created.push(now + PERFORM);
                }
                Event::CommandFailed { connection, error } => {
                    let m = self.by_id(connection);
                    if error == CommandError::Closing {
                        assert!(m.closing);
                        continue;
                    }
                    assert_eq!(
                        m.current, None,
                        "a command handled while a decision is pending"
                    );
                    match (m.sent.pop_front(), &error) {
                        (Some(Sent::Subscribe(k)), CommandError::AlreadySubscribed { .. }) => {
                            assert!(m.live.contains_key(&k));
                        }
                        (Some(Sent::Message(k, _)), CommandError::UnknownSubscription { .. }) => {
                            assert!(!m.live.contains_key(&k));
                        }
                        other => panic!("unexpected failure {other:?}"),
                    }
                }
                Event::DecisionExpired {
                    connection,
                    decision,
                } => {
                    let m = self.by_id(connection);
                    let Some((number, deadline, kind)) = m.current.take() else {
                        panic!("{decision:?} expired with nothing pending")
                    };
                    assert!(deadline <= now, "fired {:?} early", deadline - now);
                    match (&decision, kind) {
                        (ExpiredDecision::Connection, Kind::Connection)
                        | (ExpiredDecision::Subscription { .. }, Kind::Subscription)
                        | (ExpiredDecision::Perform, Kind::Perform) => {}
                        other => panic!("expired {other:?}"),
                    }
                    m.last_expired = Some(number);
                }
                Event::Disconnecting {
                    connection, reason, ..
                } => {
                    let m = self.by_id(connection);
                    if reason == DisconnectReason::TokenExpired {
                        let at = m
                            .expiry
                            .expect("a token_expired without a credential deadline");
                        assert!(at <= now, "token_expired {:?} early", at - now);
                    }
                    m.closing = true;
                    m.current = None;
                    m.expiry = None;
                    m.sent.clear();
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
                    self.by_id(connection).live.remove(&k);
                }
                Event::Received { .. } | Event::UpstreamTimedOut(_) => panic!("{event:?}"),
                _ => {}
            }
        }
        while let Some(t) = self.host.server.poll_transmit() {
            let Frame::Text(bytes) = t.frame else {
                continue;
            };
            let frame: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(n) = frame["message"]["perform"].as_u64() {
                assert!(
                    self.completed.contains(&n),
                    "perform {n} was not completed: {frame}"
                );
            }
        }
    }

    fn check(&mut self) {
        let now = self.host.now;
        let poll = self.host.server.poll_timeout().unwrap();
        assert!(poll > now, "poll_timeout {poll:?} is not after now {now:?}");
        assert!(
            poll >= self.last_poll || self.created.contains(&poll),
            "poll_timeout went back to a deadline no input set"
        );
        self.last_poll = poll;
        for m in &self.conns {
            if m.closed || m.closing {
                continue;
            }
            if let Some((_, deadline, kind)) = m.current {
                assert!(deadline > now, "{kind:?} deadline missed");
                assert!(poll <= deadline, "poll_timeout after a {kind:?} deadline");
            }
            if let (true, Some(at)) = (m.open, m.expiry) {
                assert!(at > now, "credential deadline missed");
                assert!(poll <= at, "poll_timeout after a credential deadline");
            }
        }
        let bound =
            5 * (self.host.server.connection_count() + self.host.server.stream_count() + 1) + 64;
        assert!(
            self.host.server.timer_count() <= bound,
            "{} timers for bound {bound}",
            self.host.server.timer_count()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn deadlines_fire_on_time_and_commands_wait_for_decisions(
        ops in proptest::collection::vec(op(), 0..150),
    ) {
        let mut world = World::new();
        for op in ops {
            world.apply(op);
        }
        // Let every deadline pass (each expiry lets the next held command
        // open a decision of its own): nothing is left pending.
        let pending = |world: &World| {
            world
                .conns
                .iter()
                .any(|m| !m.closed && !m.closing && m.current.is_some())
        };
        for _ in 0..1_000 {
            if !pending(&world) {
                break;
            }
            world.apply(Op::AdvanceToNext);
        }
        prop_assert!(!pending(&world));
        for c in 0..world.conns.len() {
            world.apply(Op::Close(c));
        }
        prop_assert_eq!(world.host.server.connection_count(), 0);
        prop_assert_eq!(world.host.server.stream_count(), 0);
    }
}
