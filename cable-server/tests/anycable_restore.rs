//! AnyCable's session resume for apps that keep state per connection, with
//! the real AnyCable JS client (`@anycable/web`) in Node
//! (`tests/js/anycable_restore.mjs`): cable-server with `--rpc-url` in front
//! of the `@anycable/serverless-js` backend of `tests/js/rpc_backend.mjs`
//! (restored with no second Connect call, identifiers, `cstate` and `istate`
//! intact), and cable-server with `--app reference` (restored with its
//! state per subscription).
//!
//! Needs `node` and `npm` on PATH (`npm ci` runs first when the packages are
//! missing); without node the test fails, unless `CABLE_SKIP_NODE=1`.

mod common;

use std::time::Duration;

use common::CableServer;

const SECRET: &str = "rpc-s3cret";
const BROADCAST_KEY: &str = "bkey";

#[test]
fn sessions_of_rpc_and_reference_apps_are_restored_with_their_state() {
    if !common::node_or_skip() {
        return;
    }
    common::ensure_npm_packages(&["@anycable/web", "@anycable/serverless-js", "ws"]);
    let backend = common::NodeBackend::start(
        &["--import", "./rpc_hooks.mjs", "rpc_backend.mjs"],
        &[("RPC_SECRET", SECRET.to_owned())],
    );
    let rpc_url = format!("http://127.0.0.1:{}/_anycable", backend.port);
    let rpc = CableServer::start(&[
        "--rpc-url",
        &rpc_url,
        "--rpc-secret",
        SECRET,
        "--broadcast-key",
        BROADCAST_KEY,
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend_addr = format!("127.0.0.1:{}", backend.port).parse().unwrap();
    let config = serde_json::json!({
        "broadcast_url": format!("http://{}/_broadcast", rpc.addr),
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
    let reference = CableServer::start(&["--app", "reference"]);
    common::run_node_script(
        "anycable_restore.mjs",
        &[
            ("RPC_PORT", rpc.addr.port().to_string()),
            ("REFERENCE_PORT", reference.addr.port().to_string()),
            ("BACKEND_URL", format!("http://127.0.0.1:{}", backend.port)),
        ],
        Duration::from_secs(120),
    );
}
