//! Decisions the application owes the core, as tokens, and what an answer
//! carries: [`ConnectionAccept`], [`SubscriptionAccept`], [`PerformOutcome`].
//!
//! Tokens cannot be cloned: each is answered once. A connection has at most
//! one decision pending; its later commands wait for the answer. Each kind
//! can have a deadline ([`Config::decision_timeouts`](super::Config::decision_timeouts));
//! an answer after it is [`UsageError::DecisionExpired`](crate::UsageError::DecisionExpired).

use std::time::Instant;

use crate::frame::DisconnectReason;
use crate::json::JsonText;
use crate::types::{ConnectionId, Identity, StreamMode, StreamName, SubscriptionId};

/// The token of a connection waiting for the application's authentication.
/// Answer it with [`Server::accept_connection`](super::Server::accept_connection)
/// or [`Server::reject_connection`](super::Server::reject_connection).
#[must_use = "a pending connection must be accepted or rejected"]
#[derive(Debug, PartialEq, Eq)]
pub struct PendingConnection {
    pub(super) connection: ConnectionId,
    pub(super) seq: u32,
}

impl PendingConnection {
    /// The connection waiting for the decision.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }
}

/// The token of a subscription waiting for the application's authorization.
/// Answer it with [`Server::accept_subscription`](super::Server::accept_subscription),
/// [`Server::reject_subscription`](super::Server::reject_subscription) or
/// [`Server::abandon_subscription`](super::Server::abandon_subscription).
#[must_use = "a pending subscription must be accepted, rejected or abandoned"]
#[derive(Debug, PartialEq, Eq)]
pub struct PendingSubscription {
    pub(super) subscription: SubscriptionId,
    pub(super) connection: ConnectionId,
    pub(super) seq: u32,
}

impl PendingSubscription {
    /// The subscription waiting for the decision.
    pub fn subscription(&self) -> SubscriptionId {
        self.subscription
    }

    /// Its connection.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }
}

/// The token of a perform waiting for its outcome. Answer it with
/// [`Server::complete_perform`](super::Server::complete_perform) or
/// [`Server::veto_perform`](super::Server::veto_perform).
#[must_use = "a pending perform must be completed or vetoed"]
#[derive(Debug, PartialEq, Eq)]
pub struct PendingPerform {
    pub(super) subscription: SubscriptionId,
    pub(super) connection: ConnectionId,
    pub(super) seq: u32,
}

impl PendingPerform {
    /// The subscription the action runs on.
    pub fn subscription(&self) -> SubscriptionId {
        self.subscription
    }

    /// Its connection.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }
}

/// What a connection starts with when accepted.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cable_proto::server::ConnectionAccept;
/// use cable_proto::{Identity, JsonText};
///
/// /// Alice, whose token is valid for an hour from `now` (the host's clock).
/// fn alice(now: Instant) -> ConnectionAccept {
///     ConnectionAccept::new(Identity::new("alice"))
///         .expires_at(now + Duration::from_secs(3600))
///         .welcome_field("sid", JsonText::string("s-123"))
/// }
/// # let _ = alice;
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionAccept {
    pub(super) identity: Identity,
    pub(super) expires_at: Option<Instant>,
    pub(super) welcome: Vec<(Box<str>, JsonText)>,
    pub(super) transmissions: Vec<JsonText>,
}

impl ConnectionAccept {
    /// Accept as `identity`.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            expires_at: None,
            welcome: Vec::new(),
            transmissions: Vec::new(),
        }
    }

    /// The credential expires at `at`: then the connection gets
    /// `{"type":"disconnect","reason":"token_expired","reconnect":false}`
    /// and a close. Move it later with [`Server::set_expiry`](super::Server::set_expiry).
    pub fn expires_at(mut self, at: Instant) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Adds `"key":value` to the welcome frame, after `"type":"welcome"`
    /// (AnyCable's `sid`, say). Action Cable connections only.
    pub fn welcome_field(mut self, key: &str, value: JsonText) -> Self {
        self.welcome.push((key.into(), value));
        self
    }

    /// Sends `frame`, a whole frame, right after the welcome (the first
    /// frames of a [`Protocol::Custom`](super::Protocol::Custom) connection,
    /// which gets no welcome).
    pub fn transmit(mut self, frame: JsonText) -> Self {
        self.transmissions.push(frame);
        self
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

impl From<Identity> for ConnectionAccept {
    fn from(identity: Identity) -> Self {
        Self::new(identity)
    }
}

/// What a subscription starts with when accepted.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionAccept {
    pub(super) streams: Vec<(StreamName, StreamMode)>,
    pub(super) transmissions: Vec<JsonText>,
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

/// One broadcast of a [`PerformOutcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OutcomeBroadcast {
    pub(super) stream: StreamName,
    pub(super) payload: JsonText,
    pub(super) except_sender: bool,
}

/// What a perform does, applied all at once when the application completes
/// it ([`Server::complete_perform`](super::Server::complete_perform)), in
/// this order: streams stopped, streams started, transmissions to the
/// subscription, broadcasts, then the disconnect. A vetoed or expired
/// perform applies none of it.
///
/// ```
/// use cable_proto::server::PerformOutcome;
/// use cable_proto::JsonText;
/// let outcome = PerformOutcome::new()
///     .broadcast("chat_1", JsonText::new(r#"{"text":"hi"}"#).unwrap())
///     .broadcast_except_sender("chat_1_typing", JsonText::new(r#"{"typing":true}"#).unwrap());
/// # let _ = outcome;
/// ```
#[derive(Debug, Clone, Default)]
pub struct PerformOutcome {
    pub(super) stop_all_streams: bool,
    pub(super) stop: Vec<StreamName>,
    pub(super) start: Vec<(StreamName, StreamMode)>,
    pub(super) transmissions: Vec<JsonText>,
    pub(super) broadcasts: Vec<OutcomeBroadcast>,
    pub(super) disconnect: Option<(DisconnectReason, bool)>,
}

impl PerformOutcome {
    /// An outcome that does nothing (the action ran, with no effect on the
    /// wire).
    pub fn new() -> Self {
        Self::default()
    }

    /// Transmit `message` to the subscription (Rails' `transmit`).
    pub fn transmit(mut self, message: JsonText) -> Self {
        self.transmissions.push(message);
        self
    }

    /// Broadcast `payload` to `stream`.
    pub fn broadcast(mut self, stream: impl Into<StreamName>, payload: JsonText) -> Self {
        self.broadcasts.push(OutcomeBroadcast {
            stream: stream.into(),
            payload,
            except_sender: false,
        });
        self
    }

    /// Broadcast `payload` to `stream`, but not to the connection that
    /// performed (a typing indicator, a whisper).
    pub fn broadcast_except_sender(
        mut self,
        stream: impl Into<StreamName>,
        payload: JsonText,
    ) -> Self {
        self.broadcasts.push(OutcomeBroadcast {
            stream: stream.into(),
            payload,
            except_sender: true,
        });
        self
    }

    /// Start streaming from `stream` (Rails' `stream_from` in an action).
    pub fn stream(mut self, stream: impl Into<StreamName>) -> Self {
        self.start.push((stream.into(), StreamMode::Json));
        self
    }

    /// Start streaming from `stream`, payloads as JSON strings.
    pub fn stream_raw(mut self, stream: impl Into<StreamName>) -> Self {
        self.start.push((stream.into(), StreamMode::RawString));
        self
    }

    /// Stop streaming from `stream` (Rails' `stop_stream_from`).
    pub fn stop_stream(mut self, stream: impl Into<StreamName>) -> Self {
        self.stop.push(stream.into());
        self
    }

    /// Stop every stream of the subscription (Rails' `stop_all_streams`).
    pub fn stop_all_streams(mut self) -> Self {
        self.stop_all_streams = true;
        self
    }

    /// Close the connection afterwards with
    /// `{"type":"disconnect","reason":<reason>,"reconnect":<reconnect>}`.
    pub fn disconnect(mut self, reason: DisconnectReason, reconnect: bool) -> Self {
        self.disconnect = Some((reason, reconnect));
        self
    }
}
