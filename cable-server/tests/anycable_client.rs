//! The real AnyCable JS client (`@anycable/web` and `@anycable/core` from
//! npm) in Node against the real binary: runs `tests/js/anycable_client.mjs`
//! (reliable streams across a reconnect with session resume, whisper and
//! presence between two clients).
//!
//! Needs `node` and `npm` on PATH; `npm ci` runs first when a package is
//! missing. Without node the test fails, unless `CABLE_SKIP_NODE=1`.

mod common;

use std::time::Duration;

#[test]
fn anycable_web_client_in_node() {
    if !common::node_or_skip() {
        return;
    }
    common::ensure_npm_packages(&["@anycable/web", "@anycable/core", "ws"]);
    common::run_node_script(
        "anycable_client.mjs",
        &[(
            "CABLE_SERVER_BIN",
            env!("CARGO_BIN_EXE_cable-server").to_owned(),
        )],
        Duration::from_secs(120),
    );
}
