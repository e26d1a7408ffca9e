//! The soak's clients on the wire: WebSocket connections to the reference
//! app (optionally with a tiny receive buffer, for slow readers), TCP
//! resets, and a hand-made upgrade for clients that then write garbage
//! bytes instead of frames.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::live::LiveTarget;

/// A client socket.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// How long opening a connection, or its subscription, may take.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// One server (node) the soak talks to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its socket address.
    pub addr: SocketAddr,
    /// `HOST:PORT` for `Host` and the same-origin `Origin`.
    pub authority: String,
    /// The mount path, `/cable`.
    pub path: String,
}

impl Endpoint {
    /// The endpoint of a parsed `--url`.
    pub fn of(target: &LiveTarget) -> Self {
        Self {
            addr: SocketAddr::new(target.ip, target.port),
            authority: target.authority.clone(),
            path: target.path.clone(),
        }
    }

    /// `http://HOST:PORT` plus `path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority)
    }

    /// Opens a WebSocket as user `token` (the reference app's `?token=`),
    /// same-origin, with the Rails client's subprotocol; `recv_buffer` sets
    /// a small `SO_RCVBUF` first (a slow reader fills it at once).
    pub(crate) async fn connect(
        &self,
        token: &str,
        recv_buffer: Option<u32>,
    ) -> Result<Ws, String> {
        let url = format!("ws://{}{}?token={token}", self.authority, self.path);
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        let origin = format!("http://{}", self.authority);
        let headers = request.headers_mut();
        headers.insert(
            "Origin",
            HeaderValue::from_str(&origin).map_err(|e| e.to_string())?,
        );
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("actioncable-v1-json, actioncable-unsupported"),
        );
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| e.to_string())?;
        }
        let open = async {
            let stream = socket.connect(self.addr).await.map_err(|e| e.to_string())?;
            let _ = stream.set_nodelay(true);
            let (ws, _) = tokio_tungstenite::client_async(request, stream)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<Ws, String>(ws)
        };
        timeout(OPEN_TIMEOUT, open)
            .await
            .map_err(|_| "connecting timed out".to_owned())?
    }

    /// Upgrades by hand and returns the bare socket after the 101 (to write
    /// bytes that are not WebSocket frames).
    pub(crate) async fn raw_upgrade(&self) -> Result<TcpStream, String> {
        let run = async {
            let mut stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?;
            let request = format!(
                "GET {}?token=raw HTTP/1.1\r\nHost: {a}\r\nOrigin: http://{a}\r\n\
                 Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Protocol: actioncable-v1-json\r\n\r\n",
                self.path,
                a = self.authority
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await.map_err(|e| e.to_string())? == 0 {
                    return Err("closed during the upgrade".to_owned());
                }
                head.push(byte[0]);
                if head.len() > 16 * 1024 {
                    return Err("response head too long".to_owned());
                }
            }
            if !head.starts_with(b"HTTP/1.1 101") {
                return Err(String::from_utf8_lossy(&head).into_owned());
            }
            Ok(stream)
        };
        timeout(OPEN_TIMEOUT, run)
            .await
            .map_err(|_| "raw upgrade timed out".to_owned())?
    }
}

/// The reference app's `ChatChannel` identifier of `room`.
pub(crate) fn chat_identifier(room: &str) -> String {
    json!({"channel": "ChatChannel", "room": room}).to_string()
}

/// A `speak` of `text` on `identifier`.
pub(crate) fn speak(identifier: &str, text: &str) -> Message {
    let data = json!({"action": "speak", "text": text}).to_string();
    Message::text(json!({"command": "message", "identifier": identifier, "data": data}).to_string())
}

/// Waits for the welcome, subscribes to `identifier` and waits for the
/// confirmation (pings and other frames before it are skipped).
pub(crate) async fn subscribe(ws: &mut Ws, identifier: &str) -> Result<(), String> {
    let run = async {
        let command = json!({"command": "subscribe", "identifier": identifier}).to_string();
        ws.send(Message::text(command))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    match frame["type"].as_str() {
                        Some("confirm_subscription") => return Ok(()),
                        Some("reject_subscription") => return Err("rejected".to_owned()),
                        Some("disconnect") => return Err(format!("disconnected: {text}")),
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Err("closed".to_owned()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
    };
    timeout(OPEN_TIMEOUT, run)
        .await
        .map_err(|_| "subscribing timed out".to_owned())?
}

/// Ends a connection with a TCP reset (`SO_LINGER` 0, then close) instead
/// of a WebSocket close.
pub(crate) fn reset(ws: Ws) {
    let stream = ws.into_inner();
    let _ = stream.set_zero_linger();
    drop(stream);
}
