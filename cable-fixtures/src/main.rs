//! The `cable-fixtures` command: replay transcripts against the core or a live server,
//! record fresh transcripts from a live server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use cable_fixtures::live::{LiveOptions, LiveTarget};
use cable_fixtures::{compare, core_target, corpus, live, Deviations, Error, Transcript};

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
