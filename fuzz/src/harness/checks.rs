//! The invariant checks after every operation: every frame and event the
//! core gives out is drained and checked against the operation's
//! expectations and the model (which it updates), then the core's queries
//! are compared with the model.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cable_proto::server::{Delivery, Event, UnsubscribeCause};
use cable_proto::{CommandError, ConnectionId, Identity, SubscriptionId};
use serde_json::Value;

use crate::frames::ServerFrame;
use crate::wire::Seen;

use super::expected::{Broadcasted, Expect};
use super::model::{ConnState, PerformModel, SubModel};
use super::op::STREAMS;
use super::Harness;

impl Harness {
    /// Drains the core, updates the model and checks everything.
    pub(super) fn settle(
        &mut self,
        mut expect: Expect,
        subs_before: BTreeSet<(ConnectionId, String)>,
        broadcast: Option<(Broadcasted, Option<Delivery>)>,
    ) {
        let seen = self.wire.drain(&mut self.server);
        let events: Vec<Event> = std::iter::from_fn(|| self.server.poll_event()).collect();

        // Events, in order.
        let mut disconnecting: Vec<(ConnectionId, String, bool)> = Vec::new();
        let mut requested: BTreeSet<(ConnectionId, String)> = BTreeSet::new();
        let mut closed_now: Option<ConnectionId> = None;
        for event in events {
            if let Some(closed) = closed_now {
                panic!("event after {closed} closed: {event:?}");
            }
            match event {
                Event::SubscriptionRequested {
                    connection,
                    identity,
                    identifier,
                    pending,
                } => {
                    let model = self.conn_model(connection);
                    assert_eq!(
                        model.state,
                        ConnState::Open,
                        "subscription on a connection not open"
                    );
                    assert_eq!(
                        Some(identity.as_str()),
                        model.identity.as_deref(),
                        "identity"
                    );
                    let raw = identifier.as_str().to_owned();
                    assert!(
                        raw.len() <= self.limits.max_identifier_bytes,
                        "identifier over the limit"
                    );
                    assert!(
                        identifier.param("channel").is_some_and(Value::is_string),
                        "identifier without a channel accepted"
                    );
                    let of_conn: Vec<&SubModel> =
                        self.subs.iter().filter(|s| s.conn == connection).collect();
                    assert!(
                        of_conn.iter().all(|s| s.identifier != raw),
                        "second subscription with identifier {raw} on {connection}"
                    );
                    assert!(
                        of_conn.iter().all(|s| s.live()),
                        "a second pending subscription on {connection}: commands must wait"
                    );
                    assert!(
                        of_conn.len() < self.limits.max_subscriptions,
                        "too many subscriptions"
                    );
                    assert!(
                        self.performs.iter().all(|p| p.conn != connection),
                        "a subscription requested on {connection} while a perform is pending: commands must wait"
                    );
                    let token = pending;
                    assert_eq!(token.connection(), connection, "token's connection");
                    requested.insert((connection, raw.clone()));
                    self.subs.push(SubModel {
                        id: token.subscription(),
                        conn: connection,
                        identifier: raw,
                        token: Some(token),
                        streams: Vec::new(),
                    });
                }
                Event::Perform(perform) => {
                    let at = self.sub_pos(perform.subscription).unwrap_or_else(|| {
                        panic!("perform on an unknown subscription: {perform:?}")
                    });
                    let sub = &self.subs[at];
                    assert!(sub.live(), "perform on a pending subscription");
                    assert_eq!(sub.conn, perform.connection);
                    assert_eq!(sub.identifier, perform.identifier.as_str());
                    let data: Value = serde_json::from_str(&perform.data).unwrap_or_else(|e| {
                        // Valid JSON `Value` refuses (lone surrogates) is fine.
                        serde_json::from_str::<serde::de::IgnoredAny>(&perform.data)
                            .unwrap_or_else(|_| panic!("perform data is not JSON ({e})"));
                        Value::Object(Default::default())
                    });
                    if let Some(action) = data.get("action").and_then(Value::as_str) {
                        if !action.is_empty() {
                            assert_eq!(&*perform.action, action, "action");
                        }
                    }
                    assert!(
                        self.subs
                            .iter()
                            .all(|s| s.conn != perform.connection || s.live()),
                        "a perform on {} while a subscription is pending: commands must wait",
                        perform.connection
                    );
                    assert!(
                        self.performs.iter().all(|p| p.conn != perform.connection),
                        "a second perform pending on {}: commands must wait",
                        perform.connection
                    );
                    assert_eq!(perform.pending.connection(), perform.connection);
                    assert_eq!(perform.pending.subscription(), perform.subscription);
                    self.performs.push(PerformModel {
                        conn: perform.connection,
                        sub: perform.subscription,
                        token: perform.pending,
                    });
                }
                Event::Unsubscribed {
                    connection,
                    subscription,
                    identifier,
                    cause,
                    ..
                } => {
                    let at = self.sub_pos(subscription).unwrap_or_else(|| {
                        panic!("unsubscribed an unknown subscription {subscription}")
                    });
                    let sub = self.subs.remove(at);
                    assert!(sub.live(), "Unsubscribed for a pending subscription");
                    assert_eq!(sub.conn, connection);
                    assert_eq!(sub.identifier, identifier.as_str());
                    self.ended_subs.push(sub.id);
                    match cause {
                        UnsubscribeCause::Command => {}
                        UnsubscribeCause::Disconnected => assert_eq!(
                            self.conn_model(connection).state,
                            ConnState::Closing,
                            "Disconnected cause on a connection not closing"
                        ),
                        other => {
                            assert_eq!(Some(other), expect.unsubscribe_cause, "unsubscribe cause")
                        }
                    }
                }
                Event::StreamStarted(name) => {
                    assert!(
                        self.streams.insert(name.as_str().to_owned()),
                        "stream {name} started twice"
                    );
                }
                Event::StreamStopped(name) => {
                    assert!(
                        self.streams.remove(name.as_str()),
                        "stream {name} stopped but not started"
                    );
                }
                Event::CommandFailed { connection, error } => {
                    let _ = self.conn_model(connection);
                    let shown = error.to_string();
                    assert!(
                        shown.len() <= 1024,
                        "error message of {} bytes",
                        shown.len()
                    );
                    if let CommandError::FrameTooLarge { len, limit } = error {
                        assert!(len > limit);
                    }
                }
                Event::Disconnecting {
                    connection,
                    reason,
                    reconnect,
                } => {
                    let model = self.conn_model(connection);
                    assert_ne!(
                        model.state,
                        ConnState::Closing,
                        "{connection} disconnected twice"
                    );
                    model.state = ConnState::Closing;
                    model.joins.clear();
                    if let Some(token) = model.token.take() {
                        self.stale_conns.push(token);
                    }
                    self.stale_performs(connection);
                    disconnecting.push((connection, reason.as_str().to_owned(), reconnect));
                    // Pending subscriptions go without a word.
                    let mut i = 0;
                    while i < self.subs.len() {
                        if self.subs[i].conn == connection && !self.subs[i].live() {
                            let sub = self.subs.remove(i);
                            self.ended_subs.push(sub.id);
                            self.stale_subs.push(sub.token.expect("pending"));
                        } else {
                            i += 1;
                        }
                    }
                }
                Event::Closed {
                    connection,
                    identity,
                } => {
                    assert_eq!(
                        expect.closing,
                        Some(connection),
                        "Closed for a connection not closed by the host"
                    );
                    let at = self
                        .conns
                        .iter()
                        .position(|c| c.id == connection)
                        .expect("known connection");
                    let model = self.conns.remove(at);
                    assert_eq!(
                        identity.as_ref().map(Identity::as_str),
                        model.identity.as_deref()
                    );
                    if let Some(token) = model.token {
                        self.stale_conns.push(token);
                    }
                    self.stale_performs(connection);
                    let mut i = 0;
                    while i < self.subs.len() {
                        if self.subs[i].conn == connection {
                            let sub = self.subs.remove(i);
                            assert!(
                                !sub.live(),
                                "live subscription {} survived its connection {connection}",
                                sub.id
                            );
                            self.ended_subs.push(sub.id);
                            self.stale_subs.push(sub.token.expect("pending"));
                        } else {
                            i += 1;
                        }
                    }
                    self.wire.forget(connection);
                    self.closed_conns.push(connection);
                    closed_now = Some(connection);
                }
                other => panic!("unknown event {other:?}"),
            }
        }
        if let Some(id) = expect.closing {
            assert_eq!(closed_now, Some(id), "handle_close without Closed");
        }

        // Frames, in order.
        let mut messages: HashMap<ConnectionId, Vec<(String, Value, String)>> = HashMap::new();
        let mut pinged: BTreeSet<ConnectionId> = BTreeSet::new();
        let mut farewells: Vec<(ConnectionId, String, bool)> = Vec::new();
        let mut enveloped: HashMap<ConnectionId, Vec<Value>> = HashMap::new();
        for item in seen {
            match item {
                Seen::Farewell {
                    connection,
                    reason,
                    reconnect,
                } => farewells.push((connection, reason, reconnect)),
                Seen::Frame(connection, frame) => match frame {
                    ServerFrame::Welcome => assert!(
                        expect.welcomed.contains(&connection),
                        "welcome on {connection} not accepted now"
                    ),
                    ServerFrame::Ping(seconds) => {
                        let (open, expected) = expect.pings.as_ref().unwrap_or_else(|| {
                            panic!("ping outside a due timeout on {connection}")
                        });
                        assert_eq!(seconds, *expected, "ping seconds");
                        assert!(open.contains(&connection), "ping to {connection}, not open");
                        assert!(pinged.insert(connection), "two pings on {connection}");
                    }
                    ServerFrame::Confirm(identifier) => {
                        let key = (connection, identifier);
                        let at = expect
                            .confirmed
                            .iter()
                            .position(|k| *k == key)
                            .unwrap_or_else(|| panic!("unexpected confirmation {key:?}"));
                        expect.confirmed.remove(at);
                        // Transmissions of `subscribed` come first.
                        assert!(
                            expect
                                .messages
                                .iter()
                                .all(|(c, i, _, _)| (c, i) != (&key.0, &key.1)),
                            "confirmation before the subscription's transmissions"
                        );
                    }
                    ServerFrame::Reject(identifier) => {
                        let key = (connection, identifier);
                        let at = expect
                            .rejected
                            .iter()
                            .position(|k| *k == key)
                            .unwrap_or_else(|| panic!("unexpected rejection {key:?}"));
                        expect.rejected.remove(at);
                    }
                    ServerFrame::Message {
                        identifier,
                        message,
                        raw,
                    } => {
                        let key = (connection, identifier.clone());
                        assert!(
                            subs_before.contains(&key) || requested.contains(&key),
                            "message for {identifier} on {connection}, which has no such subscription"
                        );
                        if let Some(at) = expect.messages.iter().position(|(c, i, v, _)| {
                            *c == connection && *i == identifier && *v == message
                        }) {
                            let (_, _, value, exact) = expect.messages.remove(at);
                            assert_eq!(message, value, "transmitted message");
                            if let Some(exact) = exact {
                                assert_eq!(raw, exact, "transmitted message spliced as given");
                            }
                        } else {
                            messages
                                .entry(connection)
                                .or_default()
                                .push((identifier, message, raw));
                        }
                    }
                    ServerFrame::Application(value) => {
                        match expect
                            .application
                            .iter()
                            .position(|(c, v)| *c == connection && *v == value)
                        {
                            Some(at) => {
                                expect.application.remove(at);
                            }
                            None => enveloped.entry(connection).or_default().push(value),
                        }
                    }
                    ServerFrame::Disconnect { .. } => unreachable!("checked by the wire"),
                },
                Seen::Custom(..) | Seen::Closed(_) => {
                    unreachable!("no connection of a custom protocol here")
                }
            }
        }

        // Every disconnect has its farewell and the other way round.
        let mut farewell_keys = farewells.clone();
        farewell_keys.sort();
        let mut disconnect_keys = disconnecting.clone();
        disconnect_keys.sort();
        assert_eq!(
            farewell_keys, disconnect_keys,
            "farewell frames against Disconnecting events"
        );
        let overflowed: BTreeSet<ConnectionId> = disconnecting
            .iter()
            .filter(|(_, reason, _)| reason == "too_slow")
            .map(|(c, _, _)| *c)
            .collect();
        for (connection, _, _) in &disconnecting {
            assert!(
                self.subs.iter().all(|s| s.conn != *connection),
                "subscription survived the disconnect of {connection}"
            );
        }

        // What was expected and did not come must be excused by an overflow.
        let excused = |c: &ConnectionId| overflowed.contains(c);
        for id in &expect.welcomed {
            assert!(self.wire.welcomed(*id) || excused(id), "no welcome on {id}");
        }
        for (c, i) in expect.confirmed.iter().chain(&expect.rejected) {
            assert!(excused(c), "no answer to the subscription {i} on {c}");
        }
        for (c, i, _, _) in &expect.messages {
            assert!(excused(c), "message for {i} on {c} missing");
        }
        for (c, v) in &expect.application {
            assert!(excused(c), "frame {v} on {c} missing");
        }
        if let Some((open, _)) = &expect.pings {
            for c in open {
                assert!(pinged.contains(c) || excused(c), "no ping on {c}");
            }
        }

        // Broadcasts reach exactly the model's subscribers.
        if let Some((expected, delivery)) = broadcast {
            if let (Some(targets), Some(delivery)) = (&expected.targets, delivery) {
                let missed = targets.iter().filter(|c| excused(c)).count();
                assert_eq!(
                    delivery.recipients + missed,
                    targets.len(),
                    "send_frame_to_identity reach"
                );
            }
            if let (Some(encoded), Some(delivery)) = (expected.encoded, delivery) {
                assert_eq!(
                    delivery.encoded, encoded,
                    "frames encoded: one per group (identifier and mode, or envelope)"
                );
            }
            if let (Some(skipped), Some(delivery)) = (expected.skipped, delivery) {
                assert_eq!(
                    delivery.skipped_invalid_json, skipped,
                    "skipped for invalid JSON"
                );
            }
            if let (Some(too_large), Some(delivery)) = (expected.too_large, delivery) {
                assert_eq!(
                    delivery.skipped_too_large, too_large,
                    "skipped as larger than a queue may hold"
                );
            }
            let mut recipients = 0;
            let conns: BTreeSet<ConnectionId> = expected
                .frames
                .keys()
                .chain(messages.keys())
                .copied()
                .collect();
            for c in conns {
                let mut want: Vec<(String, Value, Option<String>)> =
                    expected.frames.get(&c).cloned().unwrap_or_default();
                let got: Vec<(String, Value, String)> = messages.remove(&c).unwrap_or_default();
                recipients += got.len();
                for (identifier, message, raw) in &got {
                    let at = want
                        .iter()
                        .position(|(i, m, _)| i == identifier && m == message)
                        .unwrap_or_else(|| {
                            panic!("broadcast frame {identifier} {message} on {c} not expected (expected {want:?})")
                        });
                    let (_, _, exact) = want.remove(at);
                    if let Some(exact) = exact {
                        assert_eq!(raw, &exact, "broadcast payload spliced as given");
                    }
                }
                assert!(
                    want.is_empty() || excused(&c),
                    "broadcast frames {want:?} missing on {c}"
                );
            }
            let conns: BTreeSet<ConnectionId> = expected
                .enveloped
                .keys()
                .chain(enveloped.keys())
                .copied()
                .collect();
            for c in conns {
                let mut want = expected.enveloped.get(&c).cloned().unwrap_or_default();
                let got = enveloped.remove(&c).unwrap_or_default();
                recipients += got.len();
                for value in &got {
                    let at = want.iter().position(|v| v == value).unwrap_or_else(|| {
                        panic!("broadcast frame {value} on {c} not expected (expected {want:?})")
                    });
                    want.remove(at);
                }
                assert!(
                    want.is_empty() || excused(&c),
                    "enveloped frames {want:?} missing on {c}"
                );
            }
            if let (None, Some(delivery)) = (&expected.targets, delivery) {
                assert_eq!(delivery.recipients, recipients, "Delivery::recipients");
            }
        }
        assert!(
            messages.is_empty(),
            "unexpected message frames {messages:?}"
        );
        assert!(enveloped.is_empty(), "unexpected frames {enveloped:?}");

        self.check_model();
    }

    /// The core's queries against the model.
    fn check_model(&mut self) {
        let deadline = self.server.poll_timeout();
        assert!(
            deadline >= self.last_deadline,
            "poll_timeout went back in time"
        );
        self.last_deadline = deadline;

        self.wire.check_queued(&self.server);
        assert_eq!(
            self.server.connection_count(),
            self.conns.len(),
            "connection_count"
        );
        assert_eq!(
            self.server.subscription_count(),
            self.subs.len(),
            "subscription_count"
        );
        for conn in &self.conns {
            assert_eq!(
                self.server.is_open(conn.id),
                conn.state == ConnState::Open,
                "is_open"
            );
            assert!(self.server.contains(conn.id));
            let identity = if conn.state == ConnState::Pending {
                None
            } else {
                conn.identity.as_deref()
            };
            if conn.state != ConnState::Closing {
                assert_eq!(
                    self.server.identity(conn.id).map(Identity::as_str),
                    identity,
                    "identity"
                );
            }
            let mut core: Vec<(SubscriptionId, String, bool)> = self
                .server
                .subscriptions(conn.id)
                .map(|(id, identifier, live)| (id, identifier.as_str().to_owned(), live))
                .collect();
            core.sort();
            let mut model: Vec<(SubscriptionId, String, bool)> = self
                .subs
                .iter()
                .filter(|s| s.conn == conn.id)
                .map(|s| (s.id, s.identifier.clone(), s.live()))
                .collect();
            model.sort();
            assert_eq!(core, model, "subscriptions of {}", conn.id);
        }
        let mut per_stream: BTreeMap<&str, usize> = BTreeMap::new();
        for sub in &self.subs {
            assert_eq!(self.server.connection_of(sub.id), Some(sub.conn));
            assert_eq!(
                self.server.identifier(sub.id).map(|i| i.as_str()),
                Some(sub.identifier.as_str())
            );
            let mut core: Vec<String> = self
                .server
                .streams_of(sub.id)
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            core.sort();
            let mut model: Vec<String> = sub.streams.iter().map(|(n, _)| n.clone()).collect();
            model.sort();
            assert_eq!(core, model, "streams of {}", sub.id);
            for (name, _) in &sub.streams {
                *per_stream.entry(name).or_default() += 1;
            }
        }
        for conn in &self.conns {
            let mut core: Vec<String> = self
                .server
                .joined_streams(conn.id)
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            core.sort();
            let mut model: Vec<String> = conn.joins.iter().map(|(n, _)| n.clone()).collect();
            model.sort();
            assert_eq!(core, model, "joined streams of {}", conn.id);
            for (name, _) in &conn.joins {
                *per_stream.entry(name).or_default() += 1;
            }
        }
        assert_eq!(self.server.stream_count(), per_stream.len(), "stream_count");
        let reported: Vec<&str> = self.streams.iter().map(String::as_str).collect();
        let model: Vec<&str> = per_stream.keys().copied().collect();
        assert_eq!(
            reported, model,
            "StreamStarted/StreamStopped against the model's streams"
        );
        for name in STREAMS {
            assert_eq!(
                self.server.subscriber_count(name),
                per_stream.get(name).copied().unwrap_or(0),
                "subscriber_count({name})"
            );
        }
    }
}
