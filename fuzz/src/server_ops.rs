//! Target `server_ops`: the server state machine driven by an arbitrary
//! sequence of operations (opens, decisions, text and binary frames,
//! closes, written-bytes reports, time and timeouts, subscription
//! decisions, performs completed with an outcome or vetoed (or left pending
//! while the connection's later frames are held), stream changes, joins
//! with envelopes, transmits, broadcasts, disconnects, restarts, stale
//! tokens and handles), under limits small enough to be reached.
//! Every operation is checked by the [`Harness`].
//!
//! Input layout: four bytes of configuration (limits, ping interval, origin
//! policy), then one operation per byte code and its arguments.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only.

use std::time::Duration;

use crate::harness::{client_frame, config, limits, BroadcastKind, Harness, Op, Outcome};
use crate::input::Input;

/// Most operations one input runs (keeps every execution fast).
pub const MAX_OPS: usize = 256;

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = limits(&mut input);
    let ping = *input.pick(&[
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(250),
        Duration::from_secs(3),
    ]);
    let allow_any = input.bool();
    let mut harness = Harness::new(config(limits, ping, allow_any));
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        harness.step(op(&mut input));
        ops += 1;
    }
    harness.finish();
}

/// Decodes one operation.
pub fn op(input: &mut Input<'_>) -> Op {
    match input.byte() % 36 {
        0 | 1 => Op::Open {
            origin: input.below(256),
            protocols: input.below(256),
        },
        2 | 3 => Op::Connect {
            identity: input.below(256),
        },
        4 => Op::AcceptConnection {
            conn: input.below(256),
            identity: input.below(256),
        },
        5 => Op::RejectConnection {
            conn: input.below(256),
        },
        6..=9 => Op::Text {
            conn: input.below(256),
            frame: client_frame(input),
        },
        10 => Op::Binary {
            conn: input.below(256),
            len: input.below(256),
        },
        11 => Op::Close {
            conn: input.below(256),
        },
        12 => Op::Written {
            conn: input.below(256),
            bytes: usize::from(input.u16()),
            all: input.bool(),
        },
        13 => Op::Advance {
            millis: u32::from(input.u16()),
        },
        14 => Op::Timeout,
        15 => Op::TimeoutAtDeadline,
        16 | 17 => Op::AcceptSubscription {
            pending: input.below(256),
            streams: (0..input.below(4))
                .map(|_| (input.below(256), input.bool()))
                .collect(),
            transmissions: (0..input.below(3)).map(|_| input.below(256)).collect(),
        },
        18 => Op::RejectSubscription {
            pending: input.below(256),
        },
        19 => Op::AbandonSubscription {
            pending: input.below(256),
        },
        20 => Op::DecideStale {
            which: input.below(256),
            how: input.byte(),
        },
        21 => Op::Unsubscribe {
            sub: input.below(256),
        },
        22 => Op::StreamFrom {
            sub: input.below(256),
            stream: input.below(256),
            raw: input.bool(),
        },
        23 => Op::StopStreamFrom {
            sub: input.below(256),
            stream: input.below(256),
        },
        24 => Op::StopAllStreams {
            sub: input.below(256),
        },
        25 => Op::Transmit {
            sub: input.below(256),
            payload: input.below(256),
        },
        26 => broadcast(input),
        27 => Op::SendFrame {
            conn: input.below(256),
        },
        28 => Op::SendFrameToIdentity {
            identity: input.below(256),
        },
        29 => Op::Disconnect {
            conn: input.below(256),
            reason: input.below(256),
            reconnect: input.bool(),
        },
        30 => match input.below(3) {
            0 => Op::Restart,
            _ => Op::DisconnectIdentity {
                identity: input.below(256),
                reconnect: input.bool(),
            },
        },
        31 => Op::UseStale {
            which: input.below(256),
            how: input.byte(),
        },
        32 | 33 => Op::CompletePerform {
            pending: input.below(256),
            outcome: Outcome::read(input),
        },
        34 => Op::VetoPerform {
            pending: input.below(256),
        },
        _ => join_or_leave(input),
    }
}

/// A `join` (two times in three) or a `leave`.
pub fn join_or_leave(input: &mut Input<'_>) -> Op {
    let conn = input.below(256);
    let stream = input.below(256);
    match input.below(3) {
        0 | 1 => Op::Join {
            conn,
            stream,
            envelope: input.below(256),
        },
        _ => Op::Leave {
            conn,
            stream,
            envelope: input.bool().then(|| input.below(256)),
        },
    }
}

/// A broadcast of one of the three kinds, with a payload from the pool or
/// from the fuzzer.
pub fn broadcast(input: &mut Input<'_>) -> Op {
    let stream = input.below(256);
    let kind = match input.below(4) {
        0 => BroadcastKind::Except(input.below(256)),
        1 => BroadcastKind::String,
        _ => BroadcastKind::Plain,
    };
    let payload = if input.bool() {
        input.pick(crate::harness::PAYLOADS).to_string()
    } else {
        input.text(128)
    };
    Op::Broadcast {
        stream,
        payload,
        kind,
    }
}
