//! The disconnect queue: `/disconnect` calls go out at a bounded rate from
//! a bounded backlog, as AnyCable's disconnect queue does (its defaults: 100
//! calls a second, 4096 waiting), so a mass disconnect (a restart, a network
//! split) does not flood the backend. A full backlog drops the call (logged;
//! the core never waits for it). A failed call (timeout, HTTP error, status
//! 0) is tried again, at most [`ATTEMPTS`] times in all, then dropped.

use std::time::Duration;

use tokio::sync::mpsc;

use super::client::{RpcClient, RpcError};
use super::protocol::{DisconnectRequest, DisconnectResponse, Status};

/// Attempts of one `/disconnect` call before it is dropped.
pub const ATTEMPTS: u32 = 3;

/// One `/disconnect` call to make.
#[derive(Debug, Clone)]
pub struct DisconnectCall {
    /// The connection's session id (`x-anycable-meta-sid`).
    pub sid: String,
    /// The body.
    pub request: DisconnectRequest,
}

/// The sending side of the queue, cheap to clone.
#[derive(Debug, Clone)]
pub struct DisconnectQueue {
    calls: mpsc::Sender<DisconnectCall>,
}

impl DisconnectQueue {
    /// Starts the worker (on the current tokio runtime): at most `rate`
    /// calls a second, at most `backlog` waiting.
    pub fn start(client: RpcClient, rate: u32, backlog: usize) -> Self {
        let (calls, receiver) = mpsc::channel(backlog.max(1));
        tokio::spawn(run(client, receiver, rate.max(1)));
        Self { calls }
    }

    /// Queues `call`; `false` when the backlog is full (the call is dropped).
    pub fn enqueue(&self, call: DisconnectCall) -> bool {
        match self.calls.try_send(call) {
            Ok(()) => true,
            Err(error) => {
                let sid = match &error {
                    mpsc::error::TrySendError::Full(call)
                    | mpsc::error::TrySendError::Closed(call) => call.sid.clone(),
                };
                tracing::warn!(sid, "disconnect backlog full: /disconnect call dropped");
                false
            }
        }
    }
}

async fn run(client: RpcClient, mut calls: mpsc::Receiver<DisconnectCall>, rate: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while let Some(call) = calls.recv().await {
        tick.tick().await;
        let client = client.clone();
        // The call runs beside the queue (its retries too): the rate bounds
        // the starts, the client's concurrency the calls in flight.
        tokio::spawn(async move { disconnect(&client, call).await });
    }
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
