//! The host's defences against adversarial peers, through the real binary
//! on 127.0.0.1: the handshake deadline, the pending-handshake and
//! connection caps, frames over the limit, broadcasts too large for a
//! queue, invalid frames (Action Cable's and BuddyBoss'), the idle timeout, and rate-limited logging.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket upgrade request for `server`, complete.
fn upgrade_request(server: &CableServer) -> String {
    format!(
        "GET /cable HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: actioncable-v1-json\r\nOrigin: http://{addr}\r\n\r\n",
        addr = server.addr
    )
}

/// A raw WebSocket client: the upgrade by hand, then frames read by hand,
/// so that a test can write what a library client would refuse to.
struct RawClient {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// One frame from the server (unmasked).
#[derive(Debug)]
struct RawFrame {
    opcode: u8,
    payload: Vec<u8>,
}

impl RawClient {
    async fn connect(server: &CableServer) -> RawClient {
        Self::connect_with(server, TcpStream::connect(server.addr).await.unwrap()).await
    }

    /// With a small send buffer: writes stall as soon as the server stops
    /// reading (loopback's default buffers take a whole MiB).
    async fn connect_small_send_buffer(server: &CableServer) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        Self::connect_with(server, socket.connect(server.addr).await.unwrap()).await
    }

    async fn connect_with(server: &CableServer, mut stream: TcpStream) -> RawClient {
        stream
            .write_all(upgrade_request(server).as_bytes())
            .await
            .unwrap();
        let mut client = RawClient {
            stream,
            buffer: Vec::new(),
        };
        let end = loop {
            if let Some(i) = client.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(client.fill().await > 0, "closed before the 101");
        };
        let head = String::from_utf8_lossy(&client.buffer[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        client.buffer.drain(..end);
        client
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("data in time")
            .unwrap_or(0);
        self.buffer.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next frame; `None` at the end of the stream.
    async fn frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buffer) {
                self.buffer.drain(..used);
                return Some(frame);
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }
}

fn parse_frame(buffer: &[u8]) -> Option<(RawFrame, usize)> {
    if buffer.len() < 2 {
        return None;
    }
    let opcode = buffer[0] & 0x0f;
    let (len, mut at) = match buffer[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buffer.get(2..4)?.try_into().unwrap()) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buffer.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    assert_eq!(buffer[1] & 0x80, 0, "the server masks nothing");
    let payload = buffer.get(at..at + len)?.to_vec();
    at += len;
    Some((RawFrame { opcode, payload }, at))
}

/// The header of a masked client text frame of `len` bytes (mask 0).
fn text_frame_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]);
    header
}

/// The soft open-files limit of this process, if known.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn half_sent_upgrades_are_closed_at_the_deadline_and_others_still_connect() {
    // 2,000 by default (CABLE_SLOWLORIS=N to change), within this process's
    // open-files limit.
    let wanted: usize = std::env::var("CABLE_SLOWLORIS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let count = match open_files_limit() {
        Some(limit) => wanted.min(limit.saturating_sub(256)),
        None => wanted,
    };
    let deadline = Duration::from_millis(3000);
    let server = CableServer::start(&[
        "--handshake-timeout-ms",
        "3000",
        "--max-pending-handshakes",
        "4096",
        "--ping-interval-ms",
        "100000",
    ]);
    let addr = server.addr;
    let partial = format!("GET /cable HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n");
    let started = Instant::now();
    let mut slow = Vec::with_capacity(count);
    // In batches of 50, paced so that the listen backlog (128) does not
    // overflow (a dropped handshake would be retried a second later).
    for batch in 0..count.div_ceil(50) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let opening: Vec<_> = (batch * 50..count.min(batch * 50 + 50))
            .map(|_| {
                let partial = partial.clone();
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    let opened = Instant::now();
                    stream.write_all(partial.as_bytes()).await.unwrap();
                    (stream, opened)
                })
            })
            .collect();
        for opening in opening {
            slow.push(opening.await.unwrap());
        }
    }
    let opened_in = started.elapsed();
    // Each keeps sending, a byte every 300 ms, never finishing its head;
    // each records when the server closed it.
    let watchers: Vec<_> = slow
        .into_iter()
        .map(|(stream, opened)| {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let trickle = async {
                    loop {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        if write.write_all(b"x").await.is_err() {
                            break;
                        }
                    }
                };
                let closed = async {
                    let mut sink = [0u8; 64];
                    loop {
                        match read.read(&mut sink).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                };
                tokio::select! {
                    () = closed => {}
                    () = trickle => {}
                }
                (opened, opened.elapsed())
            })
        })
        .collect();

    // Meanwhile a new client connects at once.
    let connecting = Instant::now();
    let mut ws = server.connect("").await;
    assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
    let welcome_in = connecting.elapsed();

    let mut lifetimes = Vec::with_capacity(count);
    let mut pending_meanwhile = 0;
    for watcher in watchers {
        let (opened, lifetime) = timeout(deadline + Duration::from_secs(10), watcher)
            .await
            .expect("every half-sent request is closed")
            .unwrap();
        if opened + lifetime > connecting + welcome_in {
            pending_meanwhile += 1;
        }
        lifetimes.push(lifetime);
    }
    lifetimes.sort();
    let (first, last) = (lifetimes[0], lifetimes[count - 1]);
    eprintln!(
        "{count} half-sent upgrade requests opened in {opened_in:?}; a new client welcomed \
         in {welcome_in:?} while {pending_meanwhile} of them were pending; they were closed \
         {first:?} to {last:?} after they opened (deadline {deadline:?})"
    );
    assert_eq!(pending_meanwhile, count);
    assert!(welcome_in < Duration::from_secs(2), "{welcome_in:?}");
    // Not before the deadline (less the time an open took), not long after.
    assert!(first >= deadline - Duration::from_millis(300), "{first:?}");
    assert!(last < deadline + Duration::from_secs(5), "{last:?}");
    // The welcomed client was not disturbed, and a new one still connects.
    subscribe_pubsub(&mut ws, "after").await;
    let mut again = server.connect("").await;
    assert_eq!(next_frame(&mut again).await.unwrap()["type"], "welcome");
}

#[tokio::test]
async fn past_the_pending_cap_the_oldest_handshake_makes_room() {
    // A long deadline: only the cap closes anything here.
    let server = CableServer::start(&[
        "--handshake-timeout-ms",
        "60000",
        "--max-pending-handshakes",
        "100",
    ]);
    let mut stalled = Vec::new();
    for i in 0..300 {
        if i % 25 == 0 {
            // Paced, so the listen backlog does not overflow and the server
            // accepts them in order.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"GET /cable HTTP/1.1\r\n").await.unwrap();
        stalled.push(stream);
    }
    let connecting = Instant::now();
    let mut ws = server.connect("").await;
    assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
    let welcome_in = connecting.elapsed();
    // The stalled connections still open are the newest, at most 100.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut open = Vec::new();
    for (i, stream) in stalled.iter_mut().enumerate() {
        let mut byte = [0u8; 1];
        match timeout(Duration::from_millis(5), stream.read(&mut byte)).await {
            Err(_) => open.push(i),
            Ok(Ok(0) | Err(_)) => {}
            Ok(Ok(_)) => panic!("no answer expected"),
        }
    }
    eprintln!(
        "300 stalled handshakes, cap 100: {} still open (the newest from #{:?}); \
         a new client welcomed in {welcome_in:?}",
        open.len(),
        open.first()
    );
    assert!(open.len() < 100, "{}", open.len());
    assert!(open.iter().all(|&i| i >= 200), "{open:?}");
    assert!(welcome_in < Duration::from_secs(2), "{welcome_in:?}");
}

#[tokio::test]
async fn under_a_low_open_files_limit_the_default_caps_keep_descriptors_for_newcomers() {
    // ulimit -n 256: 64 kept aside, 48 pending handshakes (a quarter of the
    // rest), 144 WebSocket connections (--max-connections auto).
    let (server, log) = CableServer::start_logging_with_open_files(
        256,
        &[
            "--handshake-timeout-ms",
            "60000",
            "--ping-interval-ms",
            "100000",
            "--log",
            "info",
        ],
    );
    let mut stalled = Vec::new();
    for i in 0..400 {
        if i % 25 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"GET /cable HTTP/1.1\r\n").await.unwrap();
        stalled.push(stream);
    }
    // WebSocket clients until the cap: then 503, not a failed accept.
    let mut clients = Vec::new();
    let refusal = loop {
        match connect(&server.url(""), Some(&server.origin()), None).await {
            Ok((mut ws, _)) => {
                assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
                clients.push(ws);
                assert!(clients.len() <= 144, "no cap");
            }
            Err(error) => break error,
        }
    };
    match refusal {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected a 503, got {other}"),
    }
    let (status, _, _) = http(server.addr, "GET", "/health", &[], b"").await;
    assert_eq!(status, 200);
    // Every client still served.
    assert_eq!(
        post_broadcast(server.addr, None, &json!({"stream": "none", "data": 1})).await,
        201
    );
    let mut last = clients.pop().unwrap();
    send(
        &mut last,
        json!({"command": "subscribe", "identifier": pubsub_identifier("s")}),
    )
    .await;
    assert_eq!(
        next_message(&mut last).await.unwrap()["type"],
        "confirm_subscription"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let lines: Vec<String> = log.try_iter().collect();
    let limits = lines
        .iter()
        .find(|l| l.contains("admission limits"))
        .expect("the limits are logged");
    eprintln!(
        "ulimit -n 256, 400 stalled handshakes: {} WebSocket clients, then 503; {limits}",
        clients.len() + 1
    );
    assert_eq!(clients.len() + 1, 144);
    assert!(
        !lines.iter().any(|l| l.contains("accept failed")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn past_max_connections_a_503_and_the_first_are_untouched() {
    let (server, log) = CableServer::start_logging(&[
        "--max-connections",
        "5",
        "--ping-interval-ms",
        "300",
        "--log",
        "warn",
    ]);
    let mut first = Vec::new();
    for i in 0..5 {
        let mut ws = server.connect(&format!("?token=c{i}")).await;
        subscribe_pubsub(&mut ws, "room").await;
        first.push(ws);
    }
    // The sixth, and a flood after it (2.5 s, at most 2,000): all 503, each
    // closed at once.
    let mut refused = 0;
    let flood_started = Instant::now();
    while refused < 2000 && flood_started.elapsed() < Duration::from_millis(2500) {
        refused += 1;
        let (status, head, _) = http(
            server.addr,
            "GET",
            "/cable",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
                ("Origin", &server.origin()),
            ],
            b"",
        )
        .await;
        assert_eq!(status, 503, "{head}");
    }
    let flood_took = flood_started.elapsed();
    match connect(&server.url(""), Some(&server.origin()), None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // The first five still get their pings and broadcasts.
    assert_eq!(
        post_broadcast(
            server.addr,
            None,
            &json!({"stream": "room", "data": {"n": 1}})
        )
        .await,
        201
    );
    for ws in &mut first {
        let mut pinged = false;
        loop {
            let frame = next_frame(ws).await.expect("still open");
            if frame["type"] == "ping" {
                pinged = true;
                continue;
            }
            assert_eq!(frame["message"], json!({"n": 1}), "{frame}");
            break;
        }
        if !pinged {
            assert_eq!(next_frame(ws).await.unwrap()["type"], "ping");
        }
    }
    // One leaves: its place is free again.
    let mut leaving = first.pop().unwrap();
    leaving.close(None).await.unwrap();
    let _ = timeout(WAIT, async {
        while let Some(Ok(_)) = leaving.next().await {}
    })
    .await;
    let mut welcomed = false;
    for _ in 0..50 {
        if let Ok((mut ws, _)) = connect(&server.url(""), Some(&server.origin()), None).await {
            assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
            welcomed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(welcomed, "a freed place is taken again");

    // The flood logged a line a second at most, with the count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lines: Vec<String> = log
        .try_iter()
        .filter(|l| l.contains("--max-connections reached"))
        .collect();
    let counted: u64 = lines
        .iter()
        .filter_map(|l| l.split("count=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    eprintln!(
        "{} refusals in {flood_took:?}: {} log lines, counting {counted}",
        refused + 1,
        lines.len()
    );
    assert_eq!(counted, refused as u64 + 1, "{lines:#?}");
    assert!(lines.len() as u64 <= flood_took.as_secs() + 3, "{lines:#?}");
}

#[tokio::test]
async fn a_frame_over_the_limit_is_closed_with_1009_before_it_is_read() {
    let server = CableServer::start(&["--ping-interval-ms", "100000"]);
    // At the limit (64 KiB): handled. A subscribe padded with whitespace.
    let mut ws = server.connect("").await;
    assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "welcome");
    let identifier = pubsub_identifier("edge");
    let mut command = json!({"command": "subscribe", "identifier": identifier}).to_string();
    command.push_str(&" ".repeat(64 * 1024 - command.len()));
    ws.send(Message::text(command)).await.unwrap();
    let confirmed = next_message(&mut ws).await.unwrap();
    assert_eq!(confirmed["type"], "confirm_subscription", "{confirmed}");

    // 1 MiB: the header and 16 KiB of it, then the client waits.
    let mut raw = RawClient::connect_small_send_buffer(&server).await;
    let welcome = raw.frame().await.unwrap();
    assert_eq!(welcome.opcode, 1);
    let total: u64 = 1024 * 1024;
    let started = Instant::now();
    raw.stream
        .write_all(&text_frame_header(total))
        .await
        .unwrap();
    let chunk = vec![b' '; 16 * 1024];
    raw.stream.write_all(&chunk).await.unwrap();
    let sent_before_close = chunk.len();
    let close = loop {
        let frame = raw.frame().await.expect("a close frame");
        if frame.opcode == 8 {
            break frame;
        }
    };
    let close_in = started.elapsed();
    let code = u16::from_be_bytes([close.payload[0], close.payload[1]]);
    assert_eq!(code, u16::from(CloseCode::Size), "{close:?}");
    // The rest cannot all go: the server reads no more and closes.
    let mut sent_after = 0usize;
    let rest_started = Instant::now();
    let outcome = loop {
        if sent_after as u64 + sent_before_close as u64 >= total {
            break "all sent";
        }
        match timeout(Duration::from_secs(3), raw.stream.write(&chunk)).await {
            Err(_) => break "stalled",
            Ok(Err(_)) => break "failed",
            Ok(Ok(n)) => sent_after += n,
        }
    };
    eprintln!(
        "1 MiB frame: close {code} after {close_in:?}, with {sent_before_close} bytes of \
         payload sent; then {sent_after} more bytes went before the write {outcome} \
         ({:?})",
        rest_started.elapsed()
    );
    assert_ne!(outcome, "all sent");
    // The other client is undisturbed.
    assert_eq!(
        post_broadcast(
            server.addr,
            None,
            &json!({"stream": "edge", "data": {"ok": true}})
        )
        .await,
        201
    );
    assert_eq!(
        next_message(&mut ws).await.unwrap()["message"],
        json!({"ok": true})
    );
}

#[tokio::test]
async fn a_broadcast_too_large_for_a_queue_is_refused_with_413() {
    let server = CableServer::start(&["--ping-interval-ms", "100000"]);
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut ws = server.connect(&format!("?token=b{i}")).await;
        subscribe_pubsub(&mut ws, "big").await;
        clients.push(ws);
    }
    // 2 MiB: refused; so is a batch holding it, whole.
    let huge = "x".repeat(2 * 1024 * 1024);
    let (status, _, body) = http(
        server.addr,
        "POST",
        "/_broadcast",
        &[("Content-Type", "application/json")],
        json!({"stream": "big", "data": {"pad": huge}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    eprintln!("2 MiB broadcast: {status} {body}");
    let batch = json!([
        {"stream": "big", "data": {"n": 0}},
        {"stream": "big", "data": {"pad": huge}},
    ]);
    assert_eq!(post_broadcast(server.addr, None, &batch).await, 413);
    // The largest accepted (1 MiB less the envelope bound of a 1 KiB
    // identifier) goes through to everyone, as their first message.
    let largest = 1024 * 1024 - (6 * 1024 + 28);
    let text = format!("\"{}\"", "y".repeat(largest - 2));
    assert_eq!(
        post_broadcast(server.addr, None, &json!({"stream": "big", "data": text})).await,
        201
    );
    let one_more = format!("\"{}\"", "y".repeat(largest - 1));
    assert_eq!(
        post_broadcast(
            server.addr,
            None,
            &json!({"stream": "big", "data": one_more})
        )
        .await,
        413
    );
    assert_eq!(
        post_broadcast(
            server.addr,
            None,
            &json!({"stream": "big", "data": {"n": 1}})
        )
        .await,
        201
    );
    for ws in &mut clients {
        let frame = next_message(ws).await.expect("still open");
        assert_eq!(frame["message"].as_str().map(str::len), Some(largest - 2));
        let frame = next_message(ws).await.expect("still open");
        assert_eq!(frame["message"], json!({"n": 1}), "{frame}");
    }
}

#[tokio::test]
async fn refused_frames_past_their_rate_disconnect_without_reconnect() {
    let server = CableServer::start(&[
        "--ping-interval-ms",
        "100000",
        "--max-invalid-frames-per-sec",
        "10",
    ]);
    let farewell = json!({"type": "disconnect", "reason": "invalid_request", "reconnect": false});
    // A flood of binary frames, then one of well-formed JSON the core
    // refuses (an unknown command), the kind a reader cannot see.
    let floods = [
        Message::binary(vec![0u8; 16]),
        Message::text(r#"{"command":"nope","identifier":"{}"}"#),
    ];
    for flood_frame in floods {
        let mut flood = server.connect("").await;
        assert_eq!(next_frame(&mut flood).await.unwrap()["type"], "welcome");
        for _ in 0..30 {
            if flood.send(flood_frame.clone()).await.is_err() {
                break;
            }
        }
        assert_eq!(next_frame(&mut flood).await, Some(farewell.clone()));
        let close = loop {
            match timeout(WAIT, flood.next()).await.expect("a close in time") {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        };
        assert_eq!(close.unwrap().code, CloseCode::Normal);
    }
    // A few now and then: left alone (the core ignores them, as Rails).
    let mut calm = server.connect("").await;
    assert_eq!(next_frame(&mut calm).await.unwrap()["type"], "welcome");
    for _ in 0..8 {
        calm.send(Message::text("nonsense")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    subscribe_pubsub(&mut calm, "calm").await;
}

/// BuddyBoss' refusals (its `{"type":"error"}` replies) spend from the same
/// budget: past it, the error reply of the refused frame, BuddyBoss' error
/// frame saying why, then the close; frames sent after it are not answered.
#[tokio::test]
async fn buddyboss_refusals_past_their_rate_get_an_error_frame_and_a_close() {
    let server = CableServer::start(&[
        "--mount",
        "/=buddyboss",
        "--ping-interval-ms",
        "100000",
        "--max-invalid-frames-per-sec",
        "10",
    ]);
    let url = format!("ws://{}/", server.addr);
    let floods = [
        (
            Message::binary(vec![0u8; 16]),
            json!({"type": "error", "message": "binary frames are not supported"}),
        ),
        (
            Message::text(r#"{"type":"nope"}"#),
            json!({"type": "error", "message": "unknown type \"nope\""}),
        ),
    ];
    for (flood_frame, reply) in floods {
        let (mut flood, _) = connect(&url, None, None).await.expect("upgrade");
        for _ in 0..30 {
            if flood.send(flood_frame.clone()).await.is_err() {
                break;
            }
        }
        // The bucket holds 10: the 11th refusal is the one past it.
        for n in 0..11 {
            assert_eq!(
                next_frame(&mut flood).await,
                Some(reply.clone()),
                "reply {n}"
            );
        }
        assert_eq!(
            next_frame(&mut flood).await,
            Some(json!({"type": "error", "message": "too many refused frames: disconnected"}))
        );
        let close = loop {
            match timeout(WAIT, flood.next()).await.expect("a close in time") {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        };
        assert_eq!(close.unwrap().code, CloseCode::Normal);
    }
    // A few now and then: each answered, the socket stays open.
    let (mut calm, _) = connect(&url, None, None).await.expect("upgrade");
    for _ in 0..8 {
        calm.send(Message::text(r#"{"type":"nope"}"#))
            .await
            .unwrap();
        assert_eq!(next_frame(&mut calm).await.unwrap()["type"], "error");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    calm.send(Message::text(r#"{"type":"join_thread","threadId":"calm"}"#))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = json!({"stream": "calm", "data": {"type": "note"}});
    assert_eq!(post_broadcast(server.addr, None, &body).await, 201);
    assert_eq!(next_frame(&mut calm).await, Some(json!({"type": "note"})));
}

#[tokio::test]
async fn the_idle_timeout_closes_a_silent_client_and_spares_one_that_answers_pings() {
    let server = CableServer::start(&["--idle-timeout-ms", "800", "--ping-interval-ms", "100000"]);
    // A library client answers the server's WebSocket pings on its own
    // while it reads.
    let mut answering = server.connect("").await;
    let reader = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_millis(2500);
        let mut pings = 0;
        while let Ok(message) = tokio::time::timeout_at(deadline.into(), answering.next()).await {
            match message {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Text(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        (answering, pings)
    });
    // This one sends nothing, not even a pong.
    let mut silent = RawClient::connect(&server).await;
    let opened = Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = silent.frame().await {
        frames.push((frame.opcode, opened.elapsed()));
        if frame.opcode == 8 {
            let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            assert_eq!(code, u16::from(CloseCode::Away));
        }
    }
    let ended = opened.elapsed();
    eprintln!(
        "silent client (opcode, time): {frames:?} (1 text, 9 ping, 8 close); \
         socket ended after {ended:?}"
    );
    let opcodes: Vec<u8> = frames.iter().map(|f| f.0).collect();
    assert_eq!(opcodes, vec![1, 9, 8]);
    let (ping_at, close_at) = (frames[1].1, frames[2].1);
    assert!(ping_at >= Duration::from_millis(350), "{ping_at:?}");
    assert!(close_at >= Duration::from_millis(750), "{close_at:?}");
    assert!(close_at < Duration::from_millis(2500), "{close_at:?}");
    // The answering client, pinged and still there.
    let (mut answering, pings) = reader.await.unwrap();
    assert!(pings >= 2, "{pings}");
    subscribe_pubsub(&mut answering, "alive").await;
}
