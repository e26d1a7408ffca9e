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

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::live::LiveTarget;
use crate::Error;

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

/// A small deterministic PRNG (SplitMix64): the same seed picks the same senders.
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The subscribe command for [`IDENTIFIER`].
pub fn subscribe_frame() -> String {
    serde_json::json!({"command": "subscribe", "identifier": IDENTIFIER}).to_string()
}

/// The `message` command asking for broadcast `id`:
/// `{"action":"broadcast","payload":{"sendTime":<ns>,"id":<id>,"padding":"xx.."}}` as the
/// JSON-encoded `data` string.
pub fn broadcast_frame(id: u64, send_time_ns: u64, padding: usize) -> String {
    let data = serde_json::json!({
        "action": "broadcast",
        "payload": {"sendTime": send_time_ns, "id": id, "padding": "x".repeat(padding)},
    });
    serde_json::json!({
        "command": "message",
        "identifier": IDENTIFIER,
        "data": data.to_string(),
    })
    .to_string()
}

/// A server frame that carries one of our broadcasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The broadcast's id.
    pub id: u64,
    /// It is the sender's `broadcastResult`, not the `bench_all` delivery.
    pub result: bool,
}

/// Recognises a broadcast in a server frame by string search: the first `"id":` followed
/// by digits after `"message":`, and whether `"broadcastResult"` appears. Welcome, pings,
/// confirmations and anything else give `None`.
pub fn parse_delivery(frame: &str) -> Option<Delivery> {
    let message = frame.find(r#""message":"#)?;
    let rest = &frame[message..];
    let at = rest.find(r#""id":"#)? + r#""id":"#.len();
    let digits = rest[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let id = digits[..end].parse().ok()?;
    Some(Delivery {
        id,
        result: rest.contains(r#""broadcastResult""#),
    })
}

/// The resident memory of process `pid` in KiB (VmRSS of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the readers share with the coordinator.
struct Shared {
    /// One bit per (client, broadcast id): delivered on `bench_all`.
    bits: Vec<AtomicU64>,
    samples: usize,
    /// Warm-up broadcasts (ids after the measured ones).
    warmup: usize,
    deliveries: AtomicU64,
    warmup_deliveries: AtomicU64,
    duplicates: AtomicU64,
    /// Nanoseconds since `t0` of the latest delivery.
    last_delivery_ns: AtomicU64,
    disconnected: AtomicUsize,
    resubscribes: AtomicUsize,
    t0: Instant,
}

impl Shared {
    fn deliver(&self, client: usize, id: u64) {
        if id >= self.samples as u64 {
            if id < (self.samples + self.warmup) as u64 {
                self.warmup_deliveries.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let bit = client * self.samples + id as usize;
        let mask = 1u64 << (bit % 64);
        if self.bits[bit / 64].fetch_or(mask, Ordering::Relaxed) & mask == 0 {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
            let ns = self.t0.elapsed().as_nanos() as u64;
            self.last_delivery_ns.fetch_max(ns, Ordering::Relaxed);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

type Ws = WebSocketStream<TcpStream>;
type Sink = SplitSink<Ws, Message>;

/// A `broadcastResult`: (sender, id, arrival).
type ResultMsg = (usize, u64, Instant);

struct Client {
    index: usize,
    sink: Sink,
    reader: JoinHandle<()>,
}

/// How long a client waits for its confirmation before subscribing again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(3);

fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE (24): this process; ENFILE (23): the system.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Why one client could not join.
enum JoinError {
    /// Out of file descriptors: stop the run.
    Fatal(String),
    /// Anything else: count it.
    Failed(String),
}

async fn read_text(stream: &mut SplitStream<Ws>) -> Result<String, String> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(c))) => return Err(format!("closed by the server: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed".into()),
        }
    }
}

async fn join_one(
    index: usize,
    opts: &ShootoutOptions,
    shared: Arc<Shared>,
    results: mpsc::UnboundedSender<ResultMsg>,
) -> Result<Client, JoinError> {
    let target = &opts.target;
    let tcp = match TcpStream::connect((target.ip, target.port)).await {
        Ok(tcp) => tcp,
        Err(e) if is_fd_exhaustion(&e) => {
            return Err(JoinError::Fatal(format!(
                "out of file descriptors after {index} connections ({e}): raise the limit, \
                 e.g. `ulimit -n 65536` (see `ulimit -Hn`)"
            )))
        }
        Err(e) => return Err(JoinError::Failed(format!("connect: {e}"))),
    };
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{}{}", target.authority, target.path);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| JoinError::Failed(format!("request: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("actioncable-v1-json"),
    );
    if let Ok(origin) = HeaderValue::from_str(&format!("http://{}", target.authority)) {
        headers.insert("Origin", origin);
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(client_config()))
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Io(io) if is_fd_exhaustion(&io) => {
                JoinError::Fatal(format!("out of file descriptors: {io}"))
            }
            e => JoinError::Failed(format!("handshake: {e}")),
        })?;
    let (mut sink, mut stream) = ws.split();
    // As the Rails JS client: subscribe once welcomed, and subscribe again while no
    // confirmation comes (its SubscriptionGuarantor; the server ignores duplicates).
    loop {
        let frame = read_text(&mut stream).await.map_err(JoinError::Failed)?;
        if frame.contains(r#""type":"welcome""#) {
            break;
        }
        if frame.contains(r#""type":"disconnect""#) {
            return Err(JoinError::Failed(format!("refused: {frame}")));
        }
    }
    let subscribe = subscribe_frame();
    loop {
        sink.send(Message::text(subscribe.as_str()))
            .await
            .map_err(|e| JoinError::Failed(format!("subscribe: {e}")))?;
        let confirmed = timeout(RESUBSCRIBE_AFTER, async {
            loop {
                let frame = read_text(&mut stream).await?;
                if frame.contains("confirm_subscription") {
                    return Ok(());
                }
                if frame.contains("reject_subscription") || frame.contains(r#""type":"disconnect""#)
                {
                    return Err(format!("refused: {frame}"));
                }
            }
        })
        .await;
        match confirmed {
            Ok(Ok(())) => break,
            Ok(Err(e)) => return Err(JoinError::Failed(e)),
            Err(_) => {
                shared.resubscribes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let reader = tokio::spawn(read_loop(index, stream, shared, results));
    Ok(Client {
        index,
        sink,
        reader,
    })
}

async fn read_loop(
    index: usize,
    mut stream: SplitStream<Ws>,
    shared: Arc<Shared>,
    results: mpsc::UnboundedSender<ResultMsg>,
) {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => {
                if let Some(d) = parse_delivery(text.as_str()) {
                    if d.result {
                        let _ = results.send((index, d.id, Instant::now()));
                    } else {
                        shared.deliver(index, d.id);
                    }
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    shared.disconnected.fetch_add(1, Ordering::Relaxed);
}

/// Connects and subscribes the clients; returns the ones confirmed.
async fn join_all(
    opts: &ShootoutOptions,
    shared: &Arc<Shared>,
    results: &mpsc::UnboundedSender<ResultMsg>,
    deadline: Instant,
    report: &mut ShootoutReport,
) -> Result<Vec<Client>, Error> {
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let opts_arc = Arc::new(opts.clone());
    let mut tasks = Vec::with_capacity(opts.clients);
    for index in 0..opts.clients {
        let permits = permits.clone();
        let opts = opts_arc.clone();
        let shared = shared.clone();
        let results = results.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.ok()?;
            let joined = timeout(
                opts.connect_timeout,
                join_one(index, &opts, shared, results),
            )
            .await;
            Some(match joined {
                Ok(r) => r,
                Err(_) => Err(JoinError::Failed(format!(
                    "not connected and confirmed within {:?}",
                    opts.connect_timeout
                ))),
            })
        }));
    }
    let mut clients = Vec::with_capacity(opts.clients);
    let mut fatal = None;
    for task in tasks {
        let outcome = match timeout_at(deadline, task).await {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) | Ok(Err(_)) => Err(JoinError::Failed("task failed".into())),
            Err(_) => {
                report.timed_out = true;
                Err(JoinError::Failed("overall timeout".into()))
            }
        };
        match outcome {
            Ok(c) => clients.push(c),
            Err(JoinError::Fatal(e)) => {
                report.connect_failures += 1;
                fatal.get_or_insert(e);
            }
            Err(JoinError::Failed(e)) => {
                report.connect_failures += 1;
                report.first_connect_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = fatal {
        for c in clients {
            c.reader.abort();
        }
        return Err(Error::Live(e));
    }
    Ok(clients)
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

/// What one round of broadcasts measured.
#[derive(Default)]
struct Round {
    rtts: Vec<f64>,
    sent: usize,
    send_errors: usize,
    lost: usize,
    timed_out: bool,
    first_send: Option<Instant>,
}

/// Sends the broadcasts `ids`, `opts.concurrent` in flight, and collects their results.
async fn round(
    opts: &ShootoutOptions,
    clients: &mut [Client],
    prng: &mut Prng,
    results_rx: &mut mpsc::UnboundedReceiver<ResultMsg>,
    ids: std::ops::Range<u64>,
    deadline: Instant,
) -> Round {
    let mut out = Round {
        rtts: Vec::with_capacity(ids.clone().count()),
        ..Round::default()
    };
    let concurrent = opts.concurrent.max(1);
    // id -> (sender, sent at)
    let mut pending: BTreeMap<u64, (usize, Instant)> = BTreeMap::new();
    let mut next_id = ids.start;
    'run: while next_id < ids.end || !pending.is_empty() {
        while pending.len() < concurrent && next_id < ids.end {
            let id = next_id;
            next_id += 1;
            let client = &mut clients[prng.below(clients.len())];
            let send_time_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let frame = broadcast_frame(id, send_time_ns, opts.payload_padding);
            let sent_at = Instant::now();
            out.first_send.get_or_insert(sent_at);
            match timeout(
                Duration::from_secs(5),
                client.sink.send(Message::text(frame)),
            )
            .await
            {
                Ok(Ok(())) => {
                    out.sent += 1;
                    pending.insert(id, (client.index, sent_at));
                }
                _ => out.send_errors += 1,
            }
        }
        if pending.is_empty() {
            continue;
        }
        let oldest = pending
            .values()
            .map(|&(_, at)| at)
            .min()
            .unwrap_or(deadline);
        let wake = (oldest + opts.sample_timeout).min(deadline);
        tokio::select! {
            got = results_rx.recv() => {
                let Some((sender, id, at)) = got else { break 'run };
                if pending.get(&id).is_some_and(|&(expected, _)| expected == sender) {
                    if let Some((_, sent_at)) = pending.remove(&id) {
                        out.rtts.push(at.duration_since(sent_at).as_secs_f64() * 1000.0);
                    }
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    out.timed_out = true;
                    break 'run;
                }
                let now = Instant::now();
                let before = pending.len();
                pending.retain(|_, &mut (_, at)| now.duration_since(at) < opts.sample_timeout);
                out.lost += before - pending.len();
            }
        }
    }
    out.lost += pending.len();
    out
}

/// Waits until `counter` reaches `target` or `until`; whether it did.
async fn drain(counter: &AtomicU64, target: u64, until: Instant) -> bool {
    loop {
        if counter.load(Ordering::Relaxed) >= target {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn broadcast_phase(
    opts: &ShootoutOptions,
    clients: &mut [Client],
    shared: &Shared,
    results_rx: &mut mpsc::UnboundedReceiver<ResultMsg>,
    deadline: Instant,
    report: &mut ShootoutReport,
) {
    let mut prng = Prng::new(opts.seed);
    let k = opts.samples as u64;
    let receivers = clients.len() as u64;
    if opts.warmup > 0 {
        // Ids after the measured ones: their deliveries are counted apart.
        let warm = round(
            opts,
            clients,
            &mut prng,
            results_rx,
            k..k + opts.warmup as u64,
            deadline,
        )
        .await;
        let until = (Instant::now() + opts.drain).min(deadline);
        drain(
            &shared.warmup_deliveries,
            warm.sent as u64 * receivers,
            until,
        )
        .await;
        if warm.timed_out {
            report.timed_out = true;
            return;
        }
    }
    let measured = round(opts, clients, &mut prng, results_rx, 0..k, deadline).await;
    report.timed_out |= measured.timed_out;
    report.sent = measured.sent;
    report.send_errors = measured.send_errors;
    report.lost_results = measured.lost;
    report.results = measured.rtts.len();
    report.rtt_ms = Latency::of(&measured.rtts);

    report.expected_deliveries = report.sent as u64 * receivers;
    let until = (Instant::now() + opts.drain).min(deadline);
    let complete = drain(&shared.deliveries, report.expected_deliveries, until).await;
    if !complete && Instant::now() >= deadline {
        report.timed_out = true;
    }
    report.deliveries = shared.deliveries.load(Ordering::Relaxed);
    report.duplicates = shared.duplicates.load(Ordering::Relaxed);
    report.missing = report.expected_deliveries.saturating_sub(report.deliveries);
    if let Some(first) = measured.first_send {
        let last =
            shared.t0 + Duration::from_nanos(shared.last_delivery_ns.load(Ordering::Relaxed));
        let span = last.saturating_duration_since(first).as_secs_f64();
        report.broadcast_ms = span * 1000.0;
        if span > 0.0 {
            report.deliveries_per_s = Some(report.deliveries as f64 / span);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 95.0), Some(10.0));
        assert_eq!(percentile(&ten, 50.0), Some(5.0));
    }

    #[test]
    fn latency_summary_sorts() {
        let l = Latency::of(&[3.0, 1.0, 2.0, 4.0]);
        assert_eq!(l.p50, Some(2.0));
        assert_eq!(l.min, Some(1.0));
        assert_eq!(l.max, Some(4.0));
        assert_eq!(l.mean, Some(2.5));
        assert_eq!(Latency::of(&[]), Latency::default());
    }

    #[test]
    fn prng_is_deterministic_and_in_range() {
        let a: Vec<u64> = {
            let mut p = Prng::new(42);
            (0..5).map(|_| p.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut p = Prng::new(42);
            (0..5).map(|_| p.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, {
            let mut p = Prng::new(43);
            (0..5).map(|_| p.next_u64()).collect::<Vec<_>>()
        });
        // SplitMix64's published first output for seed 0.
        assert_eq!(Prng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let mut p = Prng::new(7);
        let mut seen = [0usize; 10];
        for _ in 0..10_000 {
            seen[p.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800 && n < 1200), "{seen:?}");
    }

    #[test]
    fn frames_are_what_the_js_client_sends() {
        assert_eq!(
            subscribe_frame(),
            r#"{"command":"subscribe","identifier":"{\"channel\":\"BenchmarkChannel\"}"}"#
        );
        assert_eq!(
            broadcast_frame(3, 1234, 4),
            r#"{"command":"message","identifier":"{\"channel\":\"BenchmarkChannel\"}","data":"{\"action\":\"broadcast\",\"payload\":{\"sendTime\":1234,\"id\":3,\"padding\":\"xxxx\"}}"}"#
        );
    }

    #[test]
    fn recognises_deliveries_and_results() {
        let id = r#""{\"channel\":\"BenchmarkChannel\"}""#;
        let delivery = format!(
            r#"{{"identifier":{id},"message":{{"action":"broadcast","payload":{{"sendTime":99,"id":17,"padding":"xx"}}}}}}"#
        );
        assert_eq!(
            parse_delivery(&delivery),
            Some(Delivery {
                id: 17,
                result: false
            })
        );
        let result = delivery.replace(r#""broadcast""#, r#""broadcastResult""#);
        assert_eq!(
            parse_delivery(&result),
            Some(Delivery {
                id: 17,
                result: true
            })
        );
        assert_eq!(parse_delivery(r#"{"type":"welcome"}"#), None);
        assert_eq!(
            parse_delivery(r#"{"type":"ping","message":1700000000}"#),
            None
        );
        assert_eq!(
            parse_delivery(&format!(
                r#"{{"identifier":{id},"type":"confirm_subscription"}}"#
            )),
            None
        );
        // The frame the floor builds from our own command is recognised too.
        let floor = crate::floor::reply_to(&broadcast_frame(5, 1, 3));
        let Some(crate::floor::Reply::Broadcast { all, result }) = floor else {
            panic!("{floor:?}");
        };
        assert_eq!(
            parse_delivery(&all),
            Some(Delivery {
                id: 5,
                result: false
            })
        );
        assert_eq!(
            parse_delivery(&result),
            Some(Delivery {
                id: 5,
                result: true
            })
        );
    }

    #[test]
    fn rss_of_this_process() {
        let kib = rss_kib(std::process::id()).expect("VmRSS of self");
        assert!(kib > 100);
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
