//! The broadcast hub: stream -> groups -> members. A group is the members of
//! one stream whose frames are encoded alike (an Action Cable identifier and
//! stream mode, or an [`Envelope`]): a broadcast builds one frame per group
//! and every member gets a clone of the same bytes.

use std::time::Instant;

use bytes::Bytes;

use crate::error::UsageError;
use crate::frame;
use crate::json::{validate, write_rails_string};
use crate::types::{ConnectionId, StreamMode, StreamName};

use super::envelope::{is_typed_object, Envelope};
use super::events::Event;
use super::outbox::push_counted;
use super::records::{
    ConnState, Encoding, EnvelopeEntry, Group, Member, Membership, StreamEntry, NONE,
};
use super::subscriptions::{push_exact, swap_remove_exact};
use super::timers::TimerKey;
use super::Server;

/// Who a membership belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// A subscription.
    Subscription(u32),
    /// A connection that joined without a subscription.
    Connection(u32),
}

/// Who a broadcast reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Frames queued (one per member reached).
    pub recipients: usize,
    /// Distinct frames built (one per group reached).
    pub encoded: usize,
    /// Members skipped because the payload was not JSON and their stream
    /// mode is [`StreamMode::Json`] (Rails logs a decode error).
    pub skipped_invalid_json: usize,
    /// Members skipped because their frame alone is larger than a
    /// connection may queue ([`Limits::max_queued_bytes`](super::Limits::max_queued_bytes)):
    /// no reader is too slow for it, so nobody is disconnected; the
    /// broadcast is refused for them (a host refuses it at the source).
    pub skipped_too_large: usize,
}

impl Server {
    /// Broadcast `payload` (JSON text, as Rails' pub/sub adapters carry it)
    /// to every member of `stream`: one frame is built per group (distinct
    /// identifier, or envelope) and every member of it gets the same bytes.
    /// The payload is spliced as given; members in
    /// [`StreamMode::RawString`] get it as a JSON string instead.
    pub fn broadcast(&mut self, stream: &str, payload: &str, now: Instant) -> Delivery {
        self.advance(now);
        self.fan_out(stream, payload, None, false)
    }

    /// [`broadcast`](Self::broadcast) to everyone on `stream` but the
    /// members of connection `except` (the sender of a typing indicator or a
    /// whisper).
    pub fn broadcast_except(
        &mut self,
        stream: &str,
        payload: &str,
        except: ConnectionId,
        now: Instant,
    ) -> Delivery {
        self.advance(now);
        self.fan_out(stream, payload, Some(except), false)
    }

    /// Broadcast `text` to `stream` as a JSON string message, whatever it
    /// holds (Rails' stream-with-block case).
    pub fn broadcast_string(&mut self, stream: &str, text: &str, now: Instant) -> Delivery {
        self.advance(now);
        self.fan_out(stream, text, None, true)
    }

    /// Makes an open connection a member of `stream` without an Action Cable
    /// subscription (another protocol's channel or thread): broadcasts on
    /// `stream` reach it wrapped in `envelope`. Joining twice with an equal
    /// envelope is a no-op; with another envelope, the connection gets both
    /// frames.
    pub fn join(
        &mut self,
        connection: ConnectionId,
        stream: impl Into<StreamName>,
        envelope: Envelope,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        if self.conn(connection)?.state != ConnState::Open {
            return Err(UsageError::ConnectionNotOpen);
        }
        let index = connection.index;
        let envelope_index = match self.envelope_index.get(&envelope) {
            Some(&e) => e,
            None => {
                let (e, _) = self.envelopes.insert(EnvelopeEntry {
                    envelope: envelope.clone(),
                    refs: 0,
                });
                self.envelope_index.insert(envelope, e);
                e
            }
        };
        self.add_member(
            Owner::Connection(index),
            index,
            stream.into(),
            Encoding::Envelope(envelope_index),
        );
        self.release_envelope_if_unused(envelope_index);
        self.flush_overflow();
        Ok(())
    }

    /// Ends a membership made with [`join`](Self::join) (`None`: with any
    /// envelope). Unknown memberships: no-op.
    pub fn leave(
        &mut self,
        connection: ConnectionId,
        stream: &str,
        envelope: Option<&Envelope>,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        self.conn(connection)?;
        let index = connection.index;
        let Some(&stream_index) = self.stream_index.get(stream) else {
            return Ok(());
        };
        let envelope_index = match envelope {
            Some(e) => match self.envelope_index.get(e) {
                Some(&e) => Some(e),
                None => return Ok(()),
            },
            None => None,
        };
        let doomed: Vec<u32> = self
            .conns
            .get(index)
            .and_then(|c| c.extra.as_ref())
            .map(|extra| {
                extra
                    .joins
                    .iter()
                    .filter(|m| {
                        self.groups.get(m.group).is_some_and(|g| {
                            g.stream == stream_index
                                && envelope_index
                                    .is_none_or(|e| g.encoding == Encoding::Envelope(e))
                        })
                    })
                    .map(|m| m.group)
                    .collect()
            })
            .unwrap_or_default();
        for group in doomed {
            self.remove_member(Owner::Connection(index), group);
        }
        Ok(())
    }

    /// The streams connection `connection` joined, in join order (until one
    /// is left).
    pub fn joined_streams(&self, connection: ConnectionId) -> Vec<StreamName> {
        let Ok(conn) = self.conn(connection) else {
            return Vec::new();
        };
        conn.extra
            .as_ref()
            .map(|e| {
                e.joins
                    .iter()
                    .filter_map(|m| self.groups.get(m.group))
                    .filter_map(|g| self.streams.get(g.stream))
                    .map(|s| s.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The host subscribed to `stream` upstream (its Redis `SUBSCRIBE` was
    /// answered): with [`Config::confirm_when_streams_ready`](super::Config::confirm_when_streams_ready),
    /// the subscriptions whose confirmation waited for it are confirmed, and
    /// their connections' commands go on. Unknown or ready streams: no-op.
    pub fn stream_ready(&mut self, stream: &str, now: Instant) {
        self.advance(now);
        if let Some(&stream_index) = self.stream_index.get(stream) {
            self.mark_stream_ready(stream_index);
        }
    }

    /// Marks a stream ready; each subscription waiting for it counts it once,
    /// however many of its groups are on the stream.
    pub(super) fn mark_stream_ready(&mut self, stream_index: u32) {
        let Some(entry) = self.streams.get_mut(stream_index) else {
            return;
        };
        if entry.ready {
            return;
        }
        entry.ready = true;
        let mut waiting: Vec<u32> = entry
            .groups
            .iter()
            .filter_map(|&g| self.groups.get(g))
            .flat_map(|g| g.members.iter().map(|m| m.sub))
            .filter(|&sub| sub != NONE && self.subs.get(sub).is_some_and(|s| s.waiting > 0))
            .collect();
        waiting.sort_unstable();
        waiting.dedup();
        for sub in waiting {
            self.one_stream_settled(sub);
        }
        self.flush_overflow();
    }

    /// Counts the distinct streams of a subscription that are not ready.
    pub(super) fn unready_streams_of(&self, sub: u32) -> u32 {
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
        u32::try_from(unready.len()).unwrap_or(u32::MAX)
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
        }
    }

    /// Ends every join of connection `index`.
    pub(super) fn leave_all(&mut self, index: u32) {
        while let Some(group) = self
            .conns
            .get(index)
            .and_then(|c| c.extra.as_ref())
            .and_then(|e| e.joins.last())
            .map(|m| m.group)
        {
            self.remove_member(Owner::Connection(index), group);
        }
    }

    fn memberships(&self, owner: Owner) -> &[Membership] {
        match owner {
            Owner::Subscription(sub) => self.subs.get(sub).map_or(&[], |s| &s.memberships[..]),
            Owner::Connection(conn) => self
                .conns
                .get(conn)
                .and_then(|c| c.extra.as_ref())
                .map_or(&[], |e| &e.joins[..]),
        }
    }

    fn set_member_pos(&mut self, owner: Owner, group: u32, pos: u32) {
        let memberships: &mut [Membership] = match owner {
            Owner::Subscription(sub) => match self.subs.get_mut(sub) {
                Some(s) => &mut s.memberships,
                None => return,
            },
            Owner::Connection(conn) => {
                match self.conns.get_mut(conn).and_then(|c| c.extra.as_mut()) {
                    Some(e) => &mut e.joins,
                    None => return,
                }
            }
        };
        if let Some(m) = memberships.iter_mut().find(|m| m.group == group) {
            m.pos = pos;
        }
    }

    /// Adds `owner` (of connection `conn`) to the group of `stream` and
    /// `encoding`, creating the stream and the group as needed.
    pub(super) fn add_member(
        &mut self,
        owner: Owner,
        conn: u32,
        stream: StreamName,
        encoding: Encoding,
    ) {
        let stream_index = match self.stream_index.get(stream.as_str()) {
            Some(&s) => s,
            None => {
                let (s, generation) = self.streams.insert(StreamEntry {
                    name: stream.clone(),
                    groups: Vec::new(),
                    ready: !self.config.confirm_when_streams_ready,
                });
                self.stream_index.insert(stream.clone(), s);
                self.events.push_back(Event::StreamStarted(stream));
                if self.config.confirm_when_streams_ready {
                    // A deadline past what an `Instant` holds is no deadline.
                    let timeout = self.config.upstream_ready_timeout;
                    if let Some(at) = timeout.and_then(|t| self.now.checked_add(t)) {
                        self.set_timer(
                            at,
                            TimerKey::Upstream {
                                stream: s,
                                generation,
                            },
                        );
                    }
                }
                s
            }
        };
        let group = match self.group_index.get(&(stream_index, encoding)) {
            Some(&g) => {
                if self.memberships(owner).iter().any(|m| m.group == g) {
                    return;
                }
                g
            }
            None => {
                let pos = self.streams.get(stream_index).map_or(0, |s| s.groups.len());
                let (g, _) = self.groups.insert(Group {
                    stream: stream_index,
                    encoding,
                    pos: pos as u32,
                    members: Vec::new(),
                });
                if let Some(s) = self.streams.get_mut(stream_index) {
                    s.groups.push(g);
                }
                self.group_index.insert((stream_index, encoding), g);
                if let Encoding::Envelope(e) = encoding {
                    if let Some(entry) = self.envelopes.get_mut(e) {
                        entry.refs += 1;
                    }
                }
                g
            }
        };
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let pos = g.members.len() as u32;
        let sub = match owner {
            Owner::Subscription(sub) => sub,
            Owner::Connection(_) => NONE,
        };
        g.members.push(Member { sub, conn });
        let membership = Membership { group, pos };
        match owner {
            Owner::Subscription(sub) => {
                if let Some(s) = self.subs.get_mut(sub) {
                    push_exact(&mut s.memberships, membership);
                }
            }
            Owner::Connection(conn) => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.extra_mut().joins.push(membership);
                }
            }
        }
    }

    /// Takes `owner` out of `group`; the group, its stream and its envelope
    /// go when they are empty.
    pub(super) fn remove_member(&mut self, owner: Owner, group: u32) {
        let pos = match owner {
            Owner::Subscription(sub) => {
                let Some(entry) = self.subs.get_mut(sub) else {
                    return;
                };
                let Some(at) = entry.memberships.iter().position(|m| m.group == group) else {
                    return;
                };
                let pos = swap_remove_exact(&mut entry.memberships, at).pos;
                // A subscription whose confirmation waits for this stream
                // waits no more once none of its groups is on it.
                let waiting = entry.waiting > 0;
                let stream_index = self.groups.get(group).map_or(NONE, |g| g.stream);
                if waiting
                    && self.streams.get(stream_index).is_some_and(|s| !s.ready)
                    && self.unready_streams_of(sub) < self.subs.get(sub).map_or(0, |s| s.waiting)
                {
                    self.one_stream_settled(sub);
                }
                pos
            }
            Owner::Connection(conn) => {
                let Some(extra) = self.conns.get_mut(conn).and_then(|c| c.extra.as_mut()) else {
                    return;
                };
                let Some(at) = extra.joins.iter().position(|m| m.group == group) else {
                    return;
                };
                let pos = extra.joins.swap_remove(at).pos;
                if extra.joins.is_empty() {
                    extra.joins = Vec::new();
                }
                if let Some(c) = self.conns.get_mut(conn) {
                    c.shrink_extra();
                }
                pos
            }
        };
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.members.swap_remove(pos as usize);
        if let Some(&moved) = g.members.get(pos as usize) {
            let moved_owner = if moved.sub == NONE {
                Owner::Connection(moved.conn)
            } else {
                Owner::Subscription(moved.sub)
            };
            self.set_member_pos(moved_owner, group, pos);
        }
        let Some(g) = self.groups.get(group) else {
            return;
        };
        if !g.members.is_empty() {
            return;
        }
        let (stream_index, encoding, gpos) = (g.stream, g.encoding, g.pos);
        self.groups.remove(group);
        self.group_index.remove(&(stream_index, encoding));
        if let Encoding::Envelope(e) = encoding {
            if let Some(entry) = self.envelopes.get_mut(e) {
                entry.refs -= 1;
            }
            self.release_envelope_if_unused(e);
        }
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

    fn release_envelope_if_unused(&mut self, envelope: u32) {
        if self.envelopes.get(envelope).is_some_and(|e| e.refs == 0) {
            if let Some(entry) = self.envelopes.remove(envelope) {
                self.envelope_index.remove(&entry.envelope);
            }
        }
    }

    pub(super) fn fan_out(
        &mut self,
        stream: &str,
        payload: &str,
        except: Option<ConnectionId>,
        force_raw: bool,
    ) -> Delivery {
        self.fan_out_positioned(stream, payload, except, force_raw, None)
    }

    /// [`fan_out`](Self::fan_out) with the broadcast's position in its
    /// stream's history, for the connections that chose the extended
    /// protocol.
    pub(super) fn fan_out_positioned(
        &mut self,
        stream: &str,
        payload: &str,
        except: Option<ConnectionId>,
        force_raw: bool,
        position: Option<&super::StreamPosition>,
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
            envelopes,
            transmits,
            overflowed,
            config,
            ext,
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
        let mut typed: Option<bool> = None;
        for &group in &entry.groups {
            let Some(g) = groups.get(group) else {
                continue;
            };
            let mode = match g.encoding {
                _ if force_raw => StreamMode::RawString,
                Encoding::Subscription { mode, .. } => mode,
                Encoding::Envelope(e) => envelopes
                    .get(e)
                    .map_or(StreamMode::Json, |e| e.envelope.mode()),
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
            let built: Bytes = match g.encoding {
                Encoding::Subscription { ident, .. } => {
                    let Some(ident) = idents.get(ident) else {
                        continue;
                    };
                    frame::message_from_literal(ident.identifier.json_literal(), message)
                }
                Encoding::Envelope(e) => {
                    let Some(e) = envelopes.get(e) else {
                        continue;
                    };
                    if mode == StreamMode::Json
                        && e.envelope.typed_verbatim()
                        && *typed.get_or_insert_with(|| is_typed_object(payload))
                    {
                        Bytes::copy_from_slice(message)
                    } else {
                        e.envelope.encode(message)
                    }
                }
            };
            if built.len() > limit {
                delivery.skipped_too_large += g.members.len();
                continue;
            }
            // Extended connections' frame, with the position: built for the
            // first of them, shared by the rest of the group.
            let mut positioned: Option<Bytes> = None;
            let mut bytes = Some(built);
            delivery.encoded += 1;
            let last = g.members.len().saturating_sub(1);
            for (i, member) in g.members.iter().enumerate() {
                if Some(member.conn) == except {
                    continue;
                }
                if let Some(position) = position.filter(|_| ext.is_extended_conn(member.conn)) {
                    let frame = positioned
                        .get_or_insert_with(|| {
                            super::extended::with_position(
                                bytes.as_deref().unwrap_or_default(),
                                stream,
                                position,
                            )
                        })
                        .clone();
                    if push_counted(conns, transmits, overflowed, limit, member.conn, frame) {
                        delivery.recipients += 1;
                    }
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
