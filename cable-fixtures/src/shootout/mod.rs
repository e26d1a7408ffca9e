//! The shootout: the websocket-shootout broadcast benchmark for Action Cable servers.
//!
//! Against `BenchmarkChannel` of the reference app (`../shared/refserver/config.ru`; every
//! subscription streams from `bench_all` and from a stream of its own, action `broadcast`
//! sends the data to `bench_all` and then, with `"action":"broadcastResult"`, to the sender
//! alone):
//!
//! 1. connect N clients (`Sec-WebSocket-Protocol: actioncable-v1-json`, a same-origin
//!    `Origin`), subscribe each to `{"channel":"BenchmarkChannel"}` and wait for every
//!    confirmation;
//! 2. send K `broadcast` messages, C in flight at a time, each from a client picked by a
//!    seeded PRNG, with data
//!    `{"action":"broadcast","payload":{"sendTime":<unix ns>,"id":<n>,"padding":"xx.."}}`;
//! 3. time the round trip at the sender, from just before the send to the arrival of its
//!    `broadcastResult` with the same id;
//! 4. after a drain period, count the deliveries on `bench_all` that never arrived: every
//!    subscribed client, the sender included, must receive every broadcast exactly once.
//!
//! Optionally the server's resident memory (VmRSS of `/proc/PID/status`) before
//! connecting, once every client is subscribed, and at the end; in idle mode
//! ([`ShootoutOptions::idle_only`]) only the connections and the memory.
//!
//! The client side is light on purpose (it shares the machine with the server): frames are
//! recognised by string search, not parsed, and each delivery sets one bit of a shared
//! bitmap. Everything is bounded by [`ShootoutOptions::timeout`]. Loopback only.
//!
//! This module holds the options and [`run`]; the report and its statistics, the frames,
//! the clients (connecting, subscribing, reading) and the broadcast rounds are in private
//! submodules, their public items re-exported here.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use crate::live::LiveTarget;
use crate::Error;

mod broadcasts;
mod clients;
mod frames;
mod report;
#[cfg(test)]
mod tests;

pub use broadcasts::Prng;
pub use frames::{broadcast_frame, parse_delivery, subscribe_frame, Delivery};
pub use report::{percentile, rss_kib, Latency, Memory, ShootoutReport};

use broadcasts::broadcast_phase;
use clients::{join_all, ResultMsg, Shared};

/// The identifier every client subscribes with (the channel of the reference app).
pub const IDENTIFIER: &str = r#"{"channel":"BenchmarkChannel"}"#;

/// How one shootout runs.
#[derive(Debug, Clone)]
pub struct ShootoutOptions {
    /// The server, `ws://127.0.0.1:PORT/cable`.
    pub target: LiveTarget,
    /// N: clients to connect and subscribe.
    pub clients: usize,
    /// K: broadcasts to send.
    pub samples: usize,
    /// C: broadcasts in flight at a time.
    pub concurrent: usize,
    /// Broadcasts sent (the same way) before the measured ones and not counted.
    pub warmup: usize,
    /// Length of the `padding` string in every payload.
    pub payload_padding: usize,
    /// The server's process id, to read its resident memory.
    pub pid: Option<u32>,
    /// Connect and subscribe only, measure memory, send nothing.
    pub idle_only: bool,
    /// Seed of the PRNG that picks the senders.
    pub seed: u64,
    /// Connections being opened and subscribed at a time.
    pub connect_concurrency: usize,
    /// How long one connection may take to open and be confirmed.
    pub connect_timeout: Duration,
    /// How long a broadcast may wait for its `broadcastResult` before it counts as lost
    /// (and frees its slot).
    pub sample_timeout: Duration,
    /// After the last result: how long to wait for outstanding deliveries.
    pub drain: Duration,
    /// Idle mode and memory: the pause after the last confirmation before reading memory.
    pub settle: Duration,
    /// The bound on the whole run.
    pub timeout: Duration,
}

impl ShootoutOptions {
    /// Defaults for `target`: 100 clients, 100 samples, 4 in flight, 200 bytes of padding.
    pub fn new(target: LiveTarget) -> ShootoutOptions {
        ShootoutOptions {
            target,
            clients: 100,
            samples: 100,
            concurrent: 4,
            warmup: 0,
            payload_padding: 200,
            pid: None,
            idle_only: false,
            seed: 0x5eed,
            connect_concurrency: 64,
            connect_timeout: Duration::from_secs(30),
            sample_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(3),
            settle: Duration::from_secs(2),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Runs one shootout; the report says what happened, including failures (connections
/// refused, results lost, deliveries missing). An error means no measurement could be made
/// (no client connected, out of file descriptors).
pub async fn run(opts: &ShootoutOptions) -> Result<ShootoutReport, Error> {
    if opts.clients == 0 {
        return Err(Error::Usage("--clients must be at least 1".into()));
    }
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let mut report = ShootoutReport {
        url: format!("ws://{}{}", opts.target.authority, opts.target.path),
        idle_only: opts.idle_only,
        clients: opts.clients,
        samples: if opts.idle_only { 0 } else { opts.samples },
        concurrent: opts.concurrent,
        warmup: if opts.idle_only { 0 } else { opts.warmup },
        payload_padding: opts.payload_padding,
        ..ShootoutReport::default()
    };
    let samples = report.samples;
    let shared = Arc::new(Shared {
        bits: (0..(opts.clients * samples).div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect(),
        samples,
        warmup: if opts.idle_only { 0 } else { opts.warmup },
        deliveries: AtomicU64::new(0),
        warmup_deliveries: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        disconnected: AtomicUsize::new(0),
        resubscribes: AtomicUsize::new(0),
        t0,
    });
    let (results_tx, mut results_rx) = mpsc::unbounded_channel::<ResultMsg>();
    report.memory.before_kib = opts.pid.and_then(rss_kib);
    let mut clients = join_all(opts, &shared, &results_tx, deadline, &mut report).await?;
    drop(results_tx);
    report.connected = clients.len();
    report.resubscribes = shared.resubscribes.load(Ordering::Relaxed);
    report.connect_ms = t0.elapsed().as_secs_f64() * 1000.0;
    if clients.is_empty() {
        return Err(Error::Live(format!(
            "no client could connect to {}: {}",
            report.url,
            report.first_connect_error.as_deref().unwrap_or("timed out")
        )));
    }
    if opts.idle_only && opts.pid.is_some() {
        let _ = timeout_at(deadline, tokio::time::sleep(opts.settle)).await;
    }
    report.memory.connected_kib = opts.pid.and_then(rss_kib);
    if let (Some(before), Some(connected)) = (report.memory.before_kib, report.memory.connected_kib)
    {
        report.memory.per_connection_bytes =
            Some(connected.saturating_sub(before) * 1024 / clients.len() as u64);
    }

    if !opts.idle_only {
        broadcast_phase(
            opts,
            &mut clients,
            &shared,
            &mut results_rx,
            deadline,
            &mut report,
        )
        .await;
    }

    report.memory.end_kib = opts.pid.and_then(rss_kib);
    report.disconnected = shared.disconnected.load(Ordering::Relaxed);
    for c in clients {
        c.reader.abort();
    }
    Ok(report)
}
