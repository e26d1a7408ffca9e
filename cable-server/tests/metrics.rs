//! `GET /metrics`: Prometheus' text format with the counts of what the
//! server did (the reference app's `speak` to two subscribers, a refused
//! frame, a slow client cut with `too_slow`).

mod common;

use std::time::{Duration, Instant};

use cable_fixtures::soak::parse_metrics;
use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn scrape(server: &CableServer) -> (String, cable_fixtures::soak::Scrape) {
    let (status, head, body) = http(server.addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let metrics = parse_metrics(&body);
    (body, metrics)
}

#[tokio::test]
async fn counts_connections_broadcasts_refusals_and_slow_clients() {
    let server = CableServer::start(&["--app", "reference", "--max-queued-bytes", "65536"]);
    let mut alice = server.connect("?token=alice").await;
    let mut bob = server.connect("?token=bob").await;
    let identifier = json!({"channel": "ChatChannel", "room": "m"}).to_string();
    for ws in [&mut alice, &mut bob] {
        send(
            ws,
            json!({"command": "subscribe", "identifier": identifier}),
        )
        .await;
        assert_eq!(next_message(ws).await.unwrap()["type"], "welcome");
        assert_eq!(
            next_message(ws).await.unwrap()["type"],
            "confirm_subscription"
        );
    }
    let data = json!({"action": "speak", "text": "hi"}).to_string();
    send(
        &mut alice,
        json!({"command": "message", "identifier": identifier, "data": data}),
    )
    .await;
    for ws in [&mut alice, &mut bob] {
        assert_eq!(next_message(ws).await.unwrap()["message"]["text"], "hi");
    }
    futures_util::SinkExt::send(&mut bob, Message::text("{not json"))
        .await
        .unwrap();
    assert_silent(&mut bob, Duration::from_millis(200)).await;

    let (body, metrics) = scrape(&server).await;
    assert!(body.contains("# TYPE cable_connections gauge\n"), "{body}");
    assert_eq!(metrics["cable_connections"], 2.0, "{body}");
    assert_eq!(metrics["cable_connections_opened_total"], 2.0);
    assert_eq!(metrics["cable_subscriptions"], 2.0);
    assert_eq!(metrics["cable_streams"], 1.0);
    assert_eq!(metrics["cable_app_broadcasts_total"], 1.0);
    assert_eq!(metrics["cable_broadcasts_delivered_total"], 1.0);
    assert_eq!(metrics["cable_deliveries_total"], 2.0);
    assert_eq!(metrics["cable_frames_refused_total"], 1.0);
    assert_eq!(metrics["cable_slow_clients_cut_total"], 0.0);
    assert!(metrics["process_resident_memory_bytes"] > 1e6);

    // Carol subscribes and stops reading; broadcasts pile up until the
    // server cuts her, and only her.
    let mut carol = server.connect("?token=carol").await;
    send(
        &mut carol,
        json!({"command": "subscribe", "identifier": identifier}),
    )
    .await;
    assert_eq!(next_message(&mut carol).await.unwrap()["type"], "welcome");
    assert_eq!(
        next_message(&mut carol).await.unwrap()["type"],
        "confirm_subscription"
    );
    drop(alice);
    drop(bob);
    let text = "z".repeat(4000);
    let start = Instant::now();
    for round in 0.. {
        let status = post_broadcast(
            server.addr,
            None,
            &json!({"stream": "chat_m", "data": {"text": text}}),
        )
        .await;
        assert_eq!(status, 201);
        if round % 16 != 0 {
            continue;
        }
        let (_, metrics) = scrape(&server).await;
        if metrics["cable_slow_clients_cut_total"] == 1.0 {
            let (body, _) = scrape(&server).await;
            assert!(
                body.contains("cable_disconnects_total{reason=\"too_slow\"} 1\n"),
                "{body}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "carol was never cut"
        );
    }
    drop(carol);
    // Everyone gone: the gauges come back to 0.
    let start = Instant::now();
    loop {
        let (_, metrics) = scrape(&server).await;
        if metrics["cable_connections"] == 0.0 {
            assert_eq!(metrics["cable_subscriptions"], 0.0);
            assert_eq!(metrics["cable_streams"], 0.0);
            break;
        }
        assert!(start.elapsed() < WAIT, "connections stay open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
