//! Recording Jac transcripts from a live server (the real Jac Cloud server): a script's client
//! side is played, and everything the server answered is written in the jacref format.
//!
//! A script is JSON lines like a transcript without `in` lines: `handshake` (`path`; `token`:
//! an email whose user is registered and logged in first, sent as `Authorization: Bearer`),
//! `out` (`frame`, `opcode`), `note`, `close` (`code`, `reason`). Frames and paths may say
//! `{{token:EMAIL}}`, `{{root:EMAIL}}` (`n::<hex>`), `{{client_id:C}}` and `{{channel_id:C}}`
//! (from client C's connection frame). After each step the recorder waits `settle` and writes
//! every frame that arrived, in arrival order, as `in` lines with their offsets.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::users::{login, PASSWORD};
use crate::Error;

/// What a client received, with the instant it arrived.
type Arrival = (Instant, String, Value);

/// Records `script` (JSON lines) against `ws` / `http`; returns the transcript's lines.
pub async fn record(script: &str, ws: &str, http: &str, settle: Duration) -> Result<String, Error> {
    let start = Instant::now();
    let ms = |at: Instant| (at - start).as_secs_f64() * 1000.0;
    let ms = move |at: Instant| (ms(at) * 10.0).round() / 10.0;
    let mut users: HashMap<String, (String, String)> = HashMap::new();
    let mut info: HashMap<String, Value> = HashMap::new();
    let mut sinks = HashMap::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    let mut out: Vec<Value> = Vec::new();
    for (n, line) in script.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| Error::Script(format!("line {}: {why}", n + 1));
        let step: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let s = |k: &str| {
            step.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let client = s("client");
        // Users named anywhere in the step are made first.
        for email in placeholders(line, "token").chain(placeholders(line, "root")) {
            if !users.contains_key(&email) {
                users.insert(email.clone(), login(http, &email, PASSWORD).await?);
            }
        }
        let fill = |text: &str| fill(text, &users, &info);
        match s("dir").as_str() {
            "note" => out.push(json!({"t_ms": ms(Instant::now()), "client": "-", "dir": "note", "text": s("text")})),
            "handshake" => {
                let path = fill(&s("path"));
                let mut request = format!("{}{path}", ws.trim_end_matches('/'))
                    .into_client_request()
                    .map_err(|e| bad(e.to_string()))?;
                let mut headers = Vec::new();
                if let Some(email) = step.get("token").and_then(Value::as_str) {
                    if !users.contains_key(email) {
                        users.insert(email.to_owned(), login(http, email, PASSWORD).await?);
                    }
                    let value = format!("Bearer {}", users[email].0);
                    request
                        .headers_mut()
                        .insert("authorization", value.parse().map_err(|_| bad("token".into()))?);
                    headers.push(json!(["Authorization", value]));
                }
                let at = Instant::now();
                let (status, subprotocol) = match tokio_tungstenite::connect_async(request).await {
                    Ok((socket, response)) => {
                        let (sink, mut stream) = socket.split();
                        sinks.insert(client.clone(), sink);
                        let tx = tx.clone();
                        let name = client.clone();
                        tokio::spawn(async move {
                            while let Some(Ok(message)) = stream.next().await {
                                let v = match message {
                                    Message::Text(t) => json!({"opcode": "text", "frame": t.as_str()}),
                                    Message::Close(f) => {
                                        let (code, reason) = f.map_or((1005, String::new()), |f| {
                                            (u16::from(f.code), f.reason.as_str().to_owned())
                                        });
                                        json!({"close": code, "reason": reason})
                                    }
                                    _ => continue,
                                };
                                let _ = tx.send((Instant::now(), name.clone(), v));
                            }
                        });
                        let proto = response
                            .headers()
                            .get("sec-websocket-protocol")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        (101, proto)
                    }
                    Err(WsError::Http(response)) => (response.status().as_u16(), None),
                    Err(e) => return Err(bad(e.to_string())),
                };
                out.push(json!({"t_ms": ms(at), "client": client, "dir": "handshake", "path": path,
                    "request_headers": headers, "status": status, "subprotocol": subprotocol}));
            }
            "out" => {
                let frame = fill(&s("frame"));
                let binary = s("opcode") == "binary";
                let sink = sinks.get_mut(&client).ok_or_else(|| bad("no such client".into()))?;
                out.push(json!({"t_ms": ms(Instant::now()), "client": client, "dir": "out",
                    "opcode": if binary { "binary" } else { "text" }, "frame": frame}));
                let message = if binary {
                    Message::Binary(frame.into_bytes().into())
                } else {
                    Message::Text(frame.into())
                };
                sink.send(message).await.map_err(|e| bad(e.to_string()))?;
            }
            "close" => {
                let code = step.get("code").and_then(Value::as_u64).unwrap_or(1000) as u16;
                let reason = s("reason");
                let mut sink = sinks.remove(&client).ok_or_else(|| bad("no such client".into()))?;
                let frame = CloseFrame { code: CloseCode::from(code), reason: reason.clone().into() };
                sink.send(Message::Close(Some(frame))).await.map_err(|e| bad(e.to_string()))?;
            }
            other => return Err(bad(format!("unknown dir {other:?}"))),
        }
        // What arrived, in arrival order, until the server is quiet.
        tokio::time::sleep(settle).await;
        while let Ok((at, name, v)) = rx.try_recv() {
            if let Some(code) = v.get("close") {
                out.push(
                    json!({"t_ms": ms(at), "client": name, "dir": "close", "initiator":
                    if s("dir") == "close" && name == client { "client" } else { "server" },
                    "code": code, "reason": v["reason"]}),
                );
                continue;
            }
            if let Ok(frame) = serde_json::from_str::<Value>(v["frame"].as_str().unwrap_or("")) {
                if frame["type"] == "connection" {
                    info.insert(name.clone(), frame["data"].clone());
                }
            }
            out.push(json!({"t_ms": ms(at), "client": name, "dir": "in", "opcode": v["opcode"], "frame": v["frame"]}));
        }
    }
    Ok(out.iter().map(|v| format!("{v}\n")).collect())
}

/// The arguments of every `{{kind:ARG}}` in `text`.
fn placeholders<'a>(text: &'a str, kind: &'a str) -> impl Iterator<Item = String> + 'a {
    let open = format!("{{{{{kind}:");
    text.match_indices(open.clone().as_str())
        .filter_map(move |(at, _)| {
            let rest = &text[at + open.len()..];
            rest.find("}}").map(|end| rest[..end].to_owned())
        })
        .collect::<Vec<_>>()
        .into_iter()
}

fn fill(
    text: &str,
    users: &HashMap<String, (String, String)>,
    info: &HashMap<String, Value>,
) -> String {
    let mut text = text.to_owned();
    for (email, (token, root)) in users {
        text = text.replace(&format!("{{{{token:{email}}}}}"), token);
        text = text.replace(&format!("{{{{root:{email}}}}}"), &format!("n::{root}"));
    }
    for (client, data) in info {
        for key in ["client_id", "channel_id"] {
            if let Some(v) = data[key].as_str() {
                text = text.replace(&format!("{{{{{key}:{client}}}}}"), v);
            }
        }
    }
    text
}
