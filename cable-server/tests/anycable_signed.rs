//! Signed `$pubsub` streams and Turbo streams served without the app, their
//! names signed by Ruby's real `ActiveSupport::MessageVerifier` (Debian's
//! ruby-activesupport) with Turbo's settings (SHA256 digest, JSON
//! serializer); tampered names and other secrets are rejected. With
//! `--rpc-url` (the `@anycable/serverless-js` backend of
//! `tests/js/rpc_backend.mjs`) too: they are served without an RPC call.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

const STREAMS_SECRET: &str = "streams-s3cret";
const TURBO_SECRET: &str = "turbo-s3cret";

/// `MessageVerifier.new(secret, digest: "SHA256", serializer: JSON).generate(name)`
/// in Ruby; with `url_safe`, the same message with URL-safe Base64 and no
/// padding (ActiveSupport 7.1's `url_safe: true`; Debian's 6.1 has no such
/// option, so the HMAC is taken over the URL-safe data as 7.1 does).
fn rails_sign(secret: &str, name: &str, url_safe: bool) -> String {
    let script = r##"
require "json"
require "base64"
require "openssl"
require "active_support"
require "active_support/message_verifier"
secret, name, url_safe = ARGV
verifier = ActiveSupport::MessageVerifier.new(secret, digest: "SHA256", serializer: JSON)
signed = verifier.generate(name)
if url_safe == "1"
  data = Base64.urlsafe_encode64(JSON.dump(name), padding: false)
  signed = "#{data}--#{OpenSSL::HMAC.hexdigest("SHA256", secret, data)}"
end
abort "verify failed" unless url_safe == "1" || verifier.verified(signed) == name
print signed
"##;
    let output = Command::new("ruby")
        .args(["-e", script, secret, name, if url_safe { "1" } else { "0" }])
        .output()
        .expect("run ruby (Debian's ruby and ruby-activesupport must be installed)");
    assert!(
        output.status.success(),
        "ruby: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn subscribe(ws: &mut Ws, identifier: &str) -> Value {
    send(
        ws,
        json!({"command": "subscribe", "identifier": identifier}),
    )
    .await;
    loop {
        let frame = next_message(ws).await.expect("an answer");
        if frame["type"] != "welcome" {
            assert_eq!(frame["identifier"], identifier);
            return frame;
        }
    }
}

#[tokio::test]
async fn rails_signed_names_are_served_and_tampered_ones_rejected() {
    // Pings would keep a wait for a missing frame alive: bound the test.
    tokio::time::timeout(std::time::Duration::from_secs(60), signed_names())
        .await
        .expect("the test took over 60 s");
}

async fn signed_names() {
    let server = CableServer::start(&[
        "--streams-secret",
        STREAMS_SECRET,
        "--turbo-streams-secret",
        TURBO_SECRET,
    ]);
    let mut ws = server.connect("").await;

    // A $pubsub signed stream, standard Base64 (ActiveSupport's own).
    let signed = rails_sign(STREAMS_SECRET, "chat/42", false);
    assert!(signed.contains("--"), "{signed}");
    let pubsub = json!({"channel": "$pubsub", "signed_stream_name": signed}).to_string();
    assert_eq!(
        subscribe(&mut ws, &pubsub).await["type"],
        "confirm_subscription"
    );

    // A Turbo stream (turbo-rails' streamables name), URL-safe Base64.
    let turbo_name = "gid://app/Room/1:messages";
    let turbo_signed = rails_sign(TURBO_SECRET, turbo_name, true);
    assert!(
        turbo_signed.contains('_') || turbo_signed.contains('-') || !turbo_signed.contains('=')
    );
    let turbo =
        json!({"channel": "Turbo::StreamsChannel", "signed_stream_name": turbo_signed}).to_string();
    assert_eq!(
        subscribe(&mut ws, &turbo).await["type"],
        "confirm_subscription"
    );

    // Both stream from the names they carry.
    let status = post_broadcast(
        server.addr,
        None,
        &json!({"stream": "chat/42", "data": {"n": 1}}),
    )
    .await;
    assert!((200..300).contains(&status));
    let frame = next_message(&mut ws).await.unwrap();
    assert_eq!(frame, json!({"identifier": pubsub, "message": {"n": 1}}));
    let html = "<turbo-stream action=\"append\"></turbo-stream>";
    // turbo-rails through AnyCable's broadcaster: `data` is JSON text.
    let data = serde_json::to_string(html).unwrap();
    post_broadcast(
        server.addr,
        None,
        &json!({"stream": turbo_name, "data": data}),
    )
    .await;
    let frame = next_message(&mut ws).await.unwrap();
    assert_eq!(frame, json!({"identifier": turbo, "message": html}));

    // Tampered: another name under the old digest.
    let (data, digest) = signed.rsplit_once("--").unwrap();
    let forged_data = rails_sign(STREAMS_SECRET, "chat/43", false);
    let forged = format!("{}--{digest}", forged_data.rsplit_once("--").unwrap().0);
    assert_ne!(forged.split("--").next(), Some(data));
    let tampered = json!({"channel": "$pubsub", "signed_stream_name": forged}).to_string();
    assert_eq!(
        subscribe(&mut ws, &tampered).await["type"],
        "reject_subscription"
    );
    // Signed with another secret: Turbo's name on $pubsub.
    let other = json!({"channel": "$pubsub", "signed_stream_name": rails_sign(TURBO_SECRET, "chat/42", false)})
        .to_string();
    assert_eq!(
        subscribe(&mut ws, &other).await["type"],
        "reject_subscription"
    );
    // Not a signed message at all.
    let garbage =
        json!({"channel": "Turbo::StreamsChannel", "signed_stream_name": "abc"}).to_string();
    assert_eq!(
        subscribe(&mut ws, &garbage).await["type"],
        "reject_subscription"
    );
    // Nothing reached the rejected ones.
    post_broadcast(
        server.addr,
        None,
        &json!({"stream": "chat/43", "data": {"n": 2}}),
    )
    .await;
    assert_silent(&mut ws, std::time::Duration::from_millis(300)).await;
}

#[tokio::test]
async fn without_a_secret_signed_names_are_rejected() {
    let server = CableServer::start(&[]);
    let mut ws = server.connect("").await;
    let signed = rails_sign(STREAMS_SECRET, "chat/42", false);
    let pubsub = json!({"channel": "$pubsub", "signed_stream_name": signed}).to_string();
    assert_eq!(
        subscribe(&mut ws, &pubsub).await["type"],
        "reject_subscription"
    );
}

#[tokio::test]
async fn with_an_rpc_backend_signed_and_turbo_streams_need_no_rpc_call() {
    if !node_or_skip() {
        return;
    }
    ensure_npm_packages(&["@anycable/serverless-js"]);
    tokio::time::timeout(std::time::Duration::from_secs(90), signed_names_over_rpc())
        .await
        .expect("the test took over 90 s");
}

async fn signed_names_over_rpc() {
    const RPC_SECRET: &str = "rpc-s3cret";
    const KEY: &str = "bkey";
    let backend = common::NodeBackend::start(
        &["--import", "./rpc_hooks.mjs", "rpc_backend.mjs"],
        &[("RPC_SECRET", RPC_SECRET.to_owned())],
    );
    let rpc_url = format!("http://127.0.0.1:{}/_anycable", backend.port);
    let server = CableServer::start(&[
        "--rpc-url",
        &rpc_url,
        "--rpc-secret",
        RPC_SECRET,
        "--broadcast-key",
        KEY,
        "--streams-secret",
        STREAMS_SECRET,
        "--turbo-streams-secret",
        TURBO_SECRET,
    ]);
    let backend_addr = format!("127.0.0.1:{}", backend.port).parse().unwrap();
    let calls = || async move {
        let (status, head, body) = http(backend_addr, "GET", "/_test/log", &[], b"").await;
        assert_eq!(status, 200);
        let body = if head.to_ascii_lowercase().contains("chunked") {
            dechunk(&body)
        } else {
            body
        };
        let log: Value = serde_json::from_str(&body).unwrap();
        log["calls"].as_array().unwrap().clone()
    };
    // The backend authenticates the connection.
    let mut ws = server.connect("?token=alice").await;
    assert_eq!(next_message(&mut ws).await.unwrap()["type"], "welcome");
    let connects = calls().await;
    assert_eq!(connects.len(), 1, "{connects:?}");
    assert_eq!(connects[0]["method"], "connect");

    let signed = rails_sign(STREAMS_SECRET, "chat/42", false);
    let pubsub = json!({"channel": "$pubsub", "signed_stream_name": signed}).to_string();
    assert_eq!(
        subscribe(&mut ws, &pubsub).await["type"],
        "confirm_subscription"
    );
    let turbo_name = "gid://app/Room/1:messages";
    let turbo_signed = rails_sign(TURBO_SECRET, turbo_name, true);
    let turbo =
        json!({"channel": "Turbo::StreamsChannel", "signed_stream_name": turbo_signed}).to_string();
    assert_eq!(
        subscribe(&mut ws, &turbo).await["type"],
        "confirm_subscription"
    );
    let forged =
        json!({"channel": "Turbo::StreamsChannel", "signed_stream_name": rails_sign(STREAMS_SECRET, turbo_name, true)})
            .to_string();
    assert_eq!(
        subscribe(&mut ws, &forged).await["type"],
        "reject_subscription"
    );

    let status = post_broadcast(
        server.addr,
        Some(KEY),
        &json!({"stream": "chat/42", "data": {"n": 1}}),
    )
    .await;
    assert!((200..300).contains(&status), "{status}");
    let frame = next_message(&mut ws).await.unwrap();
    assert_eq!(frame, json!({"identifier": pubsub, "message": {"n": 1}}));
    let html = "<turbo-stream action=\"append\"></turbo-stream>";
    let data = serde_json::to_string(html).unwrap();
    post_broadcast(
        server.addr,
        Some(KEY),
        &json!({"stream": turbo_name, "data": data}),
    )
    .await;
    let frame = next_message(&mut ws).await.unwrap();
    assert_eq!(frame, json!({"identifier": turbo, "message": html}));

    // The backend saw the connect and nothing else.
    let after = calls().await;
    assert_eq!(after.len(), 1, "{after:?}");
}

/// The body of a chunked HTTP/1.1 answer (Node's, for one without a
/// `Content-Length`).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
