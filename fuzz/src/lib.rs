//! Fuzz targets over every entry point of cable, with their invariants.
//!
//! Each target is a function `fn(&[u8])` that panics when an invariant
//! breaks; `fuzz_targets/<name>.rs` hands it to libFuzzer with
//! [`fuzz_target!`], which also makes the file replay the committed corpus
//! (`corpus/<name>/` and `regressions/<name>/`) under plain `cargo test`.
//!
//! | target | entry point | module |
//! |---|---|---|
//! | `command_parser` | `cable_proto::command::parse` | [`command_parser`] |
//! | `server_ops` | `cable_proto::server::Server`, every input | [`server_ops`] on [`harness`] |
//! | `hub` | `cable_proto::server::Server`'s fan-out against a naive model | [`hub`] on [`harness`] |
//! | `transcript` | `cable_fixtures::Transcript::parse`, writer, replay | [`transcript`] |
//! | `reference_app` | `cable_refapp::ReferenceApp` on the core | [`reference_app`] |
//! | `dialect` | `cable_proto::dialect::BuddyBoss`'s parser and a hub mixed across three dialects, against a model | [`dialect`] |
//! | `timers` | `cable_proto::server::Server`'s deadlines and decisions under arbitrary time | [`timers`] |
//! | `channels_decode` | `cable_channels::fuzz_decode_all` | (in cable-channels) |
//! | `consumer` | `cable_proto::client::Consumer`, every input, under arbitrary time and jitter | [`consumer`] |
//!
//! The modules of cable-proto's targets ([`input`], [`frames`], [`wire`],
//! [`harness`], [`command_parser`], [`server_ops`], [`hub`], [`timers`], [`dialect`]) use
//! nothing but `std`, `cable_proto`, `bytes`, `serde` and `serde_json`:
//! `cable-proto/tests/fuzz_corpus.rs` compiles them too, so the root
//! workspace's `cargo test` replays their corpora.

pub mod command_parser;
pub mod consumer;
pub mod dialect;
pub mod frames;
pub mod harness;
pub mod hub;
pub mod input;
pub mod reference_app;
pub mod replay;
pub mod server_ops;
pub mod timers;
pub mod transcript;
pub mod wire;

#[cfg(fuzzing)]
#[doc(hidden)]
pub use libfuzzer_sys;

/// Declares a fuzz target: `cable_fuzz::fuzz_target!(path::to::run);` in
/// `fuzz_targets/<name>.rs`, with `#![cfg_attr(fuzzing, no_main)]` on top.
///
/// Under `cargo fuzz` (`--cfg fuzzing`) it is the libFuzzer entry point.
/// Otherwise the binary replays files and folders given as arguments (the
/// committed corpus by default), and its tests replay `corpus/<name>/` and
/// `regressions/<name>/`, so `cargo test --manifest-path fuzz/Cargo.toml`
/// covers every target's committed inputs.
#[macro_export]
macro_rules! fuzz_target {
    ($run:path) => {
        #[cfg(fuzzing)]
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| $run(data));

        /// Replays files or folders given as arguments, or the committed
        /// corpus and regressions of this target.
        #[cfg(not(fuzzing))]
        #[allow(dead_code)]
        fn main() {
            $crate::replay::main(env!("CARGO_BIN_NAME"), $run);
        }

        #[cfg(all(test, not(fuzzing)))]
        mod committed {
            #[test]
            fn corpus_and_regressions_replay() {
                $crate::replay::committed(env!("CARGO_BIN_NAME"), $run);
            }
        }
    };
}
