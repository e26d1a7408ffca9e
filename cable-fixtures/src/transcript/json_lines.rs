//! The JSON-lines codec of transcripts: one [`Event`] to one line of JSON
//! ([`Event::to_json_line`], keys in a fixed order) and one line back to an [`Event`]
//! (`parse_line`, with typed [`TranscriptError`]s that carry the line number).

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{
    Close, CloseFrame, CloseOutcome, Event, EventKind, Handshake, HandshakeFailed,
    HandshakeResponse, Headers, Http, HttpResponse, LargeFrame, Payload, TranscriptError,
};

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

pub(super) fn parse_line(line: usize, text: &str) -> Result<Event, TranscriptError> {
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
