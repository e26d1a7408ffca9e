//! A host for tests: a server on a virtual clock, with helpers that drain
//! its outputs into plain values.
#![allow(dead_code, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use cable_proto::server::{
    Config, Event, Frame, PendingConnection, Perform, PerformOutcome, Protocol, Server,
    SubscriptionAccept,
};
use cable_proto::{
    CommandError, ConnectionId, HandshakeRequest, Identity, OriginPolicy, SubscriptionId,
};

/// The errors of the failed commands among `events`, in order.
pub fn failures(events: &[Event]) -> Vec<CommandError> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CommandFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

/// Unix time at the harness's start.
pub const UNIX_START: u64 = 1_700_000_000;

pub struct Host {
    pub server: Server,
    pub start: Instant,
    pub now: Instant,
}

/// What came out for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Text(String),
    Close(u16),
}

impl Host {
    pub fn new() -> Self {
        Self::with_config(Config {
            origins: OriginPolicy::allow_any(),
            ..Config::default()
        })
    }

    pub fn with_config(config: Config) -> Self {
        // The one clock read of the tests: the core never reads one.
        let start = Instant::now();
        Self {
            server: Server::new(config, start, Duration::from_secs(UNIX_START)),
            start,
            now: start,
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
    }

    /// Opens a connection (any origin) and leaves it pending.
    pub fn open_pending(&mut self) -> (ConnectionId, PendingConnection) {
        self.open_pending_as(Protocol::ActionCable)
    }

    /// Opens a connection of `protocol` (any origin) and leaves it pending.
    pub fn open_pending_as(&mut self, protocol: Protocol) -> (ConnectionId, PendingConnection) {
        let request = HandshakeRequest {
            host: Some("example.com"),
            origin: Some("http://example.com"),
            secure: false,
            protocols: &["actioncable-v1-json, actioncable-unsupported"],
        };
        let incoming = self
            .server
            .handle_open_as(&request, protocol, self.now)
            .unwrap();
        assert_eq!(incoming.protocol, protocol);
        (incoming.connection, incoming.pending)
    }

    /// Opens and accepts a connection of a custom protocol as `user`; it
    /// gets no welcome.
    pub fn connect_custom(&mut self, dialect: u16, user: &str) -> ConnectionId {
        let (conn, pending) = self.open_pending_as(Protocol::Custom(dialect));
        self.server
            .accept_connection(pending, Identity::new(user), self.now)
            .unwrap();
        assert_eq!(self.frames(conn), vec![]);
        conn
    }

    /// Opens and accepts a connection as `user`, and drains the welcome.
    pub fn connect(&mut self, user: &str) -> ConnectionId {
        let (conn, pending) = self.open_pending();
        self.server
            .accept_connection(pending, Identity::new(user), self.now)
            .unwrap();
        assert_eq!(
            self.frames(conn),
            vec![Out::Text(r#"{"type":"welcome"}"#.into())]
        );
        conn
    }

    pub fn send(&mut self, conn: ConnectionId, frame: &str) {
        self.server
            .handle_text(conn, frame.as_bytes(), self.now)
            .unwrap();
    }

    /// Subscribes `conn` to `identifier` and accepts with `streams`; drains
    /// the confirmation.
    pub fn subscribe(
        &mut self,
        conn: ConnectionId,
        identifier: &str,
        streams: &[&str],
    ) -> SubscriptionId {
        self.send(conn, &subscribe(identifier));
        let pending = match self.events().pop() {
            Some(Event::SubscriptionRequested { pending, .. }) => pending,
            other => panic!("expected a subscription request, got {other:?}"),
        };
        let sub = pending.subscription();
        let mut accept = SubscriptionAccept::new();
        for s in streams {
            accept = accept.stream(*s);
        }
        self.server
            .accept_subscription(pending, accept, self.now)
            .unwrap();
        assert_eq!(self.frames(conn), vec![Out::Text(confirm(identifier))]);
        // Stream start events are the test's business only when it asks.
        self.events();
        sub
    }

    /// Every queued transmit, in order, reported written.
    pub fn all_frames(&mut self) -> Vec<(ConnectionId, Out)> {
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit() {
            match t.frame {
                Frame::Text(bytes) => {
                    let _ = self
                        .server
                        .handle_written(t.connection, bytes.len(), self.now);
                    out.push((
                        t.connection,
                        Out::Text(String::from_utf8(bytes.to_vec()).unwrap()),
                    ));
                }
                Frame::Close { code, reason } => {
                    assert_eq!(reason, "");
                    out.push((t.connection, Out::Close(code)));
                }
            }
        }
        out
    }

    /// Drains every transmit and returns those of `conn` (asserting there
    /// were no others).
    pub fn frames(&mut self, conn: ConnectionId) -> Vec<Out> {
        let all = self.all_frames();
        assert!(
            all.iter().all(|(c, _)| *c == conn),
            "frames for other connections: {all:?}"
        );
        all.into_iter().map(|(_, f)| f).collect()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    /// The events so far, which must be exactly one perform.
    pub fn perform(&mut self) -> Perform {
        let mut events = self.events();
        match (events.pop(), events.is_empty()) {
            (Some(Event::Perform(perform)), true) => perform,
            (last, _) => panic!("expected one perform, got {events:?} then {last:?}"),
        }
    }

    /// Completes `perform` with an outcome that does nothing.
    pub fn complete(&mut self, perform: Perform) {
        self.server
            .complete_perform(perform.pending, PerformOutcome::new(), self.now)
            .unwrap();
    }

    /// Drains the events, completing every perform among them with an
    /// outcome that does nothing (in order: each may release the next);
    /// returns the events with the performs' `(action, data)` in their place.
    pub fn events_completing_performs(&mut self) -> Vec<Result<(String, String), Event>> {
        let mut out = Vec::new();
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::Perform(p) => {
                    out.push(Ok((p.action.to_string(), p.data.clone())));
                    self.complete(p);
                }
                other => out.push(Err(other)),
            }
        }
        out
    }
}

/// The JSON string literal of `text`, as JSON.stringify writes it.
pub fn lit(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

pub fn subscribe(identifier: &str) -> String {
    format!(
        r#"{{"command":"subscribe","identifier":{}}}"#,
        lit(identifier)
    )
}

pub fn unsubscribe(identifier: &str) -> String {
    format!(
        r#"{{"command":"unsubscribe","identifier":{}}}"#,
        lit(identifier)
    )
}

pub fn message(identifier: &str, data: &str) -> String {
    format!(
        r#"{{"command":"message","identifier":{},"data":{}}}"#,
        lit(identifier),
        lit(data)
    )
}

pub fn confirm(identifier: &str) -> String {
    format!(
        r#"{{"identifier":{},"type":"confirm_subscription"}}"#,
        lit(identifier)
    )
}

pub fn reject(identifier: &str) -> String {
    format!(
        r#"{{"identifier":{},"type":"reject_subscription"}}"#,
        lit(identifier)
    )
}

pub fn data_frame(identifier: &str, message_json: &str) -> String {
    format!(
        r#"{{"identifier":{},"message":{}}}"#,
        lit(identifier),
        message_json
    )
}

pub const CHAT: &str = r#"{"channel":"ChatChannel","room":"r1"}"#;
pub const CHAT_REORDERED: &str = r#"{"room":"r1","channel":"ChatChannel"}"#;
