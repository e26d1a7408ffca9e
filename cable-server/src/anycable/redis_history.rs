//! Reliable streams' history in Redis Streams (`--history-store redis` with
//! `--redis-url`): several nodes share one history, and its epoch and
//! offsets survive a node's restart.
//!
//! A broadcast (`POST /_broadcast` on any node) runs one Lua script: the
//! stream's next offset (`INCR`), the entry (`XADD <offset>-0`, capped at
//! the history limit, the key expiring after the TTL), and the positioned
//! broadcast `PUBLISH`ed on `<prefix>:history-broadcast:<stream>` (prefix:
//! `--redis-channel-prefix`, `cable` when empty), all
//! atomically, so every node sees each stream's broadcasts in offset order.
//! Every node follows that pattern (`run_follower`) and delivers what it
//! hears with its position. The epoch is one key, drawn once.

use std::time::Duration;

use cable_proto::server::{HistoryEntry, HistoryError, HistoryStreamRequest, StreamPosition};
use cable_proto::StreamName;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use crate::core::CoreInput;

/// How long a Redis call may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

const APPEND: &str = r#"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[5])
  epoch = ARGV[5]
end
local offset = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '=', ARGV[3], offset .. '-0', 't', ARGV[2], 'd', ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[6], cjson.encode({stream = ARGV[7], epoch = epoch, offset = offset, data = ARGV[1]}))
return {epoch, offset}
"#;

/// The Redis Streams history (cheap to clone: one multiplexed connection).
#[derive(Clone)]
pub struct RedisHistory {
    connection: MultiplexedConnection,
    prefix: String,
    limit: usize,
    ttl: Duration,
}

impl std::fmt::Debug for RedisHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHistory")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What went wrong with Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisHistoryError {
    /// Redis answered with an error, or the connection failed.
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("Redis did not answer within {IO_TIMEOUT:?}")]
    Timeout,
}

async fn timed<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, RedisHistoryError> {
    match tokio::time::timeout(IO_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(RedisHistoryError::Timeout),
    }
}

impl RedisHistory {
    /// Connects to `client`; keys start with `prefix`.
    pub async fn connect(
        client: redis::Client,
        prefix: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Self, RedisHistoryError> {
        let connection = timed(client.get_multiplexed_async_connection()).await?;
        Ok(Self {
            connection,
            // Rails' empty channel prefix: the keys still get one.
            prefix: if prefix.is_empty() { "cable" } else { prefix }.to_owned(),
            limit: limit.max(1),
            ttl,
        })
    }

    fn epoch_key(&self) -> String {
        format!("{}:history:epoch", self.prefix)
    }

    fn offset_key(&self, stream: &str) -> String {
        format!("{}:history:offset:{stream}", self.prefix)
    }

    fn stream_key(&self, stream: &str) -> String {
        format!("{}:history:stream:{stream}", self.prefix)
    }

    fn channel(&self, stream: &str) -> String {
        format!("{}:history-broadcast:{stream}", self.prefix)
    }

    /// The prefix of the channels positioned broadcasts travel on.
    pub(crate) fn channel_prefix(&self) -> String {
        format!("{}:history-broadcast:", self.prefix)
    }

    /// Stores `payload` as the next message of `stream` and publishes it,
    /// positioned, to every node. `fresh_epoch` is used if the history has
    /// none yet.
    pub async fn append(
        &self,
        stream: &str,
        payload: &str,
        unix_now: Duration,
        fresh_epoch: &str,
    ) -> Result<StreamPosition, RedisHistoryError> {
        let mut connection = self.connection.clone();
        let (epoch, offset): (String, u64) = timed(
            redis::cmd("EVAL")
                .arg(APPEND)
                .arg(3)
                .arg(self.epoch_key())
                .arg(self.offset_key(stream))
                .arg(self.stream_key(stream))
                .arg(payload)
                .arg(unix_now.as_secs())
                .arg(self.limit)
                .arg(self.ttl.as_secs().max(1))
                .arg(fresh_epoch)
                .arg(self.channel(stream))
                .arg(stream)
                .query_async(&mut connection),
        )
        .await?;
        Ok(StreamPosition::new(epoch, offset))
    }

    /// The messages one stream of a history request asks for.
    pub async fn read(
        &self,
        request: &HistoryStreamRequest,
        unix_now: Duration,
    ) -> Result<Vec<HistoryEntry>, HistoryError> {
        let store = |e: RedisHistoryError| HistoryError::Store(e.to_string());
        let mut connection = self.connection.clone();
        let stream = request.stream.as_str();
        let epoch: Option<String> = timed(
            redis::cmd("GET")
                .arg(self.epoch_key())
                .query_async(&mut connection),
        )
        .await
        .map_err(store)?;
        let epoch = epoch.ok_or(HistoryError::UnknownStream)?;
        let entries: Vec<(String, Vec<(String, String)>)> = timed(
            redis::cmd("XRANGE")
                .arg(self.stream_key(stream))
                .arg("-")
                .arg("+")
                .query_async(&mut connection),
        )
        .await
        .map_err(store)?;
        let ttl = self.ttl.as_secs();
        let parsed: Vec<(u64, u64, String)> = entries
            .into_iter()
            .filter_map(|(id, fields)| {
                let offset = id.split('-').next()?.parse().ok()?;
                let mut at = None;
                let mut data = None;
                for (k, v) in fields {
                    match k.as_str() {
                        "t" => at = v.parse::<u64>().ok(),
                        "d" => data = Some(v),
                        _ => {}
                    }
                }
                Some((offset, at?, data?))
            })
            .filter(|(_, at, _)| unix_now.as_secs().saturating_sub(*at) <= ttl)
            .collect();
        let entry = |(offset, _, data): (u64, u64, String)| HistoryEntry {
            stream: StreamName::new(stream),
            position: StreamPosition::new(epoch.as_str(), offset),
            payload: data,
        };
        match (&request.from, request.since) {
            (Some(from), _) => {
                if *from.epoch != *epoch {
                    return Err(HistoryError::EpochMismatch {
                        requested: from.epoch.clone(),
                        current: epoch.as_str().into(),
                    });
                }
                let oldest = parsed
                    .first()
                    .map(|e| e.0)
                    .ok_or(HistoryError::UnknownStream)?;
                if from.offset.saturating_add(1) < oldest {
                    return Err(HistoryError::PositionGone {
                        requested: from.offset,
                        oldest,
                    });
                }
                Ok(parsed
                    .into_iter()
                    .filter(|e| e.0 > from.offset)
                    .map(entry)
                    .collect())
            }
            (None, Some(since)) => Ok(parsed
                .into_iter()
                .filter(|e| e.1 >= since)
                .map(entry)
                .collect()),
            (None, None) => Err(HistoryError::NoPosition),
        }
    }
}

#[derive(serde::Deserialize)]
struct Positioned {
    stream: String,
    epoch: String,
    offset: u64,
    data: String,
}

/// What the follower listens to: channel prefixes (pattern without `*`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Follow {
    /// Positioned broadcasts (`<prefix>:history-broadcast:`).
    pub(crate) history: Option<String>,
    /// Presence events (`<prefix>:presence-broadcast:`).
    pub(crate) presence: Option<String>,
}

/// Follows every node's positioned broadcasts and presence events and hands
/// them to the core, reconnecting (after a pause) when Redis goes away.
pub(crate) async fn run_follower(
    client: redis::Client,
    follow: Follow,
    core: mpsc::Sender<CoreInput>,
) {
    let patterns: Vec<String> = [&follow.history, &follow.presence]
        .into_iter()
        .flatten()
        .map(|p| format!("{p}*"))
        .collect();
    loop {
        let pubsub = match timed(client.get_async_pubsub()).await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                tracing::warn!(%error, "follower cannot connect to Redis");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (mut sink, mut messages) = pubsub.split();
        if let Err(error) = timed(sink.psubscribe(patterns.clone())).await {
            tracing::warn!(%error, "follower cannot subscribe");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        while let Some(message) = messages.next().await {
            let Ok(text) = message.get_payload::<String>() else {
                continue;
            };
            let channel = message.get_channel_name().to_owned();
            let job: crate::app::CoreJob = match &follow.presence {
                Some(prefix) if channel.starts_with(prefix.as_str()) => {
                    let stream = channel[prefix.len()..].to_owned();
                    let Ok(event) = cable_proto::JsonText::new(text) else {
                        continue;
                    };
                    Box::new(move |server: &mut cable_proto::server::Server, now| {
                        server.broadcast_presence(&stream, &event, now);
                    })
                }
                _ => {
                    let Ok(p) = serde_json::from_str::<Positioned>(&text) else {
                        tracing::warn!("history follower: an unreadable message");
                        continue;
                    };
                    Box::new(move |server: &mut cable_proto::server::Server, now| {
                        let position = StreamPosition::new(p.epoch, p.offset);
                        server.broadcast_at(&p.stream, &p.data, &position, now);
                    })
                }
            };
            if core.send(CoreInput::Job(job)).await.is_err() {
                return;
            }
        }
        tracing::warn!("follower lost Redis: reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
