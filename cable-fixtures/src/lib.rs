//! cable-fixtures: conformance of Action Cable servers, judged against the real Rails server.
//!
//! - [`transcript`]: transcript format version 1 (recordings and hand-written scenario
//!   scripts), a typed reader and writer.
//! - [`compare`](mod@compare): what a target did against what Rails did, with named [`deviations`].
//! - [`live`]: plays a transcript's client side against a live server in real time and
//!   records what it answered (used by `cable-fixtures replay --url` and `record`).
//! - [`core_target`]: the same against the sans-IO core in virtual time.
//! - [`corpus`]: finding transcripts on disk.
//! - [`bench`](mod@bench): the core's measurements beside their baselines (`cable-fixtures bench`).
//! - [`reference_app`]: the reference app of `../shared/refserver/config.ru` on `cable-proto`.
//! - [`shootout`]: the websocket-shootout broadcast benchmark against a live server.
//! - [`floor`]: a bare WebSocket broadcast server with no protocol, the shootout's floor.
//! - [`soak`]: minutes of mixed load with faults against a live server (or two nodes on a
//!   redis-server of its own): nothing lost, duplicated or reordered.
//!
//! The `cable-fixtures` binary ties them together; see the crate's README.

pub mod bench;
pub mod compare;
pub mod core_target;
pub mod corpus;
pub mod deviations;
pub mod floor;
pub mod jac;
pub mod live;
pub mod shootout;
pub mod soak;
pub mod transcript;

/// The reference app, which lives in its own crate (`cable-refapp`) so that
/// cable-server links it without the conformance toolkit.
pub use cable_refapp as reference_app;
pub use compare::{compare, Mismatch};
pub use deviations::{Deviation, Deviations};
pub use transcript::{Transcript, TranscriptError};

/// Why a replay or a recording could not be made (as opposed to a [`Mismatch`], which is a
/// replay that ran and disagreed).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transcript could not be read or written.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// The transcript's client side cannot be played (for example a frame before the handshake).
    #[error("cannot play this transcript: {0}")]
    Script(String),
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// The live run failed (connection refused, timeout, ...).
    #[error("live run: {0}")]
    Live(String),
    /// The core target failed.
    #[error("core: {0}")]
    Core(String),
}
