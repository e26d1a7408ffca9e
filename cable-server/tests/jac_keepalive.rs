//! Jac sockets' keepalive against the real server's recording
//! (`cable-fixtures/transcripts/jac/keepalive/`, by
//! `cable-fixtures/scenarios/jac/keepalive_timeout.py`): a ping with 4 bytes
//! after the interval, and a client that does not answer it is closed with
//! the recorded code and reason after the timeout. Short real time: 200 ms
//! and 300 ms instead of the real server's 20 s and 20 s.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{connect, next_frame, CableServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// One frame from the server, as a client that never answers sees it.
#[derive(Debug)]
enum Raw {
    Text(String),
    Ping(usize),
    Close(u16, String),
    /// The TCP connection ended.
    Eof,
}

/// A WebSocket client on a plain TCP socket, so that nothing answers a
/// ping behind its back.
struct Silent {
    tcp: TcpStream,
}

impl Silent {
    async fn open(addr: std::net::SocketAddr) -> Silent {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            tcp.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
        Silent { tcp }
    }

    async fn next(&mut self) -> Raw {
        let mut header = [0u8; 2];
        if self.tcp.read_exact(&mut header).await.is_err() {
            return Raw::Eof;
        }
        let mut len = u64::from(header[1] & 0x7f);
        if len == 126 {
            len = u64::from(self.tcp.read_u16().await.unwrap());
        } else if len == 127 {
            len = self.tcp.read_u64().await.unwrap();
        }
        let mut payload = vec![0u8; len as usize];
        self.tcp.read_exact(&mut payload).await.unwrap();
        match header[0] & 0x0f {
            0x1 => Raw::Text(String::from_utf8(payload).unwrap()),
            0x9 => Raw::Ping(payload.len()),
            0x8 => Raw::Close(
                u16::from_be_bytes([payload[0], payload[1]]),
                String::from_utf8(payload[2..].to_vec()).unwrap(),
            ),
            other => panic!("unexpected opcode {other}"),
        }
    }
}

/// The close the real server sent to the client that did not answer.
fn recorded_close() -> (u16, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cable-fixtures/transcripts/jac/keepalive/keepalive_timeout.json");
    let recording: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let frames = recording["frames"].as_array().unwrap();
    let pings: Vec<&Value> = frames.iter().filter(|f| f["opcode"] == "ping").collect();
    assert_eq!(pings.len(), 1, "one unanswered ping before the close");
    assert_eq!(pings[0]["payload_len"], 4);
    let close = frames.iter().find(|f| f["opcode"] == "close").unwrap();
    (
        close["code"].as_u64().unwrap() as u16,
        close["reason"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_client_that_does_not_answer_pings_is_closed_as_recorded() {
    let (code, reason) = recorded_close();
    let server = CableServer::start(&[
        "--mount",
        "/websocket=jac",
        "--jac-ping-interval-ms",
        "200",
        "--jac-ping-timeout-ms",
        "300",
    ]);
    let started = Instant::now();
    let mut silent = Silent::open(server.addr).await;
    let wait = Duration::from_secs(5);
    let info = tokio::time::timeout(wait, silent.next()).await.unwrap();
    assert!(matches!(&info, Raw::Text(t) if t.contains(r#""type":"connection""#)));
    let ping = tokio::time::timeout(wait, silent.next()).await.unwrap();
    assert!(matches!(ping, Raw::Ping(4)), "{ping:?}");
    let pinged = started.elapsed();
    assert!(pinged >= Duration::from_millis(200), "{pinged:?}");
    let close = tokio::time::timeout(wait, silent.next()).await.unwrap();
    let closed = started.elapsed();
    match close {
        Raw::Close(c, r) => assert_eq!((c, r), (code, reason)),
        other => panic!("{other:?}"),
    }
    assert!(
        closed >= pinged + Duration::from_millis(300),
        "{pinged:?} {closed:?}"
    );

    // A client that answers (tungstenite pongs as it reads) stays open.
    let url = format!("ws://{}/websocket", server.addr);
    let (mut ws, _) = connect(&url, None, None).await.unwrap();
    let info = next_frame(&mut ws).await.unwrap();
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1200);
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, ws.next()).await {
        match frame.unwrap() {
            Message::Ping(payload) => {
                assert_eq!(payload.len(), 4);
                pings += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(pings >= 3, "a ping every 200 ms after each pong: {pings}");
    ws.send(Message::text(r#"{"type":"connection"}"#))
        .await
        .unwrap();
    assert_eq!(next_frame(&mut ws).await, Some(info));
}
