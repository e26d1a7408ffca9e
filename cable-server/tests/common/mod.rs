//! Helpers of the integration tests: start the real binary, talk WebSocket
//! and HTTP to it on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// How long a test waits for anything it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running cable-server process, killed on drop.
pub struct CableServer {
    pub child: Child,
    pub addr: SocketAddr,
}

impl CableServer {
    /// Starts the binary on 127.0.0.1 (a free port unless `args` says
    /// otherwise) and waits for its "listening" line.
    pub fn start(args: &[&str]) -> CableServer {
        Self::spawn(args, false).0
    }

    /// [`start`](Self::start), with the server's log lines (stderr) sent to
    /// the returned channel instead of the test's stderr.
    pub fn start_logging(args: &[&str]) -> (CableServer, std::sync::mpsc::Receiver<String>) {
        let (server, log) = Self::spawn(args, true);
        (server, log.expect("stderr captured"))
    }

    /// [`start_logging`](Self::start_logging) under an open-files limit
    /// (`ulimit -n`) of `open_files` (lower than the test's own).
    pub fn start_logging_with_open_files(
        open_files: u32,
        args: &[&str],
    ) -> (CableServer, std::sync::mpsc::Receiver<String>) {
        let (server, log) = Self::spawn_with(args, true, Some(open_files));
        (server, log.expect("stderr captured"))
    }

    fn spawn(
        args: &[&str],
        capture_stderr: bool,
    ) -> (CableServer, Option<std::sync::mpsc::Receiver<String>>) {
        Self::spawn_with(args, capture_stderr, None)
    }

    fn spawn_with(
        args: &[&str],
        capture_stderr: bool,
        open_files: Option<u32>,
    ) -> (CableServer, Option<std::sync::mpsc::Receiver<String>>) {
        let binary = env!("CARGO_BIN_EXE_cable-server");
        let mut command = match open_files {
            // The shell lowers its limit, then becomes the server.
            Some(limit) => {
                let mut command = Command::new("sh");
                command.args([
                    "-c",
                    r#"ulimit -n "$0" && exec "$@""#,
                    &limit.to_string(),
                    binary,
                ]);
                command
            }
            None => Command::new(binary),
        };
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        if !args.contains(&"--log") {
            command.args(["--log", "warn"]);
        }
        let mut child = command.spawn().expect("start cable-server");
        let log = child.stderr.take().map(|stderr| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        let url = first_stdout_line(&mut child, "cable-server listening on http://");
        let addr = url.split('/').next().unwrap().parse().expect("address");
        (CableServer { child, addr }, log)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "cable-server did not exit in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ws://ADDR/cable` plus `query`.
    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/cable{query}", self.addr)
    }

    /// The same-origin `Origin`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connects with the same-origin `Origin` and the Rails JS client's
    /// subprotocols.
    pub async fn connect(&self, query: &str) -> Ws {
        connect(
            &self.url(query),
            Some(&self.origin()),
            Some("actioncable-v1-json, actioncable-unsupported"),
        )
        .await
        .expect("connect")
        .0
    }
}

/// The first line `child` prints on its (piped) stdout, within 30 s, less
/// `prefix`, which it must start with. The rest of stdout is drained so the
/// child never blocks on a full pipe.
pub fn first_stdout_line(child: &mut Child, prefix: &str) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
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
        .unwrap_or_else(|_| panic!("no first line starting with {prefix:?} in 30 s"));
    line.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// A test backend in Node (`tests/js/*_backend.mjs`) that prints
/// `listening <port>` once it serves on 127.0.0.1; killed on drop.
pub struct NodeBackend {
    pub child: Child,
    pub port: u16,
}

impl NodeBackend {
    /// Runs `node ARGS` in `tests/js` with `env`, and waits for its port.
    pub fn start(args: &[&str], env: &[(&str, String)]) -> NodeBackend {
        let mut child = Command::new("node")
            .args(args)
            .current_dir(js_dir())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run node");
        let port = first_stdout_line(&mut child, "listening ")
            .parse()
            .expect("a port");
        NodeBackend { child, port }
    }

    /// Its AnyCable RPC URL (`/_anycable`).
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/_anycable", self.port)
    }
}

impl Drop for NodeBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for CableServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a WebSocket; returns the socket and the negotiated subprotocol.
pub async fn connect(
    url: &str,
    origin: Option<&str>,
    protocols: Option<&str>,
) -> Result<(Ws, Option<String>), tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).unwrap());
    }
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    let host = request.uri().authority().unwrap().to_string();
    let stream = TcpStream::connect(host).await?;
    let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    Ok((ws, protocol))
}

/// The next frame, parsed (pings included); `None` if the socket closed.
pub async fn next_frame(ws: &mut Ws) -> Option<Value> {
    loop {
        let message = timeout(WAIT, ws.next()).await.expect("no frame in time")?;
        match message {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).expect("JSON")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The next frame that is not a ping.
pub async fn next_message(ws: &mut Ws) -> Option<Value> {
    loop {
        let frame = next_frame(ws).await?;
        if frame["type"] != "ping" {
            return Some(frame);
        }
    }
}

/// Asserts that no frame other than pings arrives within `quiet`.
pub async fn assert_silent(ws: &mut Ws, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(value["type"], "ping", "unexpected frame {text}");
            }
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends a command.
pub async fn send(ws: &mut Ws, command: Value) {
    ws.send(Message::text(command.to_string())).await.unwrap();
}

/// The identifier of public stream `stream`.
pub fn pubsub_identifier(stream: &str) -> String {
    serde_json::json!({"channel": "$pubsub", "stream_name": stream}).to_string()
}

/// Subscribes to public stream `stream` and waits for the confirmation.
pub async fn subscribe_pubsub(ws: &mut Ws, stream: &str) -> String {
    let identifier = pubsub_identifier(stream);
    send(
        ws,
        serde_json::json!({"command": "subscribe", "identifier": identifier}),
    )
    .await;
    loop {
        let frame = next_message(ws).await.expect("confirmation");
        if frame["type"] == "welcome" {
            continue;
        }
        assert_eq!(frame["type"], "confirm_subscription", "{frame}");
        assert_eq!(frame["identifier"], identifier.as_str());
        return identifier;
    }
}

/// A plain HTTP/1.1 request; returns the status, the raw head and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the head; a 101 keeps the connection open, so stop there.
    let head_end = loop {
        if let Some(i) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("HTTP answer in time")
            .unwrap();
        assert!(n > 0, "connection closed before the response head");
        response.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    if status != 101 {
        timeout(WAIT, stream.read_to_end(&mut response))
            .await
            .expect("HTTP body in time")
            .unwrap();
    }
    let body = String::from_utf8_lossy(&response[head_end + 4..]).into_owned();
    (status, head, body)
}

/// `POST /_broadcast` with an optional bearer key; returns the status.
pub async fn post_broadcast(addr: SocketAddr, key: Option<&str>, body: &Value) -> u16 {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    http(
        addr,
        "POST",
        "/_broadcast",
        &headers,
        body.to_string().as_bytes(),
    )
    .await
    .0
}

/// The directory of the Node scripts, `tests/js`.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Whether `node` and `npm` are on PATH; when not, `false` with
/// `CABLE_SKIP_NODE=1` (the test then skips), else a panic.
pub fn node_or_skip() -> bool {
    fn have(program: &str) -> bool {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
    if !have("node") || !have("npm") {
        if std::env::var("CABLE_SKIP_NODE").as_deref() == Ok("1") {
            eprintln!("node/npm not found: skipped (CABLE_SKIP_NODE=1)");
            return false;
        }
        panic!("node and npm must be on PATH (or set CABLE_SKIP_NODE=1 to skip this test)");
    }
    true
}

/// Runs `npm ci` in [`js_dir`] when one of `packages` is missing from its
/// `node_modules`.
pub fn ensure_npm_packages(packages: &[&str]) {
    let dir = js_dir();
    if !packages
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists())
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci (node and npm must be on PATH)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
}

/// Runs `node script` in [`js_dir`] with `env` (its output is the test's),
/// killed and a failure if it runs longer than `limit`; asserts it succeeded.
pub fn run_node_script(script: &str, env: &[(&str, String)], limit: Duration) {
    run_node(script, env, limit, false);
}

/// [`run_node_script`], returning the script's stdout (each line also
/// printed).
pub fn run_node_script_output(script: &str, env: &[(&str, String)], limit: Duration) -> String {
    run_node(script, env, limit, true)
}

fn run_node(script: &str, env: &[(&str, String)], limit: Duration, capture: bool) -> String {
    let mut command = Command::new("node");
    command
        .arg(script)
        .current_dir(js_dir())
        .stdin(Stdio::null());
    if capture {
        command.stdout(Stdio::piped());
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run node (node must be on PATH)");
    let reader = child.stdout.take().map(|stdout| {
        std::thread::spawn(move || {
            let mut out = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{line}");
                out.push_str(&line);
                out.push('\n');
            }
            out
        })
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{script} did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.map(|r| r.join().unwrap()).unwrap_or_default();
    assert!(status.success(), "{script} failed: {status:?}");
    out
}
