//! Command-line options.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// A fast Action Cable server: Rails' WebSocket protocol on tokio, hosting
/// the sans-IO cable-proto core.
///
/// It serves WebSockets at the mount path (default /cable), speaks
/// `actioncable-v1-json` to the Rails JS client (`@rails/actioncable`) and
/// any other Action Cable client, and takes broadcasts from an HTTP endpoint
/// (POST /_broadcast) and, with --redis-url, from the channels Rails' Redis
/// adapter publishes to, so `ActionCable.server.broadcast` in a Rails app
/// reaches its clients.
///
/// Apps (--app):
///
/// * pubsub (default): public streams, AnyCable style. Subscribe with the
///   identifier {"channel":"$pubsub","stream_name":"STREAM"} to receive
///   every broadcast to STREAM. A $pubsub identifier without stream_name is
///   rejected; other channels get no answer (as Rails does for an unknown
///   channel). The connection token comes from ?token= or
///   `Authorization: Bearer`; with no --token every connection is welcomed
///   (identity: the token, or "anonymous"), with --token only the listed
///   tokens are.
///
/// * reference: the reference app of cable-fixtures (ChatChannel,
///   NotificationChannel, ...), with its control endpoints /broadcast,
///   /notify, /disconnect, /restart and /stats, so that
///   `cable-fixtures replay --url ws://HOST:PORT/cable` runs the transcript
///   corpus against this server.
///
/// Other endpoints: GET /health answers 200; SIGINT or SIGTERM sends every
/// client {"type":"disconnect","reason":"server_restart","reconnect":true},
/// closes, and exits 0.
#[derive(Debug, Clone, Parser)]
#[command(name = "cable-server", version, verbatim_doc_comment)]
pub struct Options {
    /// Address to listen on (HTTP and WebSocket on one port; port 0 picks a
    /// free one and prints it).
    #[arg(long, env = "CABLE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where WebSockets are served (Rails' mount path).
    #[arg(long, default_value = "/cable")]
    pub path: String,

    /// The application to host.
    #[arg(long, value_enum, default_value_t = AppKind::Pubsub)]
    pub app: AppKind,

    /// Accept this Origin besides the same-origin-as-host check (repeatable).
    /// `scheme://host:*` accepts any port. Requests from other origins get a
    /// 404, as in Rails.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Accept any Origin, or none (Rails' disable_request_forgery_protection).
    #[arg(long)]
    pub allow_any_origin: bool,

    /// pubsub app: accept only connections presenting this token
    /// (repeatable). Without it, every connection is accepted.
    #[arg(long = "token", value_name = "TOKEN")]
    pub tokens: Vec<String>,

    /// Require `Authorization: Bearer <KEY>` on POST /_broadcast.
    #[arg(long, env = "CABLE_BROADCAST_KEY", value_name = "KEY")]
    pub broadcast_key: Option<String>,

    /// Redis to take broadcasts from, e.g. redis://127.0.0.1:6379/0 (as in
    /// Rails' config/cable.yml with `adapter: redis`). With it, POST
    /// /_broadcast publishes to Redis too, so every node delivers it.
    #[arg(long, env = "CABLE_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// The `channel_prefix` of Rails' cable.yml: broadcasting B travels on
    /// Redis channel `<PREFIX>:B` (just `B` when empty).
    #[arg(long, env = "CABLE_REDIS_CHANNEL_PREFIX", default_value = "")]
    pub redis_channel_prefix: String,

    /// The health check path (answers 200 "ok").
    #[arg(long, default_value = "/health")]
    pub health_path: String,

    /// Time between pings, in milliseconds (Rails: 3000).
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub ping_interval_ms: u64,

    /// Largest client frame handled, in bytes; bigger frames are ignored (as
    /// AnyCable's max_message_size). Frames over 16 times this (at least
    /// 1 MiB) close the connection.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub max_frame_bytes: usize,

    /// Bytes queued for one connection and not yet written before it is
    /// disconnected as too slow (`{"reason":"too_slow"}`).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_queued_bytes: usize,

    /// How long one batch of writes to a client may take before the
    /// connection is dropped.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub write_timeout_ms: u64,

    /// After sending a close frame, how long to wait for the client's answer
    /// before closing the socket.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub close_grace_ms: u64,

    /// On SIGINT/SIGTERM, how long to wait for clients to go before exiting
    /// anyway.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub shutdown_timeout_ms: u64,

    /// How long the app may take to decide on a connection, a subscription
    /// or an action (0: no deadline). Past it, the core answers in its
    /// place: the connection is rejected as unauthorized, the subscription
    /// rejected, the action vetoed (nothing of it applied).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub decision_timeout_ms: u64,

    /// Log filter (tracing's EnvFilter syntax; RUST_LOG wins when set).
    #[arg(long, default_value = "info", value_name = "FILTER")]
    pub log: String,
}

/// Which application to host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppKind {
    /// Public streams (`$pubsub` identifiers), AnyCable style.
    Pubsub,
    /// The reference app (`cable-refapp`), with its control endpoints.
    Reference,
}

impl Options {
    /// Options with every default and the given listen address (for tests
    /// and embedding).
    pub fn with_listen(listen: SocketAddr) -> Self {
        let mut options = Self::parse_from(["cable-server"]);
        options.listen = listen;
        options
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// The close grace period.
    pub fn close_grace(&self) -> Duration {
        Duration::from_millis(self.close_grace_ms)
    }

    /// The deadline of the app's decisions (`None`: no deadline).
    pub fn decision_timeout(&self) -> Option<Duration> {
        (self.decision_timeout_ms > 0).then(|| Duration::from_millis(self.decision_timeout_ms))
    }

    /// The shutdown timeout.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// The WebSocket layer's hard limit on a message: frames between
    /// `max_frame_bytes` and this are read and ignored by the core, bigger
    /// ones close the connection.
    pub fn hard_message_limit(&self) -> usize {
        self.max_frame_bytes.saturating_mul(16).max(1024 * 1024)
    }
}
