//! cable-server as one replica of a Jac Cloud deployment: Jac Cloud's
//! replicas fan client events and walkers' `notify_users`,
//! `notify_channels` and `notify_clients` out through Redis pub/sub on the
//! channel [`CHANNEL`], each message
//! `{"instance_id":"<id>","event":{"type":"user","root_ids":[...],"data":{...}}}`
//! (receivers skip their own). cable-server subscribes there (so a walker
//! that the app runs reaches cable-server's sockets) and publishes its own
//! clients' events there (so the app's other replicas see them).

use std::time::Duration;

use bytes::Bytes;
use cable_proto::JsonText;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::barrier::Barrier;
use crate::core::CoreInput;

/// The Redis channel of Jac Cloud's replicas.
pub const CHANNEL: &str = "replicas";

/// How long one Redis operation may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A message of another replica: the `event` object to deliver, unless it is
/// ours (or not a replica message at all).
pub fn incoming_event(message: &[u8], own_instance: &str) -> Option<Bytes> {
    let Value::Object(mut map) = serde_json::from_slice(message).ok()? else {
        return None;
    };
    if map.get("instance_id").and_then(Value::as_str) == Some(own_instance) {
        return None;
    }
    let event = map.remove("event")?;
    serde_json::to_vec(&event).ok().map(Bytes::from)
}

/// Our client's `event` as a replica message.
pub fn outgoing_message(event: &JsonText, instance: &str) -> Option<String> {
    let event: Value = serde_json::from_str(event.as_str()).ok()?;
    let mut map = Map::new();
    map.insert("instance_id".into(), Value::from(instance));
    map.insert("event".into(), event);
    serde_json::to_string(&Value::Object(map)).ok()
}

/// Subscribes to [`CHANNEL`] and hands other replicas' events to the core
/// until the core is gone; reconnects (after a pause) when Redis breaks.
pub(crate) async fn run_subscriber(
    client: redis::Client,
    instance: String,
    core: mpsc::Sender<CoreInput>,
    barrier: std::sync::Arc<Barrier>,
) {
    loop {
        match subscribe_once(&client, &instance, &core, &barrier).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "jac replica: Redis subscription broke: again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn subscribe_once(
    client: &redis::Client,
    instance: &str,
    core: &mpsc::Sender<CoreInput>,
    barrier: &Barrier,
) -> Result<(), String> {
    let mut pubsub = tokio::time::timeout(IO_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    pubsub.subscribe(CHANNEL).await.map_err(|e| e.to_string())?;
    pubsub
        .subscribe(barrier.channel())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(instance, "jac replica: subscribed to {CHANNEL}");
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        if message.get_channel_name() == barrier.channel() {
            // Every message before it is in the core's queue.
            barrier.seen(message.get_payload_bytes());
            continue;
        }
        let Some(event) = incoming_event(message.get_payload_bytes(), instance) else {
            continue;
        };
        if core.send(CoreInput::JacReplica(event)).await.is_err() {
            return Ok(());
        }
    }
    Err("the subscription ended".to_owned())
}

/// Publishes each event it receives on [`CHANNEL`], in order, until every
/// sender is gone.
pub(crate) async fn run_publisher(
    client: redis::Client,
    instance: String,
    mut events: mpsc::Receiver<JsonText>,
) {
    let mut connection = None;
    while let Some(event) = events.recv().await {
        let Some(message) = outgoing_message(&event, &instance) else {
            continue;
        };
        for _attempt in 0..2 {
            if connection.is_none() {
                connection =
                    tokio::time::timeout(IO_TIMEOUT, client.get_multiplexed_async_connection())
                        .await
                        .ok()
                        .and_then(Result::ok);
            }
            let Some(c) = connection.as_mut() else {
                continue;
            };
            let mut command = redis::cmd("PUBLISH");
            command.arg(CHANNEL).arg(&message);
            match tokio::time::timeout(IO_TIMEOUT, command.query_async::<i64>(c)).await {
                Ok(Ok(_)) => break,
                _ => connection = None,
            }
        }
        if connection.is_none() {
            tracing::warn!("jac replica: could not publish an event to Redis");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as the real server published it (jacref README 42).
    #[test]
    fn replica_messages_in_and_out() {
        let recorded = br#"{"instance_id":"1795329668:86b6aa","event":{"type":"user","root_ids":["n::6b028e084b49d9ccc6934a7f"],"data":{"m":"cross-replica user"}}}"#;
        assert_eq!(
            incoming_event(recorded, "1795329668:000000").unwrap().as_ref(),
            br#"{"type":"user","root_ids":["n::6b028e084b49d9ccc6934a7f"],"data":{"m":"cross-replica user"}}"#
        );
        assert!(incoming_event(recorded, "1795329668:86b6aa").is_none());
        let event =
            JsonText::new(r#"{"type":"channel","channel_ids":["room1"],"data":{}}"#).unwrap();
        assert_eq!(
            outgoing_message(&event, "1:ab").unwrap(),
            r#"{"instance_id":"1:ab","event":{"type":"channel","channel_ids":["room1"],"data":{}}}"#
        );
    }
}
