//! The AnyCable RPC backend of `tests/js/rpc_backend.mjs` (built on the real
//! `@anycable/serverless-js`), started for a test and killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The backend process, killed on drop.
pub struct Backend {
    child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl Backend {
    /// Starts it with `RPC_SECRET=secret` from the JS directory `dir`.
    pub fn start(dir: &Path, secret: &str) -> Backend {
        let mut child = Command::new("node")
            .args(["--import", "./rpc_hooks.mjs", "rpc_backend.mjs"])
            .current_dir(dir)
            .env("RPC_SECRET", secret)
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
