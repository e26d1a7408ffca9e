//! What an input means: the pools its indices pick from, the configuration
//! its first bytes draw (`Host::new`: decision and upstream timeouts, ping
//! interval, hold bound, `confirm_when_streams_ready`), and one operation
//! per step (`Host::step`), which it runs, drains and checks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cable_proto::server::{Config, DecisionTimeouts, LimitAction, Limits, Server};
use cable_proto::OriginPolicy;

use crate::input::Input;
use crate::wire::Wire;

use super::Host;

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
pub(super) const LIFETIMES: &[Duration] = &[
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(50),
    Duration::from_secs(3),
    Duration::from_secs(3600),
    Duration::from_secs(1_000_000),
];

/// Streams.
pub(super) const STREAMS: &[&str] = &["s0", "s1", "s2", "s3"];

/// Identifiers (all valid).
pub(super) const IDENTIFIERS: &[&str] = &[
    r#"{"channel":"TimerChannel","n":0}"#,
    r#"{"channel":"TimerChannel","n":1}"#,
    r#"{"channel":"TimerChannel","n":2}"#,
    r#"{"channel":"TimerChannel","n":3}"#,
];

/// The index of `identifier` in [`IDENTIFIERS`].
pub(super) fn ident_index(identifier: &str) -> usize {
    IDENTIFIERS
        .iter()
        .position(|i| *i == identifier)
        .unwrap_or_else(|| panic!("unknown identifier {identifier}"))
}

impl Host {
    pub(super) fn new(input: &mut Input<'_>) -> Self {
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

    pub(super) fn step(&mut self, input: &mut Input<'_>) {
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
}
