//! The live target: a transcript's client side played in real time against a server.
//!
//! Every client (`A`, `B`, ...) runs concurrently on one clock; each step happens at its
//! recorded offset from the scenario's start. The WebSocket upgrade is written by hand so
//! that the recorded request headers go out as recorded (order and case kept, `Host` and a
//! same-origin `Origin` rewritten to the target, a fresh `Sec-WebSocket-Key`) and so that any
//! answer, including a refusal or a missing subprotocol, is recorded rather than rejected.
//! `http` steps become HTTP/1.1 GETs to the same host and port. What happens is recorded as a
//! [`Transcript`]. Only loopback addresses are accepted.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame as WsClose};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::transcript::{
    Close, CloseFrame, CloseOutcome, Event, EventKind, Handshake, HandshakeFailed,
    HandshakeResponse, Headers, Http, HttpResponse, Payload, Step, TimedStep, Transcript,
};
use crate::Error;

/// How long a TCP connect, an HTTP answer or a close handshake may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a live server listens: parsed from `ws://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTarget {
    /// The (loopback) address.
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
    /// `HOST:PORT` as written in the URL; the `Host` header of every request.
    pub authority: String,
    /// The mount path, e.g. `/cable`. It replaces the path of each recorded request; the
    /// recorded query is kept.
    pub path: String,
}

impl LiveTarget {
    /// Parses `ws://HOST:PORT/PATH`. `HOST` must be a loopback IP address or `localhost`
    /// (which means 127.0.0.1).
    pub fn parse(url: &str) -> Result<LiveTarget, Error> {
        let bad = |why: &str| Error::Usage(format!("--url {url:?}: {why}"));
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| bad("must start with ws://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/cable"),
        };
        if path.contains('?') {
            return Err(bad("must not have a query"));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, p) = h.split_once("]:").ok_or_else(|| bad("needs a port"))?;
            (h, p)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| bad("needs a port"))?
        };
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        let ip: IpAddr = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .map_err(|_| bad("host must be an IP address"))?
        };
        if !ip.is_loopback() {
            return Err(bad("only loopback addresses are allowed"));
        }
        Ok(LiveTarget {
            ip,
            port,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The request target for a recorded path: this target's path plus the recorded query.
    fn request_target(&self, recorded_path: &str) -> String {
        match recorded_path.find('?') {
            Some(i) => format!("{}{}", self.path, &recorded_path[i..]),
            None => self.path.clone(),
        }
    }
}

/// Timing of a live run.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// How long to wait after the last scripted step for trailing frames before the clients
    /// that are still open close.
    pub settle: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            settle: Duration::from_millis(1000),
        }
    }
}

/// The events observed so far, on one clock.
struct Recorder {
    t0: Instant,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    fn now_ms(&self) -> f64 {
        self.t0.elapsed().as_secs_f64() * 1000.0
    }

    fn push_at(&self, t_ms: f64, client: &str, kind: EventKind) {
        self.events.lock().expect("recorder lock").push(Event {
            t_ms,
            client: client.to_owned(),
            kind,
        });
    }

    fn push(&self, client: &str, kind: EventKind) {
        let mut events = self.events.lock().expect("recorder lock");
        let t_ms = self.now_ms();
        events.push(Event {
            t_ms,
            client: client.to_owned(),
            kind,
        });
    }
}

/// Who closed a connection, as far as the client saw it.
#[derive(Default)]
struct CloseState {
    sent: Option<CloseFrame>,
    rcvd: Option<CloseFrame>,
    /// `Some(true)` if the server's close frame came before ours.
    rcvd_first: Option<bool>,
    finished: bool,
}

type WsStream = WebSocketStream<TcpStream>;

/// An open connection of one client.
struct Conn {
    sink: SplitSink<WsStream, Message>,
    reader: JoinHandle<()>,
    state: Arc<Mutex<CloseState>>,
}

/// Runs the client side of `script` against `target` in real time and records what
/// happened. The whole run is bounded: the last step's time, the settle time and a
/// margin for closing.
pub async fn run(
    script: &Transcript,
    target: &LiveTarget,
    opts: &LiveOptions,
) -> Result<Transcript, Error> {
    let steps = script.client_steps().map_err(Error::Script)?;
    let last_ms = steps.last().map_or(0.0, |s| s.t_ms);
    let bound = Duration::from_millis(last_ms as u64) + opts.settle + 4 * IO_TIMEOUT;
    timeout(bound, run_unbounded(steps, target, opts, last_ms))
        .await
        .map_err(|_| Error::Live(format!("the scenario did not finish within {bound:?}")))?
}

async fn run_unbounded(
    steps: Vec<TimedStep>,
    target: &LiveTarget,
    opts: &LiveOptions,
    last_ms: f64,
) -> Result<Transcript, Error> {
    let rec = Arc::new(Recorder {
        t0: Instant::now(),
        events: Mutex::new(Vec::new()),
    });
    let mut per_client: BTreeMap<String, Vec<TimedStep>> = BTreeMap::new();
    for s in steps {
        per_client.entry(s.client.clone()).or_default().push(s);
    }
    let mut tasks = Vec::new();
    for (client, steps) in per_client {
        let rec = rec.clone();
        let target = target.clone();
        tasks.push((
            client.clone(),
            tokio::spawn(async move { run_client(&client, steps, &target, &rec).await }),
        ));
    }
    let mut conns = Vec::new();
    let mut first_error = None;
    for (client, task) in tasks {
        match task.await {
            Ok(Ok(Some(conn))) => conns.push((client, conn)),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Live(format!("client {client}: {e}")));
            }
        }
    }
    if let Some(e) = first_error {
        for (_, c) in conns {
            c.reader.abort();
        }
        return Err(e);
    }
    sleep_until(rec.t0 + Duration::from_secs_f64(last_ms / 1000.0) + opts.settle).await;
    // Clients still open at the end close from their side.
    for (client, conn) in &mut conns {
        let open = {
            let st = conn.state.lock().expect("close state");
            !st.finished && st.sent.is_none() && st.rcvd.is_none()
        };
        if open {
            rec.push(
                client,
                EventKind::Note(
                    "end of scenario: client initiates close code=1000 reason=''".into(),
                ),
            );
            client_close(
                conn,
                CloseFrame {
                    code: 1000,
                    reason: String::new(),
                },
            )
            .await;
        }
    }
    for (client, conn) in conns {
        if timeout(IO_TIMEOUT, conn.reader).await.is_err() {
            return Err(Error::Live(format!(
                "client {client}: the connection did not close within {IO_TIMEOUT:?}"
            )));
        }
    }
    let mut events = std::mem::take(&mut *rec.events.lock().expect("recorder lock"));
    events.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    Ok(Transcript { events })
}

async fn client_close(conn: &mut Conn, frame: CloseFrame) {
    {
        let mut st = conn.state.lock().expect("close state");
        if st.rcvd.is_some() || st.finished {
            return;
        }
        st.sent = Some(frame.clone());
        st.rcvd_first = Some(false);
    }
    let _ = conn
        .sink
        .send(Message::Close(Some(WsClose {
            code: CloseCode::from(frame.code),
            reason: frame.reason.into(),
        })))
        .await;
}

/// Plays one client's steps; returns its connection if it is still to be waited for.
async fn run_client(
    client: &str,
    steps: Vec<TimedStep>,
    target: &LiveTarget,
    rec: &Arc<Recorder>,
) -> Result<Option<Conn>, Error> {
    let mut conn: Option<Conn> = None;
    let mut refused = false;
    let err = |e: String| Error::Live(format!("client {client}: {e}"));
    for s in steps {
        sleep_until(rec.t0 + Duration::from_secs_f64(s.t_ms / 1000.0)).await;
        match s.step {
            // Notes this runner writes itself are not copied from the recording being
            // replayed (they would pile up with every generation).
            Step::Note(text) if is_generated_note(&text) => {}
            Step::Note(text) => rec.push(client, EventKind::Note(text)),
            Step::Http { method, path } => {
                if method != "GET" {
                    return Err(err(format!(
                        "only GET control calls are supported, not {method}"
                    )));
                }
                let t = rec.now_ms();
                let (status, body) = http_get(target, &path).await.map_err(err)?;
                rec.push_at(
                    t,
                    client,
                    EventKind::Http(Http {
                        method,
                        path,
                        response: Some(HttpResponse { status, body }),
                    }),
                );
            }
            Step::Connect {
                path,
                request_headers,
            } => {
                let t = rec.now_ms();
                match connect(target, &path, &request_headers)
                    .await
                    .map_err(err)?
                {
                    Connected::Upgraded { ws, handshake } => {
                        rec.push_at(t, client, EventKind::Handshake(handshake));
                        let (sink, stream) = (*ws).split();
                        let state = Arc::new(Mutex::new(CloseState::default()));
                        let reader = tokio::spawn(read_frames(
                            client.to_owned(),
                            stream,
                            state.clone(),
                            rec.clone(),
                        ));
                        conn = Some(Conn {
                            sink,
                            reader,
                            state,
                        });
                    }
                    Connected::Refused(failed) => {
                        rec.push_at(t, client, EventKind::HandshakeFailed(failed));
                        refused = true;
                    }
                }
            }
            Step::Send(payload) => {
                let Some(c) = conn.as_mut() else {
                    if refused {
                        continue;
                    }
                    return Err(err("sends before connecting".into()));
                };
                if closing(c) {
                    rec.push(
                        client,
                        EventKind::Note(format!(
                            "not sent, the connection is closed: {}",
                            payload.display()
                        )),
                    );
                    continue;
                }
                let msg = match &payload {
                    Payload::Text(s) => Message::text(s.clone()),
                    Payload::Binary(b) => Message::binary(b.clone()),
                    Payload::Large(_) => return Err(err("cannot send a large-form frame".into())),
                };
                rec.push(client, EventKind::Out(payload));
                c.sink
                    .send(msg)
                    .await
                    .map_err(|e| err(format!("send failed: {e}")))?;
            }
            Step::Close(frame) => {
                let Some(c) = conn.as_mut() else {
                    if refused {
                        continue;
                    }
                    return Err(err("closes before connecting".into()));
                };
                if closing(c) {
                    continue;
                }
                rec.push(
                    client,
                    EventKind::Note(format!(
                        "client initiates close code={} reason='{}'",
                        frame.code, frame.reason
                    )),
                );
                client_close(c, frame).await;
            }
        }
    }
    Ok(conn)
}

/// The prefixes of the notes [`run`] writes itself.
const GENERATED_NOTES: [&str; 3] = [
    "client initiates close ",
    "end of scenario: ",
    "not sent, the connection is closed: ",
];

fn is_generated_note(text: &str) -> bool {
    GENERATED_NOTES.iter().any(|p| text.starts_with(p))
}

fn closing(c: &Conn) -> bool {
    let st = c.state.lock().expect("close state");
    st.finished || st.sent.is_some() || st.rcvd.is_some()
}

async fn read_frames(
    client: String,
    mut stream: SplitStream<WsStream>,
    state: Arc<Mutex<CloseState>>,
    rec: Arc<Recorder>,
) {
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Text(s)) => rec.push(&client, EventKind::In(Payload::Text(s.to_string()))),
            Ok(Message::Binary(b)) => rec.push(&client, EventKind::In(Payload::Binary(b.to_vec()))),
            Ok(Message::Close(f)) => {
                let frame = f.map_or(
                    CloseFrame {
                        code: 1005,
                        reason: String::new(),
                    },
                    |f| CloseFrame {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    },
                );
                let mut st = state.lock().expect("close state");
                if st.sent.is_none() {
                    // tungstenite answers with the same frame.
                    st.rcvd_first = Some(true);
                    st.sent = Some(frame.clone());
                }
                st.rcvd = Some(frame);
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(_) => break,
        }
    }
    let mut st = state.lock().expect("close state");
    st.finished = true;
    let (code, reason) = st
        .rcvd
        .as_ref()
        .map_or((1006, String::new()), |f| (f.code, f.reason.clone()));
    rec.push(
        &client,
        EventKind::Close(Close {
            code,
            reason,
            outcome: Some(CloseOutcome {
                rcvd: st.rcvd.clone(),
                sent: st.sent.clone(),
                rcvd_then_sent: st.rcvd_first,
            }),
        }),
    );
}

enum Connected {
    Upgraded {
        ws: Box<WsStream>,
        handshake: Handshake,
    },
    Refused(HandshakeFailed),
}

/// The headers to send: recorded ones, with `Host`, a same-origin `Origin` and the key
/// replaced.
fn rewrite_headers(recorded: &Headers, target: &LiveTarget, key: &str) -> Headers {
    let recorded_host = recorded
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let mut out: Headers = Vec::with_capacity(recorded.len() + 1);
    let mut has_key = false;
    for (k, v) in recorded {
        let v = if k.eq_ignore_ascii_case("host") {
            target.authority.clone()
        } else if k.eq_ignore_ascii_case("origin")
            && recorded_host
                .as_ref()
                .is_some_and(|h| *v == format!("http://{h}"))
        {
            format!("http://{}", target.authority)
        } else if k.eq_ignore_ascii_case("sec-websocket-key") {
            has_key = true;
            key.to_owned()
        } else {
            v.clone()
        };
        out.push((k.clone(), v));
    }
    if !has_key {
        let at = out
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-version"))
            .unwrap_or(out.len());
        out.insert(at, ("Sec-WebSocket-Key".into(), key.to_owned()));
    }
    out
}

async fn connect(
    target: &LiveTarget,
    path: &str,
    recorded_headers: &Headers,
) -> Result<Connected, String> {
    let key = generate_key();
    let headers = rewrite_headers(recorded_headers, target, &key);
    let request_target = target.request_target(path);
    let mut stream = timeout(IO_TIMEOUT, TcpStream::connect((target.ip, target.port)))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect to {}: {e}", target.authority))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut req = format!("GET {request_target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write handshake: {e}"))?;
    let (status, response_headers, rest) = read_head(&mut stream).await?;
    if status == 101 {
        let accept = header(&response_headers, "sec-websocket-accept");
        if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(format!("bad Sec-WebSocket-Accept: {accept:?}"));
        }
        let subprotocol = header(&response_headers, "sec-websocket-protocol").map(str::to_owned);
        let ws = WebSocketStream::from_partially_read(stream, rest, Role::Client, None).await;
        Ok(Connected::Upgraded {
            ws: Box::new(ws),
            handshake: Handshake {
                path: request_target,
                request_headers: headers,
                response: Some(HandshakeResponse {
                    status,
                    response_headers,
                    subprotocol,
                }),
            },
        })
    } else {
        let body = read_body(&mut stream, &response_headers, rest).await?;
        Ok(Connected::Refused(HandshakeFailed {
            path: request_target,
            request_headers: headers,
            status,
            response_headers,
            body,
        }))
    }
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads an HTTP response head; returns the status, the headers and the bytes after the head.
async fn read_head(stream: &mut TcpStream) -> Result<(u16, Headers, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return Err("response head too large".into());
        }
        let n = timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| "no HTTP response in time".to_owned())?
            .map_err(|e| format!("read response: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed before the response head ({} bytes)",
                buf.len()
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, rest))
}

/// Reads a response body (Content-Length, chunked, or up to EOF).
async fn read_body(
    stream: &mut TcpStream,
    headers: &Headers,
    mut body: Vec<u8>,
) -> Result<String, String> {
    let length: Option<usize> = header(headers, "content-length").and_then(|v| v.parse().ok());
    let chunked =
        header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut chunk = [0u8; 4096];
    loop {
        if length.is_some_and(|n| body.len() >= n) {
            break;
        }
        if chunked && body.windows(5).any(|w| w == b"0\r\n\r\n") {
            break;
        }
        let n = match timeout(IO_TIMEOUT, stream.read(&mut chunk)).await {
            Err(_) => return Err("response body timed out".into()),
            Ok(Err(_)) | Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
        };
        body.extend_from_slice(&chunk[..n]);
    }
    if let Some(n) = length {
        body.truncate(n);
    }
    if chunked {
        body = dechunk(&body);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..i]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        data = &data[i + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

/// A plain HTTP/1.1 GET to the target's host and port.
async fn http_get(target: &LiveTarget, path: &str) -> Result<(u16, String), String> {
    let mut stream = timeout(IO_TIMEOUT, TcpStream::connect((target.ip, target.port)))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect to {}: {e}", target.authority))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cable-fixtures\r\nConnection: close\r\n\r\n",
        target.authority
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let (status, headers, rest) = read_head(&mut stream).await?;
    let body = read_body(&mut stream, &headers, rest).await?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = LiveTarget::parse("ws://127.0.0.1:28080/cable").unwrap();
        assert_eq!(t.authority, "127.0.0.1:28080");
        assert_eq!(t.port, 28080);
        assert_eq!(t.request_target("/cable?token=alice"), "/cable?token=alice");
        assert_eq!(t.request_target("/other"), "/cable");
        let t = LiveTarget::parse("ws://localhost:9/ws").unwrap();
        assert_eq!(t.ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(t.request_target("/cable?x=1"), "/ws?x=1");
        assert!(LiveTarget::parse("ws://[::1]:80/cable").is_ok());
        for bad in [
            "ws://10.0.0.1:80/cable",
            "ws://example.com:80/cable",
            "http://127.0.0.1:80/cable",
            "ws://127.0.0.1/cable",
            "ws://127.0.0.1:80/cable?x",
        ] {
            assert!(LiveTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_rewritten_to_the_target() {
        let t = LiveTarget::parse("ws://127.0.0.1:9999/cable").unwrap();
        let rec: Headers = vec![
            ("Host".into(), "127.0.0.1:28080".into()),
            ("Origin".into(), "http://127.0.0.1:28080".into()),
            ("Sec-WebSocket-Version".into(), "13".into()),
        ];
        let out = rewrite_headers(&rec, &t, "KEY");
        assert_eq!(
            out,
            vec![
                ("Host".to_owned(), "127.0.0.1:9999".to_owned()),
                ("Origin".to_owned(), "http://127.0.0.1:9999".to_owned()),
                ("Sec-WebSocket-Key".to_owned(), "KEY".to_owned()),
                ("Sec-WebSocket-Version".to_owned(), "13".to_owned()),
            ]
        );
        // A foreign origin stays as it is.
        let rec: Headers = vec![
            ("Host".into(), "127.0.0.1:28080".into()),
            ("Origin".into(), "http://evil.example".into()),
            ("Sec-WebSocket-Key".into(), "old".into()),
        ];
        let out = rewrite_headers(&rec, &t, "KEY");
        assert_eq!(out[1].1, "http://evil.example");
        assert_eq!(out[2].1, "KEY");
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
    }
}
