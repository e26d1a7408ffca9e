//! Read-only views of the server state.

use crate::identifier::Identifier;
use crate::types::{ConnectionId, Identity, StreamName, SubscriptionId};

use super::protocol::Protocol;
use super::records::ConnState;
use super::Server;

impl Server {
    /// Live connections (pending, open or closing).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Subscriptions, pending or live.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Streams with at least one member.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Members of `stream` (subscriptions and joined connections).
    pub fn subscriber_count(&self, stream: &str) -> usize {
        self.stream_index
            .get(stream)
            .and_then(|&s| self.streams.get(s))
            .map_or(0, |s| {
                s.groups
                    .iter()
                    .filter_map(|&g| self.groups.get(g))
                    .map(|g| g.members.len())
                    .sum()
            })
    }

    /// Deadlines held by the timer store, stale ones included (bounded by a
    /// constant factor of the connections and streams).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Whether the connection exists.
    pub fn contains(&self, connection: ConnectionId) -> bool {
        self.conn(connection).is_ok()
    }

    /// Whether the connection has been accepted and is not closing.
    pub fn is_open(&self, connection: ConnectionId) -> bool {
        self.conn(connection)
            .is_ok_and(|c| c.state == ConnState::Open)
    }

    /// The protocol a connection speaks.
    pub fn protocol(&self, connection: ConnectionId) -> Option<Protocol> {
        self.conn(connection).ok().map(|c| c.protocol)
    }

    /// The identity a connection was accepted with (or given since).
    pub fn identity(&self, connection: ConnectionId) -> Option<&Identity> {
        self.conn(connection).ok()?.identity.as_ref()
    }

    /// The open connections of `identity`, in accept order.
    pub fn connections_of_identity(&self, identity: &str) -> Vec<ConnectionId> {
        self.connections_of(identity)
            .into_iter()
            .map(|index| self.connection_id(index))
            .collect()
    }

    /// Bytes queued for a connection and not yet reported written.
    pub fn queued_bytes(&self, connection: ConnectionId) -> usize {
        self.conn(connection).map_or(0, |c| c.queued as usize)
    }

    /// The subscriptions of a connection: handle, identifier, and whether it
    /// is live (confirmed).
    pub fn subscriptions(
        &self,
        connection: ConnectionId,
    ) -> impl Iterator<Item = (SubscriptionId, &Identifier, bool)> + '_ {
        let index = self.conn(connection).map_or(u32::MAX, |_| connection.index);
        self.subs_of(index).filter_map(move |index| {
            let sub = self.subs.get(index)?;
            Some((
                self.subscription_id(index),
                self.identifier_of(sub.ident),
                sub.live,
            ))
        })
    }

    /// The streams of a subscription, in the order they were added (until
    /// one is removed).
    pub fn streams_of(&self, subscription: SubscriptionId) -> Vec<StreamName> {
        let Some(sub) = self
            .subs
            .get_checked(subscription.index, subscription.generation)
        else {
            return Vec::new();
        };
        sub.memberships
            .iter()
            .filter_map(|m| self.groups.get(m.group))
            .filter_map(|g| self.streams.get(g.stream))
            .map(|s| s.name.clone())
            .collect()
    }

    /// The identifier of a subscription.
    pub fn identifier(&self, subscription: SubscriptionId) -> Option<&Identifier> {
        let sub = self
            .subs
            .get_checked(subscription.index, subscription.generation)?;
        Some(self.identifier_of(sub.ident))
    }

    /// The connection a subscription belongs to.
    pub fn connection_of(&self, subscription: SubscriptionId) -> Option<ConnectionId> {
        let sub = self
            .subs
            .get_checked(subscription.index, subscription.generation)?;
        Some(self.connection_id(sub.conn))
    }
}
