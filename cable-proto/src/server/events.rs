//! What the server state machine hands the host: frames to write, events
//! for the application.

use bytes::Bytes;

use crate::error::CommandError;
use crate::frame::{DisconnectReason, Frame};
use crate::identifier::Identifier;
use crate::json::JsonText;
use crate::types::{ConnectionId, Identity, StreamName, SubscriptionId};

use super::decisions::{PendingConnection, PendingPerform, PendingSubscription};
use super::protocol::Protocol;

/// A frame for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The connection to write to. Drop frames for connections already closed.
    pub connection: ConnectionId,
    /// What to write.
    pub frame: Frame,
}

/// A new connection: upgrade the socket (answering with `subprotocol`), then
/// decide on `pending`.
#[derive(Debug)]
pub struct Incoming {
    /// The new connection.
    pub connection: ConnectionId,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// The subprotocol to answer with; `None`: no `Sec-WebSocket-Protocol`
    /// header in the response.
    pub subprotocol: Option<String>,
    /// The authentication decision the core waits for.
    pub pending: PendingConnection,
}

/// A `message` command for a live subscription: run the channel's action,
/// then answer [`pending`](Self::pending) with
/// [`Server::complete_perform`](super::Server::complete_perform) or
/// [`Server::veto_perform`](super::Server::veto_perform). The connection's
/// later commands wait for the answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Perform {
    /// The connection it came on.
    pub connection: ConnectionId,
    /// The subscription it addresses.
    pub subscription: SubscriptionId,
    /// The connection's identity.
    pub identity: Identity,
    /// The subscription's identifier.
    pub identifier: Identifier,
    /// The action: `data.action`, or `receive` when it is missing, null or
    /// empty (Rails' `extract_action`).
    pub action: Box<str>,
    /// The `data` JSON text (an object, `action` included, as Rails passes it).
    pub data: String,
    /// The decision token.
    pub pending: PendingPerform,
}

impl Perform {
    /// The data decoded as `T`.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.data)
    }

    /// The data as a JSON value.
    pub fn data_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_default()
    }
}

/// Why a live subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsubscribeCause {
    /// The client sent `unsubscribe`.
    Command,
    /// The connection closed.
    ConnectionClosed,
    /// The server disconnected the connection.
    Disconnected,
    /// The application removed it.
    Application,
}

/// A decision that passed its deadline, and what the core did instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiredDecision {
    /// The connection's authentication: it was rejected as unauthorized
    /// (`{"type":"disconnect","reason":"unauthorized","reconnect":false}` and
    /// a close).
    Connection,
    /// A subscription's authorization: it was rejected
    /// (`reject_subscription`).
    Subscription {
        /// The subscription refused.
        subscription: SubscriptionId,
        /// Its identifier.
        identifier: Identifier,
    },
    /// A perform: it was vetoed (nothing of its outcome is applied).
    Perform,
}

/// What the core reports to the application.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client asked to subscribe: authorize it (Rails' `subscribed`).
    /// Commands of that connection wait until the decision.
    SubscriptionRequested {
        /// The connection.
        connection: ConnectionId,
        /// The connection's identity.
        identity: Identity,
        /// The requested identifier.
        identifier: Identifier,
        /// The decision token.
        pending: PendingSubscription,
    },
    /// A client performed an action. Commands of that connection wait until
    /// the decision.
    Perform(Perform),
    /// A live subscription ended (Rails' `unsubscribed`). Its streams are gone.
    Unsubscribed {
        /// The connection.
        connection: ConnectionId,
        /// The subscription that ended.
        subscription: SubscriptionId,
        /// The connection's identity.
        identity: Identity,
        /// Its identifier.
        identifier: Identifier,
        /// Why it ended.
        cause: UnsubscribeCause,
    },
    /// A frame arrived on a [`Protocol::Custom`] connection: its protocol
    /// layer parses it. Frames that arrive before the connection is accepted
    /// are held and come out, in order, once it is.
    Received {
        /// The connection.
        connection: ConnectionId,
        /// The frame's payload.
        frame: Bytes,
        /// A binary frame (else text, valid UTF-8 as the WebSocket layer
        /// checked).
        binary: bool,
    },
    /// A stream got its first subscriber on this server: subscribe to it
    /// upstream (e.g. Redis `SUBSCRIBE`).
    StreamStarted(StreamName),
    /// A stream lost its last subscriber on this server: unsubscribe upstream.
    StreamStopped(StreamName),
    /// The application broadcast `payload` to `stream` (a perform's
    /// outcome, a dialect's publish) and
    /// [`Config::publish_upstream`](super::Config::publish_upstream) is on:
    /// nothing was delivered; the host carries it to every node, this one
    /// included, and each delivers it with
    /// [`Server::broadcast`](super::Server::broadcast) (or
    /// [`Server::broadcast_except`](super::Server::broadcast_except) where
    /// `except` is one of its connections).
    Publish {
        /// The stream.
        stream: StreamName,
        /// The payload (JSON text).
        payload: JsonText,
        /// The connection that must not get it (the sender of a
        /// broadcast-except-sender).
        except: Option<ConnectionId>,
    },
    /// A stream was not reported ready
    /// ([`Server::stream_ready`](super::Server::stream_ready)) within
    /// [`Config::upstream_ready_timeout`](super::Config::upstream_ready_timeout):
    /// the confirmations that waited for it went out anyway.
    UpstreamTimedOut(StreamName),
    /// A decision passed its deadline
    /// ([`Config::decision_timeouts`](super::Config::decision_timeouts)); its
    /// token is dead (answering it is [`UsageError::DecisionExpired`](crate::UsageError::DecisionExpired)).
    DecisionExpired {
        /// The connection.
        connection: ConnectionId,
        /// Which decision, and what the core did.
        decision: ExpiredDecision,
    },
    /// A peer sent something the protocol does not allow. Nothing was sent
    /// unless the limit's policy said to disconnect.
    CommandFailed {
        /// The connection.
        connection: ConnectionId,
        /// What was wrong.
        error: CommandError,
    },
    /// The server began closing a connection: a disconnect frame (Action
    /// Cable only) and a close are queued.
    Disconnecting {
        /// The connection.
        connection: ConnectionId,
        /// Why.
        reason: DisconnectReason,
        /// The `reconnect` flag sent.
        reconnect: bool,
    },
    /// A client asked for history (AnyCable's extended protocol): answer
    /// with [`Server::complete_history`](super::Server::complete_history).
    HistoryRequested(super::HistoryRequest),
    /// A presence command (AnyCable's extended protocol) of a subscription
    /// allowed to use presence.
    PresenceRequested(super::PresenceRequest),
    /// A session came back ([`Server::restore_session`](super::Server::restore_session)).
    SessionRestored(super::SessionRestored),
    /// A connection is gone ([`Server::handle_close`](super::Server::handle_close)).
    Closed {
        /// The connection.
        connection: ConnectionId,
        /// Its identity, if it had been accepted.
        identity: Option<Identity>,
    },
}
