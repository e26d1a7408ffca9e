//! An app that answers later, from other tasks, through the `CoreHandle`:
//! connections welcomed after a (simulated) remote check, performs whose
//! outcome comes later while the connection's next command waits, the
//! deadlines of `--decision-timeout-ms` when the app is too slow, and a
//! burst of commands far larger than the core's hold, slowed down by
//! backpressure rather than disconnected.

mod common;

use std::time::{Duration, Instant};

use cable_proto::server::{
    ConnectionAccept, Event, PendingConnection, PerformOutcome, SubscriptionAccept,
};
use cable_proto::{Identity, JsonText, UsageError};
use cable_server::{AnswerError, AppContext, CableApp, Options, RequestInfo};
use common::{connect, next_frame, send, Ws};
use futures_util::SinkExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE_MS: u64 = 300;

/// Decides everything on spawned tasks, after a delay named by the client.
struct LaterApp {
    late_answers: mpsc::UnboundedSender<Result<(), AnswerError>>,
}

impl CableApp for LaterApp {
    fn name(&self) -> &str {
        "later"
    }

    fn connect(
        &mut self,
        cx: &mut AppContext<'_>,
        request: &RequestInfo,
        pending: PendingConnection,
    ) {
        let handle = cx.handle();
        let token = request.token().unwrap_or_default();
        tokio::spawn(async move {
            // A remote check of the token.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let answer = match token.as_str() {
                // Never decided: the core's deadline answers.
                "never" => {
                    drop(pending);
                    return;
                }
                "bad" => handle.reject_connection(pending).await,
                user => {
                    let accept = ConnectionAccept::new(Identity::new(user));
                    handle.accept_connection(pending, accept).await
                }
            };
            answer.expect("answered in time");
        });
    }

    fn handle_event(&mut self, cx: &mut AppContext<'_>, event: Event) {
        match event {
            Event::SubscriptionRequested { pending, .. } => {
                // Authorized by a (simulated) database query.
                let handle = cx.handle();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let accept = SubscriptionAccept::new().stream("room");
                    handle
                        .accept_subscription(pending, accept)
                        .await
                        .expect("answered in time");
                });
            }
            Event::Perform(perform) => {
                let data = perform.data_value();
                let delay = data["delay_ms"].as_u64().unwrap_or(0);
                let payload = JsonText::from_value(&json!({ "n": data["n"] })).unwrap();
                let outcome = PerformOutcome::new().broadcast("room", payload);
                let handle = cx.handle();
                let late_answers = self.late_answers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let answer = handle.complete_perform(perform.pending, outcome).await;
                    if delay > DEADLINE_MS {
                        let _ = late_answers.send(answer);
                    } else {
                        answer.expect("answered in time");
                    }
                });
            }
            _ => {}
        }
    }
}

async fn start() -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Result<(), AnswerError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options = Options::with_listen(addr);
    options.allow_any_origin = true;
    options.decision_timeout_ms = DEADLINE_MS;
    let (late_answers, late) = mpsc::unbounded_channel();
    let app = Box::new(LaterApp { late_answers });
    tokio::spawn(cable_server::serve_app(
        options,
        app,
        listener,
        std::future::pending(),
    ));
    (addr, late)
}

async fn client(addr: std::net::SocketAddr, token: &str) -> Ws {
    let url = format!("ws://{addr}/cable?token={token}");
    connect(
        &url,
        Some("http://example.com"),
        Some("actioncable-v1-json"),
    )
    .await
    .expect("upgrade")
    .0
}

fn message(n: u64, delay_ms: u64) -> serde_json::Value {
    let data = json!({ "action": "speak", "n": n, "delay_ms": delay_ms }).to_string();
    json!({ "command": "message", "identifier": r#"{"channel":"Room"}"#, "data": data })
}

#[tokio::test]
async fn decisions_answered_later_keep_order_and_deadlines() {
    let (addr, mut late) = start().await;

    // Welcomed once the app's task answers.
    let started = Instant::now();
    let mut alice = client(addr, "alice").await;
    assert_eq!(
        next_frame(&mut alice).await,
        Some(json!({"type": "welcome"}))
    );
    assert!(started.elapsed() >= Duration::from_millis(50));

    // Rejected by a later answer.
    let mut mallory = client(addr, "bad").await;
    assert_eq!(
        next_frame(&mut mallory).await,
        Some(json!({"type": "disconnect", "reason": "unauthorized", "reconnect": false}))
    );

    // Never answered: the deadline rejects it as unauthorized.
    let started = Instant::now();
    let mut ghost = client(addr, "never").await;
    assert_eq!(
        next_frame(&mut ghost).await,
        Some(json!({"type": "disconnect", "reason": "unauthorized", "reconnect": false}))
    );
    assert!(started.elapsed() >= Duration::from_millis(DEADLINE_MS));

    send(
        &mut alice,
        json!({ "command": "subscribe", "identifier": r#"{"channel":"Room"}"# }),
    )
    .await;
    assert_eq!(
        next_frame(&mut alice).await,
        Some(json!({"identifier": r#"{"channel":"Room"}"#, "type": "confirm_subscription"}))
    );

    // A slow action, then a fast one: the fast one waits for the slow one.
    send(&mut alice, message(1, 150)).await;
    send(&mut alice, message(2, 0)).await;
    let room = r#"{"channel":"Room"}"#;
    assert_eq!(
        common::next_message(&mut alice).await,
        Some(json!({"identifier": room, "message": {"n": 1}}))
    );
    assert_eq!(
        common::next_message(&mut alice).await,
        Some(json!({"identifier": room, "message": {"n": 2}}))
    );

    // An action past its deadline is vetoed (nothing broadcast); the next
    // command goes on after the deadline; the late answer is refused.
    let started = Instant::now();
    send(&mut alice, message(3, DEADLINE_MS + 300)).await;
    send(&mut alice, message(4, 0)).await;
    assert_eq!(
        common::next_message(&mut alice).await,
        Some(json!({"identifier": room, "message": {"n": 4}}))
    );
    assert!(started.elapsed() >= Duration::from_millis(DEADLINE_MS));
    let answer = tokio::time::timeout(Duration::from_secs(5), late.recv())
        .await
        .expect("the late answer in time")
        .expect("an answer");
    assert_eq!(
        answer,
        Err(AnswerError::Refused(UsageError::DecisionExpired))
    );
    common::assert_silent(&mut alice, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_burst_of_200_subscribes_in_one_write_gets_200_answers() {
    let (addr, _late) = start().await;
    let mut bob = client(addr, "bob").await;
    assert_eq!(next_frame(&mut bob).await, Some(json!({"type": "welcome"})));
    // 200 subscribes, one TCP write: far more than the 64 frames the core
    // holds while each subscription waits for the app.
    let identifiers: Vec<String> = (0..200)
        .map(|n| json!({ "channel": "Room", "n": n }).to_string())
        .collect();
    for identifier in &identifiers {
        let command = json!({ "command": "subscribe", "identifier": identifier });
        bob.feed(Message::text(command.to_string())).await.unwrap();
    }
    bob.flush().await.unwrap();
    for identifier in &identifiers {
        assert_eq!(
            next_frame(&mut bob).await,
            Some(json!({"identifier": identifier, "type": "confirm_subscription"})),
            "confirmations in order, nobody disconnected"
        );
    }
    common::assert_silent(&mut bob, Duration::from_millis(200)).await;
}
