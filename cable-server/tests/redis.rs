//! Redis end to end: two cable-server processes on one redis-server (started
//! here on a free loopback port), publishes in the exact form of Rails' Redis
//! adapter, remote disconnects, and a redis-server restart.
//!
//! Needs `redis-server` on PATH (Debian: `apt-get install -y redis-server`);
//! without it the test fails, unless `CABLE_SKIP_REDIS=1`.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const PREFIX: &str = "app_production";

struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            if std::env::var("CABLE_SKIP_REDIS").as_deref() == Ok("1") {
                eprintln!("redis-server not found: skipped (CABLE_SKIP_REDIS=1)");
                return None;
            }
            panic!(
                "redis-server is not on PATH: install it (apt-get install -y redis-server) \
                 or set CABLE_SKIP_REDIS=1 to skip the Redis end-to-end test"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("cable-server-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--dir",
                self.dir.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < WAIT, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis-server")
    }

    /// `PUBLISH channel payload`, as Rails' Redis adapter sends it.
    async fn publish(&self, channel: &str, payload: &str) -> i64 {
        let mut connection = self.connection().await;
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut connection)
            .await
            .unwrap()
    }

    /// Waits until `channel` has `count` subscribers.
    async fn wait_subscribers(&self, channel: &str, count: i64) {
        let start = Instant::now();
        loop {
            if let Ok(Ok(mut connection)) = tokio::time::timeout(
                Duration::from_secs(1),
                redis::Client::open(self.url())
                    .unwrap()
                    .get_multiplexed_async_connection(),
            )
            .await
            {
                let reply: redis::RedisResult<(String, i64)> = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(channel)
                    .query_async(&mut connection)
                    .await;
                if matches!(reply, Ok((_, n)) if n == count) {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{channel} never had {count} subscribers"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node(redis: &RedisServer) -> CableServer {
    CableServer::start(&[
        "--redis-url",
        &redis.url(),
        "--redis-channel-prefix",
        PREFIX,
    ])
}

#[tokio::test]
async fn rails_redis_broadcasts_reach_both_nodes_and_survive_a_redis_restart() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let node1 = node(&redis);
    let node2 = node(&redis);
    let mut a = node1.connect("?token=alice").await;
    let mut b = node2.connect("?token=bob").await;
    let identifier = subscribe_pubsub(&mut a, "chat_1").await;
    subscribe_pubsub(&mut b, "chat_1").await;
    let channel = format!("{PREFIX}:chat_1");
    // As with Rails' Redis adapter, the confirmation waits for Redis'
    // answer to SUBSCRIBE: a publish right after it is delivered.

    // ActionCable.server.broadcast("chat_1", {text: "hi <b>"}) with
    // channel_prefix app_production: PUBLISH app_production:chat_1 <JSON>.
    assert_eq!(redis.publish(&channel, r#"{"text":"hi <b>"}"#).await, 2);
    for ws in [&mut a, &mut b] {
        assert_eq!(
            next_message(ws).await.unwrap(),
            json!({"identifier": identifier, "message": {"text": "hi <b>"}})
        );
    }
    // Another prefix does not reach them.
    redis.publish("other_app:chat_1", r#"{"x":1}"#).await;

    // POST /_broadcast on one node goes through Redis to both.
    let body = json!({"stream": "chat_1", "data": {"via": "http"}});
    assert_eq!(post_broadcast(node1.addr, None, &body).await, 201);
    for ws in [&mut a, &mut b] {
        assert_eq!(
            next_message(ws).await.unwrap()["message"],
            json!({"via": "http"})
        );
    }

    // Remote disconnect, as remote_connections.where(...).disconnect(reconnect: false).
    redis
        .publish(
            &format!("{PREFIX}:action_cable/bob"),
            r#"{"type":"disconnect","reconnect":false}"#,
        )
        .await;
    assert_eq!(
        next_message(&mut b).await.unwrap(),
        json!({"type": "disconnect", "reason": "remote", "reconnect": false})
    );
    match tokio::time::timeout(WAIT, b.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected a close, got {other:?}"),
    }
    // The node follows the hub: its last subscriber gone, it unsubscribes.
    redis.wait_subscribers(&channel, 1).await;
    let mut b = node2.connect("?token=bob").await;
    subscribe_pubsub(&mut b, "chat_1").await;
    assert_eq!(redis.publish(&channel, r#"{"b":"back"}"#).await, 2);
    for ws in [&mut a, &mut b] {
        assert_eq!(
            next_message(ws).await.unwrap()["message"],
            json!({"b": "back"})
        );
    }

    // redis-server restarts: both nodes reconnect and subscribe again.
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.spawn();
    redis.wait_subscribers(&channel, 2).await;
    assert_eq!(redis.publish(&channel, r#"{"after":"restart"}"#).await, 2);
    for ws in [&mut a, &mut b] {
        assert_eq!(
            next_message(ws).await.unwrap()["message"],
            json!({"after": "restart"})
        );
    }
    // A stream first subscribed after the restart works too.
    let other = subscribe_pubsub(&mut a, "chat_2").await;
    assert_eq!(redis.publish(&format!("{PREFIX}:chat_2"), "[1,2]").await, 1);
    assert_eq!(
        next_message(&mut a).await.unwrap(),
        json!({"identifier": other, "message": [1, 2]})
    );
}
