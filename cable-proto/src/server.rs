//! The server state machine: connections, subscriptions, pings and the
//! broadcast hub, with no IO.
//!
//! Inputs are method calls that carry `now`; outputs are drained with
//! [`Server::poll_transmit`], [`Server::poll_event`] and
//! [`Server::poll_timeout`] after every input. See the crate docs for a run
//! loop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::command::{self, Command};
use crate::config::{Config, LimitAction};
use crate::error::{CommandError, UsageError};
use crate::frame::{self, DisconnectReason, Frame, CLOSE_NORMAL};
use crate::handshake::{negotiate_subprotocol, HandshakeRefusal, HandshakeRequest};
use crate::hash::{Map, SeededState};
use crate::identifier::Identifier;
use crate::json::{validate, write_rails_string, JsonText};
use crate::slab::Slab;
use crate::types::{
    ConnectionId, Event, Identity, Incoming, PendingConnection, PendingSubscription,
    PendingSubscriptionEvent, Perform, StreamMode, StreamName, SubscriptionId, Transmit,
    UnsubscribeCause,
};

/// "No index" in the core's intrusive lists.
const NONE: u32 = u32::MAX;

/// What a subscription starts with when accepted.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionAccept {
    streams: Vec<(StreamName, StreamMode)>,
    transmissions: Vec<JsonText>,
}

impl SubscriptionAccept {
    /// Accept with no streams and nothing to transmit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stream from `stream` (Rails' `stream_from`).
    pub fn stream(mut self, stream: impl Into<StreamName>) -> Self {
        self.streams.push((stream.into(), StreamMode::Json));
        self
    }

    /// Stream from `stream`, delivering each payload as a JSON string
    /// (Rails' `stream_from(name) { |payload| transmit payload }`).
    pub fn stream_raw(mut self, stream: impl Into<StreamName>) -> Self {
        self.streams.push((stream.into(), StreamMode::RawString));
        self
    }

    /// Transmit `message` to the subscriber before the confirmation (Rails'
    /// `transmit` inside `subscribed`).
    pub fn transmit(mut self, message: JsonText) -> Self {
        self.transmissions.push(message);
        self
    }
}

/// Who a broadcast reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Frames queued (one per subscription reached).
    pub recipients: usize,
    /// Distinct frames built (one per identifier reached).
    pub encoded: usize,
    /// Subscriptions skipped because the payload was not JSON and their
    /// stream mode is [`StreamMode::Json`] (Rails logs a decode error).
    pub skipped_invalid_json: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Waiting for the application's authentication.
    Pending,
    /// Welcomed.
    Open,
    /// A close is queued; waiting for the host to report the socket closed.
    Closing,
}

#[derive(Debug, Default)]
struct Held {
    frames: VecDeque<Box<[u8]>>,
    bytes: usize,
}

#[derive(Debug)]
struct Conn {
    state: ConnState,
    /// A subscription decision is pending: commands wait.
    awaiting_subscription: bool,
    identity: Option<Identity>,
    /// The next connection of the same identity, or [`NONE`].
    next_same_identity: u32,
    /// Exactly sized: subscriptions change rarely, connections are many.
    subs: Box<[u32]>,
    held: Option<Box<Held>>,
    queued: usize,
}

#[derive(Debug, Clone, Copy)]
struct Membership {
    group: u32,
    pos: u32,
}

#[derive(Debug)]
struct Sub {
    conn: u32,
    ident: u32,
    live: bool,
    /// Streams not yet ready that this subscription's confirmation waits for.
    waiting: u8,
    /// Exactly sized: streams change rarely, subscriptions are many.
    memberships: Box<[Membership]>,
}

#[derive(Debug)]
struct IdentEntry {
    identifier: Identifier,
    refs: u32,
}

#[derive(Debug)]
struct StreamEntry {
    name: StreamName,
    groups: Vec<u32>,
    /// Subscribed upstream (always, unless `Config::confirm_when_streams_ready`).
    ready: bool,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    sub: u32,
    conn: u32,
}

/// The subscribers of one stream that share one identifier and mode: they
/// all get the same bytes.
#[derive(Debug)]
struct Group {
    stream: u32,
    ident: u32,
    mode: StreamMode,
    pos: u32,
    members: Vec<Member>,
}

/// The Action Cable server state machine.
///
/// Drain order: after any input, drain [`poll_transmit`](Self::poll_transmit)
/// and [`poll_event`](Self::poll_event) until `None`, then sleep until
/// [`poll_timeout`](Self::poll_timeout) (or the next input) and call
/// [`handle_timeout`](Self::handle_timeout). Frames of one connection come out
/// of `poll_transmit` in the order they must be written.
#[derive(Debug)]
pub struct Server {
    config: Config,
    conns: Slab<Conn>,
    subs: Slab<Sub>,
    idents: Slab<IdentEntry>,
    ident_index: Map<Identifier, u32>,
    streams: Slab<StreamEntry>,
    stream_index: Map<StreamName, u32>,
    groups: Slab<Group>,
    group_index: Map<(u32, u32, StreamMode), u32>,
    /// Identity -> the first of its connections (the rest are linked
    /// through `Conn::next_same_identity`).
    identities: Map<Identity, u32>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    clock_base: Instant,
    unix_base: Duration,
    next_ping: Instant,
    overflowed: Vec<u32>,
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
            streams: Slab::default(),
            stream_index: Map::with_hasher(hasher),
            groups: Slab::default(),
            group_index: Map::with_hasher(hasher),
            identities: Map::with_hasher(hasher),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            clock_base: now,
            unix_base: unix_now,
            overflowed: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Re-anchors the Unix time used for ping payloads (after the host's
    /// wall clock was corrected, say).
    pub fn set_unix_time(&mut self, now: Instant, unix_now: Duration) {
        self.clock_base = now;
        self.unix_base = unix_now;
    }

    // ------------------------------------------------------------------ outputs

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

    /// When to call [`handle_timeout`](Self::handle_timeout) next. O(1).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_ping)
    }

    // ------------------------------------------------------------------ handshake

    /// An upgrade request arrived. Refused: answer with the refusal's status
    /// and body, and no connection exists. Accepted: complete the upgrade with
    /// the chosen subprotocol; frames may arrive at once (they are held), and
    /// the application decides on [`Incoming::pending`].
    pub fn handle_open(
        &mut self,
        request: &HandshakeRequest<'_>,
        _now: Instant,
    ) -> Result<Incoming, HandshakeRefusal> {
        if !self.config.origins.allows(request) {
            return Err(HandshakeRefusal::OriginNotAllowed {
                origin: request.origin.map(Into::into),
            });
        }
        let subprotocol =
            negotiate_subprotocol(request.protocols, &self.config.protocols).map(str::to_owned);
        let (index, generation) = self.conns.insert(Conn {
            state: ConnState::Pending,
            awaiting_subscription: false,
            identity: None,
            next_same_identity: NONE,
            subs: Box::default(),
            held: None,
            queued: 0,
        });
        let connection = ConnectionId { index, generation };
        Ok(Incoming {
            connection,
            subprotocol,
            pending: PendingConnection { connection },
        })
    }

    /// Authentication succeeded: send `welcome`, then handle the frames that
    /// arrived meanwhile, in order.
    pub fn accept_connection(
        &mut self,
        pending: PendingConnection,
        identity: Identity,
        _now: Instant,
    ) -> Result<(), UsageError> {
        let id = pending.connection;
        let conn = self
            .conns
            .get_checked(id.index, id.generation)
            .filter(|c| c.state == ConnState::Pending)
            .ok_or(UsageError::StaleDecision)?;
        debug_assert!(conn.identity.is_none());
        // Append to the identity's list, keeping connections in accept order.
        match self.identities.get(identity.as_str()).copied() {
            None => {
                self.identities.insert(identity.clone(), id.index);
            }
            Some(mut last) => {
                while let Some(next) = self
                    .conns
                    .get(last)
                    .map(|c| c.next_same_identity)
                    .filter(|&n| n != NONE)
                {
                    last = next;
                }
                if let Some(c) = self.conns.get_mut(last) {
                    c.next_same_identity = id.index;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(id.index) {
            conn.state = ConnState::Open;
            conn.identity = Some(identity);
        }
        self.push(id.index, frame::welcome());
        self.flush_overflow();
        self.drain_held(id.index);
        Ok(())
    }

    /// Authentication failed (Rails' `reject_unauthorized_connection`): send
    /// `{"type":"disconnect","reason":"unauthorized","reconnect":false}` and a
    /// close; held frames are dropped unprocessed.
    pub fn reject_connection(
        &mut self,
        pending: PendingConnection,
        _now: Instant,
    ) -> Result<(), UsageError> {
        let id = pending.connection;
        self.conns
            .get_checked(id.index, id.generation)
            .filter(|c| c.state == ConnState::Pending)
            .ok_or(UsageError::StaleDecision)?;
        self.disconnect_index(id.index, DisconnectReason::Unauthorized, false);
        Ok(())
    }

    // ------------------------------------------------------------------ frames

    /// A text frame arrived on `connection`. Whatever the frame holds, this
    /// returns `Ok` for a live connection; what the peer got wrong comes out
    /// as [`Event::CommandFailed`].
    pub fn handle_text(
        &mut self,
        connection: ConnectionId,
        frame: &[u8],
        _now: Instant,
    ) -> Result<(), UsageError> {
        let conn = self.conn(connection)?;
        let index = connection.index;
        if conn.state == ConnState::Closing {
            self.fail(index, CommandError::Closing);
            return Ok(());
        }
        let limits = &self.config.limits;
        if frame.len() > limits.max_frame_bytes {
            let error = CommandError::FrameTooLarge {
                len: frame.len(),
                limit: limits.max_frame_bytes,
            };
            let action = limits.on_frame_too_large;
            self.limit_exceeded(index, error, action);
            return Ok(());
        }
        let blocked = conn.state == ConnState::Pending || conn.awaiting_subscription;
        if blocked {
            let held_frames = conn.held.as_ref().map_or(0, |h| h.frames.len());
            let held_bytes = conn.held.as_ref().map_or(0, |h| h.bytes);
            if held_frames >= limits.max_held_frames
                || held_bytes + frame.len() > limits.max_held_bytes
            {
                let error = CommandError::HoldOverflow {
                    frames: limits.max_held_frames,
                    bytes: limits.max_held_bytes,
                };
                let action = limits.on_hold_overflow;
                self.limit_exceeded(index, error, action);
                return Ok(());
            }
            if let Some(conn) = self.conns.get_mut(index) {
                let held = conn.held.get_or_insert_with(Default::default);
                held.bytes += frame.len();
                held.frames.push_back(frame.into());
            }
            return Ok(());
        }
        self.process_frame(index, frame);
        self.flush_overflow();
        Ok(())
    }

    /// A binary frame arrived: Action Cable ignores those (Rails logs
    /// "Couldn't handle non-string message").
    pub fn handle_binary(
        &mut self,
        connection: ConnectionId,
        frame: &[u8],
        _now: Instant,
    ) -> Result<(), UsageError> {
        self.conn(connection)?;
        self.fail(
            connection.index,
            CommandError::BinaryFrame { len: frame.len() },
        );
        Ok(())
    }

    /// The host wrote `bytes` of this connection's frames to the socket.
    pub fn handle_written(
        &mut self,
        connection: ConnectionId,
        bytes: usize,
    ) -> Result<(), UsageError> {
        self.conn(connection)?;
        if let Some(conn) = self.conns.get_mut(connection.index) {
            conn.queued = conn.queued.saturating_sub(bytes);
        }
        Ok(())
    }

    /// The socket closed (either side, or it broke). Every live subscription
    /// ends with [`Event::Unsubscribed`], then [`Event::Closed`]; the handle
    /// is invalid afterwards.
    pub fn handle_close(
        &mut self,
        connection: ConnectionId,
        _now: Instant,
    ) -> Result<(), UsageError> {
        self.conn(connection)?;
        let index = connection.index;
        if let Some(conn) = self.conns.get_mut(index) {
            // Nothing of this connection is handled any more.
            conn.state = ConnState::Closing;
            conn.held = None;
        }
        self.forget_identity(index);
        self.drop_subscriptions(index, UnsubscribeCause::ConnectionClosed);
        if let Some(conn) = self.conns.remove(index) {
            self.events.push_back(Event::Closed {
                connection,
                identity: conn.identity,
            });
        }
        Ok(())
    }

    /// Time passed: sends the ping when its beat is due. Every welcomed
    /// connection gets the same frame, `{"type":"ping","message":<unix s>}`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_ping {
            return;
        }
        let seconds = (self.unix_base + now.saturating_duration_since(self.clock_base)).as_secs();
        let ping = frame::ping(seconds);
        for index in 0..self.conns.capacity_slots() {
            if self
                .conns
                .get(index)
                .is_some_and(|c| c.state == ConnState::Open)
            {
                self.push(index, ping.clone());
            }
        }
        while self.next_ping <= now {
            self.next_ping += self.config.ping_interval.max(Duration::from_millis(1));
        }
        self.flush_overflow();
    }

    // ------------------------------------------------------------------ subscriptions

    /// Authorize a pending subscription: queue `accept`'s transmissions, then
    /// `confirm_subscription`, start its streams, and go on with the
    /// connection's waiting commands.
    pub fn accept_subscription(
        &mut self,
        pending: PendingSubscription,
        accept: SubscriptionAccept,
        _now: Instant,
    ) -> Result<(), UsageError> {
        let sub_index = self.pending_sub(&pending)?;
        let (conn, ident) = {
            let sub = self.subs.get(sub_index).ok_or(UsageError::StaleDecision)?;
            (sub.conn, sub.ident)
        };
        for message in &accept.transmissions {
            let literal = self.identifier_of(ident).json_literal();
            let bytes = frame::message_from_literal(literal, message.as_bytes());
            self.push(conn, bytes);
        }
        if let Some(sub) = self.subs.get_mut(sub_index) {
            sub.live = true;
        }
        for (stream, mode) in accept.streams {
            self.add_membership(sub_index, stream, mode);
        }
        let waiting = self.unready_streams_of(sub_index);
        if let Some(sub) = self.subs.get_mut(sub_index) {
            sub.waiting = waiting;
        }
        if waiting == 0 {
            self.confirm(sub_index);
        }
        Ok(())
    }

    /// The host subscribed to `stream` upstream (its Redis `SUBSCRIBE` was
    /// answered): with [`Config::confirm_when_streams_ready`], the
    /// subscriptions whose confirmation waited for it are confirmed, and
    /// their connections' commands go on. Unknown or ready streams: no-op.
    pub fn stream_ready(&mut self, stream: &str) {
        let Some(&stream_index) = self.stream_index.get(stream) else {
            return;
        };
        let Some(entry) = self.streams.get_mut(stream_index) else {
            return;
        };
        if entry.ready {
            return;
        }
        entry.ready = true;
        let waiting: Vec<u32> = entry
            .groups
            .iter()
            .filter_map(|&g| self.groups.get(g))
            .flat_map(|g| g.members.iter().map(|m| m.sub))
            .filter(|&sub| self.subs.get(sub).is_some_and(|s| s.waiting > 0))
            .collect();
        for sub in waiting {
            self.one_stream_settled(sub);
        }
    }

    /// Counts the distinct streams of a subscription that are not ready.
    fn unready_streams_of(&self, sub: u32) -> u8 {
        let Some(entry) = self.subs.get(sub) else {
            return 0;
        };
        let mut unready: Vec<u32> = entry
            .memberships
            .iter()
            .filter_map(|m| self.groups.get(m.group))
            .map(|g| g.stream)
            .filter(|&s| self.streams.get(s).is_some_and(|s| !s.ready))
            .collect();
        unready.sort_unstable();
        unready.dedup();
        u8::try_from(unready.len()).unwrap_or(u8::MAX)
    }

    /// A stream the subscription's confirmation waited for is ready (or no
    /// longer one of its streams).
    fn one_stream_settled(&mut self, sub: u32) {
        let Some(entry) = self.subs.get_mut(sub) else {
            return;
        };
        if entry.waiting == 0 {
            return;
        }
        entry.waiting -= 1;
        if entry.waiting == 0 {
            self.confirm(sub);
            self.flush_overflow();
        }
    }

    /// Queues `confirm_subscription` and lets the connection's commands go on.
    fn confirm(&mut self, sub: u32) {
        let Some(entry) = self.subs.get(sub) else {
            return;
        };
        let conn = entry.conn;
        let confirm = frame::confirm(self.identifier_of(entry.ident));
        self.push(conn, confirm);
        self.resume(conn);
    }

    /// Refuse a pending subscription (Rails' `reject`): queue
    /// `reject_subscription`; the identifier is free again.
    pub fn reject_subscription(
        &mut self,
        pending: PendingSubscription,
        _now: Instant,
    ) -> Result<(), UsageError> {
        let sub_index = self.pending_sub(&pending)?;
        let (conn, ident) = {
            let sub = self.subs.get(sub_index).ok_or(UsageError::StaleDecision)?;
            (sub.conn, sub.ident)
        };
        let reject = frame::reject(self.identifier_of(ident));
        self.push(conn, reject);
        self.remove_subscription(sub_index, None);
        self.resume(conn);
        Ok(())
    }

    /// Drop a pending subscription without a word to the client, as Rails
    /// does when the channel class is not found or `subscribed` raises.
    pub fn abandon_subscription(
        &mut self,
        pending: PendingSubscription,
        _now: Instant,
    ) -> Result<(), UsageError> {
        let sub_index = self.pending_sub(&pending)?;
        let conn = self.subs.get(sub_index).map(|s| s.conn);
        self.remove_subscription(sub_index, None);
        if let Some(conn) = conn {
            self.resume(conn);
        }
        Ok(())
    }

    /// End a live subscription from the server side (no frame: Action Cable
    /// has none). Reports [`Event::Unsubscribed`] with
    /// [`UnsubscribeCause::Application`].
    pub fn unsubscribe(&mut self, subscription: SubscriptionId) -> Result<(), UsageError> {
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
    ) -> Result<(), UsageError> {
        let index = self.live_sub(subscription)?;
        self.add_membership(index, stream.into(), mode);
        Ok(())
    }

    /// Stop one stream of a live subscription (Rails' `stop_stream_from`).
    pub fn stop_stream_from(
        &mut self,
        subscription: SubscriptionId,
        stream: &str,
    ) -> Result<(), UsageError> {
        let index = self.live_sub(subscription)?;
        let Some(&stream_index) = self.stream_index.get(stream) else {
            return Ok(());
        };
        let doomed: Vec<u32> = self
            .subs
            .get(index)
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
            self.remove_membership(index, group);
        }
        Ok(())
    }

    /// Stop every stream of a live subscription (Rails' `stop_all_streams`);
    /// the subscription stays.
    pub fn stop_all_streams(&mut self, subscription: SubscriptionId) -> Result<(), UsageError> {
        let index = self.live_sub(subscription)?;
        self.clear_memberships(index);
        Ok(())
    }

    // ------------------------------------------------------------------ targets

    /// Send `message` to one subscription, pending or live (Rails'
    /// `transmit`). Before the decision, it goes out before the confirmation.
    pub fn transmit(
        &mut self,
        subscription: SubscriptionId,
        message: &JsonText,
    ) -> Result<(), UsageError> {
        let sub = self
            .subs
            .get_checked(subscription.index, subscription.generation)
            .ok_or(UsageError::UnknownSubscription)?;
        let (conn, ident) = (sub.conn, sub.ident);
        let bytes = frame::message_from_literal(
            self.identifier_of(ident).json_literal(),
            message.as_bytes(),
        );
        self.push(conn, bytes);
        self.flush_overflow();
        Ok(())
    }

    /// Broadcast `payload` (JSON text, as Rails' pub/sub adapters carry it)
    /// to every subscription streaming from `stream`: one frame is built per
    /// distinct identifier and every subscriber of it gets the same bytes.
    /// The payload is spliced as given; subscriptions in
    /// [`StreamMode::RawString`] get it as a JSON string instead.
    pub fn broadcast(&mut self, stream: &str, payload: &str) -> Delivery {
        self.fan_out(stream, payload, None, false)
    }

    /// [`broadcast`](Self::broadcast) to everyone on `stream` but the
    /// subscriptions of connection `except` (the sender of a typing
    /// indicator or a whisper).
    pub fn broadcast_except(
        &mut self,
        stream: &str,
        payload: &str,
        except: ConnectionId,
    ) -> Delivery {
        self.fan_out(stream, payload, Some(except), false)
    }

    /// Broadcast `text` to `stream` as a JSON string message, whatever it
    /// holds (Rails' stream-with-block case).
    pub fn broadcast_string(&mut self, stream: &str, text: &str) -> Delivery {
        self.fan_out(stream, text, None, true)
    }

    /// Send a complete frame (JSON text, e.g. another protocol's envelope) to
    /// one open connection.
    pub fn send_frame(
        &mut self,
        connection: ConnectionId,
        frame: &JsonText,
    ) -> Result<(), UsageError> {
        let conn = self.conn(connection)?;
        if conn.state != ConnState::Open {
            return Err(UsageError::ConnectionNotOpen);
        }
        self.push(connection.index, Bytes::copy_from_slice(frame.as_bytes()));
        self.flush_overflow();
        Ok(())
    }

    /// Send a complete frame to every open connection of `identity` (a user
    /// on several devices). Returns how many connections it reached.
    pub fn send_frame_to_identity(&mut self, identity: &str, frame: &JsonText) -> usize {
        let conns = self.connections_of(identity);
        let bytes = Bytes::copy_from_slice(frame.as_bytes());
        let mut reached = 0;
        for index in conns {
            if push_counted(
                &mut self.conns,
                &mut self.transmits,
                &mut self.overflowed,
                self.config.limits.max_queued_bytes,
                index,
                bytes.clone(),
            ) {
                reached += 1;
            }
        }
        self.flush_overflow();
        reached
    }

    // ------------------------------------------------------------------ closing

    /// Close one connection with a disconnect frame of the application's
    /// choosing (e.g. [`DisconnectReason::TokenExpired`]).
    pub fn disconnect(
        &mut self,
        connection: ConnectionId,
        reason: DisconnectReason,
        reconnect: bool,
    ) -> Result<(), UsageError> {
        self.conn(connection)?;
        self.disconnect_index(connection.index, reason, reconnect);
        Ok(())
    }

    /// Remote disconnect: close every connection of `identity` with
    /// `{"type":"disconnect","reason":"remote","reconnect":<reconnect>}` (as
    /// Rails 7.1+ does). Returns how many connections it closed.
    pub fn disconnect_identity(&mut self, identity: &str, reconnect: bool) -> usize {
        let conns = self.connections_of(identity);
        for &index in &conns {
            self.disconnect_index(index, DisconnectReason::Remote, reconnect);
        }
        conns.len()
    }

    /// Server restart: every connection gets
    /// `{"type":"disconnect","reason":"server_restart","reconnect":true}` and
    /// a close.
    pub fn restart(&mut self, _now: Instant) {
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

    // ------------------------------------------------------------------ queries

    /// Live connections (pending, open or closing).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Subscriptions, pending or live.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Streams with at least one subscriber.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Subscriptions streaming from `stream`.
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

    /// Whether the connection exists.
    pub fn contains(&self, connection: ConnectionId) -> bool {
        self.conn(connection).is_ok()
    }

    /// Whether the connection has been welcomed and is not closing.
    pub fn is_open(&self, connection: ConnectionId) -> bool {
        self.conn(connection)
            .is_ok_and(|c| c.state == ConnState::Open)
    }

    /// The identity a connection was accepted with.
    pub fn identity(&self, connection: ConnectionId) -> Option<&Identity> {
        self.conn(connection).ok()?.identity.as_ref()
    }

    /// Bytes queued for a connection and not yet reported written.
    pub fn queued_bytes(&self, connection: ConnectionId) -> usize {
        self.conn(connection).map_or(0, |c| c.queued)
    }

    /// The subscriptions of a connection: handle, identifier, and whether it
    /// is live (confirmed).
    pub fn subscriptions(
        &self,
        connection: ConnectionId,
    ) -> impl Iterator<Item = (SubscriptionId, &Identifier, bool)> + '_ {
        let subs = self.conn(connection).map(|c| &c.subs[..]).unwrap_or(&[]);
        subs.iter().filter_map(move |&index| {
            let sub = self.subs.get(index)?;
            let id = SubscriptionId {
                index,
                generation: self.subs.generation(index),
            };
            Some((id, self.identifier_of(sub.ident), sub.live))
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
        Some(ConnectionId {
            index: sub.conn,
            generation: self.conns.generation(sub.conn),
        })
    }

    // ------------------------------------------------------------------ internals

    fn conn(&self, id: ConnectionId) -> Result<&Conn, UsageError> {
        self.conns
            .get_checked(id.index, id.generation)
            .ok_or(UsageError::UnknownConnection)
    }

    fn connection_id(&self, index: u32) -> ConnectionId {
        ConnectionId {
            index,
            generation: self.conns.generation(index),
        }
    }

    fn identifier_of(&self, ident: u32) -> &Identifier {
        // Every subscription holds a reference on its identifier entry.
        &self
            .idents
            .get(ident)
            .expect("identifier entry of a live subscription")
            .identifier
    }

    fn pending_sub(&self, pending: &PendingSubscription) -> Result<u32, UsageError> {
        let id = pending.subscription;
        self.subs
            .get_checked(id.index, id.generation)
            .filter(|s| !s.live)
            .map(|_| id.index)
            .ok_or(UsageError::StaleDecision)
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

    fn fail(&mut self, index: u32, error: CommandError) {
        let connection = self.connection_id(index);
        self.events
            .push_back(Event::CommandFailed { connection, error });
    }

    fn limit_exceeded(&mut self, index: u32, error: CommandError, action: LimitAction) {
        self.fail(index, error);
        if let LimitAction::Disconnect { reconnect } = action {
            self.disconnect_index(index, DisconnectReason::InvalidRequest, reconnect);
        }
    }

    /// Queues `bytes` for a connection, counting them against its bound.
    fn push(&mut self, index: u32, bytes: Bytes) {
        push_counted(
            &mut self.conns,
            &mut self.transmits,
            &mut self.overflowed,
            self.config.limits.max_queued_bytes,
            index,
            bytes,
        );
    }

    /// Finishes the closing of connections that went past their queue bound
    /// (their farewell frames are already queued).
    fn flush_overflow(&mut self) {
        while let Some(index) = self.overflowed.pop() {
            self.events.push_back(Event::Disconnecting {
                connection: self.connection_id(index),
                reason: DisconnectReason::TooSlow,
                reconnect: true,
            });
            self.forget_identity(index);
            self.drop_subscriptions(index, UnsubscribeCause::Disconnected);
        }
    }

    /// The connection's decision is in: handle its held frames, in order,
    /// until the next decision or the end.
    fn resume(&mut self, index: u32) {
        if let Some(conn) = self.conns.get_mut(index) {
            conn.awaiting_subscription = false;
        }
        self.flush_overflow();
        self.drain_held(index);
    }

    fn drain_held(&mut self, index: u32) {
        loop {
            let Some(conn) = self.conns.get_mut(index) else {
                return;
            };
            if conn.state != ConnState::Open || conn.awaiting_subscription {
                return;
            }
            let Some(held) = conn.held.as_mut() else {
                return;
            };
            let Some(frame) = held.frames.pop_front() else {
                conn.held = None;
                return;
            };
            held.bytes -= frame.len();
            self.process_frame(index, &frame);
            self.flush_overflow();
        }
    }

    fn process_frame(&mut self, index: u32, frame: &[u8]) {
        match command::parse(frame) {
            Err(error) => self.fail(index, error),
            Ok(Command::Subscribe { identifier }) => self.command_subscribe(index, &identifier),
            Ok(Command::Unsubscribe { identifier }) => match self.find_sub(index, &identifier) {
                Some(sub) => self.remove_subscription(sub, Some(UnsubscribeCause::Command)),
                None => self.fail(
                    index,
                    CommandError::UnknownSubscription {
                        identifier: crate::error::truncate(&identifier, 256),
                    },
                ),
            },
            Ok(Command::Message { identifier, data }) => {
                self.command_message(index, &identifier, data)
            }
            // `Command` is non-exhaustive for future (extended protocol) commands.
            #[allow(unreachable_patterns)]
            Ok(_) => self.fail(index, CommandError::UnknownCommand("".into())),
        }
    }

    fn find_sub(&self, conn: u32, identifier: &str) -> Option<u32> {
        let &ident = self.ident_index.get(identifier)?;
        // A connection holds few subscriptions (at most `max_subscriptions`):
        // a scan is cheaper in memory than an index, and as fast.
        self.conns
            .get(conn)?
            .subs
            .iter()
            .copied()
            .find(|&s| self.subs.get(s).is_some_and(|sub| sub.ident == ident))
    }

    /// The connections of an identity, in accept order.
    fn connections_of(&self, identity: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = self.identities.get(identity).copied().unwrap_or(NONE);
        while cur != NONE {
            out.push(cur);
            cur = self.conns.get(cur).map_or(NONE, |c| c.next_same_identity);
        }
        out
    }

    fn command_subscribe(&mut self, index: u32, raw: &str) {
        if self.find_sub(index, raw).is_some() {
            self.fail(
                index,
                CommandError::AlreadySubscribed {
                    identifier: crate::error::truncate(raw, 256),
                },
            );
            return;
        }
        let limits = &self.config.limits;
        let count = self.conns.get(index).map_or(0, |c| c.subs.len());
        if count >= limits.max_subscriptions {
            let error = CommandError::TooManySubscriptions {
                limit: limits.max_subscriptions,
            };
            let action = limits.on_too_many_subscriptions;
            self.limit_exceeded(index, error, action);
            return;
        }
        let ident = match self.ident_index.get(raw) {
            Some(&ident) => ident,
            None => match Identifier::parse(raw, limits.max_identifier_bytes) {
                Ok(identifier) => {
                    let (ident, _) = self.idents.insert(IdentEntry {
                        identifier: identifier.clone(),
                        refs: 0,
                    });
                    self.ident_index.insert(identifier, ident);
                    ident
                }
                Err(error) => {
                    self.fail(index, CommandError::InvalidIdentifier(error));
                    return;
                }
            },
        };
        if let Some(entry) = self.idents.get_mut(ident) {
            entry.refs += 1;
        }
        let (sub, generation) = self.subs.insert(Sub {
            conn: index,
            ident,
            live: false,
            waiting: 0,
            memberships: Box::default(),
        });
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        push_exact(&mut conn.subs, sub);
        conn.awaiting_subscription = true;
        let identity = conn.identity.clone().unwrap_or_else(|| Identity::new(""));
        let subscription = SubscriptionId {
            index: sub,
            generation,
        };
        self.events.push_back(Event::SubscriptionRequested {
            connection: self.connection_id(index),
            identity,
            identifier: self.identifier_of(ident).clone(),
            pending: PendingSubscriptionEvent(subscription),
        });
    }

    fn command_message(&mut self, index: u32, raw: &str, data: std::borrow::Cow<'_, str>) {
        let Some(sub) = self.find_sub(index, raw) else {
            self.fail(
                index,
                CommandError::UnknownSubscription {
                    identifier: crate::error::truncate(raw, 256),
                },
            );
            return;
        };
        let action = match command::data_action(&data) {
            Ok(action) => action.map_or_else(|| "receive".into(), |a| Box::<str>::from(&*a)),
            Err(error) => {
                self.fail(index, error);
                return;
            }
        };
        let Some(entry) = self.subs.get(sub) else {
            return;
        };
        let identifier = self.identifier_of(entry.ident).clone();
        let identity = self
            .conns
            .get(index)
            .and_then(|c| c.identity.clone())
            .unwrap_or_else(|| Identity::new(""));
        self.events.push_back(Event::Perform(Perform {
            connection: self.connection_id(index),
            subscription: SubscriptionId {
                index: sub,
                generation: self.subs.generation(sub),
            },
            identity,
            identifier,
            action,
            data: data.into_owned(),
        }));
    }

    fn disconnect_index(&mut self, index: u32, reason: DisconnectReason, reconnect: bool) {
        if !begin_close(
            &mut self.conns,
            &mut self.transmits,
            &mut self.events,
            index,
            reason,
            reconnect,
        ) {
            return;
        }
        self.forget_identity(index);
        self.drop_subscriptions(index, UnsubscribeCause::Disconnected);
        self.flush_overflow();
    }

    fn forget_identity(&mut self, index: u32) {
        let Some(identity) = self.conns.get(index).and_then(|c| c.identity.clone()) else {
            return;
        };
        let next = self.conns.get(index).map_or(NONE, |c| c.next_same_identity);
        let Some(&head) = self.identities.get(identity.as_str()) else {
            return;
        };
        if head == index {
            if next == NONE {
                self.identities.remove(identity.as_str());
            } else if let Some(h) = self.identities.get_mut(identity.as_str()) {
                *h = next;
            }
        } else {
            let mut prev = head;
            while let Some(c) = self.conns.get(prev) {
                if c.next_same_identity == index {
                    break;
                }
                if c.next_same_identity == NONE {
                    return; // not in the list
                }
                prev = c.next_same_identity;
            }
            if let Some(c) = self.conns.get_mut(prev) {
                c.next_same_identity = next;
            }
        }
        if let Some(c) = self.conns.get_mut(index) {
            c.next_same_identity = NONE;
        }
    }

    fn drop_subscriptions(&mut self, index: u32, cause: UnsubscribeCause) {
        let subs = match self.conns.get_mut(index) {
            Some(conn) => std::mem::take(&mut conn.subs).into_vec(),
            None => return,
        };
        for sub in subs {
            self.remove_subscription(sub, Some(cause));
        }
    }

    /// Removes a subscription and its streams; reports it if it was live and
    /// `cause` is given.
    fn remove_subscription(&mut self, index: u32, cause: Option<UnsubscribeCause>) {
        let Some(sub) = self.subs.get(index) else {
            return;
        };
        let (conn, ident, live) = (sub.conn, sub.ident, sub.live);
        let identifier = self.identifier_of(ident).clone();
        if let (true, Some(cause)) = (live, cause) {
            let identity = self
                .conns
                .get(conn)
                .and_then(|c| c.identity.clone())
                .unwrap_or_else(|| Identity::new(""));
            self.events.push_back(Event::Unsubscribed {
                connection: self.connection_id(conn),
                subscription: SubscriptionId {
                    index,
                    generation: self.subs.generation(index),
                },
                identity,
                identifier: identifier.clone(),
                cause,
            });
        }
        if let Some(sub) = self.subs.get_mut(index) {
            sub.waiting = 0; // going away: no confirmation
        }
        self.clear_memberships(index);
        self.subs.remove(index);
        if let Some(c) = self.conns.get_mut(conn) {
            if let Some(pos) = c.subs.iter().position(|&s| s == index) {
                swap_remove_exact(&mut c.subs, pos);
            }
        }
        if let Some(entry) = self.idents.get_mut(ident) {
            entry.refs -= 1;
            if entry.refs == 0 {
                self.ident_index.remove(identifier.as_str());
                self.idents.remove(ident);
            }
        }
    }

    fn clear_memberships(&mut self, sub: u32) {
        while let Some(group) = self
            .subs
            .get(sub)
            .and_then(|s| s.memberships.last())
            .map(|m| m.group)
        {
            self.remove_membership(sub, group);
        }
    }

    fn add_membership(&mut self, sub: u32, stream: StreamName, mode: StreamMode) {
        let Some(entry) = self.subs.get(sub) else {
            return;
        };
        let (conn, ident) = (entry.conn, entry.ident);
        let stream_index = match self.stream_index.get(stream.as_str()) {
            Some(&s) => {
                let already = entry.memberships.iter().any(|m| {
                    self.groups
                        .get(m.group)
                        .is_some_and(|g| g.stream == s && g.mode == mode)
                });
                if already {
                    return;
                }
                s
            }
            None => {
                let (s, _) = self.streams.insert(StreamEntry {
                    name: stream.clone(),
                    groups: Vec::new(),
                    ready: !self.config.confirm_when_streams_ready,
                });
                self.stream_index.insert(stream.clone(), s);
                self.events.push_back(Event::StreamStarted(stream));
                s
            }
        };
        let group = match self.group_index.get(&(stream_index, ident, mode)) {
            Some(&g) => g,
            None => {
                let pos = self.streams.get(stream_index).map_or(0, |s| s.groups.len());
                let (g, _) = self.groups.insert(Group {
                    stream: stream_index,
                    ident,
                    mode,
                    pos: pos as u32,
                    members: Vec::new(),
                });
                if let Some(s) = self.streams.get_mut(stream_index) {
                    s.groups.push(g);
                }
                self.group_index.insert((stream_index, ident, mode), g);
                g
            }
        };
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let pos = g.members.len() as u32;
        g.members.push(Member { sub, conn });
        if let Some(s) = self.subs.get_mut(sub) {
            push_exact(&mut s.memberships, Membership { group, pos });
        }
    }

    fn remove_membership(&mut self, sub: u32, group: u32) {
        let Some(entry) = self.subs.get_mut(sub) else {
            return;
        };
        let Some(at) = entry.memberships.iter().position(|m| m.group == group) else {
            return;
        };
        let pos = swap_remove_exact(&mut entry.memberships, at).pos;
        let waiting = entry.waiting > 0;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let stream_index = g.stream;
        if waiting
            && self.streams.get(stream_index).is_some_and(|s| !s.ready)
            && self.unready_streams_of(sub) < self.subs.get(sub).map_or(0, |s| s.waiting)
        {
            self.one_stream_settled(sub);
        }
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.members.swap_remove(pos as usize);
        if let Some(&moved) = g.members.get(pos as usize) {
            if let Some(m) = self
                .subs
                .get_mut(moved.sub)
                .and_then(|s| s.memberships.iter_mut().find(|m| m.group == group))
            {
                m.pos = pos;
            }
        }
        let Some(g) = self.groups.get(group) else {
            return;
        };
        if !g.members.is_empty() {
            return;
        }
        let (stream_index, ident, mode, gpos) = (g.stream, g.ident, g.mode, g.pos);
        self.groups.remove(group);
        self.group_index.remove(&(stream_index, ident, mode));
        let Some(stream) = self.streams.get_mut(stream_index) else {
            return;
        };
        stream.groups.swap_remove(gpos as usize);
        if let Some(&moved) = stream.groups.get(gpos as usize) {
            if let Some(mg) = self.groups.get_mut(moved) {
                mg.pos = gpos;
            }
        }
        if stream.groups.is_empty() {
            if let Some(stream) = self.streams.remove(stream_index) {
                self.stream_index.remove(stream.name.as_str());
                self.events.push_back(Event::StreamStopped(stream.name));
            }
        }
    }

    fn fan_out(
        &mut self,
        stream: &str,
        payload: &str,
        except: Option<ConnectionId>,
        force_raw: bool,
    ) -> Delivery {
        let mut delivery = Delivery::default();
        let Some(&stream_index) = self.stream_index.get(stream) else {
            return delivery;
        };
        let Self {
            conns,
            streams,
            groups,
            idents,
            transmits,
            overflowed,
            config,
            ..
        } = self;
        let Some(entry) = streams.get(stream_index) else {
            return delivery;
        };
        let limit = config.limits.max_queued_bytes;
        let except = except.map(|c| c.index);
        // One reservation, so that the first large broadcast grows the queue
        // once rather than once per doubling.
        let recipients: usize = entry
            .groups
            .iter()
            .filter_map(|&g| groups.get(g))
            .map(|g| g.members.len())
            .sum();
        transmits.reserve(recipients);
        let mut json_valid: Option<bool> = None;
        let mut raw_literal: Option<Vec<u8>> = None;
        for &group in &entry.groups {
            let Some(g) = groups.get(group) else {
                continue;
            };
            let mode = if force_raw {
                StreamMode::RawString
            } else {
                g.mode
            };
            let message: &[u8] = match mode {
                StreamMode::Json => {
                    if !*json_valid.get_or_insert_with(|| validate(payload).is_ok()) {
                        delivery.skipped_invalid_json += g.members.len();
                        continue;
                    }
                    payload.as_bytes()
                }
                StreamMode::RawString => raw_literal.get_or_insert_with(|| {
                    let mut out = Vec::with_capacity(payload.len() + 2);
                    write_rails_string(&mut out, payload);
                    out
                }),
            };
            let Some(ident) = idents.get(g.ident) else {
                continue;
            };
            let mut bytes = Some(frame::message_from_literal(
                ident.identifier.json_literal(),
                message,
            ));
            delivery.encoded += 1;
            let last = g.members.len().saturating_sub(1);
            for (i, member) in g.members.iter().enumerate() {
                if Some(member.conn) == except {
                    continue;
                }
                // The last recipient takes the frame itself: a group of one
                // costs no shared header.
                let frame = if i == last {
                    bytes.take().unwrap_or_default()
                } else {
                    bytes.clone().unwrap_or_default()
                };
                if push_counted(conns, transmits, overflowed, limit, member.conn, frame) {
                    delivery.recipients += 1;
                }
            }
        }
        self.flush_overflow();
        delivery
    }
}

/// Queues `bytes` for an open or pending connection within its bound. A
/// frame that would go past the bound is not queued: the connection gets the
/// `too_slow` disconnect instead and is listed in `overflowed` for cleanup.
/// Returns whether the frame was queued.
fn push_counted(
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
    if conn.queued + bytes.len() > limit {
        let reason = DisconnectReason::TooSlow;
        close_frames(conn, transmits, index, generation, &reason, true);
        overflowed.push(index);
        return false;
    }
    conn.queued += bytes.len();
    transmits.push_back(Transmit {
        connection: ConnectionId { index, generation },
        frame: Frame::Text(bytes),
    });
    true
}

/// Queues the disconnect frame and the close, and marks the connection
/// closing. The farewell frame is not counted against the queue bound.
fn close_frames(
    conn: &mut Conn,
    transmits: &mut VecDeque<Transmit>,
    index: u32,
    generation: u32,
    reason: &DisconnectReason,
    reconnect: bool,
) {
    let connection = ConnectionId { index, generation };
    transmits.push_back(Transmit {
        connection,
        frame: Frame::Text(frame::disconnect(reason, reconnect)),
    });
    transmits.push_back(Transmit {
        connection,
        frame: Frame::Close {
            code: CLOSE_NORMAL,
            reason: "",
        },
    });
    conn.state = ConnState::Closing;
    conn.awaiting_subscription = false;
    conn.held = None;
}

/// Starts closing a connection; `false` if it was already closing.
fn begin_close(
    conns: &mut Slab<Conn>,
    transmits: &mut VecDeque<Transmit>,
    events: &mut VecDeque<Event>,
    index: u32,
    reason: DisconnectReason,
    reconnect: bool,
) -> bool {
    let generation = conns.generation(index);
    let Some(conn) = conns.get_mut(index) else {
        return false;
    };
    if conn.state == ConnState::Closing {
        return false;
    }
    close_frames(conn, transmits, index, generation, &reason, reconnect);
    events.push_back(Event::Disconnecting {
        connection: ConnectionId { index, generation },
        reason,
        reconnect,
    });
    true
}

/// Appends to an exactly sized slice.
fn push_exact<T>(slice: &mut Box<[T]>, value: T) {
    let mut items = std::mem::take(slice).into_vec();
    items.reserve_exact(1);
    items.push(value);
    *slice = items.into_boxed_slice();
}

/// Removes `at` from an exactly sized slice, moving the last item there.
fn swap_remove_exact<T>(slice: &mut Box<[T]>, at: usize) -> T {
    let mut items = std::mem::take(slice).into_vec();
    let removed = items.swap_remove(at);
    *slice = items.into_boxed_slice();
    removed
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// The records the per-connection and per-subscription state is made of
    /// (the alloc integration test measures the whole, table slack included).
    #[test]
    fn record_sizes_stay_small() {
        assert!(std::mem::size_of::<Option<Conn>>() <= 56);
        assert!(std::mem::size_of::<Option<Sub>>() <= 32);
        assert_eq!(std::mem::size_of::<Member>(), 8);
        assert_eq!(std::mem::size_of::<Membership>(), 8);
    }
}
