//! Admission of connections: how many may be in their HTTP phase at once
//! (pending handshakes, oldest evicted first) and how many WebSocket
//! connections may be open, both kept within the open-files limit so that a
//! peer holding many sockets cannot exhaust the server's file descriptors.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::options::{ConnectionCap, Options};

/// File descriptors kept for everything but client connections: the
/// listener, Redis, standard streams, the runtime's own.
const RESERVED_FDS: u64 = 64;

/// The caps in force, from the options and the open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdmissionLimits {
    /// Most connections in their HTTP phase (at least 1).
    pub(crate) max_pending: usize,
    /// Most open WebSocket connections (`None`: no cap).
    pub(crate) max_connections: Option<usize>,
    /// The open-files limit they were derived from, if known.
    pub(crate) open_files: Option<u64>,
}

impl AdmissionLimits {
    /// The caps for `options` under an open-files limit of `open_files`
    /// (`None`: unknown or unlimited). The pending-handshake cap is at most
    /// a quarter of the descriptors left after [`RESERVED_FDS`]; with
    /// `--max-connections auto`, the connections get the rest.
    pub(crate) fn resolve(options: &Options, open_files: Option<u64>) -> Self {
        let budget = open_files
            .map(|n| usize::try_from(n.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX));
        let max_pending = match budget {
            Some(budget) => options.max_pending_handshakes.min(budget / 4),
            None => options.max_pending_handshakes,
        }
        .max(1);
        let max_connections = match options.max_connections {
            ConnectionCap::At(n) => Some(n),
            ConnectionCap::Unlimited => None,
            ConnectionCap::Auto => budget.map(|budget| budget.saturating_sub(max_pending).max(1)),
        };
        Self {
            max_pending,
            max_connections,
            open_files,
        }
    }

    /// Logs the caps in force, and a warning when they may need more
    /// descriptors than the open-files limit leaves.
    pub(crate) fn log(&self, handshake_timeout_ms: u64) {
        tracing::info!(
            max_connections = self.max_connections,
            max_pending_handshakes = self.max_pending,
            open_files_limit = self.open_files,
            handshake_timeout_ms,
            "admission limits"
        );
        if self.exceed_open_files() {
            tracing::warn!(
                "--max-connections and --max-pending-handshakes exceed the open-files limit \
                 (ulimit -n): accept may fail for lack of file descriptors"
            );
        }
    }

    /// Whether the caps together may need more descriptors than the
    /// open-files limit leaves (then `accept` can fail for lack of them).
    pub(crate) fn exceed_open_files(&self) -> bool {
        let Some(open_files) = self.open_files else {
            return false;
        };
        let needed = self
            .max_connections
            .map_or(u64::MAX, |n| n as u64)
            .saturating_add(self.max_pending as u64)
            .saturating_add(RESERVED_FDS);
        needed > open_files
    }
}

/// The soft open-files limit of this process (`ulimit -n`), read from
/// `/proc/self/limits`; `None` where that is unavailable or unlimited.
pub(crate) fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether a failed `accept` means the process or the system is out of
/// file descriptors (EMFILE, ENFILE: 24 and 23 on Linux and the BSDs).
pub(crate) fn is_out_of_files(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// The connections in their HTTP phase, oldest first. The accept loop owns
/// it; each connection's task holds the receiving end of its entry while in
/// that phase, and ends the phase (closes the socket) when it fires.
#[derive(Debug)]
pub(crate) struct PendingHandshakes {
    /// One sender per connection admitted; closed once its task left the
    /// HTTP phase (and dropped the receiver).
    queue: VecDeque<oneshot::Sender<()>>,
    max: usize,
}

/// Fires when the connection is evicted to make room for a newer one.
pub(crate) type Eviction = oneshot::Receiver<()>;

impl PendingHandshakes {
    /// No connection yet; at most `max` (at least 1) at once.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            max: max.max(1),
        }
    }

    /// Admits a new connection: returns its eviction signal, and whether
    /// the oldest connection still in its HTTP phase was evicted to make
    /// room (the cap was reached).
    pub(crate) fn admit(&mut self) -> (Eviction, bool) {
        while self.queue.front().is_some_and(oneshot::Sender::is_closed) {
            self.queue.pop_front();
        }
        let mut evicted = false;
        if self.queue.len() >= self.max {
            self.queue.retain(|sender| !sender.is_closed());
            if self.queue.len() >= self.max {
                evicted = self.evict_oldest();
            }
        }
        let (sender, receiver) = oneshot::channel();
        self.queue.push_back(sender);
        (receiver, evicted)
    }

    /// Evicts the oldest connection still in its HTTP phase; returns
    /// whether there was one.
    pub(crate) fn evict_oldest(&mut self) -> bool {
        while let Some(sender) = self.queue.pop_front() {
            if sender.send(()).is_ok() {
                return true;
            }
        }
        false
    }
}

/// The open WebSocket connections, counted against `--max-connections`.
#[derive(Debug)]
pub(crate) struct ConnectionSlots {
    open: AtomicUsize,
    max: Option<usize>,
}

/// One open WebSocket connection's place; given back on drop.
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<ConnectionSlots>);

impl ConnectionSlots {
    /// No connection yet; at most `max` (`None`: no cap).
    pub(crate) fn new(max: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// A place for one more connection, or `None` at the cap.
    pub(crate) fn try_take(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.max.unwrap_or(usize::MAX);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()?;
        Some(ConnectionSlot(Arc::clone(self)))
    }

    /// How many places are taken.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn options(args: &[&str]) -> Options {
        Options::parse_from(std::iter::once("cable-server").chain(args.iter().copied()))
    }

    #[test]
    fn limits_from_the_open_files_limit() {
        let defaults = options(&[]);
        assert_eq!(
            AdmissionLimits::resolve(&defaults, Some(1024)),
            AdmissionLimits {
                max_pending: 240,
                max_connections: Some(720),
                open_files: Some(1024)
            }
        );
        let big = AdmissionLimits::resolve(&defaults, Some(1 << 20));
        assert_eq!(big.max_pending, 1024);
        assert_eq!(big.max_connections, Some((1 << 20) - 64 - 1024));
        assert!(!big.exceed_open_files());
        let unknown = AdmissionLimits::resolve(&defaults, None);
        assert_eq!((unknown.max_pending, unknown.max_connections), (1024, None));
        let explicit = AdmissionLimits::resolve(
            &options(&["--max-connections", "5000", "--max-pending-handshakes", "8"]),
            Some(1024),
        );
        assert_eq!(
            (explicit.max_pending, explicit.max_connections),
            (8, Some(5000))
        );
        assert!(explicit.exceed_open_files());
        let unlimited =
            AdmissionLimits::resolve(&options(&["--max-connections", "unlimited"]), Some(1024));
        assert_eq!(unlimited.max_connections, None);
        assert!(unlimited.exceed_open_files());
        let tiny = AdmissionLimits::resolve(&defaults, Some(10));
        assert_eq!((tiny.max_pending, tiny.max_connections), (1, Some(1)));
    }

    #[test]
    fn open_files_limit_is_parsed() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63459                63459                processes \n\
                      Max open files            20000                524288               files     \n";
        assert_eq!(parse_open_files_limit(limits), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), None);
        assert_eq!(parse_open_files_limit(""), None);
    }

    #[test]
    fn the_oldest_pending_handshake_is_evicted() {
        let mut pending = PendingHandshakes::new(2);
        let (mut first, evicted) = pending.admit();
        assert!(!evicted);
        let (second, evicted) = pending.admit();
        assert!(!evicted);
        let (_third, evicted) = pending.admit();
        assert!(evicted);
        assert_eq!(first.try_recv(), Ok(()));
        // A connection that left its HTTP phase frees its place.
        drop(second);
        let (_fourth, evicted) = pending.admit();
        assert!(!evicted);
        let (_fifth, evicted) = pending.admit();
        assert!(evicted);
    }

    #[test]
    fn connection_slots_are_capped_and_given_back() {
        let slots = ConnectionSlots::new(Some(2));
        let a = slots.try_take().unwrap();
        let _b = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        drop(a);
        assert_eq!(slots.open(), 1);
        assert!(slots.try_take().is_some());
        let unlimited = ConnectionSlots::new(None);
        let held: Vec<_> = (0..100).map(|_| unlimited.try_take().unwrap()).collect();
        assert_eq!(unlimited.open(), held.len());
    }
}
