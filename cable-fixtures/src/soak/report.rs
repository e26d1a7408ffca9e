//! What a soak run found: the counts of the healthy clients, their round
//! trips with and without the faults, the faulty clients' fate, the
//! server's memory over time, the server's own counters (`/metrics`), and
//! the one summary line with the verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::tally::Counts;

/// p50, p95 and p99 of a histogram, in microseconds (`None`: no sample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
}

impl Percentiles {
    /// Of `histogram`, or `None` when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| Self {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p95: histogram.value_at_quantile(0.95),
            p99: histogram.value_at_quantile(0.99),
        })
    }

    fn show(p: Option<Self>) -> String {
        match p {
            Some(p) => format!(
                "{:.2}/{:.2}/{:.2} ms",
                p.p50 as f64 / 1000.0,
                p.p95 as f64 / 1000.0,
                p.p99 as f64 / 1000.0
            ),
            None => "-".to_owned(),
        }
    }
}

/// The server's resident memory at the moments that matter, KiB (summed
/// over the nodes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryFigures {
    /// Once the healthy clients run, before the faults.
    pub warm: Option<u64>,
    /// The most during the faults.
    pub peak: Option<u64>,
    /// At the end, after the faults and a quiet tail.
    pub end: Option<u64>,
}

/// The faulty clients' numbers (see [`super::FaultCounts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultFigures {
    /// Churn connections, and how many ended with a TCP reset.
    pub churn: (u64, u64),
    /// Slow readers that stalled, were cut, and saw `too_slow`.
    pub slow: (u64, u64, u64),
    /// Garbage sessions (bad frames, binary, oversized, floods, raw bytes).
    pub garbage_sessions: u64,
    /// Faulty connections that could not open.
    pub connect_failures: u64,
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Seconds it ran (sending).
    pub seconds: u64,
    /// Healthy clients.
    pub healthy_clients: usize,
    /// Messages the producers sent.
    pub sent: u64,
    /// The healthy clients' counts, added up.
    pub counts: Counts,
    /// Healthy clients that were cut, and why.
    pub healthy_cut: Vec<String>,
    /// Round trips outside the faults window.
    pub rtt_quiet: Option<Percentiles>,
    /// Round trips inside it.
    pub rtt_faults: Option<Percentiles>,
    /// What the faulty clients did.
    pub faults: FaultFigures,
    /// Redis restarts done.
    pub redis_restarts: u64,
    /// The server's memory.
    pub memory: MemoryFigures,
    /// The server's memory every second, KiB.
    pub memory_series: Vec<u64>,
    /// Whether the server (every node) was still there at the end.
    pub server_alive: bool,
    /// The cross-check with the server's `/metrics`: `None` when it serves
    /// none (the Rails server), else mismatches (empty: they agree).
    pub metrics: Option<Vec<String>>,
    /// Whether every slow reader must have been cut (`--expect-slow-cut`).
    pub expect_slow_cut: bool,
}

impl SoakReport {
    /// The memory over time in about 20 points, MiB.
    pub fn memory_line(&self) -> String {
        let step = self.memory_series.len().div_ceil(20).max(1);
        let points: Vec<String> = self
            .memory_series
            .iter()
            .step_by(step)
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect();
        format!("server rss every {step} s, MiB: {}", points.join(" "))
    }

    /// Whether the run passed: nothing lost, duplicated or reordered, no
    /// healthy client cut, the server alive, the metrics in agreement and,
    /// when expected, every slow reader cut.
    pub fn passed(&self) -> bool {
        self.counts.lost == 0
            && self.counts.duplicated == 0
            && self.counts.reordered == 0
            && self.healthy_cut.is_empty()
            && self.server_alive
            && self.metrics.as_ref().is_none_or(Vec::is_empty)
            && (!self.expect_slow_cut || self.faults.slow.1 == self.faults.slow.0)
    }

    /// The one summary line.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut line = format!(
            "lost {}, duplicated {}, reordered {}, healthy cut {}, server {}",
            c.lost,
            c.duplicated,
            c.reordered,
            self.healthy_cut.len(),
            if self.server_alive { "alive" } else { "GONE" },
        );
        let (slow, cut, too_slow) = self.faults.slow;
        let _ = write!(
            line,
            ", slow readers cut {cut}/{slow} (too_slow seen {too_slow})"
        );
        if self.redis_restarts > 0 || c.lost_in_outage > 0 {
            let _ = write!(
                line,
                ", redis restarts {} (lost during them {})",
                self.redis_restarts, c.lost_in_outage
            );
        }
        let _ = write!(
            line,
            ", received {} of {}x{}, rtt p50/p95/p99 quiet {} faults {}",
            c.received,
            self.sent,
            self.healthy_clients,
            Percentiles::show(self.rtt_quiet),
            Percentiles::show(self.rtt_faults),
        );
        if let (Some(q), Some(f)) = (self.rtt_quiet, self.rtt_faults) {
            let change = (f.p95 as f64 / q.p95.max(1) as f64 - 1.0) * 100.0;
            let _ = write!(line, " (p95 {change:+.0}%)");
        }
        let mib =
            |k: Option<u64>| k.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        let _ = write!(
            line,
            ", rss warm/peak/end {}/{}/{} MiB",
            mib(self.memory.warm),
            mib(self.memory.peak),
            mib(self.memory.end)
        );
        let _ = write!(
            line,
            ", churn {} (resets {}), garbage sessions {}",
            self.faults.churn.0, self.faults.churn.1, self.faults.garbage_sessions
        );
        match &self.metrics {
            None => line.push_str(", metrics n/a"),
            Some(m) if m.is_empty() => line.push_str(", metrics agree"),
            Some(m) => {
                let _ = write!(line, ", METRICS DISAGREE: {}", m.join("; "));
            }
        }
        line
    }
}

/// A scrape of `GET /metrics`: each metric's value, summed over its labels.
pub type Scrape = BTreeMap<String, f64>;

/// Scrapes `http://addr/metrics`; `None` if it answers anything but 200.
pub async fn scrape(addr: SocketAddr, authority: &str) -> Option<Scrape> {
    let body = http_get(addr, authority, "/metrics").await?;
    Some(parse_metrics(&body))
}

/// Parses Prometheus' text format, summing each name over its labels.
pub fn parse_metrics(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let Ok(value) = value.parse::<f64>() {
            *out.entry(name.to_owned()).or_default() += value;
        }
    }
    out
}

async fn http_get(addr: SocketAddr, authority: &str, path: &str) -> Option<String> {
    let run = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    };
    timeout(Duration::from_secs(10), run).await.ok()?
}

/// The resident memory of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    crate::shootout::rss_kib(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text_summing_labels() {
        let text = "# HELP a x\n# TYPE a counter\na 3\nb{r=\"x\"} 2\nb{r=\"y\"} 5\nc 1.5e3\n";
        let scrape = parse_metrics(text);
        assert_eq!(scrape["a"], 3.0);
        assert_eq!(scrape["b"], 7.0);
        assert_eq!(scrape["c"], 1500.0);
    }

    #[test]
    fn the_verdict() {
        let mut report = SoakReport {
            server_alive: true,
            metrics: Some(vec![]),
            ..SoakReport::default()
        };
        assert!(report.passed());
        assert!(report
            .summary()
            .starts_with("lost 0, duplicated 0, reordered 0,"));
        report.counts.duplicated = 1;
        assert!(!report.passed());
        report.counts.duplicated = 0;
        report.metrics = Some(vec!["x".into()]);
        assert!(!report.passed());
        report.metrics = None;
        report.expect_slow_cut = true;
        report.faults.slow = (2, 1, 1);
        assert!(!report.passed());
        report.faults.slow = (2, 2, 2);
        assert!(report.passed());
        report.server_alive = false;
        assert!(!report.passed());
    }
}
