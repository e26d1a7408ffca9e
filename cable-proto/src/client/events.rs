//! What comes out of the consumer besides frames: instructions for the host
//! and per-subscription events; and the typed errors of its calls.

use crate::frame::DisconnectReason;

/// A local subscription's handle, unique for the consumer's lifetime (never
/// reused), ordered by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionKey(pub(crate) u64);

impl SubscriptionKey {
    /// The key as a number (creation order, from 0).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Why the consumer stopped reconnecting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The host called [`Consumer::disconnect`](super::Consumer::disconnect).
    Requested,
    /// The server sent a disconnect without `reconnect: true` (Rails' `false`,
    /// or no flag at all, which `@rails/actioncable` also takes as no).
    ServerRefused {
        /// The disconnect's `reason`, when it had one.
        reason: Option<DisconnectReason>,
    },
    /// The socket opened without a subprotocol the consumer supports (the
    /// server chose none, or another one).
    UnsupportedProtocol {
        /// The subprotocol the socket opened with, if any.
        subprotocol: Option<String>,
    },
    /// The host reported that no fresh credential can be had
    /// ([`Consumer::credential_unavailable`](super::Consumer::credential_unavailable)).
    CredentialUnavailable,
    /// The host did not answer a [`Event::TokenExpired`] within
    /// [`ConsumerConfig::credential_timeout`](super::ConsumerConfig::credential_timeout).
    CredentialTimeout,
}

/// What the consumer tells its host. Instructions (`Connect`, `Close`,
/// `TokenExpired`) must be carried out; the rest is information.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Open a WebSocket now, offering [`Consumer::subprotocols`](super::Consumer::subprotocols)
    /// in that order, then report [`handle_open`](super::Consumer::handle_open)
    /// or, when it fails, [`handle_close`](super::Consumer::handle_close).
    Connect,
    /// Close the socket and drop it: the consumer already counts it as gone
    /// (do not report its close, and feed none of its frames).
    Close,
    /// The server said `token_expired`: fetch a fresh credential and answer
    /// [`credential_refreshed`](super::Consumer::credential_refreshed) (the
    /// consumer then reconnects at once) or
    /// [`credential_unavailable`](super::Consumer::credential_unavailable).
    TokenExpired,
    /// The server's welcome: the connection is usable.
    Welcomed {
        /// The welcome's `sid`, if any (AnyCable, cable-server's Circle app).
        sid: Option<String>,
    },
    /// The server's disconnect frame, before the consumer acts on it.
    ServerDisconnect {
        /// Its `reason`.
        reason: Option<DisconnectReason>,
        /// Its `reconnect` flag.
        reconnect: Option<bool>,
    },
    /// The consumer will not reconnect by itself any more;
    /// [`connect`](super::Consumer::connect) (or a new subscription) starts it
    /// again.
    Stopped(StopReason),
    /// A subscription was confirmed (`connected({reconnected})`).
    Connected {
        /// The subscription.
        key: SubscriptionKey,
        /// It had been confirmed on an earlier connection.
        reconnected: bool,
    },
    /// A subscription was rejected and removed (`rejected()`).
    Rejected {
        /// The subscription (no longer known to the consumer).
        key: SubscriptionKey,
    },
    /// A message for a subscription (`received(message)`).
    Received {
        /// The subscription.
        key: SubscriptionKey,
        /// The `message` value's JSON text, as sent.
        message: String,
    },
    /// The connection under a subscription closed (`disconnected({willAttemptReconnect})`).
    Disconnected {
        /// The subscription.
        key: SubscriptionKey,
        /// The consumer will reconnect by itself.
        will_reconnect: bool,
    },
}

/// Why [`Consumer::subscribe`](super::Consumer::subscribe) refused an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The identifier is not the JSON text of an object.
    #[error("identifier is not a JSON object")]
    NotAnObject,
    /// The identifier is longer than [`ConsumerConfig::max_identifier_len`](super::ConsumerConfig::max_identifier_len).
    #[error("identifier is {len} bytes, the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The consumer holds [`ConsumerConfig::max_subscriptions`](super::ConsumerConfig::max_subscriptions) already.
    #[error("too many subscriptions (limit {0})")]
    TooMany(usize),
}

/// Why [`Consumer::perform`](super::Consumer::perform) sent nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PerformError {
    /// No such subscription (never made, unsubscribed or rejected).
    #[error("unknown subscription")]
    UnknownSubscription,
    /// The connection is not welcomed: `@rails/actioncable` drops the message
    /// too (its `send` returns `false`); the caller decides whether to retry.
    #[error("not connected")]
    NotConnected,
}
