//! The order and flow of a Jac socket's walker replies, against a stand-in
//! for the Jac Cloud app's HTTP side (and a real Redis):
//!
//! - while a walker is pending, a socket's later frames wait in the
//!   dialect, and the reader reads no more than that hold takes, so a client
//!   that pipelines is slowed down (as the real server reads more slowly)
//!   instead of being closed;
//! - a walker's notifications, published to Redis before its HTTP response
//!   (as Jac Cloud publishes them), reach the socket before the response.

mod common;

use std::time::Duration;

use common::{connect, next_frame, CableServer};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// What the stand-in app publishes to Redis `replicas` while a walker runs:
/// `filler` events for nobody, then a notification to channel "c".
#[derive(Clone)]
struct Publishes {
    redis: redis::Client,
    filler: usize,
}

/// A Jac Cloud app's HTTP side as far as walkers go: no OpenAPI document
/// (404), and every `POST /walker/<name>` answered after `delay` with
/// `{"status":200,"reports":[<the body>]}` (HTTP/1.1, kept alive), after
/// its `publishes`.
async fn slow_backend(
    delay: Duration,
    publishes: Option<Publishes>,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let publishes = publishes.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut request_line = String::new();
                    if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if read.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let answer = if request_line.starts_with("POST /walker/") {
                        tokio::time::sleep(delay).await;
                        if let Some(p) = &publishes {
                            let mut c = p.redis.get_multiplexed_async_connection().await.unwrap();
                            let mut pipe = redis::pipe();
                            let nobody = r#"{"instance_id":"app","event":{"type":"client","client_ids":["nobody"],"data":{}}}"#;
                            for _ in 0..p.filler {
                                pipe.cmd("PUBLISH").arg("replicas").arg(nobody).ignore();
                            }
                            pipe.cmd("PUBLISH").arg("replicas").arg(
                                r#"{"instance_id":"app","event":{"type":"channel","channel_ids":["c"],"data":{"m":"note"}}}"#,
                            ).ignore();
                            pipe.query_async::<()>(&mut c).await.unwrap();
                        }
                        let body = String::from_utf8_lossy(&body);
                        let reports = format!(r#"{{"status":200,"reports":[{body}]}}"#);
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reports}",
                            reports.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned()
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, task)
}

/// 300 walker events pipelined behind slow walkers (far more than the 64
/// frames a socket may hold): every reply comes, in order, and the socket
/// stays open.
#[tokio::test]
async fn pipelined_walkers_are_slowed_down_not_closed() {
    const EVENTS: usize = 300;
    let (backend, task) = slow_backend(Duration::from_millis(3), None).await;
    let server = CableServer::start(&["--mount", "/websocket=jac", "--jac-backend", &backend]);
    let url = format!("ws://{}/websocket", server.addr);
    let (mut ws, _) = connect(&url, None, None).await.expect("a Jac socket");
    let info = next_frame(&mut ws).await.expect("the connection info");
    assert_eq!(info["type"], "connection", "{info}");
    for n in 0..EVENTS {
        let event = json!({"type": "walker", "walker": "w", "response": true, "context": {"n": n}});
        ws.feed(Message::text(event.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    for n in 0..EVENTS {
        let reply = tokio::time::timeout(Duration::from_secs(30), next_frame(&mut ws))
            .await
            .expect("a reply in time");
        assert_eq!(
            reply,
            Some(json!({"status": 200, "reports": [{"n": n}]})),
            "reply {n}"
        );
    }
    // Still open: a connection event is answered.
    ws.send(Message::text(r#"{"type":"connection"}"#))
        .await
        .unwrap();
    let again: Option<Value> = next_frame(&mut ws).await;
    assert_eq!(again, Some(info));
    task.abort();
}

/// A redis-server on a free port, killed on drop.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (apt-get install -y redis-server)");
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The app publishes a walker's notification (behind a burst of other
/// replica events) before answering it: the socket gets the notification
/// first, as the real server sends it, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walkers_notifications_arrive_before_its_response() {
    let redis = Redis::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let publishes = Publishes {
        redis: redis::Client::open(url.as_str()).unwrap(),
        filler: 2000,
    };
    let (backend, task) = slow_backend(Duration::ZERO, Some(publishes)).await;
    let server = tokio::task::block_in_place(|| {
        CableServer::start(&[
            "--mount",
            "/websocket=jac",
            "--jac-backend",
            &backend,
            "--redis-url",
            &url,
        ])
    });
    let (mut ws, _) = connect(
        &format!("ws://{}/websocket?channel_id=c", server.addr),
        None,
        None,
    )
    .await
    .expect("a Jac socket");
    next_frame(&mut ws).await.expect("the connection info");
    tokio::time::sleep(Duration::from_millis(500)).await; // subscribed to Redis
    for n in 0..5 {
        let event = json!({"type": "walker", "walker": "w", "response": true, "context": {"n": n}});
        ws.send(Message::text(event.to_string())).await.unwrap();
        assert_eq!(
            next_frame(&mut ws).await,
            Some(json!({"m": "note"})),
            "call {n}"
        );
        assert_eq!(
            next_frame(&mut ws).await,
            Some(json!({"status": 200, "reports": [{"n": n}]})),
            "call {n}"
        );
    }
    task.abort();
}
