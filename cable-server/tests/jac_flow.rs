//! Flow control on Jac sockets: while a walker is pending, a socket's later
//! frames wait in the dialect, and the reader reads no more than that hold
//! takes, so a client that pipelines is slowed down (as the real server
//! reads more slowly) instead of being closed.

mod common;

use std::time::Duration;

use common::{connect, next_frame, CableServer};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A Jac Cloud app's HTTP side as far as walkers go: no OpenAPI document
/// (404), and every `POST /walker/<name>` answered after `delay` with
/// `{"status":200,"reports":[<the body>]}` (HTTP/1.1, kept alive).
async fn slow_backend(delay: Duration) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
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
    let (backend, task) = slow_backend(Duration::from_millis(3)).await;
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
