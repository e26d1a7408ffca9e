//! The run loop of the client module's docs, as a program: a host that plays
//! both sides in memory, cable-proto's consumer against cable-proto's server.
//! The consumer connects, subscribes, performs, receives the broadcast it
//! caused, then the server goes quiet and the consumer reopens the
//! connection on its own schedule. `cargo run -p cable-proto --example consumer_loop`.

use cable_proto::client::{Consumer, ConsumerConfig, Event, SeededJitter};
use cable_proto::server::{self, Config, Frame, PerformOutcome, Server, SubscriptionAccept};
use cable_proto::{HandshakeRequest, Identity, JsonText};
use std::time::{Duration, Instant};

/// The host's clock: the one place this program reads the time.
#[allow(clippy::disallowed_methods)]
fn host_clock() -> Instant {
    Instant::now()
}

fn main() {
    let start = host_clock();
    let mut now = start;
    let mut server = Server::new(Config::default(), start, Duration::from_secs(1_700_000_000));
    // The host's randomness (a seed) drives the reconnect jitter.
    let mut consumer = Consumer::new(ConsumerConfig::default(), SeededJitter::new(42), start);
    let chat = consumer
        .subscribe(r#"{"channel":"ChatChannel","room":"lobby"}"#, now)
        .unwrap();

    let mut connection = None;
    let mut received = Vec::new();
    let mut reopened_at = None;
    while reopened_at.is_none() {
        // The consumer's instructions and events.
        while let Some(event) = consumer.poll_event() {
            match event {
                Event::Connect => {
                    // The upgrade, offering the consumer's subprotocols.
                    let offered = consumer.subprotocols().join(", ");
                    let request = HandshakeRequest {
                        host: Some("example.com"),
                        origin: Some("http://example.com"),
                        secure: false,
                        protocols: &[offered.as_str()],
                    };
                    if connection.is_some() {
                        reopened_at = Some(now - start);
                        break;
                    }
                    let incoming = server.handle_open(&request, now).expect("same origin");
                    consumer.handle_open(incoming.subprotocol.as_deref(), now);
                    server
                        .accept_connection(incoming.pending, Identity::new("alice"), now)
                        .unwrap();
                    connection = Some(incoming.connection);
                }
                Event::Connected { key, .. } => {
                    let data = serde_json::json!({"text": "hi"});
                    consumer
                        .perform(key, "speak", data.as_object().unwrap(), now)
                        .unwrap();
                }
                Event::Received { key, message } => {
                    assert_eq!(key, chat);
                    received.push(message);
                }
                Event::Close => {
                    // Stale: the consumer dropped the socket; so does the host.
                    server.handle_close(connection.unwrap(), now).unwrap();
                }
                _ => {}
            }
        }
        let conn = connection.expect("connected");
        // Consumer -> server.
        while let Some(text) = consumer.poll_transmit() {
            server.handle_text(conn, text.as_bytes(), now).unwrap();
        }
        // The application's half: authorize, run the action.
        while let Some(event) = server.poll_event() {
            match event {
                server::Event::SubscriptionRequested { pending, .. } => {
                    let accept = SubscriptionAccept::new().stream("chat_lobby");
                    server.accept_subscription(pending, accept, now).unwrap();
                }
                server::Event::Perform(perform) => {
                    let payload = JsonText::from_value(&serde_json::json!({"text": "hi"})).unwrap();
                    let outcome = PerformOutcome::new().broadcast("chat_lobby", payload);
                    server
                        .complete_perform(perform.pending, outcome, now)
                        .unwrap();
                }
                _ => {}
            }
        }
        // Server -> consumer, until the server goes quiet after 10 s (its
        // pings stop reaching the consumer: a half-open connection).
        let mut delivered = false;
        while let Some(transmit) = server.poll_transmit() {
            if let Frame::Text(bytes) = &transmit.frame {
                server
                    .handle_written(transmit.connection, bytes.len(), now)
                    .unwrap();
                if now - start < Duration::from_secs(10) {
                    consumer.handle_text(bytes, now).unwrap();
                    delivered = true;
                }
            }
        }
        if delivered {
            continue;
        }
        // Nothing to move: sleep until the earlier deadline of the two.
        now = [consumer.poll_timeout(), server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("the consumer's monitor always has a deadline");
        consumer.handle_timeout(now);
        server.handle_timeout(now);
    }

    assert_eq!(received, [r#"{"text":"hi"}"#]);
    // The last frame (a ping) came at 9 s; the monitor polls every 6 s × (1
    // + jitter): the first poll after 15 s finds more than 6 s of silence,
    // closes the socket, and the next one opens 500 ms later.
    let reopened_at = reopened_at.unwrap();
    assert!(reopened_at > Duration::from_secs(15), "{reopened_at:?}");
    println!("received {received:?}; reopened after {reopened_at:?} of virtual time");
}
