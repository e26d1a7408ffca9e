//! `cable-server --mount /=buddyboss --mount /cable=actioncable --token T`
//! with plain Node `ws` clients speaking as the BuddyBoss doc's snippets do
//! (`tests/js/buddyboss.mjs`): presence, thread and direct messages, typing,
//! signalling, an error reply for each bad input, 200 members in a thread,
//! and one room shared with an Action Cable client receiving a broadcast.
//!
//! Needs `node` and the npm packages of `tests/js` (as `node_client.rs`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::CableServer;

#[test]
fn buddyboss_clients_as_the_doc_shows_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !dir.join("node_modules/ws").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci (node and npm must be on PATH)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    let server = CableServer::start(&[
        "--mount",
        "/=buddyboss",
        "--mount",
        "/cable=actioncable",
        "--token",
        "T",
    ]);
    let mut child = Command::new("node")
        .arg("buddyboss.mjs")
        .current_dir(&dir)
        .env("BB_URL", format!("ws://{}/", server.addr))
        .env("BB_TOKEN", "T")
        .stdin(Stdio::null())
        .spawn()
        .expect("run node (node must be on PATH)");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the BuddyBoss clients did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the BuddyBoss clients failed: {status:?}");
}

/// One path carrying Action Cable and BuddyBoss: a client offering
/// `actioncable-v1-json` gets Action Cable (welcome), one offering no
/// subprotocol gets BuddyBoss (no welcome; its frames parsed as BuddyBoss'),
/// and a broadcast to one stream reaches both in their own frames.
#[tokio::test]
async fn one_path_serves_action_cable_and_buddyboss_by_subprotocol() {
    use common::{connect, next_frame, send};
    use futures_util::SinkExt;
    use serde_json::json;
    use tokio_tungstenite::tungstenite::Message;

    let server = CableServer::start(&[
        "--mount",
        "/ws=actioncable",
        "--mount",
        "/ws=buddyboss",
        "--allow-any-origin",
    ]);
    let url = format!("ws://{}/ws", server.addr);
    let (mut cable, protocol) = connect(&url, None, Some("actioncable-v1-json"))
        .await
        .expect("upgrade with the Action Cable subprotocol");
    assert_eq!(protocol.as_deref(), Some("actioncable-v1-json"));
    assert_eq!(
        next_frame(&mut cable).await,
        Some(json!({"type": "welcome"}))
    );
    let identifier = json!({"channel": "$pubsub", "stream_name": "room-9"}).to_string();
    send(
        &mut cable,
        json!({"command": "subscribe", "identifier": identifier}),
    )
    .await;
    assert_eq!(
        next_frame(&mut cable).await,
        Some(json!({"identifier": identifier, "type": "confirm_subscription"}))
    );

    let (mut plain, protocol) = connect(&url, None, None)
        .await
        .expect("upgrade without a subprotocol");
    assert_eq!(protocol, None);
    // BuddyBoss speaks first: an unknown type gets BuddyBoss' error reply.
    plain
        .send(Message::text(r#"{"type":"nope"}"#))
        .await
        .unwrap();
    let error = next_frame(&mut plain).await.expect("an error reply");
    assert_eq!(error["type"], "error", "{error}");
    plain
        .send(Message::text(
            r#"{"type":"join_thread","threadId":"room-9"}"#,
        ))
        .await
        .unwrap();
    // The join is handled before the broadcast: its frames are in order.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = common::post_broadcast(
        server.addr,
        None,
        &json!({"stream": "room-9", "data": {"text": "to both"}}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        common::next_message(&mut cable).await,
        Some(json!({"identifier": identifier, "message": {"text": "to both"}}))
    );
    assert_eq!(
        next_frame(&mut plain).await,
        Some(json!({"type": "message", "threadId": "room-9", "message": {"text": "to both"}}))
    );
}
