//! Server configuration and limits.

use std::time::Duration;

use crate::handshake::OriginPolicy;

/// What the core does when a peer goes past a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    /// Drop the offending frame, report the error, send nothing (as Rails
    /// does for a command it cannot handle).
    Ignore,
    /// Report the error, then send
    /// `{"type":"disconnect","reason":"invalid_request","reconnect":<reconnect>}`
    /// and close the connection.
    Disconnect {
        /// The `reconnect` flag of the disconnect frame.
        reconnect: bool,
    },
}

/// Bounds on what one peer can make the core hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest text frame accepted, in bytes (default 64 KiB, AnyCable's
    /// `max_message_size`; Rails' own limit is 64 MiB).
    pub max_frame_bytes: usize,
    /// Largest identifier accepted, in bytes (default 1 KiB).
    pub max_identifier_bytes: usize,
    /// Most subscriptions, live or pending, on one connection (default 256).
    pub max_subscriptions: usize,
    /// Most frames held while a decision (the connection's authentication or
    /// a subscription's authorization) is pending (default 64).
    pub max_held_frames: usize,
    /// Most bytes held while a decision is pending (default 256 KiB).
    pub max_held_bytes: usize,
    /// Most bytes queued for a connection and not yet reported written
    /// (default 1 MiB, AnyCable's `max_pending_size`). A frame that would go
    /// past it is not queued; the connection gets
    /// `{"type":"disconnect","reason":"too_slow","reconnect":true}` and a close.
    /// Values past 4 GiB (`u32::MAX`) act as 4 GiB.
    pub max_queued_bytes: usize,
    /// What a frame over `max_frame_bytes` does (default: ignored).
    pub on_frame_too_large: LimitAction,
    /// What a subscribe past `max_subscriptions` does (default: ignored).
    pub on_too_many_subscriptions: LimitAction,
    /// What a frame past the hold bounds does (default: disconnect with
    /// `reconnect: true`, since dropping a held command would break the
    /// promise that commands take effect in arrival order).
    pub on_hold_overflow: LimitAction,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_identifier_bytes: 1024,
            max_subscriptions: 256,
            max_held_frames: 64,
            max_held_bytes: 256 * 1024,
            max_queued_bytes: 1024 * 1024,
            on_frame_too_large: LimitAction::Ignore,
            on_too_many_subscriptions: LimitAction::Ignore,
            on_hold_overflow: LimitAction::Disconnect { reconnect: true },
        }
    }
}

/// How long each kind of decision may stay pending; `None`: no deadline.
/// When one passes, the core reports
/// [`Event::DecisionExpired`](crate::server::Event::DecisionExpired) and
/// answers in the application's place, as documented per field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionTimeouts {
    /// Authentication: the connection is rejected as unauthorized
    /// (`{"type":"disconnect","reason":"unauthorized","reconnect":false}`
    /// and a close).
    pub connect: Option<Duration>,
    /// A subscription's authorization: `reject_subscription`.
    pub subscribe: Option<Duration>,
    /// A perform: vetoed, nothing of its outcome applied; the connection's
    /// later commands go on.
    pub perform: Option<Duration>,
}

/// The Action Cable JSON protocol.
pub const PROTOCOL_V1_JSON: &str = "actioncable-v1-json";
/// The sentinel a server picks when it speaks no version the client offers.
pub const PROTOCOL_UNSUPPORTED: &str = "actioncable-unsupported";

/// Everything the server state machine is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time between pings (Rails' `BEAT_INTERVAL`, 3 s).
    pub ping_interval: Duration,
    /// Subprotocols the server supports, [`PROTOCOL_V1_JSON`] and
    /// [`PROTOCOL_UNSUPPORTED`] by default.
    pub protocols: Vec<String>,
    /// Which origins may connect.
    pub origins: OriginPolicy,
    /// Bounds on what a peer can make the core hold.
    pub limits: Limits,
    /// Hold a subscription's confirmation until every stream it started is
    /// subscribed upstream ([`Server::stream_ready`](crate::server::Server::stream_ready)),
    /// as Rails does with its Redis and PostgreSQL adapters: then a broadcast
    /// published after the client saw the confirmation is never lost. The
    /// connection's later commands wait too. Off by default (the in-memory
    /// hub is always ready).
    pub confirm_when_streams_ready: bool,
    /// Deadlines of the decisions the application owes (none by default, as
    /// in Rails).
    pub decision_timeouts: DecisionTimeouts,
    /// With [`confirm_when_streams_ready`](Self::confirm_when_streams_ready):
    /// how long a new stream may wait for
    /// [`Server::stream_ready`](crate::server::Server::stream_ready) before the
    /// confirmations that wait for it go out anyway
    /// ([`Event::UpstreamTimedOut`](crate::server::Event::UpstreamTimedOut)).
    /// `None`: they wait as long as it takes.
    pub upstream_ready_timeout: Option<Duration>,
    /// Report the application's broadcasts (a perform's, a dialect's) as
    /// [`Event::Publish`](crate::server::Event::Publish) instead of
    /// delivering them here, so that the host carries them to every node of
    /// a cluster, this one included (Rails' adapters work so: a broadcast
    /// reaches every server, its own too, through the pub/sub). Off by
    /// default: delivered at once (see [`Server::publish`](crate::server::Server::publish)).
    pub publish_upstream: bool,
    /// Seed of the hash used for the core's indices. Choose it at random in
    /// the host (the core never draws randomness itself) to keep peers from
    /// crafting colliding identifiers or stream names.
    pub hash_seed: u64,
    /// AnyCable's extended protocol: session resume and pong deadlines
    /// (off by default).
    pub extended: super::ExtendedConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(3),
            protocols: vec![PROTOCOL_V1_JSON.to_owned(), PROTOCOL_UNSUPPORTED.to_owned()],
            origins: OriginPolicy::default(),
            limits: Limits::default(),
            confirm_when_streams_ready: false,
            decision_timeouts: DecisionTimeouts::default(),
            upstream_ready_timeout: None,
            publish_upstream: false,
            hash_seed: 0,
            extended: super::ExtendedConfig::default(),
        }
    }
}
