//! cable-server's extended protocol on the wire, frame by frame: negotiation
//! and the sid, client ping, positions on broadcasts (and none with
//! `--history-limit 0`), `history`, and `no_pong` past `--pong-timeout-secs`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const EXT: &str = "actioncable-v1-ext-json";

async fn connect_ext(server: &CableServer) -> (Ws, serde_json::Value) {
    let (mut ws, protocol) = connect(&server.url(""), Some(&server.origin()), Some(EXT))
        .await
        .expect("connect");
    assert_eq!(protocol.as_deref(), Some(EXT));
    let welcome = next_message(&mut ws).await.unwrap();
    assert_eq!(welcome["type"], "welcome");
    (ws, welcome)
}

#[tokio::test]
async fn positions_history_and_client_ping() {
    let server = CableServer::start(&[]);
    let (mut ws, welcome) = connect_ext(&server).await;
    assert!(
        welcome["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "{welcome}"
    );
    send(&mut ws, json!({"command": "ping"})).await;
    assert_eq!(
        next_message(&mut ws).await.unwrap(),
        json!({"type": "pong"})
    );
    let identifier = subscribe_pubsub(&mut ws, "news").await;
    for n in 1..=3 {
        post_broadcast(
            server.addr,
            None,
            &json!({"stream": "news", "data": {"n": n}}),
        )
        .await;
    }
    let first = next_message(&mut ws).await.unwrap();
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    assert_eq!(
        first,
        json!({"identifier": identifier, "message": {"n": 1}, "stream_id": "news", "epoch": epoch, "offset": 1})
    );
    next_message(&mut ws).await.unwrap();
    next_message(&mut ws).await.unwrap();
    send(
        &mut ws,
        json!({"command": "history", "identifier": identifier,
               "history": {"streams": {"news": {"epoch": epoch, "offset": 2}}}}),
    )
    .await;
    assert_eq!(
        next_message(&mut ws).await.unwrap(),
        json!({"identifier": identifier, "message": {"n": 3}, "stream_id": "news", "epoch": epoch, "offset": 3})
    );
    assert_eq!(
        next_message(&mut ws).await.unwrap(),
        json!({"type": "confirm_history", "identifier": identifier})
    );
    // A plain client on the same stream gets no position.
    let mut plain = server.connect("").await;
    subscribe_pubsub(&mut plain, "news").await;
    post_broadcast(
        server.addr,
        None,
        &json!({"stream": "news", "data": {"n": 4}}),
    )
    .await;
    assert_eq!(
        next_message(&mut plain).await.unwrap(),
        json!({"identifier": identifier, "message": {"n": 4}})
    );
}

#[tokio::test]
async fn no_history_means_no_positions() {
    let server = CableServer::start(&["--history-limit", "0"]);
    let (mut ws, _) = connect_ext(&server).await;
    let identifier = subscribe_pubsub(&mut ws, "news").await;
    post_broadcast(
        server.addr,
        None,
        &json!({"stream": "news", "data": {"n": 1}}),
    )
    .await;
    assert_eq!(
        next_message(&mut ws).await.unwrap(),
        json!({"identifier": identifier, "message": {"n": 1}})
    );
    send(
        &mut ws,
        json!({"command": "history", "identifier": identifier, "history": {"since": 0}}),
    )
    .await;
    assert_eq!(
        next_message(&mut ws).await.unwrap(),
        json!({"type": "reject_history", "identifier": identifier})
    );
}

#[tokio::test]
async fn a_silent_client_gets_no_pong() {
    let server = CableServer::start(&["--ping-interval-ms", "300", "--pong-timeout-secs", "1"]);
    let (mut ws, _) = connect_ext(&server).await;
    let started = std::time::Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = next_frame(&mut ws).await {
        if frame["type"] != "ping" {
            frames.push(frame);
        }
    }
    assert_eq!(
        frames,
        vec![json!({"type": "disconnect", "reason": "no_pong", "reconnect": true})]
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // A client that answers stays.
    let (mut talker, _) = connect_ext(&server).await;
    let until = std::time::Instant::now() + Duration::from_millis(2500);
    while std::time::Instant::now() < until {
        let frame = next_frame(&mut talker).await.expect("still open");
        assert_eq!(frame["type"], "ping", "{frame}");
        send(&mut talker, json!({"command": "pong"})).await;
    }
}

#[tokio::test]
async fn own_ping_interval_and_millisecond_timestamps() {
    // The server's beat is a minute; the client asks for 1 s, in ms.
    let server = CableServer::start(&["--ping-interval-ms", "60000"]);
    let (mut ws, protocol) = connect(
        &server.url("?pi=1&ptp=ms"),
        Some(&server.origin()),
        Some(EXT),
    )
    .await
    .expect("connect");
    assert_eq!(protocol.as_deref(), Some(EXT));
    assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let ping = next_frame(&mut ws).await.unwrap();
        assert_eq!(ping["type"], "ping", "{ping}");
        let stamp = ping["message"].as_u64().unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now_ms.abs_diff(stamp) < 2_000, "{stamp} vs {now_ms}");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_800) && waited < Duration::from_secs(10),
        "two pings in {waited:?}"
    );
    // A plain connection ignores the parameters: the server's minute.
    let mut plain = server.connect("?pi=1&ptp=ms").await;
    assert_eq!(next_frame(&mut plain).await.unwrap()["type"], "welcome");
    let early = tokio::time::timeout(Duration::from_millis(1_500), next_frame(&mut plain)).await;
    assert!(early.is_err(), "a frame within 1.5 s: {early:?}");
}
