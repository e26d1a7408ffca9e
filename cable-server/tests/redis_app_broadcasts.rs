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

use cable_fixtures::soak::RedisServer;
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

/// The next `count` chat messages' texts.
async fn texts(ws: &mut Ws, count: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < count {
        let frame = next_message(ws).await.expect("a message");
        out.push(frame["message"]["text"].as_str().expect("text").to_owned());
    }
    out
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
