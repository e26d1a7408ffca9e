//! `cable-fixtures bench --quick`: the core's measurements, each beside its
//! baseline in the same run, as ratios.
//!
//! Every time measurement alternates rounds of ours and of the baseline
//! (so that a noisy neighbour hurts both alike) and reports the medians:
//!
//! - handling `subscribe` and `message` vs `serde_json::from_slice::<IgnoredAny>`
//!   of the same bytes (ns per command);
//! - broadcast fan-out to 1, 100, 10,000 and 100,000 subscribers of one
//!   identifier and of distinct identifiers, broadcast plus draining every
//!   transmit, vs a loop cloning one `Bytes` into a `Vec` (ns per recipient);
//! - a ping tick over 100,000 connections vs the same loop (ns per connection),
//!   and the same with every connection holding a credential deadline;
//! - bytes of core state per idle connection and per subscription, from the
//!   counting allocator the `cable-fixtures` binary installs ([`CountingAlloc`]);
//!   their baseline is the goal (128 bytes; 64 bytes plus the identifier).
//!
//! Each result is one JSON object per line:
//! `{"name":..,"value":..,"unit":..,"baseline":..,"ratio":..}`, ratio = ours / baseline.
//!
//! [`repeat_command`] (`cable-fixtures bench --repeat WORK --times N`) does
//! one command row's work, or its baseline's, N times and nothing else: run
//! under `valgrind --tool=callgrind` with two values of N, the difference of
//! the instruction counts over the difference of N is the count of one
//! command, the same on a loaded machine as on an idle one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cable_proto::server::{
    Config, ConnectionAccept, Event, Limits, PerformOutcome, Server, SubscriptionAccept,
};
use cable_proto::{ConnectionId, HandshakeRequest, Identity, OriginPolicy};
use serde::de::IgnoredAny;
use serde::Serialize;

/// One result line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// Ours.
    pub value: f64,
    /// The unit of `value` and `baseline`.
    pub unit: &'static str,
    /// The baseline measured in the same run (or, for memory, the goal).
    pub baseline: f64,
    /// `value / baseline`.
    pub ratio: f64,
}

impl Measurement {
    fn new(name: impl Into<String>, value: f64, unit: &'static str, baseline: f64) -> Self {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        Self {
            name: name.into(),
            value: round(value),
            unit,
            baseline: round(baseline),
            ratio: round(value / baseline),
        }
    }

    /// The JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How long each round of a time measurement runs, and how many rounds.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Time per round, for ours and for the baseline each.
    pub round: Duration,
    /// Rounds (the median is reported).
    pub rounds: usize,
    /// The largest fan-out measured.
    pub max_recipients: usize,
}

impl Budget {
    /// `--quick`: the whole run in well under 60 s on a small machine.
    pub fn quick() -> Self {
        Self {
            round: Duration::from_millis(40),
            rounds: 7,
            max_recipients: 100_000,
        }
    }

    /// Very short, for tests of the harness itself.
    pub fn smoke() -> Self {
        Self {
            round: Duration::from_millis(2),
            rounds: 3,
            max_recipients: 1_000,
        }
    }
}

/// Runs every measurement; `emit` gets each result as soon as it is known.
pub fn run(budget: Budget, mut emit: impl FnMut(&Measurement)) -> Vec<Measurement> {
    let mut all = Vec::new();
    let mut push = |m: Measurement| {
        emit(&m);
        all.push(m);
    };
    for m in commands(budget) {
        push(m);
    }
    for n in [1usize, 100, 10_000, 100_000] {
        if n > budget.max_recipients {
            break;
        }
        for distinct in [false, true] {
            push(fan_out(budget, n, distinct));
        }
    }
    push(ping_tick(budget, budget.max_recipients));
    push(ping_tick_with_deadlines(budget, budget.max_recipients));
    for m in state_size(budget.max_recipients.min(10_000)) {
        push(m);
    }
    // Reliable streams' history (AnyCable's extended protocol): 10,000
    // messages × 100 streams (fewer in the harness's own smoke run).
    let per_stream = if budget.max_recipients >= 100_000 {
        10_000
    } else {
        100
    };
    if let Some(m) = history_memory(per_stream, 100) {
        push(m);
    }
    all
}

// ---------------------------------------------------------------- timing

/// Runs `f` (which does `per_call` operations) repeatedly for about `round`
/// and returns ns per operation.
fn time_round(round: Duration, per_call: usize, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < round || calls == 0 {
        f();
        calls += 1;
    }
    start.elapsed().as_nanos() as f64 / (calls as f64 * per_call as f64)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Alternates rounds of `ours` and `base`; returns their medians (ns per op).
fn compare(
    budget: Budget,
    per_call: usize,
    ours: &mut dyn FnMut(),
    base: &mut dyn FnMut(),
) -> (f64, f64) {
    // One untimed call each: caches and lazily grown buffers.
    ours();
    base();
    let mut a = Vec::with_capacity(budget.rounds);
    let mut b = Vec::with_capacity(budget.rounds);
    for _ in 0..budget.rounds {
        a.push(time_round(budget.round, per_call, ours));
        b.push(time_round(budget.round, per_call, base));
    }
    (median(a), median(b))
}

// ---------------------------------------------------------------- fixtures

fn server() -> (Server, Instant) {
    let now = Instant::now();
    let config = Config {
        origins: OriginPolicy::allow_any(),
        limits: Limits {
            max_queued_bytes: usize::MAX,
            ..Limits::default()
        },
        ..Config::default()
    };
    (
        Server::new(config, now, Duration::from_secs(1_700_000_000)),
        now,
    )
}

fn drain(server: &mut Server) {
    while let Some(t) = server.poll_transmit() {
        black_box(t);
    }
}

fn connect(server: &mut Server, now: Instant, user: &str) -> ConnectionId {
    let incoming = server
        .handle_open(&HandshakeRequest::default(), now)
        .expect("allow_any");
    server
        .accept_connection(incoming.pending, Identity::new(user), now)
        .expect("fresh token");
    drain(server);
    incoming.connection
}

fn subscribe_frame(identifier: &str) -> String {
    format!(
        r#"{{"command":"subscribe","identifier":{}}}"#,
        serde_json::to_string(identifier).unwrap_or_default()
    )
}

fn subscribe(
    server: &mut Server,
    now: Instant,
    conn: ConnectionId,
    identifier: &str,
    stream: &str,
) {
    server
        .handle_text(conn, subscribe_frame(identifier).as_bytes(), now)
        .expect("live connection");
    while let Some(event) = server.poll_event() {
        if let Event::SubscriptionRequested { pending, .. } = event {
            server
                .accept_subscription(pending, SubscriptionAccept::new().stream(stream), now)
                .expect("fresh token");
        }
    }
    drain(server);
}

const CHAT: &str = r#"{"channel":"ChatChannel","room":"lobby"}"#;
const MESSAGE: &str = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}","data":"{\"text\":\"hello there, this is a chat message\",\"action\":\"speak\"}"}"#;
const PAYLOAD: &str = r#"{"text":"hello there, this is a chat message","from":"alice"}"#;

// ---------------------------------------------------------------- measurements

/// The command rows' scene: a connection of `alice` on a server where `bob`
/// already holds the identifier (as in a room with people in it).
struct CommandScene {
    server: Server,
    now: Instant,
    conn: ConnectionId,
    sub: String,
}

impl CommandScene {
    fn new() -> Self {
        let (mut server, now) = server();
        let other = connect(&mut server, now, "bob");
        subscribe(&mut server, now, other, CHAT, "chat_lobby");
        let conn = connect(&mut server, now, "alice");
        Self {
            server,
            now,
            conn,
            sub: subscribe_frame(CHAT),
        }
    }

    /// `subscribe` handled: the request, its decision (abandoned), cleanup.
    fn subscribe_once(&mut self) {
        let (server, now) = (&mut self.server, self.now);
        let _ = server.handle_text(self.conn, black_box(self.sub.as_bytes()), now);
        if let Some(Event::SubscriptionRequested { pending, .. }) = server.poll_event() {
            let _ = server.abandon_subscription(pending, now);
        }
    }

    /// Subscribes `alice`, for the `message` row.
    fn subscribed(mut self) -> Self {
        subscribe(&mut self.server, self.now, self.conn, CHAT, "chat_lobby");
        self
    }

    /// `message` handled to the `Perform` event, whose decision is answered
    /// at once with no effect.
    fn message_once(&mut self) {
        let (server, now) = (&mut self.server, self.now);
        let _ = server.handle_text(self.conn, black_box(MESSAGE.as_bytes()), now);
        if let Some(Event::Perform(perform)) = server.poll_event() {
            let _ = server.complete_perform(perform.pending, PerformOutcome::new(), now);
        }
    }
}

fn ignored_any(frame: &[u8]) {
    let _ = black_box(serde_json::from_slice::<IgnoredAny>(black_box(frame)));
}

fn commands(budget: Budget) -> Vec<Measurement> {
    let mut out = Vec::new();
    let mut scene = CommandScene::new();
    let sub = scene.sub.clone();
    let (ours, base) = compare(budget, 1, &mut || scene.subscribe_once(), &mut || {
        ignored_any(sub.as_bytes())
    });
    out.push(Measurement::new("command_subscribe", ours, "ns", base));
    let mut scene = scene.subscribed();
    let (ours, base) = compare(budget, 1, &mut || scene.message_once(), &mut || {
        ignored_any(MESSAGE.as_bytes())
    });
    out.push(Measurement::new("command_message", ours, "ns", base));
    out
}

/// One command row's work, for counting instructions
/// (`cable-fixtures bench --repeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandWork {
    /// `subscribe` handled, as in the `command_subscribe` row.
    Subscribe,
    /// `message` handled, as in the `command_message` row.
    Message,
    /// The `subscribe` row's baseline: `IgnoredAny` over its bytes.
    SubscribeBaseline,
    /// The `message` row's baseline: `IgnoredAny` over its bytes.
    MessageBaseline,
}

/// Sets the scene of a command row, then does its work `times` times and
/// nothing else: run under `valgrind --tool=callgrind` with two counts, the
/// difference of the totals divided by the difference of the counts is the
/// instructions of one command (setup cancels out).
pub fn repeat_command(work: CommandWork, times: u64) {
    let mut scene = CommandScene::new();
    if work == CommandWork::Message {
        scene = scene.subscribed();
    }
    let sub = scene.sub.clone();
    for _ in 0..times {
        match work {
            CommandWork::Subscribe => scene.subscribe_once(),
            CommandWork::Message => scene.message_once(),
            CommandWork::SubscribeBaseline => ignored_any(sub.as_bytes()),
            CommandWork::MessageBaseline => ignored_any(MESSAGE.as_bytes()),
        }
    }
}

/// The baseline of every fan-out: clone one `Bytes` into a `Vec`, `n` times.
fn clone_loop(n: usize) -> impl FnMut() {
    let frame = Bytes::from(vec![b'x'; 120]);
    let mut out: Vec<Bytes> = Vec::with_capacity(n);
    move || {
        for _ in 0..n {
            out.push(frame.clone());
        }
        black_box(&out);
        out.clear();
    }
}

/// A server with `n` connections subscribed to `chat_lobby`, with one
/// identifier or `n` distinct ones.
fn fan_out_scene(n: usize, distinct: bool) -> (Server, Instant) {
    let (mut server, now) = server();
    for i in 0..n {
        let conn = connect(&mut server, now, "u");
        let id = if distinct {
            format!(r#"{{"channel":"ChatChannel","room":"lobby","n":{i}}}"#)
        } else {
            CHAT.to_owned()
        };
        subscribe(&mut server, now, conn, &id, "chat_lobby");
    }
    (server, now)
}

/// Sets a fan-out row's scene, then broadcasts and drains `times` times and
/// nothing else (`cable-fixtures bench --repeat fanout-distinct`), for
/// counting instructions as [`repeat_command`] does.
pub fn repeat_fan_out(n: usize, distinct: bool, times: u64) {
    let (mut server, now) = fan_out_scene(n, distinct);
    for _ in 0..times {
        black_box(server.broadcast("chat_lobby", black_box(PAYLOAD), now));
        drain(&mut server);
    }
}

fn fan_out(budget: Budget, n: usize, distinct: bool) -> Measurement {
    let (mut server, now) = fan_out_scene(n, distinct);
    let (ours, base) = compare(
        budget,
        n,
        &mut || {
            black_box(server.broadcast("chat_lobby", black_box(PAYLOAD), now));
            drain(&mut server);
        },
        &mut clone_loop(n),
    );
    let kind = if distinct {
        "distinct_identifiers"
    } else {
        "one_identifier"
    };
    Measurement::new(format!("fanout_{n}_{kind}"), ours, "ns/recipient", base)
}

fn ping_tick(budget: Budget, n: usize) -> Measurement {
    let (mut server, start) = server();
    for _ in 0..n {
        connect(&mut server, start, "u");
    }
    let mut now = start;
    let interval = server.config().ping_interval;
    let (ours, base) = compare(
        budget,
        n,
        &mut || {
            now += interval;
            server.handle_timeout(now);
            drain(&mut server);
        },
        &mut clone_loop(n),
    );
    Measurement::new(format!("ping_tick_{n}"), ours, "ns/connection", base)
}

/// The ping tick again, every connection holding a credential deadline
/// (an hour away, so none fires): what the timer store adds to a tick.
fn ping_tick_with_deadlines(budget: Budget, n: usize) -> Measurement {
    let (mut server, start) = server();
    let expires = start + Duration::from_secs(3600);
    for i in 0..n {
        let incoming = server
            .handle_open(&HandshakeRequest::default(), start)
            .expect("allow_any");
        let accept = ConnectionAccept::new(Identity::new(format!("u{i}"))).expires_at(expires);
        server
            .accept_connection(incoming.pending, accept, start)
            .expect("fresh token");
        drain(&mut server);
    }
    let mut now = start;
    let interval = server.config().ping_interval;
    let (ours, base) = compare(
        budget,
        n,
        &mut || {
            // Stay before the deadlines, however long the run.
            now = (now + interval).min(expires - Duration::from_millis(1));
            server.handle_timeout(now);
            drain(&mut server);
        },
        &mut clone_loop(n),
    );
    Measurement::new(
        format!("ping_tick_{n}_with_deadlines"),
        ours,
        "ns/connection",
        base,
    )
}

fn state_size(n: usize) -> Vec<Measurement> {
    let (mut server, now) = server();
    // Warm the output queue: its capacity is shared, not per-connection state.
    let warm = connect(&mut server, now, "warm");
    let _ = server.handle_close(warm, now);
    while server.poll_event().is_some() {}
    let mut conns = Vec::with_capacity(n);
    let before = CountingAlloc::live_bytes();
    CountingAlloc::enable(true);
    for i in 0..n {
        conns.push(connect(&mut server, now, &format!("user{i}")));
    }
    CountingAlloc::enable(false);
    let per_conn = (CountingAlloc::live_bytes() - before) as f64 / n as f64;
    let before = CountingAlloc::live_bytes();
    CountingAlloc::enable(true);
    for &conn in &conns {
        subscribe(&mut server, now, conn, CHAT, "chat_lobby");
    }
    CountingAlloc::enable(false);
    let per_sub = (CountingAlloc::live_bytes() - before) as f64 / n as f64;
    if CountingAlloc::allocations() == 0 {
        // The allocator is not installed (a library user calling `run`).
        return Vec::new();
    }
    vec![
        Measurement::new("state_bytes_per_idle_connection", per_conn, "bytes", 128.0),
        Measurement::new(
            "state_bytes_per_subscription",
            per_sub,
            "bytes",
            64.0 + CHAT.len() as f64,
        ),
    ]
}

/// Bytes held per message by the core's in-memory `StreamHistory` with
/// `per_stream` messages in each of `streams` streams; the "baseline" is
/// the goal: the payload plus 64 bytes.
fn history_memory(per_stream: usize, streams: usize) -> Option<Measurement> {
    use cable_proto::server::StreamHistory;
    let payload = r#"{"text":"a typical chat message","n":1234567}"#;
    let stream_names: Vec<String> = (0..streams).map(|i| format!("chat_{i}")).collect();
    let t = Duration::from_secs(1_700_000_000);
    let before = CountingAlloc::live_bytes();
    CountingAlloc::enable(true);
    let mut history = StreamHistory::new("ep01", per_stream, Duration::from_secs(300));
    for _ in 0..per_stream {
        for name in &stream_names {
            history.append(name, payload, t);
        }
    }
    CountingAlloc::enable(false);
    let held = CountingAlloc::live_bytes() - before;
    let messages = history.len();
    drop(history);
    if CountingAlloc::allocations() == 0 || messages == 0 {
        return None;
    }
    Some(Measurement::new(
        format!("history_bytes_per_message ({per_stream} x {streams} streams)"),
        held as f64 / messages as f64,
        "bytes",
        payload.len() as f64 + 64.0,
    ))
}

// ---------------------------------------------------------------- the counting allocator

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes while enabled. The
/// `cable-fixtures` binary installs it as its global allocator so that
/// `bench` can measure the core's state.
#[derive(Debug)]
pub struct CountingAlloc;

impl CountingAlloc {
    /// Turns counting on or off.
    pub fn enable(on: bool) {
        COUNTING.store(on, Ordering::SeqCst);
    }

    /// Net bytes allocated while counting was on.
    pub fn live_bytes() -> isize {
        LIVE.load(Ordering::SeqCst)
    }

    /// Allocations made while counting was on.
    pub fn allocations() -> usize {
        ALLOCATIONS.load(Ordering::SeqCst)
    }
}

#[allow(unsafe_code)]
// SAFETY: every call goes to the system allocator unchanged; the counters
// are atomics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_json_lines() {
        let m = Measurement::new("x", 3.0, "ns", 2.0);
        assert_eq!(m.ratio, 1.5);
        assert_eq!(
            m.to_json(),
            r#"{"name":"x","value":3.0,"unit":"ns","baseline":2.0,"ratio":1.5}"#
        );
    }

    #[test]
    fn smoke_run_measures_every_time_row() {
        let results = run(Budget::smoke(), |_| {});
        let names: Vec<&str> = results.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "command_subscribe",
                "command_message",
                "fanout_1_one_identifier",
                "fanout_1_distinct_identifiers",
                "fanout_100_one_identifier",
                "fanout_100_distinct_identifiers",
                "ping_tick_1000",
                "ping_tick_1000_with_deadlines",
            ],
            "the test binary has no counting allocator, so no memory rows"
        );
        assert!(results.iter().all(|m| m.value > 0.0 && m.baseline > 0.0));
    }
}
