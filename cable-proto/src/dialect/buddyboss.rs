//! The BuddyBoss Node.js messaging server's protocol (plain WebSocket, every
//! frame a JSON object tagged by `type`), served by the hub.
//!
//! The vocabulary is `cable-channels`' `buddyboss` module (same type names,
//! same camelCase fields; tested against it). Choices where the doc leaves a
//! field open:
//!
//! - ids (`userId`, `threadId`, `recipientId`) are JSON strings or numbers;
//!   their text (`"7"` and `7` alike) is the hub's stream or identity, and
//!   frames echo them as sent;
//! - `send_message`'s `message` is a string; with `threadId` it reaches every
//!   other member of the thread as
//!   `{"type":"message","message":M,"threadId":T,"senderId":S}` (plus
//!   `recipientId` when given); without it, every BuddyBoss connection of
//!   `recipientId` as `{"type":"message","message":M,"recipientId":R,"senderId":S}`;
//!   `senderId` is the sender's `userId` as text (`null` before
//!   `user_connected`, or while its identity is empty); ids must not be empty;
//! - `typing` reaches every other member of the thread as
//!   `{"type":"typing","threadId":T,"userId":U,"typing":true}`;
//! - `call_initiated`, `offer`, `answer`, `ice-candidate` need `recipientId`
//!   and reach its BuddyBoss connections as the very frame the sender sent;
//! - a broadcast on a thread from elsewhere (Action Cable, `/_broadcast`)
//!   reaches BuddyBoss members as the payload itself when it is an object with
//!   a `type`, else as `{"type":"message","threadId":T,"message":D}`;
//! - `user_connected` is announced to every other BuddyBoss connection through
//!   the stream [`PRESENCE_STREAM`], which every BuddyBoss connection joins
//!   when it opens ([`BuddyBoss::on_open`]);
//! - every refusal answers the sender `{"type":"error","message":...}` and
//!   delivers nothing; a host bounding refused frames answers the one past its
//!   bound with [`BuddyBossError::TooManyRefusals`]' error frame too, then
//!   closes the connection.

use std::time::Instant;

use serde_json::{Map, Value};

use crate::error::UsageError;
use crate::json::JsonText;
use crate::server::{Envelope, Limits, Protocol, Server};
use crate::types::{ConnectionId, Identity, StreamName};

use super::{execute, Dialect, HubOp, Target};

/// The hub stream every BuddyBoss connection joins, for `user_connected`
/// announcements (a NUL-prefixed name no client-chosen thread id is).
pub const PRESENCE_STREAM: &str = "\u{0}buddyboss:presence";

/// Every client message type the dialect handles.
pub const CLIENT_TYPES: [&str; 8] = [
    "user_connected",
    "join_thread",
    "send_message",
    "typing",
    "call_initiated",
    "offer",
    "answer",
    "ice-candidate",
];

/// Why a frame was refused; its text is the `message` of the error frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuddyBossError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// JSON, but not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// No `type`, or not a string.
    #[error("missing \"type\"")]
    MissingType,
    /// A type the server does not handle.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// A required field is absent (or `null`).
    #[error("{message_type}: missing \"{field}\"")]
    MissingField {
        /// The frame's `type`.
        message_type: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("{message_type}: \"{field}\" must be {expected}")]
    WrongType {
        /// The frame's `type`.
        message_type: &'static str,
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// An id longer than [`Limits::max_identifier_bytes`].
    #[error("{message_type}: \"{field}\" is longer than {limit} bytes")]
    TooLong {
        /// The frame's `type`.
        message_type: &'static str,
        /// The field.
        field: &'static str,
        /// The limit.
        limit: usize,
    },
    /// `send_message` with neither `threadId` nor `recipientId`.
    #[error("send_message: needs \"threadId\" or \"recipientId\"")]
    NoTarget,
    /// `send_message` without a token, where the host checks tokens.
    #[error("send_message: missing \"token\"")]
    MissingToken,
    /// `send_message` with a token the host's verifier refused.
    #[error("send_message: invalid token")]
    InvalidToken,
    /// `join_thread` beyond [`Limits::max_subscriptions`] threads.
    #[error("join_thread: too many threads (at most {0})")]
    TooManyThreads(usize),
    /// A binary frame.
    #[error("binary frames are not supported")]
    Binary,
    /// Not a refusal of one frame: the connection's refused frames went past
    /// the host's bound (cable-server's `--max-invalid-frames-per-sec`). The
    /// host sends this error frame, then closes the connection (the
    /// BuddyBoss counterpart of Action Cable's `invalid_request` disconnect).
    #[error("too many refused frames: disconnected")]
    TooManyRefusals,
}

impl BuddyBossError {
    /// `{"type":"error","message":<this error>}`.
    pub fn frame(&self) -> JsonText {
        let mut map = Map::new();
        map.insert("type".into(), Value::from("error"));
        map.insert("message".into(), Value::from(self.to_string()));
        json(map)
    }
}

/// An id as sent (string or number) and its hub text.
#[derive(Debug, Clone, PartialEq)]
pub struct Id {
    /// The stream or identity text.
    pub key: String,
    /// The JSON value, echoed in frames.
    pub json: Value,
}

/// A WebRTC/call signalling type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `call_initiated`
    CallInitiated,
    /// `offer`
    Offer,
    /// `answer`
    Answer,
    /// `ice-candidate`
    IceCandidate,
}

/// A parsed client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `user_connected {userId}`
    UserConnected {
        /// `userId`
        user: Id,
    },
    /// `join_thread {threadId}`
    JoinThread {
        /// `threadId`
        thread: Id,
    },
    /// `send_message {recipientId?, message, threadId?, token?}`
    SendMessage {
        /// `recipientId`
        recipient: Option<Id>,
        /// `message`
        message: String,
        /// `threadId`
        thread: Option<Id>,
        /// `token`
        token: Option<String>,
    },
    /// `typing {threadId}`
    Typing {
        /// `threadId`
        thread: Id,
    },
    /// `call_initiated`, `offer`, `answer`, `ice-candidate`: relayed as sent.
    Signal {
        /// Which one.
        kind: Signal,
        /// `recipientId`
        recipient: Id,
        /// The frame as sent.
        frame: JsonText,
    },
}

impl Request {
    /// The `type` of the frame.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::UserConnected { .. } => "user_connected",
            Self::JoinThread { .. } => "join_thread",
            Self::SendMessage { .. } => "send_message",
            Self::Typing { .. } => "typing",
            Self::Signal { kind, .. } => match kind {
                Signal::CallInitiated => "call_initiated",
                Signal::Offer => "offer",
                Signal::Answer => "answer",
                Signal::IceCandidate => "ice-candidate",
            },
        }
    }
}

/// What [`BuddyBoss::handle`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Handled {
    /// Frames queued for connections other than the sender.
    pub recipients: usize,
    /// The refusal answered to the sender, if any.
    pub error: Option<BuddyBossError>,
}

/// The BuddyBoss dialect, for connections opened as `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuddyBoss {
    protocol: Protocol,
}

impl BuddyBoss {
    /// The dialect whose connections are opened as `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self { protocol }
    }

    /// Parses one client frame under `limits` (ids no longer than
    /// `max_identifier_bytes`; frame size is the server's own check).
    pub fn parse(frame: &[u8], limits: &Limits) -> Result<Request, BuddyBossError> {
        let value: Value = serde_json::from_slice(frame)
            .map_err(|e| BuddyBossError::InvalidJson(e.to_string()))?;
        let Value::Object(obj) = value else {
            return Err(BuddyBossError::NotAnObject);
        };
        let Some(Value::String(tag)) = obj.get("type") else {
            return Err(BuddyBossError::MissingType);
        };
        let Some(t) = CLIENT_TYPES.iter().copied().find(|t| t == tag) else {
            return Err(BuddyBossError::UnknownType(tag.clone()));
        };
        let max = limits.max_identifier_bytes;
        Ok(match t {
            "user_connected" => Request::UserConnected {
                user: id(&obj, t, "userId", max)?,
            },
            "join_thread" => Request::JoinThread {
                thread: id(&obj, t, "threadId", max)?,
            },
            "send_message" => {
                let recipient = opt_id(&obj, t, "recipientId", max)?;
                let thread = opt_id(&obj, t, "threadId", max)?;
                let message = match obj.get("message") {
                    None | Some(Value::Null) => return Err(missing(t, "message")),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => return Err(wrong(t, "message", "a string")),
                };
                let token = match obj.get("token") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => return Err(wrong(t, "token", "a string")),
                };
                if recipient.is_none() && thread.is_none() {
                    return Err(BuddyBossError::NoTarget);
                }
                Request::SendMessage {
                    recipient,
                    message,
                    thread,
                    token,
                }
            }
            "typing" => Request::Typing {
                thread: id(&obj, t, "threadId", max)?,
            },
            _ => {
                let kind = match t {
                    "call_initiated" => Signal::CallInitiated,
                    "offer" => Signal::Offer,
                    "answer" => Signal::Answer,
                    _ => Signal::IceCandidate,
                };
                let recipient = id(&obj, t, "recipientId", max)?;
                let text = std::str::from_utf8(frame)
                    .map_err(|e| BuddyBossError::InvalidJson(e.to_string()))?;
                Request::Signal {
                    kind,
                    recipient,
                    frame: JsonText::new(text)
                        .map_err(|e| BuddyBossError::InvalidJson(e.to_string()))?,
                }
            }
        })
    }

    /// The hub operations for `request` from `sender`, whose identity
    /// (`senderId`, `userId`) is `sender_identity` and who has joined
    /// `joined_threads` threads.
    pub fn plan(
        request: Request,
        sender_identity: Option<&Identity>,
        joined_threads: usize,
        limits: &Limits,
    ) -> Result<Vec<HubOp>, BuddyBossError> {
        let sender_json = || {
            sender_identity
                .filter(|i| !i.as_str().is_empty())
                .map_or(Value::Null, |i| Value::from(i.as_str()))
        };
        Ok(match request {
            Request::UserConnected { user } => {
                let mut map = Map::new();
                map.insert("type".into(), Value::from("user_connected"));
                map.insert("userId".into(), user.json);
                vec![
                    HubOp::Identify(Identity::new(user.key)),
                    HubOp::Publish {
                        to: Target::StreamExceptSender(StreamName::new(PRESENCE_STREAM)),
                        payload: json(map),
                    },
                ]
            }
            Request::JoinThread { thread } => {
                if joined_threads >= limits.max_subscriptions {
                    return Err(BuddyBossError::TooManyThreads(limits.max_subscriptions));
                }
                vec![HubOp::Join(StreamName::new(thread.key))]
            }
            Request::SendMessage {
                recipient,
                message,
                thread,
                ..
            } => {
                let mut map = Map::new();
                map.insert("type".into(), Value::from("message"));
                map.insert("message".into(), Value::from(message));
                let to = match (thread, recipient) {
                    (Some(thread), recipient) => {
                        map.insert("threadId".into(), thread.json);
                        if let Some(r) = recipient {
                            map.insert("recipientId".into(), r.json);
                        }
                        Target::StreamExceptSender(StreamName::new(thread.key))
                    }
                    (None, Some(r)) => {
                        map.insert("recipientId".into(), r.json);
                        Target::User(Identity::new(r.key))
                    }
                    (None, None) => return Err(BuddyBossError::NoTarget),
                };
                map.insert("senderId".into(), sender_json());
                vec![HubOp::Publish {
                    to,
                    payload: json(map),
                }]
            }
            Request::Typing { thread } => {
                let mut map = Map::new();
                map.insert("type".into(), Value::from("typing"));
                map.insert("threadId".into(), thread.json);
                map.insert("userId".into(), sender_json());
                map.insert("typing".into(), Value::Bool(true));
                vec![HubOp::Publish {
                    to: Target::StreamExceptSender(StreamName::new(thread.key)),
                    payload: json(map),
                }]
            }
            Request::Signal {
                recipient, frame, ..
            } => vec![HubOp::Publish {
                to: Target::User(Identity::new(recipient.key)),
                payload: frame,
            }],
        })
    }

    /// A BuddyBoss connection was accepted: it joins [`PRESENCE_STREAM`].
    pub fn on_open(
        &self,
        server: &mut Server,
        connection: ConnectionId,
        now: Instant,
    ) -> Result<(), UsageError> {
        execute(
            server,
            self,
            connection,
            [HubOp::Join(StreamName::new(PRESENCE_STREAM))],
            now,
        )
        .map(|_| ())
    }

    /// Handles one frame of `connection` (from
    /// [`Event::Received`](crate::server::Event::Received)): parses it,
    /// checks a `send_message` token with `verify` (`None`: tokens are not
    /// checked), applies it to the hub, or answers the sender an error frame
    /// and delivers nothing.
    pub fn handle(
        &self,
        server: &mut Server,
        connection: ConnectionId,
        frame: &[u8],
        binary: bool,
        verify: Option<&dyn Fn(&str) -> bool>,
        now: Instant,
    ) -> Result<Handled, UsageError> {
        let limits = server.config().limits.clone();
        let planned = if binary {
            Err(BuddyBossError::Binary)
        } else {
            Self::parse(frame, &limits).and_then(|request| {
                if let (Request::SendMessage { token, .. }, Some(verify)) = (&request, verify) {
                    match token {
                        None => return Err(BuddyBossError::MissingToken),
                        Some(t) if !verify(t) => return Err(BuddyBossError::InvalidToken),
                        Some(_) => {}
                    }
                }
                let joined = server
                    .joined_streams(connection)
                    .iter()
                    .filter(|s| s.as_str() != PRESENCE_STREAM)
                    .count();
                Self::plan(request, server.identity(connection), joined, &limits)
            })
        };
        match planned {
            Ok(ops) => Ok(Handled {
                recipients: execute(server, self, connection, ops, now)?,
                error: None,
            }),
            Err(error) => {
                server.send_frame(connection, &error.frame(), now)?;
                Ok(Handled {
                    recipients: 0,
                    error: Some(error),
                })
            }
        }
    }
}

impl Dialect for BuddyBoss {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn envelope(&self, stream: &str) -> Envelope {
        if stream == PRESENCE_STREAM {
            return Envelope::verbatim();
        }
        let thread = json_string(stream);
        Envelope::typed_or_wrapped(
            format!(r#"{{"type":"message","threadId":{thread},"message":"#),
            "}",
        )
    }
}

fn json(map: Map<String, Value>) -> JsonText {
    JsonText::from_value(&Value::Object(map)).unwrap_or_else(|_| JsonText::string(""))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn missing(message_type: &'static str, field: &'static str) -> BuddyBossError {
    BuddyBossError::MissingField {
        message_type,
        field,
    }
}

fn wrong(
    message_type: &'static str,
    field: &'static str,
    expected: &'static str,
) -> BuddyBossError {
    BuddyBossError::WrongType {
        message_type,
        field,
        expected,
    }
}

fn opt_id(
    obj: &Map<String, Value>,
    t: &'static str,
    field: &'static str,
    max: usize,
) -> Result<Option<Id>, BuddyBossError> {
    let key = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(wrong(t, field, "a non-empty string or a number")),
    };
    if key.len() > max {
        return Err(BuddyBossError::TooLong {
            message_type: t,
            field,
            limit: max,
        });
    }
    Ok(Some(Id {
        key,
        json: obj[field].clone(),
    }))
}

fn id(
    obj: &Map<String, Value>,
    t: &'static str,
    field: &'static str,
    max: usize,
) -> Result<Id, BuddyBossError> {
    opt_id(obj, t, field, max)?.ok_or_else(|| missing(t, field))
}
