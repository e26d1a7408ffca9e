//! Target `hub`: the broadcast hub against the naive model of the
//! [`Harness`]. Connections are opened and accepted
//! at once and send only well-formed commands; the operations are the ones
//! that change who listens to what (subscriptions accepted with streams,
//! `stream_from`, `stop_stream_from`, `stop_all_streams`, joins and leaves
//! with envelopes, perform outcomes that start and stop streams,
//! unsubscribes, closes, disconnects) and the ones that fan out
//! (`broadcast`, `broadcast_except`, `broadcast_string`,
//! `send_frame_to_identity`, the broadcasts of completed performs; vetoed
//! ones send nothing). Each fan-out is compared per connection with the
//! model's subscribers and joins, and `Delivery` with the model's count of
//! recipients, groups (identifier and mode, or envelope) and skips.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only.

use std::time::Duration;

use cable_proto::server::Limits;
use serde_json::Value;

use crate::harness::{config, Harness, Op, Outcome, DATA, IDENTIFIERS};
use crate::input::Input;
use crate::server_ops::{broadcast, join_or_leave};

/// Most operations one input runs.
pub const MAX_OPS: usize = 512;

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = Limits {
        max_queued_bytes: *input.pick(&[400, 4096, 1 << 20]),
        ..Limits::default()
    };
    let mut harness = Harness::new(config(limits, Duration::from_secs(3), false));
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        harness.step(op(&mut input));
        ops += 1;
    }
    harness.finish();
}

fn subscribe(input: &mut Input<'_>, command: &str) -> Op {
    let conn = input.below(256);
    // Only identifiers the core accepts: the first seven.
    let identifier = IDENTIFIERS[input.below(7)];
    let frame = serde_json::json!({"command": command, "identifier": identifier});
    Op::Text {
        conn,
        frame: Value::to_string(&frame).into_bytes(),
    }
}

fn message(input: &mut Input<'_>) -> Op {
    let conn = input.below(256);
    let identifier = IDENTIFIERS[input.below(7)];
    let data = DATA[input.below(4)];
    let frame = serde_json::json!({"command": "message", "identifier": identifier, "data": data});
    Op::Text {
        conn,
        frame: Value::to_string(&frame).into_bytes(),
    }
}

/// Decodes one operation.
pub fn op(input: &mut Input<'_>) -> Op {
    match input.byte() % 26 {
        0 | 1 => Op::Connect {
            identity: input.below(256),
        },
        2..=4 => subscribe(input, "subscribe"),
        5 => subscribe(input, "unsubscribe"),
        6 | 7 => Op::AcceptSubscription {
            pending: input.below(256),
            streams: (0..input.below(4))
                .map(|_| (input.below(256), input.below(4) == 0))
                .collect(),
            transmissions: Vec::new(),
        },
        8 => Op::RejectSubscription {
            pending: input.below(256),
        },
        9 => Op::StreamFrom {
            sub: input.below(256),
            stream: input.below(256),
            raw: input.below(4) == 0,
        },
        10 => Op::StopStreamFrom {
            sub: input.below(256),
            stream: input.below(256),
        },
        11 => Op::StopAllStreams {
            sub: input.below(256),
        },
        12 => Op::Unsubscribe {
            sub: input.below(256),
        },
        13..=15 => broadcast(input),
        16 => Op::SendFrameToIdentity {
            identity: input.below(256),
        },
        17 => match input.below(3) {
            0 => Op::Close {
                conn: input.below(256),
            },
            1 => Op::Disconnect {
                conn: input.below(256),
                reason: input.below(256),
                reconnect: input.bool(),
            },
            _ => Op::DisconnectIdentity {
                identity: input.below(256),
                reconnect: input.bool(),
            },
        },
        18 => Op::Written {
            conn: input.below(256),
            bytes: usize::from(input.u16()),
            all: input.bool(),
        },
        19 => Op::Transmit {
            sub: input.below(256),
            payload: input.below(256),
        },
        20 => message(input),
        21 | 22 => Op::CompletePerform {
            pending: input.below(256),
            outcome: Outcome::read(input),
        },
        23 => Op::VetoPerform {
            pending: input.below(256),
        },
        _ => join_or_leave(input),
    }
}
