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

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::CableServer;

const SECRET: &str = "rpc-s3cret";
const BROADCAST_KEY: &str = "bkey";

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn js_dir() -> Option<PathBuf> {
    if !have("node") || !have("npm") {
        if std::env::var("CABLE_SKIP_NODE").as_deref() == Ok("1") {
            eprintln!("node/npm not found: skipped (CABLE_SKIP_NODE=1)");
            return None;
        }
        panic!("node and npm must be on PATH (or set CABLE_SKIP_NODE=1 to skip this test)");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let installed = ["@rails/actioncable", "ws", "@anycable/serverless-js"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists());
    if !installed {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    Some(dir)
}

/// The backend process, killed on drop.
struct Backend {
    child: Child,
    port: u16,
}

impl Backend {
    fn start(dir: &Path) -> Backend {
        let mut child = Command::new("node")
            .args(["--import", "./rpc_hooks.mjs", "rpc_backend.mjs"])
            .current_dir(dir)
            .env("RPC_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the backend did not start");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Backend { child, port }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serverless_js_backend_with_the_rails_client() {
    let Some(dir) = js_dir() else { return };
    let backend = Backend::start(&dir);
    let rpc_url = format!("http://127.0.0.1:{}/_anycable", backend.port);
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

    let mut client = Command::new("node")
        .arg("rpc_client.mjs")
        .current_dir(&dir)
        .env("CABLE_PORT", server.addr.port().to_string())
        .env("BACKEND_URL", format!("http://127.0.0.1:{}", backend.port))
        .env("BROADCAST_KEY", BROADCAST_KEY)
        .env("RPC_SECRET", SECRET)
        .stdin(Stdio::null())
        .spawn()
        .expect("run node");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = client.kill();
            panic!("the RPC client test did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the RPC client test failed: {status:?}");
}
