//! platformOS's WebSockets (`--app platformos`) end to end: a small Node
//! backend speaking AnyCable's RPC with the doc's liquid partials as
//! JavaScript (`tests/js/platformos_backend.mjs`), the real
//! `@rails/actioncable` client used as the doc's `chat.js` uses it
//! (`tests/js/platformos_client.mjs`: CSRF refused and accepted, authorized
//! and refused rooms, a vetoed message, a backend slower than the deadline,
//! ordering under out-of-order answers, the server-side broadcast made here
//! with `cable_channels::platformos::channel_send_message`), and a load run
//! (`tests/js/platformos_load.mjs`: 1,000 connections subscribing through a
//! backend answering in 50 ms, all confirmed, nothing lost).
//!
//! Needs `node` and `npm` on PATH (`npm ci` runs first when the packages are
//! missing); without node the tests fail, unless `CABLE_SKIP_NODE=1`.

mod common;

use std::time::Duration;

use cable_channels::platformos::{channel_send_message, ConversateMessage};
use common::{CableServer, NodeBackend};

const BROADCAST_KEY: &str = "bkey";
const SLOW_MS: &str = "2500";

/// Whether node runs here (else skipped by `CABLE_SKIP_NODE=1`), with the
/// packages installed.
fn node_ready() -> bool {
    if !common::node_or_skip() {
        return false;
    }
    common::ensure_npm_packages(&["@rails/actioncable", "ws"]);
    true
}

/// `tests/js/platformos_backend.mjs`, answering after `delay_ms`.
fn start_backend(delay_ms: u64) -> NodeBackend {
    NodeBackend::start(
        &["platformos_backend.mjs"],
        &[
            ("DELAY_MS", delay_ms.to_string()),
            ("SLOW_MS", SLOW_MS.to_owned()),
        ],
    )
}

#[test]
fn platformos_chat_with_the_rails_client() {
    if !node_ready() {
        return;
    }
    let backend = start_backend(0);
    let server = CableServer::start(&[
        "--app",
        "platformos",
        "--rpc-url",
        &backend.rpc_url(),
        "--require-csrf",
        "--rpc-timeout-ms",
        "1000",
        "--broadcast-key",
        BROADCAST_KEY,
    ]);
    // The doc's channel_send_message(channel_name, room_id, payload), made
    // by the typed function; the room id as a string reaches the room
    // subscribed to with the number 12 too.
    let payload = ConversateMessage::new("from the server", 1u64, "System", "2030-07-01 10:30:00");
    let broadcast = channel_send_message("conversate", "12", &payload);
    assert_eq!(broadcast.stream, "conversate:12");
    common::run_node_script_output(
        "platformos_client.mjs",
        &[
            ("CABLE_PORT", server.addr.port().to_string()),
            ("BACKEND_URL", format!("http://127.0.0.1:{}", backend.port)),
            ("BROADCAST_KEY", BROADCAST_KEY.to_owned()),
            ("BROADCAST_BODY", broadcast.broadcast_body()),
            ("SLOW_MS", SLOW_MS.to_owned()),
        ],
        Duration::from_secs(120),
    );
}

#[test]
fn platformos_load_1000_subscribes_through_a_50ms_backend() {
    if !node_ready() {
        return;
    }
    let backend = start_backend(50);
    let concurrency = std::env::var("CABLE_LOAD_RPC_CONCURRENCY").unwrap_or_else(|_| "28".into());
    let server = CableServer::start(&[
        "--app",
        "platformos",
        "--rpc-url",
        &backend.rpc_url(),
        "--require-csrf",
        "--rpc-concurrency",
        &concurrency,
        "--broadcast-key",
        BROADCAST_KEY,
    ]);
    let n = std::env::var("CABLE_LOAD_CONNECTIONS").unwrap_or_else(|_| "1000".into());
    let out = common::run_node_script_output(
        "platformos_load.mjs",
        &[
            ("CABLE_PORT", server.addr.port().to_string()),
            ("BROADCAST_KEY", BROADCAST_KEY.to_owned()),
            ("N", n.clone()),
        ],
        Duration::from_secs(60),
    );
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let n: u64 = n.parse().unwrap();
    assert_eq!(report["confirmed"], n, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["received"], n, "{report}");
    eprintln!("platformos load (--rpc-concurrency {concurrency}): {report}");
}
