//! Session resume: an extended connection that closes is kept, by its `sid`,
//! for [`ExtendedConfig::session_ttl`](super::ExtendedConfig::session_ttl).
//! A client that comes back with that `sid` gets its subscriptions back
//! without authenticating or subscribing again, and the application sees no
//! `Unsubscribed`/`Closed` for the gap; a session nobody restores in time
//! ends then, with those events.

use std::collections::VecDeque;
use std::time::Instant;

use crate::hash::{Map, SeededState};
use crate::identifier::{Identifier, LiteralKey};
use crate::json::{write_rails_string, JsonText};
use crate::types::{ConnectionId, Identity, StreamMode, StreamName, SubscriptionId};

use super::ExtTimer;
use crate::server::decisions::{ConnectionAccept, PendingConnection};
use crate::server::events::Event;
use crate::server::records::{ConnState, Encoding, IdentEntry, Sub, NONE};
use crate::server::timers::TimerKey;
use crate::server::Server;

/// A session restored by [`Server::restore_session`]: its subscriptions are
/// live again on the new connection, under new handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRestored {
    /// The new connection.
    pub connection: ConnectionId,
    /// The session id the client came back with.
    pub previous_sid: Box<str>,
    /// The identity, as it was.
    pub identity: Option<Identity>,
    /// The subscriptions restored, in their original order.
    pub subscriptions: Vec<(SubscriptionId, Identifier)>,
}

#[derive(Debug)]
struct RestorableSub {
    identifier: Identifier,
    streams: Vec<(StreamName, StreamMode)>,
    whisper: Option<StreamName>,
    presence: Option<StreamName>,
}

/// A closed session waiting to be restored.
#[derive(Debug)]
pub(in crate::server) struct Snapshot {
    expires: Instant,
    identity: Option<Identity>,
    subs: Vec<RestorableSub>,
    /// `Unsubscribed` and `Closed`, held back until the session ends.
    deferred: Vec<Event>,
}

#[derive(Debug)]
pub(super) struct Sessions {
    by_sid: Map<Box<str>, Snapshot>,
    /// Expiry order (every session has the same TTL); entries of sessions
    /// restored meanwhile are skipped.
    order: VecDeque<(Instant, Box<str>)>,
}

impl Sessions {
    pub(super) fn new(hasher: SeededState) -> Self {
        Self {
            by_sid: Map::with_hasher(hasher),
            order: VecDeque::new(),
        }
    }

    /// Sessions kept.
    pub(super) fn len(&self) -> usize {
        self.by_sid.len()
    }
}

impl Server {
    /// Authentication succeeded for a connection that gets session id `sid`
    /// (the host draws it): as [`accept_connection`](Self::accept_connection)
    /// with `"sid":<sid>` in the welcome; an extended connection's session
    /// is kept under `sid` once it closes.
    pub fn accept_session(
        &mut self,
        pending: PendingConnection,
        accept: ConnectionAccept,
        sid: &str,
        now: Instant,
    ) -> Result<(), crate::UsageError> {
        let connection = pending.connection;
        if self.is_extended(connection.index) {
            self.record_sid(connection, sid);
            self.accept_connection(pending, accept, now)
        } else {
            self.accept_connection(
                pending,
                accept.welcome_field("sid", JsonText::string(sid)),
                now,
            )
        }
    }

    fn record_sid(&mut self, connection: ConnectionId, sid: &str) {
        let (index, generation) = (connection.index, connection.generation);
        let entry = self.ext.conns.entry(index).or_default();
        if entry.generation != generation {
            *entry = super::ExtConn {
                generation,
                ..super::ExtConn::default()
            };
        }
        entry.sid = Some(sid.into());
    }

    /// Gives pending `connection` session id `sid` (the host draws it)
    /// before the application decides: if it chose the extended protocol,
    /// its welcome carries `"sid":<sid>` (unless the application's accept
    /// has a `sid` of its own, which is then the session's) and its session
    /// is kept under it once it closes.
    pub fn assign_session_id(&mut self, connection: ConnectionId, sid: &str) {
        if self.is_extended(connection.index)
            && self
                .conns
                .get_checked(connection.index, connection.generation)
                .is_some()
        {
            self.record_sid(connection, sid);
        }
    }

    /// The accept of an extended connection: its session id in the welcome.
    pub(in crate::server) fn ext_accepting(
        &mut self,
        index: u32,
        accept: ConnectionAccept,
    ) -> ConnectionAccept {
        let Some(ext) = self.ext.conns.get_mut(&index).filter(|c| c.extended) else {
            return accept;
        };
        let own = accept
            .welcome
            .iter()
            .find(|(k, _)| &**k == "sid")
            .and_then(|(_, v)| serde_json::from_str::<String>(v.as_str()).ok());
        match (own, ext.sid.clone()) {
            (Some(own), _) => {
                ext.sid = Some(own.into());
                accept
            }
            (None, Some(sid)) => accept.welcome_field("sid", JsonText::string(&sid)),
            (None, None) => accept,
        }
    }

    /// A connection came back with `previous_sid` (`?sid=` or
    /// `X-ANYCABLE-RESTORE-SID`). If that session is kept and this
    /// connection chose the extended protocol, it is accepted as the session
    /// was, with no decision of the application's: welcome
    /// `{"type":"welcome","sid":<sid>,"restored":true,"restored_ids":[…]}`,
    /// its subscriptions live again, and
    /// [`Event::SessionRestored`]. Otherwise the token comes back: decide as
    /// usual.
    pub fn restore_session(
        &mut self,
        pending: PendingConnection,
        previous_sid: &str,
        sid: &str,
        now: Instant,
    ) -> Result<SessionRestored, PendingConnection> {
        self.advance(now);
        let index = pending.connection.index;
        let usable = self
            .conns
            .get_checked(index, pending.connection.generation)
            .is_some_and(|c| c.state == ConnState::Pending)
            && self.is_extended(index)
            && self.config.extended.session_ttl.is_some();
        if !usable {
            return Err(pending);
        }
        let Some(snapshot) = self
            .ext
            .sessions
            .by_sid
            .remove(previous_sid)
            .filter(|s| s.expires > now)
        else {
            return Err(pending);
        };
        let mut restored = Vec::with_capacity(snapshot.subs.len());
        for sub in &snapshot.subs {
            let id = self.restore_sub(index, sub);
            restored.push((id, sub.identifier.clone()));
        }
        let mut ids = Vec::new();
        ids.push(b'[');
        for (i, (_, identifier)) in restored.iter().enumerate() {
            if i > 0 {
                ids.push(b',');
            }
            write_rails_string(&mut ids, identifier.as_str());
        }
        ids.push(b']');
        let ids = JsonText::new(String::from_utf8_lossy(&ids).into_owned())
            .unwrap_or_else(|_| JsonText::new("[]").expect("valid JSON"));
        let identity = snapshot
            .identity
            .clone()
            .unwrap_or_else(|| Identity::new(""));
        let accept = ConnectionAccept::new(identity)
            .welcome_field("sid", JsonText::string(sid))
            .welcome_field("restored", JsonText::new("true").expect("valid JSON"))
            .welcome_field("restored_ids", ids);
        let connection = pending.connection;
        self.record_sid(connection, sid);
        if self.accept_connection(pending, accept, now).is_err() {
            // Cannot happen: the connection was checked pending above.
            return Err(PendingConnection {
                connection,
                seq: u32::MAX,
            });
        }
        let event = SessionRestored {
            connection,
            previous_sid: previous_sid.into(),
            identity: snapshot.identity,
            subscriptions: restored,
        };
        self.events.push_back(Event::SessionRestored(event.clone()));
        Ok(event)
    }

    fn restore_sub(&mut self, conn: u32, sub: &RestorableSub) -> SubscriptionId {
        let ident = match self.ident_index.get(sub.identifier.json_literal()) {
            Some(&ident) => ident,
            None => {
                let (ident, _) = self.idents.insert(IdentEntry {
                    identifier: sub.identifier.clone(),
                    refs: 0,
                });
                self.ident_index
                    .insert(LiteralKey(sub.identifier.clone()), ident);
                ident
            }
        };
        if let Some(entry) = self.idents.get_mut(ident) {
            entry.refs += 1;
        }
        let (index, generation) = self.subs.insert(Sub {
            conn,
            ident,
            waiting: 0,
            live: true,
            next_of_conn: NONE,
            memberships: Box::default(),
        });
        self.link_sub(conn, index);
        for (stream, mode) in &sub.streams {
            self.add_subscription_stream(index, stream.clone(), *mode);
        }
        let ext = self.sub_ext(index, generation);
        ext.whisper = sub.whisper.clone();
        ext.presence = sub.presence.clone();
        SubscriptionId { index, generation }
    }

    /// The socket of connection `index` closed: if its session may be
    /// restored, what it was, before its subscriptions go.
    pub(in crate::server) fn ext_suspend(&mut self, index: u32, now: Instant) -> Option<Snapshot> {
        let snapshot = self.snapshot(index, now);
        self.ext_forget_subs(index);
        snapshot
    }

    fn snapshot(&self, index: u32, now: Instant) -> Option<Snapshot> {
        let ttl = self.config.extended.session_ttl?;
        let ext = self.ext.conns.get(&index)?;
        ext.sid.as_ref()?;
        if !ext.extended {
            return None;
        }
        let conn = self.conns.get(index)?;
        // Only a connection the client dropped: one the server closed (a
        // disconnect frame) is not restored, as the client forgets its sid.
        if conn.state != ConnState::Open {
            return None;
        }
        let subs = self
            .subs_of(index)
            .filter_map(|s| {
                let sub = self.subs.get(s).filter(|s| s.live)?;
                let streams = sub
                    .memberships
                    .iter()
                    .filter_map(|m| {
                        let g = self.groups.get(m.group)?;
                        let Encoding::Subscription { mode, .. } = g.encoding else {
                            return None;
                        };
                        Some((self.streams.get(g.stream)?.name.clone(), mode))
                    })
                    .collect();
                let ext = self.sub_ext_ref(s);
                Some(RestorableSub {
                    identifier: self.identifier_of(sub.ident).clone(),
                    streams,
                    whisper: ext.and_then(|e| e.whisper.clone()),
                    presence: ext.and_then(|e| e.presence.clone()),
                })
            })
            .collect();
        Some(Snapshot {
            expires: now + ttl,
            identity: conn.identity.clone(),
            subs,
            deferred: Vec::new(),
        })
    }

    /// After a close: a kept session takes the connection's `Unsubscribed`
    /// and `Closed` events (from `mark` on) until it ends.
    pub(in crate::server) fn ext_after_close(
        &mut self,
        index: u32,
        mark: usize,
        snapshot: Option<Snapshot>,
    ) {
        let sid = self.ext.conns.get_mut(&index).and_then(|c| c.sid.take());
        self.ext_closed(index);
        let (Some(mut snapshot), Some(sid)) = (snapshot, sid) else {
            return;
        };
        let mut kept = std::collections::VecDeque::new();
        for event in self.events.drain(mark.min(self.events.len())..) {
            match event {
                Event::Unsubscribed { .. } | Event::Closed { .. } => snapshot.deferred.push(event),
                other => kept.push_back(other),
            }
        }
        self.events.extend(kept);
        let expires = snapshot.expires;
        if let Some(old) = self.ext.sessions.by_sid.insert(sid.clone(), snapshot) {
            self.events.extend(old.deferred);
        }
        self.ext.sessions.order.push_back((expires, sid));
        if self.ext.sessions.order.len() == 1 {
            self.set_timer(expires, TimerKey::Extended(ExtTimer::Session));
        }
        while self.ext.sessions.len() > self.config.extended.max_sessions {
            if !self.end_oldest_session() {
                break;
            }
        }
    }

    /// Sessions past their TTL end: their held-back events come out.
    pub(in crate::server) fn expire_sessions(&mut self) {
        let now = self.now;
        while self
            .ext
            .sessions
            .order
            .front()
            .is_some_and(|(at, _)| *at <= now)
        {
            self.end_oldest_session();
        }
        if let Some(&(at, _)) = self.ext.sessions.order.front() {
            self.set_timer(at, TimerKey::Extended(ExtTimer::Session));
        }
    }

    fn end_oldest_session(&mut self) -> bool {
        let Some((at, sid)) = self.ext.sessions.order.pop_front() else {
            return false;
        };
        let ended = self
            .ext
            .sessions
            .by_sid
            .get(&sid)
            .is_some_and(|s| s.expires == at);
        if ended {
            if let Some(snapshot) = self.ext.sessions.by_sid.remove(&sid) {
                self.events.extend(snapshot.deferred);
            }
        }
        true
    }

    /// Closed sessions kept for restore.
    pub fn kept_sessions(&self) -> usize {
        self.ext.sessions.len()
    }
}
