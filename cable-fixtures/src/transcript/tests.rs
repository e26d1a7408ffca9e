//! Unit tests of the transcript types and their JSON-lines codec, on the example
//! transcripts of `transcripts/examples/` and hand-written lines.

use serde_json::Value;

use super::*;

const EXAMPLES: [(&str, &str); 3] = [
    (
        "perform_speak_broadcast",
        include_str!("../../transcripts/examples/perform_speak_broadcast.jsonl"),
    ),
    (
        "subscribe_reject",
        include_str!("../../transcripts/examples/subscribe_reject.jsonl"),
    ),
    (
        "welcome_and_ping",
        include_str!("../../transcripts/examples/welcome_and_ping.jsonl"),
    ),
];

#[test]
fn examples_round_trip_line_by_line() {
    for (name, text) in EXAMPLES {
        let t = Transcript::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.events.len(), text.lines().count(), "{name}");
        let written = t.to_jsonl();
        for (orig, new) in text.lines().zip(written.lines()) {
            let a: Value = serde_json::from_str(orig).unwrap();
            let b: Value = serde_json::from_str(new).unwrap();
            assert_eq!(a, b, "{name}: a line changed in the round trip");
        }
        assert_eq!(Transcript::parse(&written).unwrap(), t, "{name}");
    }
}

#[test]
fn examples_have_the_expected_shape() {
    let t = Transcript::parse(EXAMPLES[0].1).unwrap();
    assert_eq!(t.clients(), vec!["A", "B"]);
    let EventKind::Handshake(h) = &t.events[0].kind else {
        panic!("first event is not a handshake")
    };
    assert_eq!(h.path, "/cable?token=alice");
    let r = h.response.as_ref().unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.subprotocol.as_deref(), Some("actioncable-v1-json"));
    assert_eq!(
        t.events[1].kind,
        EventKind::In(Payload::Text(r#"{"type":"welcome"}"#.into()))
    );
    let last = t.events.last().unwrap();
    let EventKind::Close(c) = &last.kind else {
        panic!("last event is not a close")
    };
    assert!(c.client_initiated());
    assert!(!c.server_initiated());
    assert_eq!(c.code, 1000);
}

#[test]
fn client_steps_of_a_recording() {
    let t = Transcript::parse(EXAMPLES[1].1).unwrap();
    let steps = t.client_steps().unwrap();
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| match s.step {
            Step::Connect { .. } => "connect",
            Step::Send(_) => "send",
            Step::Close(_) => "close",
            Step::Http { .. } => "http",
            Step::Note(_) => "note",
        })
        .collect();
    assert_eq!(
        kinds,
        ["connect", "send", "note", "send", "note", "send", "note", "close"]
    );
    assert_eq!(
        steps.last().unwrap().step,
        Step::Close(CloseFrame {
            code: 1000,
            reason: String::new()
        })
    );
}

#[test]
fn script_forms_are_accepted_and_written_back() {
    let text = concat!(
        r#"{"t_ms": 0, "client": "A", "dir": "handshake", "path": "/cable", "request_headers": [["Host", "h"]]}"#,
        "\n",
        r#"{"t_ms": 400, "client": "-", "dir": "http", "method": "GET", "path": "/restart"}"#,
        "\n",
        r#"{"t_ms": 500, "client": "A", "dir": "out", "binary": true, "frame_b64": "AAEC"}"#,
        "\n",
        r#"{"t_ms": 800, "client": "A", "dir": "close", "code": 1000, "reason": "bye"}"#,
        "\n",
    );
    let t = Transcript::parse(text).unwrap();
    let EventKind::Handshake(h) = &t.events[0].kind else {
        panic!()
    };
    assert!(h.response.is_none());
    assert_eq!(
        t.events[2].kind,
        EventKind::Out(Payload::Binary(vec![0, 1, 2]))
    );
    let EventKind::Close(c) = &t.events[3].kind else {
        panic!()
    };
    assert!(c.outcome.is_none() && c.client_initiated());
    assert_eq!(Transcript::parse(&t.to_jsonl()).unwrap(), t);
    assert_eq!(t.client_steps().unwrap().len(), 4);
}

#[test]
fn large_frames() {
    let big = format!("{{\"x\":\"{}\"}}", "y".repeat(70_000));
    let l = LargeFrame::of(&big);
    assert_eq!(l.len, big.len());
    assert!(l.matches(&big));
    assert!(!l.matches(&big.replace('y', "z")));
    let e = Event {
        t_ms: 1.0,
        client: "A".into(),
        kind: EventKind::In(Payload::Large(l.clone())),
    };
    let line = e.to_json_line();
    assert!(line.contains("\"frame_sha256\": "));
    let t = Transcript::parse(&line).unwrap();
    assert_eq!(t.events[0], e);
    // A large `out` frame cannot be replayed.
    let out = line.replace("\"in\"", "\"out\"");
    let t = Transcript::parse(&format!(
        "{}\n{out}",
        r#"{"t_ms": 0, "client": "A", "dir": "handshake", "path": "/cable", "request_headers": []}"#
    ))
    .unwrap();
    assert!(t.client_steps().unwrap_err().contains("large form"));
}

#[test]
fn errors_are_typed_and_carry_line_numbers() {
    let ok = r#"{"t_ms": 0, "client": "A", "dir": "note", "text": "x"}"#;
    let cases = [
        r#"{"t_ms": 1, "client": "A", "dir": "sideways"}"#,
        r#"{"t_ms": 1, "client": "A", "dir": "in"}"#,
        r#"{"t_ms": 1, "client": "A", "dir": "close", "code": 1000}"#,
        r#"{"t_ms": 1, "client": "A", "dir": "in", "frame": 5}"#,
        r#"{"t_ms": 1, "client": "A", "dir": "note", "text": "x", "extra": 1}"#,
        r#"{"t_ms": 1, "client": "A", "dir": "handshake", "path": "/", "request_headers": [], "subprotocol": null}"#,
        r#"{"t_ms": 1, "client": "A"}"#,
        r#"{"t_ms": 1, "client": "A", "dir": "out", "frame"#,
        r#"[1, 2]"#,
    ];
    let errs: Vec<TranscriptError> = cases
        .iter()
        .map(|c| Transcript::parse(&format!("{ok}\n\n{c}\n")).unwrap_err())
        .collect();
    assert!(matches!(&errs[0], TranscriptError::UnknownDir { line: 3, dir } if dir == "sideways"));
    assert!(matches!(
        &errs[1],
        TranscriptError::MissingField {
            line: 3,
            field: "frame",
            ..
        }
    ));
    assert!(matches!(
        &errs[2],
        TranscriptError::MissingField {
            line: 3,
            field: "reason",
            ..
        }
    ));
    assert!(matches!(
        &errs[3],
        TranscriptError::BadField {
            line: 3,
            field: "frame",
            ..
        }
    ));
    assert!(
        matches!(&errs[4], TranscriptError::UnknownField { line: 3, field, .. } if field == "extra")
    );
    assert!(matches!(
        &errs[5],
        TranscriptError::Inconsistent { line: 3, .. }
    ));
    assert!(matches!(
        &errs[6],
        TranscriptError::MissingField {
            line: 3,
            field: "dir",
            ..
        }
    ));
    assert!(matches!(&errs[7], TranscriptError::Json { line: 3, .. }));
    assert!(matches!(&errs[8], TranscriptError::NotAnObject { line: 3 }));
    assert_eq!(errs[0].to_string(), "line 3: unknown dir \"sideways\"");
}
