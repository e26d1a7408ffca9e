//! Frames on their way out: the per-connection queue bound, the slow
//! consumer's `too_slow`, and the frames that close a connection.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::frame::{self, DisconnectReason, Frame, CLOSE_NORMAL};
use crate::json::JsonText;
use crate::slab::Slab;
use crate::types::ConnectionId;

use super::events::{Event, Transmit, UnsubscribeCause};
use super::records::{Awaiting, Conn, ConnState};
use super::Server;

/// `{"type":"welcome"}`, or with extra fields after `type`.
pub(super) fn welcome_frame(extras: &[(Box<str>, JsonText)]) -> Bytes {
    if extras.is_empty() {
        return frame::welcome();
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(br#"{"type":"welcome""#);
    for (key, value) in extras {
        out.push(b',');
        crate::json::write_rails_string(&mut out, key);
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'}');
    Bytes::from(out)
}

/// Queues `bytes` for an open or pending connection within its bound. A
/// frame that would go past the bound is not queued: the connection gets the
/// `too_slow` disconnect instead and is listed in `overflowed` for cleanup.
/// Returns whether the frame was queued.
pub(super) fn push_counted(
    conns: &mut Slab<Conn>,
    transmits: &mut VecDeque<Transmit>,
    overflowed: &mut Vec<u32>,
    limit: usize,
    index: u32,
    bytes: Bytes,
) -> bool {
    let generation = conns.generation(index);
    let Some(conn) = conns.get_mut(index) else {
        return false;
    };
    if conn.state == ConnState::Closing {
        return false;
    }
    let queued = conn.queued as usize + bytes.len();
    let Some(queued) = u32::try_from(queued).ok().filter(|_| queued <= limit) else {
        let reason = DisconnectReason::TooSlow;
        close_frames(conn, transmits, index, generation, &reason, true);
        overflowed.push(index);
        return false;
    };
    conn.queued = queued;
    transmits.push_back(Transmit {
        connection: ConnectionId { index, generation },
        frame: Frame::Text(bytes),
    });
    true
}

/// Queues the disconnect frame (Action Cable only) and the close, and marks
/// the connection closing. The farewell frame is not counted against the
/// queue bound.
fn close_frames(
    conn: &mut Conn,
    transmits: &mut VecDeque<Transmit>,
    index: u32,
    generation: u32,
    reason: &DisconnectReason,
    reconnect: bool,
) {
    let connection = ConnectionId { index, generation };
    if conn.protocol.is_action_cable() {
        transmits.push_back(Transmit {
            connection,
            frame: Frame::Text(frame::disconnect(reason, reconnect)),
        });
    }
    transmits.push_back(Transmit {
        connection,
        frame: Frame::Close {
            code: CLOSE_NORMAL,
            reason: "",
        },
    });
    conn.state = ConnState::Closing;
    conn.awaiting = Awaiting::Nothing;
    if let Some(extra) = conn.extra.as_mut() {
        extra.held = Default::default();
        extra.decision_deadline = None;
        extra.expires_at = None;
    }
}

impl Server {
    /// Queues `bytes` for a connection, counting them against its bound.
    pub(super) fn push(&mut self, index: u32, bytes: Bytes) -> bool {
        push_counted(
            &mut self.conns,
            &mut self.transmits,
            &mut self.overflowed,
            self.config.limits.max_queued_bytes,
            index,
            bytes,
        )
    }

    /// Starts closing a connection; `false` if it was already closing.
    pub(super) fn begin_close(
        &mut self,
        index: u32,
        reason: DisconnectReason,
        reconnect: bool,
    ) -> bool {
        let generation = self.conns.generation(index);
        let Some(conn) = self.conns.get_mut(index) else {
            return false;
        };
        if conn.state == ConnState::Closing {
            return false;
        }
        close_frames(
            conn,
            &mut self.transmits,
            index,
            generation,
            &reason,
            reconnect,
        );
        self.events.push_back(Event::Disconnecting {
            connection: ConnectionId { index, generation },
            reason,
            reconnect,
        });
        true
    }

    /// Finishes the closing of connections that went past their queue bound
    /// (their farewell frames are already queued).
    pub(super) fn flush_overflow(&mut self) {
        while let Some(index) = self.overflowed.pop() {
            self.events.push_back(Event::Disconnecting {
                connection: self.connection_id(index),
                reason: DisconnectReason::TooSlow,
                reconnect: true,
            });
            self.leave_all(index);
            self.unlink_identity(index);
            self.drop_subscriptions(index, UnsubscribeCause::Disconnected);
        }
    }

    /// Send a complete frame (JSON text, e.g. another protocol's envelope) to
    /// one open connection.
    pub fn send_frame(
        &mut self,
        connection: ConnectionId,
        frame: &JsonText,
        now: std::time::Instant,
    ) -> Result<(), crate::error::UsageError> {
        self.advance(now);
        let conn = self.conn(connection)?;
        if conn.state != ConnState::Open {
            return Err(crate::error::UsageError::ConnectionNotOpen);
        }
        self.push(connection.index, Bytes::copy_from_slice(frame.as_bytes()));
        self.flush_overflow();
        Ok(())
    }

    /// Send a complete frame to every open connection of `identity` (a user
    /// on several devices). Returns how many connections it reached.
    pub fn send_frame_to_identity(
        &mut self,
        identity: &str,
        frame: &JsonText,
        now: std::time::Instant,
    ) -> usize {
        self.advance(now);
        let conns = self.connections_of(identity);
        let bytes = Bytes::copy_from_slice(frame.as_bytes());
        let mut reached = 0;
        for index in conns {
            if self
                .conns
                .get(index)
                .is_some_and(|c| c.state == ConnState::Open)
                && self.push(index, bytes.clone())
            {
                reached += 1;
            }
        }
        self.flush_overflow();
        reached
    }

    /// [`send_frame_to_identity`](Self::send_frame_to_identity), to the
    /// connections of `identity` that speak `protocol` only (a dialect's
    /// frame to a user of one namespace shared by several protocols).
    pub fn send_frame_to_identity_as(
        &mut self,
        identity: &str,
        protocol: super::Protocol,
        frame: &JsonText,
        now: std::time::Instant,
    ) -> usize {
        self.advance(now);
        let conns = self.connections_of(identity);
        let bytes = Bytes::copy_from_slice(frame.as_bytes());
        let mut reached = 0;
        for index in conns {
            if self
                .conns
                .get(index)
                .is_some_and(|c| c.state == ConnState::Open && c.protocol == protocol)
                && self.push(index, bytes.clone())
            {
                reached += 1;
            }
        }
        self.flush_overflow();
        reached
    }
}
