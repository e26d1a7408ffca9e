//! The operations: each makes its call (or calls) on the core with the
//! `now` the host chose and records in the model what it asked (decisions
//! answered, expiries set, frames sent, time moved); what the core did in
//! return is left to the checks.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use cable_proto::server::{
    ConnectionAccept, Envelope, PerformOutcome, Protocol, SubscriptionAccept,
};
use cable_proto::{DisconnectReason, HandshakeRequest, Identity, JsonText, StreamMode, UsageError};

use crate::input::Input;

use super::decode::{IDENTIFIERS, LIFETIMES, STREAMS};
use super::model::{Blocked, Conn, Handle, Kind, Refused, State, Token};
use super::Host;

impl Host {
    pub(super) fn open(&mut self, custom: bool, number: u8) {
        let request = HandshakeRequest {
            host: Some("example.com"),
            origin: Some("http://example.com"),
            secure: false,
            protocols: &["actioncable-v1-json"],
        };
        let protocol = if custom {
            Protocol::Custom(u16::from(number))
        } else {
            Protocol::ActionCable
        };
        let now = self.now();
        let incoming = self
            .server
            .handle_open_as(&request, protocol, now)
            .expect("every origin is allowed");
        assert_eq!(incoming.protocol, protocol);
        let id = incoming.connection;
        assert_eq!(incoming.pending.connection(), id);
        if custom {
            assert_eq!(
                incoming.subprotocol, None,
                "a custom protocol negotiates its own"
            );
            self.wire.open_custom(id);
        } else {
            self.wire.open(id);
        }
        let deadline = self.after(self.timeouts.connect);
        self.pushed += usize::from(self.timeouts.connect.is_some());
        self.conns.push(Conn {
            id,
            custom,
            state: State::Pending,
            blocked: Blocked::Decision {
                seq: 1,
                kind: Kind::Connection,
                deadline,
                step: self.calls,
            },
            seq: 1,
            last_expired: 0,
            expiry: None,
            subs: BTreeMap::new(),
            sent: 0,
            last_perform: 0,
            unreceived: VecDeque::new(),
        });
        self.tokens.push(Token {
            conn: id,
            seq: 1,
            handle: Handle::Connection(incoming.pending),
            number: 0,
        });
    }

    /// An expiry `LIFETIMES[lifetime]` after `now`, or one second before it
    /// past the end of the list.
    fn expiry_at(&self, now: Instant, lifetime: usize) -> Instant {
        match LIFETIMES.get(lifetime) {
            Some(&d) => now + d,
            None => now
                .checked_sub(Duration::from_secs(1))
                .map_or(self.start, |t| t.max(self.start)),
        }
    }

    pub(super) fn accept_connection(
        &mut self,
        which: usize,
        lifetime: Option<usize>,
        transmit: bool,
    ) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Connection(pending),
            ..
        }) = self.take_token(which, |h| matches!(h, Handle::Connection(_)))
        else {
            return;
        };
        let now = self.now();
        let mut accept = ConnectionAccept::new(Identity::new("user"));
        let expiry = lifetime.map(|l| self.expiry_at(now, l));
        if let Some(at) = expiry {
            accept = accept.expires_at(at);
        }
        if transmit {
            accept = accept.transmit(JsonText::new(r#"{"hello":true}"#).expect("JSON"));
        }
        let result = self.server.accept_connection(pending, accept, now);
        self.strict_call = self.calls;
        if self.answered(conn, seq, result) {
            self.pushed += usize::from(expiry.is_some());
            let conn = self.conn(conn);
            conn.state = State::Open;
            conn.blocked = Blocked::No;
            // An accept without an expiry keeps one set while pending.
            if expiry.is_some() {
                conn.expiry = expiry;
            }
        }
    }

    pub(super) fn reject_connection(&mut self, which: usize) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Connection(pending),
            ..
        }) = self.take_token(which, |h| matches!(h, Handle::Connection(_)))
        else {
            return;
        };
        let now = self.now();
        let result = self.server.reject_connection(pending, now);
        if self.answered(conn, seq, result) {
            self.conn(conn).blocked = Blocked::No;
        }
    }

    pub(super) fn send(&mut self, conn: usize, kind: u8, ident: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let model = self.conn(id);
        model.sent += 1;
        let seq = model.sent;
        let frame = if model.custom {
            model.unreceived.push_back(seq);
            format!(r#"{{"seq":{seq}}}"#)
        } else {
            let identifier = IDENTIFIERS[ident];
            let command = match kind % 8 {
                0..=2 => serde_json::json!({"command": "subscribe", "identifier": identifier}),
                3 => serde_json::json!({"command": "unsubscribe", "identifier": identifier}),
                _ => serde_json::json!({
                    "command": "message",
                    "identifier": identifier,
                    "data": format!(r#"{{"action":"act","seq":{seq}}}"#),
                }),
            };
            command.to_string()
        };
        self.sent_now = Some((id, seq));
        let now = self.now();
        self.server
            .handle_text(id, frame.as_bytes(), now)
            .expect("handle_text on a known connection");
    }

    pub(super) fn answer_subscription(&mut self, which: usize, how: u8) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Subscription(pending),
            ..
        }) = self.take_token(which, |h| matches!(h, Handle::Subscription(_)))
        else {
            return;
        };
        let sub = pending.subscription();
        let Some(Blocked::Decision {
            kind: Kind::Subscription { ident, .. },
            ..
        }) = self.known(conn).map(|c| c.blocked.clone())
        else {
            panic!("subscription token without its decision")
        };
        let now = self.now();
        match how % 4 {
            0 | 1 => {
                let mut accept = SubscriptionAccept::new();
                let mut streams: Vec<String> = Vec::new();
                for (i, name) in STREAMS.iter().enumerate() {
                    if how & (4 << i) != 0 {
                        accept = if how & 0x40 != 0 && i % 2 == 0 {
                            accept.stream_raw(*name)
                        } else {
                            accept.stream(*name)
                        };
                        streams.push((*name).to_owned());
                    }
                }
                if how & 0x80 != 0 {
                    // The same stream twice, in the other mode: one stream
                    // to wait for.
                    if let Some(first) = streams.first().cloned() {
                        accept = accept.stream_raw(first);
                    }
                }
                let result = self.server.accept_subscription(pending, accept, now);
                if self.answered(conn, seq, result) {
                    let conn = self.conn(conn);
                    conn.subs.insert(ident, sub);
                    conn.blocked = Blocked::Streams { ident, streams };
                }
            }
            2 => {
                let result = self.server.reject_subscription(pending, now);
                if self.answered(conn, seq, result) {
                    self.conn(conn).blocked = Blocked::No;
                    self.rejects.push((conn, ident));
                }
            }
            _ => {
                let result = self.server.abandon_subscription(pending, now);
                if self.answered(conn, seq, result) {
                    self.conn(conn).blocked = Blocked::No;
                }
            }
        }
    }

    /// A perform's outcome: its mark broadcast, transmitted, maybe a stream
    /// started.
    fn outcome(number: u64, how: u8) -> PerformOutcome {
        let mark = JsonText::new(format!(r#"{{"p":{number}}}"#)).expect("JSON");
        let stream = STREAMS[usize::from(how >> 2) % STREAMS.len()];
        let mut outcome = PerformOutcome::new();
        if how & 0x10 != 0 {
            outcome = outcome.stream(STREAMS[usize::from(how >> 5) % STREAMS.len()]);
        }
        outcome = outcome.transmit(mark.clone());
        if how & 0x80 != 0 {
            outcome.broadcast_except_sender(stream, mark)
        } else {
            outcome.broadcast(stream, mark)
        }
    }

    pub(super) fn answer_perform(&mut self, which: usize, how: u8) {
        let Some(Token {
            conn,
            seq,
            handle: Handle::Perform(pending),
            number,
        }) = self.take_token(which, |h| matches!(h, Handle::Perform(_)))
        else {
            return;
        };
        let now = self.now();
        if how % 3 == 2 {
            let result = self.server.veto_perform(pending, now);
            if self.answered(conn, seq, result) {
                self.conn(conn).blocked = Blocked::No;
            }
        } else {
            let outcome = Self::outcome(number, how);
            let result = self.server.complete_perform(pending, outcome, now);
            if self.answered(conn, seq, result) {
                self.completed.insert(number);
                self.conn(conn).blocked = Blocked::No;
            }
        }
    }

    pub(super) fn answer_late(&mut self, which: usize, how: u8) {
        if self.late.is_empty() {
            return;
        }
        let token = self.late.swap_remove(which % self.late.len());
        let now = self.now();
        let result = match token.handle {
            Handle::Connection(pending) => match how % 2 {
                0 => self
                    .server
                    .accept_connection(pending, Identity::new("late"), now),
                _ => self.server.reject_connection(pending, now),
            },
            Handle::Subscription(pending) => match how % 3 {
                0 => self.server.accept_subscription(
                    pending,
                    SubscriptionAccept::new().stream(STREAMS[0]),
                    now,
                ),
                1 => self.server.reject_subscription(pending, now),
                _ => self.server.abandon_subscription(pending, now),
            },
            Handle::Perform(pending) => match how % 2 {
                0 => self
                    .server
                    .complete_perform(pending, Self::outcome(token.number, how), now),
                _ => self.server.veto_perform(pending, now),
            },
        };
        // Checked once the call's own expiries are in the model.
        self.late_answer = Some((token.conn, token.seq, result));
    }

    pub(super) fn set_expiry(&mut self, conn: usize, lifetime: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let now = self.now();
        let at = (lifetime < LIFETIMES.len() + 1).then(|| self.expiry_at(now, lifetime));
        let closing = self.conn(id).state == State::Closing;
        let result = self.server.set_expiry(id, at, now);
        self.strict_call = self.calls;
        if closing {
            assert_eq!(result, Err(UsageError::ConnectionNotOpen), "set_expiry");
            return;
        }
        match result {
            Ok(()) => {
                self.pushed += usize::from(at.is_some());
                self.conn(id).expiry = at;
            }
            // Closed by a deadline the call fired first.
            Err(UsageError::ConnectionNotOpen) => self.refused.push(Refused::Closed(id)),
            Err(other) => panic!("set_expiry: {other}"),
        }
    }

    /// A host refreshing a credential to the same expiry, `times` calls.
    pub(super) fn refresh_expiry(&mut self, conn: usize, times: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let model = self.conn(id);
        let Some(at) = model.expiry.filter(|_| model.state != State::Closing) else {
            return;
        };
        // At the core's clock, with nothing due: the calls fire nothing.
        if !self.nothing_due() {
            return;
        }
        let now = self.clock;
        for _ in 0..times {
            let bound = 2 * self.server.connection_count() + self.server.stream_count();
            self.begin_call(now);
            self.server
                .set_expiry(id, Some(at), now)
                .expect("refreshing the expiry of a connection that has one");
            self.pushed += 1;
            assert!(
                self.server.poll_event().is_none() && self.server.poll_transmit().is_none(),
                "refreshing an expiry did something"
            );
            let count = self.server.timer_count();
            assert!(
                count <= (2 * bound).max(64) + 1,
                "the timer store grows with refreshed expiries: {count} timers for {bound} live ones"
            );
        }
        self.strict_call = self.calls;
    }

    pub(super) fn stream_ready(&mut self, stream: usize) {
        let name = STREAMS[stream];
        let now = self.now();
        self.server.stream_ready(name, now);
        self.ready_now = Some(name.to_owned());
    }

    pub(super) fn broadcast(&mut self, stream: usize, string: bool) {
        self.broadcasts += 1;
        let payload = format!(r#"{{"b":{}}}"#, self.broadcasts);
        let name = STREAMS[stream];
        let now = self.now();
        if string {
            self.server.broadcast_string(name, &payload, now);
        } else {
            self.server.broadcast(name, &payload, now);
        }
    }

    pub(super) fn advance(&mut self, input: &mut Input<'_>) {
        self.lag = Duration::ZERO;
        let step = match input.below(7) {
            0 => Duration::ZERO,
            1 => Duration::from_millis(u64::from(input.byte())),
            2 => Duration::from_millis(u64::from(input.u16())),
            3 | 4 => {
                // Up to the next deadline, or a nanosecond short of it.
                let short = input.bool();
                if let Some(at) = self.server.poll_timeout() {
                    let target = if short {
                        at.checked_sub(Duration::from_nanos(1)).unwrap_or(at)
                    } else {
                        at
                    };
                    self.wall = self.wall.max(target);
                }
                Duration::ZERO
            }
            5 => Duration::from_secs(1_000_000),
            _ => Duration::from_secs(100_000_000),
        };
        self.wall += step;
    }

    pub(super) fn timeout(&mut self, input: &mut Input<'_>) {
        let polled = self.server.poll_timeout().expect("a ping beat at least");
        let t = match input.below(4) {
            0 => {
                self.wall = self.wall.max(polled);
                self.lag = Duration::ZERO;
                self.wall
            }
            1 => polled.max(self.start),
            2 => self.call_time(),
            _ => {
                // Any time, maybe behind the core's clock.
                let back = Duration::from_millis(u64::from(input.u16()));
                self.clock
                    .checked_sub(back)
                    .map_or(self.start, |t| t.max(self.start))
            }
        };
        self.begin_call(t);
        self.strict_call = self.calls;
        self.timeout_at = Some(t);
        if t >= self.next_ping {
            // The first beat after `t`.
            let behind = t.duration_since(self.next_ping).as_nanos();
            let interval = self.interval.as_nanos();
            let beats = behind / interval + 1;
            let nanos = beats * interval;
            let secs = u64::try_from(nanos / 1_000_000_000).expect("beats within u64 seconds");
            let sub = u32::try_from(nanos % 1_000_000_000).expect("nanoseconds");
            self.next_ping += Duration::new(secs, sub);
            self.pinged = true;
        }
        self.server.handle_timeout(t);
    }

    pub(super) fn close(&mut self, conn: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let now = self.now();
        self.closed_now = Some(id);
        self.server
            .handle_close(id, now)
            .expect("handle_close on a known connection");
    }

    pub(super) fn disconnect(&mut self, conn: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let now = self.now();
        self.server
            .disconnect(id, DisconnectReason::Remote, true, now)
            .expect("disconnect a known connection");
    }

    pub(super) fn unsubscribe(&mut self, conn: usize, ident: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let Some(&sub) = self.conn(id).subs.get(&ident) else {
            return;
        };
        let now = self.now();
        self.unsubscribed_now = Some(sub);
        match self.server.unsubscribe(sub, now) {
            Ok(()) => {}
            // Ended by a deadline the call fired first (its connection closed).
            Err(UsageError::UnknownSubscription) => self.refused.push(Refused::Closed(id)),
            Err(other) => panic!("unsubscribe of a live subscription: {other}"),
        }
    }

    pub(super) fn join(&mut self, conn: usize, stream: usize) {
        let Some(id) = self.conn_at(conn) else {
            return;
        };
        let open = self.conn(id).state == State::Open;
        let envelope = Envelope::new(r#"{"j":"#, "}", StreamMode::Json);
        let now = self.now();
        match self.server.join(id, STREAMS[stream], envelope, now) {
            Ok(()) => assert!(open, "join on a connection not open"),
            Err(UsageError::ConnectionNotOpen) if !open => {}
            Err(UsageError::ConnectionNotOpen) => self.refused.push(Refused::Closed(id)),
            Err(other) => panic!("join: {other}"),
        }
    }
}
