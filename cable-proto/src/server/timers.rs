//! The timer store: every deadline of the core (decisions, credentials,
//! upstream readiness) in one binary heap, beside the ping beat.
//!
//! Entries are never removed in place: a deadline that is answered, moved
//! or whose owner is gone stays in the heap and is recognised as stale when
//! it comes up (each entry is checked against the state it belongs to before
//! it fires). The heap is rebuilt without its stale entries when they
//! outnumber the live ones, so it stays within a constant factor of the
//! state's size. Due entries fire in `(deadline, insertion)` order: the same
//! inputs give the same order.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::frame::{self, DisconnectReason};
use crate::types::ConnectionId;

use super::events::{Event, ExpiredDecision};
use super::records::{Awaiting, ConnState};
use super::Server;

/// What a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerKey {
    /// The pending decision number `seq` of a connection.
    Decision {
        conn: u32,
        generation: u32,
        seq: u32,
    },
    /// A connection's credential.
    Expiry { conn: u32, generation: u32 },
    /// A stream's upstream subscription.
    Upstream { stream: u32, generation: u32 },
    /// A deadline of the extended protocol (checked when it fires).
    Extended(super::extended::ExtTimer),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    order: u64,
    key: TimerKey,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Deadlines, earliest first.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    next_order: u64,
}

impl Timers {
    pub(super) fn push(&mut self, at: Instant, key: TimerKey) {
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Reverse(Entry { at, order, key }));
    }

    /// The earliest deadline, stale or not. O(1).
    pub(super) fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Takes the earliest entry if it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        if self.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            self.heap.pop().map(|Reverse(e)| (e.at, e.key))
        } else {
            None
        }
    }

    /// Entries held, stale ones included.
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

impl Server {
    /// When to call [`handle_timeout`](Self::handle_timeout) next: the
    /// earliest of the ping beat and every deadline. O(1). It may be a
    /// deadline that no longer matters (answered or moved): waking up for it
    /// does nothing.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.timers.peek() {
            Some(at) => Some(at.min(self.next_ping)),
            None => Some(self.next_ping),
        }
    }

    /// Time passed: fires every deadline due at `now` (in deadline order,
    /// then the order they were set), then sends the ping when its beat is
    /// due. Every welcomed Action Cable connection gets the same frame,
    /// `{"type":"ping","message":<unix s>}`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if now < self.next_ping {
            return;
        }
        let seconds = (self.unix_base + now.saturating_duration_since(self.clock_base)).as_secs();
        let ping = frame::ping(seconds);
        for index in 0..self.conns.capacity_slots() {
            if self.conns.get(index).is_some_and(|c| {
                c.state == ConnState::Open
                        && c.protocol.is_action_cable()
                        // A lookup only for extended connections.
                        && !(c.extended && self.has_own_ping(index))
            }) {
                self.push(index, ping.clone());
            }
        }
        self.ext_pinged(now);
        let interval = self.config.ping_interval.max(Duration::from_millis(1));
        if self.next_ping + interval > now {
            self.next_ping += interval;
        } else {
            // Far behind (the host slept): the next beat is the first after
            // `now`, however many beats that skips.
            let behind = now.saturating_duration_since(self.next_ping);
            let into_beat = behind.as_nanos() % interval.as_nanos();
            let into_beat = Duration::new(
                (into_beat / 1_000_000_000) as u64,
                (into_beat % 1_000_000_000) as u32,
            );
            self.next_ping = now + (interval - into_beat);
        }
        self.flush_overflow();
    }

    /// Every input goes through here first: the core's clock moves to `now`
    /// (never back) and every deadline due by then fires, so an answer that
    /// comes after its deadline is late whether or not the host called
    /// [`handle_timeout`](Self::handle_timeout) in between.
    pub(super) fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        let now = self.now;
        while let Some((at, key)) = self.timers.pop_due(now) {
            self.fire(at, key);
        }
        self.compact_timers();
    }

    /// Sets a deadline.
    pub(super) fn set_timer(&mut self, at: Instant, key: TimerKey) {
        self.timers.push(at, key);
    }

    /// Whether a deadline still means something.
    fn timer_live(&self, at: Instant, key: TimerKey) -> bool {
        match key {
            TimerKey::Decision {
                conn,
                generation,
                seq,
            } => self.conns.get_checked(conn, generation).is_some_and(|c| {
                c.awaiting != Awaiting::Nothing
                    && c.decision_seq == seq
                    && c.state != ConnState::Closing
                    && c.extra
                        .as_ref()
                        .is_some_and(|e| e.decision_deadline == Some(at))
            }),
            TimerKey::Expiry { conn, generation } => {
                self.conns.get_checked(conn, generation).is_some_and(|c| {
                    c.state != ConnState::Closing
                        && c.extra.as_ref().is_some_and(|e| e.expires_at == Some(at))
                })
            }
            TimerKey::Upstream { stream, generation } => self
                .streams
                .get_checked(stream, generation)
                .is_some_and(|s| !s.ready),
            TimerKey::Extended(_) => true,
        }
    }

    fn fire(&mut self, at: Instant, key: TimerKey) {
        if !self.timer_live(at, key) {
            return;
        }
        match key {
            TimerKey::Decision { conn, .. } => self.expire_decision(conn),
            TimerKey::Extended(timer) => self.ext_fire(at, timer),
            TimerKey::Expiry { conn, .. } => {
                if let Some(extra) = self.conns.get_mut(conn).and_then(|c| c.extra.as_mut()) {
                    extra.expires_at = None;
                }
                self.disconnect_index(conn, DisconnectReason::TokenExpired, false);
            }
            TimerKey::Upstream { stream, .. } => {
                let Some(name) = self.streams.get(stream).map(|s| s.name.clone()) else {
                    return;
                };
                self.events.push_back(Event::UpstreamTimedOut(name));
                self.mark_stream_ready(stream);
            }
        }
    }

    /// The pending decision of connection `index` passed its deadline.
    fn expire_decision(&mut self, index: u32) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        let awaiting = conn.awaiting;
        let seq = conn.decision_seq;
        let extra = conn.extra_mut();
        extra.decision_deadline = None;
        extra.expired_decision = seq;
        let connection = self.connection_id(index);
        match awaiting {
            Awaiting::Nothing => {}
            Awaiting::Connection => {
                self.events.push_back(Event::DecisionExpired {
                    connection,
                    decision: ExpiredDecision::Connection,
                });
                self.disconnect_index(index, DisconnectReason::Unauthorized, false);
            }
            Awaiting::Subscription => {
                let Some(sub) = self.pending_sub_of(index) else {
                    return;
                };
                let subscription = self.subscription_id(sub);
                let identifier = self.identifier_of_sub(sub).clone();
                self.events.push_back(Event::DecisionExpired {
                    connection,
                    decision: ExpiredDecision::Subscription {
                        subscription,
                        identifier,
                    },
                });
                self.refuse_subscription(sub);
            }
            Awaiting::Perform => {
                self.events.push_back(Event::DecisionExpired {
                    connection,
                    decision: ExpiredDecision::Perform,
                });
                self.resume(index);
            }
        }
    }

    /// Rebuilds the heap without stale entries when they dominate it. Live
    /// deadlines are at most two per connection and one per stream.
    fn compact_timers(&mut self) {
        let live_bound = 2 * self.conns.len() + self.streams.len();
        if self.timers.len() <= 64 || self.timers.len() <= 2 * live_bound {
            return;
        }
        let heap = std::mem::take(&mut self.timers.heap);
        let kept: Vec<Reverse<Entry>> = heap
            .into_vec()
            .into_iter()
            .filter(|Reverse(e)| self.timer_live(e.at, e.key))
            .collect();
        self.timers.heap = BinaryHeap::from(kept);
    }

    /// The handle of connection slot `index`.
    pub(super) fn decision_key(&self, index: u32) -> Option<TimerKey> {
        let conn = self.conns.get(index)?;
        Some(TimerKey::Decision {
            conn: index,
            generation: self.conns.generation(index),
            seq: conn.decision_seq,
        })
    }

    /// Numbers a new decision of connection `index` and sets its deadline
    /// `timeout` from now. Returns the decision's number.
    pub(super) fn open_decision(
        &mut self,
        index: u32,
        awaiting: Awaiting,
        timeout: Option<Duration>,
    ) -> u32 {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(index) else {
            return 0;
        };
        conn.decision_seq = conn.decision_seq.wrapping_add(1).max(1);
        conn.awaiting = awaiting;
        let seq = conn.decision_seq;
        // A deadline past what an `Instant` holds is no deadline.
        if let Some(at) = timeout.and_then(|t| now.checked_add(t)) {
            conn.extra_mut().decision_deadline = Some(at);
            if let Some(key) = self.decision_key(index) {
                self.set_timer(at, key);
            }
        }
        seq
    }

    /// The pending decision of connection `index` is answered.
    pub(super) fn close_decision(&mut self, index: u32) {
        if let Some(conn) = self.conns.get_mut(index) {
            conn.awaiting = Awaiting::Nothing;
            if let Some(extra) = conn.extra.as_mut() {
                extra.decision_deadline = None;
            }
        }
    }

    /// Sets (or clears, with `None`) the deadline of a connection's
    /// credential: when it passes, the connection gets
    /// `{"type":"disconnect","reason":"token_expired","reconnect":false}`
    /// and a close (a bare close for a [`Protocol::Custom`](super::Protocol::Custom)
    /// connection). A deadline at or before `now` closes it at once. Setting
    /// it again moves it (a refreshed credential).
    pub fn set_expiry(
        &mut self,
        connection: ConnectionId,
        expires_at: Option<Instant>,
        now: Instant,
    ) -> Result<(), crate::error::UsageError> {
        self.advance(now);
        let conn = self.conn_mut(connection)?;
        if conn.state == ConnState::Closing {
            return Err(crate::error::UsageError::ConnectionNotOpen);
        }
        match expires_at {
            Some(at) => {
                let extra = conn.extra_mut();
                // An unchanged expiry keeps its timer: refreshing a
                // credential to the same instant must not add one each time
                // (duplicates are all live, so compaction keeps them).
                let unchanged = extra.expires_at == Some(at);
                extra.expires_at = Some(at);
                if !unchanged {
                    self.set_timer(
                        at,
                        TimerKey::Expiry {
                            conn: connection.index,
                            generation: connection.generation,
                        },
                    );
                }
            }
            None => {
                if let Some(extra) = conn.extra.as_mut() {
                    extra.expires_at = None;
                }
                conn.shrink_extra();
            }
        }
        self.advance(now);
        Ok(())
    }

    /// When a connection's credential expires, if set.
    pub fn expiry(&self, connection: ConnectionId) -> Option<Instant> {
        self.conn(connection).ok()?.extra.as_ref()?.expires_at
    }
}
