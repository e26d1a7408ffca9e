//! The `cable-fixtures` command: replay transcripts against the core or a live server,
//! record fresh transcripts from a live server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use cable_fixtures::bench::{self, Budget, CommandWork, CountingAlloc};
use cable_fixtures::live::{LiveOptions, LiveTarget};
use cable_fixtures::{compare, core_target, corpus, live, Deviations, Error, Transcript};

/// Counts the core's state for `bench` (a relaxed atomic load per allocation otherwise).
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Action Cable conformance: record transcripts from a live server, replay them against the
/// core or any live server.
#[derive(Parser)]
#[command(name = "cable-fixtures", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay recorded transcripts and compare what the target answers with what was recorded.
    ///
    /// Without --url the target is the core with the reference app, in virtual time; with
    /// --url it is a live server, in real time. Prints `PASS <name>` or
    /// `FAIL <name>: <first difference>` per transcript and `N passed, M failed` at the end;
    /// exits 1 if any failed.
    Replay(ReplayArgs),
    /// Drive a live server with the client side of scripts or transcripts and write fresh
    /// transcripts of what it answered.
    Record(RecordArgs),
    /// The websocket-shootout broadcast benchmark against a live server's BenchmarkChannel.
    ///
    /// Connects --clients clients, subscribes each to `{"channel":"BenchmarkChannel"}`, sends
    /// --samples broadcasts (--concurrent at a time) from random clients, times the round trip
    /// to each sender's `broadcastResult` and counts the deliveries that never arrived.
    /// Prints a summary, then one JSON line. Exits 1 if anything was lost or timed out.
    Shootout(ShootoutArgs),
    /// Minutes of mixed load with faults: nothing lost, duplicated or
    /// reordered (see the crate's `soak` module).
    Soak(cable_fixtures::soak::SoakArgs),
    /// The floor: a bare WebSocket broadcast server with no Action Cable protocol, for the
    /// shootout (see the `floor` module for what it does and does not do).
    ///
    /// Prints `floor listening on ws://ADDR/cable` and serves until interrupted.
    Floor(FloorArgs),
    /// The core's measurements beside their baselines (see the `bench` module): one JSON
    /// object per line, `{"name","value","unit","baseline","ratio"}`, ratio = ours / baseline.
    Bench(BenchArgs),
    /// Replay Jac Cloud transcripts (`shared/jacref` format) against a live Jac server: the real
    /// one, or cable-server with `--mount /websocket=jac` in front of it. Prints PASS/FAIL per
    /// transcript; exits 1 if any failed.
    JacReplay(cable_fixtures::jac::cli::JacReplayArgs),
    /// Record Jac transcripts from a live Jac server by playing scripts (see
    /// `cable_fixtures::jac::record`).
    JacRecord(cable_fixtures::jac::cli::JacRecordArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Short rounds: the whole run in under 60 s.
    #[arg(long)]
    quick: bool,
    /// Instead of measuring: do one row's work (`subscribe`, `message`,
    /// `subscribe-baseline`, `message-baseline`, `fanout-distinct`: a broadcast
    /// to 100,000 distinct identifiers, drained) --times times and exit, for
    /// `valgrind --tool=callgrind` (see BENCHMARKS.md).
    #[arg(long, value_parser = ["subscribe", "message", "subscribe-baseline", "message-baseline", "fanout-distinct"])]
    repeat: Option<String>,
    /// With --repeat: how many times.
    #[arg(long, default_value_t = 10_000)]
    times: u64,
}

#[derive(Args)]
struct ReplayArgs {
    /// A live server, `ws://HOST:PORT/PATH` (loopback only). Without it: the core.
    #[arg(long)]
    url: Option<String>,
    /// Tolerated deviations: `none`, `cable` (the project's declared set) or a
    /// comma-separated list of names. Default: `none` with --url, `cable` without.
    #[arg(long)]
    deviations: Option<Deviations>,
    #[command(flatten)]
    timing: Timing,
    /// Transcript files or folders (searched recursively for *.jsonl).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Args)]
struct RecordArgs {
    /// The live server to record, `ws://HOST:PORT/PATH` (loopback only).
    #[arg(long)]
    url: String,
    /// The folder to write the new transcripts to (`<name>.jsonl` each).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    timing: Timing,
    /// Scenario scripts or transcripts, files or folders (searched recursively for *.jsonl).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Args)]
struct Timing {
    /// Live only: how long to wait for trailing frames after the last scripted step.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Live only: the pause between two transcripts, so that one scenario's late work on the
    /// server does not leak into the next.
    #[arg(long, default_value_t = 300)]
    gap_ms: u64,
}

impl Timing {
    fn live_options(&self) -> LiveOptions {
        LiveOptions {
            settle: Duration::from_millis(self.settle_ms),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => replay(args),
        Command::Record(args) => record(args),
        Command::Shootout(args) => shootout(args),
        Command::Soak(args) => cable_fixtures::soak::main(args),
        Command::Floor(args) => floor(args),
        Command::Bench(args) => run_bench(args),
        Command::JacReplay(args) => runtime().and_then(|rt| rt.block_on(args.run())),
        Command::JacRecord(args) => runtime().and_then(|rt| rt.block_on(args.run())),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cable-fixtures: {e}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Live(format!("cannot start the runtime: {e}")))
}

/// Replays every transcript; returns whether all passed.
fn replay(args: ReplayArgs) -> Result<bool, Error> {
    let files = corpus::collect(&args.paths)?;
    let live = args.url.as_deref().map(LiveTarget::parse).transpose()?;
    let deviations = args.deviations.unwrap_or_else(|| {
        if live.is_some() {
            Deviations::none()
        } else {
            Deviations::cable()
        }
    });
    let names: Vec<&str> = deviations.iter().map(|d| d.name()).collect();
    eprintln!(
        "replaying {} transcript(s) against {} (deviations: {})",
        files.len(),
        args.url.as_deref().unwrap_or("the core"),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    );
    let rt = runtime()?;
    let opts = args.timing.live_options();
    let (mut passed, mut failed) = (0usize, 0usize);
    for (i, file) in files.iter().enumerate() {
        if i > 0 && live.is_some() {
            std::thread::sleep(Duration::from_millis(args.timing.gap_ms));
        }
        let name = corpus::name_of(file);
        let outcome = replay_one(file, live.as_ref(), &opts, &deviations, &rt);
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn replay_one(
    file: &Path,
    live: Option<&LiveTarget>,
    opts: &LiveOptions,
    deviations: &Deviations,
    rt: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let expected = Transcript::read(file).map_err(|e| e.to_string())?;
    let actual = match live {
        Some(target) => rt.block_on(live::run(&expected, target, opts)),
        None => core_target::replay(&expected),
    }
    .map_err(|e| e.to_string())?;
    compare(&expected, &actual, deviations).map_err(|m| m.to_string())
}

/// Records every script; returns whether all were recorded.
fn record(args: RecordArgs) -> Result<bool, Error> {
    let files = corpus::collect(&args.paths)?;
    let target = LiveTarget::parse(&args.url)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Error::Usage(format!("{}: {e}", args.out.display())))?;
    let rt = runtime()?;
    let opts = args.timing.live_options();
    let (mut recorded, mut failed) = (0usize, 0usize);
    for (i, file) in files.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(args.timing.gap_ms));
        }
        let name = corpus::name_of(file);
        let out = args.out.join(format!("{name}.jsonl"));
        let result = Transcript::read(file)
            .map_err(Error::from)
            .and_then(|script| rt.block_on(live::run(&script, &target, &opts)))
            .and_then(|t| t.write(&out).map(|()| t).map_err(Error::from));
        match result {
            Ok(t) => {
                recorded += 1;
                println!(
                    "RECORDED {name} ({} events) -> {}",
                    t.events.len(),
                    out.display()
                );
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
    println!("{recorded} recorded, {failed} failed");
    Ok(failed == 0)
}

#[derive(Args)]
struct ShootoutArgs {
    /// The server, `ws://127.0.0.1:PORT/cable` (loopback only).
    #[arg(long)]
    url: String,
    /// Clients to connect and subscribe (N).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Broadcasts to send (K).
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Broadcasts in flight at a time (C).
    #[arg(long, default_value_t = 4)]
    concurrent: usize,
    /// Broadcasts sent first and not measured (warm-up).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Length of the padding string in each payload, bytes.
    #[arg(long, default_value_t = 200)]
    payload_padding: usize,
    /// The server's process id: report its resident memory (VmRSS).
    #[arg(long)]
    pid: Option<u32>,
    /// Connect and subscribe only, measure memory per connection, send no broadcasts.
    #[arg(long)]
    idle_only: bool,
    /// Seed of the PRNG that picks the senders.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Connections being opened at a time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// How long one connection may take to open and be confirmed, ms.
    #[arg(long, default_value_t = 30_000)]
    connect_timeout_ms: u64,
    /// How long a broadcast may wait for its result before it counts as lost, ms.
    #[arg(long, default_value_t = 10_000)]
    sample_timeout_ms: u64,
    /// After the last result, how long to wait for outstanding deliveries, ms.
    #[arg(long, default_value_t = 3_000)]
    drain_ms: u64,
    /// With --pid: the pause after the last confirmation before reading the memory, ms.
    #[arg(long, default_value_t = 2_000)]
    settle_ms: u64,
    /// The bound on the whole run, seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
    /// Worker threads of the client (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct FloorArgs {
    /// Address to listen on (loopback only; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:28090")]
    listen: std::net::SocketAddr,
}

/// Runs one shootout; returns whether nothing was lost.
fn shootout(args: ShootoutArgs) -> Result<bool, Error> {
    use cable_fixtures::shootout::{self, ShootoutOptions};
    let mut opts = ShootoutOptions::new(LiveTarget::parse(&args.url)?);
    opts.clients = args.clients;
    opts.samples = args.samples;
    opts.concurrent = args.concurrent;
    opts.warmup = args.warmup;
    opts.payload_padding = args.payload_padding;
    opts.pid = args.pid;
    opts.idle_only = args.idle_only;
    opts.seed = args.seed;
    opts.connect_concurrency = args.connect_concurrency;
    opts.connect_timeout = Duration::from_millis(args.connect_timeout_ms);
    opts.sample_timeout = Duration::from_millis(args.sample_timeout_ms);
    opts.drain = Duration::from_millis(args.drain_ms);
    opts.settle = Duration::from_millis(args.settle_ms);
    opts.timeout = Duration::from_secs(args.timeout_s);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let rt = builder
        .enable_all()
        .build()
        .map_err(|e| Error::Live(format!("cannot start the runtime: {e}")))?;
    let report = rt.block_on(shootout::run(&opts))?;
    print!("{report}");
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| Error::Live(e.to_string()))?
    );
    Ok(!report.timed_out
        && report.missing == 0
        && report.lost_results == 0
        && report.send_errors == 0
        && report.connect_failures == 0)
}

/// Serves the floor until interrupted.
fn floor(args: FloorArgs) -> Result<bool, Error> {
    use cable_fixtures::floor;
    let rt = runtime()?;
    rt.block_on(async {
        let listener = floor::bind(args.listen)
            .await
            .map_err(|e| Error::Usage(format!("--listen {}: {e}", args.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Live(e.to_string()))?;
        println!("floor listening on ws://{addr}/cable");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tokio::select! {
            () = floor::serve(listener) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(true)
    })
}

fn run_bench(args: BenchArgs) -> Result<bool, Error> {
    if let Some(work) = args.repeat {
        if work == "fanout-distinct" {
            bench::repeat_fan_out(100_000, true, args.times);
            return Ok(true);
        }
        let work = match work.as_str() {
            "subscribe" => CommandWork::Subscribe,
            "message" => CommandWork::Message,
            "subscribe-baseline" => CommandWork::SubscribeBaseline,
            _ => CommandWork::MessageBaseline,
        };
        bench::repeat_command(work, args.times);
        return Ok(true);
    }
    let budget = if args.quick {
        Budget::quick()
    } else {
        Budget {
            round: Duration::from_millis(200),
            rounds: 11,
            ..Budget::quick()
        }
    };
    bench::run(budget, |m| println!("{}", m.to_json()));
    Ok(true)
}
