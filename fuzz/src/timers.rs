//! Target `timers`: the core's deadlines and decisions under arbitrary time.
//!
//! A few connections (Action Cable or a custom protocol) are opened and
//! accepted or rejected after random delays; they subscribe and perform,
//! and the host answers, vetoes, forgets or answers late; credentials get
//! expiries that are set, moved, refreshed and cleared; streams are reported
//! ready or not; broadcasts go out; time advances by random amounts (zero,
//! a little, up to the next deadline or just before it, days, years), calls
//! sometimes pass a `now` behind the core's clock, and `handle_timeout` runs
//! at `poll_timeout` or at random times. The configuration draws
//! `DecisionTimeouts`, `upstream_ready_timeout`, `confirm_when_streams_ready`,
//! the ping interval and the hold bound.
//!
//! The host keeps its own model of every deadline, computed from the core's
//! clock `T` (the latest `now` passed: the core counts a deadline from its
//! own clock when it opens the decision) and checks after every call:
//!
//! - **nothing fires early**: `DecisionExpired` only for the decision the
//!   connection waits for, of the right kind, once `T >= ` its deadline; a
//!   `token_expired` disconnect only once `T >=` the expiry the host set;
//!   `UpstreamTimedOut` only for a stream not ready once `T >=` its deadline;
//!   a confirmation that waits for streams only once they are all ready;
//! - **nothing is missed**: after `handle_timeout`, `set_expiry` and
//!   `accept_connection` (calls that end with every due deadline fired) no
//!   deadline `<= T` is still pending in the model (decision, expiry,
//!   upstream); after any other call only one opened by that very call and
//!   due exactly at `T` (a zero timeout) may be; a subscription whose
//!   streams are all ready is confirmed;
//! - **`poll_timeout`** is never later than any pending deadline or the next
//!   ping beat, is never earlier than `T` unless it is the ping beat that is
//!   already due (no `handle_timeout` since), and after `handle_timeout(t)`
//!   it is later than `t` (a host looping on it never spins);
//! - **answers**: an answer after the deadline passed is refused with
//!   `UsageError::DecisionExpired` (or `StaleDecision` once a later decision
//!   of the connection expired, or the connection is gone), never `Ok`; an
//!   answer refused so must come with the expiry (or the close) in the same
//!   call; an `Ok` answer means the deadline had not passed;
//! - **a vetoed, expired or late perform sends nothing**: every frame that
//!   carries a perform's mark comes out in the call that completed it;
//! - **order**: while a connection's decision is pending (or its
//!   confirmation waits for streams) none of its later commands is handled:
//!   no `SubscriptionRequested`, `Perform` or command error of its own comes
//!   out, performs come out in the order sent, a custom connection's frames
//!   come out as `Received` in the order sent and only once it is accepted;
//!   and a connection that waits for nothing holds no frame;
//! - **the timer store stays bounded**: `timer_count()` is at most
//!   `max(64, 2 * (2 * connections + streams))`, as counted before the call,
//!   plus the deadlines the call itself set (the store's compaction rule);
//! - no panic.
//!
//! Compiled with `std`, `cable_proto`, `serde_json` and `bytes` only, like
//! the other cable-proto targets.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use cable_proto::server::{
    Config, ConnectionAccept, DecisionTimeouts, Envelope, Event, ExpiredDecision, LimitAction,
    Limits, PendingConnection, PendingPerform, PendingSubscription, PerformOutcome, Protocol,
    Server, SubscriptionAccept, UnsubscribeCause,
};
use cable_proto::{
    CommandError, ConnectionId, DisconnectReason, HandshakeRequest, Identity, JsonText,
    OriginPolicy, StreamMode, SubscriptionId, UsageError,
};
use serde_json::Value;

use crate::frames::ServerFrame;
use crate::input::Input;
use crate::wire::{Seen, Wire};

/// Most operations one input runs.
pub const MAX_OPS: usize = 512;

/// Unix time at the start (ping payloads count from it).
const UNIX_START: Duration = Duration::from_secs(1_700_000_000);

/// Decision and upstream timeouts: none, zero, short, Rails-like, and one
/// past what an `Instant` can hold (a host's "never").
const TIMEOUTS: &[Option<Duration>] = &[
    None,
    Some(Duration::ZERO),
    Some(Duration::from_millis(1)),
    Some(Duration::from_millis(50)),
    Some(Duration::from_secs(3)),
    Some(Duration::from_secs(u64::MAX)),
];

/// Ping intervals.
const PINGS: &[Duration] = &[
    Duration::from_millis(1),
    Duration::from_millis(250),
    Duration::from_secs(3),
    Duration::from_secs(3600),
];

/// Credential lifetimes, from the call's `now`.
const LIFETIMES: &[Duration] = &[
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(50),
    Duration::from_secs(3),
    Duration::from_secs(3600),
    Duration::from_secs(1_000_000),
];

/// Streams.
const STREAMS: &[&str] = &["s0", "s1", "s2", "s3"];

/// Identifiers (all valid).
const IDENTIFIERS: &[&str] = &[
    r#"{"channel":"TimerChannel","n":0}"#,
    r#"{"channel":"TimerChannel","n":1}"#,
    r#"{"channel":"TimerChannel","n":2}"#,
    r#"{"channel":"TimerChannel","n":3}"#,
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut host = Host::new(&mut input);
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        host.step(&mut input);
        ops += 1;
    }
    host.finish();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Open,
    Closing,
}

/// What a pending decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connection,
    Subscription { sub: SubscriptionId, ident: usize },
    Perform { number: u64 },
}

/// What a connection's commands wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Blocked {
    No,
    /// A decision of the application: the token is out.
    Decision {
        seq: u32,
        kind: Kind,
        deadline: Option<Instant>,
        /// The call that opened it.
        step: u64,
    },
    /// A subscription was accepted; its confirmation waits for streams.
    Streams {
        ident: usize,
        streams: Vec<String>,
    },
}

#[derive(Debug)]
struct Conn {
    id: ConnectionId,
    custom: bool,
    state: State,
    blocked: Blocked,
    /// Decisions numbered as the core numbers them (the connection's is 1).
    seq: u32,
    /// The number of the last decision that expired (0: none).
    last_expired: u32,
    expiry: Option<Instant>,
    /// Live subscriptions (confirmed or waiting for streams), by identifier.
    subs: BTreeMap<usize, SubscriptionId>,
    /// Frames sent.
    sent: u32,
    /// The sequence number of the last perform reported.
    last_perform: u32,
    /// Custom protocol: frames sent and not reported yet, in order.
    unreceived: VecDeque<u32>,
}

#[derive(Debug)]
enum Handle {
    Connection(PendingConnection),
    Subscription(PendingSubscription),
    Perform(PendingPerform),
}

#[derive(Debug)]
struct Token {
    conn: ConnectionId,
    seq: u32,
    handle: Handle,
    /// A perform's number (its mark in frames).
    number: u64,
}

#[derive(Debug)]
struct StreamModel {
    ready: bool,
    deadline: Option<Instant>,
    step: u64,
}

/// A call on something the model had live, refused: the call itself must
/// have ended it before its own work (it fires what is due first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// An answer to decision `seq` of the connection refused as expired:
    /// the decision expired in this call, and it is the last to.
    Expired(ConnectionId, u32),
    /// An answer refused as stale: the connection closed in this call, or
    /// the decision expired in it and a later one of the connection too.
    Stale(ConnectionId, u32),
    /// `ConnectionNotOpen` or `UnknownSubscription`: the connection closed
    /// in this call.
    Closed(ConnectionId),
}

struct Host {
    server: Server,
    wire: Wire,
    timeouts: DecisionTimeouts,
    upstream: Option<Duration>,
    confirm_when_ready: bool,
    start: Instant,
    /// The host's time.
    wall: Instant,
    /// How far behind `wall` calls pass their `now`.
    lag: Duration,
    /// The core's clock: the latest `now` passed.
    clock: Instant,
    interval: Duration,
    /// The next ping beat, as the core must schedule it.
    next_ping: Instant,
    conns: Vec<Conn>,
    tokens: Vec<Token>,
    late: Vec<Token>,
    streams: BTreeMap<String, StreamModel>,
    performs: u64,
    broadcasts: u64,
    /// Print every step (`CABLE_FUZZ_TRACE` set).
    trace: bool,
    /// Calls made so far (the number of the latest).
    calls: u64,
    /// The latest call that ends with every due deadline fired.
    strict_call: u64,
    // Per step.
    timeout_at: Option<Instant>,
    pinged: bool,
    completed: BTreeSet<u64>,
    rejects: Vec<(ConnectionId, usize)>,
    refused: Vec<Refused>,
    sent_now: Option<(ConnectionId, u32)>,
    ready_now: Option<String>,
    unsubscribed_now: Option<SubscriptionId>,
    closed_now: Option<ConnectionId>,
    late_answer: Option<(ConnectionId, u32, Result<(), UsageError>)>,
    pushed: usize,
    bound_before: usize,
    calls_before: u64,
}

fn ident_index(identifier: &str) -> usize {
    IDENTIFIERS
        .iter()
        .position(|i| *i == identifier)
        .unwrap_or_else(|| panic!("unknown identifier {identifier}"))
}

/// The perform marks (`"p":N`) a frame carries, wherever they are nested.
fn marks(value: &Value, out: &mut Vec<u64>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "p" {
                    if let Some(n) = value.as_u64() {
                        out.push(n);
                    }
                }
                marks(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| marks(v, out)),
        _ => {}
    }
}

impl Host {
    fn new(input: &mut Input<'_>) -> Self {
        let flags = input.byte();
        let timeouts = DecisionTimeouts {
            connect: *input.pick(TIMEOUTS),
            subscribe: *input.pick(TIMEOUTS),
            perform: *input.pick(TIMEOUTS),
        };
        let upstream = *input.pick(TIMEOUTS);
        let interval = *input.pick(PINGS);
        let confirm_when_ready = flags & 1 != 0;
        let config = Config {
            ping_interval: interval,
            origins: OriginPolicy {
                allow_any: true,
                ..OriginPolicy::default()
            },
            limits: Limits {
                max_held_frames: *input.pick(&[1, 4, 64]),
                on_hold_overflow: if flags & 2 != 0 {
                    LimitAction::Ignore
                } else {
                    LimitAction::Disconnect { reconnect: true }
                },
                ..Limits::default()
            },
            confirm_when_streams_ready: confirm_when_ready,
            decision_timeouts: timeouts,
            upstream_ready_timeout: upstream,
            hash_seed: 0x7157,
            ..Config::default()
        };
        // The host reads the clock once, for the epoch of its virtual time.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let wire = Wire::new(config.limits.max_queued_bytes);
        let server = Server::new(config, start, UNIX_START);
        let interval = interval.max(Duration::from_millis(1));
        Self {
            server,
            wire,
            timeouts,
            upstream,
            confirm_when_ready,
            start,
            wall: start,
            lag: Duration::ZERO,
            clock: start,
            interval,
            next_ping: start + interval,
            conns: Vec::new(),
            tokens: Vec::new(),
            late: Vec::new(),
            streams: BTreeMap::new(),
            performs: 0,
            broadcasts: 0,
            trace: std::env::var_os("CABLE_FUZZ_TRACE").is_some(),
            calls: 0,
            strict_call: 0,
            timeout_at: None,
            pinged: false,
            completed: BTreeSet::new(),
            rejects: Vec::new(),
            refused: Vec::new(),
            sent_now: None,
            ready_now: None,
            unsubscribed_now: None,
            closed_now: None,
            late_answer: None,
            pushed: 0,
            bound_before: 0,
            calls_before: 0,
        }
    }

    /// The `now` calls pass: the host's time minus the lag.
    fn call_time(&self) -> Instant {
        self.wall
            .checked_sub(self.lag)
            .map_or(self.start, |t| t.max(self.start))
    }

    /// A call with `now` is about to be made: the core's clock follows.
    fn begin_call(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        self.calls += 1;
    }

    /// The `now` of the next call, which is about to be made.
    fn now(&mut self) -> Instant {
        let now = self.call_time();
        self.begin_call(now);
        now
    }

    fn conn_at(&self, index: usize) -> Option<ConnectionId> {
        (!self.conns.is_empty()).then(|| self.conns[index % self.conns.len()].id)
    }

    fn conn(&mut self, id: ConnectionId) -> &mut Conn {
        self.conns
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} is not a known connection"))
    }

    fn known(&self, id: ConnectionId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }

    /// A deadline `timeout` after the core's clock (none past what an
    /// `Instant` holds).
    fn after(&self, timeout: Option<Duration>) -> Option<Instant> {
        timeout.and_then(|t| self.clock.checked_add(t))
    }

    /// Takes the outstanding token at `which` among those `select` accepts.
    fn take_token(&mut self, which: usize, select: fn(&Handle) -> bool) -> Option<Token> {
        let at: Vec<usize> = (0..self.tokens.len())
            .filter(|&i| select(&self.tokens[i].handle))
            .collect();
        (!at.is_empty()).then(|| self.tokens.remove(at[which % at.len()]))
    }

    /// The deadline of decision `seq` of `conn`, as the model has it.
    fn deadline_of(&self, conn: ConnectionId, seq: u32) -> Option<Instant> {
        match self.known(conn).map(|c| &c.blocked) {
            Some(Blocked::Decision {
                seq: s, deadline, ..
            }) if *s == seq => *deadline,
            other => panic!("outstanding token {seq} of {conn} without its decision: {other:?}"),
        }
    }

    /// Checks the result of an answer to outstanding decision `seq` of
    /// `conn`; `true` when it was taken.
    fn answered(&mut self, conn: ConnectionId, seq: u32, result: Result<(), UsageError>) -> bool {
        let deadline = self.deadline_of(conn, seq);
        match result {
            Ok(()) => {
                assert!(
                    deadline.is_none_or(|d| d > self.clock),
                    "an answer after its deadline ({deadline:?}, clock {:?}) was taken",
                    self.clock
                );
                true
            }
            Err(UsageError::DecisionExpired) => {
                self.refused.push(Refused::Expired(conn, seq));
                false
            }
            Err(UsageError::StaleDecision) => {
                self.refused.push(Refused::Stale(conn, seq));
                false
            }
            Err(other) => panic!("answer to an outstanding decision refused: {other}"),
        }
    }

    /// Forgets what the previous step expected.
    fn begin_step(&mut self) {
        self.timeout_at = None;
        self.pinged = false;
        self.completed.clear();
        self.rejects.clear();
        self.refused.clear();
        self.sent_now = None;
        self.ready_now = None;
        self.unsubscribed_now = None;
        self.closed_now = None;
        self.late_answer = None;
        self.pushed = 0;
        self.bound_before = 2 * self.server.connection_count() + self.server.stream_count();
        self.calls_before = self.calls;
    }

    fn step(&mut self, input: &mut Input<'_>) {
        self.begin_step();
        let code = input.byte() % 24;
        if self.trace {
            eprintln!(
                "-- op {code} (call {}, clock +{:?})",
                self.calls + 1,
                self.clock - self.start
            );
        }
        match code {
            0 | 1 => self.open(input.below(3) == 0, input.byte()),
            2 | 3 => {
                let which = input.below(256);
                let lifetime = (input.below(3) == 0).then(|| input.below(LIFETIMES.len() + 1));
                let transmit = input.bool();
                self.accept_connection(which, lifetime, transmit);
            }
            4 => self.reject_connection(input.below(256)),
            5..=7 => self.send(
                input.below(256),
                input.byte(),
                input.below(IDENTIFIERS.len()),
            ),
            8 | 9 => self.answer_subscription(input.below(256), input.byte()),
            10 | 11 => self.answer_perform(input.below(256), input.byte()),
            12 => self.answer_late(input.below(256), input.byte()),
            13 => {
                let conn = input.below(256);
                let lifetime = input.below(LIFETIMES.len() + 3);
                self.set_expiry(conn, lifetime);
            }
            14 => self.refresh_expiry(input.below(256), 1 + input.below(128)),
            15 => self.stream_ready(input.below(STREAMS.len())),
            16 => self.broadcast(input.below(STREAMS.len()), input.bool()),
            17 | 18 => self.advance(input),
            19 | 20 => self.timeout(input),
            21 => self.close(input.below(256)),
            _ => match input.below(4) {
                0 => self.disconnect(input.below(256)),
                1 => self.unsubscribe(input.below(256), input.below(IDENTIFIERS.len())),
                2 => self.join(input.below(256), input.below(STREAMS.len())),
                _ => self.lag = Duration::from_millis(u64::from(input.u16())),
            },
        }
        self.settle();
        self.check();
    }

    // ------------------------------------------------------------ operations

    fn open(&mut self, custom: bool, number: u8) {
        let request = HandshakeRequest {
            host: Some("example.com"),
            origin: Some("http://example.com"),
            secure: false,
            protocols: &["actioncable-v1-json"],
        };
        let protocol = if custom {
            Protocol::Custom(u16::from(number))
        } else {
            Protocol::ActionCable
        };
        let now = self.now();
        let incoming = self
            .server
            .handle_open_as(&request, protocol, now)
            .expect("every origin is allowed");
        assert_eq!(incoming.protocol, protocol);
        let id = incoming.connection;
        assert_eq!(incoming.pending.connection(), id);
        if custom {
            assert_eq!(
                incoming.subprotocol, None,
                "a custom protocol negotiates its own"
            );
            self.wire.open_custom(id);
        } else {
            self.wire.open(id);
        }
        let deadline = self.after(self.timeouts.connect);
        self.pushed += usize::from(self.timeouts.connect.is_some());
        self.conns.push(Conn {
            id,
            custom,
            state: State::Pending,
            blocked: Blocked::Decision {
                seq: 1,
                kind: Kind::Connection,
                deadline,
                step: self.calls,
            },
            seq: 1,
            last_expired: 0,
            expiry: None,
            subs: BTreeMap::new(),
            sent: 0,
            last_perform: 0,
            unreceived: VecDeque::new(),
        });
        self.tokens.push(Token {
            conn: id,
            seq: 1,
            handle: Handle::Connection(incoming.pending),
            number: 0,
        });
    }

    /// An expiry `LIFETIMES[lifetime]` after `now`, or one second before it
    /// past the end of the list.
    fn expiry_at(&self, now: Instant, lifetime: usize) -> Instant {
        match LIFETIMES.get(lifetime) {
            Some(&d) => now + d,
            None => now
                .checked_sub(Duration::from_secs(1))
                .map_or(self.start, |t| t.max(self.start)),
        }
    }

    fn accept_connection(&mut self, which: usize, lifetime: Option<usize>, transmit: bool) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Connection(pending),
            ..
        }) = self.take_token(which, |h| matches!(h, Handle::Connection(_)))
        else {
            return;
        };
        let now = self.now();
        let mut accept = ConnectionAccept::new(Identity::new("user"));
        let expiry = lifetime.map(|l| self.expiry_at(now, l));
        if let Some(at) = expiry {
            accept = accept.expires_at(at);
        }
        if transmit {
            accept = accept.transmit(JsonText::new(r#"{"hello":true}"#).expect("JSON"));
        }
        let result = self.server.accept_connection(pending, accept, now);
        self.strict_call = self.calls;
        if self.answered(conn, seq, result) {
            self.pushed += usize::from(expiry.is_some());
            let conn = self.conn(conn);
            conn.state = State::Open;
            conn.blocked = Blocked::No;
            // An accept without an expiry keeps one set while pending.
            if expiry.is_some() {
                conn.expiry = expiry;
            }
        }
    }

    fn reject_connection(&mut self, which: usize) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Connection(pending),
            ..
        }) = self.take_token(which, |h| matches!(h, Handle::Connection(_)))
        else {
            return;
        };
        let now = self.now();
        let result = self.server.reject_connection(pending, now);
        if self.answered(conn, seq, result) {
            self.conn(conn).blocked = Blocked::No;
        }
    }

    fn send(&mut self, conn: usize, kind: u8, ident: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let model = self.conn(id);
        model.sent += 1;
        let seq = model.sent;
        let frame = if model.custom {
            model.unreceived.push_back(seq);
            format!(r#"{{"seq":{seq}}}"#)
        } else {
            let identifier = IDENTIFIERS[ident];
            let command = match kind % 8 {
                0..=2 => serde_json::json!({"command": "subscribe", "identifier": identifier}),
                3 => serde_json::json!({"command": "unsubscribe", "identifier": identifier}),
                _ => serde_json::json!({
                    "command": "message",
                    "identifier": identifier,
                    "data": format!(r#"{{"action":"act","seq":{seq}}}"#),
                }),
            };
            command.to_string()
        };
        self.sent_now = Some((id, seq));
        let now = self.now();
        self.server
            .handle_text(id, frame.as_bytes(), now)
            .expect("handle_text on a known connection");
    }

    fn answer_subscription(&mut self, which: usize, how: u8) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Subscription(pending),
            ..
        }) = self.take_token(which, |h| matches!(h, Handle::Subscription(_)))
        else {
            return;
        };
        let sub = pending.subscription();
        let Some(Blocked::Decision {
            kind: Kind::Subscription { ident, .. },
            ..
        }) = self.known(conn).map(|c| c.blocked.clone())
        else {
            panic!("subscription token without its decision")
        };
        let now = self.now();
        match how % 4 {
            0 | 1 => {
                let mut accept = SubscriptionAccept::new();
                let mut streams: Vec<String> = Vec::new();
                for (i, name) in STREAMS.iter().enumerate() {
                    if how & (4 << i) != 0 {
                        accept = if how & 0x40 != 0 && i % 2 == 0 {
                            accept.stream_raw(*name)
                        } else {
                            accept.stream(*name)
                        };
                        streams.push((*name).to_owned());
                    }
                }
                if how & 0x80 != 0 {
                    // The same stream twice, in the other mode: one stream
                    // to wait for.
                    if let Some(first) = streams.first().cloned() {
                        accept = accept.stream_raw(first);
                    }
                }
                let result = self.server.accept_subscription(pending, accept, now);
                if self.answered(conn, seq, result) {
                    let conn = self.conn(conn);
                    conn.subs.insert(ident, sub);
                    conn.blocked = Blocked::Streams { ident, streams };
                }
            }
            2 => {
                let result = self.server.reject_subscription(pending, now);
                if self.answered(conn, seq, result) {
                    self.conn(conn).blocked = Blocked::No;
                    self.rejects.push((conn, ident));
                }
            }
            _ => {
                let result = self.server.abandon_subscription(pending, now);
                if self.answered(conn, seq, result) {
                    self.conn(conn).blocked = Blocked::No;
                }
            }
        }
    }

    /// A perform's outcome: its mark broadcast, transmitted, maybe a stream
    /// started.
    fn outcome(number: u64, how: u8) -> PerformOutcome {
        let mark = JsonText::new(format!(r#"{{"p":{number}}}"#)).expect("JSON");
        let stream = STREAMS[usize::from(how >> 2) % STREAMS.len()];
        let mut outcome = PerformOutcome::new();
        if how & 0x10 != 0 {
            outcome = outcome.stream(STREAMS[usize::from(how >> 5) % STREAMS.len()]);
        }
        outcome = outcome.transmit(mark.clone());
        if how & 0x80 != 0 {
            outcome.broadcast_except_sender(stream, mark)
        } else {
            outcome.broadcast(stream, mark)
        }
    }

    fn answer_perform(&mut self, which: usize, how: u8) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Perform(pending),
            number,
        }) = self.take_token(which, |h| matches!(h, Handle::Perform(_)))
        else {
            return;
        };
        let now = self.now();
        if how % 3 == 2 {
            let result = self.server.veto_perform(pending, now);
            if self.answered(conn, seq, result) {
                self.conn(conn).blocked = Blocked::No;
            }
        } else {
            let outcome = Self::outcome(number, how);
            let result = self.server.complete_perform(pending, outcome, now);
            if self.answered(conn, seq, result) {
                self.completed.insert(number);
                self.conn(conn).blocked = Blocked::No;
            }
        }
    }

    fn answer_late(&mut self, which: usize, how: u8) {
        if self.late.is_empty() {
            return;
        }
        let token = self.late.swap_remove(which % self.late.len());
        let now = self.now();
        let result = match token.handle {
            Handle::Connection(pending) => match how % 2 {
                0 => self
                    .server
                    .accept_connection(pending, Identity::new("late"), now),
                _ => self.server.reject_connection(pending, now),
            },
            Handle::Subscription(pending) => match how % 3 {
                0 => self.server.accept_subscription(
                    pending,
                    SubscriptionAccept::new().stream(STREAMS[0]),
                    now,
                ),
                1 => self.server.reject_subscription(pending, now),
                _ => self.server.abandon_subscription(pending, now),
            },
            Handle::Perform(pending) => match how % 2 {
                0 => self
                    .server
                    .complete_perform(pending, Self::outcome(token.number, how), now),
                _ => self.server.veto_perform(pending, now),
            },
        };
        // Checked once the call's own expiries are in the model.
        self.late_answer = Some((token.conn, token.seq, result));
    }

    fn set_expiry(&mut self, conn: usize, lifetime: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let now = self.now();
        let at = (lifetime < LIFETIMES.len() + 1).then(|| self.expiry_at(now, lifetime));
        let closing = self.conn(id).state == State::Closing;
        let result = self.server.set_expiry(id, at, now);
        self.strict_call = self.calls;
        if closing {
            assert_eq!(result, Err(UsageError::ConnectionNotOpen), "set_expiry");
            return;
        }
        match result {
            Ok(()) => {
                self.pushed += usize::from(at.is_some());
                self.conn(id).expiry = at;
            }
            // Closed by a deadline the call fired first.
            Err(UsageError::ConnectionNotOpen) => self.refused.push(Refused::Closed(id)),
            Err(other) => panic!("set_expiry: {other}"),
        }
    }

    /// A host refreshing a credential to the same expiry, `times` calls.
    fn refresh_expiry(&mut self, conn: usize, times: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let model = self.conn(id);
        let Some(at) = model.expiry.filter(|_| model.state != State::Closing) else {
            return;
        };
        // At the core's clock, with nothing due: the calls fire nothing.
        if !self.nothing_due() {
            return;
        }
        let now = self.clock;
        for _ in 0..times {
            let bound = 2 * self.server.connection_count() + self.server.stream_count();
            self.begin_call(now);
            self.server
                .set_expiry(id, Some(at), now)
                .expect("refreshing the expiry of a connection that has one");
            self.pushed += 1;
            assert!(
                self.server.poll_event().is_none() && self.server.poll_transmit().is_none(),
                "refreshing an expiry did something"
            );
            let count = self.server.timer_count();
            assert!(
                count <= (2 * bound).max(64) + 1,
                "the timer store grows with refreshed expiries: {count} timers for {bound} live ones"
            );
        }
        self.strict_call = self.calls;
    }

    /// Whether every deadline of the model is after the core's clock.
    fn nothing_due(&self) -> bool {
        let clock = self.clock;
        let conns = self.conns.iter().filter(|c| c.state != State::Closing);
        conns.clone().all(|c| c.expiry.is_none_or(|e| e > clock))
            && conns.clone().all(|c| match &c.blocked {
                Blocked::Decision { deadline, .. } => deadline.is_none_or(|d| d > clock),
                _ => true,
            })
            && self
                .streams
                .values()
                .all(|s| s.ready || s.deadline.is_none_or(|d| d > clock))
    }

    fn stream_ready(&mut self, stream: usize) {
        let name = STREAMS[stream];
        let now = self.now();
        self.server.stream_ready(name, now);
        self.ready_now = Some(name.to_owned());
    }

    fn broadcast(&mut self, stream: usize, string: bool) {
        self.broadcasts += 1;
        let payload = format!(r#"{{"b":{}}}"#, self.broadcasts);
        let name = STREAMS[stream];
        let now = self.now();
        if string {
            self.server.broadcast_string(name, &payload, now);
        } else {
            self.server.broadcast(name, &payload, now);
        }
    }

    fn advance(&mut self, input: &mut Input<'_>) {
        self.lag = Duration::ZERO;
        let step = match input.below(7) {
            0 => Duration::ZERO,
            1 => Duration::from_millis(u64::from(input.byte())),
            2 => Duration::from_millis(u64::from(input.u16())),
            3 | 4 => {
                // Up to the next deadline, or a nanosecond short of it.
                let short = input.bool();
                if let Some(at) = self.server.poll_timeout() {
                    let target = if short {
                        at.checked_sub(Duration::from_nanos(1)).unwrap_or(at)
                    } else {
                        at
                    };
                    self.wall = self.wall.max(target);
                }
                Duration::ZERO
            }
            5 => Duration::from_secs(1_000_000),
            _ => Duration::from_secs(100_000_000),
        };
        self.wall += step;
    }

    fn timeout(&mut self, input: &mut Input<'_>) {
        let polled = self.server.poll_timeout().expect("a ping beat at least");
        let t = match input.below(4) {
            0 => {
                self.wall = self.wall.max(polled);
                self.lag = Duration::ZERO;
                self.wall
            }
            1 => polled.max(self.start),
            2 => self.call_time(),
            _ => {
                // Any time, maybe behind the core's clock.
                let back = Duration::from_millis(u64::from(input.u16()));
                self.clock
                    .checked_sub(back)
                    .map_or(self.start, |t| t.max(self.start))
            }
        };
        self.begin_call(t);
        self.strict_call = self.calls;
        self.timeout_at = Some(t);
        if t >= self.next_ping {
            // The first beat after `t`.
            let behind = t.duration_since(self.next_ping).as_nanos();
            let interval = self.interval.as_nanos();
            let beats = behind / interval + 1;
            let nanos = beats * interval;
            let secs = u64::try_from(nanos / 1_000_000_000).expect("beats within u64 seconds");
            let sub = u32::try_from(nanos % 1_000_000_000).expect("nanoseconds");
            self.next_ping += Duration::new(secs, sub);
            self.pinged = true;
        }
        self.server.handle_timeout(t);
    }

    fn close(&mut self, conn: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let now = self.now();
        self.closed_now = Some(id);
        self.server
            .handle_close(id, now)
            .expect("handle_close on a known connection");
    }

    fn disconnect(&mut self, conn: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let now = self.now();
        self.server
            .disconnect(id, DisconnectReason::Remote, true, now)
            .expect("disconnect a known connection");
    }

    fn unsubscribe(&mut self, conn: usize, ident: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let Some(&sub) = self.conn(id).subs.get(&ident) else {
            return;
        };
        let now = self.now();
        self.unsubscribed_now = Some(sub);
        match self.server.unsubscribe(sub, now) {
            Ok(()) => {}
            // Ended by a deadline the call fired first (its connection closed).
            Err(UsageError::UnknownSubscription) => self.refused.push(Refused::Closed(id)),
            Err(other) => panic!("unsubscribe of a live subscription: {other}"),
        }
    }

    fn join(&mut self, conn: usize, stream: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let open = self.conn(id).state == State::Open;
        let envelope = Envelope::new(r#"{"j":"#, "}", StreamMode::Json);
        let now = self.now();
        match self.server.join(id, STREAMS[stream], envelope, now) {
            Ok(()) => assert!(open, "join on a connection not open"),
            Err(UsageError::ConnectionNotOpen) if !open => {}
            Err(UsageError::ConnectionNotOpen) => self.refused.push(Refused::Closed(id)),
            Err(other) => panic!("join: {other}"),
        }
    }

    // ------------------------------------------------------------ draining

    /// Moves a connection's outstanding tokens to the late ones.
    fn retire_tokens(&mut self, conn: ConnectionId) {
        let mut i = 0;
        while i < self.tokens.len() {
            if self.tokens[i].conn == conn {
                let token = self.tokens.remove(i);
                self.late.push(token);
            } else {
                i += 1;
            }
        }
    }

    fn settle(&mut self) {
        let seen = self.wire.drain(&mut self.server);
        let events: Vec<Event> = std::iter::from_fn(|| self.server.poll_event()).collect();
        if self.trace {
            for item in &seen {
                eprintln!("   frame {item:?}");
            }
            for event in &events {
                eprintln!("   event {event:?}");
            }
        }

        // Confirmations first: the commands held behind them were handled
        // in the same call.
        let mut confirmed: Vec<(ConnectionId, Vec<String>)> = Vec::new();
        for item in &seen {
            if let Seen::Frame(c, ServerFrame::Confirm(identifier)) = item {
                let ident = ident_index(identifier);
                let conn = self.conn(*c);
                match &conn.blocked {
                    Blocked::Streams { ident: i, streams } if *i == ident => {
                        confirmed.push((*c, streams.clone()));
                        conn.blocked = Blocked::No;
                    }
                    other => panic!("confirmation of {identifier} on {c}, waiting for {other:?}"),
                }
            }
        }

        let mut expired: BTreeSet<(ConnectionId, u32)> = BTreeSet::new();
        // Streams stopped in this call once ready.
        let mut stopped_ready: BTreeSet<String> = BTreeSet::new();
        let mut closed: BTreeSet<ConnectionId> = BTreeSet::new();
        for event in events {
            match event {
                Event::SubscriptionRequested {
                    connection,
                    identifier,
                    pending,
                    ..
                } => {
                    let step = self.calls;
                    let deadline = self.after(self.timeouts.subscribe);
                    self.pushed += usize::from(self.timeouts.subscribe.is_some());
                    let conn = self.conn(connection);
                    assert_eq!(
                        conn.state,
                        State::Open,
                        "subscription on {connection}, not open"
                    );
                    assert!(!conn.custom, "a command parsed on a custom connection");
                    assert_eq!(
                        conn.blocked,
                        Blocked::No,
                        "a later command of {connection} handled while it waits"
                    );
                    conn.seq += 1;
                    let seq = conn.seq;
                    let ident = ident_index(identifier.as_str());
                    conn.blocked = Blocked::Decision {
                        seq,
                        kind: Kind::Subscription {
                            sub: pending.subscription(),
                            ident,
                        },
                        deadline,
                        step,
                    };
                    self.tokens.push(Token {
                        conn: connection,
                        seq,
                        handle: Handle::Subscription(pending),
                        number: 0,
                    });
                }
                Event::Perform(perform) => {
                    let step = self.calls;
                    let deadline = self.after(self.timeouts.perform);
                    self.pushed += usize::from(self.timeouts.perform.is_some());
                    self.performs += 1;
                    let number = self.performs;
                    let connection = perform.connection;
                    let conn = self.conn(connection);
                    assert_eq!(conn.state, State::Open, "perform on {connection}, not open");
                    assert_eq!(
                        conn.blocked,
                        Blocked::No,
                        "a later command of {connection} handled while it waits"
                    );
                    let ident = ident_index(perform.identifier.as_str());
                    assert_eq!(conn.subs.get(&ident), Some(&perform.subscription));
                    let seq = perform
                        .data_value()
                        .get("seq")
                        .and_then(Value::as_u64)
                        .expect("the perform's seq");
                    let seq = u32::try_from(seq).expect("u32");
                    assert!(
                        seq > conn.last_perform && seq <= conn.sent,
                        "perform {seq} of {connection} out of order (last {})",
                        conn.last_perform
                    );
                    conn.last_perform = seq;
                    conn.seq += 1;
                    let seq = conn.seq;
                    conn.blocked = Blocked::Decision {
                        seq,
                        kind: Kind::Perform { number },
                        deadline,
                        step,
                    };
                    self.tokens.push(Token {
                        conn: connection,
                        seq,
                        handle: Handle::Perform(perform.pending),
                        number,
                    });
                }
                Event::Received {
                    connection,
                    frame,
                    binary,
                } => {
                    let conn = self.conn(connection);
                    assert!(conn.custom && !binary);
                    assert_eq!(
                        conn.state,
                        State::Open,
                        "a frame of {connection} handled before its accept"
                    );
                    assert_eq!(conn.blocked, Blocked::No);
                    let value: Value = serde_json::from_slice(&frame).expect("the frame sent");
                    let seq = value.get("seq").and_then(Value::as_u64);
                    assert_eq!(
                        seq,
                        conn.unreceived.pop_front().map(u64::from),
                        "frames of {connection} received out of order"
                    );
                }
                Event::Unsubscribed {
                    connection,
                    subscription,
                    cause,
                    ..
                } => {
                    let unsubscribed_now = self.unsubscribed_now;
                    let closed_now = self.closed_now;
                    let conn = self.conn(connection);
                    let ident = conn
                        .subs
                        .iter()
                        .find(|(_, s)| **s == subscription)
                        .map(|(i, _)| *i)
                        .unwrap_or_else(|| panic!("Unsubscribed {subscription}, not live"));
                    conn.subs.remove(&ident);
                    match cause {
                        UnsubscribeCause::Disconnected => {
                            assert_eq!(conn.state, State::Closing, "{cause:?} while not closing")
                        }
                        UnsubscribeCause::ConnectionClosed => {
                            assert_eq!(closed_now, Some(connection), "{cause:?} without the close")
                        }
                        UnsubscribeCause::Application => {
                            assert_eq!(unsubscribed_now, Some(subscription))
                        }
                        _ => {}
                    }
                    // A subscription whose confirmation waited is gone: the
                    // connection waits no more.
                    if matches!(&conn.blocked, Blocked::Streams { ident: i, .. } if *i == ident) {
                        conn.blocked = Blocked::No;
                    }
                }
                Event::StreamStarted(name) => {
                    let deadline = if self.confirm_when_ready {
                        self.after(self.upstream)
                    } else {
                        None
                    };
                    self.pushed += usize::from(self.confirm_when_ready && self.upstream.is_some());
                    let model = StreamModel {
                        ready: !self.confirm_when_ready,
                        deadline,
                        step: self.calls,
                    };
                    let previous = self.streams.insert(name.as_str().to_owned(), model);
                    assert!(previous.is_none(), "stream {name} started twice");
                }
                Event::StreamStopped(name) => {
                    let model = self.streams.remove(name.as_str());
                    let model =
                        model.unwrap_or_else(|| panic!("stream {name} stopped, not started"));
                    // (`stream_ready` of this call comes after the events
                    // of the deadlines it fired, before those of the
                    // commands it let go on.)
                    if model.ready || self.ready_now.as_deref() == Some(name.as_str()) {
                        stopped_ready.insert(name.as_str().to_owned());
                    }
                }
                Event::UpstreamTimedOut(name) => {
                    let clock = self.clock;
                    let model = self
                        .streams
                        .get_mut(name.as_str())
                        .unwrap_or_else(|| panic!("upstream of {name} timed out, no such stream"));
                    assert!(!model.ready, "upstream of {name} timed out once ready");
                    assert!(
                        model.deadline.is_some_and(|d| d <= clock),
                        "upstream of {name} timed out early ({:?}, clock {clock:?})",
                        model.deadline
                    );
                    model.ready = true;
                }
                Event::DecisionExpired {
                    connection,
                    decision,
                } => {
                    let clock = self.clock;
                    let conn = self.conn(connection);
                    let Blocked::Decision {
                        seq,
                        kind,
                        deadline,
                        ..
                    } = conn.blocked.clone()
                    else {
                        panic!(
                            "{decision:?} expired on {connection}, which waits for {:?}",
                            conn.blocked
                        );
                    };
                    assert!(
                        deadline.is_some_and(|d| d <= clock),
                        "{decision:?} of {connection} expired early ({deadline:?}, clock {clock:?})"
                    );
                    match (&decision, kind) {
                        (ExpiredDecision::Connection, Kind::Connection) => {}
                        (ExpiredDecision::Perform, Kind::Perform { .. }) => {}
                        (
                            ExpiredDecision::Subscription {
                                subscription,
                                identifier,
                            },
                            Kind::Subscription { sub, ident },
                        ) => {
                            assert_eq!(*subscription, sub);
                            assert_eq!(identifier.as_str(), IDENTIFIERS[ident]);
                            self.rejects.push((connection, ident));
                        }
                        (decision, kind) => panic!("{decision:?} expired for {kind:?}"),
                    }
                    let conn = self.conn(connection);
                    conn.last_expired = seq;
                    conn.blocked = Blocked::No;
                    if let Some(at) = self
                        .tokens
                        .iter()
                        .position(|t| t.conn == connection && t.seq == seq)
                    {
                        let token = self.tokens.remove(at);
                        self.late.push(token);
                    }
                    expired.insert((connection, seq));
                }
                Event::CommandFailed { connection, error } => {
                    let sent_now = self.sent_now;
                    let conn = self.conn(connection);
                    match error {
                        CommandError::HoldOverflow { .. }
                        | CommandError::FrameTooLarge { .. }
                        | CommandError::Closing => {
                            // The frame just sent was dropped.
                            if let Some((c, seq)) = sent_now {
                                if c == connection {
                                    conn.unreceived.retain(|&s| s != seq);
                                }
                            }
                        }
                        CommandError::BinaryFrame { .. } => panic!("no binary frame was sent"),
                        error => {
                            assert_eq!(
                                conn.blocked,
                                Blocked::No,
                                "a later command of {connection} failed while it waits: {error}"
                            );
                            assert_eq!(conn.state, State::Open);
                        }
                    }
                }
                Event::Disconnecting {
                    connection, reason, ..
                } => {
                    let clock = self.clock;
                    let conn = self.conn(connection);
                    assert_ne!(
                        conn.state,
                        State::Closing,
                        "{connection} disconnected twice"
                    );
                    if reason == DisconnectReason::TokenExpired {
                        assert!(
                            conn.expiry.is_some_and(|e| e <= clock),
                            "token_expired on {connection} early ({:?}, clock {clock:?})",
                            conn.expiry
                        );
                    }
                    conn.state = State::Closing;
                    conn.blocked = Blocked::No;
                    conn.expiry = None;
                    conn.unreceived.clear();
                    self.retire_tokens(connection);
                    closed.insert(connection);
                }
                Event::Closed { connection, .. } => {
                    let at = self
                        .conns
                        .iter()
                        .position(|c| c.id == connection)
                        .expect("a known connection");
                    let conn = self.conns.remove(at);
                    assert!(
                        conn.subs.is_empty(),
                        "{connection} closed with live subscriptions"
                    );
                    self.retire_tokens(connection);
                    self.wire.forget(connection);
                    closed.insert(connection);
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        // A late answer is refused as expired if its decision is the last of
        // its connection to expire (as of the answer: the call fired what
        // was due first), as stale otherwise.
        if let Some((conn, seq, result)) = self.late_answer.take() {
            let expected = match self.known(conn) {
                Some(c) if c.last_expired == seq => UsageError::DecisionExpired,
                _ => UsageError::StaleDecision,
            };
            assert_eq!(
                result,
                Err(expected),
                "a late answer (decision {seq} of {conn})"
            );
        }
        if let Some(name) = self.ready_now.take() {
            if let Some(model) = self.streams.get_mut(&name) {
                model.ready = true;
            }
        }

        // Frames.
        let mut pinged: BTreeSet<ConnectionId> = BTreeSet::new();
        let mut found: Vec<u64> = Vec::new();
        for item in seen {
            match item {
                Seen::Frame(c, frame) => match frame {
                    ServerFrame::Ping(_) => {
                        assert!(self.pinged, "a ping on {c} outside a due timeout");
                        assert!(pinged.insert(c), "two pings on {c}");
                    }
                    ServerFrame::Reject(identifier) => {
                        let key = (c, ident_index(&identifier));
                        let at = self
                            .rejects
                            .iter()
                            .position(|k| *k == key)
                            .unwrap_or_else(|| panic!("unexpected rejection {key:?}"));
                        self.rejects.remove(at);
                    }
                    ServerFrame::Message { message, .. } => marks(&message, &mut found),
                    ServerFrame::Application(value) => marks(&value, &mut found),
                    ServerFrame::Welcome | ServerFrame::Confirm(_) => {}
                    ServerFrame::Disconnect { .. } => unreachable!("checked by the wire"),
                },
                Seen::Custom(c, bytes) => {
                    let value: Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("frame on {c} is not JSON ({e})"));
                    marks(&value, &mut found);
                }
                Seen::Farewell { .. } | Seen::Closed(_) => {}
            }
        }
        for number in found {
            assert!(
                self.completed.contains(&number),
                "a frame of perform {number}, not completed in this call (vetoed, expired or late)"
            );
        }
        for (c, ident) in &self.rejects {
            assert!(
                self.known(*c).is_none_or(|m| m.state == State::Closing),
                "no rejection of {} on {c}",
                IDENTIFIERS[*ident]
            );
        }
        if self.pinged {
            for conn in &self.conns {
                if conn.state == State::Open && !conn.custom {
                    assert!(pinged.contains(&conn.id), "no ping on {}", conn.id);
                }
            }
        }
        for refused in self.refused.clone() {
            let last_expired = |c| self.known(c).map_or(0, |m| m.last_expired);
            match refused {
                Refused::Expired(c, seq) => assert!(
                    expired.contains(&(c, seq)) && last_expired(c) == seq,
                    "an answer refused as expired without the expiry of decision {seq} of {c}"
                ),
                Refused::Stale(c, seq) => assert!(
                    closed.contains(&c) || expired.contains(&(c, seq)) && last_expired(c) != seq,
                    "an answer refused as stale while decision {seq} of {c} was pending"
                ),
                Refused::Closed(c) => {
                    assert!(closed.contains(&c), "a call refused as if {c} had closed")
                }
            }
        }
        // A confirmation that waited for streams came once they were ready.
        for (c, streams) in confirmed {
            for name in streams {
                assert!(
                    self.streams.get(&name).is_some_and(|s| s.ready)
                        || stopped_ready.contains(&name),
                    "{c} confirmed before its stream {name} was ready"
                );
            }
        }
    }

    // ------------------------------------------------------------ checks

    fn check(&mut self) {
        let clock = self.clock;
        // Only the latest call may leave a deadline due at the clock, one it
        // opened itself, and only if it does not end by firing what is due.
        let call = self.calls;
        let strict = self.strict_call == call;
        let due_ok = |deadline: Instant, opened: u64| {
            deadline > clock || (!strict && opened == call && deadline == clock)
        };
        let mut earliest: Option<Instant> = None;
        let mut note = |d: Instant| earliest = Some(earliest.map_or(d, |e: Instant| e.min(d)));

        assert_eq!(
            self.server.connection_count(),
            self.conns.len(),
            "connection_count"
        );
        assert_eq!(
            self.server.stream_count(),
            self.streams.len(),
            "stream_count"
        );
        for conn in &self.conns {
            assert_eq!(
                self.server.is_open(conn.id),
                conn.state == State::Open,
                "is_open"
            );
            if conn.state == State::Closing {
                assert!(
                    conn.subs.is_empty(),
                    "closing {} keeps subscriptions",
                    conn.id
                );
                assert_eq!(
                    self.server.held_frames(conn.id),
                    0,
                    "closing {} holds frames",
                    conn.id
                );
                continue;
            }
            assert_eq!(
                self.server.expiry(conn.id),
                conn.expiry,
                "expiry of {}",
                conn.id
            );
            match &conn.blocked {
                Blocked::No => assert_eq!(
                    self.server.held_frames(conn.id),
                    0,
                    "{} holds frames while it waits for nothing",
                    conn.id
                ),
                Blocked::Decision {
                    deadline,
                    step: opened,
                    ..
                } => {
                    if let Some(d) = *deadline {
                        assert!(
                            due_ok(d, *opened),
                            "the decision of {} is still pending past its deadline ({d:?}, clock {clock:?})",
                            conn.id
                        );
                        note(d);
                    }
                }
                Blocked::Streams { streams, .. } => {
                    assert!(
                        streams
                            .iter()
                            .any(|s| self.streams.get(s).is_some_and(|s| !s.ready)),
                        "{} waits for streams {streams:?}, all ready",
                        conn.id
                    );
                }
            }
            if let Some(e) = conn.expiry {
                assert!(
                    e > clock,
                    "{} is still open past its expiry ({e:?}, clock {clock:?})",
                    conn.id
                );
                note(e);
            }
        }
        for (name, stream) in &self.streams {
            if stream.ready {
                continue;
            }
            if let Some(d) = stream.deadline {
                assert!(
                    due_ok(d, stream.step),
                    "stream {name} still waits upstream past its deadline ({d:?}, clock {clock:?})"
                );
                note(d);
            }
        }

        let polled = self.server.poll_timeout().expect("a ping beat at least");
        assert!(
            polled <= self.next_ping,
            "poll_timeout {polled:?} after the next ping beat {:?}",
            self.next_ping
        );
        if let Some(e) = earliest {
            assert!(
                polled <= e,
                "poll_timeout {polled:?} after a pending deadline {e:?}"
            );
        }
        assert!(
            polled >= clock || polled == self.next_ping,
            "poll_timeout {polled:?} before the core's clock {clock:?}, not the due ping beat"
        );
        if let Some(t) = self.timeout_at {
            assert!(
                polled > t,
                "poll_timeout {polled:?} not after handle_timeout({t:?})"
            );
        }

        // (A step without a call leaves the store as the last check saw it.)
        let count = self.server.timer_count();
        let bound = (2 * self.bound_before).max(64) + self.pushed;
        let no_call = self.calls == self.calls_before;
        assert!(
            no_call || count <= bound,
            "{count} timers held, over the bound {bound} (live bound before {}, {} set by the call)",
            self.bound_before,
            self.pushed
        );
        self.wire.check_queued(&self.server);
    }

    fn finish(mut self) {
        while !self.conns.is_empty() {
            self.begin_step();
            self.close(0);
            self.settle();
            self.check();
        }
        assert_eq!(self.server.subscription_count(), 0, "subscriptions left");
        assert_eq!(self.server.stream_count(), 0, "streams left");
        assert!(self.streams.is_empty(), "streams not reported stopped");
        // Every late token is refused, as the model says.
        while !self.late.is_empty() {
            self.begin_step();
            self.answer_late(0, 0);
            self.settle();
        }
    }
}
