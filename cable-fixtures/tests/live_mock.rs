//! The live target end to end, against a small in-process WebSocket server (no Rails
//! needed): recording, replaying the recording (PASS), and replaying an edited recording
//! (FAIL showing both frames).

use std::net::SocketAddr;
use std::process::Command;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message;

use cable_fixtures::live::{self, LiveOptions, LiveTarget};
use cable_fixtures::transcript::{EventKind, Payload, Transcript};

/// Welcome, confirm every subscribe, echo every message; 404 for a foreign Origin.
// The callback's signature is tungstenite's, large error type included.
#[allow(clippy::result_large_err)]
async fn mock_server(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
                let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
                if origin == Some("http://evil.example") {
                    let mut e = ErrorResponse::new(Some("Page not found".into()));
                    *e.status_mut() = StatusCode::NOT_FOUND;
                    return Err(e);
                }
                let offered = req
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if offered
                    .split(',')
                    .any(|p| p.trim() == "actioncable-v1-json")
                {
                    resp.headers_mut().insert(
                        "Sec-WebSocket-Protocol",
                        HeaderValue::from_static("actioncable-v1-json"),
                    );
                }
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                return;
            };
            let _ = ws.send(Message::text(r#"{"type":"welcome"}"#)).await;
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let v: serde_json::Value = match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                let id = v["identifier"].as_str().unwrap_or_default().to_owned();
                let reply = match v["command"].as_str() {
                    Some("subscribe") => {
                        serde_json::json!({"identifier": id, "type": "confirm_subscription"})
                    }
                    Some("message") => {
                        serde_json::json!({"identifier": id, "message": {"echo": v["data"]}})
                    }
                    _ => continue,
                };
                let _ = ws.send(Message::text(reply.to_string())).await;
            }
        });
    }
}

fn start_mock() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || rt.block_on(mock_server(listener)));
    (addr, handle)
}

const SCRIPT: &str = r#"{"t_ms": 0, "client": "A", "dir": "handshake", "path": "/cable?token=alice", "request_headers": [["Host", "127.0.0.1:28080"], ["Origin", "http://127.0.0.1:28080"], ["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Version", "13"], ["Sec-WebSocket-Protocol", "actioncable-v1-json, actioncable-unsupported"]]}
{"t_ms": 0, "client": "B", "dir": "handshake", "path": "/cable", "request_headers": [["Host", "127.0.0.1:28080"], ["Origin", "http://evil.example"], ["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Version", "13"]]}
{"t_ms": 100, "client": "A", "dir": "out", "frame": "{\"command\":\"subscribe\",\"identifier\":\"{\\\"channel\\\":\\\"ChatChannel\\\",\\\"room\\\":\\\"<&>\\\"}\"}"}
{"t_ms": 200, "client": "A", "dir": "out", "frame": "{\"command\":\"message\",\"identifier\":\"{\\\"channel\\\":\\\"ChatChannel\\\",\\\"room\\\":\\\"<&>\\\"}\",\"data\":\"{\\\"action\\\":\\\"whoami\\\"}\"}"}
{"t_ms": 300, "client": "A", "dir": "close", "code": 1000, "reason": ""}
"#;

#[test]
fn record_then_replay_then_replay_an_edited_recording() {
    let (addr, _server) = start_mock();
    let url = format!("ws://{addr}/cable");
    let target = LiveTarget::parse(&url).unwrap();
    let script = Transcript::parse(SCRIPT).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rec = rt
        .block_on(live::run(&script, &target, &LiveOptions::default()))
        .unwrap();

    // What was recorded.
    let a: Vec<&EventKind> = rec.events_of("A").map(|e| &e.kind).collect();
    let EventKind::Handshake(h) = a[0] else {
        panic!("{a:?}")
    };
    let resp = h.response.as_ref().unwrap();
    assert_eq!(resp.status, 101);
    assert_eq!(resp.subprotocol.as_deref(), Some("actioncable-v1-json"));
    assert!(h
        .request_headers
        .contains(&("Host".into(), addr.to_string())));
    assert!(h
        .request_headers
        .contains(&("Origin".into(), format!("http://{addr}"))));
    let ins: Vec<&str> = a
        .iter()
        .filter_map(|k| match k {
            EventKind::In(Payload::Text(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ins.len(), 3, "{ins:?}");
    assert_eq!(ins[0], r#"{"type":"welcome"}"#);
    assert!(ins[1].contains("confirm_subscription"));
    let EventKind::Close(c) = a.last().unwrap() else {
        panic!("{a:?}")
    };
    assert!(c.client_initiated(), "{c:?}");
    let b: Vec<&EventKind> = rec.events_of("B").map(|e| &e.kind).collect();
    let EventKind::HandshakeFailed(f) = b[0] else {
        panic!("{b:?}")
    };
    assert_eq!(f.status, 404);
    assert_eq!(f.body, "Page not found");
    assert_eq!(b.len(), 1);

    // Replaying the recording passes; an edited one fails, showing both frames.
    let tmp = std::env::temp_dir().join(format!("cable-fixtures-mock-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let good = tmp.join("mock.jsonl");
    rec.write(&good).unwrap();
    let edited = tmp.join("edited.jsonl");
    let text = std::fs::read_to_string(&good).unwrap();
    let changed = text.replace("confirm_subscription", "reject_subscription");
    assert_ne!(text, changed);
    std::fs::write(&edited, changed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cable-fixtures"))
        .args(["replay", "--settle-ms", "300", "--url", &url])
        .arg(&edited)
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("FAIL edited: client A at "),
        "{stdout}"
    );
    assert!(lines[0].contains("frame #2 differs"), "{stdout}");
    assert!(
        lines[0].contains(r#"expected: {"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"<&>\"}","type":"reject_subscription"}"#),
        "{stdout}"
    );
    assert!(
        lines[0].contains(r#"actual: {"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"<&>\"}","type":"confirm_subscription"}"#),
        "{stdout}"
    );
    assert_eq!(lines[1], "PASS mock");
    assert_eq!(lines[2], "1 passed, 1 failed");
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_dir_all(&tmp).unwrap();
}
