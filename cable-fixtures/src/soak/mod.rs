//! The soak harness (`cable-fixtures soak`): minutes of mixed load with
//! faults against the reference app (cable-server, or the Rails reference
//! server for comparison), and a verdict on one line.
//!
//! The run, `T` seconds long:
//! - **Healthy clients** the whole time: producers `speak` numbered messages
//!   (`"<producer>:<seq>"`) to the `soak` room at a steady rate and time
//!   the round trip of their own; subscribers of the room check every
//!   message by number ([`Tally`]): lost, duplicated, reordered (goal: 0),
//!   and none of them may be cut.
//! - **Faults** from `0.25 T` to `0.85 T`: connection churn (subscribe,
//!   read a little, leave with a close or a TCP reset), slow readers (a
//!   4 KiB receive buffer, subscribed to a firehose of large messages, not
//!   reading: the server must cut them with `too_slow`, and nobody else),
//!   garbage clients (bad JSON, unknown commands, binary frames, frames over
//!   the server's limit, floods of commands, bytes that are not WebSocket
//!   frames). With `--redis`: two cable-server nodes on a redis-server of
//!   the soak's own, clients spread over both, and a redis-server restart at
//!   `0.55 T`; messages sent from the restart until both nodes report Redis
//!   back (`cable_redis_connected`) and one more second are counted apart
//!   (Redis pub/sub keeps nothing for a subscriber that is away).
//! - Round trips in two histograms (`hdrhistogram`): sent outside the faults
//!   window and inside it; the p95 change is reported.
//! - The server's resident memory every second (`--pid`, else its
//!   `/metrics`): warm (before the faults), peak (during), end (after every
//!   client left).
//! - The server's `/metrics`, when it serves them, scraped before and after:
//!   its count of app broadcasts must equal the messages sent, its count of
//!   slow clients cut the cuts the slow readers saw, its deliveries at least
//!   what the healthy clients received, and its connections back to 0.
//!
//! The last line printed is the summary, `lost L, duplicated D, reordered R,
//! ...`; the exit code is non-zero when anything of [`SoakReport::passed`]
//! fails.

mod faults;
mod healthy;
mod nodes;
mod redis;
mod report;
mod tally;
mod wire;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use faults::FaultCounts;
pub use nodes::{sibling_server_binary, Node};
pub use redis::{RedisServer, RedisServerError};
pub use report::{parse_metrics, FaultFigures, MemoryFigures, Percentiles, Scrape, SoakReport};
pub use tally::{parse_text, Counts, Tally};
pub use wire::Endpoint;

use healthy::{latency_histogram, Run};

use crate::live::LiveTarget;
use crate::Error;

/// `cable-fixtures soak`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// The server, `ws://127.0.0.1:PORT/cable` (loopback only), running the
    /// reference app; repeat for several nodes of one cluster.
    #[arg(long, required_unless_present = "redis")]
    pub url: Vec<String>,
    /// Start a redis-server and two cable-server nodes on it (the reference
    /// app), and restart redis-server mid-run.
    #[arg(long, conflicts_with = "url")]
    pub redis: bool,
    /// With --redis: the cable-server binary (default: the one beside this
    /// binary).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// With --redis: one more argument for every node (repeat).
    #[arg(long, allow_hyphen_values = true)]
    pub node_arg: Vec<String>,
    /// With --redis: redis-server's port (0: a free one).
    #[arg(long, default_value_t = 0)]
    pub redis_port: u16,
    /// How long the producers send, seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Subscribers checking every message.
    #[arg(long, default_value_t = 16)]
    pub subscribers: usize,
    /// Producers (each also checks every message, and times its own).
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Messages per second of each producer.
    #[arg(long, default_value_t = 25.0)]
    pub rate: f64,
    /// Churning clients (at a time).
    #[arg(long, default_value_t = 6)]
    pub churners: usize,
    /// Slow readers (at a time).
    #[arg(long, default_value_t = 3)]
    pub slow_readers: usize,
    /// Garbage clients (at a time).
    #[arg(long, default_value_t = 3)]
    pub garbage_clients: usize,
    /// No faults: healthy clients only.
    #[arg(long)]
    pub no_faults: bool,
    /// Bytes of each firehose message.
    #[arg(long, default_value_t = 32 * 1024)]
    pub firehose_bytes: usize,
    /// Firehose messages per second.
    #[arg(long, default_value_t = 50.0)]
    pub firehose_rate: f64,
    /// How long a slow reader stops reading, ms.
    #[arg(long, default_value_t = 8_000)]
    pub slow_stall_ms: u64,
    /// Bytes of an oversized frame (over cable-server's 64 KiB default).
    #[arg(long, default_value_t = 128 * 1024)]
    pub oversized_bytes: usize,
    /// After the producers stop, how long the clients still read, ms.
    #[arg(long, default_value_t = 3_000)]
    pub drain_ms: u64,
    /// The server's process id, for its memory (repeat for several).
    #[arg(long)]
    pub pid: Vec<u32>,
    /// Fail unless the server cut every slow reader (cable-server does;
    /// Rails 6.1 never cuts a client).
    #[arg(long)]
    pub expect_slow_cut: bool,
    /// Worker threads of the harness (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the soak of `args`; prints the report and the summary line last;
/// returns whether it passed.
pub fn main(args: SoakArgs) -> Result<bool, Error> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let rt = builder
        .enable_all()
        .build()
        .map_err(|e| Error::Live(format!("cannot start the runtime: {e}")))?;
    let mut cluster = None;
    let (endpoints, pids) = if args.redis {
        let binary = match &args.server_bin {
            Some(path) => path.clone(),
            None => sibling_server_binary().ok_or_else(|| {
                Error::Usage(
                    "--redis: no cable-server beside this binary; give --server-bin".into(),
                )
            })?,
        };
        let redis = RedisServer::start(args.redis_port).map_err(|e| Error::Live(e.to_string()))?;
        let nodes = (0..2)
            .map(|_| Node::start(&binary, &redis, &args.node_arg))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Live)?;
        let endpoints: Vec<Endpoint> = nodes.iter().map(Node::endpoint).collect();
        let pids = nodes.iter().map(Node::pid).collect();
        cluster = Some(Cluster { redis, nodes });
        (endpoints, pids)
    } else {
        let endpoints = args
            .url
            .iter()
            .map(|u| LiveTarget::parse(u).map(|t| Endpoint::of(&t)))
            .collect::<Result<Vec<_>, _>>()?;
        (endpoints, args.pid.clone())
    };
    let cluster = Arc::new(Mutex::new(cluster));
    let report = rt.block_on(run(&args, endpoints, pids, Arc::clone(&cluster)));
    // Stop the nodes and redis-server before the summary, so that it is
    // the last line.
    if let Ok(mut cluster) = cluster.lock() {
        cluster.take();
    }
    if !report.memory_series.is_empty() {
        println!("{}", report.memory_line());
    }
    for why in &report.healthy_cut {
        println!("healthy client cut: {why}");
    }
    println!("{}", report.summary());
    Ok(report.passed())
}

/// redis-server and the nodes of `--redis`.
struct Cluster {
    // Dropped in this order: the nodes first, then redis-server.
    nodes: Vec<Node>,
    redis: RedisServer,
}

/// The resident memory of the server now, KiB: from `pids`, else from each
/// endpoint's `/metrics`.
async fn memory_now(pids: &[u32], endpoints: &[Endpoint]) -> Option<u64> {
    if !pids.is_empty() {
        return pids.iter().map(|&p| report::rss_kib(p)).sum();
    }
    let mut total = 0.0;
    for endpoint in endpoints {
        let scrape = report::scrape(endpoint.addr, &endpoint.authority).await?;
        total += scrape.get("process_resident_memory_bytes")?;
    }
    Some((total / 1024.0) as u64)
}

async fn scrape_all(endpoints: &[Endpoint]) -> Option<Vec<Scrape>> {
    let mut out = Vec::new();
    for endpoint in endpoints {
        out.push(report::scrape(endpoint.addr, &endpoint.authority).await?);
    }
    Some(out)
}

fn total(scrapes: &[Scrape], name: &str) -> f64 {
    scrapes.iter().filter_map(|s| s.get(name)).sum()
}

/// One soak run against `endpoints`.
async fn run(
    args: &SoakArgs,
    endpoints: Vec<Endpoint>,
    pids: Vec<u32>,
    cluster: Arc<Mutex<Option<Cluster>>>,
) -> SoakReport {
    let endpoints = Arc::new(endpoints);
    let before = scrape_all(&endpoints).await;
    let start = Instant::now();
    let t = Duration::from_secs(args.seconds.max(1));
    let faults = !args.no_faults;
    let run = Arc::new(Run {
        faults_from: start + t.mul_f64(0.25),
        faults_until: if faults {
            start + t.mul_f64(0.85)
        } else {
            start + t.mul_f64(0.25)
        },
        end: start + t,
        close: start + t + Duration::from_millis(args.drain_ms),
        send_times: (0..args.producers)
            .map(|_| Mutex::new(Vec::new()))
            .collect(),
        outages: Mutex::new(Vec::new()),
        rtt_quiet: Mutex::new(latency_histogram()),
        rtt_faults: Mutex::new(latency_histogram()),
        healthy_cut: Mutex::new(Vec::new()),
        firehose_sent: Default::default(),
        server_gone: Default::default(),
        subscribed: tokio::sync::Barrier::new(args.producers + args.subscribers),
    });
    let counts = Arc::new(FaultCounts::default());
    let mut healthy = Vec::new();
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.01));
    for k in 0..args.producers {
        let (run, endpoints) = (Arc::clone(&run), Arc::clone(&endpoints));
        healthy.push(tokio::spawn(async move {
            healthy::producer(&run, &endpoints[k % endpoints.len()], k, period).await
        }));
    }
    for i in 0..args.subscribers {
        let (run, endpoints) = (Arc::clone(&run), Arc::clone(&endpoints));
        healthy.push(tokio::spawn(async move {
            healthy::subscriber(&run, &endpoints[i % endpoints.len()], i).await
        }));
    }
    let mut others = Vec::new();
    if faults {
        if args.slow_readers > 0 {
            let (run, endpoints) = (Arc::clone(&run), Arc::clone(&endpoints));
            let (bytes, period) = (
                args.firehose_bytes,
                Duration::from_secs_f64(1.0 / args.firehose_rate.max(0.01)),
            );
            others.push(tokio::spawn(async move {
                healthy::firehose(&run, &endpoints[0], bytes, period).await
            }));
        }
        for i in 0..args.churners {
            let (run, endpoints, counts) = (
                Arc::clone(&run),
                Arc::clone(&endpoints),
                Arc::clone(&counts),
            );
            others.push(tokio::spawn(async move {
                faults::churner(&run, &endpoints, i, &counts).await
            }));
        }
        let stall = Duration::from_millis(args.slow_stall_ms);
        for i in 0..args.slow_readers {
            let (run, endpoints, counts) = (
                Arc::clone(&run),
                Arc::clone(&endpoints),
                Arc::clone(&counts),
            );
            others.push(tokio::spawn(async move {
                faults::slow_reader(&run, &endpoints, i, stall, &counts).await
            }));
        }
        for i in 0..args.garbage_clients {
            let (run, endpoints, counts) = (
                Arc::clone(&run),
                Arc::clone(&endpoints),
                Arc::clone(&counts),
            );
            let oversized = args.oversized_bytes;
            others.push(tokio::spawn(async move {
                faults::garbage(&run, &endpoints, i, oversized, &counts).await
            }));
        }
    }
    let mut redis_restarts = 0;
    let has_cluster = cluster.lock().map(|c| c.is_some()).unwrap_or(false);
    let restart = async {
        if !(faults && has_cluster) {
            return 0;
        }
        tokio::time::sleep_until(start + t.mul_f64(0.55)).await;
        let reconnects = |s: &Scrape| {
            s.get("cable_redis_reconnects_total")
                .copied()
                .unwrap_or(0.0)
        };
        let before_restart: Vec<f64> = scrape_all(&endpoints)
            .await
            .map(|s| s.iter().map(reconnects).collect())
            .unwrap_or_default();
        let from = Instant::now();
        let cluster = Arc::clone(&cluster);
        let restarted = tokio::task::spawn_blocking(move || {
            let mut guard = cluster.lock().ok()?;
            let cluster = guard.as_mut()?;
            cluster.redis.stop();
            std::thread::sleep(Duration::from_millis(500));
            cluster.redis.restart().ok()
        })
        .await
        .ok()
        .flatten()
        .is_some();
        // Back once every node's subscriber has connected again.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(scrapes) = scrape_all(&endpoints).await {
                let back = scrapes.iter().enumerate().all(|(i, s)| {
                    s.get("cable_redis_connected") == Some(&1.0)
                        && reconnects(s) > before_restart.get(i).copied().unwrap_or(0.0)
                });
                if back {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(mut outages) = run.outages.lock() {
            outages.push((from, Instant::now()));
        }
        u64::from(restarted)
    };
    // Memory every second until the clients stop reading.
    let sampler = async {
        let mut samples: Vec<(Instant, u64)> = Vec::new();
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        while Instant::now() < run.close {
            ticks.tick().await;
            if let Some(kib) = memory_now(&pids, &endpoints).await {
                samples.push((Instant::now(), kib));
            }
        }
        samples
    };
    let (restarts, samples) = tokio::join!(restart, sampler);
    redis_restarts += restarts;

    let mut counts_total = Counts::default();
    let sent = run.sent();
    for task in healthy {
        if let Ok(tally) = task.await {
            counts_total.add(&tally.finish(&sent, |p, s| run.in_outage(p, s)));
        }
    }
    for task in others {
        let _ = task.await;
    }

    // Still there? A fresh client subscribes on every node.
    let mut server_alive = !run.server_gone.load(Ordering::Relaxed);
    for endpoint in endpoints.iter() {
        let ok = match endpoint.connect("alive", None).await {
            Ok(mut ws) => {
                let ok = wire::subscribe(&mut ws, &wire::chat_identifier("alive"))
                    .await
                    .is_ok();
                let _ = ws.close(None).await;
                ok
            }
            Err(_) => false,
        };
        server_alive &= ok;
    }
    if let Ok(mut cluster) = cluster.lock() {
        if let Some(cluster) = cluster.as_mut() {
            server_alive &= !cluster.nodes.iter_mut().any(Node::exited);
        }
    }
    server_alive &= pids
        .iter()
        .all(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());

    // The server's view, once every connection is gone.
    let mut after = None;
    if before.is_some() {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            after = scrape_all(&endpoints).await;
            let idle = after
                .as_ref()
                .is_some_and(|s| total(s, "cable_connections") == 0.0);
            if idle || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let memory_end = memory_now(&pids, &endpoints).await;

    let faults_figures = FaultFigures {
        churn: (
            counts.churn_connections.load(Ordering::Relaxed),
            counts.churn_resets.load(Ordering::Relaxed),
        ),
        slow: (
            counts.slow_readers.load(Ordering::Relaxed),
            counts.slow_cut.load(Ordering::Relaxed),
            counts.slow_cut_too_slow.load(Ordering::Relaxed),
        ),
        garbage_sessions: counts.garbage_sessions.load(Ordering::Relaxed),
        connect_failures: counts.connect_failures.load(Ordering::Relaxed),
    };
    let metrics = match (&before, &after) {
        (Some(before), Some(after)) => Some(cross_check(
            before,
            after,
            sent.iter().sum::<u64>() + run.firehose_sent.load(Ordering::Relaxed),
            faults_figures.slow.1,
            counts_total.received,
        )),
        (Some(_), None) => Some(vec!["/metrics stopped answering".to_owned()]),
        _ => None,
    };
    let warm = samples
        .iter()
        .filter(|(at, _)| *at < run.faults_from)
        .map(|(_, k)| *k)
        .next_back();
    let peak = samples
        .iter()
        .filter(|(at, _)| *at >= run.faults_from && *at < run.faults_until)
        .map(|(_, k)| *k)
        .max();
    let report = SoakReport {
        seconds: args.seconds,
        healthy_clients: args.producers + args.subscribers,
        sent: sent.iter().sum(),
        counts: counts_total,
        healthy_cut: run
            .healthy_cut
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default(),
        rtt_quiet: run.rtt_quiet.lock().ok().and_then(|h| Percentiles::of(&h)),
        rtt_faults: run.rtt_faults.lock().ok().and_then(|h| Percentiles::of(&h)),
        faults: faults_figures,
        redis_restarts,
        memory: MemoryFigures {
            warm,
            peak,
            end: memory_end,
        },
        memory_series: samples.iter().map(|(_, k)| *k).collect(),
        server_alive,
        metrics,
        expect_slow_cut: args.expect_slow_cut,
    };
    report
}

/// The server's counters against the harness' own: mismatches, if any.
fn cross_check(
    before: &[Scrape],
    after: &[Scrape],
    sent: u64,
    slow_cut: u64,
    received: u64,
) -> Vec<String> {
    let delta = |name: &str| total(after, name) - total(before, name);
    let mut out = Vec::new();
    let app = delta("cable_app_broadcasts_total");
    if app != sent as f64 {
        out.push(format!(
            "cable_app_broadcasts_total +{app}, the clients sent {sent}"
        ));
    }
    let cut = delta("cable_slow_clients_cut_total");
    if cut != slow_cut as f64 {
        out.push(format!(
            "cable_slow_clients_cut_total +{cut}, the slow readers saw {slow_cut} cuts"
        ));
    }
    let deliveries = delta("cable_deliveries_total");
    if deliveries < received as f64 {
        out.push(format!(
            "cable_deliveries_total +{deliveries} < {received} received"
        ));
    }
    let connections = total(after, "cable_connections");
    if connections != 0.0 {
        out.push(format!(
            "cable_connections {connections} after every client left"
        ));
    }
    out
}
