//! A Jac transcript's client side played against a live server, what it answers compared with
//! what was recorded (see the module docs for the rules).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::ids::IdMap;
use super::transcript::{JacStep, JacTranscript};
use super::users::{make_users, recorded_tokens};
use crate::Error;

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

/// The public root's ObjectId: the same on every deployment.
const PUBLIC_ROOT: &str = "000000000000000000000001";

/// Where and how to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The WebSocket side, `ws://HOST:PORT` (each recorded path is appended).
    pub ws: String,
    /// The deployment's HTTP side for users, `http://HOST:PORT` (the Jac Cloud app).
    pub http: String,
    /// How long to wait for one expected frame.
    pub frame_timeout: Duration,
    /// How long to wait before a close for frames that should not come.
    pub settle: Duration,
}

/// What one client received.
#[derive(Debug)]
enum Incoming {
    Text(String),
    Binary,
    Close(u16, String),
    Gone,
}

struct Client {
    sink: Sink,
    rx: mpsc::UnboundedReceiver<Incoming>,
}

/// Replays `transcript`; `Ok(())` when the server answered as recorded, else the first
/// difference.
pub async fn replay(transcript: &JacTranscript, options: &ReplayOptions) -> Result<(), Error> {
    let mut map = IdMap::new();
    map.bind(PUBLIC_ROOT, PUBLIC_ROOT);
    make_users(&options.http, &recorded_tokens(&transcript.text), &mut map).await?;
    let mut clients: HashMap<String, Client> = HashMap::new();
    let mut settled = true;
    let fail = |n: usize, step: &JacStep, why: String| {
        Error::Live(format!("step {} ({}): {why}", n + 1, step.client()))
    };
    let start = tokio::time::Instant::now();
    for (n, (at, step)) in transcript.steps.iter().enumerate() {
        // What a client sends goes out no earlier than recorded: frames of different clients
        // race on the server, and the recording's pacing is what settled the race.
        if matches!(step, JacStep::Handshake { .. } | JacStep::Out { .. }) {
            tokio::time::sleep_until(start + *at).await;
        }
        match step {
            JacStep::Handshake {
                client,
                path,
                headers,
                status,
                subprotocol,
            } => {
                let url = format!(
                    "{}{}",
                    options.ws.trim_end_matches('/'),
                    map.substitute(path)
                );
                let mut request = url
                    .as_str()
                    .into_client_request()
                    .map_err(|e| fail(n, step, format!("{url}: {e}")))?;
                for (name, value) in headers {
                    if name.eq_ignore_ascii_case("authorization") {
                        let value = map.substitute(value);
                        request.headers_mut().insert(
                            "authorization",
                            value
                                .parse()
                                .map_err(|_| fail(n, step, "bad header".into()))?,
                        );
                    }
                }
                let connected = tokio::time::timeout(
                    options.frame_timeout,
                    tokio_tungstenite::connect_async(request),
                )
                .await
                .map_err(|_| fail(n, step, "the handshake timed out".into()))?;
                match connected {
                    Ok((ws, response)) => {
                        if *status != 101 {
                            return Err(fail(n, step, format!("recorded {status}, got 101")));
                        }
                        let chosen = response
                            .headers()
                            .get("sec-websocket-protocol")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        if chosen != *subprotocol {
                            return Err(fail(
                                n,
                                step,
                                format!("subprotocol: recorded {subprotocol:?}, got {chosen:?}"),
                            ));
                        }
                        let (sink, mut stream) = ws.split();
                        let (tx, rx) = mpsc::unbounded_channel();
                        tokio::spawn(async move {
                            while let Some(message) = stream.next().await {
                                let incoming = match message {
                                    Ok(Message::Text(t)) => Incoming::Text(t.as_str().to_owned()),
                                    Ok(Message::Binary(_)) => Incoming::Binary,
                                    Ok(Message::Close(frame)) => {
                                        let (code, reason) = frame
                                            .map_or((1005, String::new()), |f| {
                                                (u16::from(f.code), f.reason.as_str().to_owned())
                                            });
                                        Incoming::Close(code, reason)
                                    }
                                    Ok(_) => continue,
                                    Err(_) => Incoming::Gone,
                                };
                                let gone = matches!(incoming, Incoming::Gone);
                                if tx.send(incoming).is_err() || gone {
                                    return;
                                }
                            }
                            let _ = tx.send(Incoming::Gone);
                        });
                        clients.insert(client.clone(), Client { sink, rx });
                    }
                    Err(WsError::Http(response)) => {
                        let got = response.status().as_u16();
                        if got != *status {
                            return Err(fail(n, step, format!("recorded {status}, got {got}")));
                        }
                    }
                    Err(e) => return Err(fail(n, step, format!("handshake: {e}"))),
                }
            }
            JacStep::Out {
                client,
                frame,
                binary,
            } => {
                settled = false;
                let c = clients
                    .get_mut(client)
                    .ok_or_else(|| fail(n, step, "no such client".into()))?;
                let text = map.substitute(frame);
                let message = if *binary {
                    Message::Binary(text.into_bytes().into())
                } else {
                    Message::Text(text.into())
                };
                c.sink
                    .send(message)
                    .await
                    .map_err(|e| fail(n, step, format!("send: {e}")))?;
            }
            JacStep::In { client, frame } => {
                let c = clients
                    .get_mut(client)
                    .ok_or_else(|| fail(n, step, "no such client".into()))?;
                let got = tokio::time::timeout(options.frame_timeout, c.rx.recv())
                    .await
                    .map_err(|_| fail(n, step, format!("nothing arrived; recorded {frame}")))?;
                let Some(Incoming::Text(got)) = got else {
                    return Err(fail(n, step, format!("got {got:?}; recorded {frame}")));
                };
                compare(&mut map, frame, &got).map_err(|why| fail(n, step, why))?;
            }
            JacStep::Close {
                client,
                by_client,
                code,
                reason,
            } => {
                if !settled {
                    tokio::time::sleep(options.settle).await;
                    settled = true;
                }
                let mut c = clients
                    .remove(client)
                    .ok_or_else(|| fail(n, step, "no such client".into()))?;
                if let Ok(extra) = c.rx.try_recv() {
                    if !matches!(extra, Incoming::Close(..)) || *by_client {
                        return Err(fail(n, step, format!("unexpected {extra:?}")));
                    }
                    check_close(&extra, *code, reason).map_err(|why| fail(n, step, why))?;
                    continue;
                }
                if *by_client {
                    let frame = CloseFrame {
                        code: CloseCode::from(*code),
                        reason: reason.clone().into(),
                    };
                    c.sink
                        .send(Message::Close(Some(frame)))
                        .await
                        .map_err(|e| fail(n, step, format!("close: {e}")))?;
                }
                let echo = tokio::time::timeout(options.frame_timeout, c.rx.recv())
                    .await
                    .map_err(|_| fail(n, step, "no close frame".into()))?
                    .unwrap_or(Incoming::Gone);
                check_close(&echo, *code, reason).map_err(|why| fail(n, step, why))?;
            }
        }
    }
    if !clients.is_empty() {
        tokio::time::sleep(options.settle).await;
        for (name, c) in &mut clients {
            if let Ok(extra) = c.rx.try_recv() {
                return Err(Error::Live(format!(
                    "{name}: unexpected {extra:?} at the end"
                )));
            }
        }
    }
    Ok(())
}

fn check_close(got: &Incoming, code: u16, reason: &str) -> Result<(), String> {
    match got {
        Incoming::Close(c, r) if *c == code && r == reason => Ok(()),
        other => Err(format!("expected a close {code} {reason:?}, got {other:?}")),
    }
}

/// Compares a live frame with the recorded one: as JSON when both are, else as text.
fn compare(map: &mut IdMap, recorded: &str, live: &str) -> Result<(), String> {
    match (
        serde_json::from_str::<Value>(recorded),
        serde_json::from_str::<Value>(live),
    ) {
        (Ok(r), Ok(l)) => map.values_match(&r, &l, "$"),
        _ if map.strings_match(recorded, live) => Ok(()),
        _ => Err(format!("recorded {recorded}, got {live}")),
    }
}
