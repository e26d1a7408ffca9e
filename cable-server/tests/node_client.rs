//! The real Rails JS client (`@rails/actioncable` from npm) in Node against
//! the real binary: runs `tests/js/e2e.mjs` (which starts and restarts
//! cable-server itself).
//!
//! Needs `node` and `npm` on PATH; `npm ci` runs first when
//! `tests/js/node_modules` is missing (the npm registry must be reachable
//! then). Without node the test fails, unless `CABLE_SKIP_NODE=1`.

mod common;

use std::time::Duration;

#[test]
fn rails_actioncable_client_in_node() {
    if !common::node_or_skip() {
        return;
    }
    common::ensure_npm_packages(&["@rails/actioncable", "ws"]);
    common::run_node_script(
        "e2e.mjs",
        &[(
            "CABLE_SERVER_BIN",
            env!("CARGO_BIN_EXE_cable-server").to_owned(),
        )],
        Duration::from_secs(150),
    );
}
