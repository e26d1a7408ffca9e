//! The jacref transcript format, read.

use std::path::Path;

use serde_json::Value;

use crate::Error;

/// One step of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum JacStep {
    /// A client opens a WebSocket.
    Handshake {
        /// The client's name (`A`, `B1`, ...).
        client: String,
        /// Path and query.
        path: String,
        /// Request headers as recorded (only `Authorization` is replayed).
        headers: Vec<(String, String)>,
        /// The HTTP status answered (101, or a refusal).
        status: u16,
        /// The subprotocol the server chose.
        subprotocol: Option<String>,
    },
    /// A frame the client sent.
    Out {
        /// The client.
        client: String,
        /// The text (for binary frames: the bytes as text).
        frame: String,
        /// A binary frame.
        binary: bool,
    },
    /// A frame the client received.
    In {
        /// The client.
        client: String,
        /// The text.
        frame: String,
    },
    /// The connection closed.
    Close {
        /// The client.
        client: String,
        /// Who closed first: `client` or `server`.
        by_client: bool,
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
}

impl JacStep {
    /// The client the step belongs to.
    pub fn client(&self) -> &str {
        match self {
            Self::Handshake { client, .. }
            | Self::Out { client, .. }
            | Self::In { client, .. }
            | Self::Close { client, .. } => client,
        }
    }
}

/// A transcript: its name (the file stem) and steps.
#[derive(Debug, Clone, PartialEq)]
pub struct JacTranscript {
    /// The name.
    pub name: String,
    /// The steps, in recorded order, each with its offset from the start (`t_ms`).
    pub steps: Vec<(std::time::Duration, JacStep)>,
    /// The text of the whole file (where tokens are searched for).
    pub text: String,
}

impl JacTranscript {
    /// Reads a transcript file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::parse(&name, &text)
    }

    /// Parses a transcript's text.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        let mut steps = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: &str| Error::Script(format!("{name}:{}: {why}", n + 1));
            let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            let client = s("client").unwrap_or_default();
            let step = match s("dir").as_deref() {
                Some("handshake") => JacStep::Handshake {
                    client,
                    path: s("path").ok_or_else(|| bad("no path"))?,
                    headers: v
                        .get("request_headers")
                        .and_then(Value::as_array)
                        .map(|hs| {
                            hs.iter()
                                .filter_map(|h| {
                                    Some((
                                        h.get(0)?.as_str()?.to_owned(),
                                        h.get(1)?.as_str()?.to_owned(),
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    status: v.get("status").and_then(Value::as_u64).unwrap_or(0) as u16,
                    subprotocol: s("subprotocol"),
                },
                Some("out") => JacStep::Out {
                    client,
                    frame: s("frame").ok_or_else(|| bad("no frame"))?,
                    binary: s("opcode").as_deref() == Some("binary"),
                },
                Some("in") => JacStep::In {
                    client,
                    frame: s("frame").ok_or_else(|| bad("no frame"))?,
                },
                Some("close") => JacStep::Close {
                    client,
                    by_client: s("initiator").as_deref() != Some("server"),
                    code: v.get("code").and_then(Value::as_u64).unwrap_or(1005) as u16,
                    reason: s("reason").unwrap_or_default(),
                },
                Some("note") | Some("server_log") => continue,
                other => return Err(bad(&format!("unknown dir {other:?}"))),
            };
            let at = v
                .get("t_ms")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0);
            steps.push((std::time::Duration::from_secs_f64(at / 1000.0), step));
        }
        Ok(Self {
            name: name.to_owned(),
            steps,
            text: text.to_owned(),
        })
    }
}

/// Every `*.jsonl` under `paths` (files as given, folders recursively), sorted.
pub fn collect(paths: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>, Error> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut stack = vec![path.clone()];
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir)
                    .map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))?;
                for entry in entries.flatten() {
                    let p = entry.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|e| e == "jsonl") {
                        out.push(p);
                    }
                }
            }
        } else {
            out.push(path.clone());
        }
    }
    out.sort();
    Ok(out)
}
