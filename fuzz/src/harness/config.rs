//! The server configuration of a run: limits drawn by the fuzzer, small
//! enough to be reached, and the reference app's origins.

use std::time::Duration;

use cable_proto::handshake::OriginPattern;
use cable_proto::server::{Config, LimitAction, Limits};
use cable_proto::OriginPolicy;

use crate::input::Input;

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
