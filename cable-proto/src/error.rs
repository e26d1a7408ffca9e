//! Errors, split by whose fault they are.
//!
//! [`CommandError`]: the peer sent something the protocol does not allow.
//! Rails logs these and sends nothing; so does the core (unless a limit's
//! policy says to disconnect), and the connection's state is unchanged. They
//! reach the host as [`Event::CommandFailed`](crate::server::Event::CommandFailed).
//!
//! [`UsageError`]: the embedding application called the core wrongly (a
//! handle of a connection that is gone, a decision taken twice, a payload
//! that is not JSON). These are returned from the call.

use crate::identifier::IdentifierError;
use crate::json::InvalidJson;

/// Something a peer sent that the core refused. Named after Rails' own
/// errors where Rails has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A text frame with no bytes.
    #[error("empty frame")]
    EmptyFrame,
    /// Not JSON, or JSON followed by trailing garbage.
    #[error("frame is not JSON: {0}")]
    InvalidJson(InvalidJson),
    /// JSON, but not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// No `command` key.
    #[error("frame has no \"command\"")]
    MissingCommand,
    /// A `command` that is not `subscribe`, `unsubscribe` or `message`
    /// (Rails: "Received unrecognized command"). Holds the value's JSON text,
    /// cut to 64 bytes.
    #[error("unknown command {0}")]
    UnknownCommand(Box<str>),
    /// No `identifier` key, or `null` (Rails: `MissingIdentifier`).
    #[error("command has no identifier")]
    MissingIdentifier,
    /// The `identifier` is not a JSON string.
    #[error("identifier is not a string")]
    IdentifierNotString,
    /// The identifier string is not acceptable (Rails: `MalformedCommandError`,
    /// `ChannelNotFound` when `channel` is missing).
    #[error("invalid identifier: {0}")]
    InvalidIdentifier(IdentifierError),
    /// A `message` command without `data`.
    #[error("message has no data")]
    MissingData,
    /// `data` is not a JSON string (Rails decodes it as JSON text; AnyCable:
    /// "perform data must be a string").
    #[error("message data is not a string")]
    DataNotString,
    /// `data` is a string but not JSON text.
    #[error("message data is not JSON: {0}")]
    DataNotJson(InvalidJson),
    /// `data` is JSON but not an object.
    #[error("message data is not a JSON object")]
    DataNotObject,
    /// `data.action` is neither a string nor null.
    #[error("message action is not a string")]
    ActionNotString,
    /// A binary frame: Action Cable speaks text frames only.
    #[error("binary frame of {len} bytes")]
    BinaryFrame {
        /// Its length.
        len: usize,
    },
    /// A frame over the configured size limit.
    #[error("frame of {len} bytes is over the limit of {limit}")]
    FrameTooLarge {
        /// Its length.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// `subscribe` for an identifier the connection already holds (Rails:
    /// `AlreadySubscribedError`, ignored without a second confirmation).
    #[error("already subscribed to {identifier}")]
    AlreadySubscribed {
        /// The identifier.
        identifier: Box<str>,
    },
    /// `unsubscribe` or `message` for an identifier the connection does not
    /// hold (Rails: `UnknownSubscription`).
    #[error("unknown subscription {identifier}")]
    UnknownSubscription {
        /// The identifier.
        identifier: Box<str>,
    },
    /// `subscribe` past the configured number of subscriptions per connection.
    #[error("too many subscriptions (limit {limit})")]
    TooManySubscriptions {
        /// The configured limit.
        limit: usize,
    },
    /// Frames kept while a decision is pending went past the configured bound.
    #[error(
        "too many frames held while a decision is pending (limit {frames} frames, {bytes} bytes)"
    )]
    HoldOverflow {
        /// The configured frame limit.
        frames: usize,
        /// The configured byte limit.
        bytes: usize,
    },
    /// A frame arrived after the server began closing the connection (Rails:
    /// "Ignoring message processed after the WebSocket was closed").
    #[error("frame after the connection began closing")]
    Closing,
}

/// The embedding application used the core wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No such connection (closed, or never opened).
    #[error("unknown connection")]
    UnknownConnection,
    /// No such subscription (removed, or never created).
    #[error("unknown subscription")]
    UnknownSubscription,
    /// A decision on a token that is no longer pending (decided already, or
    /// its connection is gone).
    #[error("decision on a stale token")]
    StaleDecision,
    /// A decision answered after its deadline passed: the core already
    /// answered in the application's place
    /// ([`Event::DecisionExpired`](crate::server::Event::DecisionExpired)).
    #[error("decision after its deadline")]
    DecisionExpired,
    /// The connection has not been welcomed yet, or is closing.
    #[error("connection is not open")]
    ConnectionNotOpen,
    /// The subscription has not been accepted yet.
    #[error("subscription is not live")]
    SubscriptionNotLive,
    /// A payload that must be JSON text is not.
    #[error("payload is not JSON: {0}")]
    InvalidJson(InvalidJson),
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> Box<str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].into()
}
