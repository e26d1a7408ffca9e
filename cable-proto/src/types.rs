//! Handles, names, tokens and the core's outputs.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// A connection, as handed out by [`Server::handle_open`](crate::server::Server::handle_open).
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
