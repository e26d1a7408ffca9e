//! The whole transcript corpus of cable-fixtures (recorded from Rails 6.1),
//! replayed live against cable-server with the reference app, with the
//! project's declared deviations (`--deviations cable`), as
//! `cable-fixtures replay --url` does. The transcripts run in real time, so
//! they are spread over a few server processes that replay in parallel;
//! within one process they run one after another, as scenarios share
//! streams and one of them restarts the server.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cable_fixtures::live::{self, LiveOptions, LiveTarget};
use cable_fixtures::{compare, corpus, Deviations, Transcript};
use common::CableServer;

/// Server processes replaying side by side.
const SHARDS: usize = 4;

async fn replay_shard(
    server: &CableServer,
    files: &[PathBuf],
) -> Vec<(String, Result<(), String>)> {
    let target = LiveTarget::parse(&format!("ws://{}/cable", server.addr)).expect("target");
    let options = LiveOptions::default();
    let deviations = Deviations::cable();
    let mut results = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if i > 0 {
            // As `cable-fixtures replay`'s --gap-ms: one scenario's late work
            // must not leak into the next.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let outcome = async {
            let expected = Transcript::read(file).map_err(|e| e.to_string())?;
            let actual = live::run(&expected, &target, &options)
                .await
                .map_err(|e| e.to_string())?;
            compare(&expected, &actual, &deviations).map_err(|m| m.to_string())
        }
        .await;
        results.push((corpus::name_of(file), outcome));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rails_corpus_passes_live() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cable-fixtures/transcripts");
    let files = corpus::collect(&[dir]).expect("transcripts");
    assert!(!files.is_empty(), "no transcripts found");
    let servers: Vec<CableServer> = (0..SHARDS)
        .map(|_| CableServer::start(&["--app", "reference"]))
        .collect();
    let shards: Vec<Vec<PathBuf>> = (0..SHARDS)
        .map(|s| files.iter().skip(s).step_by(SHARDS).cloned().collect())
        .collect();
    let runs = servers
        .iter()
        .zip(&shards)
        .map(|(server, files)| replay_shard(server, files));
    let results = tokio::time::timeout(
        Duration::from_secs(240),
        futures_util::future::join_all(runs),
    )
    .await
    .expect("the corpus replays within 240 s");
    let mut failures = Vec::new();
    let mut passed = 0;
    for (name, outcome) in results.into_iter().flatten() {
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                println!("FAIL {name}: {why}");
                failures.push(name);
            }
        }
    }
    println!(
        "corpus: {passed} of {} transcripts passed live",
        files.len()
    );
    assert!(failures.is_empty(), "failed live: {failures:?}");
}
