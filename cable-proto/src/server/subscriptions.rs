//! Subscriptions: their decisions, the decisions on their performs, their
//! streams, and their end.

use std::time::Instant;

use crate::error::UsageError;
use crate::frame;
use crate::json::JsonText;
use crate::types::{StreamMode, StreamName, SubscriptionId};

use super::decisions::{PendingPerform, PendingSubscription, PerformOutcome, SubscriptionAccept};
use super::events::{Event, UnsubscribeCause};
use super::records::{Awaiting, ConnState, Encoding};
use super::Server;

impl Server {
    /// Authorize a pending subscription: queue `accept`'s transmissions, then
    /// `confirm_subscription`, start its streams, and go on with the
    /// connection's waiting commands. With
    /// [`Config::confirm_when_streams_ready`](super::Config::confirm_when_streams_ready),
    /// the confirmation (and the waiting commands) wait until every stream
    /// it started is ready.
    pub fn accept_subscription(
        &mut self,
        pending: PendingSubscription,
        accept: SubscriptionAccept,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let sub_index = self.pending_sub(&pending)?;
        let Some(sub) = self.subs.get(sub_index) else {
            return Err(UsageError::StaleDecision);
        };
        let conn = sub.conn;
        for message in &accept.transmissions {
            self.push_message(sub_index, message);
        }
        if let Some(sub) = self.subs.get_mut(sub_index) {
            sub.live = true;
        }
        for (stream, mode) in accept.streams {
            self.add_subscription_stream(sub_index, stream, mode);
        }
        let waiting = self.unready_streams_of(sub_index);
        if let Some(sub) = self.subs.get_mut(sub_index) {
            sub.waiting = waiting;
        }
        if waiting == 0 {
            self.confirm(sub_index);
        } else if let Some(c) = self.conns.get_mut(conn) {
            // Still waiting, now for the streams: no deadline of the
            // application's any more.
            if let Some(extra) = c.extra.as_mut() {
                extra.decision_deadline = None;
            }
        }
        self.flush_overflow();
        Ok(())
    }

    /// Queues `confirm_subscription` and lets the connection's commands go on.
    pub(super) fn confirm(&mut self, sub: u32) {
        if let Some(conn) = self.push_identifier_frame(sub, frame::confirm) {
            self.ext_confirmed(sub);
            self.resume(conn);
        }
    }

    /// Refuse a pending subscription (Rails' `reject`): queue
    /// `reject_subscription`; the identifier is free again.
    pub fn reject_subscription(
        &mut self,
        pending: PendingSubscription,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let sub_index = self.pending_sub(&pending)?;
        self.refuse_subscription(sub_index);
        Ok(())
    }

    /// `reject_subscription` for pending subscription `sub`, then the
    /// connection's commands go on.
    pub(super) fn refuse_subscription(&mut self, sub: u32) {
        if let Some(conn) = self.push_identifier_frame(sub, frame::reject) {
            self.remove_subscription(sub, None);
            self.resume(conn);
        }
    }

    /// Drop a pending subscription without a word to the client, as Rails
    /// does when the channel class is not found or `subscribed` raises.
    pub fn abandon_subscription(
        &mut self,
        pending: PendingSubscription,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let sub_index = self.pending_sub(&pending)?;
        let conn = self.subs.get(sub_index).map(|s| s.conn);
        self.remove_subscription(sub_index, None);
        if let Some(conn) = conn {
            self.resume(conn);
        }
        Ok(())
    }

    /// Apply a perform's outcome, all at once (see [`PerformOutcome`] for the
    /// order), then go on with the connection's waiting commands. Parts that
    /// need the subscription (streams, transmissions) are skipped if the
    /// application removed it meanwhile; broadcasts always go out.
    pub fn complete_perform(
        &mut self,
        pending: PendingPerform,
        outcome: PerformOutcome,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let conn = self.pending_perform(&pending)?;
        let sender = pending.connection;
        let sub = self
            .subs
            .get_checked(pending.subscription.index, pending.subscription.generation)
            .filter(|s| s.live)
            .map(|_| pending.subscription.index);
        if let Some(sub) = sub {
            if outcome.stop_all_streams {
                self.clear_subscription_streams(sub);
            }
            for stream in &outcome.stop {
                self.stop_subscription_stream(sub, stream.as_str());
            }
            for (stream, mode) in outcome.start {
                self.add_subscription_stream(sub, stream, mode);
            }
            for message in &outcome.transmissions {
                self.push_message(sub, message);
            }
        }
        for broadcast in &outcome.broadcasts {
            let except = broadcast.except_sender.then_some(sender);
            self.publish_now(broadcast.stream.as_str(), &broadcast.payload, except);
        }
        if let Some((reason, reconnect)) = outcome.disconnect {
            self.disconnect_index(conn, reason, reconnect);
        }
        self.flush_overflow();
        self.resume(conn);
        Ok(())
    }

    /// Veto a perform: nothing of it is applied (platformOS' `receive` hook
    /// refusing a message); the connection's waiting commands go on.
    pub fn veto_perform(
        &mut self,
        pending: PendingPerform,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let conn = self.pending_perform(&pending)?;
        self.resume(conn);
        Ok(())
    }

    /// End a live subscription from the server side (no frame: Action Cable
    /// has none). Reports [`Event::Unsubscribed`] with
    /// [`UnsubscribeCause::Application`].
    pub fn unsubscribe(
        &mut self,
        subscription: SubscriptionId,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let index = self.live_sub(subscription)?;
        self.remove_subscription(index, Some(UnsubscribeCause::Application));
        Ok(())
    }

    /// Add a stream to a live subscription (Rails' `stream_from` in an
    /// action). Streaming twice from the same stream is a no-op.
    pub fn stream_from(
        &mut self,
        subscription: SubscriptionId,
        stream: impl Into<StreamName>,
        mode: StreamMode,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let index = self.live_sub(subscription)?;
        self.add_subscription_stream(index, stream.into(), mode);
        Ok(())
    }

    /// Stop one stream of a live subscription (Rails' `stop_stream_from`).
    pub fn stop_stream_from(
        &mut self,
        subscription: SubscriptionId,
        stream: &str,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let index = self.live_sub(subscription)?;
        self.stop_subscription_stream(index, stream);
        Ok(())
    }

    /// Stop every stream of a live subscription (Rails' `stop_all_streams`);
    /// the subscription stays.
    pub fn stop_all_streams(
        &mut self,
        subscription: SubscriptionId,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let index = self.live_sub(subscription)?;
        self.clear_subscription_streams(index);
        Ok(())
    }

    /// Send `message` to one subscription, pending or live (Rails'
    /// `transmit`). Before the decision, it goes out before the confirmation.
    pub fn transmit(
        &mut self,
        subscription: SubscriptionId,
        message: &JsonText,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        self.subs
            .get_checked(subscription.index, subscription.generation)
            .ok_or(UsageError::UnknownSubscription)?;
        self.push_message(subscription.index, message);
        self.flush_overflow();
        Ok(())
    }

    /// Queues `{"identifier":<id>,"message":<message>}` for subscription
    /// `sub`'s connection.
    fn push_message(&mut self, sub: u32, message: &JsonText) {
        let Some(conn) = self.subs.get(sub).map(|s| s.conn) else {
            return;
        };
        let literal = self.identifier_of_sub(sub).json_literal();
        let bytes = frame::message_from_literal(literal, message.as_bytes());
        self.push(conn, bytes);
    }

    /// Queues a frame of subscription `sub`'s identifier (a confirmation or
    /// a rejection) for its connection; returns the connection.
    fn push_identifier_frame(
        &mut self,
        sub: u32,
        build: fn(&crate::identifier::Identifier) -> bytes::Bytes,
    ) -> Option<u32> {
        let entry = self.subs.get(sub)?;
        let conn = entry.conn;
        let bytes = build(self.identifier_of(entry.ident));
        self.push(conn, bytes);
        Some(conn)
    }

    // ------------------------------------------------------------ internals

    fn pending_sub(&self, pending: &PendingSubscription) -> Result<u32, UsageError> {
        let id = pending.subscription;
        let live = self
            .subs
            .get_checked(id.index, id.generation)
            .is_some_and(|s| !s.live)
            && self
                .conns
                .get_checked(pending.connection.index, pending.connection.generation)
                .is_some_and(|c| {
                    c.awaiting == Awaiting::Subscription
                        && c.decision_seq == pending.seq
                        && c.state == ConnState::Open
                });
        if live {
            return Ok(id.index);
        }
        Err(self.dead_token(pending.connection, pending.seq))
    }

    fn pending_perform(&self, pending: &PendingPerform) -> Result<u32, UsageError> {
        let id = pending.connection;
        let live = self
            .conns
            .get_checked(id.index, id.generation)
            .is_some_and(|c| {
                c.awaiting == Awaiting::Perform
                    && c.decision_seq == pending.seq
                    && c.state == ConnState::Open
            });
        if live {
            return Ok(id.index);
        }
        Err(self.dead_token(id, pending.seq))
    }

    /// Why a token is not pending: its deadline passed, or it was answered
    /// (or its connection is gone).
    fn dead_token(&self, connection: crate::types::ConnectionId, seq: u32) -> UsageError {
        let expired = self
            .conns
            .get_checked(connection.index, connection.generation)
            .and_then(|c| c.extra.as_ref())
            .is_some_and(|e| e.expired_decision == seq);
        if expired {
            UsageError::DecisionExpired
        } else {
            UsageError::StaleDecision
        }
    }

    /// The pending (not yet live) subscription of connection `conn`.
    pub(super) fn pending_sub_of(&self, conn: u32) -> Option<u32> {
        self.subs_of(conn)
            .find(|&s| self.subs.get(s).is_some_and(|sub| !sub.live))
    }

    fn live_sub(&self, id: SubscriptionId) -> Result<u32, UsageError> {
        let sub = self
            .subs
            .get_checked(id.index, id.generation)
            .ok_or(UsageError::UnknownSubscription)?;
        if sub.live {
            Ok(id.index)
        } else {
            Err(UsageError::SubscriptionNotLive)
        }
    }

    pub(super) fn add_subscription_stream(
        &mut self,
        sub: u32,
        stream: StreamName,
        mode: StreamMode,
    ) {
        let Some(entry) = self.subs.get(sub) else {
            return;
        };
        let (conn, ident) = (entry.conn, entry.ident);
        self.add_member(
            super::hub::Owner::Subscription(sub),
            conn,
            stream,
            Encoding::Subscription { ident, mode },
        );
    }

    fn stop_subscription_stream(&mut self, sub: u32, stream: &str) {
        let Some(&stream_index) = self.stream_index.get(stream) else {
            return;
        };
        let doomed: Vec<u32> = self
            .subs
            .get(sub)
            .map(|s| {
                s.memberships
                    .iter()
                    .filter(|m| {
                        self.groups
                            .get(m.group)
                            .is_some_and(|g| g.stream == stream_index)
                    })
                    .map(|m| m.group)
                    .collect()
            })
            .unwrap_or_default();
        for group in doomed {
            self.remove_member(super::hub::Owner::Subscription(sub), group);
        }
    }

    fn clear_subscription_streams(&mut self, sub: u32) {
        while let Some(group) = self
            .subs
            .get(sub)
            .and_then(|s| s.memberships.last())
            .map(|m| m.group)
        {
            self.remove_member(super::hub::Owner::Subscription(sub), group);
        }
    }

    pub(super) fn drop_subscriptions(&mut self, index: u32, cause: UnsubscribeCause) {
        for sub in self.take_subs(index) {
            self.remove_subscription(sub, Some(cause));
        }
    }

    /// Removes a subscription and its streams; reports it if it was live and
    /// `cause` is given.
    pub(super) fn remove_subscription(&mut self, index: u32, cause: Option<UnsubscribeCause>) {
        let Some(sub) = self.subs.get(index) else {
            return;
        };
        let (conn, ident, live) = (sub.conn, sub.ident, sub.live);
        let confirmation_waited = sub.waiting > 0;
        if let (true, Some(cause)) = (live, cause) {
            let identifier = self.identifier_of(ident).clone();
            self.events.push_back(Event::Unsubscribed {
                connection: self.connection_id(conn),
                subscription: self.subscription_id(index),
                identity: self.identity_of(conn),
                identifier,
                cause,
            });
        }
        if let Some(sub) = self.subs.get_mut(index) {
            sub.waiting = 0; // going away: no confirmation
        }
        self.clear_subscription_streams(index);
        self.unlink_sub(conn, index);
        self.subs.remove(index);
        if let Some(entry) = self.idents.get_mut(ident) {
            entry.refs -= 1;
            if entry.refs == 0 {
                if let Some(entry) = self.idents.remove(ident) {
                    self.ident_index.remove(entry.identifier.json_literal());
                }
            }
        }
        // Its connection's commands waited for its confirmation: with the
        // subscription gone (the application unsubscribed it), they go on.
        if confirmation_waited
            && self
                .conns
                .get(conn)
                .is_some_and(|c| c.state == ConnState::Open)
        {
            self.resume(conn);
        }
    }
}

/// Appends to an exactly sized slice.
pub(super) fn push_exact<T>(slice: &mut Box<[T]>, value: T) {
    if slice.is_empty() {
        *slice = Box::new([value]);
        return;
    }
    let mut items = std::mem::take(slice).into_vec();
    items.reserve_exact(1);
    items.push(value);
    *slice = items.into_boxed_slice();
}

/// Removes `at` from an exactly sized slice, moving the last item there.
pub(super) fn swap_remove_exact<T>(slice: &mut Box<[T]>, at: usize) -> T {
    if slice.len() == 1 && at == 0 {
        let mut items = std::mem::take(slice).into_vec();
        if let Some(only) = items.pop() {
            return only;
        }
    }
    let mut items = std::mem::take(slice).into_vec();
    let removed = items.swap_remove(at);
    *slice = items.into_boxed_slice();
    removed
}
