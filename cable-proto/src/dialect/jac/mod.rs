//! Jac Cloud's WebSocket protocol (`jac-cloud` 0.2.11 at `/websocket`),
//! served by the hub.
//!
//! Each socket has a client id, a channel id and a root (its user); the
//! hub sees the channel as a stream (a Jac channel `"42"`, a BuddyBoss
//! thread `"42"` and an Action Cable stream `"42"` are one room), the root's
//! ObjectId as the identity, and client ids through this dialect's table.
//! What the real server does, as recorded (`shared/jacref`):
//!
//! - `{"type":"connection","data":{client_id,root_id,channel_id}}` on open,
//!   on `{"type":"connection"}` and after every `change_user`;
//! - `user`, `channel`, `client` events deliver their `data` object verbatim
//!   to every target, duplicates included, the sender only when it is a
//!   target, nothing for unknown targets; each is also handed to the host
//!   ([`Handled::relay`]) for the deployment's other replicas;
//! - validation errors in pydantic's shapes ([`event`]); other failures as
//!   a traceback-shaped list ending with the real server's exception line;
//! - a socket's events are handled strictly in order: while a decision of
//!   the host is pending (a token to verify, a walker to run), later frames
//!   wait (at most [`Limits::max_held_frames`](crate::server::Limits) and
//!   `max_held_bytes`, a lone frame whatever its size; past them the socket
//!   is closed). A host reads no more of a socket than its hold takes
//!   ([`Jac::held_frames`], [`Jac::held_bytes`]), so a client that pipelines
//!   is slowed down, as the real server reads more slowly, and never closed.
//!
//! Tokens and walkers need the host (Jac's JWT and token store, the
//! backend's `POST /walker/<name>`): they come out as [`Decision`]s,
//! answered with [`Jac::answer`].

pub mod event;
pub mod ids;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::error::UsageError;
use crate::json::JsonText;
use crate::server::{Envelope, PendingConnection, Protocol, Server};
use crate::types::{ConnectionId, Identity, StreamName};
use crate::DisconnectReason;

use super::Dialect;
pub use event::{Event, EventError, TargetKind, WalkerEvent};
pub use ids::{RootId, PUBLIC_ROOT};

/// What a socket opens with, from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenParams {
    /// Its client id (`<unix seconds>:<32 hex>`, from the host's entropy).
    pub client_id: String,
    /// `?channel_id=` when given and not empty, else a generated id.
    pub channel_id: String,
    /// The credential (`?auth=`, else a `Bearer` header; see
    /// [`ids::credential`]).
    pub credential: Option<String>,
    /// The `Authorization` header, for `change_user`'s fallback.
    pub authorization: Option<String>,
}

/// A verified credential: the root it stands for and the token itself (for
/// the backend's walker calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user's root.
    pub root: RootId,
    /// The token.
    pub token: String,
}

/// What the host must decide for a socket; the socket's later frames wait
/// for [`Jac::answer`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Verify a token; answer [`Answer::Authenticated`].
    Authenticate {
        /// The socket.
        connection: ConnectionId,
        /// The token (the text after `Bearer `).
        token: String,
    },
    /// Run a walker; answer [`Answer::Walker`].
    Walker {
        /// The socket.
        connection: ConnectionId,
        /// The call.
        event: WalkerEvent,
        /// The socket's token, when it is authenticated.
        token: Option<String>,
    },
}

impl Decision {
    /// The socket the decision is for.
    pub fn connection(&self) -> ConnectionId {
        match self {
            Self::Authenticate { connection, .. } | Self::Walker { connection, .. } => *connection,
        }
    }
}

/// What a walker call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkerAnswer {
    /// The walker ran: its body (`{"status":200,"reports":[...]}`), sent
    /// only when the event asked for a `response`.
    Reports(JsonText),
    /// It did not: an error frame, sent whatever `response` was.
    Error(JsonText),
}

/// The host's answer to a [`Decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The token stands for this credential (`None`: it does not; the
    /// socket is public).
    Authenticated(Option<Credential>),
    /// The walker's outcome.
    Walker(WalkerAnswer),
}

/// What handling a frame (or an answer, and the frames that waited for it)
/// did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Handled {
    /// Decisions the host must now take (at most one per socket).
    pub decisions: Vec<Decision>,
    /// Client events to publish to the deployment's other replicas
    /// (`{"type":"user","root_ids":[...],"data":{...}}`, ...).
    pub relay: Vec<JsonText>,
    /// Refusals answered to the sender.
    pub errors: Vec<EventError>,
    /// Whether the socket was closed for holding too many frames.
    pub overflowed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Authentication,
    Walker { response: bool },
}

#[derive(Debug)]
struct Socket {
    client_id: String,
    channel_id: String,
    root: RootId,
    token: Option<String>,
    authorization: Option<String>,
    awaiting: Awaiting,
    held: VecDeque<(Vec<u8>, bool)>,
    held_bytes: usize,
}

/// The Jac dialect, for connections opened as `protocol`: the table of its
/// sockets.
#[derive(Debug)]
pub struct Jac {
    protocol: Protocol,
    sockets: HashMap<ConnectionId, Socket>,
    clients: HashMap<String, ConnectionId>,
}

impl Jac {
    /// The dialect whose connections are opened as `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            sockets: HashMap::new(),
            clients: HashMap::new(),
        }
    }

    /// How many sockets it holds.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether it holds no socket.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// How many frames of `connection` wait for its pending decision (0 for
    /// an unknown connection).
    pub fn held_frames(&self, connection: ConnectionId) -> usize {
        self.sockets.get(&connection).map_or(0, |s| s.held.len())
    }

    /// How many bytes of `connection`'s frames wait for its pending
    /// decision.
    pub fn held_bytes(&self, connection: ConnectionId) -> usize {
        self.sockets.get(&connection).map_or(0, |s| s.held_bytes)
    }

    /// The connection of a client id.
    pub fn client(&self, client_id: &str) -> Option<ConnectionId> {
        self.clients.get(client_id).copied()
    }

    /// A socket opened: it is accepted as the public root in its channel;
    /// with a credential, its connection info waits for the token's
    /// verification (the returned decision), else it is sent now.
    pub fn open(
        &mut self,
        server: &mut Server,
        pending: PendingConnection,
        connection: ConnectionId,
        params: OpenParams,
        now: Instant,
    ) -> Result<Handled, UsageError> {
        server.accept_connection(pending, Identity::new(PUBLIC_ROOT), now)?;
        if !is_internal(&params.channel_id) {
            let stream = StreamName::new(params.channel_id.clone());
            server.join(connection, stream, self.envelope(""), now)?;
        }
        self.clients.insert(params.client_id.clone(), connection);
        let awaiting = if params.credential.is_some() {
            Awaiting::Authentication
        } else {
            Awaiting::Nothing
        };
        self.sockets.insert(
            connection,
            Socket {
                client_id: params.client_id,
                channel_id: params.channel_id,
                root: RootId::public(),
                token: None,
                authorization: params.authorization,
                awaiting,
                held: VecDeque::new(),
                held_bytes: 0,
            },
        );
        let mut handled = Handled::default();
        match params.credential {
            Some(credential) => handled.decisions.push(Decision::Authenticate {
                connection,
                token: ids::token_of(&credential).to_owned(),
            }),
            None => self.send_connection(server, connection, now)?,
        }
        Ok(handled)
    }

    /// The socket is gone (after [`Server::handle_close`] or before it).
    pub fn close(&mut self, connection: ConnectionId) {
        if let Some(socket) = self.sockets.remove(&connection) {
            if self.clients.get(&socket.client_id) == Some(&connection) {
                self.clients.remove(&socket.client_id);
            }
        }
    }

    /// One frame of `connection`: handled now, or held while a decision of
    /// the socket is pending.
    pub fn handle(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        frame: &[u8],
        binary: bool,
        now: Instant,
    ) -> Result<Handled, UsageError> {
        let mut handled = Handled::default();
        let limits = server.config().limits.clone();
        let Some(socket) = self.sockets.get_mut(&connection) else {
            return Err(UsageError::UnknownConnection);
        };
        if socket.awaiting != Awaiting::Nothing {
            // A lone frame is held whatever its size (the frame limit bounds
            // it), as a host's window admits one when nothing is in flight.
            if !socket.held.is_empty()
                && (socket.held.len() >= limits.max_held_frames
                    || socket.held_bytes + frame.len() > limits.max_held_bytes)
            {
                handled.overflowed = true;
                server.disconnect(connection, DisconnectReason::InvalidRequest, false, now)?;
                self.close(connection);
                return Ok(handled);
            }
            socket.held_bytes += frame.len();
            socket.held.push_back((frame.to_vec(), binary));
            return Ok(handled);
        }
        self.process(server, connection, frame, binary, &mut handled, now)?;
        Ok(handled)
    }

    /// The host's answer to the socket's pending decision; then the frames
    /// that waited are handled, in order, until one needs a decision again.
    pub fn answer(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        answer: Answer,
        now: Instant,
    ) -> Result<Handled, UsageError> {
        let mut handled = Handled::default();
        let Some(socket) = self.sockets.get_mut(&connection) else {
            return Err(UsageError::UnknownConnection);
        };
        let awaiting = std::mem::replace(&mut socket.awaiting, Awaiting::Nothing);
        match (awaiting, answer) {
            (Awaiting::Authentication, Answer::Authenticated(credential)) => {
                let (root, token) = match credential {
                    Some(c) => (c.root, Some(c.token)),
                    None => (RootId::public(), None),
                };
                socket.root = root.clone();
                socket.token = token;
                server.set_identity(connection, Identity::new(root.hex()), now)?;
                self.send_connection(server, connection, now)?;
            }
            (Awaiting::Walker { response }, Answer::Walker(outcome)) => match outcome {
                WalkerAnswer::Reports(body) if response => {
                    server.send_frame(connection, &body, now)?
                }
                WalkerAnswer::Reports(_) => {}
                WalkerAnswer::Error(frame) => server.send_frame(connection, &frame, now)?,
            },
            (before, _) => {
                socket.awaiting = before;
                return Err(UsageError::StaleDecision);
            }
        }
        while let Some(socket) = self.sockets.get_mut(&connection) {
            if socket.awaiting != Awaiting::Nothing {
                break;
            }
            let Some((frame, binary)) = socket.held.pop_front() else {
                break;
            };
            socket.held_bytes -= frame.len();
            self.process(server, connection, &frame, binary, &mut handled, now)?;
        }
        Ok(handled)
    }

    /// A client event from another replica (its `event` object): delivered
    /// to this replica's targets; nothing is answered.
    pub fn deliver(
        &mut self,
        server: &mut Server,
        event: &[u8],
        now: Instant,
    ) -> Result<usize, EventError> {
        match event::parse(event)? {
            Event::Notify {
                kind,
                targets,
                data,
            } => {
                let data = event::json(Value::Object(data));
                self.notify(server, kind, &targets, &data, now)
                    .map_err(EventError::Exception)
            }
            _ => Ok(0),
        }
    }

    fn process(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        frame: &[u8],
        binary: bool,
        handled: &mut Handled,
        now: Instant,
    ) -> Result<(), UsageError> {
        let parsed = if binary {
            Err(EventError::Binary)
        } else {
            event::parse(frame)
        };
        let event = match parsed {
            Ok(event) => event,
            Err(error) => {
                server.send_frame(connection, &error.frame(), now)?;
                handled.errors.push(error);
                return Ok(());
            }
        };
        let Some(socket) = self.sockets.get_mut(&connection) else {
            return Err(UsageError::UnknownConnection);
        };
        match event {
            Event::Connection => self.send_connection(server, connection, now)?,
            Event::ChangeUser { token } => {
                let credential = token.filter(|t| !t.is_empty()).or_else(|| {
                    ids::credential(None, socket.authorization.as_deref()).map(str::to_owned)
                });
                match credential {
                    Some(credential) => {
                        socket.awaiting = Awaiting::Authentication;
                        handled.decisions.push(Decision::Authenticate {
                            connection,
                            token: ids::token_of(&credential).to_owned(),
                        });
                    }
                    None => {
                        socket.root = RootId::public();
                        socket.token = None;
                        server.set_identity(connection, Identity::new(PUBLIC_ROOT), now)?;
                        self.send_connection(server, connection, now)?;
                    }
                }
            }
            Event::Walker(event) => {
                socket.awaiting = Awaiting::Walker {
                    response: event.response,
                };
                handled.decisions.push(Decision::Walker {
                    connection,
                    event,
                    token: socket.token.clone(),
                });
            }
            Event::Notify {
                kind,
                targets,
                data,
            } => {
                let payload = event::json(Value::Object(data.clone()));
                match self.notify(server, kind, &targets, &payload, now) {
                    Ok(_) => {
                        let mut relay = Map::new();
                        relay.insert("type".into(), Value::from(kind.tag()));
                        relay.insert(
                            kind.field().into(),
                            Value::Array(targets.into_iter().map(Value::from).collect()),
                        );
                        relay.insert("data".into(), Value::Object(data));
                        handled.relay.push(event::json(Value::Object(relay)));
                    }
                    Err(line) => {
                        let error = EventError::Exception(line);
                        server.send_frame(connection, &error.frame(), now)?;
                        handled.errors.push(error);
                    }
                }
            }
        }
        Ok(())
    }

    /// `payload` to each target in order (duplicates twice); stops at the
    /// first bad root reference, as the real server's loop does.
    fn notify(
        &self,
        server: &mut Server,
        kind: TargetKind,
        targets: &[String],
        payload: &JsonText,
        now: Instant,
    ) -> Result<usize, String> {
        let mut reached = 0;
        for target in targets {
            reached += match kind {
                TargetKind::User => {
                    let root = RootId::parse_ref(target)?;
                    server.send_frame_to_identity_as(root.hex(), self.protocol, payload, now)
                }
                TargetKind::Channel if is_internal(target) => 0,
                TargetKind::Channel => server.broadcast(target, payload.as_str(), now).recipients,
                TargetKind::Client => match self.clients.get(target) {
                    Some(&c) => usize::from(server.send_frame(c, payload, now).is_ok()),
                    None => 0,
                },
            };
        }
        Ok(reached)
    }

    /// The connection info frame of `connection`.
    pub fn connection_frame(&self, connection: ConnectionId) -> Option<JsonText> {
        let socket = self.sockets.get(&connection)?;
        Some(event::json(serde_json::json!({
            "type": "connection",
            "data": {
                "client_id": socket.client_id,
                "root_id": socket.root.reference(),
                "channel_id": socket.channel_id,
            }
        })))
    }

    fn send_connection(
        &self,
        server: &mut Server,
        connection: ConnectionId,
        now: Instant,
    ) -> Result<(), UsageError> {
        match self.connection_frame(connection) {
            Some(frame) => server.send_frame(connection, &frame, now),
            None => Err(UsageError::UnknownConnection),
        }
    }
}

/// Whether `channel` names one of the hub's internal streams (NUL-prefixed,
/// as BuddyBoss' presence): a Jac client can neither join nor reach it.
pub fn is_internal(channel: &str) -> bool {
    channel.starts_with('\u{0}')
}

impl Dialect for Jac {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Jac clients get a channel's payload verbatim.
    fn envelope(&self, _stream: &str) -> Envelope {
        Envelope::verbatim()
    }
}
