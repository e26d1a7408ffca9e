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
//! - [`Server`]: connections, subscriptions, ordering, pings, and the
//!   broadcast hub (fan-out encoded once per identifier, slow consumers).
//!
//! Decisions that need the application (authenticate a connection, authorize
//! a subscription, run an action) come out as events or tokens; the
//! application answers when it is ready, and commands of a connection wait
//! for the answer, so they always take effect in arrival order.
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

pub mod command;
mod config;
mod error;
pub mod frame;
pub mod handshake;
mod hash;
mod identifier;
pub mod json;
mod server;
mod slab;
mod types;

pub use command::Command;
pub use config::{Config, LimitAction, Limits, PROTOCOL_UNSUPPORTED, PROTOCOL_V1_JSON};
pub use error::{CommandError, UsageError};
pub use frame::{DisconnectReason, Frame};
pub use frame::{ServerFrame, ServerFrameError};
pub use handshake::{HandshakeRefusal, HandshakeRequest, OriginPattern, OriginPolicy};
pub use hash::SeededState;
pub use identifier::{Identifier, IdentifierError};
pub use json::{InvalidJson, JsonText};
pub use server::{Delivery, Server, SubscriptionAccept};
pub use types::{
    ConnectionId, Event, Identity, Incoming, PendingConnection, PendingSubscription,
    PendingSubscriptionEvent, Perform, StreamMode, StreamName, SubscriptionId, Transmit,
    UnsubscribeCause,
};
