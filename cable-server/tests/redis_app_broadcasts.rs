//! Broadcasts made inside an app reach every node on the same Redis, exactly
//! once each and in the same order everywhere: two cable-server processes on
//! one redis-server of our own (a free loopback port). The reference app's
//! `speak` (a perform's outcome, in Rails' wire format on Redis) and a
//! BuddyBoss thread message (a dialect's broadcast that skips its sender).
//!
//! Needs `redis-server` on PATH (Debian: `apt-get install -y redis-server`);
//! without it the tests fail, unless `CABLE_SKIP_REDIS=1`.

mod common;

use std::time::{Duration, Instant};

use cable_fixtures::soak::{parse_metrics, RedisServer};
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn redis_or_skip() -> Option<RedisServer> {
    if !RedisServer::available() && std::env::var("CABLE_SKIP_REDIS").as_deref() == Ok("1") {
        eprintln!("redis-server not found: skipped (CABLE_SKIP_REDIS=1)");
        return None;
    }
    Some(RedisServer::start(0).expect("redis-server (apt-get install -y redis-server)"))
}

fn chat_identifier(room: &str) -> String {
    json!({"channel": "ChatChannel", "room": room}).to_string()
}

async fn subscribe_chat(ws: &mut Ws, room: &str) -> String {
    let identifier = chat_identifier(room);
    send(
        ws,
        json!({"command": "subscribe", "identifier": identifier}),
    )
    .await;
    loop {
        let frame = next_message(ws).await.expect("confirmation");
        if frame["type"] == "welcome" {
            continue;
        }
        assert_eq!(frame["type"], "confirm_subscription", "{frame}");
        return identifier;
    }
}

/// The next `count` messages' texts, within [`WAIT`] (pings, which keep
/// `next_message` waiting, do not stretch it).
async fn texts(ws: &mut Ws, count: usize) -> Vec<String> {
    let collect = async {
        let mut out = Vec::new();
        while out.len() < count {
            let frame = next_message(ws).await.expect("a message");
            out.push(frame["message"]["text"].as_str().expect("text").to_owned());
        }
        out
    };
    tokio::time::timeout(WAIT, collect)
        .await
        .unwrap_or_else(|_| panic!("fewer than {count} messages in {WAIT:?}"))
}

/// Waits until Redis channel `channel` has `count` subscribers.
async fn wait_subscribers(redis: &RedisServer, channel: &str, count: i64) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let start = Instant::now();
    loop {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut connection)
            .await
            .unwrap();
        if n == count {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{channel} has {n} subscribers, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn speak_on_one_node_reaches_every_node_once_in_order() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let args = ["--app", "reference", "--redis-url", &redis.url()];
    let node1 = CableServer::start(&args);
    let node2 = CableServer::start(&args);
    // What a Rails node on the same Redis would read.
    let mut rails_view = redis::Client::open(redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    rails_view.subscribe("chat_x").await.unwrap();

    let mut alice = node1.connect("?token=alice").await;
    let mut carol = node1.connect("?token=carol").await;
    let mut bob = node2.connect("?token=bob").await;
    for ws in [&mut alice, &mut carol, &mut bob] {
        subscribe_chat(ws, "x").await;
    }
    // Both nodes speak at once, without waiting for anything.
    const EACH: usize = 40;
    let identifier = chat_identifier("x");
    for i in 0..EACH {
        for (ws, who) in [(&mut alice, "a"), (&mut bob, "b")] {
            let data = json!({"action": "speak", "text": format!("{who}{i}")}).to_string();
            send(
                ws,
                json!({"command": "message", "identifier": identifier, "data": data}),
            )
            .await;
        }
    }
    let mut seen = Vec::new();
    for ws in [&mut alice, &mut carol, &mut bob] {
        let got = texts(ws, 2 * EACH).await;
        assert_silent(ws, Duration::from_millis(300)).await;
        for who in ["a", "b"] {
            let own: Vec<&String> = got.iter().filter(|t| t.starts_with(who)).collect();
            let expected: Vec<String> = (0..EACH).map(|i| format!("{who}{i}")).collect();
            assert_eq!(
                own,
                expected.iter().collect::<Vec<_>>(),
                "{who}'s messages once each, in order"
            );
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "one order on node 1");
    assert_eq!(seen[0], seen[2], "the same order on node 2");

    // Each node counted its own app's broadcasts and delivered everyone's;
    // and no node reconnected to Redis meanwhile (a keepalive that misread
    // Redis' reply in subscribed mode reconnected at every check).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for node in [&node1, &node2] {
        let (status, _, body) = http(node.addr, "GET", "/metrics", &[], b"").await;
        assert_eq!(status, 200);
        let metrics = parse_metrics(&body);
        assert_eq!(metrics["cable_app_broadcasts_total"], EACH as f64, "{body}");
        assert_eq!(
            metrics["cable_broadcasts_delivered_total"],
            2.0 * EACH as f64
        );
        assert_eq!(metrics["cable_redis_connected"], 1.0);
        assert_eq!(metrics["cable_redis_reconnects_total"], 0.0, "{body}");
        assert_eq!(metrics["cable_redis_publish_failures_total"], 0.0);
    }

    let message = tokio::time::timeout(WAIT, rails_view.on_message().next())
        .await
        .expect("a publish in time")
        .expect("a publish");
    let payload: String = message.get_payload().unwrap();
    let first: Value = serde_json::from_str(&payload).unwrap();
    assert!(
        first == json!({"text": "a0", "from": "alice"})
            || first == json!({"text": "b0", "from": "bob"}),
        "Rails' format on Redis: {payload}"
    );
}

#[tokio::test]
async fn a_thread_message_reaches_the_other_node_and_skips_its_sender() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let args = ["--mount", "/cable=buddyboss", "--redis-url", &redis.url()];
    let node1 = CableServer::start(&args);
    let node2 = CableServer::start(&args);
    let open = |node: &CableServer| {
        let url = format!("ws://{}/cable", node.addr);
        async move { connect(&url, None, None).await.expect("upgrade").0 }
    };
    let mut sender = open(&node1).await;
    let mut near = open(&node1).await;
    let mut far = open(&node2).await;
    for ws in [&mut sender, &mut near, &mut far] {
        ws.send(Message::text(r#"{"type":"join_thread","threadId":"t1"}"#))
            .await
            .unwrap();
    }
    wait_subscribers(&redis, "t1", 2).await;
    const COUNT: usize = 20;
    for i in 0..COUNT {
        let frame = json!({"type": "send_message", "threadId": "t1", "message": format!("m{i}")});
        sender.send(Message::text(frame.to_string())).await.unwrap();
    }
    let frame = json!({"type": "send_message", "threadId": "t1", "message": "from far"});
    far.send(Message::text(frame.to_string())).await.unwrap();

    let thread_messages = |ws: &'static str, frames: Vec<Value>| {
        frames
            .into_iter()
            .map(|f| {
                assert_eq!(f["type"], "message", "{ws}: {f}");
                assert_eq!(f["threadId"], "t1", "{ws}: {f}");
                f["message"].as_str().unwrap().to_owned()
            })
            .collect::<Vec<_>>()
    };
    let mut frames = Vec::new();
    for _ in 0..=COUNT {
        frames.push(next_frame(&mut near).await.expect("a frame"));
    }
    let near_got = thread_messages("near", frames);
    let mut frames = Vec::new();
    for _ in 0..COUNT {
        frames.push(next_frame(&mut far).await.expect("a frame"));
    }
    let far_got = thread_messages("far", frames);
    let expected: Vec<String> = (0..COUNT).map(|i| format!("m{i}")).collect();
    let near_own: Vec<String> = near_got
        .iter()
        .filter(|m| *m != "from far")
        .cloned()
        .collect();
    assert_eq!(near_own, expected, "the same node: once each, in order");
    assert_eq!(far_got, expected, "the other node: once each, in order");
    assert!(near_got.contains(&"from far".to_owned()));
    // The sender gets the other's message, never its own.
    let got = next_frame(&mut sender).await.expect("a frame");
    assert_eq!(got["message"], "from far", "{got}");
    for ws in [&mut sender, &mut near, &mut far] {
        assert_silent(ws, Duration::from_millis(300)).await;
    }
}

/// A backend that says yes to everything (AnyCable's RPC over HTTP):
/// `connect` (identifiers = the token), `subscribe` (confirmed; the
/// platformOS hooks add the room's stream), `message` (status 1: the
/// platformOS receive path broadcasts the data to the room).
async fn agreeable_backend() -> std::net::SocketAddr {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let method = request.uri().path().rsplit('/').next().unwrap().to_owned();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let answer = match method.as_str() {
                            "connect" => {
                                let url = body["env"]["url"].as_str().unwrap_or_default();
                                let token = url.split("token=").nth(1).unwrap_or_default();
                                json!({"status": 1, "identifiers": token,
                                       "transmissions": [json!({"type": "welcome"}).to_string()]})
                            }
                            "command" if body["command"] == "subscribe" => {
                                let confirm = json!({"identifier": body["identifier"], "type": "confirm_subscription"});
                                json!({"status": 1, "transmissions": [confirm.to_string()]})
                            }
                            _ => json!({"status": 1}),
                        };
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(bytes::Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_platformos_message_reaches_every_node_once_in_order() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let backend = agreeable_backend().await;
    let rpc_url = format!("http://{backend}/_anycable");
    let args = [
        "--app",
        "platformos",
        "--rpc-url",
        &rpc_url,
        "--redis-url",
        &redis.url(),
    ];
    let node1 = CableServer::start(&args);
    let node2 = CableServer::start(&args);
    let identifier = json!({"channel": "conversate", "room_id": 12}).to_string();
    let mut clients = Vec::new();
    for (node, user) in [(&node1, "ann"), (&node1, "ben"), (&node2, "cid")] {
        let url = format!("ws://{}/websocket?token={user}", node.addr);
        let (mut ws, _) = connect(&url, Some(&node.origin()), Some("actioncable-v1-json"))
            .await
            .expect("upgrade");
        assert_eq!(next_message(&mut ws).await.unwrap()["type"], "welcome");
        send(
            &mut ws,
            json!({"command": "subscribe", "identifier": identifier}),
        )
        .await;
        assert_eq!(
            next_message(&mut ws).await.unwrap()["type"],
            "confirm_subscription"
        );
        clients.push(ws);
    }
    wait_subscribers(&redis, "conversate:12", 2).await;
    const COUNT: usize = 30;
    for i in 0..COUNT {
        let data = json!({"action": "receive", "text": format!("m{i}")}).to_string();
        send(
            &mut clients[0],
            json!({"command": "message", "identifier": identifier, "data": data}),
        )
        .await;
    }
    let expected: Vec<String> = (0..COUNT).map(|i| format!("m{i}")).collect();
    for ws in &mut clients {
        let got = texts(ws, COUNT).await;
        assert_eq!(got, expected, "once each, in order, on both nodes");
        assert_silent(ws, Duration::from_millis(300)).await;
    }
    // The RPC calls were counted and timed.
    let (_, _, body) = http(node1.addr, "GET", "/metrics", &[], b"").await;
    let metrics = parse_metrics(&body);
    assert!(
        metrics["cable_rpc_calls_total"] >= (2 + 2 + COUNT) as f64,
        "{body}"
    );
    assert!(
        body.contains("cable_rpc_duration_seconds_count{method=\"command\"}"),
        "{body}"
    );
}
