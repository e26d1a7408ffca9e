//! Jac Cloud conformance: transcripts in the format of `shared/jacref/examples` (recorded from
//! the real Jac Cloud server), replayed against a live server (the real one, or cable-server
//! with `--mount /websocket=jac` in front of it), and recorded afresh.
//!
//! A transcript is JSON lines: `handshake` (`path`, `request_headers`, `status`), `out` and `in`
//! frames (`opcode`, `frame`), `close` (`initiator`, `code`, `reason`), `note` and `server_log`
//! (ignored). Ids differ between runs, so they are compared by shape and consistency
//! ([`ids::IdMap`]): a client id or random channel id (`<unix seconds>:<32 hex>`) and a root's
//! ObjectId (24 hex) must have the recorded shape, and each recorded id must stand for one live
//! id throughout the transcript (and the reverse). Tokens (Jac's JWTs) are not replayable: each
//! user a recorded token names (its `email`) is registered and logged in on the live
//! deployment's HTTP side first, and its fresh token and root take the recorded ones' places.
//! Other rules:
//!
//! - what a client sends goes out at its recorded offset (`t_ms`) or later: frames of
//!   different clients race on the server, and the recording's pacing settled the race;
//! - frames of one client arrive in the recorded order; frames of different clients are not
//!   ordered against each other;
//! - a client gets nothing it did not get in the recording: before a client closes, a short
//!   settle shows that nothing more came;
//! - a traceback (`{"error":["Traceback (most recent call last):\n", ...]}`) matches a
//!   traceback ending with the same exception type: stack lines and messages are the
//!   server's own (Python's `json` and cable-server's parser word their errors differently);
//! - handshake response headers are not compared (the real server is uvicorn); the status is,
//!   and so is the absence of a subprotocol.

pub mod cli;
pub mod ids;
pub mod record;
pub mod replay;
pub mod transcript;
pub mod users;

pub use replay::{replay, ReplayOptions};
pub use transcript::{JacStep, JacTranscript};
