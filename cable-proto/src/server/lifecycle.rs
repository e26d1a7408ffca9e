//! Connections: the upgrade, the authentication decision, identities that
//! change, and the end.

use std::time::Instant;

use crate::error::UsageError;
use crate::frame::DisconnectReason;
use crate::handshake::{negotiate_subprotocol, HandshakeRefusal, HandshakeRequest};
use crate::types::{ConnectionId, Identity};

use super::decisions::{ConnectionAccept, PendingConnection};
use super::events::{Event, Incoming, UnsubscribeCause};
use super::outbox::welcome_frame;
use super::protocol::Protocol;
use super::records::{Awaiting, Conn, ConnState};
use super::timers::TimerKey;
use super::Server;

impl Server {
    /// An upgrade request for an Action Cable connection arrived. Refused:
    /// answer with the refusal's status and body, and no connection exists.
    /// Accepted: complete the upgrade with the chosen subprotocol; frames may
    /// arrive at once (they are held), and the application decides on
    /// [`Incoming::pending`].
    pub fn handle_open(
        &mut self,
        request: &HandshakeRequest<'_>,
        now: Instant,
    ) -> Result<Incoming, HandshakeRefusal> {
        self.handle_open_as(request, Protocol::ActionCable, now)
    }

    /// An upgrade request for a connection of `protocol`. The origin policy
    /// applies to every protocol; the Action Cable subprotocol is negotiated
    /// for Action Cable only (a custom protocol's host answers with its own,
    /// if any).
    pub fn handle_open_as(
        &mut self,
        request: &HandshakeRequest<'_>,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Incoming, HandshakeRefusal> {
        self.advance(now);
        if !self.config.origins.allows(request) {
            return Err(HandshakeRefusal::OriginNotAllowed {
                origin: request.origin.map(Into::into),
            });
        }
        let subprotocol = match protocol {
            Protocol::ActionCable => {
                negotiate_subprotocol(request.protocols, &self.config.protocols).map(str::to_owned)
            }
            Protocol::Custom(_) => None,
        };
        let (index, generation) = self.conns.insert(Conn::new(protocol));
        let connection = ConnectionId { index, generation };
        self.ext_opened(index, generation, subprotocol.as_deref());
        let timeout = self.config.decision_timeouts.connect;
        let seq = self.open_decision(index, Awaiting::Connection, timeout);
        Ok(Incoming {
            connection,
            protocol,
            subprotocol,
            pending: PendingConnection { connection, seq },
        })
    }

    /// Authentication succeeded: send the welcome (with `accept`'s extra
    /// fields; Action Cable only) and `accept`'s transmissions, set the
    /// credential's deadline, then handle the frames that arrived meanwhile,
    /// in order. An [`Identity`] converts into an accept with nothing else.
    pub fn accept_connection(
        &mut self,
        pending: PendingConnection,
        accept: impl Into<ConnectionAccept>,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let index = self.pending_connection(&pending)?;
        let accept = self.ext_accepting(index, accept.into());
        self.close_decision(index);
        self.link_identity(index, accept.identity);
        let Some(conn) = self.conns.get_mut(index) else {
            return Err(UsageError::StaleDecision);
        };
        conn.state = ConnState::Open;
        let protocol = conn.protocol;
        if protocol.is_action_cable() {
            self.push(index, welcome_frame(&accept.welcome));
        }
        for frame in &accept.transmissions {
            self.push(index, bytes::Bytes::copy_from_slice(frame.as_bytes()));
        }
        if let Some(at) = accept.expires_at {
            if let Some(conn) = self.conns.get_mut(index) {
                conn.extra_mut().expires_at = Some(at);
            }
            let generation = self.conns.generation(index);
            self.set_timer(
                at,
                TimerKey::Expiry {
                    conn: index,
                    generation,
                },
            );
        }
        self.flush_overflow();
        self.resume(index);
        // A credential that already expired closes the connection now.
        self.advance(now);
        Ok(())
    }

    /// Authentication failed (Rails' `reject_unauthorized_connection`): send
    /// `{"type":"disconnect","reason":"unauthorized","reconnect":false}` and a
    /// close (a bare close for a custom protocol); held frames are dropped
    /// unprocessed.
    pub fn reject_connection(
        &mut self,
        pending: PendingConnection,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.reject_connection_with(pending, DisconnectReason::Unauthorized, false, now)
    }

    /// [`reject_connection`](Self::reject_connection) with a disconnect
    /// frame of the application's choosing,
    /// `{"type":"disconnect","reason":<reason>,"reconnect":<reconnect>}`
    /// (say, an authentication backend that failed: `reconnect: true` lets
    /// the client try again later).
    pub fn reject_connection_with(
        &mut self,
        pending: PendingConnection,
        reason: DisconnectReason,
        reconnect: bool,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let index = self.pending_connection(&pending)?;
        self.close_decision(index);
        self.disconnect_index(index, reason, reconnect);
        Ok(())
    }

    fn pending_connection(&self, pending: &PendingConnection) -> Result<u32, UsageError> {
        let id = pending.connection;
        let conn = self
            .conns
            .get_checked(id.index, id.generation)
            .ok_or(UsageError::StaleDecision)?;
        if conn.state == ConnState::Pending && conn.awaiting == Awaiting::Connection {
            return Ok(id.index);
        }
        if conn
            .extra
            .as_ref()
            .is_some_and(|e| e.expired_decision == pending.seq)
        {
            return Err(UsageError::DecisionExpired);
        }
        Err(UsageError::StaleDecision)
    }

    /// Gives an accepted connection another identity (a protocol that
    /// identifies after the handshake, a user switching accounts). Its
    /// subscriptions and joins stay; targeting by identity follows at once.
    pub fn set_identity(
        &mut self,
        connection: ConnectionId,
        identity: Identity,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let conn = self.conn(connection)?;
        if conn.state != ConnState::Open {
            return Err(UsageError::ConnectionNotOpen);
        }
        self.unlink_identity(connection.index);
        self.link_identity(connection.index, identity);
        Ok(())
    }

    /// The host wrote `bytes` of this connection's frames to the socket.
    pub fn handle_written(
        &mut self,
        connection: ConnectionId,
        bytes: usize,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let conn = self.conn_mut(connection)?;
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        conn.queued = conn.queued.saturating_sub(bytes);
        Ok(())
    }

    /// The socket closed (either side, or it broke). Every live subscription
    /// ends with [`Event::Unsubscribed`], then [`Event::Closed`]; the handle
    /// is invalid afterwards, and so is any token of the connection (a
    /// pending perform is dropped: nothing of it is applied).
    pub fn handle_close(
        &mut self,
        connection: ConnectionId,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        self.conn(connection)?;
        let index = connection.index;
        let mark = self.events.len();
        let session = self.ext_suspend(index, now);
        let conn = self.conn_mut(connection)?;
        // Nothing of this connection is handled any more.
        conn.state = ConnState::Closing;
        conn.awaiting = Awaiting::Nothing;
        self.leave_all(index);
        self.unlink_identity(index);
        self.drop_subscriptions(index, UnsubscribeCause::ConnectionClosed);
        if let Some(conn) = self.conns.remove(index) {
            self.events.push_back(Event::Closed {
                connection,
                identity: conn.identity,
            });
        }
        self.ext_after_close(index, mark, session);
        Ok(())
    }

    /// Close one connection with a disconnect frame of the application's
    /// choosing (e.g. [`DisconnectReason::TokenExpired`]).
    pub fn disconnect(
        &mut self,
        connection: ConnectionId,
        reason: DisconnectReason,
        reconnect: bool,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        self.conn(connection)?;
        self.disconnect_index(connection.index, reason, reconnect);
        Ok(())
    }

    /// Remote disconnect: close every connection of `identity` with
    /// `{"type":"disconnect","reason":"remote","reconnect":<reconnect>}` (as
    /// Rails 7.1+ does). Returns how many connections it closed.
    pub fn disconnect_identity(&mut self, identity: &str, reconnect: bool, now: Instant) -> usize {
        self.advance(now);
        let conns = self.connections_of(identity);
        for &index in &conns {
            self.disconnect_index(index, DisconnectReason::Remote, reconnect);
        }
        conns.len()
    }

    /// Server restart: every connection gets
    /// `{"type":"disconnect","reason":"server_restart","reconnect":true}` and
    /// a close.
    pub fn restart(&mut self, now: Instant) {
        self.advance(now);
        for index in 0..self.conns.capacity_slots() {
            if self
                .conns
                .get(index)
                .is_some_and(|c| c.state != ConnState::Closing)
            {
                self.disconnect_index(index, DisconnectReason::ServerRestart, true);
            }
        }
    }

    /// Starts closing connection `index`: farewell frames, then its
    /// subscriptions, joins and identity go.
    pub(super) fn disconnect_index(
        &mut self,
        index: u32,
        reason: DisconnectReason,
        reconnect: bool,
    ) {
        if !self.begin_close(index, reason, reconnect) {
            return;
        }
        self.leave_all(index);
        self.unlink_identity(index);
        self.drop_subscriptions(index, UnsubscribeCause::Disconnected);
        self.flush_overflow();
    }
}
