//! Where reliable streams' history lives: behind [`HistoryStore`], in
//! memory by default ([`MemoryHistory`], on the core's [`StreamHistory`]).

use std::time::Duration;

use cable_proto::server::{
    HistoryEntry, HistoryError, HistoryStreamRequest, StreamHistory, StreamPosition,
};

/// A stream history: positions for broadcasts, and the messages after a
/// position or since a time.
pub trait HistoryStore: Send {
    /// Stores `payload` as the next message of `stream` (Unix time `now`)
    /// and returns its position; `None`: not stored (the broadcast goes out
    /// without a position).
    fn append(&mut self, stream: &str, payload: &str, now: Duration) -> Option<StreamPosition>;

    /// The messages one stream of a history request asks for.
    fn read(
        &mut self,
        request: &HistoryStreamRequest,
        now: Duration,
    ) -> Result<Vec<HistoryEntry>, HistoryError>;

    /// Drops what is past its TTL (called now and then).
    fn prune(&mut self, _now: Duration) {}
}

/// The history in this process's memory: lost on restart (a new epoch then).
#[derive(Debug)]
pub struct MemoryHistory {
    history: StreamHistory,
}

impl MemoryHistory {
    /// `limit` messages per stream for `ttl`, under a fresh `epoch`.
    pub fn new(epoch: &str, limit: usize, ttl: Duration) -> Self {
        Self {
            history: StreamHistory::new(epoch, limit, ttl),
        }
    }

    /// The history itself.
    pub fn history(&self) -> &StreamHistory {
        &self.history
    }
}

impl HistoryStore for MemoryHistory {
    fn append(&mut self, stream: &str, payload: &str, now: Duration) -> Option<StreamPosition> {
        Some(self.history.append(stream, payload, now))
    }

    fn read(
        &mut self,
        request: &HistoryStreamRequest,
        now: Duration,
    ) -> Result<Vec<HistoryEntry>, HistoryError> {
        let stream = request.stream.as_str();
        match (&request.from, request.since) {
            (Some(from), _) => self.history.read_from(stream, from, now),
            (None, Some(since)) => Ok(self.history.read_since(stream, since, now)),
            (None, None) => Err(HistoryError::NoPosition),
        }
    }

    fn prune(&mut self, now: Duration) {
        self.history.prune(now);
    }
}

/// No history (`--history-limit 0`): broadcasts carry no position and every
/// history request is rejected.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHistory;

impl HistoryStore for NoHistory {
    fn append(&mut self, _stream: &str, _payload: &str, _now: Duration) -> Option<StreamPosition> {
        None
    }

    fn read(
        &mut self,
        _request: &HistoryStreamRequest,
        _now: Duration,
    ) -> Result<Vec<HistoryEntry>, HistoryError> {
        Err(HistoryError::UnknownStream)
    }
}
