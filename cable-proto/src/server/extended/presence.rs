//! Presence: `join`, `leave` and `presence` commands on subscriptions that
//! may use it ([`Server::allow_presence`]), handed to the host (the presence
//! store may be shared between nodes), and the frames of its answers.

use std::time::Instant;

use bytes::Bytes;

use crate::error::{CommandError, UsageError};
use crate::identifier::Identifier;
use crate::json::JsonText;
use crate::types::{ConnectionId, StreamName, SubscriptionId};

use crate::server::events::Event;
use crate::server::records::Encoding;
use crate::server::Server;

/// What a presence command asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceAction {
    /// `join`: present as `id` with `info` (JSON text; `null` when absent).
    Join {
        /// The presence id.
        id: Box<str>,
        /// The info, JSON text.
        info: Box<str>,
    },
    /// `leave`: the real client sends no id (the session's own presence
    /// leaves).
    Leave {
        /// The presence id, when given.
        id: Option<Box<str>>,
    },
    /// `presence`: the records present (answer with
    /// [`Server::transmit_presence`]).
    Info,
}

/// A presence command of a subscription allowed to use presence: update the
/// presence store, then broadcast the `join`/`leave` event with
/// [`Server::broadcast_presence`] or answer the query with
/// [`Server::transmit_presence`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRequest {
    /// The connection.
    pub connection: ConnectionId,
    /// The subscription.
    pub subscription: SubscriptionId,
    /// Its identifier.
    pub identifier: Identifier,
    /// The presence stream.
    pub stream: StreamName,
    /// What it asks.
    pub action: PresenceAction,
}

impl Server {
    pub(super) fn presence_command(
        &mut self,
        index: u32,
        identifier: &str,
        action: PresenceAction,
    ) {
        let Some(sub) = self.live_sub_of(index, identifier) else {
            self.unknown_subscription(index, identifier);
            return;
        };
        self.presence_for(index, sub, action);
    }

    pub(super) fn presence_for(&mut self, index: u32, sub: u32, action: PresenceAction) {
        let Some(stream) = self.sub_ext_ref(sub).and_then(|e| e.presence.clone()) else {
            self.fail(
                index,
                CommandError::UnknownCommand("presence (not allowed on this subscription)".into()),
            );
            return;
        };
        let connection = self.connection_id(index);
        let subscription = self.subscription_id(sub);
        self.events
            .push_back(Event::PresenceRequested(PresenceRequest {
                connection,
                subscription,
                identifier: self.identifier_of_sub(sub).clone(),
                stream,
                action,
            }));
    }

    /// Sends `{"type":"presence","identifier":…,"message":<message>}` to
    /// every subscriber of `stream` (a `join` or `leave` event: `message`
    /// is `{"type":"join","id":…,"info":…}` or `{"type":"leave","id":…}`).
    /// Returns how many frames were queued.
    pub fn broadcast_presence(&mut self, stream: &str, message: &JsonText, now: Instant) -> usize {
        self.advance(now);
        let Some(&stream_index) = self.stream_index.get(stream) else {
            return 0;
        };
        let groups: Vec<u32> = self
            .streams
            .get(stream_index)
            .map(|s| s.groups.clone())
            .unwrap_or_default();
        let mut sent = 0;
        for group in groups {
            let Some(g) = self.groups.get(group) else {
                continue;
            };
            let Encoding::Subscription { ident, .. } = g.encoding else {
                continue;
            };
            let Some(entry) = self.idents.get(ident) else {
                continue;
            };
            let frame = presence_frame(entry.identifier.json_literal(), message);
            let members: Vec<u32> = g.members.iter().map(|m| m.conn).collect();
            for conn in members {
                if self.push(conn, frame.clone()) {
                    sent += 1;
                }
            }
        }
        self.flush_overflow();
        sent
    }

    /// Sends `{"type":"presence","identifier":…,"message":<message>}` to one
    /// subscription (the answer to a `presence` query:
    /// `{"type":"info","total":N,"records":[{"id":…,"info":…}]}`).
    pub fn transmit_presence(
        &mut self,
        subscription: SubscriptionId,
        message: &JsonText,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let conn = self
            .subs
            .get_checked(subscription.index, subscription.generation)
            .filter(|s| s.live)
            .map(|s| s.conn)
            .ok_or(UsageError::UnknownSubscription)?;
        let frame = presence_frame(
            self.identifier_of_sub(subscription.index).json_literal(),
            message,
        );
        self.push(conn, frame);
        self.flush_overflow();
        Ok(())
    }
}

fn presence_frame(literal: &[u8], message: &JsonText) -> Bytes {
    let mut out = Vec::with_capacity(48 + literal.len() + message.as_bytes().len());
    out.extend_from_slice(br#"{"type":"presence","identifier":"#);
    out.extend_from_slice(literal);
    out.extend_from_slice(br#","message":"#);
    out.extend_from_slice(message.as_bytes());
    out.push(b'}');
    Bytes::from(out)
}
