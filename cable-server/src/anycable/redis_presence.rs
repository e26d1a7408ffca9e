//! Presence shared by every node on one Redis (`--presence-redis` with
//! `--redis-url`), without hash-field expiry (Debian's redis-server 7.0
//! lacks it): per stream a hash of id -> info and a sorted set of id ->
//! the time it expires. Each node keeps a presence alive while one of its
//! connections holds it (refreshing the score now and then); whichever node
//! removes an expired or left id first (`ZREM` answers once) publishes the
//! `leave`. Join and leave events travel on
//! `<prefix>:presence-broadcast:<stream>` and every node delivers them.

use std::time::Duration;

use cable_proto::JsonText;

use super::presence::{join_event, leave_event};

const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Join (or refresh): `ARGV`: id, info, now ms, expiry ms, channel, event.
/// Publishes the join when the id was absent or expired.
const JOIN: &str = r#"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local fresh = (not score) or tonumber(score) < tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if fresh then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return fresh and 1 or 0
"#;

/// Refresh ids still held: `ARGV`: expiry ms, key TTL ms, ids...
const REFRESH: &str = r#"
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0
"#;

/// Leave: `ARGV`: id, channel, event.
const LEAVE: &str = r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
"#;

/// Expire: `ARGV`: now ms, channel prefix. Returns the ids removed.
const EXPIRE: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local out = {}
for _, id in ipairs(gone) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    table.insert(out, id)
  end
end
return out
"#;

/// The shared presence (cheap to clone).
#[derive(Clone)]
pub struct RedisPresence {
    connection: redis::aio::MultiplexedConnection,
    prefix: String,
    ttl: Duration,
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence").finish_non_exhaustive()
    }
}

async fn timed<T>(call: impl std::future::Future<Output = redis::RedisResult<T>>) -> Option<T> {
    match tokio::time::timeout(IO_TIMEOUT, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::warn!(%error, "presence: Redis refused");
            None
        }
        Err(_) => {
            tracing::warn!("presence: Redis did not answer in time");
            None
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisPresence {
    /// On `connection`; keys start with `prefix` (`cable` when empty).
    pub fn new(connection: redis::aio::MultiplexedConnection, prefix: &str, ttl: Duration) -> Self {
        Self {
            connection,
            prefix: if prefix.is_empty() { "cable" } else { prefix }.to_owned(),
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    fn seen_key(&self, stream: &str) -> String {
        format!("{}:presence:seen:{stream}", self.prefix)
    }

    fn info_key(&self, stream: &str) -> String {
        format!("{}:presence:info:{stream}", self.prefix)
    }

    /// The channel presence events of `stream` travel on.
    pub fn channel(&self, stream: &str) -> String {
        format!("{}:presence-broadcast:{stream}", self.prefix)
    }

    /// The pattern every node follows.
    pub fn pattern(&self) -> String {
        format!("{}:presence-broadcast:*", self.prefix)
    }

    /// `id` is present on `stream` (a join event goes to every node when it
    /// was not).
    pub async fn join(&self, stream: &str, id: &str, info: &str, unix_now: Duration) {
        let mut c = self.connection.clone();
        let event = join_event(id, info);
        let _: Option<i64> = timed(
            redis::cmd("EVAL")
                .arg(JOIN)
                .arg(2)
                .arg(self.seen_key(stream))
                .arg(self.info_key(stream))
                .arg(id)
                .arg(info)
                .arg(ms(unix_now))
                .arg(ms(unix_now + self.ttl))
                .arg(self.channel(stream))
                .arg(event.as_str())
                .arg(ms(self.ttl * 4))
                .query_async(&mut c),
        )
        .await;
    }

    /// `id` left `stream` (the leave event goes to every node once).
    pub async fn leave(&self, stream: &str, id: &str) {
        let mut c = self.connection.clone();
        let event = leave_event(id);
        let _: Option<i64> = timed(
            redis::cmd("EVAL")
                .arg(LEAVE)
                .arg(2)
                .arg(self.seen_key(stream))
                .arg(self.info_key(stream))
                .arg(id)
                .arg(self.channel(stream))
                .arg(event.as_str())
                .query_async(&mut c),
        )
        .await;
    }

    /// Keeps `ids` of `stream` alive (this node's connections hold them).
    pub async fn refresh(&self, stream: &str, ids: &[String], unix_now: Duration) {
        let mut c = self.connection.clone();
        let _: Option<i64> = timed(
            redis::cmd("EVAL")
                .arg(REFRESH)
                .arg(2)
                .arg(self.seen_key(stream))
                .arg(self.info_key(stream))
                .arg(ms(unix_now + self.ttl))
                .arg(ms(self.ttl * 4))
                .arg(ids)
                .query_async(&mut c),
        )
        .await;
    }

    /// Ends what expired on `stream`, publishing each leave once.
    pub async fn expire(&self, stream: &str, unix_now: Duration) {
        let mut c = self.connection.clone();
        let gone: Option<Vec<String>> = timed(
            redis::cmd("EVAL")
                .arg(EXPIRE)
                .arg(2)
                .arg(self.seen_key(stream))
                .arg(self.info_key(stream))
                .arg(ms(unix_now))
                .query_async(&mut c),
        )
        .await;
        for id in gone.unwrap_or_default() {
            let event = leave_event(&id);
            let _: Option<i64> = timed(
                redis::cmd("PUBLISH")
                    .arg(self.channel(stream))
                    .arg(event.as_str())
                    .query_async(&mut c),
            )
            .await;
        }
    }

    /// `{"type":"info","total":N,"records":[…]}` of `stream`: the ids not
    /// expired.
    pub async fn info(&self, stream: &str, unix_now: Duration) -> JsonText {
        let mut c = self.connection.clone();
        let live: Vec<String> = timed(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.seen_key(stream))
                .arg(ms(unix_now))
                .arg("+inf")
                .query_async(&mut c),
        )
        .await
        .unwrap_or_default();
        let infos: Vec<Option<String>> = if live.is_empty() {
            Vec::new()
        } else {
            timed(
                redis::cmd("HMGET")
                    .arg(self.info_key(stream))
                    .arg(&live)
                    .query_async(&mut c),
            )
            .await
            .unwrap_or_default()
        };
        let mut out = Vec::new();
        out.extend_from_slice(br#"{"type":"info","total":"#);
        let records: Vec<(&String, String)> = live
            .iter()
            .zip(infos)
            .map(|(id, info)| (id, info.unwrap_or_else(|| "null".into())))
            .collect();
        out.extend_from_slice(records.len().to_string().as_bytes());
        out.extend_from_slice(br#","records":["#);
        for (i, (id, info)) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            cable_proto::json::write_rails_string(&mut out, id);
            out.extend_from_slice(br#","info":"#);
            out.extend_from_slice(info.as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        JsonText::new(String::from_utf8_lossy(&out).into_owned())
            .unwrap_or_else(|_| JsonText::string(""))
    }
}
