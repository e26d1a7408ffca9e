//! The committed fuzz corpus of cable-proto's targets, replayed by the
//! ordinary `cargo test`: `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` for `command_parser`, `server_ops`, `hub`,
//! `timers`, `dialect` and `consumer`.
//!
//! The targets' modules are compiled here straight from `fuzz/src/` (they use
//! only `std`, `cable_proto`, `bytes`, `serde` and `serde_json`), so every
//! check the fuzzer makes is made on every committed input, without the fuzz
//! crate, libFuzzer or a C++ toolchain. A module that is a folder is named by
//! its `mod.rs`; its submodules resolve relative to that folder. See
//! `fuzz/README.md`.

#![allow(dead_code, missing_docs)]

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/command_parser.rs"]
mod command_parser;
#[path = "../../fuzz/src/consumer.rs"]
mod consumer;
#[path = "../../fuzz/src/dialect.rs"]
mod dialect;
#[path = "../../fuzz/src/frames.rs"]
mod frames;
#[path = "../../fuzz/src/harness/mod.rs"]
mod harness;
#[path = "../../fuzz/src/hub.rs"]
mod hub;
#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/server_ops.rs"]
mod server_ops;
#[path = "../../fuzz/src/timers/mod.rs"]
mod timers;
#[path = "../../fuzz/src/wire.rs"]
mod wire;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Replays every committed input of `target`; returns how many ran.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut inputs = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a folder entry").path();
            if path.is_file() {
                inputs.push(path);
            }
        }
    }
    inputs.sort();
    for path in &inputs {
        let data = std::fs::read(path).expect("readable input");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("fuzz input {} fails", path.display());
        }
    }
    inputs.len()
}

#[test]
fn command_parser_corpus() {
    assert!(replay("command_parser", command_parser::run) > 0);
}

#[test]
fn server_ops_corpus() {
    assert!(replay("server_ops", server_ops::run) > 0);
}

#[test]
fn hub_corpus() {
    assert!(replay("hub", hub::run) > 0);
}

#[test]
fn timers_corpus() {
    assert!(replay("timers", timers::run) > 0);
}

#[test]
fn dialect_corpus() {
    assert!(replay("dialect", dialect::run) > 0);
}

#[test]
fn consumer_corpus() {
    assert!(replay("consumer", consumer::run) > 0);
}
