//! AnyCable's extended protocol (`actioncable-v1-ext-json`): stream
//! positions on broadcasts, the `history` command, session resume, `pong`
//! deadlines, client `ping`, whispers and presence.
//!
//! The core stays IO-free: it stamps the positions the host gives
//! ([`Server::broadcast_at`]), asks the host for history
//! ([`Event::HistoryRequested`](super::Event::HistoryRequested), answered with
//! [`Server::complete_history`]) and presence
//! ([`Event::PresenceRequested`](super::Event::PresenceRequested)), and keeps
//! closed sessions for [`ExtendedConfig::session_ttl`] so that a client that
//! comes back with its `sid` gets its subscriptions back
//! ([`Server::restore_session`]). [`StreamHistory`] is an in-memory history
//! a host can use as is.
//!
//! Only connections that chose [`PROTOCOL_V1_EXT_JSON`] get any of it:
//! positions, `restored` welcomes, `no_pong`, and the extended commands (on
//! a plain connection `{"command":"ping"}` stays an unknown command, as in
//! Rails; AnyCable accepts them on every JSON session).

mod history;
mod parse;
mod presence;
mod session;

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{truncate, CommandError, UsageError};
use crate::frame::DisconnectReason;
use crate::hash::Map;
use crate::json::write_rails_string;
use crate::types::{ConnectionId, StreamName, SubscriptionId};

pub use history::{
    HistoryEntry, HistoryError, HistoryRequest, HistoryStreamRequest, PendingHistory, StreamHistory,
};
pub use presence::{PresenceAction, PresenceRequest};
pub use session::SessionRestored;

use parse::ExtCommand;
use session::Sessions;

use super::Server;

/// AnyCable's extended JSON protocol.
pub const PROTOCOL_V1_EXT_JSON: &str = "actioncable-v1-ext-json";

/// The settings of the extended protocol (all off by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedConfig {
    /// How long a closed extended session can be restored with its `sid`
    /// (AnyCable's `sessions_ttl`, 300 s); `None`: sessions are not kept.
    pub session_ttl: Option<Duration>,
    /// Most closed sessions kept at once; the oldest goes first (default
    /// 65,536).
    pub max_sessions: usize,
    /// After a ping, how long an extended connection may stay silent before
    /// it gets `{"type":"disconnect","reason":"no_pong","reconnect":true}`
    /// (AnyCable's `pong_timeout`); `None`: no deadline.
    pub pong_timeout: Option<Duration>,
}

impl Default for ExtendedConfig {
    fn default() -> Self {
        Self {
            session_ttl: None,
            max_sessions: 65_536,
            pong_timeout: None,
        }
    }
}

/// Where a broadcast sits in its stream's history: the history's `epoch`
/// and the message's `offset` in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    /// The history's epoch (a new one when the history was lost).
    pub epoch: Box<str>,
    /// The message's offset (from 1, one more per message of the stream).
    pub offset: u64,
}

impl StreamPosition {
    /// A position.
    pub fn new(epoch: impl Into<Box<str>>, offset: u64) -> Self {
        Self {
            epoch: epoch.into(),
            offset,
        }
    }
}

/// The extended state of one connection slot.
#[derive(Debug, Default)]
struct ExtConn {
    generation: u32,
    extended: bool,
    sid: Option<Box<str>>,
    pong_deadline: Option<Instant>,
}

/// What a subscription may do beyond Action Cable, and what it waits for.
#[derive(Debug, Default)]
struct SubExt {
    generation: u32,
    whisper: Option<StreamName>,
    presence: Option<StreamName>,
    /// A `history` that came with `subscribe`: asked once confirmed.
    history_on_confirm: Option<parse::HistoryQuery>,
    /// A `presence` join that came with `subscribe`.
    join_on_confirm: Option<(Box<str>, Box<str>)>,
}

/// The core's extended state, beside the Action Cable records.
#[derive(Debug)]
pub(super) struct ExtState {
    conns: Map<u32, ExtConn>,
    subs: Map<u32, SubExt>,
    sessions: Sessions,
}

impl ExtState {
    pub(super) fn new(hasher: crate::hash::SeededState) -> Self {
        Self {
            conns: Map::with_hasher(hasher),
            subs: Map::with_hasher(hasher),
            sessions: Sessions::new(hasher),
        }
    }

    /// Whether connection slot `index` chose the extended protocol.
    pub(super) fn is_extended_conn(&self, index: u32) -> bool {
        !self.conns.is_empty() && self.conns.get(&index).is_some_and(|c| c.extended)
    }
}

/// Deadlines of the extended protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExtTimer {
    /// A connection's pong deadline.
    Pong { conn: u32, generation: u32 },
    /// The oldest closed session's end.
    Session,
}

impl Server {
    // ------------------------------------------------------------ hooks

    /// A connection was opened with `subprotocol`.
    pub(super) fn ext_opened(&mut self, index: u32, generation: u32, subprotocol: Option<&str>) {
        let extended = subprotocol == Some(PROTOCOL_V1_EXT_JSON);
        if extended {
            self.ext.conns.insert(
                index,
                ExtConn {
                    generation,
                    extended,
                    ..ExtConn::default()
                },
            );
        } else {
            self.ext.conns.remove(&index);
        }
    }

    /// Any frame from the client clears its pong deadline.
    pub(super) fn ext_keepalive(&mut self, index: u32) {
        if let Some(c) = self.ext.conns.get_mut(&index) {
            c.pong_deadline = None;
        }
    }

    /// A ping went out: extended connections without a pong deadline get one.
    pub(super) fn ext_pinged(&mut self, now: Instant) {
        let Some(timeout) = self.config.extended.pong_timeout else {
            return;
        };
        let at = now + timeout;
        let mut set = Vec::new();
        for (&index, c) in &mut self.ext.conns {
            if c.extended && c.pong_deadline.is_none() {
                c.pong_deadline = Some(at);
                set.push((index, c.generation));
            }
        }
        for (conn, generation) in set {
            self.set_timer(
                at,
                super::timers::TimerKey::Extended(ExtTimer::Pong { conn, generation }),
            );
        }
    }

    /// An extended deadline fired.
    pub(super) fn ext_fire(&mut self, at: Instant, timer: ExtTimer) {
        match timer {
            ExtTimer::Pong { conn, generation } => {
                let due = self
                    .ext
                    .conns
                    .get(&conn)
                    .is_some_and(|c| c.generation == generation && c.pong_deadline == Some(at));
                if due && self.conns.get_checked(conn, generation).is_some() {
                    if let Some(c) = self.ext.conns.get_mut(&conn) {
                        c.pong_deadline = None;
                    }
                    self.disconnect_index(conn, DisconnectReason::Other("no_pong".into()), true);
                }
            }
            ExtTimer::Session => self.expire_sessions(),
        }
    }

    /// Whether connection `index` chose the extended protocol.
    pub(super) fn is_extended(&self, index: u32) -> bool {
        self.ext.is_extended_conn(index)
    }

    /// A frame the Action Cable parser refused: handled here if it is an
    /// extended command. Returns whether it was.
    pub(super) fn ext_command(&mut self, index: u32, frame: &[u8], error: &CommandError) -> bool {
        if !matches!(error, CommandError::UnknownCommand(_)) || !self.is_extended(index) {
            return false;
        }
        let command = match parse::parse(frame) {
            Ok(Some(command)) => command,
            Ok(None) => return false,
            Err(error) => {
                self.fail(index, error);
                return true;
            }
        };
        match command {
            ExtCommand::Ping => {
                self.push(index, Bytes::from_static(br#"{"type":"pong"}"#));
            }
            ExtCommand::Pong => {}
            ExtCommand::History { identifier, query } => {
                match self.live_sub_of(index, &identifier) {
                    Some(sub) => self.request_history(sub, query),
                    None => self.unknown_subscription(index, &identifier),
                }
            }
            ExtCommand::Whisper { identifier, data } => self.whisper(index, &identifier, &data),
            ExtCommand::Presence { identifier, action } => {
                self.presence_command(index, &identifier, action)
            }
        }
        true
    }

    /// A subscribe was handed to the application: its `history` and
    /// `presence` keys wait for the confirmation.
    pub(super) fn ext_subscribing(&mut self, index: u32, identifier: &str, frame: &[u8]) {
        if !self.is_extended(index)
            || (!contains(frame, br#""history""#) && !contains(frame, br#""presence""#))
        {
            return;
        }
        let Some(sub) = self.find_sub(index, identifier) else {
            return;
        };
        let Ok(extras) = parse::subscribe_extras(frame) else {
            return;
        };
        let generation = self.subs.generation(sub);
        let entry = self.sub_ext(sub, generation);
        entry.history_on_confirm = extras.history;
        entry.join_on_confirm = extras.join;
    }

    /// A subscription was confirmed: the history and the join that came with
    /// its subscribe are asked for now (confirm, backlog, `confirm_history`).
    pub(super) fn ext_confirmed(&mut self, sub: u32) {
        let generation = self.subs.generation(sub);
        let Some(entry) = self.ext.subs.get_mut(&sub) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let history = entry.history_on_confirm.take();
        let join = entry.join_on_confirm.take();
        if let Some(query) = history {
            self.request_history(sub, query);
        }
        if let Some((id, info)) = join {
            let conn = self.subs.get(sub).map_or(u32::MAX, |s| s.conn);
            self.presence_for(conn, sub, PresenceAction::Join { id, info });
        }
    }

    /// A connection is being closed: its subscriptions' extended records go.
    pub(super) fn ext_forget_subs(&mut self, index: u32) {
        let subs: Vec<u32> = self.subs_of(index).collect();
        for sub in subs {
            self.ext.subs.remove(&sub);
        }
    }

    /// A connection is gone.
    pub(super) fn ext_closed(&mut self, index: u32) {
        self.ext.conns.remove(&index);
    }

    // ------------------------------------------------------------ API

    /// Broadcast `payload` on `stream`, stamped with its `position` in the
    /// stream's history: connections that chose the extended protocol get
    /// `{"identifier":…,"message":…,"stream_id":…,"epoch":…,"offset":…}`,
    /// the others the plain Action Cable frame.
    pub fn broadcast_at(
        &mut self,
        stream: &str,
        payload: &str,
        position: &StreamPosition,
        now: Instant,
    ) -> super::Delivery {
        self.advance(now);
        self.fan_out_positioned(stream, payload, None, false, Some(position))
    }

    /// Lets subscription `subscription` whisper to `stream` (AnyCable's
    /// `$w` state: public and signed streams, Rails' `whispers_to`).
    pub fn allow_whisper(
        &mut self,
        subscription: SubscriptionId,
        stream: impl Into<StreamName>,
    ) -> Result<(), UsageError> {
        let sub = self.known_sub(subscription)?;
        self.sub_ext(sub, subscription.generation).whisper = Some(stream.into());
        Ok(())
    }

    /// Lets subscription `subscription` join the presence of `stream`
    /// (AnyCable's `$p` state).
    pub fn allow_presence(
        &mut self,
        subscription: SubscriptionId,
        stream: impl Into<StreamName>,
    ) -> Result<(), UsageError> {
        let sub = self.known_sub(subscription)?;
        self.sub_ext(sub, subscription.generation).presence = Some(stream.into());
        Ok(())
    }

    /// The session id given to `connection` (see [`Server::accept_session`]).
    pub fn session_id(&self, connection: ConnectionId) -> Option<&str> {
        self.ext
            .conns
            .get(&connection.index)
            .filter(|c| c.generation == connection.generation)
            .and_then(|c| c.sid.as_deref())
    }

    /// Whether `connection` chose the extended protocol.
    pub fn extended(&self, connection: ConnectionId) -> bool {
        self.ext
            .conns
            .get(&connection.index)
            .is_some_and(|c| c.generation == connection.generation && c.extended)
    }

    // ------------------------------------------------------------ internals

    fn known_sub(&self, id: SubscriptionId) -> Result<u32, UsageError> {
        self.subs
            .get_checked(id.index, id.generation)
            .map(|_| id.index)
            .ok_or(UsageError::UnknownSubscription)
    }

    fn sub_ext(&mut self, sub: u32, generation: u32) -> &mut SubExt {
        let entry = self.ext.subs.entry(sub).or_default();
        if entry.generation != generation {
            *entry = SubExt {
                generation,
                ..SubExt::default()
            };
        }
        entry
    }

    fn sub_ext_ref(&self, sub: u32) -> Option<&SubExt> {
        let generation = self.subs.generation(sub);
        self.ext
            .subs
            .get(&sub)
            .filter(|e| e.generation == generation)
    }

    /// The live subscription of connection `index` with `identifier`.
    fn live_sub_of(&self, index: u32, identifier: &str) -> Option<u32> {
        self.find_sub(index, identifier)
            .filter(|&s| self.subs.get(s).is_some_and(|s| s.live))
    }

    fn unknown_subscription(&mut self, index: u32, identifier: &str) {
        self.fail(
            index,
            CommandError::UnknownSubscription {
                identifier: truncate(identifier, 256),
            },
        );
    }

    /// The streams of subscription `sub`, each once, in the order started.
    fn sub_streams(&self, sub: u32) -> Vec<StreamName> {
        let mut out: Vec<StreamName> = Vec::new();
        let Some(entry) = self.subs.get(sub) else {
            return out;
        };
        for m in entry.memberships.iter() {
            let Some(stream) = self
                .groups
                .get(m.group)
                .and_then(|g| self.streams.get(g.stream))
            else {
                continue;
            };
            if !out.contains(&stream.name) {
                out.push(stream.name.clone());
            }
        }
        out
    }

    /// A whisper: `data` to every other subscriber of the subscription's
    /// whisper stream, never stored.
    fn whisper(&mut self, index: u32, identifier: &str, data: &str) {
        let Some(sub) = self.live_sub_of(index, identifier) else {
            self.unknown_subscription(index, identifier);
            return;
        };
        let Some(stream) = self.sub_ext_ref(sub).and_then(|e| e.whisper.clone()) else {
            self.fail(
                index,
                CommandError::UnknownCommand("\"whisper\" (not allowed)".into()),
            );
            return;
        };
        let except = self.connection_id(index);
        self.fan_out(stream.as_str(), data, Some(except), false);
    }
}

/// `frame` with `,"stream_id":…,"epoch":…,"offset":…` before its last `}`.
pub(super) fn with_position(frame: &[u8], stream: &str, position: &StreamPosition) -> Bytes {
    let mut out = Vec::with_capacity(frame.len() + stream.len() + position.epoch.len() + 48);
    out.extend_from_slice(&frame[..frame.len().saturating_sub(1)]);
    out.extend_from_slice(br#","stream_id":"#);
    write_rails_string(&mut out, stream);
    out.extend_from_slice(br#","epoch":"#);
    write_rails_string(&mut out, &position.epoch);
    out.extend_from_slice(br#","offset":"#);
    out.extend_from_slice(position.offset.to_string().as_bytes());
    out.push(b'}');
    Bytes::from(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
