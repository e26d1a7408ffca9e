//! Signed `$pubsub` streams and Turbo streams served without the app, their
//! names signed by Ruby's real `ActiveSupport::MessageVerifier` (Debian's
//! ruby-activesupport) with Turbo's settings (SHA256 digest, JSON
//! serializer); tampered names and other secrets are rejected.

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
