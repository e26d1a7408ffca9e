//! Two cable-server nodes on one redis-server (started here on a free port)
//! sharing one reliable-streams history (`--history-redis`): a broadcast
//! through either node reaches clients of both with one position, history
//! asked of the other node is the same, and offsets go on after a node's
//! restart.
//!
//! Needs `redis-server` on PATH (Debian: `apt-get install -y redis-server`);
//! without it the test fails, unless `CABLE_SKIP_REDIS=1`.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            if std::env::var("CABLE_SKIP_REDIS").as_deref() == Ok("1") {
                return None;
            }
            panic!("redis-server is not on PATH (or set CABLE_SKIP_REDIS=1)");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("cable-anycable-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < WAIT, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis { child, port, dir })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Waits until `count` nodes follow the positioned broadcasts.
    async fn wait_followers(&self, count: i64) {
        let probe = json!({"stream": "probe", "epoch": "x", "offset": 1, "data": "{}"}).to_string();
        self.wait_heard("cable:history-broadcast:probe", &probe, count)
            .await;
    }

    /// Publishes `probe` on `channel` until `count` nodes hear it.
    async fn wait_heard(&self, channel: &str, probe: &str, count: i64) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let start = Instant::now();
        // To a stream nobody subscribes to: PUBLISH answers how many nodes
        // heard it.
        loop {
            let heard: i64 = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(probe)
                .query_async(&mut connection)
                .await
                .unwrap();
            if heard >= count {
                return;
            }
            assert!(start.elapsed() < WAIT, "nodes did not follow in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect_ext(server: &CableServer) -> Ws {
    let (mut ws, protocol) = connect(
        &server.url(""),
        Some(&server.origin()),
        Some("actioncable-v1-ext-json"),
    )
    .await
    .expect("connect");
    assert_eq!(protocol.as_deref(), Some("actioncable-v1-ext-json"));
    assert_eq!(next_message(&mut ws).await.unwrap()["type"], "welcome");
    ws
}

#[tokio::test]
async fn two_nodes_share_one_history_that_outlives_a_node() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let args = ["--redis-url", url.as_str(), "--history-redis"];
    let a = CableServer::start(&args);
    let b = CableServer::start(&args);
    redis.wait_followers(2).await;

    let mut on_a = connect_ext(&a).await;
    let identifier = subscribe_pubsub(&mut on_a, "news").await;
    for n in 1..=3 {
        let status =
            post_broadcast(b.addr, None, &json!({"stream": "news", "data": {"n": n}})).await;
        assert!((200..300).contains(&status), "{status}");
    }
    let first = next_message(&mut on_a).await.unwrap();
    let epoch = first["epoch"].as_str().expect("an epoch").to_owned();
    assert_eq!(
        first,
        json!({"identifier": identifier, "message": {"n": 1}, "stream_id": "news", "epoch": epoch, "offset": 1})
    );
    for n in 2..=3 {
        assert_eq!(next_message(&mut on_a).await.unwrap()["offset"], n);
    }

    // The other node answers from the same history.
    let mut on_b = connect_ext(&b).await;
    subscribe_pubsub(&mut on_b, "news").await;
    send(
        &mut on_b,
        json!({"command": "history", "identifier": identifier,
               "history": {"streams": {"news": {"epoch": epoch, "offset": 1}}}}),
    )
    .await;
    for n in 2..=3 {
        assert_eq!(
            next_message(&mut on_b).await.unwrap(),
            json!({"identifier": identifier, "message": {"n": n}, "stream_id": "news", "epoch": epoch, "offset": n})
        );
    }
    assert_eq!(
        next_message(&mut on_b).await.unwrap(),
        json!({"type": "confirm_history", "identifier": identifier})
    );

    // Node A restarts: the epoch and the offsets go on.
    drop(on_a);
    drop(a);
    let a = CableServer::start(&args);
    redis.wait_followers(2).await;
    let mut again = connect_ext(&a).await;
    subscribe_pubsub(&mut again, "news").await;
    post_broadcast(a.addr, None, &json!({"stream": "news", "data": {"n": 4}})).await;
    let expected = json!({"identifier": identifier, "message": {"n": 4}, "stream_id": "news", "epoch": epoch, "offset": 4});
    assert_eq!(next_message(&mut again).await.unwrap(), expected);
    assert_eq!(next_message(&mut on_b).await.unwrap(), expected);
}

#[tokio::test]
async fn presence_is_shared_by_two_nodes() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let args = [
        "--redis-url",
        url.as_str(),
        "--presence-redis",
        "--presence-ttl-secs",
        "4",
    ];
    let a = CableServer::start(&args);
    let b = CableServer::start(&args);
    redis
        .wait_heard(
            "cable:presence-broadcast:probe",
            r#"{"type":"leave","id":"probe"}"#,
            2,
        )
        .await;
    let mut on_a = connect_ext(&a).await;
    let mut on_b = connect_ext(&b).await;
    let identifier = subscribe_pubsub(&mut on_a, "room").await;
    subscribe_pubsub(&mut on_b, "room").await;
    // A join's event reaches both nodes' subscribers.
    send(
        &mut on_a,
        json!({"command": "join", "identifier": identifier, "presence": {"id": "ann", "info": {"name": "Ann"}}}),
    )
    .await;
    let join = json!({"type": "presence", "identifier": identifier,
                      "message": {"type": "join", "id": "ann", "info": {"name": "Ann"}}});
    assert_eq!(next_message(&mut on_b).await.unwrap(), join);
    assert_eq!(next_message(&mut on_a).await.unwrap(), join);
    // The other node's records include it (the real client's query).
    send(
        &mut on_b,
        json!({"command": "presence", "identifier": identifier, "data": {}}),
    )
    .await;
    assert_eq!(
        next_message(&mut on_b).await.unwrap(),
        json!({"type": "presence", "identifier": identifier,
               "message": {"type": "info", "total": 1, "records": [{"id": "ann", "info": {"name": "Ann"}}]}})
    );
    // Still present while A's connection lives (refreshed past the TTL).
    tokio::time::sleep(Duration::from_secs(5)).await;
    send(
        &mut on_b,
        json!({"command": "presence", "identifier": identifier, "data": {}}),
    )
    .await;
    assert_eq!(
        next_message(&mut on_b).await.unwrap()["message"]["total"],
        1
    );
    // A's client goes away: after the TTL the other node sees the leave.
    drop(on_a);
    let leave = next_message(&mut on_b).await.unwrap();
    assert_eq!(
        leave,
        json!({"type": "presence", "identifier": identifier, "message": {"type": "leave", "id": "ann"}})
    );
}
