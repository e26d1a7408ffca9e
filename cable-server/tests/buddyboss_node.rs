//! `cable-server --mount /=buddyboss --mount /cable=actioncable --token T`
//! with plain Node `ws` clients speaking as the BuddyBoss doc's snippets do
//! (`tests/js/buddyboss.mjs`): presence, thread and direct messages, typing,
//! signalling, an error reply for each bad input, 200 members in a thread,
//! and one room shared with an Action Cable client receiving a broadcast.
//!
//! Needs `node` and the npm packages of `tests/js` (as `node_client.rs`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::CableServer;

#[test]
fn buddyboss_clients_as_the_doc_shows_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !dir.join("node_modules/ws").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci (node and npm must be on PATH)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    let server = CableServer::start(&[
        "--mount",
        "/=buddyboss",
        "--mount",
        "/cable=actioncable",
        "--token",
        "T",
    ]);
    let mut child = Command::new("node")
        .arg("buddyboss.mjs")
        .current_dir(&dir)
        .env("BB_URL", format!("ws://{}/", server.addr))
        .env("BB_TOKEN", "T")
        .stdin(Stdio::null())
        .spawn()
        .expect("run node (node must be on PATH)");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the BuddyBoss clients did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the BuddyBoss clients failed: {status:?}");
}
