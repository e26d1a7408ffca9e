//! The real binary over real sockets: handshake, pings, subscriptions,
//! broadcasts over HTTP, shutdown, slow consumers.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn subprotocols_as_rails() {
    let server = CableServer::start(&[]);
    let origin = server.origin();
    let url = server.url("");
    // The Rails JS client's offer: the first supported one is echoed.
    let (mut ws, protocol) = connect(
        &url,
        Some(&origin),
        Some("actioncable-v1-json, actioncable-unsupported"),
    )
    .await
    .unwrap();
    assert_eq!(protocol.as_deref(), Some("actioncable-v1-json"));
    assert_eq!(
        next_frame(&mut ws).await.unwrap(),
        json!({"type": "welcome"})
    );
    // Client order wins.
    let (_, protocol) = connect(
        &url,
        Some(&origin),
        Some("actioncable-unsupported, actioncable-v1-json"),
    )
    .await
    .unwrap();
    assert_eq!(protocol.as_deref(), Some("actioncable-unsupported"));
    // None offered: no header, still welcomed.
    let (mut ws, protocol) = connect(&url, Some(&origin), None).await.unwrap();
    assert_eq!(protocol, None);
    assert_eq!(
        next_frame(&mut ws).await.unwrap(),
        json!({"type": "welcome"})
    );
    // None supported: no header, still accepted (the client decides).
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", origin.parse().unwrap());
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // tungstenite refuses a response without the protocol it asked for; the
    // raw answer is what matters here.
    let error = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("SubProtocol") || error.to_string().contains("protocol"),
        "{error}"
    );
    let (status, head, _) = http(
        server.addr,
        "GET",
        "/cable",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "graphql-ws"),
            ("Origin", &origin),
        ],
        b"",
    )
    .await;
    assert_eq!(status, 101, "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
}

#[tokio::test]
async fn refused_origins_and_plain_requests_get_404() {
    let server = CableServer::start(&["--allowed-origin", "http://allowed.example"]);
    let url = server.url("");
    let error = connect(&url, Some("http://evil.example"), None)
        .await
        .unwrap_err();
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 404);
            assert_eq!(
                response.body().as_deref(),
                Some(b"Page not found".as_slice())
            );
        }
        other => panic!("expected a 404, got {other}"),
    }
    // No Origin at all: refused, as Rails does.
    assert!(connect(&url, None, None).await.is_err());
    // An allowed origin passes.
    let (mut ws, _) = connect(&url, Some("http://allowed.example"), None)
        .await
        .unwrap();
    assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
    // A plain GET of the mount path: 404 "Page not found", as Rails.
    let (status, _, body) = http(server.addr, "GET", "/cable", &[], b"").await;
    assert_eq!((status, body.as_str()), (404, "Page not found"));
    let (status, _, _) = http(server.addr, "GET", "/nowhere", &[], b"").await;
    assert_eq!(status, 404);
    let (status, _, body) = http(server.addr, "GET", "/health", &[], b"").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    // --allow-any-origin: anything goes.
    let open = CableServer::start(&["--allow-any-origin"]);
    let (mut ws, _) = connect(&open.url(""), None, None).await.unwrap();
    assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
}

#[tokio::test]
async fn welcome_then_pings_on_one_beat() {
    let server = CableServer::start(&["--ping-interval-ms", "300"]);
    let mut a = server.connect("").await;
    let mut b = server.connect("").await;
    assert_eq!(
        next_frame(&mut a).await.unwrap(),
        json!({"type": "welcome"})
    );
    assert_eq!(
        next_frame(&mut b).await.unwrap(),
        json!({"type": "welcome"})
    );
    let start = tokio::time::Instant::now();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let ping = next_frame(&mut a).await.unwrap();
        assert_eq!(ping["type"], "ping");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let seconds = ping["message"].as_u64().expect("integer seconds");
        assert!(seconds.abs_diff(now) <= 2, "{seconds} vs {now}");
        seen.push(start.elapsed());
        // The same beat reaches b with the same payload.
        assert_eq!(next_frame(&mut b).await.unwrap(), ping);
    }
    let spacing = (seen[3] - seen[0]) / 3;
    assert!(
        spacing >= Duration::from_millis(200) && spacing <= Duration::from_millis(450),
        "{spacing:?}"
    );
}

#[tokio::test]
async fn subscribe_confirm_and_http_broadcasts() {
    let server = CableServer::start(&["--broadcast-key", "k3y"]);
    let mut a = server.connect("?token=alice").await;
    let mut b = server.connect("").await;
    let identifier = subscribe_pubsub(&mut a, "chat_1").await;
    subscribe_pubsub(&mut b, "chat_1").await;

    // A $pubsub identifier without a stream: rejected.
    let bad = json!({"channel": "$pubsub"}).to_string();
    send(&mut a, json!({"command": "subscribe", "identifier": bad})).await;
    assert_eq!(
        next_message(&mut a).await.unwrap(),
        json!({"identifier": bad, "type": "reject_subscription"})
    );
    // Another channel: no answer at all, as Rails for an unknown channel.
    let other = json!({"channel": "ChatChannel"}).to_string();
    send(&mut a, json!({"command": "subscribe", "identifier": other})).await;
    assert_silent(&mut a, Duration::from_millis(300)).await;

    // POST /_broadcast: the key is required.
    let body = json!({"stream": "chat_1", "data": "{\"text\":\"<hi>\"}"});
    assert_eq!(post_broadcast(server.addr, None, &body).await, 401);
    assert_eq!(post_broadcast(server.addr, Some("nope"), &body).await, 401);
    assert_eq!(post_broadcast(server.addr, Some("k3y"), &body).await, 201);
    let expected = json!({"identifier": identifier, "message": {"text": "<hi>"}});
    assert_eq!(next_message(&mut a).await.unwrap(), expected);
    assert_eq!(next_message(&mut b).await.unwrap(), expected);

    // The raw frame escapes as Rails does.
    let batch = json!([
        {"stream": "chat_1", "data": {"n": 1}},
        {"stream": "elsewhere", "data": {"n": 0}},
        {"stream": "chat_1", "data": "\"two\""}
    ]);
    assert_eq!(post_broadcast(server.addr, Some("k3y"), &batch).await, 201);
    assert_eq!(
        next_message(&mut a).await.unwrap()["message"],
        json!({"n": 1})
    );
    assert_eq!(next_message(&mut a).await.unwrap()["message"], json!("two"));
    assert_eq!(
        next_message(&mut b).await.unwrap()["message"],
        json!({"n": 1})
    );
    assert_eq!(next_message(&mut b).await.unwrap()["message"], json!("two"));
    let bad_body = json!({"stream": "chat_1", "data": "not json"});
    assert_eq!(
        post_broadcast(server.addr, Some("k3y"), &bad_body).await,
        422
    );

    // Unsubscribe stops delivery to a, not to b.
    send(
        &mut a,
        json!({"command": "unsubscribe", "identifier": identifier}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body = json!({"stream": "chat_1", "data": {"after": true}});
    assert_eq!(post_broadcast(server.addr, Some("k3y"), &body).await, 201);
    assert_eq!(
        next_message(&mut b).await.unwrap()["message"],
        json!({"after": true})
    );
    assert_silent(&mut a, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn token_allow_list_rejects_as_rails() {
    let server = CableServer::start(&["--token", "s3cret"]);
    let mut ok = server.connect("?token=s3cret").await;
    assert_eq!(next_frame(&mut ok).await.unwrap()["type"], "welcome");
    for query in ["", "?token=wrong"] {
        let mut ws = server.connect(query).await;
        assert_eq!(
            next_frame(&mut ws).await.unwrap(),
            json!({"type": "disconnect", "reason": "unauthorized", "reconnect": false})
        );
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
            other => panic!("expected a close, got {other:?}"),
        }
    }
    // The bearer header works too.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.url("").as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", server.origin().parse().unwrap());
    request
        .headers_mut()
        .insert("Authorization", "Bearer s3cret".parse().unwrap());
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
}

#[tokio::test]
async fn sigterm_sends_server_restart_to_every_client_then_exits_0() {
    let mut server = CableServer::start(&[]);
    let mut clients = Vec::new();
    for i in 0..5 {
        let mut ws = server.connect(&format!("?token=u{i}")).await;
        subscribe_pubsub(&mut ws, "room").await;
        clients.push(ws);
    }
    server.terminate();
    for ws in &mut clients {
        assert_eq!(
            next_message(ws).await.unwrap(),
            json!({"type": "disconnect", "reason": "server_restart", "reconnect": true})
        );
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
            other => panic!("expected a close, got {other:?}"),
        }
    }
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_others_still_receive() {
    let server = CableServer::start(&[
        "--max-queued-bytes",
        "1048576",
        "--write-timeout-ms",
        "1000",
        "--ping-interval-ms",
        "100000",
    ]);
    // The slow client: a small receive buffer, and it never reads after
    // subscribing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.url("?token=slow").as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", server.origin().parse().unwrap());
    let (mut slow, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    subscribe_pubsub(&mut slow, "firehose").await;
    let mut fast = server.connect("?token=fast").await;
    subscribe_pubsub(&mut fast, "firehose").await;

    let payload = "x".repeat(10_000);
    let total = 800;
    // The producer keeps at most three batches (600 KB) ahead of the fast
    // client, well within its 1 MiB bound; the slow client falls behind
    // without limit.
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < total {
            let frame = next_message(&mut fast).await.expect("fast client open");
            assert_eq!(frame["message"]["n"], received, "{frame}");
            received += 1;
            let _ = progress_tx.send(received);
        }
        received
    });
    for chunk in 0..(total / 20) {
        let ahead = (chunk * 20).saturating_sub(60);
        tokio::time::timeout(WAIT, progress.wait_for(|&n| n >= ahead))
            .await
            .expect("the fast client keeps up")
            .unwrap();
        let batch: Vec<_> = (0..20)
            .map(|i| json!({"stream": "firehose", "data": {"n": chunk * 20 + i, "pad": payload}}))
            .collect();
        assert_eq!(
            post_broadcast(server.addr, None, &serde_json::Value::Array(batch)).await,
            201
        );
    }
    let received = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the fast client got everything in time")
        .unwrap();
    assert_eq!(received, total);
    // The slow client was dropped: reading now, it finds the end of the
    // stream (after whatever the kernel had buffered, perhaps the too_slow
    // disconnect), not an endless flow.
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        let mut frames = 0usize;
        let mut too_slow = false;
        while let Some(message) = slow.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    frames += 1;
                    if text.contains("too_slow") {
                        too_slow = true;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (frames, too_slow)
    })
    .await
    .expect("the slow client's stream ended");
    eprintln!(
        "slow client: {} frames before the end, too_slow seen: {}",
        drained.0, drained.1
    );
    assert!(drained.0 < total, "{drained:?}");
}

#[tokio::test]
async fn a_client_that_vanishes_mid_write_costs_the_others_nothing() {
    let server = CableServer::start(&["--ping-interval-ms", "100000"]);
    let mut stays = server.connect("?token=stays").await;
    subscribe_pubsub(&mut stays, "busy").await;
    let mut vanishing = Vec::new();
    for i in 0..5 {
        let mut ws = server.connect(&format!("?token=v{i}")).await;
        subscribe_pubsub(&mut ws, "busy").await;
        vanishing.push(ws);
    }
    let payload = "y".repeat(20_000);
    let mut sent = 0;
    for round in 0..10 {
        if round == 2 {
            // Gone without a close: reset the TCP connections.
            for ws in vanishing.drain(..) {
                let tcp = ws.into_inner();
                // A zero linger does not block; it makes the close a reset.
                #[allow(deprecated)]
                tcp.set_linger(Some(Duration::ZERO)).unwrap();
                drop(tcp);
            }
        }
        let batch: Vec<_> = (0..10)
            .map(|i| json!({"stream": "busy", "data": {"n": round * 10 + i, "pad": payload}}))
            .collect();
        assert_eq!(
            post_broadcast(server.addr, None, &serde_json::Value::Array(batch)).await,
            201
        );
        for _ in 0..10 {
            let frame = next_message(&mut stays).await.expect("still open");
            assert_eq!(frame["message"]["n"], sent);
            sent += 1;
        }
    }
    let (status, _, _) = http(server.addr, "GET", "/health", &[], b"").await;
    assert_eq!(status, 200);
}
