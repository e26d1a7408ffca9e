//! The core's frames are Rails' frames byte for byte: every `in` frame of
//! the Rails 6.1 corpus (pings aside, whose values are the clock) is replayed
//! against the core and compared as bytes, not only as JSON values. Order is
//! compare's business (`tests/corpus.rs` replays the corpus through it): here
//! the frames of one broadcast to several subscriptions of a connection, which
//! Rails delivers in any order, are put in one order on both sides first.

use std::path::Path;

use cable_fixtures::core_target;
use cable_fixtures::deviations::REMOTE_DISCONNECT_FRAME;
use cable_fixtures::transcript::{EventKind, Payload, Transcript};

fn frames(t: &Transcript, client: &str) -> Vec<String> {
    t.events_of(client)
        .filter_map(|e| match &e.kind {
            EventKind::In(Payload::Text(text)) if !text.starts_with(r#"{"type":"ping""#) => {
                Some(text.clone())
            }
            _ => None,
        })
        .collect()
}

/// The `message` of a frame that is exactly `{"identifier": <string>, "message": ...}`.
fn stream_message(frame: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(frame).ok()?;
    let o = v.as_object()?;
    if o.len() != 2 || !o.get("identifier")?.is_string() {
        return None;
    }
    o.get("message").cloned()
}

/// The frames with each run of consecutive stream messages that carry the same `message`
/// (one broadcast reaching several subscriptions) sorted by bytes.
fn broadcast_runs_sorted(mut frames: Vec<String>) -> Vec<String> {
    let messages: Vec<_> = frames.iter().map(|f| stream_message(f)).collect();
    let mut i = 0;
    while i < frames.len() {
        let mut j = i + 1;
        while messages[i].is_some() && j < frames.len() && messages[j] == messages[i] {
            j += 1;
        }
        frames[i..j].sort();
        i = j;
    }
    frames
}

#[test]
fn core_frames_equal_rails_frames_byte_for_byte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("transcripts/rails-6.1");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus is there");
    let mut compared = 0;
    let mut differences = Vec::new();
    for file in &files {
        let recording = Transcript::read(file).unwrap();
        let observed = core_target::replay(&recording).unwrap();
        for client in recording.clients() {
            let expected = broadcast_runs_sorted(frames(&recording, &client));
            // The one declared deviation (DEVIATIONS.md, remote-disconnect-frame):
            // the core adds the Rails 7.1+ frame before a remote disconnect.
            let actual: Vec<String> = broadcast_runs_sorted(
                frames(&observed, &client)
                    .into_iter()
                    .filter(|f| f != REMOTE_DISCONNECT_FRAME)
                    .collect(),
            );
            compared += expected.len();
            if expected != actual {
                differences.push(format!(
                    "{} client {client}:\n  rails: {expected:?}\n  core:  {actual:?}",
                    file.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    println!("{compared} frames compared byte for byte");
    assert!(compared >= 100);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
