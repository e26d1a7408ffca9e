//! `cable-server --mount /=buddyboss --mount /cable=actioncable --token T`
//! with plain Node `ws` clients speaking as the BuddyBoss doc's snippets do
//! (`tests/js/buddyboss.mjs`): presence, thread and direct messages, typing,
//! signalling, an error reply for each bad input, 200 members in a thread,
//! and one room shared with an Action Cable client receiving a broadcast.
//!
//! Needs `node` and the npm packages of `tests/js` (as `node_client.rs`).

mod common;

use std::time::Duration;

use common::CableServer;

#[test]
fn buddyboss_clients_as_the_doc_shows_them() {
    common::ensure_npm_packages(&["ws"]);
    let server = CableServer::start(&[
        "--mount",
        "/=buddyboss",
        "--mount",
        "/cable=actioncable",
        "--token",
        "T",
    ]);
    common::run_node_script(
        "buddyboss.mjs",
        &[
            ("BB_URL", format!("ws://{}/", server.addr)),
            ("BB_TOKEN", "T".to_owned()),
        ],
        Duration::from_secs(60),
    );
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
