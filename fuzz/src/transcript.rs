//! Target `transcript`: the transcript reader of cable-fixtures
//! ([`Transcript::parse`]), its writer, and the replay of what parses
//! against the core and the reference app ([`core_target::replay`]) with
//! the comparison ([`compare`]).
//!
//! Invariants beyond "no panic":
//! - what parses writes out (`to_jsonl`) to text that parses again, to the
//!   same clients and kinds of events, and writing is stable from then on;
//! - a replayable transcript replays, and its observation writes out to a
//!   transcript that parses.
//!
//! Replays are limited to transcripts of at most [`MAX_REPLAY_MS`] of
//! virtual time and [`MAX_REPLAY_EVENTS`] events: the replay's virtual
//! clock steps through every ping deadline, so hours of virtual time are
//! merely slow, not wrong.

use cable_fixtures::compare::compare;
use cable_fixtures::core_target;
use cable_fixtures::deviations::Deviations;
use cable_fixtures::Transcript;

/// Longest virtual time replayed.
pub const MAX_REPLAY_MS: f64 = 120_000.0;

/// Most events of a replayed transcript.
pub const MAX_REPLAY_EVENTS: usize = 200;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(transcript) = Transcript::parse(text) else {
        return;
    };
    let written = transcript.to_jsonl();
    let again = Transcript::parse(&written)
        .unwrap_or_else(|e| panic!("a written transcript does not parse ({e}):\n{written}"));
    assert_eq!(
        again.events.len(),
        transcript.events.len(),
        "events lost in writing"
    );
    for (a, b) in again.events.iter().zip(&transcript.events) {
        assert_eq!(a.client, b.client, "client changed in writing");
        assert_eq!(a.kind, b.kind, "event changed in writing");
        assert!(
            (a.t_ms - b.t_ms).abs() <= 0.05 + b.t_ms.abs() * 1e-12,
            "time changed in writing"
        );
    }
    assert_eq!(again.to_jsonl(), written, "writing is not stable");
    let _ = transcript.clients();

    if transcript.client_steps().is_err()
        || transcript.events.len() > MAX_REPLAY_EVENTS
        || transcript
            .events
            .iter()
            .any(|e| !(0.0..=MAX_REPLAY_MS).contains(&e.t_ms))
    {
        return;
    }
    if let Ok(observed) = core_target::replay(&transcript) {
        let text = observed.to_jsonl();
        Transcript::parse(&text)
            .unwrap_or_else(|e| panic!("an observed transcript does not parse ({e}):\n{text}"));
        let _ = compare(&transcript, &observed, &Deviations::cable());
    }
}
