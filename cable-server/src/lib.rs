//! # cable-server
//!
//! A real Action Cable server: tokio, hyper and tokio-tungstenite around the
//! sans-IO [`cable_proto`] core. It is the runnable main job of the project
//! (`cargo run --release -p cable-server`) and the proof that the core
//! embeds.
//!
//! ## Shape
//!
//! - One **core task** owns the [`cable_proto::server::Server`] and the app
//!   ([`CableApp`]); nothing else touches them, so there are no locks on the
//!   hot path. Everything else sends it inputs through one bounded channel.
//! - One **HTTP listener** serves, on one port: WebSocket upgrades at the
//!   mount path (`/cable`; anything else there is a 404, as in Rails), the
//!   health check, `POST /_broadcast`, and the app's control endpoints.
//! - Per connection, a **reader** forwards frames to the core (waiting when
//!   the core is busy, which slows a flooding client down, and while the
//!   core holds the connection's frames for a pending decision once its
//!   hold would be full: backpressure, not a disconnect) and a **writer**
//!   coalesces the core's frames (many writes, one flush) and reports the
//!   bytes written, against which the core bounds each connection's queue
//!   ([`cable_proto::server::Limits::max_queued_bytes`]): past it, the client gets
//!   `too_slow` and is closed. A write batch that takes longer than the write
//!   timeout drops the connection; nobody else waits for it.
//! - With `--redis-url`, a **Redis bridge** follows the hub's stream events
//!   (`SUBSCRIBE`/`UNSUBSCRIBE` `<prefix>:<stream>`, as Rails' adapter does),
//!   honours remote disconnects on `<prefix>:action_cable/<identity>`, and
//!   reconnects with backoff, subscribing again to every stream. As with
//!   Rails' adapter, a subscription that starts a stream is confirmed once
//!   Redis has answered the `SUBSCRIBE` (at most 3 s later), so a broadcast
//!   published after the client saw the confirmation reaches it.
//!   Broadcasts the app makes (a perform's, a dialect's) are published there
//!   by one task in order and delivered by every node, this one included,
//!   when Redis hands them back: each reaches every node once, in the same
//!   order. Without Redis they are delivered at once.
//! - `GET /metrics` answers the counters and gauges of [`metrics`] in
//!   Prometheus' text format.
//!
//! - Defences against hostile peers, each a setting: a deadline on the
//!   upgrade request, a cap on connections still in their HTTP phase (the
//!   oldest goes first), a cap on connections (503), frames over the core's
//!   limit refused from their header (close 1009), a rate of invalid frames
//!   (close 1008), an optional idle timeout, oversized `/_broadcast`
//!   payloads refused with 413; refusals are logged once a second with a
//!   count.
//! - Apps decide at once ([`SyncApp`]) or later from their own tasks
//!   ([`CableApp`] with a [`CoreHandle`]); every decision has a deadline
//!   (`--decision-timeout-ms`).
//! - With `--rpc-url`, the app is a backend speaking AnyCable's RPC over
//!   HTTP ([`rpc`]: `@anycable/serverless-js`, `anycable-rails`): every
//!   channel but `$pubsub` is the backend's. `--app platformos` adds
//!   platformOS's rooms, vetoes and CSRF check to it ([`platformos`]).
//! - Other protocols on the same hub, per path (`--mount PATH=PROTOCOL`,
//!   [`mounts`]): BuddyBoss' messaging protocol, and Jac Cloud's in front of
//!   a running Jac Cloud app ([`jac`]: its tokens, its walkers over HTTP,
//!   its Redis `replicas` channel).
//!
//! ## Embedding
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use cable_server::{serve, Options};
//! let options = Options::with_listen("127.0.0.1:0".parse().unwrap());
//! let listener = tokio::net::TcpListener::bind(options.listen).await?;
//! println!("listening on {}", listener.local_addr()?);
//! serve(options, listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod admission;
pub mod anycable;
pub mod app;
mod app_broadcasts;
pub mod circle;
mod conn;
mod core;
pub mod credentials;
mod flow;
mod http;
mod invalid_frames;
pub mod jac;
pub mod metrics;
pub mod mounts;
pub mod options;
pub mod platformos;
pub mod redis_bridge;
mod reference;
mod refusal_log;
pub mod rpc;
pub mod signed_streams;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cable_proto::server::{Config, DecisionTimeouts, Limits};
use cable_proto::OriginPattern;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use app::{
    AnswerError, AppContext, CableApp, ControlRequest, CoreHandle, HttpResponse, PubSubApp,
    RequestInfo, SyncApp,
};
pub use circle::{CircleApp, RoomDirectory, RoomsFile, RoomsFileError};
pub use credentials::{CredentialError, Credentials, EmptySecret, Verified};
pub use mounts::{Mount, MountError, MountProtocol, MountTable};
pub use options::{AppKind, ConnectionCap, Options};

use crate::admission::{AdmissionLimits, ConnectionSlots, PendingHandshakes};
use crate::conn::ConnPolicy;
use crate::core::{Core, CoreInput};
use crate::http::Shared;
use crate::redis_bridge::{ChannelNames, Publisher};
use crate::refusal_log::{Refusal, RefusalLog};

/// How many inputs may wait for the core before senders wait.
const CORE_QUEUE: usize = 8192;

/// The app selected by `options`.
pub fn build_app(options: &Options) -> Result<Box<dyn CableApp>, AppError> {
    if options.app == AppKind::Platformos && options.rpc_url.is_none() {
        return Err(AppError::PlatformosNeedsRpcUrl);
    }
    if let Some(url) = &options.rpc_url {
        if !options.tokens.is_empty() || options.jwt_secret.is_some() {
            return Err(AppError::RpcWithCredentials);
        }
        if matches!(options.app, AppKind::Circle | AppKind::Reference) {
            return Err(AppError::RpcWithApp);
        }
        let settings = rpc::RpcAppSettings {
            rpc: rpc::RpcSettings {
                url: url.clone(),
                secret: options.rpc_secret.clone(),
                timeout: Duration::from_millis(options.rpc_timeout_ms.max(1)),
                concurrency: options.rpc_concurrency.max(1),
            },
            proxy_headers: options.rpc_proxy_headers.clone(),
            disconnect_rate: options.rpc_disconnect_rate.max(1),
            disconnect_backlog: options.rpc_disconnect_backlog.max(1),
        };
        let app =
            rpc::RpcApp::new(settings)?.with_signed_streams(options.anycable.signed_streams());
        if options.app == AppKind::Platformos {
            let hooks = platformos::PlatformOsHooks::new(options.require_csrf);
            return Ok(Box::new(app.with_hooks("platformos", Arc::new(hooks))));
        }
        return Ok(Box::new(app));
    }
    let credentials = credentials_of(options)?;
    Ok(match options.app {
        AppKind::Pubsub => Box::new(
            PubSubApp::new(credentials).with_signed_streams(options.anycable.signed_streams()),
        ),
        AppKind::Circle => {
            if credentials.is_open() {
                return Err(AppError::CircleNeedsCredentials);
            }
            let rooms = match &options.circle_rooms {
                Some(path) => RoomsFile::load(path)?,
                None => RoomsFile::default(),
            };
            Box::new(CircleApp::new(credentials, Box::new(rooms)))
        }
        AppKind::Reference => reference::app(),
        AppKind::Platformos => return Err(AppError::PlatformosNeedsRpcUrl),
    })
}

/// The credentials `options` accept (`--token`, `--jwt-secret`).
pub fn credentials_of(options: &Options) -> Result<Credentials, EmptySecret> {
    Credentials::new(options.tokens.clone(), options.jwt_secret.as_deref())
}

/// Why the app `options` name cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `--app circle` without `--jwt-secret` or `--token`.
    #[error("--app circle needs member tokens: --jwt-secret SECRET (or --token)")]
    CircleNeedsCredentials,
    /// `--rpc-url` with `--token` or `--jwt-secret`: the backend
    /// authenticates connections.
    #[error(
        "--rpc-url: the backend authenticates connections; --token and --jwt-secret do not apply"
    )]
    RpcWithCredentials,
    /// `--rpc-url` with `--app circle` or `--app reference`.
    #[error(
        "--rpc-url serves the backend's channels: use it with the default app or --app platformos"
    )]
    RpcWithApp,
    /// `--jwt-secret ""`.
    #[error("--jwt-secret: {0}")]
    Secret(#[from] EmptySecret),
    /// A bad `--circle-rooms` file.
    #[error("--circle-rooms: {0}")]
    Rooms(#[from] RoomsFileError),
    /// `--app platformos` without `--rpc-url`.
    #[error("--app platformos needs its backend: --rpc-url URL")]
    PlatformosNeedsRpcUrl,
    /// A bad `--rpc-url`.
    #[error("--rpc-url: {0}")]
    Rpc(#[from] rpc::RpcError),
}

/// The core configuration for `options` and `app`: the options' limits and
/// ping interval, the app's adjustments, then the options' origins on top.
pub fn build_config(options: &Options, app: &dyn CableApp) -> Config {
    let mut config = Config {
        ping_interval: Duration::from_millis(options.ping_interval_ms.max(1)),
        hash_seed: random_seed(),
        ..Config::default()
    };
    config.limits.max_frame_bytes = options.max_frame_bytes;
    config.limits.max_queued_bytes = options.max_queued_bytes;
    let deadline = options.decision_timeout();
    config.decision_timeouts = DecisionTimeouts {
        connect: deadline,
        subscribe: deadline,
        perform: deadline,
    };
    app.configure(&mut config);
    // Sessions are restored without the app's connect: only for an app
    // that moves its state per connection on a restore.
    options.anycable.configure(&mut config, app.resumable());
    config.origins.allowed.extend(
        options
            .allowed_origins
            .iter()
            .map(|origin| OriginPattern::parse(origin)),
    );
    if options.allow_any_origin {
        config.origins.allow_any = true;
    }
    config
}

/// A seed from the OS's randomness (via the standard library's hash keys),
/// for the core's hash maps.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// The WebSocket layer's settings for the core's `limits`, sized for many
/// connections: a 1 KiB read buffer (Action Cable's client frames are
/// small; the buffer grows for a larger one; 1 KiB instead of 4 KiB took an
/// idle connection from 8.7 KB to 6.3 KB of resident memory), a small write
/// buffer (the writer coalesces frames itself), a write buffer bound a
/// little above the core's queue bound, and the core's
/// [`Limits::max_frame_bytes`] as the limit on a frame and on a message: a
/// bigger one is refused from its header, before its payload is read, and
/// the host closes the connection with 1009.
pub fn websocket_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(
            limits
                .max_queued_bytes
                .saturating_add(limits.max_frame_bytes)
                .saturating_add(64 * 1024),
        )
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
}

/// The Jac dialect's settings from `--jac-backend`, `--jac-token-secret`,
/// `--jac-walker-timeout-ms` and `--redis-url`.
pub fn jac_settings(options: &Options) -> Result<jac::JacSettings, String> {
    let redis = match &options.redis_url {
        Some(url) => {
            Some(redis::Client::open(url.as_str()).map_err(|e| format!("--redis-url: {e}"))?)
        }
        None => None,
    };
    let backend = match &options.jac_backend {
        Some(url) => Some(
            jac::Backend::new(
                url,
                Duration::from_millis(options.jac_walker_timeout_ms),
                options.jac_walker_concurrency,
            )
            .map_err(|e| format!("--jac-backend: {e}"))?,
        ),
        None => None,
    };
    let tokens = match options.jac_token_secret.as_deref() {
        Some(secret) => Some(Arc::new(
            jac::JacTokens::new(secret, redis.clone())
                .ok_or("--jac-token-secret: the secret is empty")?,
        )),
        None => None,
    };
    Ok(jac::JacSettings {
        backend,
        tokens,
        replica: redis,
    })
}

/// Runs the server on `listener` until `shutdown` completes; then every
/// client gets `server_restart` and a close, and this returns once they are
/// gone (or after the shutdown timeout).
pub async fn serve(
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = build_app(&options)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    serve_app(options, app, listener, shutdown).await
}

/// [`serve`] with an app of the embedder's instead of the one `options`
/// names.
pub async fn serve_app(
    options: Options,
    mut app: Box<dyn CableApp>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut config = build_config(&options, app.as_ref());
    let limits = config.limits.clone();
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mounts = options
        .mount_table()
        .map_err(|e| invalid(format!("--mount: {e}")))?;
    // Jac sockets have their own frame limit, enforced from the frame's
    // header by their WebSocket layer as the other's is by theirs; the
    // core's own check takes the larger of the two.
    let jac_limits = Limits {
        max_frame_bytes: options.jac_max_frame_bytes,
        ..limits.clone()
    };
    if mounts.has_jac() {
        config.limits.max_frame_bytes = limits.max_frame_bytes.max(options.jac_max_frame_bytes);
    }
    let (core_tx, core_rx) = mpsc::channel(CORE_QUEUE);
    let mut dialects = mounts::Dialects::new(
        credentials_of(&options).map_err(|e| invalid(format!("--jwt-secret: {e}")))?,
    );
    if mounts.has_jac() {
        let settings = jac_settings(&options).map_err(invalid)?;
        dialects = dialects.with_jac(jac::JacHost::new(settings, core_tx.clone()));
    }

    let metrics = Arc::new(metrics::Metrics::new());
    app.attach_metrics(Arc::clone(&metrics));
    let mut publisher = None;
    let mut upstream = None;
    let mut subscriber = None;
    let mut history_redis = None;
    let mut presence_redis: Option<anycable::redis_presence::RedisPresence> = None;
    let mut follower_client = None;
    let mut app_publisher = None;
    let mut app_publisher_task = None;
    if let Some(url) = &options.redis_url {
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("--redis-url: {e}"),
            )
        })?;
        let names = ChannelNames::new(options.redis_channel_prefix.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        upstream = Some(tx);
        subscriber = Some(tokio::spawn(redis_bridge::run_subscriber(
            client.clone(),
            names.clone(),
            core_tx.clone(),
            rx,
            Arc::clone(&metrics),
        )));
        let (tx, rx) = mpsc::channel(options.redis_publish_queue.max(1));
        app_publisher = Some(tx);
        app_publisher_task = Some(tokio::spawn(redis_bridge::run_publisher(
            client.clone(),
            names.clone(),
            rx,
            Arc::clone(&metrics),
        )));
        publisher = Some(Publisher::new(client.clone(), names));
        if options.anycable.presence_redis {
            let connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| std::io::Error::other(format!("--presence-redis: {e}")))?;
            presence_redis = Some(anycable::redis_presence::RedisPresence::new(
                connection,
                &options.redis_channel_prefix,
                Duration::from_secs(options.anycable.presence_ttl_secs),
            ));
        }
        follower_client = Some(client.clone());
        if options.anycable.history_redis {
            let store = anycable::redis_history::RedisHistory::connect(
                client,
                &options.redis_channel_prefix,
                options.anycable.history_limit,
                Duration::from_secs(options.anycable.history_ttl_secs),
            )
            .await
            .map_err(|e| std::io::Error::other(format!("--history-redis: {e}")))?;
            history_redis = Some(store);
        }
    }

    tracing::info!(
        app = app.name(),
        mounts = mounts.describe(),
        redis = options.redis_url.is_some(),
        "cable-server ready"
    );
    let handle = CoreHandle {
        inputs: core_tx.clone(),
    };
    let handle_for_history = handle.clone();
    let refusals = RefusalLog::new();
    refusals.spawn_reporter(Duration::from_secs(1));
    let core = Core::new(
        config,
        app,
        core::CoreLinks {
            upstream,
            publisher: app_publisher,
            metrics: Arc::clone(&metrics),
        },
        handle,
        dialects,
        options.max_invalid_frames_per_sec,
        Arc::clone(&refusals),
    )
    .with_anycable({
        let mut extended = anycable::Extended::new(&options.anycable);
        if let Some(store) = &history_redis {
            extended = extended.with_redis_history(store.clone(), handle_for_history.clone());
        }
        if let Some(presence) = &presence_redis {
            extended = extended.with_redis_presence(presence.clone(), handle_for_history);
        }
        extended
    });
    let core = tokio::spawn(core.run(core_rx));
    let follow = anycable::redis_history::Follow {
        history: history_redis.as_ref().map(|s| s.channel_prefix()),
        presence: presence_redis
            .as_ref()
            .map(|p| p.pattern().trim_end_matches('*').to_owned()),
    };
    let follower = follower_client
        .filter(|_| follow.history.is_some() || follow.presence.is_some())
        .map(|client| {
            tokio::spawn(anycable::redis_history::run_follower(
                client,
                follow,
                core_tx.clone(),
            ))
        });

    let admission = AdmissionLimits::resolve(&options, admission::open_files_limit());
    let shared = Arc::new(Shared {
        core: core_tx.clone(),
        mounts,
        health_path: options.health_path.clone(),
        broadcast_key: options.broadcast_key.clone(),
        publisher,
        history: history_redis.map(|store| (store, anycable::fresh_epoch())),
        ws_config: websocket_config(&limits),
        jac_ws_config: websocket_config(&jac_limits),
        policy: ConnPolicy::from_options(&options),
        jac_policy: ConnPolicy::from_options(&options).with_keepalive(options.jac_keepalive()),
        slots: ConnectionSlots::new(admission.max_connections),
        refusals: Arc::clone(&refusals),
        max_broadcast_payload: http::max_broadcast_payload(&limits),
        handshake_timeout: options.handshake_timeout(),
        metrics_path: Some(options.metrics_path.clone()).filter(|p| !p.is_empty()),
        metrics,
    });

    admission.log(options.handshake_timeout_ms);
    // Connections in their HTTP phase, oldest first: at the cap, the oldest
    // makes room for the newest, so stalled clients cannot lock others out.
    let mut pending = PendingHandshakes::new(admission.max_pending);
    let handshake_timeout = options.handshake_timeout();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        refusals.record(Refusal::AcceptFailed);
                        tracing::debug!(%error, "accept failed");
                        // Out of file descriptors: free one for the next
                        // client, and wait a little.
                        if admission::is_out_of_files(&error) && pending.evict_oldest() {
                            refusals.record(Refusal::PendingEvicted);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (eviction, evicted) = pending.admit();
                if evicted {
                    refusals.record(Refusal::PendingEvicted);
                }
                let _ = stream.set_nodelay(true);
                tokio::spawn(http::serve_http_connection(
                    stream,
                    peer,
                    Arc::clone(&shared),
                    eviction,
                    handshake_timeout,
                ));
            }
        }
    }
    drop(listener);
    let _ = core_tx
        .send(CoreInput::Shutdown {
            timeout: options.shutdown_timeout(),
        })
        .await;
    drop(core_tx);
    drop(shared);
    let _ = core.await;
    if let Some(subscriber) = subscriber {
        subscriber.abort();
    }
    if let Some(follower) = follower {
        follower.abort();
    }
    if let Some(task) = app_publisher_task {
        // The core is gone: its sender too, so the publisher ends once it
        // has sent what was queued.
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    tracing::info!("cable-server stopped");
    Ok(())
}
