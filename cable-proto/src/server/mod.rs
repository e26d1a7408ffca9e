//! The server state machine: connections, subscriptions, decisions with
//! deadlines, pings and the broadcast hub, with no IO.
//!
//! Inputs are method calls that carry `now`; outputs are drained with
//! [`Server::poll_transmit`], [`Server::poll_event`] and
//! [`Server::poll_timeout`] after every input. See the crate docs for a run
//! loop.
//!
//! The rooms of this module:
//! - `lifecycle`: opening, accepting, identifying and closing connections;
//! - `commands`: frames in, Action Cable commands, frames held while a
//!   decision is pending;
//! - `subscriptions`: subscription and perform decisions, streams of a
//!   subscription;
//! - `hub`: streams, groups keyed by encoding, joins, readiness, fan-out;
//! - `outbox`: queued frames, the per-connection bound, close frames;
//! - `identities`: the connections of each identity;
//! - `timers`: deadlines and the ping beat;
//! - `queries`: read-only views;
//! - `extended`: AnyCable's extended protocol (positions, history, session
//!   resume, pongs, whispers, presence).

mod commands;
mod config;
mod conn_subs;
mod decisions;
mod envelope;
mod events;
mod extended;
mod hub;
mod identities;
mod lifecycle;
mod outbox;
mod protocol;
mod queries;
mod records;
mod subscriptions;
mod timers;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::UsageError;
use crate::hash::{Map, SeededState};
use crate::identifier::{Identifier, LiteralKey};
use crate::slab::Slab;
use crate::types::{Identity, StreamName};

pub use crate::frame::Frame;
pub use crate::types::{ConnectionId, StreamMode, SubscriptionId};
pub use config::{
    Config, DecisionTimeouts, LimitAction, Limits, PROTOCOL_UNSUPPORTED, PROTOCOL_V1_JSON,
};
pub use decisions::{
    ConnectionAccept, PendingConnection, PendingPerform, PendingSubscription, PerformOutcome,
    SubscriptionAccept,
};
pub use envelope::Envelope;
pub use events::{Event, ExpiredDecision, Incoming, Perform, Transmit, UnsubscribeCause};
pub use extended::{
    ExtendedConfig, HistoryEntry, HistoryError, HistoryRequest, HistoryStreamRequest,
    PendingHistory, PingPrecision, PresenceAction, PresenceRequest, SessionPing, SessionRestored,
    StreamHistory, StreamPosition, PROTOCOL_V1_EXT_JSON,
};
pub use hub::Delivery;
pub use protocol::Protocol;

use records::{Conn, EnvelopeEntry, Group, IdentEntry, StreamEntry, Sub};
use timers::Timers;

/// The Action Cable server state machine, and the hub other protocols share.
///
/// Drain order: after any input, drain [`poll_transmit`](Self::poll_transmit)
/// and [`poll_event`](Self::poll_event) until `None`, then sleep until
/// [`poll_timeout`](Self::poll_timeout) (or the next input) and call
/// [`handle_timeout`](Self::handle_timeout). Frames of one connection come out
/// of `poll_transmit` in the order they must be written.
///
/// Time: every call that can change state takes `now`. The core's clock is
/// the latest `now` it was given (it never goes back), and every deadline due
/// by then fires before the call does its own work.
#[derive(Debug)]
pub struct Server {
    config: Config,
    conns: Slab<Conn>,
    subs: Slab<Sub>,
    idents: Slab<IdentEntry>,
    /// Identifier entries by Rails-escaped literal ([`LiteralKey`]).
    ident_index: Map<LiteralKey, u32>,
    envelopes: Slab<EnvelopeEntry>,
    envelope_index: Map<Envelope, u32>,
    streams: Slab<StreamEntry>,
    stream_index: Map<StreamName, u32>,
    groups: Slab<Group>,
    group_index: Map<(u32, records::Encoding), u32>,
    /// Identity (its seeded hash) -> its first and last connections (the
    /// rest are linked through `Conn::{prev,next}_same_identity`).
    identities: Map<u64, (u32, u32)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    timers: Timers,
    now: Instant,
    clock_base: Instant,
    unix_base: Duration,
    next_ping: Instant,
    overflowed: Vec<u32>,
    /// AnyCable's extended protocol.
    ext: extended::ExtState,
}

impl Server {
    /// A server configured with `config`. `now` and `unix_now` (time since
    /// the Unix epoch) are read together by the host: ping payloads are
    /// `unix_now` advanced by the time elapsed since `now`.
    pub fn new(config: Config, now: Instant, unix_now: Duration) -> Self {
        let hasher = SeededState::new(config.hash_seed);
        Self {
            next_ping: now + config.ping_interval,
            config,
            conns: Slab::default(),
            subs: Slab::default(),
            idents: Slab::default(),
            ident_index: Map::with_hasher(hasher),
            envelopes: Slab::default(),
            envelope_index: Map::with_hasher(hasher),
            streams: Slab::default(),
            stream_index: Map::with_hasher(hasher),
            groups: Slab::default(),
            group_index: Map::with_hasher(hasher),
            identities: Map::with_hasher(hasher),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timers: Timers::default(),
            now,
            clock_base: now,
            unix_base: unix_now,
            overflowed: Vec::new(),
            ext: extended::ExtState::new(hasher),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Re-anchors the Unix time used for ping payloads (after the host's
    /// wall clock was corrected, say).
    pub fn set_unix_time(&mut self, now: Instant, unix_now: Duration) {
        self.advance(now);
        self.clock_base = now;
        self.unix_base = unix_now;
    }

    /// The next frame to write.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------ handles

    fn conn(&self, id: ConnectionId) -> Result<&Conn, UsageError> {
        self.conns
            .get_checked(id.index, id.generation)
            .ok_or(UsageError::UnknownConnection)
    }

    fn conn_mut(&mut self, id: ConnectionId) -> Result<&mut Conn, UsageError> {
        self.conns
            .get_checked_mut(id.index, id.generation)
            .ok_or(UsageError::UnknownConnection)
    }

    fn connection_id(&self, index: u32) -> ConnectionId {
        ConnectionId {
            index,
            generation: self.conns.generation(index),
        }
    }

    fn subscription_id(&self, index: u32) -> SubscriptionId {
        SubscriptionId {
            index,
            generation: self.subs.generation(index),
        }
    }

    fn identity_of(&self, conn: u32) -> Identity {
        self.conns
            .get(conn)
            .and_then(|c| c.identity.clone())
            .unwrap_or_else(|| Identity::new(""))
    }

    fn identifier_of(&self, ident: u32) -> &Identifier {
        // Every subscription holds a reference on its identifier entry.
        &self
            .idents
            .get(ident)
            .expect("identifier entry of a live subscription")
            .identifier
    }

    fn identifier_of_sub(&self, sub: u32) -> &Identifier {
        let ident = self.subs.get(sub).map_or(u32::MAX, |s| s.ident);
        self.identifier_of(ident)
    }
}
