//! The run loop of the crate docs, as a program: a host that plays both
//! sides in memory (a client connects, subscribes, speaks, a broadcast comes
//! back). `cargo run -p cable-proto --example run_loop`.

use cable_proto::server::{Config, Event, Frame, PerformOutcome, Server, SubscriptionAccept};
use cable_proto::{HandshakeRequest, Identity, JsonText};
use std::time::{Duration, Instant};

/// The host's clock: the one place this program reads the time.
#[allow(clippy::disallowed_methods)]
fn host_clock() -> Instant {
    Instant::now()
}

fn main() {
    // The host reads its clock; the core never does.
    let start = host_clock();
    let mut server = Server::new(Config::default(), start, Duration::from_secs(1_700_000_000));

    // The upgrade request: the origin check and the subprotocol.
    let request = HandshakeRequest {
        host: Some("example.com"),
        origin: Some("http://example.com"),
        secure: false,
        protocols: &["actioncable-v1-json, actioncable-unsupported"],
    };
    let incoming = server.handle_open(&request, start).expect("same origin");
    assert_eq!(incoming.subprotocol.as_deref(), Some("actioncable-v1-json"));
    let conn = incoming.connection;

    // The client may send before it is welcomed: the frame is held.
    let subscribe = br#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}"}"#;
    server.handle_text(conn, subscribe, start).unwrap();

    // The application authenticates the connection (from a cookie or token).
    server
        .accept_connection(incoming.pending, Identity::new("alice"), start)
        .unwrap();

    // The wire, as the host would write it.
    let mut wire = Vec::new();
    let mut now = start;
    for step in 0..3 {
        // Drain events: the application's half of the loop.
        while let Some(event) = server.poll_event() {
            match event {
                Event::SubscriptionRequested {
                    identifier,
                    pending,
                    ..
                } => {
                    let room = identifier
                        .param("room")
                        .and_then(|r| r.as_str())
                        .unwrap_or("");
                    let accept = SubscriptionAccept::new().stream(format!("chat_{room}"));
                    server.accept_subscription(pending, accept, now).unwrap();
                }
                Event::Perform(perform) => {
                    let room = perform
                        .identifier
                        .param("room")
                        .and_then(|r| r.as_str())
                        .unwrap_or("");
                    let text = perform.data_value()["text"].clone();
                    let payload =
                        serde_json::json!({"text": text, "from": perform.identity.as_str()});
                    // The action's outcome, applied at once when the
                    // application answers (it may also veto it).
                    let outcome = PerformOutcome::new().broadcast(
                        format!("chat_{room}"),
                        JsonText::from_value(&payload).unwrap(),
                    );
                    server
                        .complete_perform(perform.pending, outcome, now)
                        .unwrap();
                }
                _ => {}
            }
        }
        // Drain frames: the socket's half. Report what was written.
        while let Some(transmit) = server.poll_transmit() {
            if let Frame::Text(bytes) = &transmit.frame {
                server
                    .handle_written(transmit.connection, bytes.len(), now)
                    .unwrap();
                wire.push(String::from_utf8(bytes.to_vec()).unwrap());
            }
        }
        // Input for the next round: a frame from the client, or a timeout.
        match step {
            0 => {
                let speak = br#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}","data":"{\"text\":\"hi\",\"action\":\"speak\"}"}"#;
                server.handle_text(conn, speak, now).unwrap();
            }
            _ => {
                now = server.poll_timeout().unwrap();
                server.handle_timeout(now);
            }
        }
    }

    let id = r#""{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}""#;
    assert_eq!(
        wire,
        [
            r#"{"type":"welcome"}"#.to_string(),
            format!(r#"{{"identifier":{id},"type":"confirm_subscription"}}"#),
            format!(r#"{{"identifier":{id},"message":{{"text":"hi","from":"alice"}}}}"#),
            r#"{"type":"ping","message":1700000003}"#.to_string(),
        ]
    );

    // The socket closes: the subscription ends, then the connection.
    server.handle_close(conn, now).unwrap();
    assert!(matches!(
        server.poll_event(),
        Some(Event::Unsubscribed { .. })
    ));
    assert!(matches!(server.poll_event(), Some(Event::StreamStopped(_))));
    assert!(matches!(server.poll_event(), Some(Event::Closed { .. })));
    assert_eq!(server.subscription_count(), 0);
    println!("{} frames, as Rails writes them", wire.len());
}
