//! What operators scrape: `GET /metrics` in Prometheus' text format
//! (version 0.0.4), from the `prometheus` crate's registry and encoder.
//!
//! Counters are bumped where things happen (the core task, the Redis bridge,
//! the RPC client); the gauges of the core's state (connections,
//! subscriptions, streams) are read from the core when scraped, and the
//! process' resident memory from `/proc/self/statm`.
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `cable_connections` | gauge | open connections (every protocol) |
//! | `cable_subscriptions` | gauge | live Action Cable subscriptions |
//! | `cable_streams` | gauge | streams with at least one local member |
//! | `cable_connections_opened_total` | counter | connections accepted at the WebSocket upgrade |
//! | `cable_app_broadcasts_total` | counter | broadcasts this node's app made (a perform's, a dialect's, a control endpoint's) |
//! | `cable_broadcasts_delivered_total` | counter | broadcasts this node delivered to its members: its app's without Redis, else what Redis brought (every node's app broadcasts, its own included, and other publishers'), and `/_broadcast`'s |
//! | `cable_deliveries_total` | counter | broadcast frames queued for connections |
//! | `cable_broadcast_frames_dropped_total{reason}` | counter | members a broadcast skipped: `too_large` for a connection's queue, `invalid_json` |
//! | `cable_frames_refused_total` | counter | client frames the core refused (bad JSON, unknown command, ...) |
//! | `cable_disconnects_total{reason}` | counter | connections the server closed, by Action Cable reason |
//! | `cable_slow_clients_cut_total` | counter | connections cut with `too_slow` |
//! | `cable_app_broadcasts_dropped_total` | counter | app broadcasts refused for Redis: the publish queue was full |
//! | `cable_redis_publishes_total` / `cable_redis_publish_failures_total` | counter | `PUBLISH`es of app broadcasts, and those that failed |
//! | `cable_redis_connected` | gauge | 1 while the subscriber is connected to Redis |
//! | `cable_redis_reconnects_total` | counter | subscriber connections after the first |
//! | `cable_rpc_calls_total{method,outcome}` | counter | RPC calls to the backend (outcome `dropped`: a disconnect call the full backlog refused) |
//! | `cable_rpc_duration_seconds{method}` | histogram | their latency |
//! | `process_resident_memory_bytes` | gauge | resident memory of the process |

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The core's state, read when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreGauges {
    /// Open connections.
    pub connections: usize,
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Streams with local members.
    pub streams: usize,
}

/// Every metric of one server (two servers in one process count apart).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    connections: IntGauge,
    subscriptions: IntGauge,
    streams: IntGauge,
    resident_memory: IntGauge,
    pub(crate) connections_opened: IntCounter,
    pub(crate) app_broadcasts: IntCounter,
    pub(crate) broadcasts_delivered: IntCounter,
    pub(crate) deliveries: IntCounter,
    pub(crate) broadcast_frames_dropped: IntCounterVec,
    pub(crate) frames_refused: IntCounter,
    pub(crate) disconnects: IntCounterVec,
    pub(crate) slow_clients_cut: IntCounter,
    pub(crate) app_broadcasts_dropped: IntCounter,
    pub(crate) redis_publishes: IntCounter,
    pub(crate) redis_publish_failures: IntCounter,
    pub(crate) redis_connected: IntGauge,
    pub(crate) redis_reconnects: IntCounter,
    pub(crate) rpc_calls: IntCounterVec,
    pub(crate) rpc_duration: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("a valid metric name");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("a valid metric name");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric name");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let r = Registry::new();
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "cable_rpc_duration_seconds",
                "Latency of RPC calls to the backend",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method"],
        )
        .expect("a valid metric name");
        r.register(Box::new(rpc_duration.clone()))
            .expect("registered once");
        Self {
            connections: gauge(&r, "cable_connections", "Open connections"),
            subscriptions: gauge(&r, "cable_subscriptions", "Live subscriptions"),
            streams: gauge(&r, "cable_streams", "Streams with local members"),
            resident_memory: gauge(
                &r,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
            ),
            connections_opened: counter(
                &r,
                "cable_connections_opened_total",
                "Connections accepted at the upgrade",
            ),
            app_broadcasts: counter(
                &r,
                "cable_app_broadcasts_total",
                "Broadcasts made by this node's app",
            ),
            broadcasts_delivered: counter(
                &r,
                "cable_broadcasts_delivered_total",
                "Broadcasts delivered by this node",
            ),
            deliveries: counter(
                &r,
                "cable_deliveries_total",
                "Broadcast frames queued for connections",
            ),
            broadcast_frames_dropped: counter_vec(
                &r,
                "cable_broadcast_frames_dropped_total",
                "Members a broadcast skipped",
                &["reason"],
            ),
            frames_refused: counter(
                &r,
                "cable_frames_refused_total",
                "Client frames the core refused",
            ),
            disconnects: counter_vec(
                &r,
                "cable_disconnects_total",
                "Connections the server closed, by reason",
                &["reason"],
            ),
            slow_clients_cut: counter(
                &r,
                "cable_slow_clients_cut_total",
                "Connections cut with too_slow",
            ),
            app_broadcasts_dropped: counter(
                &r,
                "cable_app_broadcasts_dropped_total",
                "App broadcasts refused: the Redis publish queue was full",
            ),
            redis_publishes: counter(
                &r,
                "cable_redis_publishes_total",
                "PUBLISHes of app broadcasts to Redis",
            ),
            redis_publish_failures: counter(
                &r,
                "cable_redis_publish_failures_total",
                "PUBLISHes of app broadcasts that failed",
            ),
            redis_connected: gauge(
                &r,
                "cable_redis_connected",
                "1 while the Redis subscriber is connected",
            ),
            redis_reconnects: counter(
                &r,
                "cable_redis_reconnects_total",
                "Redis subscriber connections after the first",
            ),
            rpc_calls: counter_vec(
                &r,
                "cable_rpc_calls_total",
                "RPC calls to the backend",
                &["method", "outcome"],
            ),
            rpc_duration,
            registry: r,
        }
    }

    /// Records one RPC call of `method` that took `seconds` and ended in
    /// `outcome` (`ok`, `error`, `timeout`, ...).
    pub fn rpc_call(&self, method: &str, outcome: &str, seconds: f64) {
        self.rpc_calls.with_label_values(&[method, outcome]).inc();
        self.rpc_duration
            .with_label_values(&[method])
            .observe(seconds);
    }

    /// Counts one RPC call of `method` that was never made: the backlog
    /// of such calls was full (outcome `dropped`).
    pub fn rpc_dropped(&self, method: &str) {
        self.rpc_calls.with_label_values(&[method, "dropped"]).inc();
    }

    /// The histogram of one RPC method (for tests and embedders).
    pub fn rpc_duration(&self, method: &str) -> Histogram {
        self.rpc_duration.with_label_values(&[method])
    }

    /// The text exposition of every metric, the core's gauges set to `core`.
    pub fn render(&self, core: CoreGauges) -> String {
        self.connections.set(saturate(core.connections));
        self.subscriptions.set(saturate(core.subscriptions));
        self.streams.set(saturate(core.streams));
        if let Some(bytes) = resident_memory_bytes() {
            self.resident_memory.set(saturate(bytes));
        }
        let mut text = String::new();
        if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }
}

fn saturate(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The process' resident set, from `/proc/self/statm` (Linux); `None`
/// elsewhere.
fn resident_memory_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Linux's page size on the platforms we build for.
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::new();
        metrics.app_broadcasts.inc_by(3);
        metrics.slow_clients_cut.inc();
        metrics.rpc_call("connect", "ok", 0.003);
        metrics.rpc_dropped("disconnect");
        let text = metrics.render(CoreGauges {
            connections: 2,
            subscriptions: 5,
            streams: 1,
        });
        assert!(text.contains("# TYPE cable_connections gauge\ncable_connections 2\n"));
        assert!(text.contains("cable_subscriptions 5\n"));
        assert!(text.contains("cable_app_broadcasts_total 3\n"));
        assert!(text.contains("cable_slow_clients_cut_total 1\n"));
        assert!(text.contains("cable_rpc_calls_total{method=\"connect\",outcome=\"ok\"} 1\n"));
        assert!(
            text.contains("cable_rpc_duration_seconds_bucket{method=\"connect\",le=\"0.005\"} 1\n")
        );
        // A dropped call is counted, never timed.
        assert!(
            text.contains("cable_rpc_calls_total{method=\"disconnect\",outcome=\"dropped\"} 1\n")
        );
        assert!(!text.contains("cable_rpc_duration_seconds_count{method=\"disconnect\"}"));
        assert!(text.contains("process_resident_memory_bytes "));
        use prometheus::Encoder;
        assert!(CONTENT_TYPE.starts_with(TextEncoder::new().format_type()));
    }
}
