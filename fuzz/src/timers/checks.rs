//! The checks: an answer's result against its deadline, then after every
//! call every frame and event drained and checked against the model (which
//! it updates: decisions opened, expired, refused; streams started, ready,
//! timed out, stopped; connections closed), then the core's state and
//! `poll_timeout` against the model's deadlines and the timer store's
//! bound.

use std::collections::BTreeSet;
use std::time::Instant;

use cable_proto::server::{Event, ExpiredDecision, UnsubscribeCause};
use cable_proto::{CommandError, ConnectionId, DisconnectReason, UsageError};
use serde_json::Value;

use crate::frames::ServerFrame;
use crate::wire::Seen;

use super::decode::{ident_index, IDENTIFIERS};
use super::model::{Blocked, Handle, Kind, Refused, State, StreamModel, Token};
use super::Host;

/// The perform marks (`"p":N`) a frame carries, wherever they are nested.
fn marks(value: &Value, out: &mut Vec<u64>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "p" {
                    if let Some(n) = value.as_u64() {
                        out.push(n);
                    }
                }
                marks(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| marks(v, out)),
        _ => {}
    }
}

impl Host {
    /// Checks the result of an answer to outstanding decision `seq` of
    /// `conn`; `true` when it was taken.
    pub(super) fn answered(
        &mut self,
        conn: ConnectionId,
        seq: u32,
        result: Result<(), UsageError>,
    ) -> bool {
        let deadline = self.deadline_of(conn, seq);
        match result {
            Ok(()) => {
                assert!(
                    deadline.is_none_or(|d| d > self.clock),
                    "an answer after its deadline ({deadline:?}, clock {:?}) was taken",
                    self.clock
                );
                true
            }
            Err(UsageError::DecisionExpired) => {
                self.refused.push(Refused::Expired(conn, seq));
                false
            }
            Err(UsageError::StaleDecision) => {
                self.refused.push(Refused::Stale(conn, seq));
                false
            }
            Err(other) => panic!("answer to an outstanding decision refused: {other}"),
        }
    }

    pub(super) fn settle(&mut self) {
        let seen = self.wire.drain(&mut self.server);
        let events: Vec<Event> = std::iter::from_fn(|| self.server.poll_event()).collect();
        if self.trace {
            for item in &seen {
                eprintln!("   frame {item:?}");
            }
            for event in &events {
                eprintln!("   event {event:?}");
            }
        }

        // Confirmations first: the commands held behind them were handled
        // in the same call.
        let mut confirmed: Vec<(ConnectionId, Vec<String>)> = Vec::new();
        for item in &seen {
            if let Seen::Frame(c, ServerFrame::Confirm(identifier)) = item {
                let ident = ident_index(identifier);
                let conn = self.conn(*c);
                match &conn.blocked {
                    Blocked::Streams { ident: i, streams } if *i == ident => {
                        confirmed.push((*c, streams.clone()));
                        conn.blocked = Blocked::No;
                    }
                    other => panic!("confirmation of {identifier} on {c}, waiting for {other:?}"),
                }
            }
        }

        let mut expired: BTreeSet<(ConnectionId, u32)> = BTreeSet::new();
        // Streams stopped in this call once ready.
        let mut stopped_ready: BTreeSet<String> = BTreeSet::new();
        let mut closed: BTreeSet<ConnectionId> = BTreeSet::new();
        for event in events {
            match event {
                Event::SubscriptionRequested {
                    connection,
                    identifier,
                    pending,
                    ..
                } => {
                    let step = self.calls;
                    let deadline = self.after(self.timeouts.subscribe);
                    self.pushed += usize::from(self.timeouts.subscribe.is_some());
                    let conn = self.conn(connection);
                    assert_eq!(
                        conn.state,
                        State::Open,
                        "subscription on {connection}, not open"
                    );
                    assert!(!conn.custom, "a command parsed on a custom connection");
                    assert_eq!(
                        conn.blocked,
                        Blocked::No,
                        "a later command of {connection} handled while it waits"
                    );
                    conn.seq += 1;
                    let seq = conn.seq;
                    let ident = ident_index(identifier.as_str());
                    conn.blocked = Blocked::Decision {
                        seq,
                        kind: Kind::Subscription {
                            sub: pending.subscription(),
                            ident,
                        },
                        deadline,
                        step,
                    };
                    self.tokens.push(Token {
                        conn: connection,
                        seq,
                        handle: Handle::Subscription(pending),
                        number: 0,
                    });
                }
                Event::Perform(perform) => {
                    let step = self.calls;
                    let deadline = self.after(self.timeouts.perform);
                    self.pushed += usize::from(self.timeouts.perform.is_some());
                    self.performs += 1;
                    let number = self.performs;
                    let connection = perform.connection;
                    let conn = self.conn(connection);
                    assert_eq!(conn.state, State::Open, "perform on {connection}, not open");
                    assert_eq!(
                        conn.blocked,
                        Blocked::No,
                        "a later command of {connection} handled while it waits"
                    );
                    let ident = ident_index(perform.identifier.as_str());
                    assert_eq!(conn.subs.get(&ident), Some(&perform.subscription));
                    let seq = perform
                        .data_value()
                        .get("seq")
                        .and_then(Value::as_u64)
                        .expect("the perform's seq");
                    let seq = u32::try_from(seq).expect("u32");
                    assert!(
                        seq > conn.last_perform && seq <= conn.sent,
                        "perform {seq} of {connection} out of order (last {})",
                        conn.last_perform
                    );
                    conn.last_perform = seq;
                    conn.seq += 1;
                    let seq = conn.seq;
                    conn.blocked = Blocked::Decision {
                        seq,
                        kind: Kind::Perform { number },
                        deadline,
                        step,
                    };
                    self.tokens.push(Token {
                        conn: connection,
                        seq,
                        handle: Handle::Perform(perform.pending),
                        number,
                    });
                }
                Event::Received {
                    connection,
                    frame,
                    binary,
                } => {
                    let conn = self.conn(connection);
                    assert!(conn.custom && !binary);
                    assert_eq!(
                        conn.state,
                        State::Open,
                        "a frame of {connection} handled before its accept"
                    );
                    assert_eq!(conn.blocked, Blocked::No);
                    let value: Value = serde_json::from_slice(&frame).expect("the frame sent");
                    let seq = value.get("seq").and_then(Value::as_u64);
                    assert_eq!(
                        seq,
                        conn.unreceived.pop_front().map(u64::from),
                        "frames of {connection} received out of order"
                    );
                }
                Event::Unsubscribed {
                    connection,
                    subscription,
                    cause,
                    ..
                } => {
                    let unsubscribed_now = self.unsubscribed_now;
                    let closed_now = self.closed_now;
                    let conn = self.conn(connection);
                    let ident = conn
                        .subs
                        .iter()
                        .find(|(_, s)| **s == subscription)
                        .map(|(i, _)| *i)
                        .unwrap_or_else(|| panic!("Unsubscribed {subscription}, not live"));
                    conn.subs.remove(&ident);
                    match cause {
                        UnsubscribeCause::Disconnected => {
                            assert_eq!(conn.state, State::Closing, "{cause:?} while not closing")
                        }
                        UnsubscribeCause::ConnectionClosed => {
                            assert_eq!(closed_now, Some(connection), "{cause:?} without the close")
                        }
                        UnsubscribeCause::Application => {
                            assert_eq!(unsubscribed_now, Some(subscription))
                        }
                        _ => {}
                    }
                    // A subscription whose confirmation waited is gone: the
                    // connection waits no more.
                    if matches!(&conn.blocked, Blocked::Streams { ident: i, .. } if *i == ident) {
                        conn.blocked = Blocked::No;
                    }
                }
                Event::StreamStarted(name) => {
                    let deadline = if self.confirm_when_ready {
                        self.after(self.upstream)
                    } else {
                        None
                    };
                    self.pushed += usize::from(self.confirm_when_ready && self.upstream.is_some());
                    let model = StreamModel {
                        ready: !self.confirm_when_ready,
                        deadline,
                        step: self.calls,
                    };
                    let previous = self.streams.insert(name.as_str().to_owned(), model);
                    assert!(previous.is_none(), "stream {name} started twice");
                }
                Event::StreamStopped(name) => {
                    let model = self.streams.remove(name.as_str());
                    let model =
                        model.unwrap_or_else(|| panic!("stream {name} stopped, not started"));
                    // (`stream_ready` of this call comes after the events
                    // of the deadlines it fired, before those of the
                    // commands it let go on.)
                    if model.ready || self.ready_now.as_deref() == Some(name.as_str()) {
                        stopped_ready.insert(name.as_str().to_owned());
                    }
                }
                Event::UpstreamTimedOut(name) => {
                    let clock = self.clock;
                    let model = self
                        .streams
                        .get_mut(name.as_str())
                        .unwrap_or_else(|| panic!("upstream of {name} timed out, no such stream"));
                    assert!(!model.ready, "upstream of {name} timed out once ready");
                    assert!(
                        model.deadline.is_some_and(|d| d <= clock),
                        "upstream of {name} timed out early ({:?}, clock {clock:?})",
                        model.deadline
                    );
                    model.ready = true;
                }
                Event::DecisionExpired {
                    connection,
                    decision,
                } => {
                    let clock = self.clock;
                    let conn = self.conn(connection);
                    let Blocked::Decision {
                        seq,
                        kind,
                        deadline,
                        ..
                    } = conn.blocked.clone()
                    else {
                        panic!(
                            "{decision:?} expired on {connection}, which waits for {:?}",
                            conn.blocked
                        );
                    };
                    assert!(
                        deadline.is_some_and(|d| d <= clock),
                        "{decision:?} of {connection} expired early ({deadline:?}, clock {clock:?})"
                    );
                    match (&decision, kind) {
                        (ExpiredDecision::Connection, Kind::Connection) => {}
                        (ExpiredDecision::Perform, Kind::Perform { .. }) => {}
                        (
                            ExpiredDecision::Subscription {
                                subscription,
                                identifier,
                            },
                            Kind::Subscription { sub, ident },
                        ) => {
                            assert_eq!(*subscription, sub);
                            assert_eq!(identifier.as_str(), IDENTIFIERS[ident]);
                            self.rejects.push((connection, ident));
                        }
                        (decision, kind) => panic!("{decision:?} expired for {kind:?}"),
                    }
                    let conn = self.conn(connection);
                    conn.last_expired = seq;
                    conn.blocked = Blocked::No;
                    if let Some(at) = self
                        .tokens
                        .iter()
                        .position(|t| t.conn == connection && t.seq == seq)
                    {
                        let token = self.tokens.remove(at);
                        self.late.push(token);
                    }
                    expired.insert((connection, seq));
                }
                Event::CommandFailed { connection, error } => {
                    let sent_now = self.sent_now;
                    let conn = self.conn(connection);
                    match error {
                        CommandError::HoldOverflow { .. }
                        | CommandError::FrameTooLarge { .. }
                        | CommandError::Closing => {
                            // The frame just sent was dropped.
                            if let Some((c, seq)) = sent_now {
                                if c == connection {
                                    conn.unreceived.retain(|&s| s != seq);
                                }
                            }
                        }
                        CommandError::BinaryFrame { .. } => panic!("no binary frame was sent"),
                        error => {
                            assert_eq!(
                                conn.blocked,
                                Blocked::No,
                                "a later command of {connection} failed while it waits: {error}"
                            );
                            assert_eq!(conn.state, State::Open);
                        }
                    }
                }
                Event::Disconnecting {
                    connection, reason, ..
                } => {
                    let clock = self.clock;
                    let conn = self.conn(connection);
                    assert_ne!(
                        conn.state,
                        State::Closing,
                        "{connection} disconnected twice"
                    );
                    if reason == DisconnectReason::TokenExpired {
                        assert!(
                            conn.expiry.is_some_and(|e| e <= clock),
                            "token_expired on {connection} early ({:?}, clock {clock:?})",
                            conn.expiry
                        );
                    }
                    conn.state = State::Closing;
                    conn.blocked = Blocked::No;
                    conn.expiry = None;
                    conn.unreceived.clear();
                    self.retire_tokens(connection);
                    closed.insert(connection);
                }
                Event::Closed { connection, .. } => {
                    let at = self
                        .conns
                        .iter()
                        .position(|c| c.id == connection)
                        .expect("a known connection");
                    let conn = self.conns.remove(at);
                    assert!(
                        conn.subs.is_empty(),
                        "{connection} closed with live subscriptions"
                    );
                    self.retire_tokens(connection);
                    self.wire.forget(connection);
                    closed.insert(connection);
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        // A late answer is refused as expired if its decision is the last of
        // its connection to expire (as of the answer: the call fired what
        // was due first), as stale otherwise.
        if let Some((conn, seq, result)) = self.late_answer.take() {
            let expected = match self.known(conn) {
                Some(c) if c.last_expired == seq => UsageError::DecisionExpired,
                _ => UsageError::StaleDecision,
            };
            assert_eq!(
                result,
                Err(expected),
                "a late answer (decision {seq} of {conn})"
            );
        }
        if let Some(name) = self.ready_now.take() {
            if let Some(model) = self.streams.get_mut(&name) {
                model.ready = true;
            }
        }

        // Frames.
        let mut pinged: BTreeSet<ConnectionId> = BTreeSet::new();
        let mut found: Vec<u64> = Vec::new();
        for item in seen {
            match item {
                Seen::Frame(c, frame) => match frame {
                    ServerFrame::Ping(_) => {
                        assert!(self.pinged, "a ping on {c} outside a due timeout");
                        assert!(pinged.insert(c), "two pings on {c}");
                    }
                    ServerFrame::Reject(identifier) => {
                        let key = (c, ident_index(&identifier));
                        let at = self
                            .rejects
                            .iter()
                            .position(|k| *k == key)
                            .unwrap_or_else(|| panic!("unexpected rejection {key:?}"));
                        self.rejects.remove(at);
                    }
                    ServerFrame::Message { message, .. } => marks(&message, &mut found),
                    ServerFrame::Application(value) => marks(&value, &mut found),
                    ServerFrame::Welcome | ServerFrame::Confirm(_) => {}
                    ServerFrame::Disconnect { .. } => unreachable!("checked by the wire"),
                },
                Seen::Custom(c, bytes) => {
                    let value: Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("frame on {c} is not JSON ({e})"));
                    marks(&value, &mut found);
                }
                Seen::Farewell { .. } | Seen::Closed(_) => {}
            }
        }
        for number in found {
            assert!(
                self.completed.contains(&number),
                "a frame of perform {number}, not completed in this call (vetoed, expired or late)"
            );
        }
        for (c, ident) in &self.rejects {
            assert!(
                self.known(*c).is_none_or(|m| m.state == State::Closing),
                "no rejection of {} on {c}",
                IDENTIFIERS[*ident]
            );
        }
        if self.pinged {
            for conn in &self.conns {
                if conn.state == State::Open && !conn.custom {
                    assert!(pinged.contains(&conn.id), "no ping on {}", conn.id);
                }
            }
        }
        for refused in self.refused.clone() {
            let last_expired = |c| self.known(c).map_or(0, |m| m.last_expired);
            match refused {
                Refused::Expired(c, seq) => assert!(
                    expired.contains(&(c, seq)) && last_expired(c) == seq,
                    "an answer refused as expired without the expiry of decision {seq} of {c}"
                ),
                Refused::Stale(c, seq) => assert!(
                    closed.contains(&c) || expired.contains(&(c, seq)) && last_expired(c) != seq,
                    "an answer refused as stale while decision {seq} of {c} was pending"
                ),
                Refused::Closed(c) => {
                    assert!(closed.contains(&c), "a call refused as if {c} had closed")
                }
            }
        }
        // A confirmation that waited for streams came once they were ready.
        for (c, streams) in confirmed {
            for name in streams {
                assert!(
                    self.streams.get(&name).is_some_and(|s| s.ready)
                        || stopped_ready.contains(&name),
                    "{c} confirmed before its stream {name} was ready"
                );
            }
        }
    }

    pub(super) fn check(&mut self) {
        let clock = self.clock;
        // Only the latest call may leave a deadline due at the clock, one it
        // opened itself, and only if it does not end by firing what is due.
        let call = self.calls;
        let strict = self.strict_call == call;
        let due_ok = |deadline: Instant, opened: u64| {
            deadline > clock || (!strict && opened == call && deadline == clock)
        };
        let mut earliest: Option<Instant> = None;
        let mut note = |d: Instant| earliest = Some(earliest.map_or(d, |e: Instant| e.min(d)));

        assert_eq!(
            self.server.connection_count(),
            self.conns.len(),
            "connection_count"
        );
        assert_eq!(
            self.server.stream_count(),
            self.streams.len(),
            "stream_count"
        );
        for conn in &self.conns {
            assert_eq!(
                self.server.is_open(conn.id),
                conn.state == State::Open,
                "is_open"
            );
            if conn.state == State::Closing {
                assert!(
                    conn.subs.is_empty(),
                    "closing {} keeps subscriptions",
                    conn.id
                );
                assert_eq!(
                    self.server.held_frames(conn.id),
                    0,
                    "closing {} holds frames",
                    conn.id
                );
                continue;
            }
            assert_eq!(
                self.server.expiry(conn.id),
                conn.expiry,
                "expiry of {}",
                conn.id
            );
            match &conn.blocked {
                Blocked::No => assert_eq!(
                    self.server.held_frames(conn.id),
                    0,
                    "{} holds frames while it waits for nothing",
                    conn.id
                ),
                Blocked::Decision {
                    deadline,
                    step: opened,
                    ..
                } => {
                    if let Some(d) = *deadline {
                        assert!(
                            due_ok(d, *opened),
                            "the decision of {} is still pending past its deadline ({d:?}, clock {clock:?})",
                            conn.id
                        );
                        note(d);
                    }
                }
                Blocked::Streams { streams, .. } => {
                    assert!(
                        streams
                            .iter()
                            .any(|s| self.streams.get(s).is_some_and(|s| !s.ready)),
                        "{} waits for streams {streams:?}, all ready",
                        conn.id
                    );
                }
            }
            if let Some(e) = conn.expiry {
                assert!(
                    e > clock,
                    "{} is still open past its expiry ({e:?}, clock {clock:?})",
                    conn.id
                );
                note(e);
            }
        }
        for (name, stream) in &self.streams {
            if stream.ready {
                continue;
            }
            if let Some(d) = stream.deadline {
                assert!(
                    due_ok(d, stream.step),
                    "stream {name} still waits upstream past its deadline ({d:?}, clock {clock:?})"
                );
                note(d);
            }
        }

        let polled = self.server.poll_timeout().expect("a ping beat at least");
        assert!(
            polled <= self.next_ping,
            "poll_timeout {polled:?} after the next ping beat {:?}",
            self.next_ping
        );
        if let Some(e) = earliest {
            assert!(
                polled <= e,
                "poll_timeout {polled:?} after a pending deadline {e:?}"
            );
        }
        assert!(
            polled >= clock || polled == self.next_ping,
            "poll_timeout {polled:?} before the core's clock {clock:?}, not the due ping beat"
        );
        if let Some(t) = self.timeout_at {
            assert!(
                polled > t,
                "poll_timeout {polled:?} not after handle_timeout({t:?})"
            );
        }

        // (A step without a call leaves the store as the last check saw it.)
        let count = self.server.timer_count();
        let bound = (2 * self.bound_before).max(64) + self.pushed;
        let no_call = self.calls == self.calls_before;
        assert!(
            no_call || count <= bound,
            "{count} timers held, over the bound {bound} (live bound before {}, {} set by the call)",
            self.bound_before,
            self.pushed
        );
        self.wire.check_queued(&self.server);
    }
}
