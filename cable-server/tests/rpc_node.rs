//! AnyCable's RPC over HTTP with a real backend: a small Node HTTP server
//! built on `@anycable/serverless-js` (`tests/js/rpc_backend.mjs`), and the
//! real `@rails/actioncable` client (`tests/js/rpc_client.mjs`) against
//! cable-server started with `--rpc-url`. This test starts the backend and
//! the server, then runs the client's steps (see the script for what each
//! asserts).
//!
//! Needs `node` and `npm` on PATH (`npm ci` runs first when the packages are
//! missing); without node the test fails, unless `CABLE_SKIP_NODE=1`.

mod common;

use std::time::Duration;

use common::{CableServer, NodeBackend};

const SECRET: &str = "rpc-s3cret";
const BROADCAST_KEY: &str = "bkey";

/// Whether node runs here (else skipped by `CABLE_SKIP_NODE=1`), with the
/// packages installed.
fn node_ready() -> bool {
    if !common::node_or_skip() {
        return false;
    }
    common::ensure_npm_packages(&["@rails/actioncable", "ws", "@anycable/serverless-js"]);
    true
}

/// `tests/js/rpc_backend.mjs`, with its call log.
fn start_backend() -> NodeBackend {
    NodeBackend::start(
        &["--import", "./rpc_hooks.mjs", "rpc_backend.mjs"],
        &[("RPC_SECRET", SECRET.to_owned())],
    )
}

#[test]
fn serverless_js_backend_with_the_rails_client() {
    if !node_ready() {
        return;
    }
    let backend = start_backend();
    let rpc_url = backend.rpc_url();
    let server = CableServer::start(&[
        "--rpc-url",
        &rpc_url,
        "--rpc-secret",
        SECRET,
        "--rpc-timeout-ms",
        "1500",
        "--broadcast-key",
        BROADCAST_KEY,
    ]);
    // The backend broadcasts to this server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend_addr = format!("127.0.0.1:{}", backend.port).parse().unwrap();
    let config = serde_json::json!({
        "broadcast_url": format!("http://{}/_broadcast", server.addr),
        "broadcast_key": BROADCAST_KEY,
    });
    let (status, _, _) = runtime.block_on(common::http(
        backend_addr,
        "POST",
        "/_test/config",
        &[("content-type", "application/json")],
        config.to_string().as_bytes(),
    ));
    assert_eq!(status, 200, "configure the backend");

    common::run_node_script(
        "rpc_client.mjs",
        &[
            ("CABLE_PORT", server.addr.port().to_string()),
            ("BACKEND_URL", format!("http://127.0.0.1:{}", backend.port)),
            ("BROADCAST_KEY", BROADCAST_KEY.to_owned()),
            ("RPC_SECRET", SECRET.to_owned()),
        ],
        Duration::from_secs(120),
    );
}

/// A server shut down with N open connections makes their N `/disconnect`
/// calls before it exits, though `--rpc-disconnect-rate 1` would take N
/// seconds: at shutdown the queue is flushed without the rate, as AnyCable
/// does, within `--shutdown-timeout-ms`.
#[test]
fn a_shutdown_makes_the_disconnect_call_of_every_open_connection() {
    const N: usize = 20;
    if !node_ready() {
        return;
    }
    let backend = start_backend();
    let rpc_url = backend.rpc_url();
    let mut server = CableServer::start(&[
        "--rpc-url",
        &rpc_url,
        "--rpc-secret",
        SECRET,
        "--rpc-disconnect-rate",
        "1",
        "--shutdown-timeout-ms",
        "15000",
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut clients = Vec::new();
        for n in 0..N {
            let mut ws = server.connect(&format!("?token=user{n}")).await;
            let welcome = common::next_frame(&mut ws).await.expect("a welcome");
            assert_eq!(welcome["type"], "welcome", "{welcome}");
            clients.push(ws);
        }
        server.terminate();
        // Each client reads its farewell and answers the close.
        futures_util::future::join_all(
            clients
                .iter_mut()
                .map(|ws| async { while common::next_frame(ws).await.is_some() {} }),
        )
        .await;
    });
    assert!(server.wait_exit(Duration::from_secs(20)).success());

    let backend_addr = format!("127.0.0.1:{}", backend.port).parse().unwrap();
    let (status, _, body) =
        runtime.block_on(common::http(backend_addr, "GET", "/_test/log", &[], b""));
    assert_eq!(status, 200);
    let log: serde_json::Value = serde_json::from_str(&body).expect("the backend's log");
    let mut users: Vec<String> = log["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|call| call["method"] == "disconnect")
        .map(|call| {
            let identifiers: serde_json::Value =
                serde_json::from_str(call["body"]["identifiers"].as_str().expect("identifiers"))
                    .expect("identifiers JSON");
            identifiers["user"].as_str().expect("user").to_owned()
        })
        .collect();
    users.sort();
    let mut expected: Vec<String> = (0..N).map(|n| format!("user{n}")).collect();
    expected.sort();
    assert_eq!(users, expected, "one /disconnect call per open connection");
}
