//! What a shootout measured: the [`ShootoutReport`] with its round-trip [`Latency`]
//! (nearest-rank [`percentile`]s) and the server's [`Memory`] (read by [`rss_kib`]), and
//! the report's text rendering.

use std::fmt;

use serde::Serialize;

/// Round-trip times in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Fastest.
    pub min: Option<f64>,
    /// Slowest.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

impl Latency {
    /// The summary of `samples` (milliseconds, any order).
    pub fn of(samples: &[f64]) -> Latency {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mean = if sorted.is_empty() {
            None
        } else {
            Some(sorted.iter().sum::<f64>() / sorted.len() as f64)
        };
        Latency {
            p50: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
            p99: percentile(&sorted, 99.0),
            min: sorted.first().copied(),
            max: sorted.last().copied(),
            mean,
        }
    }
}

/// The server's resident memory, KiB (VmRSS).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Memory {
    /// Before the first connection.
    pub before_kib: Option<u64>,
    /// Once every client is subscribed (after the settle pause in idle mode).
    pub connected_kib: Option<u64>,
    /// At the end, before the clients disconnect.
    pub end_kib: Option<u64>,
    /// `(connected - before) / connected clients`, bytes.
    pub per_connection_bytes: Option<u64>,
}

/// What one shootout measured. Serialised as the final JSON line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShootoutReport {
    /// The server's URL.
    pub url: String,
    /// Idle mode: no broadcasts.
    pub idle_only: bool,
    /// Clients asked for (N).
    pub clients: usize,
    /// Clients connected and confirmed.
    pub connected: usize,
    /// Clients that could not connect or were not confirmed in time.
    pub connect_failures: usize,
    /// The first connection failure, if any.
    pub first_connect_error: Option<String>,
    /// From the first connect to the last confirmation, ms.
    pub connect_ms: f64,
    /// Subscribe commands sent again because no confirmation came within 3 s (as the Rails
    /// JS client's SubscriptionGuarantor does).
    pub resubscribes: usize,
    /// Broadcasts asked for (K).
    pub samples: usize,
    /// Broadcasts in flight at a time (C).
    pub concurrent: usize,
    /// Warm-up broadcasts sent before the measured ones.
    pub warmup: usize,
    /// Padding bytes per payload.
    pub payload_padding: usize,
    /// Broadcasts sent.
    pub sent: usize,
    /// Sends that failed (the sender's connection was gone or stuck).
    pub send_errors: usize,
    /// `broadcastResult`s received in time.
    pub results: usize,
    /// Broadcasts whose `broadcastResult` did not arrive within the sample timeout.
    pub lost_results: usize,
    /// Round trip at the sender, ms.
    pub rtt_ms: Latency,
    /// Deliveries on `bench_all` expected: sent × connected.
    pub expected_deliveries: u64,
    /// Distinct deliveries received.
    pub deliveries: u64,
    /// Expected deliveries that never arrived.
    pub missing: u64,
    /// Deliveries received more than once.
    pub duplicates: u64,
    /// Deliveries per second, from the first send to the last delivery.
    pub deliveries_per_s: Option<f64>,
    /// From the first send to the last delivery, ms.
    pub broadcast_ms: f64,
    /// Connections the server closed (or that failed) during the run.
    pub disconnected: usize,
    /// The server's resident memory, with `--pid`.
    pub memory: Memory,
    /// The run hit its overall timeout; the numbers are partial.
    pub timed_out: bool,
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2} ms"))
}

fn opt_kib(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v} KiB"))
}

impl fmt::Display for ShootoutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "url               {}", self.url)?;
        writeln!(
            f,
            "connected         {}/{} in {:.0} ms ({} resubscribes, {} failed{})",
            self.connected,
            self.clients,
            self.connect_ms,
            self.resubscribes,
            self.connect_failures,
            self.first_connect_error
                .as_deref()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default()
        )?;
        if !self.idle_only {
            writeln!(
                f,
                "broadcasts        {} sent of {} (after {} warm-up), {} in flight, {} B padding; {} send errors",
                self.sent,
                self.samples,
                self.warmup,
                self.concurrent,
                self.payload_padding,
                self.send_errors
            )?;
            writeln!(
                f,
                "results           {} received, {} lost",
                self.results, self.lost_results
            )?;
            writeln!(
                f,
                "round trip        p50 {}  p95 {}  p99 {}  (min {}, max {}, mean {})",
                opt_ms(self.rtt_ms.p50),
                opt_ms(self.rtt_ms.p95),
                opt_ms(self.rtt_ms.p99),
                opt_ms(self.rtt_ms.min),
                opt_ms(self.rtt_ms.max),
                opt_ms(self.rtt_ms.mean)
            )?;
            writeln!(
                f,
                "deliveries        {} of {} ({} missing, {} duplicates) in {:.0} ms: {}/s",
                self.deliveries,
                self.expected_deliveries,
                self.missing,
                self.duplicates,
                self.broadcast_ms,
                self.deliveries_per_s
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
            )?;
        }
        writeln!(f, "disconnected      {}", self.disconnected)?;
        if self.memory != Memory::default() {
            writeln!(
                f,
                "server RSS        before {}, connected {}, end {}; {} per connection",
                opt_kib(self.memory.before_kib),
                opt_kib(self.memory.connected_kib),
                opt_kib(self.memory.end_kib),
                self.memory
                    .per_connection_bytes
                    .map_or_else(|| "-".to_owned(), |v| format!("{v} B"))
            )?;
        }
        if self.timed_out {
            writeln!(f, "TIMED OUT         the numbers are partial")?;
        }
        Ok(())
    }
}

/// The `p`th percentile (0..=100) of ascending `sorted` samples, by the nearest-rank
/// method: the smallest sample with at least p% of the samples at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The resident memory of process `pid` in KiB (VmRSS of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
