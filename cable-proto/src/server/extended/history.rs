//! Reliable streams: the history a host keeps per stream, the `history`
//! requests the core hands it, and the answer's frames (backlog, then
//! `confirm_history`; or `reject_history`).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::UsageError;
use crate::frame;
use crate::identifier::Identifier;
use crate::json::validate;
use crate::types::{ConnectionId, StreamName, SubscriptionId};

use super::parse::HistoryQuery;
use super::{with_position, StreamPosition};
use crate::server::events::Event;
use crate::server::Server;

/// One message of a stream's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The stream.
    pub stream: StreamName,
    /// Its position.
    pub position: StreamPosition,
    /// The broadcast payload (JSON text).
    pub payload: String,
}

/// Why a stream's history cannot answer a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The client's epoch is not the history's (it was lost meanwhile).
    #[error("epoch {requested} is not the history's ({current})")]
    EpochMismatch {
        /// The client's.
        requested: Box<str>,
        /// The history's.
        current: Box<str>,
    },
    /// Messages after the client's offset were dropped already.
    #[error("offset {requested} is older than the oldest kept ({oldest})")]
    PositionGone {
        /// The client's.
        requested: u64,
        /// The oldest offset kept.
        oldest: u64,
    },
    /// Nothing is kept for the stream.
    #[error("no history for the stream")]
    UnknownStream,
    /// The request has neither a position for the stream nor `since`.
    #[error("neither a position nor since")]
    NoPosition,
    /// The store could not be read (a host's store behind the network).
    #[error("history store: {0}")]
    Store(String),
}

/// One stream of a [`HistoryRequest`]: read after `from` if the client gave
/// a position, else the messages of `since` (Unix seconds) and later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryStreamRequest {
    /// The stream.
    pub stream: StreamName,
    /// The client's last position in it.
    pub from: Option<StreamPosition>,
    /// Unix seconds: messages stored at or after it.
    pub since: Option<u64>,
}

/// The token of a history request; answer it with
/// [`Server::complete_history`].
#[must_use = "a history request must be answered"]
#[derive(Debug, PartialEq, Eq)]
pub struct PendingHistory {
    pub(crate) connection: ConnectionId,
    pub(crate) subscription: SubscriptionId,
}

/// A client asked for a subscription's history (`history`, or `subscribe`
/// with `history` once confirmed): read each stream, then answer
/// [`pending`](Self::pending). Later commands do not wait: live broadcasts
/// may arrive before the backlog (clients order by offset).
#[derive(Debug, PartialEq, Eq)]
pub struct HistoryRequest {
    /// The connection.
    pub connection: ConnectionId,
    /// The subscription.
    pub subscription: SubscriptionId,
    /// Its identifier.
    pub identifier: Identifier,
    /// What to read, per stream of the subscription.
    pub streams: Vec<HistoryStreamRequest>,
    /// The token.
    pub pending: PendingHistory,
}

impl Server {
    pub(super) fn request_history(&mut self, sub: u32, query: HistoryQuery) {
        let Some(conn) = self.subs.get(sub).map(|s| s.conn) else {
            return;
        };
        let streams = self
            .sub_streams(sub)
            .into_iter()
            .map(|stream| {
                let from = query
                    .streams
                    .iter()
                    .find(|(s, _)| *s == stream)
                    .map(|(_, p)| p.clone());
                HistoryStreamRequest {
                    stream,
                    from,
                    since: query.since,
                }
            })
            .collect();
        let connection = self.connection_id(conn);
        let subscription = self.subscription_id(sub);
        self.events
            .push_back(Event::HistoryRequested(HistoryRequest {
                connection,
                subscription,
                identifier: self.identifier_of_sub(sub).clone(),
                streams,
                pending: PendingHistory {
                    connection,
                    subscription,
                },
            }));
    }

    /// Answers a history request: the entries (each a message frame with its
    /// `stream_id`, `epoch` and `offset`), then
    /// `{"type":"confirm_history","identifier":…}`; or, for an error, only
    /// `{"type":"reject_history","identifier":…}`. A subscription that ended
    /// meanwhile gets nothing.
    pub fn complete_history(
        &mut self,
        pending: PendingHistory,
        answer: Result<Vec<HistoryEntry>, HistoryError>,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        let id = pending.subscription;
        let sub = self
            .subs
            .get_checked(id.index, id.generation)
            .filter(|s| s.live)
            .map(|s| s.conn)
            .ok_or(UsageError::UnknownSubscription);
        let conn = sub?;
        let literal = self.identifier_of_sub(id.index).json_literal().to_vec();
        let tail: &[u8] = match answer {
            Ok(entries) => {
                for entry in &entries {
                    if validate(&entry.payload).is_err() {
                        continue;
                    }
                    let plain = frame::message_from_literal(&literal, entry.payload.as_bytes());
                    let framed = with_position(&plain, entry.stream.as_str(), &entry.position);
                    self.push(conn, framed);
                }
                br#"{"type":"confirm_history","identifier":"#
            }
            Err(_) => br#"{"type":"reject_history","identifier":"#,
        };
        let mut out = Vec::with_capacity(tail.len() + literal.len() + 1);
        out.extend_from_slice(tail);
        out.extend_from_slice(&literal);
        out.push(b'}');
        self.push(conn, Bytes::from(out));
        self.flush_overflow();
        Ok(())
    }
}

/// An in-memory history: per stream, the last `limit` messages no older
/// than `ttl`, under one epoch. IO-free: the host passes the Unix time.
///
/// ```
/// use std::time::Duration;
/// use cable_proto::server::{StreamHistory, StreamPosition};
///
/// let mut history = StreamHistory::new("ep01", 100, Duration::from_secs(300));
/// let t = Duration::from_secs(1_700_000_000);
/// assert_eq!(history.append("chat", r#"{"n":1}"#, t), StreamPosition::new("ep01", 1));
/// assert_eq!(history.append("chat", r#"{"n":2}"#, t), StreamPosition::new("ep01", 2));
/// let after_1 = history.read_from("chat", &StreamPosition::new("ep01", 1), t).unwrap();
/// assert_eq!(after_1.len(), 1);
/// assert_eq!(after_1[0].payload, r#"{"n":2}"#);
/// ```
#[derive(Debug)]
pub struct StreamHistory {
    epoch: Box<str>,
    limit: usize,
    ttl: Duration,
    streams: BTreeMap<StreamName, Ring>,
    entries: usize,
    payload_bytes: usize,
}

#[derive(Debug, Default)]
struct Ring {
    /// The last offset given.
    last: u64,
    entries: VecDeque<Stored>,
}

#[derive(Debug)]
struct Stored {
    offset: u64,
    /// Unix time of the append.
    at: Duration,
    payload: Box<str>,
}

impl StreamHistory {
    /// A history under `epoch` (choose a new one whenever the history
    /// starts empty: a restart), keeping at most `limit` messages per stream
    /// (AnyCable's `history_limit`, 100) for `ttl` (`history_ttl`, 300 s).
    pub fn new(epoch: impl Into<Box<str>>, limit: usize, ttl: Duration) -> Self {
        Self {
            epoch: epoch.into(),
            limit: limit.max(1),
            ttl,
            streams: BTreeMap::new(),
            entries: 0,
            payload_bytes: 0,
        }
    }

    /// The epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Messages kept, over every stream.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Streams with a history.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Payload bytes kept.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// Stores `payload` as the next message of `stream` at Unix time `now`
    /// and returns its position.
    pub fn append(&mut self, stream: &str, payload: &str, now: Duration) -> StreamPosition {
        let ring = match self.streams.get_mut(stream) {
            Some(ring) => ring,
            None => self.streams.entry(StreamName::new(stream)).or_default(),
        };
        ring.last += 1;
        // Grow by doubling, but never past the bound: a full stream holds
        // no slack beyond one entry.
        let len = ring.entries.len();
        if len == ring.entries.capacity() {
            let target = (len * 2).clamp(4, self.limit + 1);
            ring.entries.reserve_exact(target.saturating_sub(len));
        }
        ring.entries.push_back(Stored {
            offset: ring.last,
            at: now,
            payload: payload.into(),
        });
        self.entries += 1;
        self.payload_bytes += payload.len();
        let offset = ring.last;
        while ring.entries.len() > self.limit {
            if let Some(gone) = ring.entries.pop_front() {
                self.entries -= 1;
                self.payload_bytes -= gone.payload.len();
            }
        }
        Self::expire(
            ring,
            &mut self.entries,
            &mut self.payload_bytes,
            self.ttl,
            now,
        );
        StreamPosition::new(self.epoch.clone(), offset)
    }

    /// The messages of `stream` after `from` (offsets strictly greater).
    /// Errors as AnyCable's memory broker does: another epoch, an offset
    /// older than the oldest kept, or a stream with nothing kept.
    pub fn read_from(
        &mut self,
        stream: &str,
        from: &StreamPosition,
        now: Duration,
    ) -> Result<Vec<HistoryEntry>, HistoryError> {
        if *from.epoch != *self.epoch {
            return Err(HistoryError::EpochMismatch {
                requested: from.epoch.clone(),
                current: self.epoch.clone(),
            });
        }
        let ring = self
            .streams
            .get_mut(stream)
            .ok_or(HistoryError::UnknownStream)?;
        Self::expire(
            ring,
            &mut self.entries,
            &mut self.payload_bytes,
            self.ttl,
            now,
        );
        let Some(oldest) = ring.entries.front().map(|e| e.offset) else {
            return Err(HistoryError::UnknownStream);
        };
        // Everything after `from` must still be here: the next message
        // the client needs is `from + 1`.
        if from.offset.saturating_add(1) < oldest {
            return Err(HistoryError::PositionGone {
                requested: from.offset,
                oldest,
            });
        }
        Ok(self.collect(stream, |e| e.offset > from.offset))
    }

    /// The messages of `stream` stored at Unix second `since` or later.
    pub fn read_since(&mut self, stream: &str, since: u64, now: Duration) -> Vec<HistoryEntry> {
        if let Some(ring) = self.streams.get_mut(stream) {
            Self::expire(
                ring,
                &mut self.entries,
                &mut self.payload_bytes,
                self.ttl,
                now,
            );
        }
        self.collect(stream, |e| e.at.as_secs() >= since)
    }

    /// Drops every message older than the TTL (call it now and then: a
    /// stream nobody broadcasts to again keeps its messages until then).
    pub fn prune(&mut self, now: Duration) {
        for ring in self.streams.values_mut() {
            Self::expire(
                ring,
                &mut self.entries,
                &mut self.payload_bytes,
                self.ttl,
                now,
            );
        }
    }

    fn collect(&self, stream: &str, keep: impl Fn(&Stored) -> bool) -> Vec<HistoryEntry> {
        let Some((name, ring)) = self.streams.get_key_value(stream) else {
            return Vec::new();
        };
        ring.entries
            .iter()
            .filter(|e| keep(e))
            .map(|e| HistoryEntry {
                stream: name.clone(),
                position: StreamPosition::new(self.epoch.clone(), e.offset),
                payload: e.payload.to_string(),
            })
            .collect()
    }

    fn expire(
        ring: &mut Ring,
        entries: &mut usize,
        bytes: &mut usize,
        ttl: Duration,
        now: Duration,
    ) {
        while ring
            .entries
            .front()
            .is_some_and(|e| now.saturating_sub(e.at) > ttl)
        {
            if let Some(gone) = ring.entries.pop_front() {
                *entries -= 1;
                *bytes -= gone.payload.len();
            }
        }
    }
}
