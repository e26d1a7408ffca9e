//! The shootout harness end to end against the floor, in process: 20 clients, 50
//! broadcasts, nothing missing.

use std::time::Duration;

use cable_fixtures::floor;
use cable_fixtures::live::LiveTarget;
use cable_fixtures::shootout::{self, ShootoutOptions};

async fn start_floor() -> LiveTarget {
    let listener = floor::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(floor::serve(listener));
    LiveTarget::parse(&format!("ws://{addr}/cable")).expect("target")
}

fn small(target: LiveTarget) -> ShootoutOptions {
    let mut opts = ShootoutOptions::new(target);
    opts.clients = 20;
    opts.samples = 50;
    opts.concurrent = 4;
    opts.warmup = 5;
    opts.payload_padding = 64;
    opts.drain = Duration::from_secs(5);
    opts.settle = Duration::from_millis(100);
    opts.timeout = Duration::from_secs(30);
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shootout_against_the_floor_misses_nothing() {
    let target = start_floor().await;
    let mut opts = small(target);
    opts.pid = Some(std::process::id());
    let report = shootout::run(&opts).await.expect("shootout");
    eprintln!("{report}");
    assert_eq!(report.connected, 20);
    assert_eq!(report.connect_failures, 0);
    assert_eq!(report.sent, 50);
    assert_eq!(report.warmup, 5);
    assert_eq!(report.results, 50);
    assert_eq!(report.lost_results, 0);
    assert_eq!(report.expected_deliveries, 20 * 50);
    assert_eq!(report.deliveries, 20 * 50);
    assert_eq!(report.missing, 0);
    assert_eq!(report.duplicates, 0);
    assert!(!report.timed_out);
    let p50 = report.rtt_ms.p50.expect("p50");
    let p99 = report.rtt_ms.p99.expect("p99");
    assert!(p50 > 0.0 && p50 <= p99, "{:?}", report.rtt_ms);
    assert!(report.deliveries_per_s.is_some_and(|d| d > 0.0));
    assert!(report.memory.before_kib.is_some() && report.memory.end_kib.is_some());
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["missing"], 0);
    assert!(json["rtt_ms"]["p95"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_mode_connects_and_sends_nothing() {
    let target = start_floor().await;
    let mut opts = small(target);
    opts.idle_only = true;
    opts.pid = Some(std::process::id());
    let report = shootout::run(&opts).await.expect("shootout");
    assert_eq!(report.connected, 20);
    assert_eq!(report.sent, 0);
    assert_eq!(report.expected_deliveries, 0);
    assert!(report.memory.connected_kib.is_some());
    assert!(report.memory.per_connection_bytes.is_some());
}

#[tokio::test]
async fn a_closed_port_is_an_error_not_a_hang() {
    // Bind and drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut opts = small(LiveTarget::parse(&format!("ws://127.0.0.1:{port}/cable")).expect("t"));
    opts.clients = 3;
    opts.timeout = Duration::from_secs(10);
    let err = shootout::run(&opts).await.expect_err("nothing listens");
    assert!(err.to_string().contains("no client could connect"), "{err}");
}

#[test]
fn only_loopback_targets() {
    assert!(LiveTarget::parse("ws://10.0.0.1:80/cable").is_err());
}
