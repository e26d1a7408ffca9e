//! The real Rails JS client (`@rails/actioncable` from npm) in Node against
//! the real binary: runs `tests/js/e2e.mjs` (which starts and restarts
//! cable-server itself).
//!
//! Needs `node` and `npm` on PATH; `npm ci` runs first when
//! `tests/js/node_modules` is missing (the npm registry must be reachable
//! then). Without node the test fails, unless `CABLE_SKIP_NODE=1`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn rails_actioncable_client_in_node() {
    if !have("node") || !have("npm") {
        if std::env::var("CABLE_SKIP_NODE").as_deref() == Ok("1") {
            eprintln!("node/npm not found: skipped (CABLE_SKIP_NODE=1)");
            return;
        }
        panic!("node and npm must be on PATH (or set CABLE_SKIP_NODE=1 to skip this test)");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !dir.join("node_modules/@rails/actioncable").exists()
        || !dir.join("node_modules/ws").exists()
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    let mut child = Command::new("node")
        .arg("e2e.mjs")
        .current_dir(&dir)
        .env("CABLE_SERVER_BIN", env!("CARGO_BIN_EXE_cable-server"))
        .stdin(Stdio::null())
        .spawn()
        .expect("run node");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(150) {
            let _ = child.kill();
            panic!("the Node end-to-end test did not finish in 150 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the Node end-to-end test failed: {status:?}"
    );
}
