//! Real Rails Action Cable 6.1 servers for the end-to-end tests: the
//! reference server (`../shared/refserver/start.sh`) and `rails/circle.ru`
//! (Circle's channels on Rails), each on a free port of 127.0.0.1, stopped
//! on drop; plain HTTP GETs to their control endpoints; and the examples'
//! binaries.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A Rails server process.
pub struct RailsServer {
    pub addr: SocketAddr,
    pid: u32,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn wait_listening(addr: SocketAddr) {
    for _ in 0..300 {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the Rails server did not listen on {addr}");
}

impl RailsServer {
    /// The reference server (`../shared/refserver`), started by its own
    /// `start.sh` (which installs ruby-actioncable and puma when missing).
    pub fn reference() -> RailsServer {
        let port = free_port();
        let script = workspace_root().join("../shared/refserver/start.sh");
        let logs = std::env::temp_dir().join(format!("cable-client-refserver-{port}"));
        let output = Command::new(&script)
            .arg(port.to_string())
            .arg(&logs)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(output.status.success(), "{} failed", script.display());
        let pid = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap();
        let server = RailsServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pid,
            child: None,
        };
        // Rails 6.1 starts its ping timer on the first request without a
        // lock: one plain request first, so that there is exactly one.
        server.get("/cable");
        server
    }

    /// `rails/circle.ru` under puma, with the member-token secret, the
    /// allowed origin and the rooms (`{"7": [42, 43]}`).
    pub fn circle(secret: &str, origin: &str, rooms: &str) -> RailsServer {
        let port = free_port();
        let ru = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rails/circle.ru");
        let child = Command::new("puma")
            .args([
                "-e",
                "production",
                "-b",
                &format!("tcp://127.0.0.1:{port}"),
                "-t",
                "5:5",
            ])
            .arg(&ru)
            .env("CIRCLE_SECRET", secret)
            .env("CIRCLE_ORIGIN", origin)
            .env("CIRCLE_ROOMS", rooms)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("puma (apt-get install ruby-actioncable puma)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = RailsServer {
            addr,
            pid: child.id(),
            child: Some(child),
        };
        wait_listening(addr);
        server.get("/cable");
        server
    }

    /// `ws://ADDR/cable`.
    pub fn url(&self) -> String {
        format!("ws://{}/cable", self.addr)
    }

    /// A plain HTTP GET; gives the status line and body.
    pub fn get(&self, path_and_query: &str) -> String {
        let mut tcp = TcpStream::connect(self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET {path_and_query} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut response = String::new();
        let _ = tcp.read_to_string(&mut response);
        response
    }
}

impl Drop for RailsServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        if let Some(child) = &mut self.child {
            let _ = child.wait();
        }
    }
}

/// Percent-encodes a query value.
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The path of an example's binary (`cargo test` builds the examples; the
/// CI step of the Rails tests builds them first).
pub fn example(name: &str) -> PathBuf {
    let path = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: cargo build -p cable-client --examples",
        path.display()
    );
    path
}
