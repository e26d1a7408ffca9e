//! The disconnect queue: `/disconnect` calls go out at a bounded rate from
//! a bounded backlog, as AnyCable's disconnect queue does (its defaults: 100
//! calls a second, 4096 waiting), so a mass disconnect (a restart, a network
//! split) does not flood the backend. A full backlog drops the call: counted
//! ([`DisconnectQueue::dropped`]) and logged at most once a second with the
//! count since the last line; the core never waits for it. A failed call
//! (timeout, HTTP error, status 0) is tried again, at most [`ATTEMPTS`] times
//! in all, then dropped.
//!
//! At shutdown ([`DisconnectQueue::flush`]) the rate no longer applies, as in
//! AnyCable: every call still waiting is made at once, and the calls in
//! flight are awaited, until the shutdown deadline.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::client::{RpcClient, RpcError};
use super::protocol::{DisconnectRequest, DisconnectResponse, Status};

/// Attempts of one `/disconnect` call before it is dropped.
pub const ATTEMPTS: u32 = 3;

/// At most one "backlog full" line per this interval.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// One `/disconnect` call to make.
#[derive(Debug, Clone)]
pub struct DisconnectCall {
    /// The connection's session id (`x-anycable-meta-sid`).
    pub sid: String,
    /// The body.
    pub request: DisconnectRequest,
}

/// What the queue and its worker share.
#[derive(Debug, Default)]
struct Shared {
    /// Set at shutdown: calls start without waiting for the rate.
    draining: AtomicBool,
    /// Wakes the worker out of its wait for the rate at shutdown.
    drain: Notify,
    /// Calls dropped because the backlog was full, since the start.
    dropped: AtomicU64,
    /// When the last "backlog full" line was logged, and the drops counted
    /// then.
    logged: Mutex<Option<(Instant, u64)>>,
}

/// The sending side of the queue, owned by the RPC app.
#[derive(Debug)]
pub struct DisconnectQueue {
    calls: mpsc::Sender<DisconnectCall>,
    shared: Arc<Shared>,
    worker: JoinHandle<()>,
}

impl DisconnectQueue {
    /// Starts the worker (on the current tokio runtime): at most `rate`
    /// calls a second, at most `backlog` waiting.
    pub fn start(client: RpcClient, rate: u32, backlog: usize) -> Self {
        let (calls, receiver) = mpsc::channel(backlog.max(1));
        let shared = Arc::new(Shared::default());
        let worker = tokio::spawn(run(client, receiver, rate.max(1), Arc::clone(&shared)));
        Self {
            calls,
            shared,
            worker,
        }
    }

    /// Queues `call`; `false` when the backlog is full (the call is dropped,
    /// counted and logged, at most one line a second).
    pub fn enqueue(&self, call: DisconnectCall) -> bool {
        match self.calls.try_send(call) {
            Ok(()) => true,
            Err(error) => {
                let sid = match &error {
                    mpsc::error::TrySendError::Full(call)
                    | mpsc::error::TrySendError::Closed(call) => call.sid.clone(),
                };
                self.record_drop(&sid, Instant::now());
                false
            }
        }
    }

    /// Calls dropped because the backlog was full, since the start: the
    /// same figure as `/metrics`' `cable_rpc_calls_total{method="disconnect",outcome="dropped"}`.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn record_drop(&self, sid: &str, now: Instant) {
        let total = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut logged = self.shared.logged.lock().expect("drop log");
        let since = match *logged {
            Some((at, _)) if now.saturating_duration_since(at) < DROP_LOG_INTERVAL => return,
            Some((_, counted)) => total - counted,
            None => total,
        };
        *logged = Some((now, total));
        tracing::warn!(
            dropped = since,
            total,
            last_sid = sid,
            "disconnect backlog full (--rpc-disconnect-backlog): /disconnect calls dropped"
        );
    }

    /// Shutdown: makes every call still waiting at once (no rate) and awaits
    /// them and the calls in flight, until `deadline`. Returns whether all
    /// were made in time.
    pub async fn flush(self, deadline: Instant) -> bool {
        let Self {
            calls,
            shared,
            worker,
        } = self;
        let waiting = calls.max_capacity() - calls.capacity();
        tracing::info!(
            waiting,
            "making the remaining /disconnect calls before exiting"
        );
        shared.draining.store(true, Ordering::Release);
        shared.drain.notify_one();
        // The worker ends once the backlog is empty and every call is done.
        drop(calls);
        let done = tokio::time::timeout_at(deadline.into(), worker)
            .await
            .is_ok();
        if !done {
            tracing::warn!("shutdown timeout: exiting before every /disconnect call was made");
        }
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "/disconnect calls dropped since the start: the backlog was full"
            );
        }
        done
    }
}

async fn run(
    client: RpcClient,
    mut calls: mpsc::Receiver<DisconnectCall>,
    rate: u32,
    shared: Arc<Shared>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = JoinSet::new();
    while let Some(call) = calls.recv().await {
        if !shared.draining.load(Ordering::Acquire) {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.drain.notified() => {}
            }
        }
        let client = client.clone();
        // The call runs beside the queue (its retries too): the rate bounds
        // the starts, the client's concurrency the calls in flight.
        in_flight.spawn(async move { disconnect(&client, call).await });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

/// Makes one `/disconnect` call, trying again after a failure.
pub async fn disconnect(client: &RpcClient, call: DisconnectCall) -> bool {
    for attempt in 1..=ATTEMPTS {
        let outcome: Result<DisconnectResponse, RpcError> =
            client.call("disconnect", &call.sid, &call.request).await;
        match outcome {
            Ok(answer) if answer.status != Status::Error => {
                tracing::debug!(sid = call.sid, "disconnect called");
                return true;
            }
            Ok(answer) => {
                tracing::warn!(
                    sid = call.sid,
                    attempt,
                    error = answer.error_msg,
                    "disconnect: application error"
                );
            }
            Err(error) => {
                tracing::warn!(sid = call.sid, attempt, %error, "disconnect failed");
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
    }
    tracing::warn!(
        sid = call.sid,
        "disconnect dropped after {ATTEMPTS} attempts"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::client::RpcSettings;

    fn call(n: usize) -> DisconnectCall {
        DisconnectCall {
            sid: format!("s{n}"),
            request: DisconnectRequest {
                identifiers: "{}".into(),
                subscriptions: Vec::new(),
                env: Default::default(),
            },
        }
    }

    /// A full backlog counts what it drops; the flush at shutdown gives up
    /// at its deadline when the backend does not answer.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_backlog_counts_its_drops_and_the_flush_keeps_its_deadline() {
        // Nothing listens on a port just freed: every call fails.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = RpcClient::new(&RpcSettings {
            url: format!("http://127.0.0.1:{port}/_anycable"),
            secret: None,
            timeout: Duration::from_millis(200),
            concurrency: 4,
        })
        .unwrap();
        let queue = DisconnectQueue::start(client, 1, 2);
        // The worker has not run yet (one thread, no await): two wait, three
        // are dropped.
        let queued: Vec<bool> = (0..5).map(|n| queue.enqueue(call(n))).collect();
        assert_eq!(queued, [true, true, false, false, false]);
        assert_eq!(queue.dropped(), 3);
        let start = Instant::now();
        let done = queue.flush(start + Duration::from_millis(150)).await;
        assert!(!done, "calls retried for longer than the deadline");
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
