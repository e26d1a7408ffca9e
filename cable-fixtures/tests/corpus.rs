//! The corpus and the scenarios on disk: well-formed, consistent with each other, and
//! the command's output format.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use cable_fixtures::transcript::{EventKind, Transcript};
use cable_fixtures::{compare, core_target, corpus, Deviations};

fn dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn names(rel: &str) -> BTreeSet<String> {
    corpus::collect(&[dir(rel)])
        .unwrap()
        .iter()
        .map(|p| corpus::name_of(p))
        .collect()
}

#[test]
fn every_recording_parses_is_playable_and_matches_itself() {
    let files = corpus::collect(&[dir("transcripts")]).unwrap();
    assert!(files.len() >= 35, "{} transcripts", files.len());
    for f in files {
        let t = Transcript::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        t.client_steps()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for e in &t.events {
            if let EventKind::Handshake(h) = &e.kind {
                assert!(
                    h.response.is_some(),
                    "{}: a script, not a recording",
                    f.display()
                );
            }
        }
        compare(&t, &t, &Deviations::none()).unwrap_or_else(|m| panic!("{}: {m}", f.display()));
    }
}

#[test]
fn the_rails_corpus_passes_against_the_core() {
    for f in corpus::collect(&[dir("transcripts/rails-6.1")]).unwrap() {
        let recording = Transcript::read(&f).unwrap();
        let observed =
            core_target::replay(&recording).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        compare(&recording, &observed, &Deviations::cable())
            .unwrap_or_else(|m| panic!("{}: {m}", f.display()));
    }
}

/// The recording Rails delivered out of subscription order passes against the core, which
/// delivers in subscription order, and passes only because its broadcast groups are
/// compared as sets: put in the core's order, the recording compared in order would fail.
#[test]
fn one_broadcast_to_several_subscriptions_is_compared_as_a_set() {
    let recording = Transcript::read(&dir(
        "transcripts/rails-6.1/broadcast_several_subscriptions_unordered.jsonl",
    ))
    .unwrap();
    let observed = core_target::replay(&recording).unwrap();
    compare(&recording, &observed, &Deviations::cable()).unwrap();
    let in_frames = |t: &Transcript| -> Vec<String> {
        t.events_of("A")
            .filter_map(|e| match &e.kind {
                EventKind::In(p) => p.text().map(str::to_owned),
                _ => None,
            })
            .filter(|f| !f.contains(r#""type":"ping""#))
            .collect()
    };
    let (rails, core) = (in_frames(&recording), in_frames(&observed));
    assert_ne!(rails, core, "Rails' order differs from the core's");
    let (mut rails_sorted, mut core_sorted) = (rails.clone(), core.clone());
    rails_sorted.sort();
    core_sorted.sort();
    assert_eq!(rails_sorted, core_sorted, "the same frames");
    // The core's order is the order of subscription: each broadcast's frames come in the
    // order of the confirmations.
    let identifier = |f: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(f).unwrap();
        v["identifier"].as_str().unwrap().to_owned()
    };
    let confirmed: Vec<String> = core[1..4].iter().map(|f| identifier(f)).collect();
    for group in core[4..].chunks(3) {
        let delivered: Vec<String> = group.iter().map(|f| identifier(f)).collect();
        assert_eq!(delivered, confirmed);
    }
}

#[test]
fn every_scenario_is_a_client_side_script_with_a_recording() {
    let scenarios = names("scenarios");
    let recorded = names("transcripts/rails-6.1");
    assert_eq!(scenarios, recorded, "scenarios and recordings differ");
    for f in corpus::collect(&[dir("scenarios")]).unwrap() {
        let t = Transcript::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for e in &t.events {
            let client_side = match &e.kind {
                EventKind::Handshake(h) => h.response.is_none(),
                EventKind::Out(_) | EventKind::Note(_) => true,
                EventKind::Http(h) => h.response.is_none(),
                EventKind::Close(c) => c.outcome.is_none(),
                EventKind::In(_) | EventKind::HandshakeFailed(_) => false,
            };
            assert!(client_side, "{}: server-side event {e:?}", f.display());
        }
        assert!(!t.client_steps().unwrap().is_empty(), "{}", f.display());
    }
}

#[test]
fn the_corpus_covers_the_issue_cases() {
    let recorded = names("transcripts/rails-6.1");
    for case in [
        "welcome_and_pings",
        "subscribe_confirm",
        "subscribe_reject",
        "duplicate_subscribe",
        "param_key_order",
        "speak_two_clients",
        "whoami",
        "unsubscribe_then_message",
        "unknown_command",
        "invalid_json",
        "empty_frame",
        "trailing_garbage",
        "missing_identifier",
        "unknown_identifier",
        "unknown_action",
        "channel_not_found",
        "unauthorized_query_token",
        "bearer_token",
        "no_subprotocol",
        "unsupported_subprotocol",
        "binary_frame",
        "stream_for_notification",
        "transmit_in_subscribed",
        "receive_without_action",
        "raw_stream",
        "feed_follow_unfollow",
        "unsubscribed_broadcast",
        "server_restart",
        "remote_disconnect",
        "refused_origin",
        "escaping",
        "broadcast_several_subscriptions_unordered",
    ] {
        assert!(recorded.contains(case), "missing {case}");
    }
    // At least three pings in the ping recording.
    let t = Transcript::read(&dir("transcripts/rails-6.1/welcome_and_pings.jsonl")).unwrap();
    let pings = t
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::In(p) if p.text().is_some_and(|s| s.contains(r#""type":"ping""#))))
        .count();
    assert!(pings >= 3, "{pings} pings");
}

#[test]
fn replay_prints_one_line_per_transcript_and_the_totals() {
    let out = Command::new(env!("CARGO_BIN_EXE_cable-fixtures"))
        .arg("replay")
        .arg(dir("transcripts/examples"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let mut failed = 0;
    for (line, name) in lines.iter().zip([
        "perform_speak_broadcast",
        "subscribe_reject",
        "welcome_and_ping",
    ]) {
        if line.starts_with("FAIL ") {
            failed += 1;
            assert!(line.starts_with(&format!("FAIL {name}: ")), "{line}");
        } else {
            assert_eq!(*line, format!("PASS {name}"));
        }
    }
    assert_eq!(lines[3], format!("{} passed, {failed} failed", 3 - failed));
    assert_eq!(out.status.success(), failed == 0);
}

#[test]
fn a_bad_transcript_is_a_failure_not_a_skip() {
    let tmp = std::env::temp_dir().join(format!("cable-fixtures-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let bad = tmp.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"t_ms\": 0, \"client\": \"A\", \"dir\": \"teleport\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cable-fixtures"))
        .args(["replay", "--url", "ws://127.0.0.1:9/cable"])
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "FAIL bad: line 1: unknown dir \"teleport\"\n0 passed, 1 failed\n"
    );
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn non_loopback_urls_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_cable-fixtures"))
        .args(["replay", "--url", "ws://192.0.2.1:80/cable"])
        .arg(dir("transcripts/examples"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
