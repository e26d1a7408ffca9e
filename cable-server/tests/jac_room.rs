//! The Jac dialect without a backend: one room across Action Cable,
//! BuddyBoss and Jac (a Jac channel, a BuddyBoss thread and an Action Cable
//! stream with the same name are one hub stream), and Jac's transport as
//! the real server's was recorded (pings, 1007, 1009, 1012 at shutdown).

mod common;

use std::time::Duration;

use common::{connect, next_frame, send, CableServer, Ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

async fn jac(server: &CableServer, query: &str) -> (Ws, Value) {
    let url = format!("ws://{}/websocket{query}", server.addr);
    let (mut ws, protocol) = connect(&url, None, None).await.expect("a Jac socket");
    assert_eq!(protocol, None);
    let info = next_frame(&mut ws).await.expect("the connection info");
    assert_eq!(info["type"], "connection", "{info}");
    (ws, info)
}

/// The next close frame's code (other frames skipped).
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match timeout(common::WAIT, ws.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn one_room_across_action_cable_buddyboss_and_jac() {
    let server = CableServer::start(&[
        "--mount",
        "/websocket=jac",
        "--mount",
        "/bb=buddyboss",
        "--mount",
        "/cable=actioncable",
        "--allow-any-origin",
    ]);
    let mut cable = server.connect("").await;
    assert_eq!(
        next_frame(&mut cable).await,
        Some(json!({"type": "welcome"}))
    );
    let identifier = common::subscribe_pubsub(&mut cable, "room-9").await;
    let (mut bb, _) = connect(&format!("ws://{}/bb", server.addr), None, None)
        .await
        .unwrap();
    bb.send(Message::text(
        r#"{"type":"join_thread","threadId":"room-9"}"#,
    ))
    .await
    .unwrap();
    let (mut a, info) = jac(&server, "?channel_id=room-9").await;
    assert_eq!(info["data"]["channel_id"], "room-9");
    assert_eq!(info["data"]["root_id"], "n::000000000000000000000001");
    let (mut other, _) = jac(&server, "?channel_id=room-10").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A Jac channel event: the sender (a member), BuddyBoss and Action Cable.
    let data = json!({"type": "chat", "data": {"m": "hello room"}});
    send(
        &mut a,
        json!({"type": "channel", "channel_ids": ["room-9"], "data": data}),
    )
    .await;
    assert_eq!(next_frame(&mut a).await, Some(data.clone()));
    assert_eq!(next_frame(&mut bb).await, Some(data.clone()));
    assert_eq!(
        common::next_message(&mut cable).await,
        Some(json!({"identifier": identifier, "message": data}))
    );

    // A broadcast from outside reaches the three, each in its own frame.
    let status = common::post_broadcast(
        server.addr,
        None,
        &json!({"stream": "room-9", "data": {"text": "to all"}}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(next_frame(&mut a).await, Some(json!({"text": "to all"})));
    assert_eq!(
        next_frame(&mut bb).await,
        Some(json!({"type": "message", "threadId": "room-9", "message": {"text": "to all"}}))
    );
    assert_eq!(
        common::next_message(&mut cable).await,
        Some(json!({"identifier": identifier, "message": {"text": "to all"}}))
    );

    // A BuddyBoss message in the thread reaches the Jac member.
    bb.send(Message::text(
        r#"{"type":"send_message","threadId":"room-9","message":"from bb"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(
        next_frame(&mut a).await,
        Some(
            json!({"type": "message", "message": "from bb", "threadId": "room-9", "senderId": null})
        )
    );
    common::assert_silent(&mut other, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn jac_transport_as_recorded() {
    let mut server = CableServer::start(&[
        "--mount",
        "/websocket=jac",
        "--jac-ping-interval-ms",
        "300",
        "--jac-max-frame-bytes",
        "4096",
    ]);
    // Keepalive pings with 4 bytes.
    let (mut a, _) = jac(&server, "").await;
    let ping = timeout(Duration::from_secs(3), async {
        loop {
            if let Some(Ok(Message::Ping(payload))) = a.next().await {
                return payload;
            }
        }
    })
    .await
    .expect("a ping");
    assert_eq!(ping.len(), 4);
    // A binary frame is not read: a traceback ending with KeyError: 'text'.
    a.send(Message::binary(&br#"{"type":"connection"}"#[..]))
        .await
        .unwrap();
    let error = next_frame(&mut a).await.unwrap();
    assert_eq!(error["error"][0], "Traceback (most recent call last):\n");
    assert_eq!(
        error["error"].as_array().unwrap().last().unwrap(),
        "KeyError: 'text'\n"
    );
    // Invalid UTF-8 in a text frame: 1007.
    let (mut b, _) = jac(&server, "").await;
    let raw = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![0xff, 0xfe],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    b.send(Message::Frame(raw)).await.unwrap();
    assert_eq!(close_code(&mut b).await, Some(1007));
    // Over the frame limit: 1009.
    let (mut c, _) = jac(&server, "").await;
    c.send(Message::text("x".repeat(5000))).await.unwrap();
    assert_eq!(close_code(&mut c).await, Some(1009));
    // Shutdown: 1012 to every Jac socket.
    server.terminate();
    assert_eq!(close_code(&mut a).await, Some(1012));
    server.wait_exit(Duration::from_secs(10));
}

/// A channel event of `pad` bytes of data from a member of channel "c".
fn padded_channel_event(pad: usize) -> String {
    json!({"type": "channel", "channel_ids": ["c"], "data": {"pad": "x".repeat(pad)}}).to_string()
}

/// Jac sockets have their own frame limit (--jac-max-frame-bytes, default
/// 16 MiB as Jac Cloud's server), independent of Action Cable's
/// --max-frame-bytes either way.
#[tokio::test]
async fn the_jac_mount_has_its_own_frame_limit() {
    // Default: Jac takes a frame far over Action Cable's default 64 KiB.
    let server = CableServer::start(&["--mount", "/websocket=jac", "--allow-any-origin"]);
    let (mut a, _) = jac(&server, "?channel_id=c").await;
    let big = padded_channel_event(200 * 1024);
    a.send(Message::text(big.clone())).await.unwrap();
    let echoed = next_frame(&mut a).await.expect("the event delivered back");
    assert_eq!(echoed["pad"].as_str().map(str::len), Some(200 * 1024));
    let mut cable = server.connect("").await;
    assert_eq!(
        next_frame(&mut cable).await,
        Some(json!({"type": "welcome"}))
    );
    cable.send(Message::text(big)).await.unwrap();
    assert_eq!(close_code(&mut cable).await, Some(1009));

    // Jac's limit below Action Cable's: each socket by its own.
    let server = CableServer::start(&[
        "--mount",
        "/websocket=jac",
        "--allow-any-origin",
        "--max-frame-bytes",
        "8192",
        "--jac-max-frame-bytes",
        "4096",
    ]);
    let (mut a, _) = jac(&server, "?channel_id=c").await;
    a.send(Message::text(padded_channel_event(3000)))
        .await
        .unwrap();
    assert!(next_frame(&mut a).await.is_some());
    a.send(Message::text(padded_channel_event(5000)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut a).await, Some(1009));
    let mut cable = server.connect("").await;
    assert_eq!(
        next_frame(&mut cable).await,
        Some(json!({"type": "welcome"}))
    );
    let identifier = common::subscribe_pubsub(&mut cable, "s").await;
    let command = json!({"command": "message", "identifier": identifier,
        "data": json!({"action": "speak", "pad": "x".repeat(6000)}).to_string()});
    assert!(command.to_string().len() > 4096);
    cable
        .send(Message::text(command.to_string()))
        .await
        .unwrap();
    // Still open: a subscription after it is confirmed.
    let second = common::pubsub_identifier("s2");
    send(
        &mut cable,
        json!({"command": "subscribe", "identifier": second}),
    )
    .await;
    loop {
        let frame = common::next_message(&mut cable)
            .await
            .expect("open after a frame under its own limit");
        if frame["type"] == "confirm_subscription" && frame["identifier"] == second.as_str() {
            break;
        }
    }
}

/// Without --jac-token-secret every token means the public root, and
/// without --jac-backend every walker is refused as the real server refuses
/// an unknown one.
#[tokio::test]
async fn without_secret_or_backend() {
    let server = CableServer::start(&["--mount", "/websocket=jac"]);
    let (mut a, info) = jac(&server, "?auth=Bearer%20abc").await;
    assert_eq!(info["data"]["root_id"], "n::000000000000000000000001");
    send(
        &mut a,
        json!({"type": "walker", "walker": "echo_report", "response": true}),
    )
    .await;
    assert_eq!(
        next_frame(&mut a).await,
        Some(json!({"type": "walker", "error": "Invalid request! Please use valid walker event!"}))
    );
}

/// A walker call is a decision with a deadline: a backend that never
/// answers gets the socket an error frame after --jac-walker-timeout-ms, and
/// the socket's next event is handled after it, in order.
#[tokio::test]
async fn a_walker_the_backend_never_answers_times_out_in_order() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        loop {
            let (socket, _) = silent.accept().await.unwrap();
            sockets.push(socket);
        }
    });
    let server = CableServer::start(&[
        "--mount",
        "/websocket=jac",
        "--jac-backend",
        &backend,
        "--jac-walker-timeout-ms",
        "300",
    ]);
    let (mut a, info) = jac(&server, "").await;
    send(
        &mut a,
        json!({"type": "walker", "walker": "echo_report", "response": true}),
    )
    .await;
    send(&mut a, json!({"type": "connection"})).await;
    let started = std::time::Instant::now();
    let error = next_frame(&mut a).await.unwrap();
    let last = error["error"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last.as_str().unwrap().starts_with("TimeoutError: "),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(next_frame(&mut a).await, Some(info));
    held.abort();
}

/// Beside a Jac mount, a WebSocket upgrade on any other path is refused
/// with 403 and an empty body, as Jac Cloud's server refuses it (recorded:
/// `/websocket/`, `/ws`, `/walker/echo_report`).
#[tokio::test]
async fn upgrades_on_other_paths_are_403_as_jac_cloud_answers() {
    let server = CableServer::start(&["--mount", "/websocket=jac"]);
    for path in ["/websocket/", "/ws", "/walker/echo_report"] {
        let url = format!("ws://{}{path}", server.addr);
        match connect(&url, None, None).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 403, "{path}");
                assert_eq!(response.headers()["connection"], "close");
                assert!(response.body().as_ref().is_none_or(|b| b.is_empty()));
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    // Action Cable's own path is still served beside it.
    let mut cable = server.connect("").await;
    assert_eq!(
        next_frame(&mut cable).await,
        Some(json!({"type": "welcome"}))
    );
}

/// At most --jac-walker-concurrency calls are in flight: past it a call
/// waits for a free one (within its own deadline). Seen from a backend that
/// never answers: while the first call is stuck, the second opens nothing.
#[tokio::test]
async fn walker_calls_in_flight_are_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = format!("http://{}", silent.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        loop {
            let (socket, _) = silent.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            sockets.push(socket);
        }
    });
    let server = CableServer::start(&[
        "--mount",
        "/websocket=jac",
        "--jac-backend",
        &backend,
        "--jac-walker-timeout-ms",
        "1000",
        "--jac-walker-concurrency",
        "1",
    ]);
    let (mut a, _) = jac(&server, "").await;
    let (mut b, _) = jac(&server, "").await;
    let walker = json!({"type": "walker", "walker": "w", "response": true});
    send(&mut a, walker.clone()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut b, walker).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(accepted.load(Ordering::SeqCst) <= 1, "one call in flight");
    let a_error = next_frame(&mut a).await.unwrap();
    assert!(a_error["error"].is_array(), "{a_error}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "the second call, once the first is done"
    );
    let b_error = next_frame(&mut b).await.unwrap();
    assert!(b_error["error"].is_array(), "{b_error}");
    held.abort();
}
