//! AnyCable's extended protocol on the host side: the options, session ids
//! and restores, the history store that stamps broadcasts with positions
//! and answers `history`, and the presence store. The protocol itself is
//! the core's (`cable_proto::server`'s extended module); this module owns
//! what needs the host: randomness, the clock, storage.

pub mod history;
pub mod presence;
pub mod redis_history;
pub mod redis_presence;

use std::hash::BuildHasher;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cable_proto::server::{
    Config, Delivery, Event, HistoryRequest, PendingConnection, PresenceAction, PresenceRequest,
    Server, UnsubscribeCause, PROTOCOL_V1_EXT_JSON,
};
use cable_proto::ConnectionId;

use crate::app::RequestInfo;
use history::{HistoryStore, MemoryHistory};
use presence::MemoryPresence;

/// The options of AnyCable's extended protocol (`actioncable-v1-ext-json`,
/// offered beside `actioncable-v1-json`).
#[derive(Debug, Clone, clap::Args)]
pub struct AnyCableOptions {
    /// Messages kept per stream for reliable streams' history (AnyCable's
    /// history_limit; 0: no history, broadcasts go out without positions).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub history_limit: usize,

    /// How long a stream's messages are kept for history (AnyCable's
    /// history_ttl).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub history_ttl_secs: u64,

    /// How long a closed session can be restored with its sid (AnyCable's
    /// sessions_ttl; 0: sessions are not kept).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub sessions_ttl_secs: u64,

    /// After a ping, how long an extended client may stay silent before it
    /// gets a no_pong disconnect (AnyCable's pong_timeout; 0: never).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub pong_timeout_secs: u64,

    /// How long a presence stays after its last connection went away
    /// (AnyCable's presence_ttl).
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub presence_ttl_secs: u64,

    /// Secret of signed streams: {"channel":"$pubsub","signed_stream_name":S}
    /// is confirmed when S is signed with it by Rails' MessageVerifier
    /// (SHA256, JSON serializer), and streams from the name it carries.
    #[arg(long, env = "CABLE_STREAMS_SECRET", value_name = "SECRET")]
    pub streams_secret: Option<String>,

    /// Secret of Turbo streams (Turbo::StreamsChannel with a
    /// signed_stream_name, signed by turbo-rails' verifier); defaults to
    /// --streams-secret.
    #[arg(long, env = "CABLE_TURBO_STREAMS_SECRET", value_name = "SECRET")]
    pub turbo_streams_secret: Option<String>,

    /// With --redis-url: keep the history in Redis Streams, shared by every
    /// node on that Redis (offsets survive a node's restart); broadcasts
    /// then reach the nodes through it.
    #[arg(long, requires = "redis_url")]
    pub history_redis: bool,

    /// With --redis-url: share presence between every node on that Redis
    /// (works on Redis 7.0: no hash-field expiry needed).
    #[arg(long, requires = "redis_url")]
    pub presence_redis: bool,
}

impl Default for AnyCableOptions {
    fn default() -> Self {
        Self {
            history_limit: 100,
            history_ttl_secs: 300,
            sessions_ttl_secs: 300,
            pong_timeout_secs: 0,
            presence_ttl_secs: 15,
            streams_secret: None,
            turbo_streams_secret: None,
            history_redis: false,
            presence_redis: false,
        }
    }
}

impl AnyCableOptions {
    /// The verifiers of signed and Turbo streams.
    pub fn signed_streams(&self) -> crate::signed_streams::SignedStreams {
        use crate::signed_streams::MessageVerifier;
        crate::signed_streams::SignedStreams {
            streams: self.streams_secret.as_deref().map(MessageVerifier::new),
            turbo: self
                .turbo_streams_secret
                .as_deref()
                .map(MessageVerifier::new),
        }
    }

    /// The core's side of these options: the extended subprotocol offered
    /// first, session TTL (when the app is `resumable`: it keeps nothing
    /// per connection that a restore without its `connect` would miss) and
    /// pong timeout.
    pub fn configure(&self, config: &mut Config, resumable: bool) {
        if !config.protocols.iter().any(|p| p == PROTOCOL_V1_EXT_JSON) {
            config.protocols.insert(0, PROTOCOL_V1_EXT_JSON.to_owned());
        }
        config.extended.session_ttl = (resumable && self.sessions_ttl_secs > 0)
            .then(|| Duration::from_secs(self.sessions_ttl_secs));
        config.extended.pong_timeout =
            (self.pong_timeout_secs > 0).then(|| Duration::from_secs(self.pong_timeout_secs));
    }
}

/// Random ids (session ids, epochs) from the host's randomness: the keys of
/// the standard library's hasher, and a counter.
struct Ids {
    keys: [std::collections::hash_map::RandomState; 2],
    counter: u64,
}

impl Ids {
    fn new() -> Self {
        Self {
            keys: Default::default(),
            counter: 0,
        }
    }

    /// `len` characters of `[0-9a-z]`.
    fn next(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        self.counter += 1;
        let mut bits = (u128::from(self.keys[0].hash_one(self.counter)) << 64)
            | u128::from(self.keys[1].hash_one(self.counter));
        (0..len)
            .map(|_| {
                let c = ALPHABET[(bits % 36) as usize];
                bits /= 36;
                c as char
            })
            .collect()
    }
}

/// A random epoch candidate (8 characters of `[0-9a-z]`).
pub fn fresh_epoch() -> String {
    Ids::new().next(8)
}

/// How often the history is pruned and presence swept.
const TICK: Duration = Duration::from_secs(1);

/// The host side of the extended protocol, owned by the core task.
pub struct Extended {
    ids: Ids,
    history: Box<dyn HistoryStore>,
    presence: MemoryPresence,
    next_tick: Option<Instant>,
    /// The shared history in Redis, read from tasks that answer the core
    /// later through the handle.
    redis: Option<(redis_history::RedisHistory, crate::app::CoreHandle)>,
    /// Shared presence: commands go to Redis, events come back through the
    /// follower; `presence` keeps this node's holders.
    shared_presence: Option<(redis_presence::RedisPresence, crate::app::CoreHandle)>,
    /// Streams whose shared presence this node looked after lately: it
    /// ends what expired there.
    presence_streams: std::collections::HashMap<String, Instant>,
    presence_ttl: Duration,
}

impl std::fmt::Debug for Extended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extended").finish_non_exhaustive()
    }
}

/// Unix time now (the host's clock).
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Extended {
    /// In-memory history and presence, a fresh epoch.
    pub fn new(options: &AnyCableOptions) -> Self {
        let mut ids = Ids::new();
        let epoch = ids.next(8);
        let history: Box<dyn HistoryStore> = if options.history_limit == 0 {
            Box::new(history::NoHistory)
        } else {
            Box::new(MemoryHistory::new(
                &epoch,
                options.history_limit,
                Duration::from_secs(options.history_ttl_secs),
            ))
        };
        Self::with_history(options, ids, history)
    }

    fn with_history(options: &AnyCableOptions, ids: Ids, history: Box<dyn HistoryStore>) -> Self {
        Self {
            ids,
            history,
            presence: MemoryPresence::new(Duration::from_secs(options.presence_ttl_secs)),
            next_tick: None,
            redis: None,
            shared_presence: None,
            presence_streams: std::collections::HashMap::new(),
            presence_ttl: Duration::from_secs(options.presence_ttl_secs),
        }
    }

    /// Presence shared through Redis.
    pub fn with_redis_presence(
        mut self,
        presence: redis_presence::RedisPresence,
        handle: crate::app::CoreHandle,
    ) -> Self {
        self.shared_presence = Some((presence, handle));
        self
    }

    /// History in Redis Streams: requests are read there (answered later
    /// through `handle`); broadcasts reach this node positioned through
    /// the history's follower task, so what comes to the core as a plain
    /// broadcast (a Rails app publishing to Redis itself) goes out as is.
    pub fn with_redis_history(
        mut self,
        history: redis_history::RedisHistory,
        handle: crate::app::CoreHandle,
    ) -> Self {
        self.history = Box::new(history::NoHistory);
        self.redis = Some((history, handle));
        self
    }

    /// A new connection: it gets a session id and its own ping settings
    /// (`?pi=`, `?ptp=`); one that comes back with a kept session's id
    /// (`X-ANYCABLE-RESTORE-SID`, else `?sid=`) is restored at once. Returns the token when the app must decide.
    pub fn open(
        &mut self,
        server: &mut Server,
        request: &RequestInfo,
        pending: PendingConnection,
        now: Instant,
    ) -> Option<PendingConnection> {
        let connection = pending.connection();
        if !server.extended(connection) {
            return Some(pending);
        }
        // Its own ping interval and timestamp precision (`?pi=`, `?ptp=`).
        let ping = cable_proto::server::SessionPing::from_params(
            request.query_param("pi").as_deref(),
            request.query_param("ptp").as_deref(),
        );
        server.set_session_ping(connection, ping, now);
        let sid = self.ids.next(20);
        let previous = request
            .header("x-anycable-restore-sid")
            .map(str::to_owned)
            .or_else(|| request.query_param("sid"))
            .filter(|s| !s.is_empty());
        let pending = match previous {
            Some(previous) => match server.restore_session(pending, &previous, &sid, now) {
                Ok(restored) => {
                    tracing::debug!(%connection, subscriptions = restored.subscriptions.len(), "session restored");
                    return None;
                }
                Err(pending) => pending,
            },
            None => pending,
        };
        server.assign_session_id(connection, &sid);
        Some(pending)
    }

    /// A broadcast from outside: stored in the history, then delivered with
    /// its position.
    pub fn broadcast(
        &mut self,
        server: &mut Server,
        stream: &str,
        payload: &str,
        now: Instant,
    ) -> Delivery {
        if cable_proto::json::validate(payload).is_err() {
            return server.broadcast(stream, payload, now);
        }
        match self.history.append(stream, payload, unix_now()) {
            Some(position) => server.broadcast_at(stream, payload, &position, now),
            None => server.broadcast(stream, payload, now),
        }
    }

    /// Handles the extended events; the rest go on to the app.
    pub fn intercept(&mut self, server: &mut Server, event: Event, now: Instant) -> Option<Event> {
        match event {
            Event::HistoryRequested(request) => {
                self.history(server, request, now);
                None
            }
            Event::PresenceRequested(request) => {
                self.presence(server, request, now);
                None
            }
            Event::Unsubscribed {
                subscription,
                cause: UnsubscribeCause::Command | UnsubscribeCause::Application,
                ..
            } => {
                let left = self.presence.unsubscribed(subscription);
                self.publish_presence(server, left, now);
                Some(event)
            }
            other => Some(other),
        }
    }

    /// A socket closed.
    pub fn closed(&mut self, connection: ConnectionId, now: Instant) {
        self.presence.connection_gone(connection, now);
    }

    /// Time passed: presence past its TTL leaves, old history goes.
    pub fn tick(&mut self, server: &mut Server, now: Instant) {
        if self.next_tick.is_some_and(|at| now < at) {
            return;
        }
        self.next_tick = Some(now + TICK);
        let left = self.presence.sweep(now);
        match &self.shared_presence {
            // Shared: what this node stops refreshing expires in Redis.
            Some((shared, _)) => {
                let held = self.presence.held();
                for (stream, _) in &held {
                    self.presence_streams.insert(stream.clone(), now);
                }
                let horizon = self.presence_ttl * 3;
                self.presence_streams
                    .retain(|_, at| now.saturating_duration_since(*at) < horizon);
                let streams: Vec<String> = self.presence_streams.keys().cloned().collect();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let unix = unix_now();
                    for (stream, ids) in held {
                        if !ids.is_empty() {
                            shared.refresh(&stream, &ids, unix).await;
                        }
                    }
                    for stream in streams {
                        shared.expire(&stream, unix).await;
                    }
                });
            }
            None => {
                for (stream, message) in left {
                    server.broadcast_presence(&stream, &message, now);
                }
            }
        }
        self.history.prune(unix_now());
    }

    /// Presence events of this node: broadcast here, or (shared) the leaves
    /// done in Redis, whose events come back to every node.
    fn publish_presence(
        &mut self,
        server: &mut Server,
        events: Vec<presence::PresenceEvent>,
        now: Instant,
    ) {
        match &self.shared_presence {
            Some((shared, _)) => {
                let ids: Vec<(String, String)> = events
                    .into_iter()
                    .filter_map(|(stream, event)| {
                        let value: serde_json::Value = serde_json::from_str(event.as_str()).ok()?;
                        Some((stream, value["id"].as_str()?.to_owned()))
                    })
                    .collect();
                if ids.is_empty() {
                    return;
                }
                let shared = shared.clone();
                tokio::spawn(async move {
                    for (stream, id) in ids {
                        shared.leave(&stream, &id).await;
                    }
                });
            }
            None => {
                for (stream, message) in events {
                    server.broadcast_presence(&stream, &message, now);
                }
            }
        }
    }

    fn history(&mut self, server: &mut Server, request: HistoryRequest, now: Instant) {
        let unix = unix_now();
        if let Some((redis, handle)) = &self.redis {
            let (redis, handle) = (redis.clone(), handle.clone());
            tokio::spawn(async move {
                let mut entries = Vec::new();
                let mut failure = None;
                for stream in &request.streams {
                    match redis.read(stream, unix).await {
                        Ok(read) => entries.extend(read),
                        Err(error) => {
                            tracing::debug!(stream = %stream.stream, %error, "history rejected");
                            failure = Some(error);
                            break;
                        }
                    }
                }
                let answer = match failure {
                    Some(error) => Err(error),
                    None => Ok(entries),
                };
                let pending = request.pending;
                let _ = handle
                    .call(move |server, now| server.complete_history(pending, answer, now))
                    .await;
            });
            return;
        }
        let mut entries = Vec::new();
        let mut failure = None;
        for stream in &request.streams {
            match self.history.read(stream, unix) {
                Ok(read) => entries.extend(read),
                Err(error) => {
                    tracing::debug!(stream = %stream.stream, %error, "history rejected");
                    failure = Some(error);
                    break;
                }
            }
        }
        let answer = match failure {
            Some(error) => Err(error),
            None => Ok(entries),
        };
        let _ = server.complete_history(request.pending, answer, now);
    }

    fn presence(&mut self, server: &mut Server, request: PresenceRequest, now: Instant) {
        let holder = (request.connection, request.subscription);
        let stream = request.stream.as_str();
        if let Some((shared, handle)) = &self.shared_presence {
            let (shared, handle) = (shared.clone(), handle.clone());
            match request.action {
                PresenceAction::Join { id, info } => {
                    let _ = self.presence.join(stream, &id, &info, holder, now);
                    self.presence_streams.insert(stream.to_owned(), now);
                    let stream = stream.to_owned();
                    tokio::spawn(async move { shared.join(&stream, &id, &info, unix_now()).await });
                }
                PresenceAction::Leave { id } => {
                    let left = self.presence.leave(stream, id.as_deref(), holder);
                    let left = left.into_iter().map(|e| (stream.to_owned(), e)).collect();
                    self.publish_presence(server, left, now);
                }
                PresenceAction::Info => {
                    let stream = stream.to_owned();
                    let subscription = request.subscription;
                    tokio::spawn(async move {
                        let info = shared.info(&stream, unix_now()).await;
                        let _ = handle
                            .call(move |server, now| {
                                server.transmit_presence(subscription, &info, now)
                            })
                            .await;
                    });
                }
            }
            return;
        }
        match request.action {
            PresenceAction::Join { id, info } => {
                if let Some(event) = self.presence.join(stream, &id, &info, holder, now) {
                    server.broadcast_presence(stream, &event, now);
                }
            }
            PresenceAction::Leave { id } => {
                for event in self.presence.leave(stream, id.as_deref(), holder) {
                    server.broadcast_presence(stream, &event, now);
                }
            }
            PresenceAction::Info => {
                let info = self.presence.info(stream);
                let _ = server.transmit_presence(request.subscription, &info, now);
            }
        }
    }
}
