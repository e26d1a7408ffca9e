//! Backpressure on a connection's commands: while the core holds frames for
//! a pending decision (an authentication, a subscription waiting for its
//! app or for Redis, an action; a Jac token or walker, held by the dialect),
//! the reader stops reading the socket once
//! the frames in flight would fill the core's hold, so a client that
//! pipelines a burst is slowed down by TCP instead of being disconnected.
//!
//! The reader counts what it sent to the core; the core task publishes how
//! much of it is done (handled, not held). Frames in flight, sent but not
//! done, stay within [`Limits::max_held_frames`] and
//! [`Limits::max_held_bytes`], so the core's hold never overflows on a
//! client that waits for its frames to be read.

use std::sync::atomic::{AtomicU64, Ordering};

use cable_proto::server::Limits;
use tokio::sync::Notify;

/// One connection's inbound window, shared by its reader and the core task.
#[derive(Debug)]
pub(crate) struct InboundFlow {
    done_frames: AtomicU64,
    done_bytes: AtomicU64,
    notify: Notify,
    max_frames: u64,
    max_bytes: u64,
}

impl InboundFlow {
    /// A window as large as the core's hold.
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            done_frames: AtomicU64::new(0),
            done_bytes: AtomicU64::new(0),
            notify: Notify::new(),
            max_frames: limits.max_held_frames.max(1) as u64,
            max_bytes: limits.max_held_bytes as u64,
        }
    }

    /// The core task: of the frames received so far, this many (and bytes)
    /// are done; the reader may go on if it waited.
    pub(crate) fn settle(&self, done_frames: u64, done_bytes: u64) {
        let before = self.done_frames.swap(done_frames, Ordering::AcqRel);
        self.done_bytes.store(done_bytes, Ordering::Release);
        if done_frames != before {
            self.notify.notify_one();
        }
    }

    /// Wakes a waiting reader whatever the window says (the connection is
    /// gone from the core).
    pub(crate) fn release(&self) {
        self.done_frames.store(u64::MAX / 2, Ordering::Release);
        self.done_bytes.store(u64::MAX / 2, Ordering::Release);
        self.notify.notify_one();
    }

    fn fits(&self, sent: Sent, len: u64) -> bool {
        let done_frames = self.done_frames.load(Ordering::Acquire);
        let done_bytes = self.done_bytes.load(Ordering::Acquire);
        let frames = sent.frames.saturating_sub(done_frames);
        let bytes = sent.bytes.saturating_sub(done_bytes);
        // Nothing in flight: any frame goes (one larger than the hold is
        // the core's to judge).
        frames == 0 || (frames < self.max_frames && bytes + len <= self.max_bytes)
    }

    /// The reader: waits until a frame of `len` bytes fits in the window.
    pub(crate) async fn admit(&self, sent: Sent, len: u64) {
        loop {
            let notified = self.notify.notified();
            if self.fits(sent, len) {
                return;
            }
            notified.await;
        }
    }
}

/// What a reader has sent to the core so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
}

impl Sent {
    /// One more frame of `len` bytes.
    pub(crate) fn add(&mut self, len: u64) {
        self.frames += 1;
        self.bytes += len;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn flow(frames: usize, bytes: usize) -> Arc<InboundFlow> {
        let limits = Limits {
            max_held_frames: frames,
            max_held_bytes: bytes,
            ..Limits::default()
        };
        Arc::new(InboundFlow::new(&limits))
    }

    #[tokio::test]
    async fn waits_while_the_hold_would_fill_and_goes_on_when_settled() {
        let flow = flow(2, 100);
        let mut sent = Sent::default();
        for _ in 0..2 {
            flow.admit(sent, 10).await;
            sent.add(10);
        }
        // Two in flight: the third waits.
        let waiting = tokio::spawn({
            let flow = Arc::clone(&flow);
            async move { flow.admit(sent, 10).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        flow.settle(1, 10);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once one frame is done")
            .unwrap();
    }

    #[tokio::test]
    async fn bytes_bound_the_window_but_an_empty_window_takes_anything() {
        let flow = flow(64, 100);
        let mut sent = Sent::default();
        flow.admit(sent, 1_000).await; // nothing in flight
        sent.add(1_000);
        assert!(!flow.fits(sent, 1));
        flow.settle(1, 1_000);
        assert!(flow.fits(sent, 60));
        sent.add(60);
        assert!(!flow.fits(sent, 41));
        assert!(flow.fits(sent, 40));
        flow.release();
        assert!(flow.fits(sent, 1_000_000));
    }
}
