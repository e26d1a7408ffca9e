//! A host for [`Server`] driven by a sequence of [`Op`]s, with a naive model
//! of what the core must have done, checked after every operation.
//!
//! The model is the host's own bookkeeping, built from what the host asked
//! for and what the core reported, without looking at the core's insides:
//!
//! - connections: pending, open or closing, with their identity and the
//!   bytes queued for them (see [`Wire`]);
//! - subscriptions: pending (with their decision token) or live (with their
//!   streams and modes);
//! - streams: those the core reported started and not stopped.
//!
//! After every operation the host drains every frame and event, then checks:
//!
//! - every frame is valid JSON of a known shape, in a legal order ([`Wire`]);
//! - no subscription survives its connection: a closing connection has none,
//!   every live one ends with `Unsubscribed` before `Closed`, and no event or
//!   frame names a connection after its `Closed`;
//! - a broadcast reaches exactly the live subscriptions and joins on its
//!   stream (minus the excepted connection), once per stream membership,
//!   with the payload spliced (or as a string, or in the join's envelope),
//!   and is encoded once per group (identifier and mode, or envelope); a
//!   group whose frame is larger than a queue may hold gets nothing
//!   (`Delivery::skipped_too_large`); a completed perform's outcome applies
//!   as documented, a vetoed one not at all;
//! - commands wait: no subscription request or perform of a connection
//!   while another of its decisions is pending;
//! - `subscription_count`, `connection_count`, `stream_count`,
//!   `subscriber_count`, `subscriptions`, `streams_of`, `joined_streams`,
//!   `identity`, `is_open` and `queued_bytes` agree with the model;
//! - queued bytes never exceed the bound;
//! - `poll_timeout` never goes back in time (time only moves forward) and a
//!   due timeout pings every open connection once, with the right seconds;
//! - decisions on stale tokens and calls with stale handles are refused.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use cable_proto::handshake::OriginPattern;
use cable_proto::server::{
    Config, Delivery, Envelope, Event, LimitAction, Limits, PendingConnection, PendingPerform,
    PendingSubscription, PerformOutcome, Server, SubscriptionAccept, UnsubscribeCause,
};
use cable_proto::{
    CommandError, ConnectionId, DisconnectReason, HandshakeRequest, Identity, JsonText,
    OriginPolicy, StreamMode, SubscriptionId, UsageError,
};
use serde_json::Value;

use crate::frames::ServerFrame;
use crate::input::Input;
use crate::wire::{Seen, Wire};

/// Unix time at the harness's start (ping payloads count from it).
pub const UNIX_START: Duration = Duration::from_secs(1_700_000_000);

/// Identifiers structured operations choose from: equal params in another
/// order or spacing are another subscription; some need escaping; the last
/// ones are refused.
pub const IDENTIFIERS: &[&str] = &[
    r#"{"channel":"ChatChannel","room":"lobby"}"#,
    r#"{"channel":"ChatChannel","room":"r1"}"#,
    r#"{"room":"r1","channel":"ChatChannel"}"#,
    r#"{"channel":"ChatChannel", "room":"r1"}"#,
    r#"{"channel":"NotificationChannel"}"#,
    "{\"channel\":\"<b>&amp;</b>\",\"sep\":\"\u{2028}\u{2029}\",\"esc\":\"\\\"\\\\\\n\\u0001\"}",
    r#"{"channel":"ChatChannel","room":1,"nested":{"a":[1,2,{"b":null}]}}"#,
    r#"{"channel":"ChatChannel","channel":"Duplicate"}"#,
    r#"not json"#,
    r#"{"room":"no channel"}"#,
    r#"["channel"]"#,
    r#"{"channel":7}"#,
];

/// Streams structured operations choose from.
pub const STREAMS: &[&str] = &[
    "chat_lobby",
    "chat_r1",
    "notification:alice",
    "feed_a",
    "feed_b",
    "",
    "quote\"back\\slash<&>",
];

/// Identities connections are accepted with.
pub const IDENTITIES: &[&str] = &["alice", "bob", "carol", ""];

/// Broadcast and transmit payloads: valid JSON, JSON with spacing, and text
/// that is not JSON (skipped by JSON-mode subscriptions).
pub const PAYLOADS: &[&str] = &[
    r#"{"text":"hi"}"#,
    "1",
    r#""a string""#,
    " [1, 2] ",
    "null",
    "{\"html\":\"<&>\",\"sep\":\"\u{2028}\"}",
    "{",
    "not json",
    "",
    "{} {}",
];

/// `data` of structured `message` commands.
pub const DATA: &[&str] = &[
    r#"{"action":"speak","text":"hi"}"#,
    r#"{"text":"no action"}"#,
    r#"{"action":null}"#,
    r#"{"action":""}"#,
    r#"{"action":7}"#,
    "[]",
    "not json",
    r#"{"action":"a","action":"b"}"#,
];

/// Envelopes of joins: `(prefix, suffix, raw)`. Each wraps the payload into
/// a JSON object of a type none of Action Cable's (so that an Action Cable
/// connection's wire still classifies it), and no two are equal (equal
/// envelopes share a group).
pub const ENVELOPES: &[(&str, &str, bool)] = &[
    (r#"{"type":"env","data":"#, "}", false),
    (r#"{"type":"env","data":"#, "}", true),
    (r#"{"type":"other","list":["#, r#","<&>"]}"#, false),
    (
        "{\"type\":\"env\",\"sep\":\"\u{2028}\",\"data\":",
        "}",
        false,
    ),
];

/// The envelope at `index` of [`ENVELOPES`].
pub fn envelope(index: usize) -> Envelope {
    let (prefix, suffix, raw) = ENVELOPES[index % ENVELOPES.len()];
    let mode = if raw {
        StreamMode::RawString
    } else {
        StreamMode::Json
    };
    Envelope::new(prefix.as_bytes().to_vec(), suffix.as_bytes().to_vec(), mode)
}

/// Disconnect reasons of `disconnect` and of perform outcomes.
fn reason(index: usize) -> DisconnectReason {
    let reasons = [
        DisconnectReason::TokenExpired,
        DisconnectReason::Remote,
        DisconnectReason::Other("custom \"reason\" <&>".into()),
        DisconnectReason::InvalidRequest,
    ];
    reasons[index % reasons.len()].clone()
}

/// Origins of upgrade requests (the host is always `example.com`).
pub const ORIGINS: &[Option<&str>] = &[
    Some("http://example.com"),
    Some("https://example.com"),
    Some("http://allowed.example"),
    Some("http://localhost:3000"),
    Some("http://localhost:"),
    Some("http://evil.example"),
    None,
];

/// `Sec-WebSocket-Protocol` header values.
pub const PROTOCOLS: &[&[&str]] = &[
    &["actioncable-v1-json, actioncable-unsupported"],
    &["actioncable-unsupported"],
    &["graphql-ws", " actioncable-v1-json "],
    &[],
    &[",,"],
];

/// One input to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// An upgrade request.
    Open {
        /// Index into [`ORIGINS`].
        origin: usize,
        /// Index into [`PROTOCOLS`].
        protocols: usize,
    },
    /// Open and accept at once, with the identity at this index of
    /// [`IDENTITIES`].
    Connect {
        /// Index into [`IDENTITIES`].
        identity: usize,
    },
    /// Accept a pending connection.
    AcceptConnection {
        /// Which connection (modulo the known ones).
        conn: usize,
        /// Index into [`IDENTITIES`].
        identity: usize,
    },
    /// Reject a pending connection.
    RejectConnection {
        /// Which connection.
        conn: usize,
    },
    /// A text frame from a client.
    Text {
        /// Which connection.
        conn: usize,
        /// The frame.
        frame: Vec<u8>,
    },
    /// A binary frame from a client.
    Binary {
        /// Which connection.
        conn: usize,
        /// Its length.
        len: usize,
    },
    /// The socket closed.
    Close {
        /// Which connection.
        conn: usize,
    },
    /// The host wrote bytes of a connection's frames.
    Written {
        /// Which connection.
        conn: usize,
        /// How many bytes (capped at what is queued unless `all`).
        bytes: usize,
        /// Report everything queued (and more).
        all: bool,
    },
    /// Time passes.
    Advance {
        /// Milliseconds.
        millis: u32,
    },
    /// `handle_timeout(now)`.
    Timeout,
    /// Time jumps to `poll_timeout()`, then `handle_timeout`.
    TimeoutAtDeadline,
    /// Authorize a pending subscription.
    AcceptSubscription {
        /// Which pending subscription.
        pending: usize,
        /// Streams (indices into [`STREAMS`]) and whether raw.
        streams: Vec<(usize, bool)>,
        /// Messages to transmit first (indices into [`PAYLOADS`]; invalid
        /// ones are skipped).
        transmissions: Vec<usize>,
    },
    /// Refuse a pending subscription.
    RejectSubscription {
        /// Which pending subscription.
        pending: usize,
    },
    /// Drop a pending subscription silently.
    AbandonSubscription {
        /// Which pending subscription.
        pending: usize,
    },
    /// Decide on a token that went stale (its connection went away).
    DecideStale {
        /// Which stale token.
        which: usize,
        /// Accept, reject or abandon (or accept/reject for connections).
        how: u8,
    },
    /// End a subscription from the server side.
    Unsubscribe {
        /// Which subscription (pending or live).
        sub: usize,
    },
    /// `stream_from`.
    StreamFrom {
        /// Which subscription.
        sub: usize,
        /// Index into [`STREAMS`].
        stream: usize,
        /// Raw-string mode.
        raw: bool,
    },
    /// `stop_stream_from`.
    StopStreamFrom {
        /// Which subscription.
        sub: usize,
        /// Index into [`STREAMS`].
        stream: usize,
    },
    /// `stop_all_streams`.
    StopAllStreams {
        /// Which subscription.
        sub: usize,
    },
    /// `transmit` to one subscription.
    Transmit {
        /// Which subscription.
        sub: usize,
        /// Index into [`PAYLOADS`].
        payload: usize,
    },
    /// `broadcast`, `broadcast_except` or `broadcast_string`.
    Broadcast {
        /// Index into [`STREAMS`].
        stream: usize,
        /// The payload.
        payload: String,
        /// Which flavour.
        kind: BroadcastKind,
    },
    /// `send_frame` to one connection.
    SendFrame {
        /// Which connection.
        conn: usize,
    },
    /// `send_frame_to_identity`.
    SendFrameToIdentity {
        /// Index into [`IDENTITIES`].
        identity: usize,
    },
    /// `disconnect` one connection.
    Disconnect {
        /// Which connection.
        conn: usize,
        /// Which reason (an index into a fixed list).
        reason: usize,
        /// The reconnect flag.
        reconnect: bool,
    },
    /// `disconnect_identity`.
    DisconnectIdentity {
        /// Index into [`IDENTITIES`].
        identity: usize,
        /// The reconnect flag.
        reconnect: bool,
    },
    /// `restart`.
    Restart,
    /// Use a handle of a closed connection or an ended subscription.
    UseStale {
        /// Which stale handle.
        which: usize,
        /// Which call.
        how: u8,
    },
    /// Complete a pending perform with an outcome.
    CompletePerform {
        /// Which pending perform.
        pending: usize,
        /// What it does.
        outcome: Outcome,
    },
    /// Veto a pending perform.
    VetoPerform {
        /// Which pending perform.
        pending: usize,
    },
    /// `join` a stream without a subscription.
    Join {
        /// Which connection.
        conn: usize,
        /// Index into [`STREAMS`].
        stream: usize,
        /// Index into [`ENVELOPES`].
        envelope: usize,
    },
    /// `leave` a stream joined.
    Leave {
        /// Which connection.
        conn: usize,
        /// Index into [`STREAMS`].
        stream: usize,
        /// Index into [`ENVELOPES`], or any envelope.
        envelope: Option<usize>,
    },
}

/// A perform's outcome, as indices into the pools.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// `stop_all_streams`.
    pub stop_all: bool,
    /// Streams stopped (indices into [`STREAMS`]).
    pub stop: Vec<usize>,
    /// Streams started (indices into [`STREAMS`]) and whether raw.
    pub start: Vec<(usize, bool)>,
    /// Messages transmitted to the subscription (indices into [`PAYLOADS`];
    /// invalid ones are skipped).
    pub transmissions: Vec<usize>,
    /// Broadcasts: stream, payload (indices; invalid payloads are skipped),
    /// and whether the sender is excepted.
    pub broadcasts: Vec<(usize, usize, bool)>,
    /// Disconnect afterwards: reason (an index) and reconnect flag.
    pub disconnect: Option<(usize, bool)>,
}

impl Outcome {
    /// Decodes an outcome.
    pub fn read(input: &mut Input<'_>) -> Self {
        let flags = input.byte();
        Self {
            stop_all: flags & 1 != 0,
            stop: (0..(flags >> 1) % 2).map(|_| input.below(256)).collect(),
            start: (0..(flags >> 2) % 3)
                .map(|_| (input.below(256), input.below(4) == 0))
                .collect(),
            transmissions: (0..(flags >> 4) % 3).map(|_| input.below(256)).collect(),
            broadcasts: (0..(flags >> 6) % 4)
                .map(|_| (input.below(256), input.below(256), input.bool()))
                .collect(),
            disconnect: (input.below(8) == 0).then(|| (input.below(256), input.bool())),
        }
    }
}

/// The flavours of broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastKind {
    /// `broadcast`.
    Plain,
    /// `broadcast_except` the connection at this index.
    Except(usize),
    /// `broadcast_string`.
    String,
}

/// A structured client command: most of the time what a client would send,
/// sometimes bytes from the fuzzer.
pub fn client_frame(input: &mut Input<'_>) -> Vec<u8> {
    fn command(name: &str, identifier: &str, data: Option<&str>) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        map.insert("command".into(), Value::from(name));
        map.insert("identifier".into(), Value::from(identifier));
        if let Some(data) = data {
            map.insert("data".into(), Value::from(data));
        }
        Value::Object(map).to_string().into_bytes()
    }
    match input.below(6) {
        0 | 1 => command("subscribe", input.pick::<&str>(IDENTIFIERS), None),
        2 => command("unsubscribe", input.pick::<&str>(IDENTIFIERS), None),
        3 => {
            let identifier = *input.pick(IDENTIFIERS);
            let data = if input.bool() {
                input.pick(DATA).to_string()
            } else {
                input.text(64)
            };
            command("message", identifier, Some(&data))
        }
        4 => input.bytes(255).to_vec(),
        _ => {
            // Long frames, for the frame and hold limits.
            let len = usize::from(input.byte()) * 64;
            let identifier = *input.pick(IDENTIFIERS);
            command("message", identifier, Some(&"x".repeat(len)))
        }
    }
}

/// Limits chosen by the fuzzer: small enough to be reached.
pub fn limits(input: &mut Input<'_>) -> Limits {
    let action = |input: &mut Input<'_>| match input.below(3) {
        0 => LimitAction::Ignore,
        1 => LimitAction::Disconnect { reconnect: true },
        _ => LimitAction::Disconnect { reconnect: false },
    };
    Limits {
        max_frame_bytes: *input.pick(&[64, 300, 4096, 64 * 1024]),
        max_identifier_bytes: *input.pick(&[16, 64, 1024]),
        max_subscriptions: *input.pick(&[1, 2, 3, 256]),
        max_held_frames: *input.pick(&[0, 1, 2, 64]),
        max_held_bytes: *input.pick(&[0, 100, 1024, 256 * 1024]),
        max_queued_bytes: *input.pick(&[0, 17, 18, 100, 300, 2048, 1 << 20]),
        on_frame_too_large: action(input),
        on_too_many_subscriptions: action(input),
        on_hold_overflow: action(input),
    }
}

/// The configuration for a run: the reference app's origins, the given
/// limits and ping interval.
pub fn config(limits: Limits, ping_interval: Duration, allow_any: bool) -> Config {
    Config {
        ping_interval,
        origins: OriginPolicy {
            allow_any,
            same_origin_as_host: true,
            allowed: vec![
                OriginPattern::parse("http://allowed.example"),
                OriginPattern::parse("http://localhost:*"),
            ],
        },
        limits,
        hash_seed: 0x5eed,
        ..Config::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Pending,
    Open,
    Closing,
}

#[derive(Debug)]
struct ConnModel {
    id: ConnectionId,
    token: Option<PendingConnection>,
    state: ConnState,
    identity: Option<String>,
    /// Streams joined, with the index of their envelope in [`ENVELOPES`].
    joins: Vec<(String, usize)>,
}

#[derive(Debug)]
struct PerformModel {
    conn: ConnectionId,
    sub: SubscriptionId,
    token: PendingPerform,
}

#[derive(Debug)]
struct SubModel {
    id: SubscriptionId,
    conn: ConnectionId,
    identifier: String,
    token: Option<PendingSubscription>,
    streams: Vec<(String, StreamMode)>,
}

impl SubModel {
    fn live(&self) -> bool {
        self.token.is_none()
    }
}

/// What the current operation leads the host to expect on the wire.
#[derive(Debug, Default)]
struct Expect {
    /// Connections accepted by this operation (their welcome).
    welcomed: Vec<ConnectionId>,
    /// `(connection, identifier)` confirmed or rejected by this operation.
    confirmed: Vec<(ConnectionId, String)>,
    rejected: Vec<(ConnectionId, String)>,
    /// Message frames: `(connection, identifier, message, exact raw JSON)`.
    messages: Vec<(ConnectionId, String, Value, Option<String>)>,
    /// Application frames.
    application: Vec<(ConnectionId, Value)>,
    /// Connections that get a ping, and its seconds.
    pings: Option<(Vec<ConnectionId>, u64)>,
    /// Cause of `Unsubscribed` events this operation may report.
    unsubscribe_cause: Option<UnsubscribeCause>,
    /// The connection `handle_close` was called for.
    closing: Option<ConnectionId>,
}

/// The host and its model.
#[derive(Debug)]
pub struct Harness {
    server: Server,
    start: Instant,
    now: Instant,
    limits: Limits,
    wire: Wire,
    conns: Vec<ConnModel>,
    subs: Vec<SubModel>,
    streams: BTreeSet<String>,
    performs: Vec<PerformModel>,
    stale_subs: Vec<PendingSubscription>,
    stale_conns: Vec<PendingConnection>,
    stale_performs: Vec<PendingPerform>,
    closed_conns: Vec<ConnectionId>,
    ended_subs: Vec<SubscriptionId>,
    last_deadline: Option<Instant>,
    frame_seq: u64,
}

impl Harness {
    /// A host for a server with `config`.
    pub fn new(config: Config) -> Self {
        // The host reads the clock once, for the epoch of its virtual time.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let limits = config.limits.clone();
        let server = Server::new(config, start, UNIX_START);
        let last_deadline = server.poll_timeout();
        Self {
            server,
            start,
            now: start,
            wire: Wire::new(limits.max_queued_bytes),
            limits,
            conns: Vec::new(),
            subs: Vec::new(),
            streams: BTreeSet::new(),
            performs: Vec::new(),
            stale_subs: Vec::new(),
            stale_conns: Vec::new(),
            stale_performs: Vec::new(),
            closed_conns: Vec::new(),
            ended_subs: Vec::new(),
            last_deadline,
            frame_seq: 0,
        }
    }

    /// The server under test.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Closes every connection and checks nothing is left behind.
    pub fn finish(mut self) {
        while !self.conns.is_empty() {
            self.step(Op::Close { conn: 0 });
        }
        assert_eq!(self.server.subscription_count(), 0, "subscriptions left");
        assert_eq!(self.server.stream_count(), 0, "streams left");
        assert_eq!(self.server.connection_count(), 0, "connections left");
        assert!(self.streams.is_empty(), "streams not reported stopped");
    }

    fn conn_at(&self, index: usize) -> Option<ConnectionId> {
        (!self.conns.is_empty()).then(|| self.conns[index % self.conns.len()].id)
    }

    fn conn_model(&mut self, id: ConnectionId) -> &mut ConnModel {
        self.conns
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} is not a known connection"))
    }

    fn sub_pos(&self, id: SubscriptionId) -> Option<usize> {
        self.subs.iter().position(|s| s.id == id)
    }

    fn pending_at(&self, index: usize) -> Option<usize> {
        let pending: Vec<usize> = (0..self.subs.len())
            .filter(|&i| !self.subs[i].live())
            .collect();
        (!pending.is_empty()).then(|| pending[index % pending.len()])
    }

    /// Runs one operation, drains the core and checks every invariant.
    pub fn step(&mut self, op: Op) {
        let mut expect = Expect::default();
        let subs_before: BTreeSet<(ConnectionId, String)> = self
            .subs
            .iter()
            .map(|s| (s.conn, s.identifier.clone()))
            .collect();
        let mut broadcast: Option<(Broadcasted, Option<Delivery>)> = None;
        let now = self.now;
        match op {
            Op::Open { origin, protocols } => {
                self.open(
                    ORIGINS[origin % ORIGINS.len()],
                    PROTOCOLS[protocols % PROTOCOLS.len()],
                );
            }
            Op::Connect { identity } => {
                if let Some(id) = self.open(Some("http://example.com"), PROTOCOLS[0]) {
                    let identity = IDENTITIES[identity % IDENTITIES.len()];
                    self.accept_connection(id, identity, &mut expect);
                }
            }
            Op::AcceptConnection { conn, identity } => {
                if let Some(id) = self.conn_at(conn) {
                    let identity = IDENTITIES[identity % IDENTITIES.len()];
                    self.accept_connection(id, identity, &mut expect);
                }
            }
            Op::RejectConnection { conn } => {
                if let Some(id) = self.conn_at(conn) {
                    let token = self.conn_model(id).token.take();
                    let result = match token {
                        Some(token) => self.server.reject_connection(token, now),
                        None => Ok(()),
                    };
                    result.expect("rejecting a pending connection");
                }
            }
            Op::Text { conn, frame } => {
                if let Some(id) = self.conn_at(conn) {
                    self.server
                        .handle_text(id, &frame, now)
                        .expect("handle_text on a known connection");
                }
            }
            Op::Binary { conn, len } => {
                if let Some(id) = self.conn_at(conn) {
                    self.server
                        .handle_binary(id, &vec![0xA5; len], now)
                        .expect("handle_binary on a known connection");
                }
            }
            Op::Close { conn } => {
                if let Some(id) = self.conn_at(conn) {
                    expect.closing = Some(id);
                    expect.unsubscribe_cause = Some(UnsubscribeCause::ConnectionClosed);
                    self.server
                        .handle_close(id, now)
                        .expect("handle_close on a known connection");
                }
            }
            Op::Written { conn, bytes, all } => {
                if let Some(id) = self.conn_at(conn) {
                    let queued = self.wire.queued(id);
                    let bytes = if all {
                        queued.saturating_add(bytes)
                    } else {
                        bytes.min(queued)
                    };
                    self.server
                        .handle_written(id, bytes, now)
                        .expect("handle_written on a known connection");
                    self.wire.written(id, bytes);
                }
            }
            Op::Advance { millis } => {
                self.now += Duration::from_millis(u64::from(millis));
            }
            Op::Timeout => self.timeout(&mut expect),
            Op::TimeoutAtDeadline => {
                if let Some(deadline) = self.server.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.timeout(&mut expect);
            }
            Op::AcceptSubscription {
                pending,
                streams,
                transmissions,
            } => {
                if let Some(at) = self.pending_at(pending) {
                    let mut accept = SubscriptionAccept::new();
                    let (conn, identifier) = (self.subs[at].conn, self.subs[at].identifier.clone());
                    for payload in transmissions {
                        let payload = PAYLOADS[payload % PAYLOADS.len()];
                        if let Ok(text) = JsonText::new(payload) {
                            accept = accept.transmit(text);
                            expect.messages.push((
                                conn,
                                identifier.clone(),
                                parse_value(payload),
                                Some(payload.to_owned()),
                            ));
                        }
                    }
                    let mut model_streams: Vec<(String, StreamMode)> = Vec::new();
                    for (stream, raw) in streams {
                        let name = STREAMS[stream % STREAMS.len()];
                        let mode = if raw {
                            accept = accept.stream_raw(name);
                            StreamMode::RawString
                        } else {
                            accept = accept.stream(name);
                            StreamMode::Json
                        };
                        if !model_streams.iter().any(|(n, m)| n == name && *m == mode) {
                            model_streams.push((name.to_owned(), mode));
                        }
                    }
                    let sub = &mut self.subs[at];
                    let token = sub.token.take().expect("pending");
                    sub.streams = model_streams;
                    expect.confirmed.push((conn, identifier));
                    self.server
                        .accept_subscription(token, accept, now)
                        .expect("accepting a pending subscription");
                }
            }
            Op::RejectSubscription { pending } => {
                if let Some(at) = self.pending_at(pending) {
                    let sub = self.subs.remove(at);
                    self.ended_subs.push(sub.id);
                    expect.rejected.push((sub.conn, sub.identifier));
                    self.server
                        .reject_subscription(sub.token.expect("pending"), now)
                        .expect("rejecting a pending subscription");
                }
            }
            Op::AbandonSubscription { pending } => {
                if let Some(at) = self.pending_at(pending) {
                    let sub = self.subs.remove(at);
                    self.ended_subs.push(sub.id);
                    self.server
                        .abandon_subscription(sub.token.expect("pending"), now)
                        .expect("abandoning a pending subscription");
                }
            }
            Op::DecideStale { which, how } => self.decide_stale(which, how),
            Op::Unsubscribe { sub } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let id = self.subs[at].id;
                    let result = self.server.unsubscribe(id, now);
                    if self.subs[at].live() {
                        result.expect("unsubscribing a live subscription");
                        expect.unsubscribe_cause = Some(UnsubscribeCause::Application);
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::StreamFrom { sub, stream, raw } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let name = STREAMS[stream % STREAMS.len()];
                    let mode = if raw {
                        StreamMode::RawString
                    } else {
                        StreamMode::Json
                    };
                    let result = self.server.stream_from(self.subs[at].id, name, mode, now);
                    let model = &mut self.subs[at];
                    if model.live() {
                        result.expect("stream_from on a live subscription");
                        if !model.streams.iter().any(|(n, m)| n == name && *m == mode) {
                            model.streams.push((name.to_owned(), mode));
                        }
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::StopStreamFrom { sub, stream } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let name = STREAMS[stream % STREAMS.len()];
                    let result = self.server.stop_stream_from(self.subs[at].id, name, now);
                    let model = &mut self.subs[at];
                    if model.live() {
                        result.expect("stop_stream_from on a live subscription");
                        model.streams.retain(|(n, _)| n != name);
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::StopAllStreams { sub } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let result = self.server.stop_all_streams(self.subs[at].id, now);
                    let model = &mut self.subs[at];
                    if model.live() {
                        result.expect("stop_all_streams on a live subscription");
                        model.streams.clear();
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::Transmit { sub, payload } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let payload = PAYLOADS[payload % PAYLOADS.len()];
                    if let Ok(text) = JsonText::new(payload) {
                        let model = &self.subs[at];
                        expect.messages.push((
                            model.conn,
                            model.identifier.clone(),
                            parse_value(payload),
                            Some(payload.to_owned()),
                        ));
                        self.server
                            .transmit(model.id, &text, now)
                            .expect("transmit to a known subscription");
                    }
                }
            }
            Op::Broadcast {
                stream,
                payload,
                kind,
            } => {
                let stream = STREAMS[stream % STREAMS.len()];
                // Valid JSON that `Value` refuses (lone surrogate escapes)
                // cannot be checked structurally: leave it out.
                let valid = serde_json::from_str::<serde::de::IgnoredAny>(&payload).is_ok();
                if !valid || serde_json::from_str::<Value>(&payload).is_ok() {
                    let except = match kind {
                        BroadcastKind::Except(conn) => self.conn_at(conn),
                        _ => None,
                    };
                    let force_raw = kind == BroadcastKind::String;
                    let expected = self.expected_broadcast(stream, &payload, except, force_raw);
                    let delivery = match (kind, except) {
                        (BroadcastKind::Plain, _) | (BroadcastKind::Except(_), None) => {
                            self.server.broadcast(stream, &payload, now)
                        }
                        (BroadcastKind::Except(_), Some(except)) => {
                            self.server.broadcast_except(stream, &payload, except, now)
                        }
                        (BroadcastKind::String, _) => {
                            self.server.broadcast_string(stream, &payload, now)
                        }
                    };
                    broadcast = Some((expected, Some(delivery)));
                }
            }
            Op::SendFrame { conn } => {
                if let Some(id) = self.conn_at(conn) {
                    let (text, value) = self.application_frame();
                    let result = self.server.send_frame(id, &text, now);
                    if self.conn_model(id).state == ConnState::Open {
                        result.expect("send_frame to an open connection");
                        expect.application.push((id, value));
                    } else {
                        assert_eq!(result, Err(UsageError::ConnectionNotOpen));
                    }
                }
            }
            Op::SendFrameToIdentity { identity } => {
                let identity = IDENTITIES[identity % IDENTITIES.len()];
                let (text, value) = self.application_frame();
                let targets = self.open_conns_of(identity);
                for &id in &targets {
                    expect.application.push((id, value.clone()));
                }
                let reached = self.server.send_frame_to_identity(identity, &text, now);
                assert!(
                    reached <= targets.len(),
                    "send_frame_to_identity reached too many"
                );
                // Fewer only when a connection went past its bound (checked
                // with the farewells below).
                broadcast = Some((
                    Broadcasted::identity(targets),
                    Some(Delivery {
                        recipients: reached,
                        ..Default::default()
                    }),
                ));
            }
            Op::Disconnect {
                conn,
                reason,
                reconnect,
            } => {
                if let Some(id) = self.conn_at(conn) {
                    let reason = self::reason(reason);
                    expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
                    self.server
                        .disconnect(id, reason, reconnect, now)
                        .expect("disconnect a known connection");
                }
            }
            Op::DisconnectIdentity {
                identity,
                reconnect,
            } => {
                let identity = IDENTITIES[identity % IDENTITIES.len()];
                let targets = self.open_conns_of(identity);
                expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
                let closed = self.server.disconnect_identity(identity, reconnect, now);
                assert_eq!(closed, targets.len(), "disconnect_identity count");
            }
            Op::Restart => {
                expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
                self.server.restart(now);
            }
            Op::UseStale { which, how } => self.use_stale(which, how),
            Op::CompletePerform { pending, outcome } => {
                if !self.performs.is_empty() {
                    let perform = self.performs.remove(pending % self.performs.len());
                    let (built, expected) = self.outcome(&perform, outcome, &mut expect);
                    broadcast = expected.map(|b| (b, None));
                    self.server
                        .complete_perform(perform.token, built, now)
                        .expect("completing a pending perform");
                }
            }
            Op::VetoPerform { pending } => {
                if !self.performs.is_empty() {
                    let perform = self.performs.remove(pending % self.performs.len());
                    self.server
                        .veto_perform(perform.token, now)
                        .expect("vetoing a pending perform");
                }
            }
            Op::Join {
                conn,
                stream,
                envelope,
            } => {
                if let Some(id) = self.conn_at(conn) {
                    let name = STREAMS[stream % STREAMS.len()];
                    let envelope = envelope % ENVELOPES.len();
                    let result = self.server.join(id, name, self::envelope(envelope), now);
                    let model = self.conn_model(id);
                    if model.state == ConnState::Open {
                        result.expect("join on an open connection");
                        if !model.joins.iter().any(|(n, e)| n == name && *e == envelope) {
                            model.joins.push((name.to_owned(), envelope));
                        }
                    } else {
                        assert_eq!(result, Err(UsageError::ConnectionNotOpen), "join");
                    }
                }
            }
            Op::Leave {
                conn,
                stream,
                envelope,
            } => {
                if let Some(id) = self.conn_at(conn) {
                    let name = STREAMS[stream % STREAMS.len()];
                    let envelope = envelope.map(|e| e % ENVELOPES.len());
                    let built = envelope.map(self::envelope);
                    self.server
                        .leave(id, name, built.as_ref(), now)
                        .expect("leave on a known connection");
                    self.conn_model(id)
                        .joins
                        .retain(|(n, e)| !(n == name && envelope.is_none_or(|x| x == *e)));
                }
            }
        }
        self.settle(expect, subs_before, broadcast);
    }

    /// Builds a perform's outcome, applies it to the model as the core must
    /// (streams stopped, started, transmissions, broadcasts, disconnect) and
    /// returns it with the frames its broadcasts must deliver.
    fn outcome(
        &mut self,
        perform: &PerformModel,
        outcome: Outcome,
        expect: &mut Expect,
    ) -> (PerformOutcome, Option<Broadcasted>) {
        let mut built = PerformOutcome::new();
        let live = self.sub_pos(perform.sub).filter(|&at| self.subs[at].live());
        if outcome.stop_all {
            built = built.stop_all_streams();
            if let Some(at) = live {
                self.subs[at].streams.clear();
            }
        }
        for stream in outcome.stop {
            let name = STREAMS[stream % STREAMS.len()];
            built = built.stop_stream(name);
            if let Some(at) = live {
                self.subs[at].streams.retain(|(n, _)| n != name);
            }
        }
        for (stream, raw) in outcome.start {
            let name = STREAMS[stream % STREAMS.len()];
            let mode = if raw {
                built = built.stream_raw(name);
                StreamMode::RawString
            } else {
                built = built.stream(name);
                StreamMode::Json
            };
            if let Some(at) = live {
                let streams = &mut self.subs[at].streams;
                if !streams.iter().any(|(n, m)| n == name && *m == mode) {
                    streams.push((name.to_owned(), mode));
                }
            }
        }
        for payload in outcome.transmissions {
            let payload = PAYLOADS[payload % PAYLOADS.len()];
            if let Ok(text) = JsonText::new(payload) {
                built = built.transmit(text);
                if let Some(at) = live {
                    expect.messages.push((
                        perform.conn,
                        self.subs[at].identifier.clone(),
                        parse_value(payload),
                        Some(payload.to_owned()),
                    ));
                }
            }
        }
        let mut broadcasts: Option<Broadcasted> = None;
        for (stream, payload, except_sender) in outcome.broadcasts {
            let name = STREAMS[stream % STREAMS.len()];
            let payload = PAYLOADS[payload % PAYLOADS.len()];
            let Ok(text) = JsonText::new(payload) else {
                continue;
            };
            built = if except_sender {
                built.broadcast_except_sender(name, text)
            } else {
                built.broadcast(name, text)
            };
            let except = except_sender.then_some(perform.conn);
            let expected = self.expected_broadcast(name, payload, except, false);
            match &mut broadcasts {
                Some(all) => all.merge(expected),
                None => broadcasts = Some(expected),
            }
        }
        if let Some((reason, reconnect)) = outcome.disconnect {
            built = built.disconnect(self::reason(reason), reconnect);
            expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
        }
        (built, broadcasts)
    }

    fn open(&mut self, origin: Option<&str>, protocols: &[&str]) -> Option<ConnectionId> {
        let request = HandshakeRequest {
            host: Some("example.com"),
            origin,
            secure: false,
            protocols,
        };
        let allowed = self.server.config().origins.allows(&request);
        match self.server.handle_open(&request, self.now) {
            Ok(incoming) => {
                assert!(allowed, "opened a connection the origin policy refuses");
                if let Some(p) = &incoming.subprotocol {
                    assert!(
                        self.server.config().protocols.contains(p),
                        "negotiated an unsupported subprotocol {p}"
                    );
                }
                let id = incoming.connection;
                assert_eq!(incoming.pending.connection(), id);
                assert!(!self.closed_conns.contains(&id), "handle {id} reused");
                self.wire.open(id);
                self.conns.push(ConnModel {
                    id,
                    token: Some(incoming.pending),
                    state: ConnState::Pending,
                    identity: None,
                    joins: Vec::new(),
                });
                Some(id)
            }
            Err(refusal) => {
                assert!(!allowed, "refused an allowed origin: {refusal}");
                assert_eq!(refusal.status(), 404);
                None
            }
        }
    }

    fn accept_connection(&mut self, id: ConnectionId, identity: &str, expect: &mut Expect) {
        let now = self.now;
        let model = self.conn_model(id);
        let Some(token) = model.token.take() else {
            return;
        };
        model.state = ConnState::Open;
        model.identity = Some(identity.to_owned());
        expect.welcomed.push(id);
        self.server
            .accept_connection(token, Identity::new(identity), now)
            .expect("accepting a pending connection");
    }

    fn timeout(&mut self, expect: &mut Expect) {
        let due = self.server.poll_timeout().is_some_and(|d| d <= self.now);
        if due {
            let seconds = (UNIX_START + self.now.duration_since(self.start)).as_secs();
            let open = self
                .conns
                .iter()
                .filter(|c| c.state == ConnState::Open)
                .map(|c| c.id)
                .collect();
            expect.pings = Some((open, seconds));
        }
        self.server.handle_timeout(self.now);
        if due {
            let next = self.server.poll_timeout().expect("a ping deadline");
            assert!(next > self.now, "the ping deadline did not move past now");
        }
    }

    /// The pending performs of a connection that goes away become stale.
    fn stale_performs(&mut self, connection: ConnectionId) {
        let mut i = 0;
        while i < self.performs.len() {
            if self.performs[i].conn == connection {
                let perform = self.performs.remove(i);
                self.stale_performs.push(perform.token);
            } else {
                i += 1;
            }
        }
    }

    fn decide_stale(&mut self, which: usize, how: u8) {
        let now = self.now;
        let subs = self.stale_subs.len();
        let performs = self.stale_performs.len();
        let total = subs + performs + self.stale_conns.len();
        if total == 0 {
            return;
        }
        let which = which % total;
        if which >= subs && which < subs + performs {
            let token = self.stale_performs.swap_remove(which - subs);
            let result = match how % 2 {
                0 => self.server.complete_perform(
                    token,
                    PerformOutcome::new().broadcast("chat_lobby", JsonText::string("stale")),
                    now,
                ),
                _ => self.server.veto_perform(token, now),
            };
            assert_eq!(
                result,
                Err(UsageError::StaleDecision),
                "decision on a stale perform token"
            );
        } else if which < subs {
            let token = self.stale_subs.swap_remove(which);
            let result = match how % 3 {
                0 => self.server.accept_subscription(
                    token,
                    SubscriptionAccept::new().stream("chat_lobby"),
                    now,
                ),
                1 => self.server.reject_subscription(token, now),
                _ => self.server.abandon_subscription(token, now),
            };
            assert_eq!(
                result,
                Err(UsageError::StaleDecision),
                "decision on a stale subscription token"
            );
        } else {
            let token = self.stale_conns.swap_remove(which - subs - performs);
            let result = match how % 2 {
                0 => self
                    .server
                    .accept_connection(token, Identity::new("alice"), now),
                _ => self.server.reject_connection(token, now),
            };
            assert_eq!(
                result,
                Err(UsageError::StaleDecision),
                "decision on a stale connection token"
            );
        }
    }

    fn use_stale(&mut self, which: usize, how: u8) {
        let now = self.now;
        let conns = self.closed_conns.len();
        let total = conns + self.ended_subs.len();
        if total == 0 {
            return;
        }
        let which = which % total;
        if which < conns {
            let id = self.closed_conns[which];
            assert!(!self.server.contains(id));
            assert!(!self.server.is_open(id));
            assert_eq!(self.server.queued_bytes(id), 0);
            assert_eq!(self.server.identity(id), None);
            assert_eq!(self.server.subscriptions(id).count(), 0);
            let unknown = Err(UsageError::UnknownConnection);
            let result = match how % 10 {
                0 => self.server.handle_text(
                    id,
                    br#"{"command":"subscribe","identifier":"{\"channel\":\"X\"}"}"#,
                    now,
                ),
                1 => self.server.handle_binary(id, b"x", now),
                2 => self.server.handle_written(id, 1, now),
                3 => self.server.handle_close(id, now),
                4 => self.server.send_frame(id, &JsonText::string("x"), now),
                5 => self
                    .server
                    .disconnect(id, DisconnectReason::Remote, true, now),
                6 => self.server.set_expiry(id, Some(now), now),
                7 => self.server.set_identity(id, Identity::new("alice"), now),
                8 => self.server.join(id, "chat_lobby", envelope(0), now),
                _ => self.server.leave(id, "chat_lobby", None, now),
            };
            assert_eq!(result, unknown, "call with a closed connection's handle");
        } else {
            let id = self.ended_subs[which - conns];
            assert_eq!(
                self.server.identifier(id).map(|i| i.as_str().to_owned()),
                None
            );
            assert_eq!(self.server.connection_of(id), None);
            assert!(self.server.streams_of(id).is_empty());
            let unknown = Err(UsageError::UnknownSubscription);
            let result = match how % 5 {
                0 => self.server.transmit(id, &JsonText::string("x"), now),
                1 => self.server.unsubscribe(id, now),
                2 => self
                    .server
                    .stream_from(id, "chat_lobby", StreamMode::Json, now),
                3 => self.server.stop_stream_from(id, "chat_lobby", now),
                _ => self.server.stop_all_streams(id, now),
            };
            assert_eq!(result, unknown, "call with an ended subscription's handle");
        }
    }

    fn application_frame(&mut self) -> (JsonText, Value) {
        self.frame_seq += 1;
        let value = serde_json::json!({"type": "app", "seq": self.frame_seq, "html": "<&>"});
        let text = JsonText::from_value(&value).expect("encodes");
        (text, value)
    }

    fn open_conns_of(&self, identity: &str) -> Vec<ConnectionId> {
        self.conns
            .iter()
            .filter(|c| c.state == ConnState::Open && c.identity.as_deref() == Some(identity))
            .map(|c| c.id)
            .collect()
    }

    /// What a broadcast must do, from the model alone.
    fn expected_broadcast(
        &self,
        stream: &str,
        payload: &str,
        except: Option<ConnectionId>,
        force_raw: bool,
    ) -> Broadcasted {
        let valid = serde_json::from_str::<serde::de::IgnoredAny>(payload).is_ok();
        // A group's frame larger than a queue may hold is refused for all
        // its members (`Delivery::skipped_too_large`).
        let limit = self.limits.max_queued_bytes;
        let message_len = |raw: bool| {
            if raw {
                rails_string(payload).len()
            } else {
                payload.len()
            }
        };
        let mut too_large = 0;
        let mut groups: BTreeSet<(String, bool)> = BTreeSet::new();
        let mut skipped = 0;
        let mut frames: HashMap<ConnectionId, Vec<(String, Value, Option<String>)>> =
            HashMap::new();
        for sub in self.subs.iter().filter(|s| s.live()) {
            for (name, mode) in &sub.streams {
                if name != stream {
                    continue;
                }
                let raw = force_raw || *mode == StreamMode::RawString;
                if !raw && !valid {
                    skipped += 1;
                    continue;
                }
                let len = r#"{"identifier":,"message":}"#.len()
                    + rails_string(&sub.identifier).len()
                    + message_len(raw);
                if len > limit {
                    too_large += 1;
                    continue;
                }
                groups.insert((sub.identifier.clone(), *mode == StreamMode::RawString));
                if Some(sub.conn) == except {
                    continue;
                }
                let (message, exact) = if raw {
                    (Value::String(payload.to_owned()), None)
                } else {
                    (parse_value(payload), Some(payload.to_owned()))
                };
                frames
                    .entry(sub.conn)
                    .or_default()
                    .push((sub.identifier.clone(), message, exact));
            }
        }
        // Joins: one group per envelope.
        let mut envelopes: BTreeSet<usize> = BTreeSet::new();
        let mut enveloped: HashMap<ConnectionId, Vec<Value>> = HashMap::new();
        for conn in &self.conns {
            for (name, index) in &conn.joins {
                if name != stream {
                    continue;
                }
                let (prefix, suffix, raw) = ENVELOPES[*index];
                let raw = force_raw || raw;
                if !raw && !valid {
                    skipped += 1;
                    continue;
                }
                if prefix.len() + message_len(raw) + suffix.len() > limit {
                    too_large += 1;
                    continue;
                }
                envelopes.insert(*index);
                if Some(conn.id) == except {
                    continue;
                }
                let message = if raw {
                    Value::String(payload.to_owned()).to_string()
                } else {
                    payload.to_owned()
                };
                enveloped
                    .entry(conn.id)
                    .or_default()
                    .push(parse_value(&format!("{prefix}{message}{suffix}")));
            }
        }
        Broadcasted {
            frames,
            enveloped,
            encoded: Some(groups.len() + envelopes.len()),
            skipped: Some(skipped),
            too_large: Some(too_large),
            targets: None,
        }
    }

    /// Drains the core, updates the model and checks everything.
    fn settle(
        &mut self,
        mut expect: Expect,
        subs_before: BTreeSet<(ConnectionId, String)>,
        broadcast: Option<(Broadcasted, Option<Delivery>)>,
    ) {
        let seen = self.wire.drain(&mut self.server);
        let events: Vec<Event> = std::iter::from_fn(|| self.server.poll_event()).collect();

        // Events, in order.
        let mut disconnecting: Vec<(ConnectionId, String, bool)> = Vec::new();
        let mut requested: BTreeSet<(ConnectionId, String)> = BTreeSet::new();
        let mut closed_now: Option<ConnectionId> = None;
        for event in events {
            if let Some(closed) = closed_now {
                panic!("event after {closed} closed: {event:?}");
            }
            match event {
                Event::SubscriptionRequested {
                    connection,
                    identity,
                    identifier,
                    pending,
                } => {
                    let model = self.conn_model(connection);
                    assert_eq!(
                        model.state,
                        ConnState::Open,
                        "subscription on a connection not open"
                    );
                    assert_eq!(
                        Some(identity.as_str()),
                        model.identity.as_deref(),
                        "identity"
                    );
                    let raw = identifier.as_str().to_owned();
                    assert!(
                        raw.len() <= self.limits.max_identifier_bytes,
                        "identifier over the limit"
                    );
                    assert!(
                        identifier.param("channel").is_some_and(Value::is_string),
                        "identifier without a channel accepted"
                    );
                    let of_conn: Vec<&SubModel> =
                        self.subs.iter().filter(|s| s.conn == connection).collect();
                    assert!(
                        of_conn.iter().all(|s| s.identifier != raw),
                        "second subscription with identifier {raw} on {connection}"
                    );
                    assert!(
                        of_conn.iter().all(|s| s.live()),
                        "a second pending subscription on {connection}: commands must wait"
                    );
                    assert!(
                        of_conn.len() < self.limits.max_subscriptions,
                        "too many subscriptions"
                    );
                    assert!(
                        self.performs.iter().all(|p| p.conn != connection),
                        "a subscription requested on {connection} while a perform is pending: commands must wait"
                    );
                    let token = pending;
                    assert_eq!(token.connection(), connection, "token's connection");
                    requested.insert((connection, raw.clone()));
                    self.subs.push(SubModel {
                        id: token.subscription(),
                        conn: connection,
                        identifier: raw,
                        token: Some(token),
                        streams: Vec::new(),
                    });
                }
                Event::Perform(perform) => {
                    let at = self.sub_pos(perform.subscription).unwrap_or_else(|| {
                        panic!("perform on an unknown subscription: {perform:?}")
                    });
                    let sub = &self.subs[at];
                    assert!(sub.live(), "perform on a pending subscription");
                    assert_eq!(sub.conn, perform.connection);
                    assert_eq!(sub.identifier, perform.identifier.as_str());
                    let data: Value = serde_json::from_str(&perform.data).unwrap_or_else(|e| {
                        // Valid JSON `Value` refuses (lone surrogates) is fine.
                        serde_json::from_str::<serde::de::IgnoredAny>(&perform.data)
                            .unwrap_or_else(|_| panic!("perform data is not JSON ({e})"));
                        Value::Object(Default::default())
                    });
                    if let Some(action) = data.get("action").and_then(Value::as_str) {
                        if !action.is_empty() {
                            assert_eq!(&*perform.action, action, "action");
                        }
                    }
                    assert!(
                        self.subs
                            .iter()
                            .all(|s| s.conn != perform.connection || s.live()),
                        "a perform on {} while a subscription is pending: commands must wait",
                        perform.connection
                    );
                    assert!(
                        self.performs.iter().all(|p| p.conn != perform.connection),
                        "a second perform pending on {}: commands must wait",
                        perform.connection
                    );
                    assert_eq!(perform.pending.connection(), perform.connection);
                    assert_eq!(perform.pending.subscription(), perform.subscription);
                    self.performs.push(PerformModel {
                        conn: perform.connection,
                        sub: perform.subscription,
                        token: perform.pending,
                    });
                }
                Event::Unsubscribed {
                    connection,
                    subscription,
                    identifier,
                    cause,
                    ..
                } => {
                    let at = self.sub_pos(subscription).unwrap_or_else(|| {
                        panic!("unsubscribed an unknown subscription {subscription}")
                    });
                    let sub = self.subs.remove(at);
                    assert!(sub.live(), "Unsubscribed for a pending subscription");
                    assert_eq!(sub.conn, connection);
                    assert_eq!(sub.identifier, identifier.as_str());
                    self.ended_subs.push(sub.id);
                    match cause {
                        UnsubscribeCause::Command => {}
                        UnsubscribeCause::Disconnected => assert_eq!(
                            self.conn_model(connection).state,
                            ConnState::Closing,
                            "Disconnected cause on a connection not closing"
                        ),
                        other => {
                            assert_eq!(Some(other), expect.unsubscribe_cause, "unsubscribe cause")
                        }
                    }
                }
                Event::StreamStarted(name) => {
                    assert!(
                        self.streams.insert(name.as_str().to_owned()),
                        "stream {name} started twice"
                    );
                }
                Event::StreamStopped(name) => {
                    assert!(
                        self.streams.remove(name.as_str()),
                        "stream {name} stopped but not started"
                    );
                }
                Event::CommandFailed { connection, error } => {
                    let _ = self.conn_model(connection);
                    let shown = error.to_string();
                    assert!(
                        shown.len() <= 1024,
                        "error message of {} bytes",
                        shown.len()
                    );
                    if let CommandError::FrameTooLarge { len, limit } = error {
                        assert!(len > limit);
                    }
                }
                Event::Disconnecting {
                    connection,
                    reason,
                    reconnect,
                } => {
                    let model = self.conn_model(connection);
                    assert_ne!(
                        model.state,
                        ConnState::Closing,
                        "{connection} disconnected twice"
                    );
                    model.state = ConnState::Closing;
                    model.joins.clear();
                    if let Some(token) = model.token.take() {
                        self.stale_conns.push(token);
                    }
                    self.stale_performs(connection);
                    disconnecting.push((connection, reason.as_str().to_owned(), reconnect));
                    // Pending subscriptions go without a word.
                    let mut i = 0;
                    while i < self.subs.len() {
                        if self.subs[i].conn == connection && !self.subs[i].live() {
                            let sub = self.subs.remove(i);
                            self.ended_subs.push(sub.id);
                            self.stale_subs.push(sub.token.expect("pending"));
                        } else {
                            i += 1;
                        }
                    }
                }
                Event::Closed {
                    connection,
                    identity,
                } => {
                    assert_eq!(
                        expect.closing,
                        Some(connection),
                        "Closed for a connection not closed by the host"
                    );
                    let at = self
                        .conns
                        .iter()
                        .position(|c| c.id == connection)
                        .expect("known connection");
                    let model = self.conns.remove(at);
                    assert_eq!(
                        identity.as_ref().map(Identity::as_str),
                        model.identity.as_deref()
                    );
                    if let Some(token) = model.token {
                        self.stale_conns.push(token);
                    }
                    self.stale_performs(connection);
                    let mut i = 0;
                    while i < self.subs.len() {
                        if self.subs[i].conn == connection {
                            let sub = self.subs.remove(i);
                            assert!(
                                !sub.live(),
                                "live subscription {} survived its connection {connection}",
                                sub.id
                            );
                            self.ended_subs.push(sub.id);
                            self.stale_subs.push(sub.token.expect("pending"));
                        } else {
                            i += 1;
                        }
                    }
                    self.wire.forget(connection);
                    self.closed_conns.push(connection);
                    closed_now = Some(connection);
                }
                other => panic!("unknown event {other:?}"),
            }
        }
        if let Some(id) = expect.closing {
            assert_eq!(closed_now, Some(id), "handle_close without Closed");
        }

        // Frames, in order.
        let mut messages: HashMap<ConnectionId, Vec<(String, Value, String)>> = HashMap::new();
        let mut pinged: BTreeSet<ConnectionId> = BTreeSet::new();
        let mut farewells: Vec<(ConnectionId, String, bool)> = Vec::new();
        let mut enveloped: HashMap<ConnectionId, Vec<Value>> = HashMap::new();
        for item in seen {
            match item {
                Seen::Farewell {
                    connection,
                    reason,
                    reconnect,
                } => farewells.push((connection, reason, reconnect)),
                Seen::Frame(connection, frame) => match frame {
                    ServerFrame::Welcome => assert!(
                        expect.welcomed.contains(&connection),
                        "welcome on {connection} not accepted now"
                    ),
                    ServerFrame::Ping(seconds) => {
                        let (open, expected) = expect.pings.as_ref().unwrap_or_else(|| {
                            panic!("ping outside a due timeout on {connection}")
                        });
                        assert_eq!(seconds, *expected, "ping seconds");
                        assert!(open.contains(&connection), "ping to {connection}, not open");
                        assert!(pinged.insert(connection), "two pings on {connection}");
                    }
                    ServerFrame::Confirm(identifier) => {
                        let key = (connection, identifier);
                        let at = expect
                            .confirmed
                            .iter()
                            .position(|k| *k == key)
                            .unwrap_or_else(|| panic!("unexpected confirmation {key:?}"));
                        expect.confirmed.remove(at);
                        // Transmissions of `subscribed` come first.
                        assert!(
                            expect
                                .messages
                                .iter()
                                .all(|(c, i, _, _)| (c, i) != (&key.0, &key.1)),
                            "confirmation before the subscription's transmissions"
                        );
                    }
                    ServerFrame::Reject(identifier) => {
                        let key = (connection, identifier);
                        let at = expect
                            .rejected
                            .iter()
                            .position(|k| *k == key)
                            .unwrap_or_else(|| panic!("unexpected rejection {key:?}"));
                        expect.rejected.remove(at);
                    }
                    ServerFrame::Message {
                        identifier,
                        message,
                        raw,
                    } => {
                        let key = (connection, identifier.clone());
                        assert!(
                            subs_before.contains(&key) || requested.contains(&key),
                            "message for {identifier} on {connection}, which has no such subscription"
                        );
                        if let Some(at) = expect.messages.iter().position(|(c, i, v, _)| {
                            *c == connection && *i == identifier && *v == message
                        }) {
                            let (_, _, value, exact) = expect.messages.remove(at);
                            assert_eq!(message, value, "transmitted message");
                            if let Some(exact) = exact {
                                assert_eq!(raw, exact, "transmitted message spliced as given");
                            }
                        } else {
                            messages
                                .entry(connection)
                                .or_default()
                                .push((identifier, message, raw));
                        }
                    }
                    ServerFrame::Application(value) => {
                        match expect
                            .application
                            .iter()
                            .position(|(c, v)| *c == connection && *v == value)
                        {
                            Some(at) => {
                                expect.application.remove(at);
                            }
                            None => enveloped.entry(connection).or_default().push(value),
                        }
                    }
                    ServerFrame::Disconnect { .. } => unreachable!("checked by the wire"),
                },
                Seen::Custom(..) | Seen::Closed(_) => {
                    unreachable!("no connection of a custom protocol here")
                }
            }
        }

        // Every disconnect has its farewell and the other way round.
        let mut farewell_keys = farewells.clone();
        farewell_keys.sort();
        let mut disconnect_keys = disconnecting.clone();
        disconnect_keys.sort();
        assert_eq!(
            farewell_keys, disconnect_keys,
            "farewell frames against Disconnecting events"
        );
        let overflowed: BTreeSet<ConnectionId> = disconnecting
            .iter()
            .filter(|(_, reason, _)| reason == "too_slow")
            .map(|(c, _, _)| *c)
            .collect();
        for (connection, _, _) in &disconnecting {
            assert!(
                self.subs.iter().all(|s| s.conn != *connection),
                "subscription survived the disconnect of {connection}"
            );
        }

        // What was expected and did not come must be excused by an overflow.
        let excused = |c: &ConnectionId| overflowed.contains(c);
        for id in &expect.welcomed {
            assert!(self.wire.welcomed(*id) || excused(id), "no welcome on {id}");
        }
        for (c, i) in expect.confirmed.iter().chain(&expect.rejected) {
            assert!(excused(c), "no answer to the subscription {i} on {c}");
        }
        for (c, i, _, _) in &expect.messages {
            assert!(excused(c), "message for {i} on {c} missing");
        }
        for (c, v) in &expect.application {
            assert!(excused(c), "frame {v} on {c} missing");
        }
        if let Some((open, _)) = &expect.pings {
            for c in open {
                assert!(pinged.contains(c) || excused(c), "no ping on {c}");
            }
        }

        // Broadcasts reach exactly the model's subscribers.
        if let Some((expected, delivery)) = broadcast {
            if let (Some(targets), Some(delivery)) = (&expected.targets, delivery) {
                let missed = targets.iter().filter(|c| excused(c)).count();
                assert_eq!(
                    delivery.recipients + missed,
                    targets.len(),
                    "send_frame_to_identity reach"
                );
            }
            if let (Some(encoded), Some(delivery)) = (expected.encoded, delivery) {
                assert_eq!(
                    delivery.encoded, encoded,
                    "frames encoded: one per group (identifier and mode, or envelope)"
                );
            }
            if let (Some(skipped), Some(delivery)) = (expected.skipped, delivery) {
                assert_eq!(
                    delivery.skipped_invalid_json, skipped,
                    "skipped for invalid JSON"
                );
            }
            if let (Some(too_large), Some(delivery)) = (expected.too_large, delivery) {
                assert_eq!(
                    delivery.skipped_too_large, too_large,
                    "skipped as larger than a queue may hold"
                );
            }
            let mut recipients = 0;
            let conns: BTreeSet<ConnectionId> = expected
                .frames
                .keys()
                .chain(messages.keys())
                .copied()
                .collect();
            for c in conns {
                let mut want: Vec<(String, Value, Option<String>)> =
                    expected.frames.get(&c).cloned().unwrap_or_default();
                let got: Vec<(String, Value, String)> = messages.remove(&c).unwrap_or_default();
                recipients += got.len();
                for (identifier, message, raw) in &got {
                    let at = want
                        .iter()
                        .position(|(i, m, _)| i == identifier && m == message)
                        .unwrap_or_else(|| {
                            panic!("broadcast frame {identifier} {message} on {c} not expected (expected {want:?})")
                        });
                    let (_, _, exact) = want.remove(at);
                    if let Some(exact) = exact {
                        assert_eq!(raw, &exact, "broadcast payload spliced as given");
                    }
                }
                assert!(
                    want.is_empty() || excused(&c),
                    "broadcast frames {want:?} missing on {c}"
                );
            }
            let conns: BTreeSet<ConnectionId> = expected
                .enveloped
                .keys()
                .chain(enveloped.keys())
                .copied()
                .collect();
            for c in conns {
                let mut want = expected.enveloped.get(&c).cloned().unwrap_or_default();
                let got = enveloped.remove(&c).unwrap_or_default();
                recipients += got.len();
                for value in &got {
                    let at = want.iter().position(|v| v == value).unwrap_or_else(|| {
                        panic!("broadcast frame {value} on {c} not expected (expected {want:?})")
                    });
                    want.remove(at);
                }
                assert!(
                    want.is_empty() || excused(&c),
                    "enveloped frames {want:?} missing on {c}"
                );
            }
            if let (None, Some(delivery)) = (&expected.targets, delivery) {
                assert_eq!(delivery.recipients, recipients, "Delivery::recipients");
            }
        }
        assert!(
            messages.is_empty(),
            "unexpected message frames {messages:?}"
        );
        assert!(enveloped.is_empty(), "unexpected frames {enveloped:?}");

        self.check_model();
    }

    /// The core's queries against the model.
    fn check_model(&mut self) {
        let deadline = self.server.poll_timeout();
        assert!(
            deadline >= self.last_deadline,
            "poll_timeout went back in time"
        );
        self.last_deadline = deadline;

        self.wire.check_queued(&self.server);
        assert_eq!(
            self.server.connection_count(),
            self.conns.len(),
            "connection_count"
        );
        assert_eq!(
            self.server.subscription_count(),
            self.subs.len(),
            "subscription_count"
        );
        for conn in &self.conns {
            assert_eq!(
                self.server.is_open(conn.id),
                conn.state == ConnState::Open,
                "is_open"
            );
            assert!(self.server.contains(conn.id));
            let identity = if conn.state == ConnState::Pending {
                None
            } else {
                conn.identity.as_deref()
            };
            if conn.state != ConnState::Closing {
                assert_eq!(
                    self.server.identity(conn.id).map(Identity::as_str),
                    identity,
                    "identity"
                );
            }
            let mut core: Vec<(SubscriptionId, String, bool)> = self
                .server
                .subscriptions(conn.id)
                .map(|(id, identifier, live)| (id, identifier.as_str().to_owned(), live))
                .collect();
            core.sort();
            let mut model: Vec<(SubscriptionId, String, bool)> = self
                .subs
                .iter()
                .filter(|s| s.conn == conn.id)
                .map(|s| (s.id, s.identifier.clone(), s.live()))
                .collect();
            model.sort();
            assert_eq!(core, model, "subscriptions of {}", conn.id);
        }
        let mut per_stream: BTreeMap<&str, usize> = BTreeMap::new();
        for sub in &self.subs {
            assert_eq!(self.server.connection_of(sub.id), Some(sub.conn));
            assert_eq!(
                self.server.identifier(sub.id).map(|i| i.as_str()),
                Some(sub.identifier.as_str())
            );
            let mut core: Vec<String> = self
                .server
                .streams_of(sub.id)
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            core.sort();
            let mut model: Vec<String> = sub.streams.iter().map(|(n, _)| n.clone()).collect();
            model.sort();
            assert_eq!(core, model, "streams of {}", sub.id);
            for (name, _) in &sub.streams {
                *per_stream.entry(name).or_default() += 1;
            }
        }
        for conn in &self.conns {
            let mut core: Vec<String> = self
                .server
                .joined_streams(conn.id)
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            core.sort();
            let mut model: Vec<String> = conn.joins.iter().map(|(n, _)| n.clone()).collect();
            model.sort();
            assert_eq!(core, model, "joined streams of {}", conn.id);
            for (name, _) in &conn.joins {
                *per_stream.entry(name).or_default() += 1;
            }
        }
        assert_eq!(self.server.stream_count(), per_stream.len(), "stream_count");
        let reported: Vec<&str> = self.streams.iter().map(String::as_str).collect();
        let model: Vec<&str> = per_stream.keys().copied().collect();
        assert_eq!(
            reported, model,
            "StreamStarted/StreamStopped against the model's streams"
        );
        for name in STREAMS {
            assert_eq!(
                self.server.subscriber_count(name),
                per_stream.get(name).copied().unwrap_or(0),
                "subscriber_count({name})"
            );
        }
    }
}

/// What a broadcast (or a frame to an identity) must deliver.
#[derive(Debug, Default)]
struct Broadcasted {
    /// Per connection: `(identifier, message, exact JSON text)` frames.
    frames: HashMap<ConnectionId, Vec<(String, Value, Option<String>)>>,
    /// Per connection: the frames of its joins (whole, as JSON values).
    enveloped: HashMap<ConnectionId, Vec<Value>>,
    encoded: Option<usize>,
    skipped: Option<usize>,
    too_large: Option<usize>,
    /// For frames to an identity: the connections it must reach.
    targets: Option<Vec<ConnectionId>>,
}

impl Broadcasted {
    fn identity(targets: Vec<ConnectionId>) -> Self {
        Self {
            targets: Some(targets),
            ..Self::default()
        }
    }

    /// Adds the frames of another broadcast of the same operation (the
    /// counts of `Delivery` are then unknown).
    fn merge(&mut self, other: Broadcasted) {
        for (c, frames) in other.frames {
            self.frames.entry(c).or_default().extend(frames);
        }
        for (c, frames) in other.enveloped {
            self.enveloped.entry(c).or_default().extend(frames);
        }
        self.encoded = None;
        self.skipped = None;
        self.too_large = None;
    }
}

/// `text` as a JSON string literal, escaped as Rails escapes it.
fn rails_string(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    cable_proto::json::write_rails_string(&mut out, text);
    out
}

fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("payload {text:?} is not JSON: {e}"))
}
