//! `--redis`: two cable-server nodes on a redis-server of the soak's own,
//! each a child process on a free loopback port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::redis::RedisServer;
use super::wire::Endpoint;

/// A cable-server child process (killed on drop).
#[derive(Debug)]
pub struct Node {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Node {
    /// Starts `binary --listen 127.0.0.1:0 --app reference --redis-url URL
    /// [extra...]` and waits for its `listening` line.
    pub fn start(binary: &PathBuf, redis: &RedisServer, extra: &[String]) -> Result<Node, String> {
        let mut child = Command::new(binary)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--app",
                "reference",
                "--log",
                "warn",
            ])
            .args(["--redis-url", &redis.url()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
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
            .map_err(|_| "cable-server did not print its address".to_owned())?;
        let addr = line
            .strip_prefix("cable-server listening on http://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line {line:?}"))?;
        Ok(Node { child, addr })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Its endpoint, `/cable`.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.addr,
            authority: self.addr.to_string(),
            path: "/cable".to_owned(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cable-server binary next to this one (`target/*/cable-server`).
pub fn sibling_server_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.join("cable-server");
    candidate.exists().then_some(candidate)
}
