//! Unit tests of the comparison rules.

use super::*;
use crate::transcript::{CloseFrame, CloseOutcome};

const SPEAK: &str = include_str!("../transcripts/examples/perform_speak_broadcast.jsonl");
const PING: &str = include_str!("../transcripts/examples/welcome_and_ping.jsonl");

fn t(s: &str) -> Transcript {
    Transcript::parse(s).unwrap()
}

#[test]
fn a_recording_matches_itself() {
    for s in [SPEAK, PING] {
        compare(&t(s), &t(s), &Deviations::none()).unwrap();
    }
}

#[test]
fn key_order_and_escaping_do_not_matter_but_values_do() {
    let a = t(SPEAK);
    let mut b = a.clone();
    // Same value, other key order and escaping of the outer frame.
    b.events[6].kind = EventKind::In(Payload::Text(
        r#"{"type":"confirm_subscription","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"\u0072\u0031\"}"}"#.into(),
    ));
    compare(&a, &b, &Deviations::none()).unwrap();
    // Same JSON inside the identifier, but not the same string.
    b.events[6].kind = EventKind::In(Payload::Text(
        r#"{"identifier":"{\"room\":\"r1\",\"channel\":\"ChatChannel\"}","type":"confirm_subscription"}"#.into(),
    ));
    let m = compare(&a, &b, &Deviations::none()).unwrap_err();
    assert_eq!(m.client, "A");
    assert!(m.what.contains("identifier strings differ"), "{m}");
}

#[test]
fn an_edited_frame_fails_showing_both_frames() {
    let expected = t(SPEAK);
    let edited = SPEAK.replace(
        r#"\"text\":\"hi from bob\",\"from\":\"bob\"}}"#,
        r#"\"text\":\"hi from bob\",\"from\":\"mallory\"}}"#,
    );
    assert_ne!(edited, SPEAK);
    let m = compare(&t(&edited), &expected, &Deviations::cable()).unwrap_err();
    let msg = m.to_string();
    assert_eq!(m.client, "A", "{msg}");
    assert!(
        msg.contains("frame #4 differs (JSON values differ)"),
        "{msg}"
    );
    assert!(
        msg.contains(r#"expected: {"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","message":{"text":"hi from bob","from":"mallory"}}"#),
        "{msg}"
    );
    assert!(
        msg.contains(r#"actual: {"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","message":{"text":"hi from bob","from":"bob"}}"#),
        "{msg}"
    );
}

#[test]
fn missing_and_extra_frames() {
    let a = t(SPEAK);
    let mut b = a.clone();
    b.events.remove(13); // B's copy of bob's message
    let m = compare(&a, &b, &Deviations::none()).unwrap_err();
    assert_eq!((m.client.as_str(), m.actual.as_str()), ("B", "nothing"));
    let m = compare(&b, &a, &Deviations::none()).unwrap_err();
    assert_eq!((m.client.as_str(), m.expected.as_str()), ("B", "nothing"));
}

#[test]
fn handshake_outcome_is_compared() {
    let a = t(SPEAK);
    let mut b = a.clone();
    if let EventKind::Handshake(h) = &mut b.events[2].kind {
        h.response.as_mut().unwrap().subprotocol = None;
    }
    let m = compare(&a, &b, &Deviations::none()).unwrap_err();
    assert_eq!(m.client, "B");
    assert!(m.actual.contains("subprotocol none"), "{m}");
}

fn with_pings(base: &str, times_and_values: &[(f64, i64)]) -> Transcript {
    let mut tr = t(base);
    tr.events.retain(|e| match &e.kind {
        EventKind::In(p) => !is_ping(p),
        _ => true,
    });
    for &(at, v) in times_and_values {
        tr.events.insert(
            2,
            Event {
                t_ms: at,
                client: "A".into(),
                kind: EventKind::In(Payload::Text(format!(r#"{{"type":"ping","message":{v}}}"#))),
            },
        );
    }
    tr.events.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    tr
}

#[test]
fn pings_by_shape_cadence_and_count() {
    let rec = t(PING);
    let ok = |p: &[(f64, i64)]| compare(&rec, &with_pings(PING, p), &Deviations::none());
    // Other phase and values, one ping more or fewer: fine.
    ok(&[(100.0, 5), (3100.0, 8), (6100.0, 11), (9100.0, 14)]).unwrap();
    ok(&[(2000.0, 5), (5000.0, 8)]).unwrap();
    // Two fewer: count differs.
    let m = ok(&[(2000.0, 5)]).unwrap_err();
    assert!(m.what.contains("ping count"), "{m}");
    // Too close together.
    let m = ok(&[(100.0, 5), (1100.0, 6), (4100.0, 9)]).unwrap_err();
    assert!(m.what.contains("cadence"), "{m}");
    // Not increasing.
    let m = ok(&[(100.0, 5), (3100.0, 5), (6100.0, 8)]).unwrap_err();
    assert!(m.what.contains("cadence"), "{m}");
    // First ping too late after the welcome.
    let m = ok(&[(4000.0, 5), (7000.0, 8)]).unwrap_err();
    assert!(m.what.contains("first ping"), "{m}");
    // Wrong shape.
    let mut bad = with_pings(PING, &[(100.0, 5), (3100.0, 8), (6100.0, 11)]);
    bad.events[2].kind = EventKind::In(Payload::Text(r#"{"type":"ping","message":"5"}"#.into()));
    let m = compare(&rec, &bad, &Deviations::none()).unwrap_err();
    assert!(m.what.contains("wrong shape"), "{m}");
}

fn remote_disconnect(with_frame: bool) -> Transcript {
    let mut tr = t(PING);
    tr.events.truncate(3);
    if with_frame {
        tr.events.push(Event {
            t_ms: 500.0,
            client: "A".into(),
            kind: EventKind::In(Payload::Text(REMOTE_DISCONNECT_FRAME.into())),
        });
    }
    tr.events.push(Event {
        t_ms: 501.0,
        client: "A".into(),
        kind: EventKind::Close(Close {
            code: 1000,
            reason: String::new(),
            outcome: Some(CloseOutcome {
                rcvd: Some(CloseFrame {
                    code: 1000,
                    reason: String::new(),
                }),
                sent: Some(CloseFrame {
                    code: 1000,
                    reason: String::new(),
                }),
                rcvd_then_sent: Some(true),
            }),
        }),
    });
    tr
}

#[test]
fn remote_disconnect_frame_only_with_the_deviation() {
    let rails = remote_disconnect(false);
    let ours = remote_disconnect(true);
    compare(&rails, &rails, &Deviations::none()).unwrap();
    let m = compare(&rails, &ours, &Deviations::none()).unwrap_err();
    assert!(m.actual.contains(r#""reason":"remote""#), "{m}");
    compare(&rails, &ours, &Deviations::cable()).unwrap();
    // Not the other way round: a recording with the frame needs it.
    assert!(compare(&ours, &rails, &Deviations::cable()).is_err());
    // And not when the server did not close.
    let mut not_closed = ours.clone();
    not_closed.events.pop();
    let mut rails_open = rails.clone();
    rails_open.events.pop();
    assert!(compare(&rails_open, &not_closed, &Deviations::cable()).is_err());
    // A different close code is still a difference.
    let mut other_code = ours.clone();
    if let EventKind::Close(c) = &mut other_code.events.last_mut().unwrap().kind {
        c.outcome.as_mut().unwrap().rcvd.as_mut().unwrap().code = 1011;
    }
    let m = compare(&rails, &other_code, &Deviations::cable()).unwrap_err();
    assert!(m.what.contains("close"), "{m}");
}

#[test]
fn who_closed_first_is_compared() {
    let rec = remote_disconnect(false);
    let mut client_closed = rec.clone();
    if let EventKind::Close(c) = &mut client_closed.events.last_mut().unwrap().kind {
        c.outcome.as_mut().unwrap().rcvd_then_sent = Some(false);
    }
    let m = compare(&rec, &client_closed, &Deviations::none()).unwrap_err();
    assert_eq!(m.expected, "server closed first, code 1000");
    assert_eq!(m.actual, "client closed first, code 1000");
}

/// Recorded from Rails 6.1: three subscriptions of one connection to one stream, three
/// broadcasts, each delivered out of subscription order.
const SEVERAL: &str =
    include_str!("../transcripts/rails-6.1/broadcast_several_subscriptions_unordered.jsonl");

/// Where client A's non-ping frames are among the events (frame #n is at `[n - 1]`).
fn frame_events(tr: &Transcript) -> Vec<usize> {
    tr.events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.client == "A" && matches!(&e.kind, EventKind::In(p) if !is_ping(p)))
        .map(|(i, _)| i)
        .collect()
}

/// `tr` with client A's frames (by number, 1-based) rearranged: frame #n gets the payload
/// of frame #`order[n - first]` for n from `first`.
fn rearranged(tr: &Transcript, first: usize, order: &[usize]) -> Transcript {
    let at = frame_events(tr);
    let mut out = tr.clone();
    for (k, &from) in order.iter().enumerate() {
        out.events[at[first - 1 + k]].kind = tr.events[at[from - 1]].kind.clone();
    }
    out
}

#[test]
fn the_several_subscriptions_recording_has_three_groups() {
    let tr = t(SEVERAL);
    let view = ClientView::of(&tr, "A");
    assert_eq!(view.frames.len(), 13);
    assert_eq!(
        broadcast_groups(&view, &step_positions(&tr)),
        [4..7, 7..10, 10..13]
    );
    // Recorded out of subscription order (#2, #3, #4 are the confirmations in it).
    let id = |n: usize| stream_message(payload_of(view.frames[n - 1])).map(|(id, _)| id);
    let confirmed = |n: usize| {
        let v: Value =
            serde_json::from_str(payload_of(view.frames[n - 1]).text().unwrap()).unwrap();
        v["identifier"].as_str().map(str::to_owned)
    };
    let delivered: Vec<_> = (5..=7).map(id).collect();
    let subscribed: Vec<_> = (2..=4).map(confirmed).collect();
    assert_ne!(delivered, subscribed);
}

#[test]
fn a_broadcast_group_matches_in_any_order() {
    let rec = t(SEVERAL);
    for order in [[5, 6, 7], [7, 6, 5], [6, 7, 5], [7, 5, 6]] {
        let other = rearranged(&rec, 5, &order);
        compare(&rec, &other, &Deviations::none()).unwrap();
        compare(&other, &rec, &Deviations::none()).unwrap();
    }
    // Every group at once, and both ways.
    let all = rearranged(&rec, 5, &[7, 5, 6, 10, 9, 8, 12, 13, 11]);
    compare(&rec, &all, &Deviations::none()).unwrap();
    compare(&all, &rec, &Deviations::cable()).unwrap();
}

#[test]
fn a_missing_duplicated_or_foreign_member_of_a_group_fails() {
    let rec = t(SEVERAL);
    // Missing: the group's last member is dropped.
    let mut missing = rec.clone();
    missing.events.remove(frame_events(&rec)[6]);
    let m = compare(&rec, &missing, &Deviations::none()).unwrap_err();
    assert!(m.what.contains("compared in any order"), "{m}");
    assert_eq!(
        m.expected,
        payload_of(&rec.events[frame_events(&rec)[6]]).display()
    );
    // Missing at the very end: nothing left to match.
    let mut short = rec.clone();
    short.events.remove(frame_events(&rec)[12]);
    let m = compare(&rec, &short, &Deviations::none()).unwrap_err();
    assert!(m.what.starts_with("frame #13 is missing ("), "{m}");
    assert_eq!(m.actual, "nothing");
    // Duplicated: one subscription twice, another not at all.
    let dup = rearranged(&rec, 5, &[5, 5, 7]);
    let m = compare(&rec, &dup, &Deviations::none()).unwrap_err();
    assert!(m.what.starts_with("frame #6 differs ("), "{m}");
    // The next broadcast's frame pulled into the group.
    let foreign = rearranged(&rec, 5, &[5, 6, 8, 7]);
    let m = compare(&rec, &foreign, &Deviations::none()).unwrap_err();
    assert!(m.what.contains("compared in any order"), "{m}");
    // One extra copy of a member after the group.
    let mut extra = rec.clone();
    let at = frame_events(&rec)[6];
    extra.events.insert(at + 1, rec.events[at].clone());
    assert!(compare(&rec, &extra, &Deviations::none()).is_err());
}

#[test]
fn order_outside_a_group_is_still_strict() {
    let rec = t(SEVERAL);
    // Two broadcasts (different messages) swapped across the groups' border.
    let across = rearranged(&rec, 7, &[8, 7]);
    let m = compare(&rec, &across, &Deviations::none()).unwrap_err();
    assert!(m.what.starts_with("frame #7 differs"), "{m}");
    // Confirmations are not stream messages: their order is compared.
    let confirms = rearranged(&rec, 2, &[3, 2]);
    let m = compare(&rec, &confirms, &Deviations::none()).unwrap_err();
    assert_eq!(m.what, "frame #2 differs (identifier strings differ)");
    // The same message to two subscriptions with a scripted step between them: two causes,
    // so not a group. (An `out` is recorded between the first group's #6 and #7.)
    let mut split = rec.clone();
    let at = frame_events(&rec)[5];
    split.events.insert(
        at + 1,
        Event {
            t_ms: rec.events[at].t_ms,
            client: "A".into(),
            kind: EventKind::Out(Payload::Text("{}".into())),
        },
    );
    let view = ClientView::of(&split, "A");
    assert_eq!(
        broadcast_groups(&view, &step_positions(&split)),
        [4..6, 7..10, 10..13]
    );
    compare(&split, &rearranged(&split, 5, &[6, 5]), &Deviations::none()).unwrap();
    let m = compare(&split, &rearranged(&split, 6, &[7, 6]), &Deviations::none()).unwrap_err();
    assert!(m.what.starts_with("frame #6 differs"), "{m}");
    // A note between members is not a step.
    let mut noted = rec.clone();
    noted.events.insert(
        at + 1,
        Event {
            t_ms: rec.events[at].t_ms,
            client: "-".into(),
            kind: EventKind::Note("hi".into()),
        },
    );
    compare(
        &noted,
        &rearranged(&noted, 5, &[7, 6, 5]),
        &Deviations::none(),
    )
    .unwrap();
}

#[test]
fn only_stream_messages_of_several_identifiers_form_groups() {
    let frame = |s: &str| Payload::Text(s.into());
    assert!(stream_message(&frame(r#"{"identifier":"x","message":1}"#)).is_some());
    for not in [
        r#"{"identifier":"x","message":1,"type":"t"}"#,
        r#"{"identifier":{"a":1},"message":1}"#,
        r#"{"identifier":"x","type":"confirm_subscription"}"#,
        r#"{"message":1}"#,
        "not json",
    ] {
        assert!(stream_message(&frame(not)).is_none(), "{not}");
    }
    // The same identifier twice (one subscription streaming twice): equal frames, no
    // group needed.
    let line = |t: f64, id: &str| {
        format!(
            r#"{{"t_ms": {t}, "client": "A", "dir": "in", "frame": "{{\"identifier\":\"{id}\",\"message\":1}}"}}"#
        )
    };
    let base = PING.lines().take(2).collect::<Vec<_>>().join("\n");
    let one = t(&format!(
        "{base}\n{}\n{}\n",
        line(500.0, "x"),
        line(501.0, "x")
    ));
    let steps = step_positions(&one);
    assert!(broadcast_groups(&ClientView::of(&one, "A"), &steps).is_empty());
    let two = t(&format!(
        "{base}\n{}\n{}\n",
        line(500.0, "x"),
        line(501.0, "y")
    ));
    let steps = step_positions(&two);
    assert_eq!(
        broadcast_groups(&ClientView::of(&two, "A"), &steps),
        vec![1..3]
    );
}

#[test]
fn http_status_is_compared() {
    let script = |status: u16| {
        t(&format!(
            r#"{{"t_ms": 1, "client": "-", "dir": "http", "method": "GET", "path": "/restart", "status": {status}, "body": ""}}"#
        ))
    };
    compare(&script(200), &script(200), &Deviations::none()).unwrap();
    let m = compare(&script(200), &script(404), &Deviations::none()).unwrap_err();
    assert_eq!(m.expected, "GET /restart -> 200");
    assert_eq!(m.actual, "GET /restart -> 404");
}
