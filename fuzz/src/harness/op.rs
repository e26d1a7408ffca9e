//! The harness's vocabulary: the operations a host runs ([`Op`], with
//! perform [`Outcome`]s and [`BroadcastKind`]s), the pools their indices
//! pick from (identifiers, streams, identities, payloads, `data`, envelopes,
//! disconnect reasons, origins, subprotocols), and the decoders the targets
//! share ([`Outcome::read`], [`client_frame`]).

use cable_proto::server::Envelope;
use cable_proto::{DisconnectReason, StreamMode};
use serde_json::Value;

use crate::input::Input;

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
pub(super) const STREAMS: &[&str] = &[
    "chat_lobby",
    "chat_r1",
    "notification:alice",
    "feed_a",
    "feed_b",
    "",
    "quote\"back\\slash<&>",
];

/// Identities connections are accepted with.
pub(super) const IDENTITIES: &[&str] = &["alice", "bob", "carol", ""];

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
pub(super) const ENVELOPES: &[(&str, &str, bool)] = &[
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
pub(super) fn envelope(index: usize) -> Envelope {
    let (prefix, suffix, raw) = ENVELOPES[index % ENVELOPES.len()];
    let mode = if raw {
        StreamMode::RawString
    } else {
        StreamMode::Json
    };
    Envelope::new(prefix.as_bytes().to_vec(), suffix.as_bytes().to_vec(), mode)
}

/// Disconnect reasons of `disconnect` and of perform outcomes.
pub(super) fn reason(index: usize) -> DisconnectReason {
    let reasons = [
        DisconnectReason::TokenExpired,
        DisconnectReason::Remote,
        DisconnectReason::Other("custom \"reason\" <&>".into()),
        DisconnectReason::InvalidRequest,
    ];
    reasons[index % reasons.len()].clone()
}

/// Origins of upgrade requests (the host is always `example.com`).
pub(super) const ORIGINS: &[Option<&str>] = &[
    Some("http://example.com"),
    Some("https://example.com"),
    Some("http://allowed.example"),
    Some("http://localhost:3000"),
    Some("http://localhost:"),
    Some("http://evil.example"),
    None,
];

/// `Sec-WebSocket-Protocol` header values.
pub(super) const PROTOCOLS: &[&[&str]] = &[
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
        /// Index into `ORIGINS`.
        origin: usize,
        /// Index into `PROTOCOLS`.
        protocols: usize,
    },
    /// Open and accept at once, with the identity at this index of
    /// `IDENTITIES`.
    Connect {
        /// Index into `IDENTITIES`.
        identity: usize,
    },
    /// Accept a pending connection.
    AcceptConnection {
        /// Which connection (modulo the known ones).
        conn: usize,
        /// Index into `IDENTITIES`.
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
        /// Streams (indices into `STREAMS`) and whether raw.
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
        /// Index into `STREAMS`.
        stream: usize,
        /// Raw-string mode.
        raw: bool,
    },
    /// `stop_stream_from`.
    StopStreamFrom {
        /// Which subscription.
        sub: usize,
        /// Index into `STREAMS`.
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
        /// Index into `STREAMS`.
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
        /// Index into `IDENTITIES`.
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
        /// Index into `IDENTITIES`.
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
        /// Index into `STREAMS`.
        stream: usize,
        /// Index into `ENVELOPES`.
        envelope: usize,
    },
    /// `leave` a stream joined.
    Leave {
        /// Which connection.
        conn: usize,
        /// Index into `STREAMS`.
        stream: usize,
        /// Index into `ENVELOPES`, or any envelope.
        envelope: Option<usize>,
    },
}

/// A perform's outcome, as indices into the pools.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// `stop_all_streams`.
    pub stop_all: bool,
    /// Streams stopped (indices into `STREAMS`).
    pub stop: Vec<usize>,
    /// Streams started (indices into `STREAMS`) and whether raw.
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
