//! Dialects: other protocols' frames turned into hub operations, and what the
//! hub delivers encoded as their frames, beside the Action Cable state
//! machine and just as IO-free.
//!
//! A dialect's connections are [`Protocol::Custom`] connections of the
//! [`Server`]: their frames come out as
//! [`Event::Received`](crate::server::Event::Received), the host hands them
//! to the dialect, and the dialect answers with [`HubOp`]s that
//! [`execute`] applies. All dialects share one hub: a stream is a stream
//! whatever protocol joined it (a BuddyBoss thread `"42"`, a Jac channel
//! `"42"` and an Action Cable stream `"42"` are the same), and an identity is
//! an identity (a BuddyBoss `userId` is an Action Cable connection identity;
//! a Jac root's ObjectId is one too). A broadcast still builds
//! one frame per group: each dialect's members of a stream form groups by
//! their [`Envelope`].

pub mod buddyboss;
pub mod jac;

use std::time::Instant;

use crate::error::UsageError;
use crate::json::JsonText;
use crate::server::{Envelope, Protocol, Server};
use crate::types::{ConnectionId, Identity, StreamName};

pub use buddyboss::BuddyBoss;
pub use jac::Jac;

/// Who a [`HubOp::Publish`] reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every member of the stream, of every protocol, each in its own frame.
    Stream(StreamName),
    /// [`Target::Stream`] but the sending connection.
    StreamExceptSender(StreamName),
    /// Every open connection of the identity that speaks the dialect (the
    /// payload is the dialect's own frame).
    User(Identity),
    /// One connection (the payload is the dialect's own frame).
    Connection(ConnectionId),
}

/// One operation on the hub, asked for by a dialect on behalf of the
/// connection whose frame it handled (the sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubOp {
    /// The sender is now this identity.
    Identify(Identity),
    /// The sender joins a stream, wrapped in the dialect's envelope for it.
    Join(StreamName),
    /// The sender leaves a stream.
    Leave(StreamName),
    /// A payload (JSON) to a target.
    Publish {
        /// Who it reaches.
        to: Target,
        /// The payload: a broadcast's payload for stream targets, a complete
        /// frame for user and connection targets.
        payload: JsonText,
    },
    /// A frame to the sender only (an error).
    Reply(JsonText),
}

/// What a dialect tells the hub about its encoding.
pub trait Dialect {
    /// The protocol number its connections are opened with.
    fn protocol(&self) -> Protocol;
    /// The envelope of its members of `stream`.
    fn envelope(&self, stream: &str) -> Envelope;
}

/// Applies `ops` for `sender` in order; returns how many frames were queued
/// for connections other than the sender.
pub fn execute(
    server: &mut Server,
    dialect: &impl Dialect,
    sender: ConnectionId,
    ops: impl IntoIterator<Item = HubOp>,
    now: Instant,
) -> Result<usize, UsageError> {
    let mut reached = 0;
    for op in ops {
        match op {
            HubOp::Identify(identity) => server.set_identity(sender, identity, now)?,
            HubOp::Join(stream) => {
                let envelope = dialect.envelope(stream.as_str());
                server.join(sender, stream, envelope, now)?;
            }
            HubOp::Leave(stream) => {
                let envelope = dialect.envelope(stream.as_str());
                server.leave(sender, stream.as_str(), Some(&envelope), now)?;
            }
            HubOp::Publish { to, payload } => {
                reached += match to {
                    Target::Stream(stream) => {
                        server
                            .publish(stream.as_str(), &payload, None, now)
                            .recipients
                    }
                    Target::StreamExceptSender(stream) => {
                        server
                            .publish(stream.as_str(), &payload, Some(sender), now)
                            .recipients
                    }
                    Target::User(identity) => server.send_frame_to_identity_as(
                        identity.as_str(),
                        dialect.protocol(),
                        &payload,
                        now,
                    ),
                    Target::Connection(connection) => {
                        server.send_frame(connection, &payload, now)?;
                        1
                    }
                };
            }
            HubOp::Reply(frame) => server.send_frame(sender, &frame, now)?,
        }
    }
    Ok(reached)
}
