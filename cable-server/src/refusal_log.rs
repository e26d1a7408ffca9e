//! Rate-limited logging of refusals. A flood of refused or policed
//! connections must not flood the log as well: each refusal only counts,
//! and a reporter task writes at most one line per kind and interval, with
//! the count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What the host refused or cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// An upgrade request past `--max-connections` (503).
    ConnectionLimit,
    /// A connection in its HTTP phase closed to make room for a newer one
    /// (`--max-pending-handshakes`).
    PendingEvicted,
    /// `accept` failed (out of file descriptors, say).
    AcceptFailed,
    /// A request head or body not received within the handshake deadline.
    HandshakeTimeout,
    /// A WebSocket message over `--max-frame-bytes` (close 1009).
    FrameTooLarge,
    /// Too many refused frames (disconnected: `invalid_request`).
    InvalidFrames,
    /// No frame received within the idle timeout.
    IdleTimeout,
    /// A broadcast too large for a connection's queue (413).
    BroadcastTooLarge,
    /// A broadcast from Redis or an app too large for its subscribers'
    /// queues: dropped for them (nobody disconnected).
    BroadcastDropped,
}

impl Refusal {
    const ALL: [Refusal; 9] = [
        Refusal::ConnectionLimit,
        Refusal::PendingEvicted,
        Refusal::AcceptFailed,
        Refusal::HandshakeTimeout,
        Refusal::FrameTooLarge,
        Refusal::InvalidFrames,
        Refusal::IdleTimeout,
        Refusal::BroadcastTooLarge,
        Refusal::BroadcastDropped,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The line logged for this kind.
    fn message(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "upgrade requests refused with 503: --max-connections reached",
            Refusal::PendingEvicted => "handshakes closed to make room for newer ones: --max-pending-handshakes reached",
            Refusal::AcceptFailed => "accept failed (out of file descriptors? raise ulimit -n or lower --max-connections)",
            Refusal::HandshakeTimeout => "connections closed: request not received within --handshake-timeout-ms",
            Refusal::FrameTooLarge => "connections closed with 1009: message over --max-frame-bytes",
            Refusal::InvalidFrames => "connections disconnected (invalid_request): refused frames past --max-invalid-frames-per-sec",
            Refusal::IdleTimeout => "connections closed: nothing received within --idle-timeout-ms",
            Refusal::BroadcastTooLarge => "broadcasts refused with 413: larger than --max-queued-bytes allows",
            Refusal::BroadcastDropped => "broadcasts (from Redis or the app) not delivered: a frame larger than --max-queued-bytes",
        }
    }

    /// Refusals of service are warnings; policing one connection is not.
    fn is_warning(self) -> bool {
        matches!(
            self,
            Refusal::ConnectionLimit
                | Refusal::PendingEvicted
                | Refusal::AcceptFailed
                | Refusal::BroadcastTooLarge
        )
    }
}

/// Counts of refusals not yet reported, one per [`Refusal`].
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    counts: [AtomicU64; Refusal::ALL.len()],
}

impl RefusalLog {
    /// Nothing counted yet.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts one refusal.
    pub(crate) fn record(&self, refusal: Refusal) {
        self.counts[refusal.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Logs one line per kind counted since the last report, with its
    /// count, and resets the counts. Returns how many lines it logged.
    pub(crate) fn report(&self, interval: Duration) -> usize {
        let mut lines = 0;
        for refusal in Refusal::ALL {
            let count = self.counts[refusal.index()].swap(0, Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            lines += 1;
            let interval_ms = interval.as_millis() as u64;
            if refusal.is_warning() {
                tracing::warn!(count, interval_ms, "{}", refusal.message());
            } else {
                tracing::info!(count, interval_ms, "{}", refusal.message());
            }
        }
        lines
    }

    /// Reports every `interval` until the log is dropped.
    pub(crate) fn spawn_reporter(self: &Arc<Self>, interval: Duration) {
        let log: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(log) = log.upgrade() else { break };
                log.report(interval);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_one_line_per_kind() {
        let log = RefusalLog::new();
        for _ in 0..10_000 {
            log.record(Refusal::ConnectionLimit);
        }
        log.record(Refusal::FrameTooLarge);
        assert_eq!(log.report(Duration::from_secs(1)), 2);
        assert_eq!(log.report(Duration::from_secs(1)), 0);
    }
}
