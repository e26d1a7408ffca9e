//! # cable-proto
//!
//! A sans-IO implementation of the [Action Cable] WebSocket protocol: the
//! server state machine that Rails runs in Ruby, as plain data structures.
//! Frames and decisions go in, frames, events and timer deadlines come out.
//! No sockets, no clocks, no threads: time is an argument, so the same inputs
//! give the same bytes, which is what makes transcript replay and fuzzing
//! meaningful.
//!
//! - [`command`]: client commands, parsed borrowing from the frame.
//! - [`frame`]: server frames, byte for byte as Rails writes them.
//! - [`json`]: Rails' JSON escaping, for payloads built from Rust values.
//! - [`Identifier`]: the raw identifier string is the subscription key.
//! - [`handshake`]: origin check and subprotocol negotiation.
//! - [`client`]: the consumer state machine, [`client::Consumer`]: what
//!   `@rails/actioncable` does (subscriptions, the guarantor's re-sends, the
//!   stale monitor and its reconnect schedule), with the socket, clock and
//!   randomness left to the host.
//! - [`server`]: the server state machine, [`server::Server`]: connections,
//!   subscriptions, decisions with deadlines, credential expiry, pings, and
//!   the broadcast hub (fan-out encoded once per group, slow consumers),
//!   shared by Action Cable and the host's own protocols
//!   ([`server::Protocol::Custom`], [`server::Server::join`]).
//!
//! Decisions that need the application (authenticate a connection, authorize
//! a subscription, run an action) come out as tokens; the application answers
//! when it is ready, and commands of a connection wait for the answer, so
//! they always take effect in arrival order. Each decision can have a
//! deadline ([`server::DecisionTimeouts`]) with a defined outcome.
//!
//! Time is an argument: every call that can change state takes `now`, and
//! [`server::Server::poll_timeout`] says when the next deadline or ping is
//! due.
//!
//! [Action Cable]: https://guides.rubyonrails.org/action_cable_overview.html
//!
//! ## A run loop
//!
//! A host owns the sockets and the clock. This one plays both sides in
//! memory: a client connects, subscribes, speaks, and a broadcast comes back.
//!
//! ```
#![doc = include_str!("../examples/run_loop.rs")]
//! ```

pub mod client;
pub mod command;
pub mod dialect;
mod error;
pub mod frame;
pub mod handshake;
mod hash;
mod identifier;
pub mod json;
mod scalar;
mod scan;
pub mod server;
mod slab;
mod types;

pub use client::Consumer;
pub use command::Command;
pub use error::{CommandError, UsageError};
pub use frame::DisconnectReason;
pub use handshake::{HandshakeRefusal, HandshakeRequest, OriginPattern, OriginPolicy};
pub use hash::SeededState;
pub use identifier::{Identifier, IdentifierError};
pub use json::{InvalidJson, JsonText};
pub use types::{ConnectionId, Identity, StreamMode, StreamName, SubscriptionId};
