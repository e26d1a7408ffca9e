//! The floor: a bare tokio WebSocket broadcast server with no Action Cable protocol, the
//! least work a server can do for the [`shootout`](crate::shootout) harness.
//!
//! It is what an Action Cable server is measured against: the same fan-out over the same
//! WebSocket library (tokio-tungstenite, with cable-server's buffer sizes) and the same
//! task layout (one reader and one writer task per connection, the writer coalescing
//! frames and flushing once per batch), minus everything the protocol costs.
//!
//! What it does:
//! - answers any WebSocket upgrade on any path, echoing `actioncable-v1-json` in
//!   `Sec-WebSocket-Protocol` when the client offers it;
//! - sends `{"type":"welcome"}` first;
//! - for a frame containing `"command":"subscribe"`: finds the `"identifier"` string by a
//!   plain string search (no JSON parsing) and answers
//!   `{"identifier":<that string>,"type":"confirm_subscription"}`;
//! - for a frame containing `"command":"message"` whose `data` contains
//!   `"action":"broadcast"`: unescapes the `data` string (the only JSON it decodes: one
//!   string token), builds one frame `{"identifier":<id>,"message":<data>}` once and sends a
//!   shared clone of it (`Utf8Bytes`, reference counted) to **every** open connection,
//!   including the sender, then sends the sender
//!   `{"identifier":<id>,"message":<data with "action":"broadcastResult">}`: the frames
//!   Rails' `BenchmarkChannel` sends, byte for byte but for key order;
//! - for `"action":"echo"`: sends `{"identifier":<id>,"message":<data>}` to the sender only.
//!
//! What it does not do: no origin check, no authentication, no JSON validation, no
//! subscription registry (every connection is in the one broadcast group whether it
//! subscribed or not), no streams, no pings, no unsubscribe, no back-pressure or slow-client
//! handling, no graceful shutdown. Anything else a client sends is ignored.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The subprotocol echoed when offered.
const SUBPROTOCOL: &str = "actioncable-v1-json";
/// Most frames written before one flush (as cable-server's writer).
const BATCH_FRAMES: usize = 256;
/// Most bytes written before one flush (as cable-server's writer).
const BATCH_BYTES: usize = 256 * 1024;

/// The WebSocket buffers: the same sizes as cable-server's (1 KiB read, 16 KiB write).
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
}

/// The raw JSON string token (quotes included, escapes kept) that follows `"<key>":` in
/// `frame`, found by string search only. For `{"identifier":"{\"channel\":\"X\"}"}` and key
/// `identifier` it is `"{\"channel\":\"X\"}"`. `None` if the key is missing or its value is
/// not a complete string.
pub fn find_string_token<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let start = frame.find(&pattern)? + pattern.len();
    let rest = frame[start..].trim_start();
    let offset = frame.len() - rest.len();
    let bytes = rest.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(&frame[offset..offset + i + 1]),
            _ => i += 1,
        }
    }
    None
}

/// The `identifier` string token of a client command, quotes and escapes kept (so that it
/// is echoed exactly as sent).
pub fn find_identifier(frame: &str) -> Option<&str> {
    find_string_token(frame, "identifier")
}

/// The confirmation of a subscribe command with this identifier token.
pub fn confirm_frame(identifier_token: &str) -> String {
    format!(r#"{{"identifier":{identifier_token},"type":"confirm_subscription"}}"#)
}

/// The frames answering one client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send this to the sender only.
    Sender(String),
    /// Send `all` to every connection, then `result` to the sender.
    Broadcast {
        /// The frame every connection gets.
        all: String,
        /// The frame the sender gets after it.
        result: String,
    },
}

/// What the floor answers to a client text frame, if anything.
pub fn reply_to(frame: &str) -> Option<Reply> {
    if frame.contains(r#""command":"subscribe""#) {
        return find_identifier(frame).map(|id| Reply::Sender(confirm_frame(id)));
    }
    if !frame.contains(r#""command":"message""#) {
        return None;
    }
    let identifier = find_identifier(frame)?;
    let data_token = find_string_token(frame, "data")?;
    let data: String = serde_json::from_str(data_token).ok()?;
    if data.contains(r#""action":"broadcast""#) {
        let all = format!(r#"{{"identifier":{identifier},"message":{data}}}"#);
        let result_data = data.replacen(
            r#""action":"broadcast""#,
            r#""action":"broadcastResult""#,
            1,
        );
        let result = format!(r#"{{"identifier":{identifier},"message":{result_data}}}"#);
        Some(Reply::Broadcast { all, result })
    } else if data.contains(r#""action":"echo""#) {
        Some(Reply::Sender(format!(
            r#"{{"identifier":{identifier},"message":{data}}}"#
        )))
    } else {
        None
    }
}

/// Every open connection's outbound queue.
#[derive(Default)]
struct Registry {
    slots: Vec<Option<mpsc::UnboundedSender<Utf8Bytes>>>,
    free: Vec<usize>,
}

impl Registry {
    fn insert(&mut self, tx: mpsc::UnboundedSender<Utf8Bytes>) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(tx);
                i
            }
            None => {
                self.slots.push(Some(tx));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) {
        if self.slots[i].take().is_some() {
            self.free.push(i);
        }
    }
}

type Shared = Arc<Mutex<Registry>>;

/// Binds `addr` (loopback only) and returns the listener, for [`serve`].
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: the floor listens on loopback addresses only"),
        ));
    }
    TcpListener::bind(addr).await
}

/// Serves WebSocket connections from `listener` forever (until the task is dropped).
/// Accept errors (such as running out of file descriptors) are reported on stderr and
/// retried after a short pause.
pub async fn serve(listener: TcpListener) {
    let registry: Shared = Arc::default();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let registry = registry.clone();
                tokio::spawn(connection(stream, registry));
            }
            Err(e) => {
                eprintln!("floor: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

// The callback's signature is tungstenite's, large error type included.
#[allow(clippy::result_large_err)]
fn negotiate(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if offered {
        resp.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(resp)
}

async fn connection(stream: TcpStream, registry: Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        negotiate,
        Some(websocket_config()),
    )
    .await
    else {
        return;
    };
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let _ = tx.send(Utf8Bytes::from_static(r#"{"type":"welcome"}"#));
    let slot = registry.lock().expect("floor registry").insert(tx.clone());
    let mut writer = tokio::spawn(write_loop(sink, rx));
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            match reply_to(text.as_str()) {
                None => {}
                Some(Reply::Sender(frame)) => {
                    let _ = tx.send(Utf8Bytes::from(frame));
                }
                Some(Reply::Broadcast { all, result }) => {
                    let all = Utf8Bytes::from(all);
                    {
                        let registry = registry.lock().expect("floor registry");
                        for peer in registry.slots.iter().flatten() {
                            let _ = peer.send(all.clone());
                        }
                    }
                    let _ = tx.send(Utf8Bytes::from(result));
                }
            }
        }
    };
    tokio::select! {
        () = reader => {}
        _ = &mut writer => {}
    }
    writer.abort();
    registry.lock().expect("floor registry").remove(slot);
}

async fn write_loop<W>(mut sink: W, mut rx: mpsc::UnboundedReceiver<Utf8Bytes>)
where
    W: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let (mut frames, mut bytes) = (0usize, 0usize);
        while let Some(text) = next.take() {
            bytes += text.len();
            frames += 1;
            if sink.feed(Message::Text(text)).await.is_err() {
                return;
            }
            if frames >= BATCH_FRAMES || bytes >= BATCH_BYTES {
                break;
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = r#""{\"channel\":\"BenchmarkChannel\"}""#;

    #[test]
    fn finds_the_identifier_token_as_sent() {
        let frame = format!(r#"{{"command":"subscribe","identifier":{ID}}}"#);
        assert_eq!(find_identifier(&frame), Some(ID));
        let spaced = format!(r#"{{"identifier": {ID} ,"command":"subscribe"}}"#);
        assert_eq!(find_identifier(&spaced), Some(ID));
        let escaped = r#"{"identifier":"{\"channel\":\"A\\\\\"}","command":"subscribe"}"#;
        assert_eq!(
            find_identifier(escaped),
            Some(r#""{\"channel\":\"A\\\\\"}""#)
        );
    }

    #[test]
    fn no_identifier_when_missing_or_unterminated() {
        assert_eq!(find_identifier(r#"{"command":"subscribe"}"#), None);
        assert_eq!(find_identifier(r#"{"identifier":42}"#), None);
        assert_eq!(find_identifier(r#"{"identifier":"abc"#), None);
        assert_eq!(find_identifier(r#"{"identifier":"abc\"#), None);
    }

    #[test]
    fn confirms_a_subscribe() {
        let frame = format!(r#"{{"command":"subscribe","identifier":{ID}}}"#);
        assert_eq!(
            reply_to(&frame),
            Some(Reply::Sender(format!(
                r#"{{"identifier":{ID},"type":"confirm_subscription"}}"#
            )))
        );
    }

    #[test]
    fn broadcast_builds_both_frames() {
        let frame = format!(
            r#"{{"command":"message","identifier":{ID},"data":"{{\"action\":\"broadcast\",\"payload\":{{\"id\":7,\"padding\":\"xx\"}}}}"}}"#
        );
        let Some(Reply::Broadcast { all, result }) = reply_to(&frame) else {
            panic!("not a broadcast: {frame}");
        };
        assert_eq!(
            all,
            format!(
                r#"{{"identifier":{ID},"message":{{"action":"broadcast","payload":{{"id":7,"padding":"xx"}}}}}}"#
            )
        );
        assert_eq!(
            result,
            format!(
                r#"{{"identifier":{ID},"message":{{"action":"broadcastResult","payload":{{"id":7,"padding":"xx"}}}}}}"#
            )
        );
        for f in [&all, &result] {
            serde_json::from_str::<serde_json::Value>(f).expect("valid JSON");
        }
    }

    #[test]
    fn echo_answers_the_sender_and_the_rest_is_ignored() {
        let echo = format!(
            r#"{{"command":"message","identifier":{ID},"data":"{{\"action\":\"echo\",\"x\":1}}"}}"#
        );
        assert_eq!(
            reply_to(&echo),
            Some(Reply::Sender(format!(
                r#"{{"identifier":{ID},"message":{{"action":"echo","x":1}}}}"#
            )))
        );
        assert_eq!(
            reply_to(r#"{"command":"unsubscribe","identifier":"x"}"#),
            None
        );
        assert_eq!(reply_to("not json"), None);
        let other = format!(
            r#"{{"command":"message","identifier":{ID},"data":"{{\"action\":\"speak\"}}"}}"#
        );
        assert_eq!(reply_to(&other), None);
    }
}
