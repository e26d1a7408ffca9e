//! A restored session keeps its credential's expiry: cable-server with
//! `--jwt-secret`, an extended connection whose JWT expires in a few
//! seconds, dropped and restored with its sid; the restored connection gets
//! `token_expired` at the token's `exp`, not a token life later, and a
//! session whose token expired while it was away is not restored. An app
//! that cannot resume (`--app circle`) gives a fresh welcome.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const EXT: &str = "actioncable-v1-ext-json";
const SECRET: &str = "expiry-s3cret";

/// A JWT for `sub` expiring `secs` from now (whole seconds, as JWTs are).
fn jwt(sub: &str, secs: u64) -> (String, SystemTime) {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    let claims = serde_json::json!({ "sub": sub, "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    (token, UNIX_EPOCH + Duration::from_secs(exp))
}

async fn open(server: &CableServer, query: &str) -> (Ws, serde_json::Value) {
    let (mut ws, protocol) = connect(&server.url(query), Some(&server.origin()), Some(EXT))
        .await
        .expect("connect");
    assert_eq!(protocol.as_deref(), Some(EXT));
    let welcome = next_message(&mut ws).await.unwrap();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// Drops the TCP connection with no close frame (a network failure).
async fn drop_socket(ws: Ws) {
    drop(ws);
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_restored_session_expires_with_its_token() {
    let server = CableServer::start(&["--jwt-secret", SECRET]);
    let (token, exp) = jwt("alice", 4);
    let (mut ws, welcome) = open(&server, &format!("?token={token}")).await;
    let sid = welcome["sid"].as_str().unwrap().to_owned();
    subscribe_pubsub(&mut ws, "chat").await;
    drop_socket(ws).await;

    // Back with the sid (and no token: the session is what authenticates).
    let (mut ws, welcome) = open(&server, &format!("?sid={sid}")).await;
    assert_eq!(welcome["restored"], true, "{welcome}");
    let started = Instant::now();
    let left = exp.duration_since(SystemTime::now()).unwrap_or_default();
    // Nothing until the token's exp, then token_expired and a close.
    let frame = loop {
        let frame = next_frame(&mut ws).await.expect("a frame before the close");
        if frame["type"] != "ping" {
            break frame;
        }
    };
    let waited = started.elapsed();
    assert_eq!(
        frame,
        serde_json::json!({"type":"disconnect","reason":"token_expired","reconnect":false})
    );
    assert!(
        waited + Duration::from_millis(300) >= left && waited <= left + Duration::from_secs(3),
        "token_expired after {waited:?}, the token had {left:?} left"
    );
    assert!(next_frame(&mut ws).await.is_none(), "closed");

    // A session whose token expired while it was away: a fresh connect,
    // which needs a live token.
    let (token, _) = jwt("bob", 2);
    let (mut ws, welcome) = open(&server, &format!("?token={token}")).await;
    let sid = welcome["sid"].as_str().unwrap().to_owned();
    subscribe_pubsub(&mut ws, "chat").await;
    drop_socket(ws).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mut ws, _) = connect(
        &server.url(&format!("?sid={sid}")),
        Some(&server.origin()),
        Some(EXT),
    )
    .await
    .expect("connect");
    let frame = next_message(&mut ws).await.unwrap();
    assert_eq!(
        frame,
        serde_json::json!({"type":"disconnect","reason":"unauthorized","reconnect":false})
    );
}

/// `--app circle` keeps state per connection it cannot move: no session is
/// kept, and a client back with its sid is authenticated again and gets a
/// fresh welcome.
#[tokio::test]
async fn an_app_that_cannot_resume_gives_a_fresh_welcome() {
    let server = CableServer::start(&["--app", "circle", "--jwt-secret", SECRET]);
    let (token, _) = jwt("42", 3600);
    let (ws, welcome) = open(&server, &format!("?token={token}")).await;
    let sid = welcome["sid"].as_str().unwrap().to_owned();
    drop_socket(ws).await;
    let (_ws, welcome) = open(&server, &format!("?token={token}&sid={sid}")).await;
    assert_eq!(welcome.get("restored"), None, "{welcome}");
    let fresh = welcome["sid"].as_str().unwrap();
    assert!(!fresh.is_empty() && fresh != sid, "{welcome}");
    // Without a token the sid alone is not enough.
    let (mut ws, _) = connect(
        &server.url(&format!("?sid={fresh}")),
        Some(&server.origin()),
        Some(EXT),
    )
    .await
    .expect("connect");
    let frame = next_message(&mut ws).await.unwrap();
    assert_eq!(frame["type"], "disconnect", "{frame}");
}
