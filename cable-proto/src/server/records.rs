//! The records the server state is made of: connections, subscriptions,
//! identifiers, envelopes, streams and their groups. Indices are `u32` slab
//! slots; [`NONE`] ends the intrusive lists.

use std::collections::VecDeque;
use std::time::Instant;

use crate::identifier::Identifier;
use crate::types::{Identity, StreamMode, StreamName};

use super::envelope::Envelope;
use super::protocol::Protocol;

/// "No index" in the core's intrusive lists.
pub(super) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnState {
    /// Waiting for the application's authentication.
    Pending,
    /// Accepted (welcomed, for Action Cable).
    Open,
    /// A close is queued; waiting for the host to report the socket closed.
    Closing,
}

/// The decision a connection's commands wait for. At most one is pending
/// per connection: later commands wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaiting {
    /// Nothing: commands are handled as they come.
    Nothing,
    /// The connection's authentication.
    Connection,
    /// A subscription's authorization.
    Subscription,
    /// A perform's outcome.
    Perform,
}

/// Frames that arrived while a decision was pending.
#[derive(Debug, Default)]
pub(super) struct Held {
    pub(super) frames: VecDeque<(Box<[u8]>, bool)>,
    pub(super) bytes: usize,
}

/// What few connections need: kept out of line so that an idle connection
/// stays small.
#[derive(Debug, Default)]
pub(super) struct ConnExtra {
    pub(super) held: Held,
    /// Memberships without a subscription ([`Server::join`](super::Server::join)).
    pub(super) joins: Vec<Membership>,
    /// When the connection's credential expires.
    pub(super) expires_at: Option<Instant>,
    /// When the pending decision expires.
    pub(super) decision_deadline: Option<Instant>,
    /// The sequence number of the last decision that expired (0: none).
    pub(super) expired_decision: u32,
}

impl ConnExtra {
    /// Whether nothing is left that needs the record.
    pub(super) fn is_empty(&self) -> bool {
        self.held.frames.is_empty()
            && self.joins.is_empty()
            && self.expires_at.is_none()
            && self.decision_deadline.is_none()
            && self.expired_decision == 0
    }
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) identity: Option<Identity>,
    /// The first of the connection's subscriptions, in subscribe order,
    /// linked through [`Sub::next_of_conn`] ([`NONE`]: none). Four bytes
    /// where a slice would take sixteen: connections are many, and their
    /// subscriptions few.
    pub(super) first_sub: u32,
    pub(super) extra: Option<Box<ConnExtra>>,
    /// Bytes queued and not yet reported written: at most `u32::MAX` (the
    /// queue bound is capped there), which keeps the record in 64 bytes.
    pub(super) queued: u32,
    /// The neighbours in the identity's list of connections, or [`NONE`].
    pub(super) prev_same_identity: u32,
    pub(super) next_same_identity: u32,
    /// Numbers the connection's decisions; a token carries its number.
    pub(super) decision_seq: u32,
    pub(super) state: ConnState,
    pub(super) awaiting: Awaiting,
    pub(super) protocol: Protocol,
}

impl Conn {
    pub(super) fn new(protocol: Protocol) -> Self {
        Self {
            identity: None,
            first_sub: NONE,
            extra: None,
            queued: 0,
            prev_same_identity: NONE,
            next_same_identity: NONE,
            decision_seq: 0,
            state: ConnState::Pending,
            awaiting: Awaiting::Connection,
            protocol,
        }
    }

    pub(super) fn extra_mut(&mut self) -> &mut ConnExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Drops the out-of-line record once nothing needs it.
    pub(super) fn shrink_extra(&mut self) {
        if self.extra.as_ref().is_some_and(|e| e.is_empty()) {
            self.extra = None;
        }
    }

    pub(super) fn held_len(&self) -> (usize, usize) {
        self.extra
            .as_ref()
            .map_or((0, 0), |e| (e.held.frames.len(), e.held.bytes))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Membership {
    pub(super) group: u32,
    pub(super) pos: u32,
}

#[derive(Debug)]
pub(super) struct Sub {
    pub(super) conn: u32,
    pub(super) ident: u32,
    /// Streams not yet ready that this subscription's confirmation waits for.
    pub(super) waiting: u32,
    pub(super) live: bool,
    /// The next subscription of the same connection, or [`NONE`].
    pub(super) next_of_conn: u32,
    /// Exactly sized: streams change rarely, subscriptions are many.
    pub(super) memberships: Box<[Membership]>,
}

#[derive(Debug)]
pub(super) struct IdentEntry {
    pub(super) identifier: Identifier,
    pub(super) refs: u32,
}

#[derive(Debug)]
pub(super) struct EnvelopeEntry {
    pub(super) envelope: Envelope,
    pub(super) refs: u32,
}

#[derive(Debug)]
pub(super) struct StreamEntry {
    pub(super) name: StreamName,
    pub(super) groups: Vec<u32>,
    /// Subscribed upstream (always, unless `Config::confirm_when_streams_ready`).
    pub(super) ready: bool,
}

/// One member of a group: a subscription of a connection, or the
/// connection itself ([`NONE`] as `sub`) for a join.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    pub(super) sub: u32,
    pub(super) conn: u32,
}

/// How a group's frame is encoded: every member of a group gets the same
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Encoding {
    /// An Action Cable message frame for one identifier.
    Subscription { ident: u32, mode: StreamMode },
    /// An interned [`Envelope`].
    Envelope(u32),
}

/// The members of one stream that share one encoding.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) stream: u32,
    pub(super) encoding: Encoding,
    /// Position in the stream's list of groups.
    pub(super) pos: u32,
    pub(super) members: Vec<Member>,
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// The records the per-connection and per-subscription state is made of
    /// (the alloc integration test measures the whole, table slack included).
    #[test]
    fn record_sizes_stay_small() {
        let sizes = (
            std::mem::size_of::<Option<Conn>>(),
            std::mem::size_of::<Option<Sub>>(),
        );
        assert!(sizes.0 <= 56, "Option<Conn>: {} bytes", sizes.0);
        assert!(sizes.1 <= 40, "Option<Sub>: {} bytes", sizes.1);
        assert_eq!(std::mem::size_of::<Member>(), 8);
        assert_eq!(std::mem::size_of::<Membership>(), 8);
    }
}
