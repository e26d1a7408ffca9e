//! The driver: runs one [`Op`] on the core, records in the model what the
//! host asked, notes what the operation must produce, then hands over to
//! the checks ([`Harness::step`]).

use std::collections::BTreeSet;
use std::time::Duration;

use cable_proto::server::{Delivery, PerformOutcome, SubscriptionAccept, UnsubscribeCause};
use cable_proto::{
    ConnectionId, DisconnectReason, HandshakeRequest, Identity, JsonText, StreamMode, UsageError,
};
use serde_json::Value;

use super::expected::{parse_value, Broadcasted, Expect};
use super::model::{ConnModel, ConnState, PerformModel};
use super::op::{
    envelope, reason, BroadcastKind, Op, Outcome, ENVELOPES, IDENTITIES, ORIGINS, PAYLOADS,
    PROTOCOLS, STREAMS,
};
use super::{Harness, UNIX_START};

impl Harness {
    /// Runs one operation, drains the core and checks every invariant.
    pub fn step(&mut self, op: Op) {
        let mut expect = Expect::default();
        let subs_before: BTreeSet<(ConnectionId, String)> = self
            .subs
            .iter()
            .map(|s| (s.conn, s.identifier.clone()))
            .collect();
        let mut broadcast: Option<(Broadcasted, Option<Delivery>)> = None;
        let now = self.now;
        match op {
            Op::Open { origin, protocols } => {
                self.open(
                    ORIGINS[origin % ORIGINS.len()],
                    PROTOCOLS[protocols % PROTOCOLS.len()],
                );
            }
            Op::Connect { identity } => {
                if let Some(id) = self.open(Some("http://example.com"), PROTOCOLS[0]) {
                    let identity = IDENTITIES[identity % IDENTITIES.len()];
                    self.accept_connection(id, identity, &mut expect);
                }
            }
            Op::AcceptConnection { conn, identity } => {
                if let Some(id) = self.conn_at(conn) {
                    let identity = IDENTITIES[identity % IDENTITIES.len()];
                    self.accept_connection(id, identity, &mut expect);
                }
            }
            Op::RejectConnection { conn } => {
                if let Some(id) = self.conn_at(conn) {
                    let token = self.conn_model(id).token.take();
                    let result = match token {
                        Some(token) => self.server.reject_connection(token, now),
                        None => Ok(()),
                    };
                    result.expect("rejecting a pending connection");
                }
            }
            Op::Text { conn, frame } => {
                if let Some(id) = self.conn_at(conn) {
                    self.server
                        .handle_text(id, &frame, now)
                        .expect("handle_text on a known connection");
                }
            }
            Op::Binary { conn, len } => {
                if let Some(id) = self.conn_at(conn) {
                    self.server
                        .handle_binary(id, &vec![0xA5; len], now)
                        .expect("handle_binary on a known connection");
                }
            }
            Op::Close { conn } => {
                if let Some(id) = self.conn_at(conn) {
                    expect.closing = Some(id);
                    expect.unsubscribe_cause = Some(UnsubscribeCause::ConnectionClosed);
                    self.server
                        .handle_close(id, now)
                        .expect("handle_close on a known connection");
                }
            }
            Op::Written { conn, bytes, all } => {
                if let Some(id) = self.conn_at(conn) {
                    let queued = self.wire.queued(id);
                    let bytes = if all {
                        queued.saturating_add(bytes)
                    } else {
                        bytes.min(queued)
                    };
                    self.server
                        .handle_written(id, bytes, now)
                        .expect("handle_written on a known connection");
                    self.wire.written(id, bytes);
                }
            }
            Op::Advance { millis } => {
                self.now += Duration::from_millis(u64::from(millis));
            }
            Op::Timeout => self.timeout(&mut expect),
            Op::TimeoutAtDeadline => {
                if let Some(deadline) = self.server.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.timeout(&mut expect);
            }
            Op::AcceptSubscription {
                pending,
                streams,
                transmissions,
            } => {
                if let Some(at) = self.pending_at(pending) {
                    let mut accept = SubscriptionAccept::new();
                    let (conn, identifier) = (self.subs[at].conn, self.subs[at].identifier.clone());
                    for payload in transmissions {
                        let payload = PAYLOADS[payload % PAYLOADS.len()];
                        if let Ok(text) = JsonText::new(payload) {
                            accept = accept.transmit(text);
                            expect.messages.push((
                                conn,
                                identifier.clone(),
                                parse_value(payload),
                                Some(payload.to_owned()),
                            ));
                        }
                    }
                    let mut model_streams: Vec<(String, StreamMode)> = Vec::new();
                    for (stream, raw) in streams {
                        let name = STREAMS[stream % STREAMS.len()];
                        let mode = if raw {
                            accept = accept.stream_raw(name);
                            StreamMode::RawString
                        } else {
                            accept = accept.stream(name);
                            StreamMode::Json
                        };
                        if !model_streams.iter().any(|(n, m)| n == name && *m == mode) {
                            model_streams.push((name.to_owned(), mode));
                        }
                    }
                    let sub = &mut self.subs[at];
                    let token = sub.token.take().expect("pending");
                    sub.streams = model_streams;
                    expect.confirmed.push((conn, identifier));
                    self.server
                        .accept_subscription(token, accept, now)
                        .expect("accepting a pending subscription");
                }
            }
            Op::RejectSubscription { pending } => {
                if let Some(at) = self.pending_at(pending) {
                    let sub = self.subs.remove(at);
                    self.ended_subs.push(sub.id);
                    expect.rejected.push((sub.conn, sub.identifier));
                    self.server
                        .reject_subscription(sub.token.expect("pending"), now)
                        .expect("rejecting a pending subscription");
                }
            }
            Op::AbandonSubscription { pending } => {
                if let Some(at) = self.pending_at(pending) {
                    let sub = self.subs.remove(at);
                    self.ended_subs.push(sub.id);
                    self.server
                        .abandon_subscription(sub.token.expect("pending"), now)
                        .expect("abandoning a pending subscription");
                }
            }
            Op::DecideStale { which, how } => self.decide_stale(which, how),
            Op::Unsubscribe { sub } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let id = self.subs[at].id;
                    let result = self.server.unsubscribe(id, now);
                    if self.subs[at].live() {
                        result.expect("unsubscribing a live subscription");
                        expect.unsubscribe_cause = Some(UnsubscribeCause::Application);
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::StreamFrom { sub, stream, raw } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let name = STREAMS[stream % STREAMS.len()];
                    let mode = if raw {
                        StreamMode::RawString
                    } else {
                        StreamMode::Json
                    };
                    let result = self.server.stream_from(self.subs[at].id, name, mode, now);
                    let model = &mut self.subs[at];
                    if model.live() {
                        result.expect("stream_from on a live subscription");
                        if !model.streams.iter().any(|(n, m)| n == name && *m == mode) {
                            model.streams.push((name.to_owned(), mode));
                        }
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::StopStreamFrom { sub, stream } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let name = STREAMS[stream % STREAMS.len()];
                    let result = self.server.stop_stream_from(self.subs[at].id, name, now);
                    let model = &mut self.subs[at];
                    if model.live() {
                        result.expect("stop_stream_from on a live subscription");
                        model.streams.retain(|(n, _)| n != name);
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::StopAllStreams { sub } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let result = self.server.stop_all_streams(self.subs[at].id, now);
                    let model = &mut self.subs[at];
                    if model.live() {
                        result.expect("stop_all_streams on a live subscription");
                        model.streams.clear();
                    } else {
                        assert_eq!(result, Err(UsageError::SubscriptionNotLive));
                    }
                }
            }
            Op::Transmit { sub, payload } => {
                if !self.subs.is_empty() {
                    let at = sub % self.subs.len();
                    let payload = PAYLOADS[payload % PAYLOADS.len()];
                    if let Ok(text) = JsonText::new(payload) {
                        let model = &self.subs[at];
                        expect.messages.push((
                            model.conn,
                            model.identifier.clone(),
                            parse_value(payload),
                            Some(payload.to_owned()),
                        ));
                        self.server
                            .transmit(model.id, &text, now)
                            .expect("transmit to a known subscription");
                    }
                }
            }
            Op::Broadcast {
                stream,
                payload,
                kind,
            } => {
                let stream = STREAMS[stream % STREAMS.len()];
                // Valid JSON that `Value` refuses (lone surrogate escapes)
                // cannot be checked structurally: leave it out.
                let valid = serde_json::from_str::<serde::de::IgnoredAny>(&payload).is_ok();
                if !valid || serde_json::from_str::<Value>(&payload).is_ok() {
                    let except = match kind {
                        BroadcastKind::Except(conn) => self.conn_at(conn),
                        _ => None,
                    };
                    let force_raw = kind == BroadcastKind::String;
                    let expected = self.expected_broadcast(stream, &payload, except, force_raw);
                    let delivery = match (kind, except) {
                        (BroadcastKind::Plain, _) | (BroadcastKind::Except(_), None) => {
                            self.server.broadcast(stream, &payload, now)
                        }
                        (BroadcastKind::Except(_), Some(except)) => {
                            self.server.broadcast_except(stream, &payload, except, now)
                        }
                        (BroadcastKind::String, _) => {
                            self.server.broadcast_string(stream, &payload, now)
                        }
                    };
                    broadcast = Some((expected, Some(delivery)));
                }
            }
            Op::SendFrame { conn } => {
                if let Some(id) = self.conn_at(conn) {
                    let (text, value) = self.application_frame();
                    let result = self.server.send_frame(id, &text, now);
                    if self.conn_model(id).state == ConnState::Open {
                        result.expect("send_frame to an open connection");
                        expect.application.push((id, value));
                    } else {
                        assert_eq!(result, Err(UsageError::ConnectionNotOpen));
                    }
                }
            }
            Op::SendFrameToIdentity { identity } => {
                let identity = IDENTITIES[identity % IDENTITIES.len()];
                let (text, value) = self.application_frame();
                let targets = self.open_conns_of(identity);
                for &id in &targets {
                    expect.application.push((id, value.clone()));
                }
                let reached = self.server.send_frame_to_identity(identity, &text, now);
                assert!(
                    reached <= targets.len(),
                    "send_frame_to_identity reached too many"
                );
                // Fewer only when a connection went past its bound (checked
                // with the farewells below).
                broadcast = Some((
                    Broadcasted::identity(targets),
                    Some(Delivery {
                        recipients: reached,
                        ..Default::default()
                    }),
                ));
            }
            Op::Disconnect {
                conn,
                reason,
                reconnect,
            } => {
                if let Some(id) = self.conn_at(conn) {
                    let reason = self::reason(reason);
                    expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
                    self.server
                        .disconnect(id, reason, reconnect, now)
                        .expect("disconnect a known connection");
                }
            }
            Op::DisconnectIdentity {
                identity,
                reconnect,
            } => {
                let identity = IDENTITIES[identity % IDENTITIES.len()];
                let targets = self.open_conns_of(identity);
                expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
                let closed = self.server.disconnect_identity(identity, reconnect, now);
                assert_eq!(closed, targets.len(), "disconnect_identity count");
            }
            Op::Restart => {
                expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
                self.server.restart(now);
            }
            Op::UseStale { which, how } => self.use_stale(which, how),
            Op::CompletePerform { pending, outcome } => {
                if !self.performs.is_empty() {
                    let perform = self.performs.remove(pending % self.performs.len());
                    let (built, expected) = self.outcome(&perform, outcome, &mut expect);
                    broadcast = expected.map(|b| (b, None));
                    self.server
                        .complete_perform(perform.token, built, now)
                        .expect("completing a pending perform");
                }
            }
            Op::VetoPerform { pending } => {
                if !self.performs.is_empty() {
                    let perform = self.performs.remove(pending % self.performs.len());
                    self.server
                        .veto_perform(perform.token, now)
                        .expect("vetoing a pending perform");
                }
            }
            Op::Join {
                conn,
                stream,
                envelope,
            } => {
                if let Some(id) = self.conn_at(conn) {
                    let name = STREAMS[stream % STREAMS.len()];
                    let envelope = envelope % ENVELOPES.len();
                    let result = self.server.join(id, name, self::envelope(envelope), now);
                    let model = self.conn_model(id);
                    if model.state == ConnState::Open {
                        result.expect("join on an open connection");
                        if !model.joins.iter().any(|(n, e)| n == name && *e == envelope) {
                            model.joins.push((name.to_owned(), envelope));
                        }
                    } else {
                        assert_eq!(result, Err(UsageError::ConnectionNotOpen), "join");
                    }
                }
            }
            Op::Leave {
                conn,
                stream,
                envelope,
            } => {
                if let Some(id) = self.conn_at(conn) {
                    let name = STREAMS[stream % STREAMS.len()];
                    let envelope = envelope.map(|e| e % ENVELOPES.len());
                    let built = envelope.map(self::envelope);
                    self.server
                        .leave(id, name, built.as_ref(), now)
                        .expect("leave on a known connection");
                    self.conn_model(id)
                        .joins
                        .retain(|(n, e)| !(n == name && envelope.is_none_or(|x| x == *e)));
                }
            }
        }
        self.settle(expect, subs_before, broadcast);
    }

    /// Builds a perform's outcome, applies it to the model as the core must
    /// (streams stopped, started, transmissions, broadcasts, disconnect) and
    /// returns it with the frames its broadcasts must deliver.
    fn outcome(
        &mut self,
        perform: &PerformModel,
        outcome: Outcome,
        expect: &mut Expect,
    ) -> (PerformOutcome, Option<Broadcasted>) {
        let mut built = PerformOutcome::new();
        let live = self.sub_pos(perform.sub).filter(|&at| self.subs[at].live());
        if outcome.stop_all {
            built = built.stop_all_streams();
            if let Some(at) = live {
                self.subs[at].streams.clear();
            }
        }
        for stream in outcome.stop {
            let name = STREAMS[stream % STREAMS.len()];
            built = built.stop_stream(name);
            if let Some(at) = live {
                self.subs[at].streams.retain(|(n, _)| n != name);
            }
        }
        for (stream, raw) in outcome.start {
            let name = STREAMS[stream % STREAMS.len()];
            let mode = if raw {
                built = built.stream_raw(name);
                StreamMode::RawString
            } else {
                built = built.stream(name);
                StreamMode::Json
            };
            if let Some(at) = live {
                let streams = &mut self.subs[at].streams;
                if !streams.iter().any(|(n, m)| n == name && *m == mode) {
                    streams.push((name.to_owned(), mode));
                }
            }
        }
        for payload in outcome.transmissions {
            let payload = PAYLOADS[payload % PAYLOADS.len()];
            if let Ok(text) = JsonText::new(payload) {
                built = built.transmit(text);
                if let Some(at) = live {
                    expect.messages.push((
                        perform.conn,
                        self.subs[at].identifier.clone(),
                        parse_value(payload),
                        Some(payload.to_owned()),
                    ));
                }
            }
        }
        let mut broadcasts: Option<Broadcasted> = None;
        for (stream, payload, except_sender) in outcome.broadcasts {
            let name = STREAMS[stream % STREAMS.len()];
            let payload = PAYLOADS[payload % PAYLOADS.len()];
            let Ok(text) = JsonText::new(payload) else {
                continue;
            };
            built = if except_sender {
                built.broadcast_except_sender(name, text)
            } else {
                built.broadcast(name, text)
            };
            let except = except_sender.then_some(perform.conn);
            let expected = self.expected_broadcast(name, payload, except, false);
            match &mut broadcasts {
                Some(all) => all.merge(expected),
                None => broadcasts = Some(expected),
            }
        }
        if let Some((reason, reconnect)) = outcome.disconnect {
            built = built.disconnect(self::reason(reason), reconnect);
            expect.unsubscribe_cause = Some(UnsubscribeCause::Disconnected);
        }
        (built, broadcasts)
    }

    fn open(&mut self, origin: Option<&str>, protocols: &[&str]) -> Option<ConnectionId> {
        let request = HandshakeRequest {
            host: Some("example.com"),
            origin,
            secure: false,
            protocols,
        };
        let allowed = self.server.config().origins.allows(&request);
        match self.server.handle_open(&request, self.now) {
            Ok(incoming) => {
                assert!(allowed, "opened a connection the origin policy refuses");
                if let Some(p) = &incoming.subprotocol {
                    assert!(
                        self.server.config().protocols.contains(p),
                        "negotiated an unsupported subprotocol {p}"
                    );
                }
                let id = incoming.connection;
                assert_eq!(incoming.pending.connection(), id);
                assert!(!self.closed_conns.contains(&id), "handle {id} reused");
                self.wire.open(id);
                self.conns.push(ConnModel {
                    id,
                    token: Some(incoming.pending),
                    state: ConnState::Pending,
                    identity: None,
                    joins: Vec::new(),
                });
                Some(id)
            }
            Err(refusal) => {
                assert!(!allowed, "refused an allowed origin: {refusal}");
                assert_eq!(refusal.status(), 404);
                None
            }
        }
    }

    fn accept_connection(&mut self, id: ConnectionId, identity: &str, expect: &mut Expect) {
        let now = self.now;
        let model = self.conn_model(id);
        let Some(token) = model.token.take() else {
            return;
        };
        model.state = ConnState::Open;
        model.identity = Some(identity.to_owned());
        expect.welcomed.push(id);
        self.server
            .accept_connection(token, Identity::new(identity), now)
            .expect("accepting a pending connection");
    }

    fn timeout(&mut self, expect: &mut Expect) {
        let due = self.server.poll_timeout().is_some_and(|d| d <= self.now);
        if due {
            let seconds = (UNIX_START + self.now.duration_since(self.start)).as_secs();
            let open = self
                .conns
                .iter()
                .filter(|c| c.state == ConnState::Open)
                .map(|c| c.id)
                .collect();
            expect.pings = Some((open, seconds));
        }
        self.server.handle_timeout(self.now);
        if due {
            let next = self.server.poll_timeout().expect("a ping deadline");
            assert!(next > self.now, "the ping deadline did not move past now");
        }
    }

    fn decide_stale(&mut self, which: usize, how: u8) {
        let now = self.now;
        let subs = self.stale_subs.len();
        let performs = self.stale_performs.len();
        let total = subs + performs + self.stale_conns.len();
        if total == 0 {
            return;
        }
        let which = which % total;
        if which >= subs && which < subs + performs {
            let token = self.stale_performs.swap_remove(which - subs);
            let result = match how % 2 {
                0 => self.server.complete_perform(
                    token,
                    PerformOutcome::new().broadcast("chat_lobby", JsonText::string("stale")),
                    now,
                ),
                _ => self.server.veto_perform(token, now),
            };
            assert_eq!(
                result,
                Err(UsageError::StaleDecision),
                "decision on a stale perform token"
            );
        } else if which < subs {
            let token = self.stale_subs.swap_remove(which);
            let result = match how % 3 {
                0 => self.server.accept_subscription(
                    token,
                    SubscriptionAccept::new().stream("chat_lobby"),
                    now,
                ),
                1 => self.server.reject_subscription(token, now),
                _ => self.server.abandon_subscription(token, now),
            };
            assert_eq!(
                result,
                Err(UsageError::StaleDecision),
                "decision on a stale subscription token"
            );
        } else {
            let token = self.stale_conns.swap_remove(which - subs - performs);
            let result = match how % 2 {
                0 => self
                    .server
                    .accept_connection(token, Identity::new("alice"), now),
                _ => self.server.reject_connection(token, now),
            };
            assert_eq!(
                result,
                Err(UsageError::StaleDecision),
                "decision on a stale connection token"
            );
        }
    }

    fn use_stale(&mut self, which: usize, how: u8) {
        let now = self.now;
        let conns = self.closed_conns.len();
        let total = conns + self.ended_subs.len();
        if total == 0 {
            return;
        }
        let which = which % total;
        if which < conns {
            let id = self.closed_conns[which];
            assert!(!self.server.contains(id));
            assert!(!self.server.is_open(id));
            assert_eq!(self.server.queued_bytes(id), 0);
            assert_eq!(self.server.identity(id), None);
            assert_eq!(self.server.subscriptions(id).count(), 0);
            let unknown = Err(UsageError::UnknownConnection);
            let result = match how % 10 {
                0 => self.server.handle_text(
                    id,
                    br#"{"command":"subscribe","identifier":"{\"channel\":\"X\"}"}"#,
                    now,
                ),
                1 => self.server.handle_binary(id, b"x", now),
                2 => self.server.handle_written(id, 1, now),
                3 => self.server.handle_close(id, now),
                4 => self.server.send_frame(id, &JsonText::string("x"), now),
                5 => self
                    .server
                    .disconnect(id, DisconnectReason::Remote, true, now),
                6 => self.server.set_expiry(id, Some(now), now),
                7 => self.server.set_identity(id, Identity::new("alice"), now),
                8 => self.server.join(id, "chat_lobby", envelope(0), now),
                _ => self.server.leave(id, "chat_lobby", None, now),
            };
            assert_eq!(result, unknown, "call with a closed connection's handle");
        } else {
            let id = self.ended_subs[which - conns];
            assert_eq!(
                self.server.identifier(id).map(|i| i.as_str().to_owned()),
                None
            );
            assert_eq!(self.server.connection_of(id), None);
            assert!(self.server.streams_of(id).is_empty());
            let unknown = Err(UsageError::UnknownSubscription);
            let result = match how % 5 {
                0 => self.server.transmit(id, &JsonText::string("x"), now),
                1 => self.server.unsubscribe(id, now),
                2 => self
                    .server
                    .stream_from(id, "chat_lobby", StreamMode::Json, now),
                3 => self.server.stop_stream_from(id, "chat_lobby", now),
                _ => self.server.stop_all_streams(id, now),
            };
            assert_eq!(result, unknown, "call with an ended subscription's handle");
        }
    }

    fn application_frame(&mut self) -> (JsonText, Value) {
        self.frame_seq += 1;
        let value = serde_json::json!({"type": "app", "seq": self.frame_seq, "html": "<&>"});
        let text = JsonText::from_value(&value).expect("encodes");
        (text, value)
    }
}
