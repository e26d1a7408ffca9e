//! Transcript format version 1: a typed reader and writer.
//!
//! A transcript is one JSON object per line (see `../shared/refserver/README.md` and this
//! crate's README). Every event has `t_ms`, `client` and `dir`. The same types describe
//! three things:
//!
//! - a **recording**: what a client sent and what a server answered;
//! - a **scenario script**: only the client side, hand-written (a `handshake` without
//!   `status`/`response_headers`/`subprotocol`, an `http` call without `status`/`body`, a
//!   `close` without `rcvd`/`sent`/`rcvd_then_sent` meaning "the client closes now");
//! - the **observation** of a replay against any target, which is then compared with a
//!   recording by [`crate::compare()`].
//!
//! [`Transcript::client_steps`] extracts the client side of any of them.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Frames longer than this many bytes are written in the large form
/// (`frame_len`, `frame_sha256`, `frame_head`, `frame_tail`) when they are `in` frames.
pub const LARGE_FRAME_THRESHOLD: usize = 64 * 1024;

/// How many characters of a large frame the large form keeps at each end.
pub const LARGE_FRAME_KEEP: usize = 256;

/// The client name of events that belong to the scenario as a whole (`http`, notes).
pub const SCENARIO_CLIENT: &str = "-";

/// A whole transcript: its events in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    /// The events, one per line, in the order of the file.
    pub events: Vec<Event>,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Milliseconds since the scenario's first connection opened (one clock for all clients).
    pub t_ms: f64,
    /// `A`, `B`, ... or [`SCENARIO_CLIENT`] (`-`) for events of the scenario as a whole.
    pub client: String,
    /// What happened.
    pub kind: EventKind,
}

/// The kind of an event, i.e. its `dir` with the fields that belong to it.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// `dir: "handshake"`: a client connected (or, in a script, connects).
    Handshake(Handshake),
    /// `dir: "handshake_failed"`: the upgrade was refused.
    HandshakeFailed(HandshakeFailed),
    /// `dir: "out"`: the client sent a frame.
    Out(Payload),
    /// `dir: "in"`: the server sent a frame.
    In(Payload),
    /// `dir: "close"`: the socket closed (or, in a script, the client closes it).
    Close(Close),
    /// `dir: "http"`: a control endpoint was called.
    Http(Http),
    /// `dir: "note"`: a comment without effect.
    Note(String),
}

impl EventKind {
    /// The `dir` string of this kind.
    pub fn dir(&self) -> &'static str {
        match self {
            EventKind::Handshake(_) => "handshake",
            EventKind::HandshakeFailed(_) => "handshake_failed",
            EventKind::Out(_) => "out",
            EventKind::In(_) => "in",
            EventKind::Close(_) => "close",
            EventKind::Http(_) => "http",
            EventKind::Note(_) => "note",
        }
    }
}

/// A header list as recorded: `[[name, value], ...]`, order and case kept.
pub type Headers = Vec<(String, String)>;

/// A WebSocket upgrade request and, in a recording, the server's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    /// The request target with its query, e.g. `/cable?token=alice`.
    pub path: String,
    /// The request headers in the order they were sent.
    pub request_headers: Headers,
    /// The server's answer; `None` in a scenario script.
    pub response: Option<HandshakeResponse>,
}

/// The server's answer to a successful upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct HandshakeResponse {
    /// The HTTP status (101).
    pub status: u16,
    /// The response headers in the order they were received.
    pub response_headers: Headers,
    /// The subprotocol the server chose, `None` if it sent no `Sec-WebSocket-Protocol`.
    pub subprotocol: Option<String>,
}

/// A refused upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct HandshakeFailed {
    /// The request target with its query.
    pub path: String,
    /// The request headers in the order they were sent.
    pub request_headers: Headers,
    /// The HTTP status of the refusal (e.g. 404).
    pub status: u16,
    /// The response headers.
    pub response_headers: Headers,
    /// The response body as text.
    pub body: String,
}

/// The content of a WebSocket data frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A text frame, stored exactly (`frame`).
    Text(String),
    /// A binary frame (`binary: true`, `frame_b64`).
    Binary(Vec<u8>),
    /// A text frame over [`LARGE_FRAME_THRESHOLD`] bytes, stored by length and digest.
    Large(LargeFrame),
}

impl Payload {
    /// The text of a text frame (`None` for binary and large frames).
    pub fn text(&self) -> Option<&str> {
        match self {
            Payload::Text(s) => Some(s),
            _ => None,
        }
    }

    /// A short human-readable rendering, for messages.
    pub fn display(&self) -> String {
        match self {
            Payload::Text(s) => s.clone(),
            Payload::Binary(b) => format!(
                "<binary {} bytes, base64 {}>",
                b.len(),
                base64::engine::general_purpose::STANDARD.encode(b)
            ),
            Payload::Large(l) => format!(
                "<large frame {} bytes, sha256 {}, head {:?}, tail {:?}>",
                l.len, l.sha256, l.head, l.tail
            ),
        }
    }
}

/// The large form of a text frame: enough to compare it, not to replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct LargeFrame {
    /// Length in bytes.
    pub len: usize,
    /// Lower-case hex SHA-256 of the frame's bytes.
    pub sha256: String,
    /// The frame's first characters.
    pub head: String,
    /// The frame's last characters.
    pub tail: String,
}

impl LargeFrame {
    /// The large form of `text`.
    pub fn of(text: &str) -> LargeFrame {
        let head: String = text.chars().take(LARGE_FRAME_KEEP).collect();
        let n = text.chars().count();
        let tail: String = text
            .chars()
            .skip(n.saturating_sub(LARGE_FRAME_KEEP))
            .collect();
        LargeFrame {
            len: text.len(),
            sha256: sha256_hex(text.as_bytes()),
            head,
            tail,
        }
    }

    /// Whether `text` is the frame this describes (length and digest).
    pub fn matches(&self, text: &str) -> bool {
        text.len() == self.len && sha256_hex(text.as_bytes()) == self.sha256
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code.
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

/// A `close` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    /// The close code (the code received, or 1006 if none was).
    pub code: u16,
    /// The close reason.
    pub reason: String,
    /// How the socket closed; `None` in a script, where the event means "the client closes
    /// now with `code` and `reason`".
    pub outcome: Option<CloseOutcome>,
}

/// How a socket closed, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseOutcome {
    /// The close frame received from the server, if any.
    pub rcvd: Option<CloseFrame>,
    /// The close frame the client sent, if any.
    pub sent: Option<CloseFrame>,
    /// `Some(true)`: the server closed first; `Some(false)`: the client did; `None`: unknown
    /// (for example the TCP connection dropped).
    pub rcvd_then_sent: Option<bool>,
}

impl Close {
    /// Whether this close was initiated by the client: a script's close, or a recorded
    /// close where the client sent its close frame first.
    pub fn client_initiated(&self) -> bool {
        match &self.outcome {
            None => true,
            Some(o) => o.rcvd_then_sent == Some(false) && o.sent.is_some(),
        }
    }

    /// Whether the server closed first (`rcvd_then_sent: true`).
    pub fn server_initiated(&self) -> bool {
        matches!(
            &self.outcome,
            Some(CloseOutcome {
                rcvd_then_sent: Some(true),
                ..
            })
        )
    }
}

/// An HTTP call to a control endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    /// The method (`GET`).
    pub method: String,
    /// The request target with its query.
    pub path: String,
    /// The answer; `None` in a script.
    pub response: Option<HttpResponse>,
}

/// The answer to an HTTP control call.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// A transcript that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a JSON object.
    #[error("line {line}: not JSON: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A line is JSON but not an object.
    #[error("line {line}: an event must be a JSON object")]
    NotAnObject {
        /// 1-based line number.
        line: usize,
    },
    /// An event lacks a field its `dir` requires.
    #[error("line {line}: `{dir}` event is missing field `{field}`")]
    MissingField {
        /// 1-based line number.
        line: usize,
        /// The event's `dir` (or `?` if `dir` itself is missing).
        dir: String,
        /// The missing field.
        field: &'static str,
    },
    /// A field has the wrong JSON type or an invalid value.
    #[error("line {line}: field `{field}`: expected {expected}")]
    BadField {
        /// 1-based line number.
        line: usize,
        /// The field.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// An event has a `dir` this reader does not know.
    #[error("line {line}: unknown dir {dir:?}")]
    UnknownDir {
        /// 1-based line number.
        line: usize,
        /// The unknown `dir`.
        dir: String,
    },
    /// An event has a field its `dir` does not define.
    #[error("line {line}: `{dir}` event has unknown field `{field}`")]
    UnknownField {
        /// 1-based line number.
        line: usize,
        /// The event's `dir`.
        dir: String,
        /// The unknown field.
        field: String,
    },
    /// A field combination that makes no sense (for example `status` without `response_headers`).
    #[error("line {line}: {message}")]
    Inconsistent {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A step of a transcript's client side, as a replay performs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Open a WebSocket connection (from `handshake` or `handshake_failed`).
    Connect {
        /// The request target with its query.
        path: String,
        /// The request headers to send.
        request_headers: Headers,
    },
    /// Send a frame (from `out`).
    Send(Payload),
    /// Close the connection from the client side (a script's `close`, or a recorded close
    /// that the client initiated).
    Close(CloseFrame),
    /// Call a control endpoint (from `http`).
    Http {
        /// The method.
        method: String,
        /// The request target with its query.
        path: String,
    },
    /// A note, carried into the new recording.
    Note(String),
}

/// A [`Step`] with its time and client.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedStep {
    /// When, in milliseconds since the scenario started.
    pub t_ms: f64,
    /// Which client (or [`SCENARIO_CLIENT`]).
    pub client: String,
    /// What to do.
    pub step: Step,
}

impl Transcript {
    /// Reads a transcript from text (one JSON object per line; blank lines are skipped).
    pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        let mut events = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            events.push(parse_line(i + 1, line)?);
        }
        Ok(Transcript { events })
    }

    /// Reads a transcript file.
    pub fn read(path: &Path) -> Result<Transcript, TranscriptError> {
        let text = std::fs::read_to_string(path).map_err(|source| TranscriptError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Transcript::parse(&text)
    }

    /// Writes the transcript as text, one event per line, each line ending in `\n`.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            out.push_str(&e.to_json_line());
            out.push('\n');
        }
        out
    }

    /// Writes the transcript to a file.
    pub fn write(&self, path: &Path) -> Result<(), TranscriptError> {
        std::fs::write(path, self.to_jsonl()).map_err(|source| TranscriptError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// The client names in order of first appearance, without [`SCENARIO_CLIENT`].
    pub fn clients(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for e in &self.events {
            if e.client != SCENARIO_CLIENT && !v.contains(&e.client) {
                v.push(e.client.clone());
            }
        }
        v
    }

    /// The events of one client, in order.
    pub fn events_of<'a>(&'a self, client: &str) -> impl Iterator<Item = &'a Event> + 'a {
        let client = client.to_owned();
        self.events.iter().filter(move |e| e.client == client)
    }

    /// The client side of this transcript: what a replay must do, in time order.
    ///
    /// `handshake`/`handshake_failed` become [`Step::Connect`], `out` becomes
    /// [`Step::Send`], `http` becomes [`Step::Http`], a client-initiated `close` becomes
    /// [`Step::Close`] and notes are kept. `in` frames and server-initiated closes are
    /// expectations, not steps. A large `out` frame cannot be replayed and is an error, as
    /// is a step of a client before its connection or after its close.
    pub fn client_steps(&self) -> Result<Vec<TimedStep>, String> {
        let mut steps = Vec::new();
        let mut connected: Vec<&str> = Vec::new();
        let mut closed: Vec<&str> = Vec::new();
        for (i, e) in self.events.iter().enumerate() {
            let line = i + 1;
            let c = e.client.as_str();
            let step = match &e.kind {
                EventKind::Handshake(h) => Some(Step::Connect {
                    path: h.path.clone(),
                    request_headers: h.request_headers.clone(),
                }),
                EventKind::HandshakeFailed(h) => Some(Step::Connect {
                    path: h.path.clone(),
                    request_headers: h.request_headers.clone(),
                }),
                EventKind::Out(Payload::Large(_)) => {
                    return Err(format!(
                        "line {line}: an `out` frame in the large form cannot be replayed"
                    ))
                }
                EventKind::Out(p) => Some(Step::Send(p.clone())),
                EventKind::In(_) => None,
                EventKind::Close(cl) if cl.client_initiated() => {
                    let frame = match &cl.outcome {
                        Some(CloseOutcome { sent: Some(f), .. }) => f.clone(),
                        _ => CloseFrame {
                            code: cl.code,
                            reason: cl.reason.clone(),
                        },
                    };
                    Some(Step::Close(frame))
                }
                EventKind::Close(_) => None,
                EventKind::Http(h) => Some(Step::Http {
                    method: h.method.clone(),
                    path: h.path.clone(),
                }),
                EventKind::Note(t) => Some(Step::Note(t.clone())),
            };
            match &e.kind {
                EventKind::Handshake(_) | EventKind::HandshakeFailed(_) => {
                    if c == SCENARIO_CLIENT {
                        return Err(format!("line {line}: client `-` cannot connect"));
                    }
                    if connected.contains(&c) {
                        return Err(format!("line {line}: client {c} connects twice"));
                    }
                    connected.push(c);
                }
                EventKind::Out(_) | EventKind::In(_) | EventKind::Close(_) => {
                    if !connected.contains(&c) {
                        return Err(format!(
                            "line {line}: client {c} has a `{}` event before its handshake",
                            e.kind.dir()
                        ));
                    }
                    if closed.contains(&c) && !matches!(e.kind, EventKind::Close(_)) {
                        return Err(format!(
                            "line {line}: client {c} has a `{}` event after its close",
                            e.kind.dir()
                        ));
                    }
                    if let EventKind::Close(_) = e.kind {
                        closed.push(c);
                    }
                }
                EventKind::Http(_) => {
                    if c != SCENARIO_CLIENT {
                        return Err(format!("line {line}: `http` events belong to client `-`"));
                    }
                }
                EventKind::Note(_) => {}
            }
            if let Some(step) = step {
                steps.push(TimedStep {
                    t_ms: e.t_ms,
                    client: e.client.clone(),
                    step,
                });
            }
        }
        // Stable: events with equal times keep their file order.
        steps.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        Ok(steps)
    }
}

impl Event {
    /// This event as one line of JSON (without the newline). Keys come in a fixed order:
    /// `t_ms`, `client`, `dir`, then the fields of the kind.
    pub fn to_json_line(&self) -> String {
        let mut w = LineWriter::default();
        w.field("t_ms", &Value::from(round_ms(self.t_ms)));
        w.field("client", &Value::from(self.client.clone()));
        w.field("dir", &Value::from(self.kind.dir()));
        match &self.kind {
            EventKind::Handshake(h) => {
                w.field("path", &Value::from(h.path.clone()));
                w.field("request_headers", &headers_value(&h.request_headers));
                if let Some(r) = &h.response {
                    w.field("status", &Value::from(r.status));
                    w.field("response_headers", &headers_value(&r.response_headers));
                    w.field(
                        "subprotocol",
                        &r.subprotocol.clone().map_or(Value::Null, Value::from),
                    );
                }
            }
            EventKind::HandshakeFailed(h) => {
                w.field("path", &Value::from(h.path.clone()));
                w.field("request_headers", &headers_value(&h.request_headers));
                w.field("status", &Value::from(h.status));
                w.field("response_headers", &headers_value(&h.response_headers));
                w.field("body", &Value::from(h.body.clone()));
            }
            EventKind::Out(p) | EventKind::In(p) => match p {
                Payload::Text(s) => w.field("frame", &Value::from(s.clone())),
                Payload::Binary(b) => {
                    w.field("binary", &Value::Bool(true));
                    w.field(
                        "frame_b64",
                        &Value::from(base64::engine::general_purpose::STANDARD.encode(b)),
                    );
                }
                Payload::Large(l) => {
                    w.field("frame_len", &Value::from(l.len));
                    w.field("frame_sha256", &Value::from(l.sha256.clone()));
                    w.field("frame_head", &Value::from(l.head.clone()));
                    w.field("frame_tail", &Value::from(l.tail.clone()));
                }
            },
            EventKind::Close(c) => {
                w.field("code", &Value::from(c.code));
                w.field("reason", &Value::from(c.reason.clone()));
                if let Some(o) = &c.outcome {
                    w.field("rcvd", &close_frame_value(&o.rcvd));
                    w.field("sent", &close_frame_value(&o.sent));
                    w.field(
                        "rcvd_then_sent",
                        &o.rcvd_then_sent.map_or(Value::Null, Value::Bool),
                    );
                }
            }
            EventKind::Http(h) => {
                w.field("method", &Value::from(h.method.clone()));
                w.field("path", &Value::from(h.path.clone()));
                if let Some(r) = &h.response {
                    w.field("status", &Value::from(r.status));
                    w.field("body", &Value::from(r.body.clone()));
                }
            }
            EventKind::Note(t) => w.field("text", &Value::from(t.clone())),
        }
        w.finish()
    }
}

/// Rounds to 0.1 ms, the precision of recordings.
fn round_ms(t: f64) -> f64 {
    let rounded = (t * 10.0).round() / 10.0;
    // Past ~1.8e307 the multiplication overflows: such a time has no tenths
    // to round anyway.
    if rounded.is_finite() {
        rounded
    } else {
        t
    }
}

#[derive(Default)]
struct LineWriter {
    out: String,
}

impl LineWriter {
    fn field(&mut self, key: &str, value: &Value) {
        self.out
            .push_str(if self.out.is_empty() { "{" } else { ", " });
        self.out.push_str(&Value::from(key).to_string());
        self.out.push_str(": ");
        self.out.push_str(&value.to_string());
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

fn headers_value(h: &Headers) -> Value {
    Value::Array(
        h.iter()
            .map(|(k, v)| Value::Array(vec![Value::from(k.clone()), Value::from(v.clone())]))
            .collect(),
    )
}

fn close_frame_value(f: &Option<CloseFrame>) -> Value {
    match f {
        None => Value::Null,
        Some(f) => {
            let mut m = Map::new();
            m.insert("code".into(), Value::from(f.code));
            m.insert("reason".into(), Value::from(f.reason.clone()));
            Value::Object(m)
        }
    }
}

/// Field access for one event line, with typed errors.
struct Fields<'a> {
    line: usize,
    dir: String,
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn get(&self, field: &'static str) -> Result<&'a Value, TranscriptError> {
        self.obj
            .get(field)
            .ok_or_else(|| TranscriptError::MissingField {
                line: self.line,
                dir: self.dir.clone(),
                field,
            })
    }

    fn has(&self, field: &str) -> bool {
        self.obj.contains_key(field)
    }

    fn bad(&self, field: &'static str, expected: &'static str) -> TranscriptError {
        TranscriptError::BadField {
            line: self.line,
            field,
            expected,
        }
    }

    fn string(&self, field: &'static str) -> Result<String, TranscriptError> {
        self.get(field)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.bad(field, "a string"))
    }

    fn u16(&self, field: &'static str) -> Result<u16, TranscriptError> {
        self.get(field)?
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| self.bad(field, "an integer from 0 to 65535"))
    }

    fn opt_string(&self, field: &'static str) -> Result<Option<String>, TranscriptError> {
        match self.get(field)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(self.bad(field, "a string or null")),
        }
    }

    fn headers(&self, field: &'static str) -> Result<Headers, TranscriptError> {
        let arr = self
            .get(field)?
            .as_array()
            .ok_or_else(|| self.bad(field, "an array of [name, value] pairs"))?;
        arr.iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => Ok((k.clone(), v.clone())),
                _ => Err(self.bad(field, "an array of [name, value] string pairs")),
            })
            .collect()
    }

    fn close_frame(&self, field: &'static str) -> Result<Option<CloseFrame>, TranscriptError> {
        match self.get(field)? {
            Value::Null => Ok(None),
            Value::Object(m) => {
                let code = m
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| self.bad(field, "{code, reason} or null"))?;
                let reason = m
                    .get("reason")
                    .and_then(Value::as_str)
                    .ok_or_else(|| self.bad(field, "{code, reason} or null"))?;
                Ok(Some(CloseFrame {
                    code,
                    reason: reason.to_owned(),
                }))
            }
            _ => Err(self.bad(field, "{code, reason} or null")),
        }
    }

    /// Errors on any key not in `allowed` (besides `t_ms`, `client`, `dir`).
    fn only(&self, allowed: &[&str]) -> Result<(), TranscriptError> {
        for k in self.obj.keys() {
            if !["t_ms", "client", "dir"].contains(&k.as_str()) && !allowed.contains(&k.as_str()) {
                return Err(TranscriptError::UnknownField {
                    line: self.line,
                    dir: self.dir.clone(),
                    field: k.clone(),
                });
            }
        }
        Ok(())
    }

    fn inconsistent(&self, message: &str) -> TranscriptError {
        TranscriptError::Inconsistent {
            line: self.line,
            message: format!("`{}` event: {message}", self.dir),
        }
    }

    fn payload(&self) -> Result<Payload, TranscriptError> {
        if self.has("frame") {
            self.only(&["frame"])?;
            return Ok(Payload::Text(self.string("frame")?));
        }
        if self.has("frame_b64") || self.has("binary") {
            self.only(&["binary", "frame_b64"])?;
            if self.get("binary")? != &Value::Bool(true) {
                return Err(self.bad("binary", "true"));
            }
            let b64 = self.string("frame_b64")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| self.bad("frame_b64", "base64"))?;
            return Ok(Payload::Binary(bytes));
        }
        if self.has("frame_len") || self.has("frame_sha256") {
            self.only(&["frame_len", "frame_sha256", "frame_head", "frame_tail"])?;
            let len = self
                .get("frame_len")?
                .as_u64()
                .ok_or_else(|| self.bad("frame_len", "a non-negative integer"))?;
            let sha256 = self.string("frame_sha256")?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self.bad("frame_sha256", "64 hex digits"));
            }
            return Ok(Payload::Large(LargeFrame {
                len: usize::try_from(len).map_err(|_| self.bad("frame_len", "a length"))?,
                sha256: sha256.to_ascii_lowercase(),
                head: self.string("frame_head")?,
                tail: self.string("frame_tail")?,
            }));
        }
        Err(TranscriptError::MissingField {
            line: self.line,
            dir: self.dir.clone(),
            field: "frame",
        })
    }
}

fn parse_line(line: usize, text: &str) -> Result<Event, TranscriptError> {
    let value: Value =
        serde_json::from_str(text).map_err(|source| TranscriptError::Json { line, source })?;
    let obj = value
        .as_object()
        .ok_or(TranscriptError::NotAnObject { line })?;
    let dir = match obj.get("dir") {
        None => {
            return Err(TranscriptError::MissingField {
                line,
                dir: "?".into(),
                field: "dir",
            })
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(TranscriptError::BadField {
                line,
                field: "dir",
                expected: "a string",
            })
        }
    };
    let f = Fields {
        line,
        dir: dir.clone(),
        obj,
    };
    let t_ms = f
        .get("t_ms")?
        .as_f64()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .ok_or_else(|| f.bad("t_ms", "a non-negative number"))?;
    let client = f.string("client")?;
    if client.is_empty() {
        return Err(f.bad("client", "a non-empty string"));
    }
    let kind = match dir.as_str() {
        "handshake" => {
            f.only(&[
                "path",
                "request_headers",
                "status",
                "response_headers",
                "subprotocol",
            ])?;
            let response = if f.has("status") {
                Some(HandshakeResponse {
                    status: f.u16("status")?,
                    response_headers: f.headers("response_headers")?,
                    subprotocol: f.opt_string("subprotocol")?,
                })
            } else if f.has("response_headers") || f.has("subprotocol") {
                return Err(f.inconsistent(
                    "`response_headers`/`subprotocol` without `status` (a script's handshake has none of the three)",
                ));
            } else {
                None
            };
            EventKind::Handshake(Handshake {
                path: f.string("path")?,
                request_headers: f.headers("request_headers")?,
                response,
            })
        }
        "handshake_failed" => {
            f.only(&[
                "path",
                "request_headers",
                "status",
                "response_headers",
                "body",
            ])?;
            EventKind::HandshakeFailed(HandshakeFailed {
                path: f.string("path")?,
                request_headers: f.headers("request_headers")?,
                status: f.u16("status")?,
                response_headers: f.headers("response_headers")?,
                body: f.string("body")?,
            })
        }
        "out" => EventKind::Out(f.payload()?),
        "in" => EventKind::In(f.payload()?),
        "close" => {
            f.only(&["code", "reason", "rcvd", "sent", "rcvd_then_sent"])?;
            let recorded = ["rcvd", "sent", "rcvd_then_sent"];
            let outcome = if recorded.iter().any(|k| f.has(k)) {
                let rcvd_then_sent = match f.get("rcvd_then_sent")? {
                    Value::Null => None,
                    Value::Bool(b) => Some(*b),
                    _ => return Err(f.bad("rcvd_then_sent", "true, false or null")),
                };
                Some(CloseOutcome {
                    rcvd: f.close_frame("rcvd")?,
                    sent: f.close_frame("sent")?,
                    rcvd_then_sent,
                })
            } else {
                None
            };
            EventKind::Close(Close {
                code: f.u16("code")?,
                reason: f.string("reason")?,
                outcome,
            })
        }
        "http" => {
            f.only(&["method", "path", "status", "body"])?;
            let response = if f.has("status") {
                Some(HttpResponse {
                    status: f.u16("status")?,
                    body: f.string("body")?,
                })
            } else if f.has("body") {
                return Err(f.inconsistent("`body` without `status`"));
            } else {
                None
            };
            EventKind::Http(Http {
                method: f.string("method")?,
                path: f.string("path")?,
                response,
            })
        }
        "note" => {
            f.only(&["text"])?;
            EventKind::Note(f.string("text")?)
        }
        _ => return Err(TranscriptError::UnknownDir { line, dir }),
    };
    Ok(Event { t_ms, client, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: [(&str, &str); 3] = [
        (
            "perform_speak_broadcast",
            include_str!("../transcripts/examples/perform_speak_broadcast.jsonl"),
        ),
        (
            "subscribe_reject",
            include_str!("../transcripts/examples/subscribe_reject.jsonl"),
        ),
        (
            "welcome_and_ping",
            include_str!("../transcripts/examples/welcome_and_ping.jsonl"),
        ),
    ];

    #[test]
    fn examples_round_trip_line_by_line() {
        for (name, text) in EXAMPLES {
            let t = Transcript::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.events.len(), text.lines().count(), "{name}");
            let written = t.to_jsonl();
            for (orig, new) in text.lines().zip(written.lines()) {
                let a: Value = serde_json::from_str(orig).unwrap();
                let b: Value = serde_json::from_str(new).unwrap();
                assert_eq!(a, b, "{name}: a line changed in the round trip");
            }
            assert_eq!(Transcript::parse(&written).unwrap(), t, "{name}");
        }
    }

    #[test]
    fn examples_have_the_expected_shape() {
        let t = Transcript::parse(EXAMPLES[0].1).unwrap();
        assert_eq!(t.clients(), vec!["A", "B"]);
        let EventKind::Handshake(h) = &t.events[0].kind else {
            panic!("first event is not a handshake")
        };
        assert_eq!(h.path, "/cable?token=alice");
        let r = h.response.as_ref().unwrap();
        assert_eq!(r.status, 101);
        assert_eq!(r.subprotocol.as_deref(), Some("actioncable-v1-json"));
        assert_eq!(
            t.events[1].kind,
            EventKind::In(Payload::Text(r#"{"type":"welcome"}"#.into()))
        );
        let last = t.events.last().unwrap();
        let EventKind::Close(c) = &last.kind else {
            panic!("last event is not a close")
        };
        assert!(c.client_initiated());
        assert!(!c.server_initiated());
        assert_eq!(c.code, 1000);
    }

    #[test]
    fn client_steps_of_a_recording() {
        let t = Transcript::parse(EXAMPLES[1].1).unwrap();
        let steps = t.client_steps().unwrap();
        let kinds: Vec<&str> = steps
            .iter()
            .map(|s| match s.step {
                Step::Connect { .. } => "connect",
                Step::Send(_) => "send",
                Step::Close(_) => "close",
                Step::Http { .. } => "http",
                Step::Note(_) => "note",
            })
            .collect();
        assert_eq!(
            kinds,
            ["connect", "send", "note", "send", "note", "send", "note", "close"]
        );
        assert_eq!(
            steps.last().unwrap().step,
            Step::Close(CloseFrame {
                code: 1000,
                reason: String::new()
            })
        );
    }

    #[test]
    fn script_forms_are_accepted_and_written_back() {
        let text = concat!(
            r#"{"t_ms": 0, "client": "A", "dir": "handshake", "path": "/cable", "request_headers": [["Host", "h"]]}"#,
            "\n",
            r#"{"t_ms": 400, "client": "-", "dir": "http", "method": "GET", "path": "/restart"}"#,
            "\n",
            r#"{"t_ms": 500, "client": "A", "dir": "out", "binary": true, "frame_b64": "AAEC"}"#,
            "\n",
            r#"{"t_ms": 800, "client": "A", "dir": "close", "code": 1000, "reason": "bye"}"#,
            "\n",
        );
        let t = Transcript::parse(text).unwrap();
        let EventKind::Handshake(h) = &t.events[0].kind else {
            panic!()
        };
        assert!(h.response.is_none());
        assert_eq!(
            t.events[2].kind,
            EventKind::Out(Payload::Binary(vec![0, 1, 2]))
        );
        let EventKind::Close(c) = &t.events[3].kind else {
            panic!()
        };
        assert!(c.outcome.is_none() && c.client_initiated());
        assert_eq!(Transcript::parse(&t.to_jsonl()).unwrap(), t);
        assert_eq!(t.client_steps().unwrap().len(), 4);
    }

    #[test]
    fn large_frames() {
        let big = format!("{{\"x\":\"{}\"}}", "y".repeat(70_000));
        let l = LargeFrame::of(&big);
        assert_eq!(l.len, big.len());
        assert!(l.matches(&big));
        assert!(!l.matches(&big.replace('y', "z")));
        let e = Event {
            t_ms: 1.0,
            client: "A".into(),
            kind: EventKind::In(Payload::Large(l.clone())),
        };
        let line = e.to_json_line();
        assert!(line.contains("\"frame_sha256\": "));
        let t = Transcript::parse(&line).unwrap();
        assert_eq!(t.events[0], e);
        // A large `out` frame cannot be replayed.
        let out = line.replace("\"in\"", "\"out\"");
        let t = Transcript::parse(&format!(
            "{}\n{out}",
            r#"{"t_ms": 0, "client": "A", "dir": "handshake", "path": "/cable", "request_headers": []}"#
        ))
        .unwrap();
        assert!(t.client_steps().unwrap_err().contains("large form"));
    }

    #[test]
    fn errors_are_typed_and_carry_line_numbers() {
        let ok = r#"{"t_ms": 0, "client": "A", "dir": "note", "text": "x"}"#;
        let cases = [
            r#"{"t_ms": 1, "client": "A", "dir": "sideways"}"#,
            r#"{"t_ms": 1, "client": "A", "dir": "in"}"#,
            r#"{"t_ms": 1, "client": "A", "dir": "close", "code": 1000}"#,
            r#"{"t_ms": 1, "client": "A", "dir": "in", "frame": 5}"#,
            r#"{"t_ms": 1, "client": "A", "dir": "note", "text": "x", "extra": 1}"#,
            r#"{"t_ms": 1, "client": "A", "dir": "handshake", "path": "/", "request_headers": [], "subprotocol": null}"#,
            r#"{"t_ms": 1, "client": "A"}"#,
            r#"{"t_ms": 1, "client": "A", "dir": "out", "frame"#,
            r#"[1, 2]"#,
        ];
        let errs: Vec<TranscriptError> = cases
            .iter()
            .map(|c| Transcript::parse(&format!("{ok}\n\n{c}\n")).unwrap_err())
            .collect();
        assert!(
            matches!(&errs[0], TranscriptError::UnknownDir { line: 3, dir } if dir == "sideways")
        );
        assert!(matches!(
            &errs[1],
            TranscriptError::MissingField {
                line: 3,
                field: "frame",
                ..
            }
        ));
        assert!(matches!(
            &errs[2],
            TranscriptError::MissingField {
                line: 3,
                field: "reason",
                ..
            }
        ));
        assert!(matches!(
            &errs[3],
            TranscriptError::BadField {
                line: 3,
                field: "frame",
                ..
            }
        ));
        assert!(
            matches!(&errs[4], TranscriptError::UnknownField { line: 3, field, .. } if field == "extra")
        );
        assert!(matches!(
            &errs[5],
            TranscriptError::Inconsistent { line: 3, .. }
        ));
        assert!(matches!(
            &errs[6],
            TranscriptError::MissingField {
                line: 3,
                field: "dir",
                ..
            }
        ));
        assert!(matches!(&errs[7], TranscriptError::Json { line: 3, .. }));
        assert!(matches!(&errs[8], TranscriptError::NotAnObject { line: 3 }));
        assert_eq!(errs[0].to_string(), "line 3: unknown dir \"sideways\"");
    }
}
