//! The replay tool against transcripts whose times are far out (found while
//! writing the `transcript` target, which replays only bounded times).

use cable_fixtures::{core_target, Transcript};

fn transcript(t_ms: &str) -> Transcript {
    let text = format!(
        "{}\n{}\n",
        r#"{"t_ms": 0, "client": "A", "dir": "handshake", "path": "/cable", "request_headers": [["Host", "127.0.0.1:28080"], ["Origin", "http://127.0.0.1:28080"]]}"#,
        format_args!(r#"{{"t_ms": {t_ms}, "client": "A", "dir": "note", "text": "x"}}"#),
    );
    Transcript::parse(&text).expect("a valid transcript")
}

/// A time past what `Duration`/`Instant` hold must be refused, not panic.
#[test]
fn replay_of_a_time_beyond_instant_does_not_panic() {
    let _ = core_target::replay(&transcript("1e300"));
}

/// A long but representable time must not make the replay step through
/// billions of ping deadlines, recording every ping (1e13 ms is 317 years:
/// 3.3 billion pings, hours of work and gigabytes of events); refusing such
/// a transcript is fine.
#[test]
fn replay_of_a_far_time_finishes() {
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = core_target::replay(&transcript("1e13"));
        let _ = done.send(());
    });
    wait.recv_timeout(std::time::Duration::from_secs(5))
        .expect("replaying a transcript with t_ms = 1e13 takes more than 5 s");
}
