//! Target `reference_app`: the reference app of cable-refapp
//! ([`ReferenceApp`]) driven through the core, with clients that speak its
//! channels and actions (and sometimes garbage), control calls
//! (`/broadcast`, `/notify`, `/disconnect`, `/restart`, `/stats`), closes
//! and time.
//!
//! The app takes every decision; the host checks:
//! - every frame has a known shape and a legal order ([`Wire`]);
//! - what each client believes it is subscribed to (confirmations minus
//!   `Unsubscribed`) is what the core lists, and a closing connection has no
//!   subscription;
//! - a `/broadcast` reaches as many subscriptions as the stream has
//!   subscribers, and only subscriptions the client holds;
//! - `subscription_count` and `stream_count` agree with the subscriptions'
//!   streams, `poll_timeout` never goes back in time;
//! - closing every connection leaves nothing behind.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use cable_proto::server::{Event, Server};
use cable_proto::{ConnectionId, HandshakeRequest};
use cable_refapp::ReferenceApp;
use serde_json::{json, Value};

use crate::frames::ServerFrame;
use crate::input::Input;
use crate::wire::{Seen, Wire};

/// Most operations one input runs.
pub const MAX_OPS: usize = 256;

const HOST: &str = "127.0.0.1:28080";

const PATHS: &[&str] = &[
    "/cable?token=alice",
    "/cable?token=bob",
    "/cable",
    "/cable?token=bad",
    "/cable?token=a%20b+c&token=carol",
];

const AUTHORIZATION: &[Option<&str>] = &[
    None,
    Some("Bearer dave"),
    Some("bearer   bad"),
    Some("Token x"),
];

const ORIGINS: &[Option<&str>] = &[
    Some("http://127.0.0.1:28080"),
    Some("http://allowed.example"),
    Some("http://localhost:3000"),
    Some("http://evil.example"),
    None,
];

const IDENTIFIERS: &[&str] = &[
    r#"{"channel":"ChatChannel","room":"lobby"}"#,
    r#"{"channel":"ChatChannel","room":"r1"}"#,
    r#"{"channel":"ChatChannel","room":"forbidden"}"#,
    r#"{"channel":"ChatChannel","room":[1,{"a":null}]}"#,
    r#"{"channel":"NotificationChannel"}"#,
    r#"{"channel":"GreetingChannel"}"#,
    r#"{"channel":"RawStreamChannel","name":"x"}"#,
    r#"{"channel":"FeedChannel"}"#,
    r#"{"channel":"BenchmarkChannel"}"#,
    r#"{"channel":"ApplicationCable::Channel"}"#,
    r#"{"channel":"NoSuchChannel"}"#,
];

const ACTIONS: &[&str] = &[
    "speak",
    "whoami",
    "echo",
    "boom",
    "transmit_string",
    "notify_me",
    "unsubscribed",
    "follow",
    "unfollow",
    "unfollow_all",
    "broadcast",
    "nope",
];

const STREAMS: &[&str] = &[
    "chat_lobby",
    "chat_r1",
    "raw_x",
    "feed_a",
    "feed_b",
    "bench_all",
    "notification:alice",
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut driver = Driver::new();
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        driver.op(&mut input);
        ops += 1;
    }
    driver.finish();
}

struct Driver {
    server: Server,
    app: ReferenceApp,
    wire: Wire,
    now: Instant,
    conns: Vec<ConnectionId>,
    /// What each client believes it is subscribed to.
    live: HashMap<ConnectionId, BTreeSet<String>>,
    closing: BTreeSet<ConnectionId>,
    last_deadline: Option<Instant>,
}

impl Driver {
    fn new() -> Self {
        let now = Instant::now();
        let config = ReferenceApp::config();
        let wire = Wire::new(config.limits.max_queued_bytes);
        let server = Server::new(config, now, Duration::from_secs(1_700_000_000));
        Self {
            last_deadline: server.poll_timeout(),
            server,
            app: ReferenceApp::new(),
            wire,
            now,
            conns: Vec::new(),
            live: HashMap::new(),
            closing: BTreeSet::new(),
        }
    }

    fn conn(&self, index: usize) -> Option<ConnectionId> {
        (!self.conns.is_empty()).then(|| self.conns[index % self.conns.len()])
    }

    fn op(&mut self, input: &mut Input<'_>) {
        let now = self.now;
        let mut expected_recipients = None;
        match input.byte() % 12 {
            0 | 1 => {
                let path = *input.pick(PATHS);
                let authorization = *input.pick(AUTHORIZATION);
                let origin = *input.pick(ORIGINS);
                let protocols: &[&str] = if input.bool() {
                    &["actioncable-v1-json, actioncable-unsupported"]
                } else {
                    &[]
                };
                let request = HandshakeRequest {
                    host: Some(HOST),
                    origin,
                    secure: false,
                    protocols,
                };
                if let Ok(incoming) = self.server.handle_open(&request, now) {
                    let id = incoming.connection;
                    self.wire.open(id);
                    self.conns.push(id);
                    self.live.insert(id, BTreeSet::new());
                    match self.app.authenticate(path, authorization) {
                        Some(identity) => {
                            self.server
                                .accept_connection(incoming.pending, identity, now)
                        }
                        None => self.server.reject_connection(incoming.pending, now),
                    }
                    .expect("deciding a new connection");
                }
            }
            2..=6 => {
                if let Some(id) = self.conn(input.below(256)) {
                    let frame = frame(input);
                    self.server
                        .handle_text(id, &frame, now)
                        .expect("a known connection");
                }
            }
            7 => {
                if let Some(id) = self.conn(input.below(256)) {
                    let len = input.below(256);
                    self.server
                        .handle_binary(id, &vec![1; len], now)
                        .expect("a known connection");
                }
            }
            8 => {
                if let Some(id) = self.conn(input.below(256)) {
                    self.close(id);
                }
            }
            9 => self.now += Duration::from_millis(u64::from(input.u16()) * 8),
            10 => {
                if let Some(deadline) = self.server.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.server.handle_timeout(self.now);
            }
            _ => {
                let path = match input.below(8) {
                    0 => format!("/broadcast?stream={}&text=hi", input.pick(STREAMS)),
                    1 => format!(
                        "/broadcast?stream={}&text={}&raw",
                        input.pick(STREAMS),
                        input.text(32)
                    ),
                    2 => "/notify?user=alice&text=%3Cb%3E".to_owned(),
                    3 => format!(
                        "/disconnect?user={}",
                        input.pick(&["alice", "bob", "anonymous", "nobody"])
                    ),
                    4 => "/restart".to_owned(),
                    5 => "/stats".to_owned(),
                    _ => input.text(64),
                };
                if let Some(stream) = path
                    .strip_prefix("/broadcast?stream=")
                    .and_then(|rest| rest.strip_suffix("&text=hi"))
                {
                    expected_recipients = Some(self.server.subscriber_count(stream));
                }
                if let Some((status, body)) = self.app.control(&mut self.server, &path, now) {
                    assert_eq!(status, 200);
                    serde_json::from_str::<Value>(&body).expect("control bodies are JSON");
                }
            }
        }
        let messages = self.settle();
        if let Some(expected) = expected_recipients {
            assert_eq!(
                messages, expected,
                "a broadcast reaches every subscriber of its stream"
            );
        }
        self.check();
    }

    fn close(&mut self, id: ConnectionId) {
        self.server
            .handle_close(id, self.now)
            .expect("a known connection");
        self.conns.retain(|&c| c != id);
        self.settle();
        let left = self.live.remove(&id).unwrap_or_default();
        assert!(
            left.is_empty(),
            "{id} closed with subscriptions {left:?} not ended"
        );
        self.closing.remove(&id);
        self.wire.forget(id);
    }

    /// Lets the app handle everything and writes every frame; returns how
    /// many message frames went out.
    fn settle(&mut self) -> usize {
        let mut messages = 0;
        loop {
            let seen = self.wire.drain(&mut self.server);
            let confirmed_later: Vec<(ConnectionId, String)> = seen
                .iter()
                .filter_map(|s| match s {
                    Seen::Frame(c, ServerFrame::Confirm(i)) => Some((*c, i.clone())),
                    _ => None,
                })
                .collect();
            let mut written: HashMap<ConnectionId, ()> = HashMap::new();
            for item in &seen {
                match item {
                    Seen::Frame(c, frame) => {
                        written.insert(*c, ());
                        let live = self.live.get_mut(c).expect("a known connection");
                        match frame {
                            ServerFrame::Confirm(i) => {
                                assert!(live.insert(i.clone()), "{c} confirmed twice for {i}");
                            }
                            ServerFrame::Reject(i) => {
                                assert!(!live.contains(i), "{c} rejected while subscribed to {i}");
                            }
                            ServerFrame::Message { identifier, .. } => {
                                messages += 1;
                                assert!(
                                    live.contains(identifier)
                                        || confirmed_later.contains(&(*c, identifier.clone())),
                                    "message for {identifier} on {c}, not subscribed"
                                );
                            }
                            ServerFrame::Application(v) => {
                                panic!("the reference app sends no whole frames: {v}")
                            }
                            _ => {}
                        }
                    }
                    Seen::Farewell { connection, .. } => {
                        self.closing.insert(*connection);
                    }
                    Seen::Custom(..) | Seen::Closed(_) => {
                        unreachable!("no connection of a custom protocol here")
                    }
                }
            }
            // The host writes everything at once.
            for c in written.keys() {
                let queued = self.wire.queued(*c);
                self.server
                    .handle_written(*c, queued, self.now)
                    .expect("a known connection");
                self.wire.written(*c, queued);
            }
            let events: Vec<Event> = std::iter::from_fn(|| self.server.poll_event()).collect();
            if seen.is_empty() && events.is_empty() {
                return messages;
            }
            for event in events {
                match &event {
                    Event::Unsubscribed {
                        connection,
                        identifier,
                        ..
                    } => {
                        let live = self.live.get_mut(connection).expect("a known connection");
                        assert!(
                            live.remove(identifier.as_str()),
                            "Unsubscribed {identifier} on {connection}, which the client does not hold"
                        );
                    }
                    Event::Closed { connection, .. } => {
                        assert!(
                            !self.conns.contains(connection),
                            "Closed for an open connection"
                        );
                    }
                    _ => {}
                }
                self.app.handle_event(&mut self.server, event, self.now);
            }
        }
    }

    fn check(&mut self) {
        let deadline = self.server.poll_timeout();
        assert!(
            deadline >= self.last_deadline,
            "poll_timeout went back in time"
        );
        self.last_deadline = deadline;
        self.wire.check_queued(&self.server);
        let mut subscriptions = 0;
        let mut streams = BTreeSet::new();
        for &c in &self.conns {
            let subs: Vec<_> = self.server.subscriptions(c).collect();
            subscriptions += subs.len();
            let live: BTreeSet<String> = subs
                .iter()
                .filter(|(_, _, live)| *live)
                .map(|(_, i, _)| i.as_str().to_owned())
                .collect();
            assert_eq!(
                live, self.live[&c],
                "the core's subscriptions of {c} against the client's"
            );
            assert!(
                live.len() == subs.len(),
                "a subscription of {c} is still pending after the app decided"
            );
            if self.closing.contains(&c) {
                assert!(subs.is_empty(), "closing {c} keeps subscriptions");
            }
            for (id, _, _) in &subs {
                streams.extend(
                    self.server
                        .streams_of(*id)
                        .into_iter()
                        .map(|s| s.as_str().to_owned()),
                );
            }
        }
        assert_eq!(
            self.server.subscription_count(),
            subscriptions,
            "subscription_count"
        );
        assert_eq!(self.server.stream_count(), streams.len(), "stream_count");
        assert_eq!(
            self.server.connection_count(),
            self.conns.len(),
            "connection_count"
        );
    }

    fn finish(mut self) {
        while let Some(&id) = self.conns.first() {
            self.close(id);
        }
        self.check();
        assert_eq!(self.server.subscription_count(), 0);
        assert_eq!(self.server.stream_count(), 0);
        assert_eq!(self.server.connection_count(), 0);
    }
}

/// A client frame in the reference app's vocabulary, or fuzzer bytes.
fn frame(input: &mut Input<'_>) -> Vec<u8> {
    let identifier = *input.pick(IDENTIFIERS);
    let text = match input.below(6) {
        0 | 1 => json!({"command": "subscribe", "identifier": identifier}),
        2 => json!({"command": "unsubscribe", "identifier": identifier}),
        3 | 4 => {
            let action = *input.pick(ACTIONS);
            let data = match input.below(3) {
                0 => json!({"action": action, "text": input.text(16)}),
                1 => json!({"action": action, "name": *input.pick(&["a", "b", "events", "x"])}),
                _ => json!({"text": "no action", "n": [1, 2]}),
            };
            json!({"command": "message", "identifier": identifier, "data": data.to_string()})
        }
        _ => return input.bytes(255).to_vec(),
    };
    text.to_string().into_bytes()
}
