//! Target `consumer`: cable-proto's client state machine,
//! [`cable_proto::client::Consumer`], under every input it takes: server
//! frames (arbitrary bytes, or frames built from picks over a few
//! identifiers: welcome, ping, confirmations, rejections, messages,
//! disconnects with every flag and reason), opens with any subprotocol,
//! closes, subscribes (valid and invalid identifiers, past the limit),
//! unsubscribes, performs, credential answers, connect and disconnect, and
//! time moving by anything from 0 to hours, with a jitter source that
//! answers NaN, infinities and values outside `[0, 1)`.
//!
//! Invariants after every step:
//! - nothing panics, and every deadline that was due fired: `poll_timeout()`
//!   is later than `now`;
//! - every frame written parses as a client command, is about an identifier
//!   that was subscribed, and is written only while the socket is welcomed
//!   (before or after the step);
//! - `Connect` leaves the socket connecting, `Close` leaves it closed,
//!   `Stopped` leaves the monitor stopped (each unless a later instruction of
//!   the same step says otherwise);
//! - `Connected`, `Received` and `Disconnected` name live subscriptions,
//!   `Rejected` ones that are gone; a step's events are bounded by the
//!   subscriptions it could concern.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`:
//! `std`, `cable_proto` and `serde_json` only.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cable_proto::client::{Consumer, ConsumerConfig, Event, SocketState, SubscriptionKey};
use cable_proto::command::{parse, Command};

use crate::input::Input;

/// Most steps one input runs.
pub const MAX_STEPS: usize = 256;

const IDENTIFIERS: [&str; 4] = [
    r#"{"channel":"ChatChannel","room":"1"}"#,
    r#"{"room":"1","channel":"ChatChannel"}"#,
    r#"{"channel":"Other"}"#,
    r#"{"channel":"<\u2028>","n":1.5}"#,
];
const SUBPROTOCOLS: [Option<&str>; 4] = [
    Some("actioncable-v1-json"),
    None,
    Some("actioncable-unsupported"),
    Some(""),
];
const JITTER: [f64; 8] = [
    0.0,
    0.5,
    0.999_999,
    1.0,
    f64::NAN,
    -1.0,
    f64::INFINITY,
    1e300,
];
const STEPS_MS: [u64; 8] = [0, 1, 499, 500, 6_000, 6_001, 30_000, 3_600_000];
const REASONS: [&str; 6] = [
    "server_restart",
    "unauthorized",
    "token_expired",
    "remote",
    "invalid_request",
    "no_pong",
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let jitter: Vec<f64> = (0..4).map(|_| *input.pick(&JITTER)).collect();
    let mut turn = 0usize;
    let source = move || {
        turn = turn.wrapping_add(1);
        jitter[turn % jitter.len()]
    };
    let mut config = ConsumerConfig::default();
    config.max_subscriptions = 6;
    config.max_identifier_len = 64;
    // The host reads the clock once, for the epoch of its virtual time.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let mut consumer = Consumer::new(config, source, start);
    let mut keys: Vec<SubscriptionKey> = Vec::new();
    let mut subscribed: BTreeSet<String> = BTreeSet::new();

    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let before = consumer.socket_state();
        let live_before = keys.len();
        match input.below(12) {
            0 => {
                let identifier = if input.bool() {
                    (*input.pick(&IDENTIFIERS)).to_owned()
                } else {
                    String::from_utf8_lossy(input.bytes(80)).into_owned()
                };
                if let Ok(key) = consumer.subscribe(&identifier, now) {
                    keys.push(key);
                    subscribed.insert(identifier);
                }
            }
            1 => {
                if !keys.is_empty() {
                    let key = keys.remove(input.below(keys.len()));
                    consumer.unsubscribe(key, now);
                }
            }
            2 => {
                if let Some(&key) = keys.get(input.below(keys.len().max(1))) {
                    let data = serde_json::json!({"text": "hi", "action": "kept"});
                    let action = String::from_utf8_lossy(input.bytes(8)).into_owned();
                    let _ = consumer.perform(key, &action, data.as_object().unwrap(), now);
                }
            }
            3 => consumer.handle_open(*input.pick(&SUBPROTOCOLS), now),
            4 | 5 => {
                let frame = built_frame(&mut input);
                let _ = consumer.handle_text(frame.as_bytes(), now);
            }
            6 => {
                let _ = consumer.handle_text(input.bytes(120), now);
            }
            7 => consumer.handle_close(now),
            8 => {
                now += Duration::from_millis(*input.pick(&STEPS_MS) + u64::from(input.byte()));
                consumer.handle_timeout(now);
            }
            9 => {
                if input.bool() {
                    consumer.credential_refreshed(now);
                } else {
                    consumer.credential_unavailable(now);
                }
            }
            10 => {
                consumer.connect(now);
            }
            _ => consumer.disconnect(now),
        }
        // Keys the consumer dropped (rejections) leave the model too.
        let events: Vec<Event> = std::iter::from_fn(|| consumer.poll_event()).collect();
        for event in &events {
            if let Event::Rejected { key } = event {
                assert!(
                    consumer.identifier(*key).is_none(),
                    "a rejected key lives on"
                );
                keys.retain(|k| k != key);
            }
        }
        check(
            &mut consumer,
            now,
            before,
            &events,
            &keys,
            &subscribed,
            live_before,
        );
    }
}

fn built_frame(input: &mut Input<'_>) -> String {
    let identifier = serde_json::to_string(input.pick(&IDENTIFIERS)).unwrap();
    match input.below(9) {
        0 => r#"{"type":"welcome"}"#.to_owned(),
        1 => r#"{"type":"welcome","sid":"abc"}"#.to_owned(),
        2 => r#"{"type":"ping","message":1700000000}"#.to_owned(),
        3 => format!(r#"{{"identifier":{identifier},"type":"confirm_subscription"}}"#),
        4 => format!(r#"{{"identifier":{identifier},"type":"reject_subscription"}}"#),
        5 => format!(r#"{{"identifier":{identifier},"message":{{"n":1}}}}"#),
        6 => {
            let reason = input.pick(&REASONS);
            match input.below(3) {
                0 => format!(r#"{{"type":"disconnect","reason":"{reason}","reconnect":true}}"#),
                1 => format!(r#"{{"type":"disconnect","reason":"{reason}","reconnect":false}}"#),
                _ => format!(r#"{{"type":"disconnect","reason":"{reason}"}}"#),
            }
        }
        7 => format!(r#"{{"type":"confirm_history","identifier":{identifier}}}"#),
        _ => r#"{"type":"disconnect","reconnect":null,"reason":null}"#.to_owned(),
    }
}

fn check(
    consumer: &mut Consumer,
    now: Instant,
    before: SocketState,
    events: &[Event],
    keys: &[SubscriptionKey],
    subscribed: &BTreeSet<String>,
    live_before: usize,
) {
    if let Some(at) = consumer.poll_timeout() {
        assert!(at > now, "a due deadline did not fire");
    }
    let after = consumer.socket_state();
    let mut written = 0;
    while let Some(frame) = consumer.poll_transmit() {
        written += 1;
        assert!(
            before == SocketState::Welcomed || after == SocketState::Welcomed,
            "wrote {frame} while {before:?} -> {after:?}"
        );
        let command = parse(frame.as_bytes()).expect("a command the server parses");
        assert!(
            subscribed.contains(command.identifier()),
            "a command about an identifier never subscribed: {frame}"
        );
        if let Command::Message { data, .. } = &command {
            let data: serde_json::Value = serde_json::from_str(data).expect("data is JSON");
            assert!(data.get("action").is_some(), "perform without action");
        }
    }
    let live = live_before.max(keys.len()) + 1;
    assert!(
        written <= 2 * live,
        "{written} frames for {live} subscriptions"
    );
    assert!(events.len() <= 4 * live + 8, "{} events", events.len());
    let last = |a: fn(&Event) -> bool| events.iter().rposition(a);
    let connect = last(|e| matches!(e, Event::Connect));
    let close = last(|e| matches!(e, Event::Close));
    let stopped = last(|e| matches!(e, Event::Stopped(_)));
    match (connect, close) {
        (Some(c), x) if x.is_none_or(|x| x < c) => {
            assert_eq!(after, SocketState::Connecting, "{events:?}")
        }
        (_, Some(_)) => assert_eq!(after, SocketState::Closed, "{events:?}"),
        _ => {}
    }
    if let Some(s) = stopped {
        if connect.is_none_or(|c| c < s) {
            assert!(!consumer.is_running(), "stopped but running: {events:?}");
        }
    }
    for event in events {
        match event {
            Event::Connected { key, .. } | Event::Received { key, .. } => {
                assert!(keys.contains(key), "{event:?} for a dead key");
            }
            Event::Disconnected { key, .. } => {
                assert!(consumer.identifier(*key).is_some(), "{event:?}");
            }
            _ => {}
        }
    }
}
