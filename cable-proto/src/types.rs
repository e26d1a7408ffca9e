//! Handles, names, tokens and the core's outputs.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use crate::error::CommandError;
use crate::frame::{DisconnectReason, Frame};
use crate::identifier::Identifier;

/// A connection, as handed out by [`Server::handle_open`](crate::Server::handle_open).
/// Handles of closed connections are never reused (each slot has a generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnectionId {
    /// A dense number, unique among live connections (slots are reused after
    /// a close): suitable to index a host-side table.
    pub fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.index, self.generation)
    }
}

/// A subscription (pending or live) of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}.{}", self.index, self.generation)
    }
}

/// Who a connection belongs to: Rails' `connection_identifier`, the key for
/// targeting a user and for remote disconnects.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(Arc<str>);

impl Identity {
    /// An identity from its string.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// Rails' `connection_identifier` from the values of a connection's
    /// `identified_by` attributes (each already `to_gid_param` or `to_s`):
    /// sorted, then joined with `:`.
    ///
    /// ```
    /// use cable_proto::Identity;
    /// assert_eq!(Identity::from_identifiers(["b", "a"]).as_str(), "a:b");
    /// ```
    pub fn from_identifiers<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut values: Vec<String> = values.into_iter().map(|v| v.as_ref().to_owned()).collect();
        values.sort();
        Self(values.join(":").into())
    }

    /// The identity string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Identity").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Borrow<str> for Identity {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Identity {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// A stream (Rails' "broadcasting"): what broadcasts are addressed to.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(Arc<str>);

impl StreamName {
    /// A stream name from its string, used verbatim as Rails does.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StreamName").field(&self.as_str()).finish()
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Borrow<str> for StreamName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for StreamName {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for StreamName {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// How a subscription turns a stream's broadcast payload into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StreamMode {
    /// The payload is JSON text, spliced as the `message` (Rails' default
    /// stream handler).
    #[default]
    Json,
    /// The payload is sent as a JSON string, whatever it holds (Rails'
    /// `stream_from(name) { |payload| transmit payload }`).
    RawString,
}

/// The token of a connection waiting for the application's authentication.
/// Answer it with [`Server::accept_connection`](crate::Server::accept_connection)
/// or [`Server::reject_connection`](crate::Server::reject_connection).
#[must_use = "a pending connection must be accepted or rejected"]
#[derive(Debug, PartialEq, Eq)]
pub struct PendingConnection {
    pub(crate) connection: ConnectionId,
}

impl PendingConnection {
    /// The connection waiting for the decision.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }
}

/// A new connection: upgrade the socket (answering with `subprotocol`), then
/// decide on `pending`.
#[derive(Debug)]
pub struct Incoming {
    /// The new connection.
    pub connection: ConnectionId,
    /// The subprotocol to answer with; `None`: no `Sec-WebSocket-Protocol`
    /// header in the response.
    pub subprotocol: Option<String>,
    /// The authentication decision the core waits for.
    pub pending: PendingConnection,
}

/// The token of a subscription waiting for the application's authorization.
/// Answer it with [`Server::accept_subscription`](crate::Server::accept_subscription),
/// [`Server::reject_subscription`](crate::Server::reject_subscription) or
/// [`Server::abandon_subscription`](crate::Server::abandon_subscription).
#[must_use = "a pending subscription must be accepted, rejected or abandoned"]
#[derive(Debug, PartialEq, Eq)]
pub struct PendingSubscription {
    pub(crate) subscription: SubscriptionId,
}

impl PendingSubscription {
    /// The subscription waiting for the decision.
    pub fn subscription(&self) -> SubscriptionId {
        self.subscription
    }
}

/// A frame for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The connection to write to. Drop frames for connections already closed.
    pub connection: ConnectionId,
    /// What to write.
    pub frame: Frame,
}

/// A `message` command for a live subscription: run the channel's action.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What the core reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        pending: PendingSubscriptionEvent,
    },
    /// A client performed an action.
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
    /// A stream got its first subscriber on this server: subscribe to it
    /// upstream (e.g. Redis `SUBSCRIBE`).
    StreamStarted(StreamName),
    /// A stream lost its last subscriber on this server: unsubscribe upstream.
    StreamStopped(StreamName),
    /// A peer sent something the protocol does not allow. Nothing was sent
    /// unless the limit's policy said to disconnect.
    CommandFailed {
        /// The connection.
        connection: ConnectionId,
        /// What was wrong.
        error: CommandError,
    },
    /// The server began closing a connection: a disconnect frame and a close
    /// are queued.
    Disconnecting {
        /// The connection.
        connection: ConnectionId,
        /// Why.
        reason: DisconnectReason,
        /// The `reconnect` flag sent.
        reconnect: bool,
    },
    /// A connection is gone ([`Server::handle_close`](crate::Server::handle_close)).
    Closed {
        /// The connection.
        connection: ConnectionId,
        /// Its identity, if it had been accepted.
        identity: Option<Identity>,
    },
}

/// The decision token inside [`Event::SubscriptionRequested`]. Take it with
/// [`PendingSubscriptionEvent::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSubscriptionEvent(pub(crate) SubscriptionId);

impl PendingSubscriptionEvent {
    /// The decision token.
    pub fn take(self) -> PendingSubscription {
        PendingSubscription {
            subscription: self.0,
        }
    }

    /// The subscription waiting for the decision.
    pub fn subscription(&self) -> SubscriptionId {
        self.0
    }
}
