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
/// * circle: Circle's real-time system (ChatRoomChannel,
///   NotificationChannel, Chats::RoomChannel,
///   Chats::CommunityMemberThreadsChannel): member tokens (--jwt-secret or
///   --token) whose subject is the community_member_id, a welcome with a
///   sid, member channels for the token's own member, room channels for
///   the room's members (--circle-rooms FILE).
///
/// * reference: the reference app (cable-refapp: ChatChannel,
///   NotificationChannel, ...), with its control endpoints /broadcast,
///   /notify, /disconnect, /restart and /stats, so that
///   `cable-fixtures replay --url ws://HOST:PORT/cable` runs the transcript
///   corpus against this server.
///
/// * platformos (needs --rpc-url): platformOS's WebSockets, the
///   `conversate` chat of the pOS Marketplace Template, at /websocket:
///   subscriptions {"channel":C,"room_id":R} authorized by the backend
///   (subscribed.liquid), every accepted one streaming from C:R, a client
///   message broadcast to C:R unless the backend vetoes it (receive.liquid
///   returning false) or does not answer in time; with --require-csrf a
///   connection needs ?authenticity_token=, which the backend verifies.
///   Server-side broadcasts (channel_send_message): POST /_broadcast to
///   stream C:R. Counts at GET /_platformos/stats.
///
/// With --rpc-url URL the app is an AnyCable RPC backend instead (an
/// @anycable/serverless-js app, a Rails app with anycable-rails): it
/// answers POST URL/connect, URL/command and URL/disconnect; only $pubsub
/// streams stay the server's own.
///
/// Other endpoints: GET /health answers 200; SIGINT or SIGTERM sends every
/// client {"type":"disconnect","reason":"server_restart","reconnect":true},
/// closes, and exits 0.
// The doc comment is the `--help` text, verbatim: `<stream>` there is a
// placeholder, not HTML.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Parser)]
#[command(name = "cable-server", version, verbatim_doc_comment)]
pub struct Options {
    /// Address to listen on (HTTP and WebSocket on one port; port 0 picks a
    /// free one and prints it).
    #[arg(long, env = "CABLE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where WebSockets are served (Rails' mount path; default /cable,
    /// /websocket with --app platformos).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Serve PROTOCOL at PATH (repeatable): actioncable, buddyboss, jac. One path may carry Action Cable and one plain protocol:
    /// clients offering actioncable-v1-json get Action Cable, the others the
    /// plain protocol. Without an actioncable mount, Action Cable is served
    /// at --path (default /cable). Example: --mount /=buddyboss --mount
    /// /cable=actioncable.
    #[arg(long = "mount", value_name = "PATH=PROTOCOL")]
    pub mounts: Vec<crate::mounts::Mount>,

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

    /// Accept connections presenting this static token (repeatable); the
    /// identity is the token. pubsub app: without --token or --jwt-secret,
    /// every connection is accepted.
    #[arg(long = "token", value_name = "TOKEN")]
    pub tokens: Vec<String>,

    /// Accept connections presenting an HS256 JWT signed with this secret
    /// (`Authorization: Bearer` or ?token=): its `sub` is the identity, its
    /// `exp` (if any) is honoured at the handshake and closes the live
    /// connection at that instant with `token_expired`. Wrong secret,
    /// malformed, expired or missing: `unauthorized`.
    #[arg(long, env = "CABLE_JWT_SECRET", value_name = "SECRET")]
    pub jwt_secret: Option<String>,

    /// circle app: room membership, a JSON file
    /// {"chat_rooms": {"CHAT_ROOM_ID": [COMMUNITY_MEMBER_ID, ...]}}.
    /// Without it, nobody is a member of any room.
    #[arg(long, value_name = "FILE")]
    pub circle_rooms: Option<std::path::PathBuf>,

    /// Print a JWT for subject SUB signed with --jwt-secret, valid for
    /// --token-ttl-secs, and exit (for trying the server out).
    #[arg(long, value_name = "SUB", requires = "jwt_secret")]
    pub mint_token: Option<String>,

    /// With --mint-token: how long the token is valid.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub token_ttl_secs: u64,

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

    /// Jac (`--mount /websocket=jac`): the Jac Cloud app that runs the
    /// walkers (`POST URL/walker/<name>`), e.g. http://127.0.0.1:8000.
    /// Without it every walker event answers "Invalid request!".
    #[arg(long, env = "CABLE_JAC_BACKEND", value_name = "URL")]
    pub jac_backend: Option<String>,

    /// Jac: the deployment's TOKEN_SECRET, to verify its HS256 tokens
    /// (with --redis-url, also looked up in its token store). Without it
    /// every socket is public.
    #[arg(long, env = "CABLE_JAC_TOKEN_SECRET", value_name = "SECRET")]
    pub jac_token_secret: Option<String>,

    /// Jac: how long a walker call may take; past it the socket gets an
    /// error frame and its next events are handled.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub jac_walker_timeout_ms: u64,

    /// Jac: most walker calls in flight to --jac-backend at once (the others
    /// wait, within their timeout).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub jac_walker_concurrency: usize,

    /// Jac: every Jac socket gets a WebSocket ping this long after it
    /// opened or after its last pong (Jac Cloud's server: 20 s); 0: never.
    #[arg(long, default_value_t = 20_000, value_name = "MS")]
    pub jac_ping_interval_ms: u64,

    /// Jac: how long a Jac socket may take to answer a ping; past it, it is
    /// closed with 1011 "keepalive ping timeout" (Jac Cloud's server: 20 s);
    /// 0: never.
    #[arg(long, default_value_t = 20_000, value_name = "MS")]
    pub jac_ping_timeout_ms: u64,

    /// Jac: largest message on a Jac socket, in bytes (Jac Cloud's server:
    /// 16 MiB), independent of --max-frame-bytes. A bigger one is refused
    /// from its header: the socket is closed with 1009.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    pub jac_max_frame_bytes: usize,

    /// The health check path (answers 200 "ok").
    #[arg(long, default_value = "/health")]
    pub health_path: String,

    /// Where `GET` answers the metrics in Prometheus' text format (empty:
    /// not served).
    #[arg(long, default_value = "/metrics")]
    pub metrics_path: String,

    /// With `--redis-url`: how many app broadcasts may wait for Redis (while
    /// it is unreachable, say); past it they are dropped and counted
    /// (`cable_app_broadcasts_dropped_total`).
    #[arg(long, default_value_t = 65_536)]
    pub redis_publish_queue: usize,

    /// Time between pings, in milliseconds (Rails: 3000).
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub ping_interval_ms: u64,

    /// Largest client message, in bytes (as AnyCable's max_message_size).
    /// A bigger one is refused while it is read, from its header: the
    /// connection is closed with code 1009 (message too big).
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub max_frame_bytes: usize,

    /// Bytes queued for one connection and not yet written before it is
    /// disconnected as too slow (`{"reason":"too_slow"}`). POST /_broadcast
    /// refuses (413) a broadcast whose frame could not fit in it.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_queued_bytes: usize,

    /// How long a client may take to send a complete request head (the
    /// WebSocket upgrade request, or any HTTP request; counted from the
    /// connection's start or from the previous response) and a request
    /// body. Past it, the connection is closed. 0: no deadline.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub handshake_timeout_ms: u64,

    /// Most connections still in their HTTP phase (not yet upgraded to a
    /// WebSocket, or plain HTTP requests). Past it, the oldest of them is
    /// closed to make room for the new one, so that slow or stalled clients
    /// cannot lock out others. Lowered to a quarter of the open-files limit
    /// (`ulimit -n`, less 64) when that is smaller.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_pending_handshakes: usize,

    /// Most WebSocket connections at once; an upgrade request past it gets a
    /// 503. `auto`: the open-files limit (`ulimit -n`) less 64 and less the
    /// pending-handshake cap, so the server never runs out of file
    /// descriptors (no cap where that limit is unknown or unlimited);
    /// `unlimited`: no cap.
    #[arg(long, default_value_t = ConnectionCap::Auto, value_name = "N|auto|unlimited")]
    pub max_connections: ConnectionCap,

    /// Frames the core refuses that a connection may send per second, in
    /// bursts of as many: binary frames, frames that are not a JSON object,
    /// unknown commands, commands for unknown subscriptions, frames over the
    /// size limit (Rails ignores each of them). Past it, the connection gets
    /// {"type":"disconnect","reason":"invalid_request","reconnect":false}
    /// and a close. BuddyBoss' refused frames (answered {"type":"error"})
    /// count too; past it, BuddyBoss' error frame "too many refused frames:
    /// disconnected" and a close. 0: no bound.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_invalid_frames_per_sec: u32,

    /// Close a WebSocket connection from which no frame at all (command,
    /// WebSocket ping or pong, close) was received for this long. Halfway
    /// there the server sends a WebSocket ping, which browsers and other
    /// WebSocket clients answer on their own, so only clients that stopped
    /// reading or vanished are closed. 0 (default): no idle timeout.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub idle_timeout_ms: u64,

    /// How long one batch of writes to a client may take before the
    /// connection is dropped.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub write_timeout_ms: u64,

    /// After sending a close frame, how long to wait for the client's answer
    /// before closing the socket.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub close_grace_ms: u64,

    /// On SIGINT/SIGTERM, how long to wait for clients to go (and then for
    /// the app's remaining work: --rpc-url's /disconnect calls) before
    /// exiting anyway.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub shutdown_timeout_ms: u64,

    /// How long the app may take to decide on a connection, a subscription
    /// or an action (0: no deadline). Past it, the core answers in its
    /// place: the connection is rejected as unauthorized, the subscription
    /// rejected, the action vetoed (nothing of it applied).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub decision_timeout_ms: u64,

    /// The application's AnyCable RPC over HTTP, e.g.
    /// http://127.0.0.1:3000/_anycable: connections, subscriptions, actions
    /// and disconnects go to POST URL/connect, URL/command, URL/disconnect
    /// (an @anycable/serverless-js app, a Rails app with anycable-rails).
    /// Every channel but $pubsub is the backend's; --token and --jwt-secret
    /// are not used, nor --app except --app platformos (the platformOS app
    /// on this backend).
    #[arg(long, env = "CABLE_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,

    /// Sent to the RPC backend as `Authorization: Bearer <SECRET>`.
    #[arg(long, env = "CABLE_RPC_SECRET", value_name = "SECRET")]
    pub rpc_secret: Option<String>,

    /// Deadline of each RPC call (it replaces --decision-timeout-ms with
    /// --rpc-url). Past it: connection rejected, subscription rejected,
    /// action dropped, disconnect tried again.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub rpc_timeout_ms: u64,

    /// Most RPC calls in flight at once (AnyCable's default: 28).
    #[arg(long, default_value_t = 28, value_name = "N")]
    pub rpc_concurrency: usize,

    /// Request headers passed to the RPC backend in env.headers
    /// (repeatable; AnyCable's default: cookie).
    #[arg(long = "rpc-proxy-header", value_name = "NAME", default_values_t = vec!["cookie".to_owned()])]
    pub rpc_proxy_headers: Vec<String>,

    /// Most /disconnect calls started per second (AnyCable's default: 100);
    /// at shutdown the calls still waiting are made at once.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub rpc_disconnect_rate: u32,

    /// Most /disconnect calls waiting; past it they are dropped, counted and
    /// logged at most once a second (AnyCable's default: 4096).
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub rpc_disconnect_backlog: usize,

    /// platformos app: refuse a connection without a non-empty
    /// authenticity_token query parameter before asking the backend
    /// (platformOS' websockets_require_csrf_token).
    #[arg(long)]
    pub require_csrf: bool,

    /// AnyCable's extended protocol: history, sessions, pongs, presence.
    #[command(flatten)]
    pub anycable: crate::anycable::AnyCableOptions,

    /// Log filter (tracing's EnvFilter syntax; RUST_LOG wins when set).
    #[arg(long, default_value = "info", value_name = "FILTER")]
    pub log: String,
}

/// Which application to host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppKind {
    /// Public streams (`$pubsub` identifiers), AnyCable style.
    Pubsub,
    /// Circle's channels, with member tokens and room membership.
    Circle,
    /// The reference app (`cable-refapp`), with its control endpoints.
    Reference,
    /// platformOS's WebSockets on the RPC backend (`--rpc-url`).
    Platformos,
}

impl Options {
    /// Options with every default and the given listen address (for tests
    /// and embedding).
    pub fn with_listen(listen: SocketAddr) -> Self {
        let mut options = Self::parse_from(["cable-server"]);
        options.listen = listen;
        options
    }

    /// Every mount: `--mount`s, plus Action Cable at
    /// [`mount_path`](Self::mount_path) when none is Action Cable.
    pub fn mount_table(&self) -> Result<crate::mounts::MountTable, crate::mounts::MountError> {
        crate::mounts::MountTable::resolve(&self.mounts, &self.mount_path())
    }

    /// The Action Cable mount path: `--path`, else `/websocket` for the
    /// platformOS app and `/cable` for the others.
    pub fn mount_path(&self) -> String {
        match (&self.path, self.app) {
            (Some(path), _) => path.clone(),
            (None, AppKind::Platformos) => crate::platformos::MOUNT_PATH.to_owned(),
            (None, _) => "/cable".to_owned(),
        }
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

    /// The handshake deadline (`None`: no deadline).
    pub fn handshake_timeout(&self) -> Option<Duration> {
        (self.handshake_timeout_ms > 0).then(|| Duration::from_millis(self.handshake_timeout_ms))
    }

    /// The idle timeout (`None`: no idle timeout).
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_ms > 0).then(|| Duration::from_millis(self.idle_timeout_ms))
    }

    /// Jac sockets' keepalive (`None`: no pings).
    pub(crate) fn jac_keepalive(&self) -> Option<crate::jac::keepalive::KeepaliveTimes> {
        (self.jac_ping_interval_ms > 0).then(|| crate::jac::keepalive::KeepaliveTimes {
            interval: Duration::from_millis(self.jac_ping_interval_ms),
            timeout: (self.jac_ping_timeout_ms > 0)
                .then(|| Duration::from_millis(self.jac_ping_timeout_ms)),
        })
    }
}

/// The value of `--max-connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionCap {
    /// Derived from the open-files limit.
    Auto,
    /// No cap.
    Unlimited,
    /// At most this many (at least 1).
    At(usize),
}

/// A `--max-connections` value that is neither a positive number, `auto`
/// nor `unlimited`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a positive number, `auto` or `unlimited`, got {0:?}")]
pub struct ConnectionCapError(String);

impl std::str::FromStr for ConnectionCap {
    type Err = ConnectionCapError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "unlimited" => Ok(Self::Unlimited),
            _ => match text.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Self::At(n)),
                _ => Err(ConnectionCapError(text.to_owned())),
            },
        }
    }
}

impl std::fmt::Display for ConnectionCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Unlimited => f.write_str("unlimited"),
            Self::At(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_caps_parse() {
        assert_eq!("auto".parse(), Ok(ConnectionCap::Auto));
        assert_eq!("unlimited".parse(), Ok(ConnectionCap::Unlimited));
        assert_eq!("7".parse(), Ok(ConnectionCap::At(7)));
        assert!("0".parse::<ConnectionCap>().is_err());
        assert!("many".parse::<ConnectionCap>().is_err());
        let options = Options::parse_from(["cable-server", "--max-connections", "3"]);
        assert_eq!(options.max_connections, ConnectionCap::At(3));
        assert_eq!(
            Options::with_listen("127.0.0.1:0".parse().unwrap()).max_connections,
            ConnectionCap::Auto
        );
    }
}
