//! Redis, the way Rails' Redis adapter uses it.
//!
//! Rails publishes `ActionCable.server.broadcast(B, message)` as
//! `PUBLISH <channel_prefix>:B <JSON text of message>` (just `B` with no
//! prefix), and a remote disconnect as
//! `PUBLISH <channel_prefix>:action_cable/<connection identifier>
//! {"type":"disconnect","reconnect":true}`. The subscriber here follows the
//! hub: it `SUBSCRIBE`s to a stream's channel when the stream gets its first
//! local subscriber and `UNSUBSCRIBE`s when it loses its last, and
//! `PSUBSCRIBE`s to the remote-disconnect channels. When the connection to
//! Redis breaks it reconnects with backoff and subscribes again to every
//! stream it should have, so no subscription is lost.
//!
//! Broadcasts made by the app go out from `run_publisher`, one task and
//! one connection, in order (see the crate's `app_broadcasts` module).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, Mutex};

use cable_proto::StreamName;

use crate::app_broadcasts::Publication;
use crate::core::{CoreInput, Upstream};
use crate::metrics::Metrics;

/// How many app broadcasts go out in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// The first retry after a failed connection; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a connection attempt or a command may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the subscriber checks that Redis still answers (a message
/// published while this node is away is lost to it). In subscribed mode
/// Redis answers `PING` with `["pong", ""]`, not `PONG`: the reply is taken
/// as any value (reading it as a string failed every time, and the
/// subscriber reconnected at every check).
const KEEPALIVE: Duration = Duration::from_secs(1);

/// Redis channel names for one `channel_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelNames {
    prefix: String,
}

impl ChannelNames {
    /// Names for `prefix` (empty: no prefix, as Rails without
    /// `channel_prefix`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The Redis channel of broadcasting `stream`.
    pub fn channel(&self, stream: &str) -> String {
        if self.prefix.is_empty() {
            stream.to_owned()
        } else {
            format!("{}:{stream}", self.prefix)
        }
    }

    /// The broadcasting of a Redis channel, if it carries this prefix.
    pub fn stream<'a>(&self, channel: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(channel)
        } else {
            channel.strip_prefix(&self.prefix)?.strip_prefix(':')
        }
    }

    /// The glob pattern of every remote-disconnect channel, the prefix
    /// escaped.
    pub fn remote_disconnect_pattern(&self) -> String {
        let mut pattern = String::new();
        for c in self.channel("action_cable/").chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// The identity of a remote-disconnect channel.
    pub fn remote_identity<'a>(&self, channel: &'a str) -> Option<&'a str> {
        self.stream(channel)?.strip_prefix("action_cable/")
    }
}

/// Reads a remote-disconnect payload: `{"type":"disconnect","reconnect":B}`
/// (Rails 7.1+; `reconnect` defaults to true, as for Rails 6.x's
/// `{"type":"disconnect"}`). `None` for anything else.
pub fn parse_remote_disconnect(payload: &[u8]) -> Option<bool> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if value.get("type")?.as_str()? != "disconnect" {
        return None;
    }
    Some(
        value
            .get("reconnect")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true),
    )
}

/// Publishes broadcasts to Redis in Rails' format (for `POST /_broadcast`,
/// so that every node delivers them).
#[derive(Debug)]
pub(crate) struct Publisher {
    client: redis::Client,
    names: ChannelNames,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl Publisher {
    pub(crate) fn new(client: redis::Client, names: ChannelNames) -> Self {
        Self {
            client,
            names,
            connection: Mutex::new(None),
        }
    }

    /// `PUBLISH <prefix>:<stream> <payload>`; reconnects once if the
    /// connection broke.
    pub(crate) async fn publish(&self, stream: &str, payload: &str) -> Result<(), String> {
        let channel = self.names.channel(stream);
        let mut last_error = String::new();
        for _ in 0..2 {
            let mut connection = {
                let mut slot = self.connection.lock().await;
                match slot.as_ref() {
                    Some(c) => c.clone(),
                    None => {
                        let c = tokio::time::timeout(
                            IO_TIMEOUT,
                            self.client.get_multiplexed_async_connection(),
                        )
                        .await
                        .map_err(|_| "connect timed out".to_owned())?
                        .map_err(|e| e.to_string())?;
                        *slot = Some(c.clone());
                        c
                    }
                }
            };
            let mut command = redis::cmd("PUBLISH");
            command.arg(&channel).arg(payload);
            let publish = command.query_async::<i64>(&mut connection);
            match tokio::time::timeout(IO_TIMEOUT, publish).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last_error = e.to_string(),
                Err(_) => last_error = "PUBLISH timed out".to_owned(),
            }
            *self.connection.lock().await = None;
        }
        Err(last_error)
    }
}

/// Publishes the app's broadcasts in the order they come, in pipelines of
/// up to [`PUBLISH_BATCH`], until the core is gone. While Redis cannot be
/// reached, the batch in hand waits (and the queue behind it fills: the
/// core then drops and counts what does not fit); a batch whose pipeline
/// failed once sent is not sent again (Redis may have run part of it: a
/// second try could deliver some twice) and is counted as failed.
pub(crate) async fn run_publisher(
    client: redis::Client,
    names: ChannelNames,
    mut publications: mpsc::Receiver<Publication>,
    metrics: Arc<Metrics>,
) {
    let mut connection: Option<MultiplexedConnection> = None;
    let mut backoff = MIN_BACKOFF;
    let mut batch: Vec<Publication> = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        if batch.is_empty() {
            let Some(first) = publications.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < PUBLISH_BATCH {
                match publications.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let mut live = match connection.take() {
            Some(live) => live,
            None => {
                let connect = client.get_multiplexed_async_connection();
                match tokio::time::timeout(IO_TIMEOUT, connect).await {
                    Ok(Ok(live)) => {
                        backoff = MIN_BACKOFF;
                        live
                    }
                    _ => {
                        tracing::warn!(retry_in = ?backoff, waiting = batch.len(), "cannot connect to Redis to publish");
                        tokio::time::sleep(jitter(backoff)).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        let mut pipe = redis::pipe();
        for publication in &batch {
            pipe.cmd("PUBLISH")
                .arg(names.channel(&publication.stream))
                .arg(&publication.payload)
                .ignore();
        }
        let sent = batch.len() as u64;
        match tokio::time::timeout(IO_TIMEOUT, pipe.query_async::<()>(&mut live)).await {
            Ok(Ok(())) => {
                metrics.redis_publishes.inc_by(sent);
                connection = Some(live);
            }
            Ok(Err(error)) => {
                metrics.redis_publish_failures.inc_by(sent);
                tracing::warn!(%error, lost = sent, "publishing app broadcasts to Redis failed");
            }
            Err(_) => {
                metrics.redis_publish_failures.inc_by(sent);
                tracing::warn!(lost = sent, "publishing app broadcasts to Redis timed out");
            }
        }
        batch.clear();
    }
}

/// Applies queued hub commands to the wanted set. `false`: the core is gone.
fn absorb(commands: &mut mpsc::UnboundedReceiver<Upstream>, wanted: &mut BTreeSet<String>) -> bool {
    loop {
        match commands.try_recv() {
            Ok(command) => apply(command, wanted),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
}

fn apply(command: Upstream, wanted: &mut BTreeSet<String>) {
    match command {
        Upstream::Subscribe(stream) => {
            wanted.insert(stream.as_str().to_owned());
        }
        Upstream::Unsubscribe(stream) => {
            wanted.remove(stream.as_str());
        }
    }
}

/// Waits `delay` while following hub commands. `false`: the core is gone.
async fn wait_following(
    delay: Duration,
    commands: &mut mpsc::UnboundedReceiver<Upstream>,
    wanted: &mut BTreeSet<String>,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            command = commands.recv() => match command {
                Some(command) => apply(command, wanted),
                None => return false,
            }
        }
    }
}

/// A little jitter for the backoff, so that many nodes do not reconnect in
/// step.
fn jitter(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    delay + delay.mul_f64((random % 1000) as f64 / 4000.0)
}

/// Follows the hub's stream events on Redis until the core is gone.
pub(crate) async fn run_subscriber(
    client: redis::Client,
    names: ChannelNames,
    core: mpsc::Sender<CoreInput>,
    mut commands: mpsc::UnboundedReceiver<Upstream>,
    metrics: Arc<Metrics>,
) {
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut backoff = MIN_BACKOFF;
    let mut connected_before = false;
    loop {
        if !absorb(&mut commands, &mut wanted) {
            return;
        }
        let pubsub = match tokio::time::timeout(IO_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(error)) => {
                tracing::warn!(%error, retry_in = ?backoff, "cannot connect to Redis");
                if !wait_following(jitter(backoff), &mut commands, &mut wanted).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(_) => {
                tracing::warn!(retry_in = ?backoff, "connecting to Redis timed out");
                if !wait_following(jitter(backoff), &mut commands, &mut wanted).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let (mut sink, mut messages) = pubsub.split();
        if !absorb(&mut commands, &mut wanted) {
            return;
        }
        let setup = async {
            sink.psubscribe(names.remote_disconnect_pattern()).await?;
            if !wanted.is_empty() {
                let channels: Vec<String> = wanted.iter().map(|s| names.channel(s)).collect();
                sink.subscribe(channels).await?;
            }
            Ok::<(), redis::RedisError>(())
        };
        match tokio::time::timeout(IO_TIMEOUT, setup).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "Redis refused the subscriptions");
                if !wait_following(jitter(backoff), &mut commands, &mut wanted).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(_) => {
                tracing::warn!("subscribing on Redis timed out");
                continue;
            }
        }
        for stream in &wanted {
            let ready = CoreInput::UpstreamReady(StreamName::new(stream.as_str()));
            if core.send(ready).await.is_err() {
                return;
            }
        }
        tracing::info!(
            streams = wanted.len(),
            "{} Redis",
            if connected_before {
                "reconnected to"
            } else {
                "connected to"
            }
        );
        if connected_before {
            metrics.redis_reconnects.inc();
        }
        metrics.redis_connected.set(1);
        connected_before = true;
        backoff = MIN_BACKOFF;
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    let result = match command {
                        Upstream::Subscribe(stream) => {
                            let result = if wanted.insert(stream.as_str().to_owned()) {
                                tokio::time::timeout(IO_TIMEOUT, sink.subscribe(names.channel(stream.as_str()))).await
                            } else {
                                Ok(Ok(()))
                            };
                            if matches!(result, Ok(Ok(()))) && core.send(CoreInput::UpstreamReady(stream)).await.is_err() {
                                return;
                            }
                            result
                        }
                        Upstream::Unsubscribe(stream) => {
                            if wanted.remove(stream.as_str()) {
                                tokio::time::timeout(IO_TIMEOUT, sink.unsubscribe(names.channel(stream.as_str()))).await
                            } else {
                                Ok(Ok(()))
                            }
                        }
                    };
                    if !matches!(result, Ok(Ok(()))) {
                        tracing::warn!("Redis command failed: reconnecting");
                        break;
                    }
                }
                message = messages.next() => {
                    let Some(message) = message else {
                        tracing::warn!("lost the connection to Redis: reconnecting");
                        break;
                    };
                    let channel = message.get_channel_name();
                    let input = if message.from_pattern() {
                        let Some(identity) = names.remote_identity(channel) else { continue };
                        let Some(reconnect) = parse_remote_disconnect(message.get_payload_bytes()) else {
                            tracing::debug!(channel, "ignored a message on a remote-disconnect channel");
                            continue;
                        };
                        CoreInput::RemoteDisconnect { identity: identity.to_owned(), reconnect }
                    } else {
                        let Some(stream) = names.stream(channel) else { continue };
                        let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
                            tracing::debug!(channel, "ignored a payload that is not UTF-8");
                            continue;
                        };
                        CoreInput::Broadcast { stream: stream.to_owned(), payload: payload.to_owned() }
                    };
                    if core.send(input).await.is_err() {
                        return;
                    }
                }
                _ = keepalive.tick() => {
                    let ping = tokio::time::timeout(IO_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        tracing::warn!("Redis does not answer: reconnecting");
                        break;
                    }
                }
            }
        }
        metrics.redis_connected.set(0);
        if !wait_following(jitter(MIN_BACKOFF), &mut commands, &mut wanted).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        let names = ChannelNames::new("app_production");
        assert_eq!(names.channel("chat_1"), "app_production:chat_1");
        assert_eq!(names.stream("app_production:chat_1"), Some("chat_1"));
        assert_eq!(names.stream("other:chat_1"), None);
        assert_eq!(
            names.remote_identity("app_production:action_cable/Z2lk"),
            Some("Z2lk")
        );
        assert_eq!(
            ChannelNames::new("a*b").remote_disconnect_pattern(),
            r"a\*b:action_cable/*"
        );
        let bare = ChannelNames::new("");
        assert_eq!(bare.channel("chat_1"), "chat_1");
        assert_eq!(bare.remote_disconnect_pattern(), "action_cable/*");
    }

    #[test]
    fn remote_disconnect_payloads() {
        assert_eq!(
            parse_remote_disconnect(br#"{"type":"disconnect","reconnect":false}"#),
            Some(false)
        );
        assert_eq!(
            parse_remote_disconnect(br#"{"type":"disconnect"}"#),
            Some(true)
        );
        assert_eq!(parse_remote_disconnect(br#"{"type":"other"}"#), None);
        assert_eq!(parse_remote_disconnect(b"x"), None);
    }
}
