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
//!
//! This module holds the types and [`Transcript`]'s API; the JSON-lines codec (writing an
//! [`Event`] as a line, reading a line back) is in the private `json_lines` submodule.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

mod json_lines;
#[cfg(test)]
mod tests;

use json_lines::parse_line;

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
