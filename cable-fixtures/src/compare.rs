//! Comparing what a target did with what Rails did.
//!
//! Both sides are [`Transcript`]s: the recording (expected) and the observation of a replay
//! (actual). The rules, per client:
//!
//! 1. **Handshake outcome**: upgraded or refused, the HTTP status, and the chosen
//!    subprotocol. Request and response headers are not compared (so `Sec-WebSocket-Key`
//!    and `Sec-WebSocket-Accept` are ignored).
//! 2. **Frames** (`in`, pings excluded), in order: text frames that are JSON must be equal
//!    JSON values (key order and the outer frame's escaping do not matter), and the
//!    `identifier` strings must be equal byte for byte (they are compared as strings, never
//!    re-parsed). Frames that are not JSON are compared exactly, binary frames by bytes,
//!    large frames by length and SHA-256.
//! 3. **Close**: who closed first must agree; a server-initiated close
//!    (`rcvd_then_sent: true`) must carry the same code.
//! 4. **Pings**, compared apart from the other frames: every ping has exactly the shape
//!    `{"type":"ping","message":<integer>}`; in the observation, `message` strictly increases,
//!    consecutive pings are [`PING_INTERVAL_MS`] ± [`PING_JITTER_MS`] apart, and the first
//!    ping comes at most `PING_INTERVAL_MS + PING_JITTER_MS` after the welcome. The number of
//!    pings may differ from the recording by at most [`PING_COUNT_TOLERANCE`]: a server's
//!    ping timer has its own phase (Rails has one global timer started by the first request),
//!    so a connection open for `d` seconds sees `floor(d/3)` or `floor(d/3) + 1` pings.
//!    Ping values and all other `t_ms` are ignored.
//!
//! The scenario's own events (client `-`): the `http` calls must get the same status.
//!
//! Anything else is a [`Mismatch`], unless a [`Deviation`] in the given set tolerates it.

use std::fmt;

use serde_json::Value;

use crate::deviations::{Deviation, Deviations, REMOTE_DISCONNECT_FRAME};
use crate::transcript::{Close, Event, EventKind, Payload, Transcript, SCENARIO_CLIENT};

/// The ping period of Rails (`BEAT_INTERVAL`), in milliseconds.
pub const PING_INTERVAL_MS: f64 = 3000.0;
/// How far consecutive pings may stray from [`PING_INTERVAL_MS`].
pub const PING_JITTER_MS: f64 = 500.0;
/// How many pings more or fewer than the recording a client may see.
pub const PING_COUNT_TOLERANCE: usize = 1;

/// The first difference between a recording and an observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The client (`A`, `B`, ..., or `-`).
    pub client: String,
    /// When it happened in the recording (or in the observation, if the recording has no
    /// such event), in milliseconds.
    pub t_ms: f64,
    /// What differs.
    pub what: String,
    /// What the recording has there (a frame, an outcome, or `nothing`).
    pub expected: String,
    /// What the target did there.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} at {:.1} ms: {}; expected: {}; actual: {}",
            self.client, self.t_ms, self.what, self.expected, self.actual
        )
    }
}

impl std::error::Error for Mismatch {}

/// Compares an observation (`actual`) with a recording (`expected`), tolerating only the
/// given deviations. Returns the earliest difference (by recorded time) over all clients.
pub fn compare(
    expected: &Transcript,
    actual: &Transcript,
    deviations: &Deviations,
) -> Result<(), Mismatch> {
    let mut clients = expected.clients();
    for c in actual.clients() {
        if !clients.contains(&c) {
            clients.push(c);
        }
    }
    let mut first: Option<Mismatch> = None;
    let mut consider = |m: Mismatch| {
        if first.as_ref().is_none_or(|f| m.t_ms < f.t_ms) {
            first = Some(m);
        }
    };
    for c in &clients {
        let e = ClientView::of(expected, c);
        let a = ClientView::of(actual, c);
        if let Err(m) = compare_client(c, &e, &a, deviations) {
            consider(m);
        }
    }
    if let Err(m) = compare_http(expected, actual) {
        consider(m);
    }
    match first {
        None => Ok(()),
        Some(m) => Err(m),
    }
}

/// What one client saw, split the way the rules need it.
struct ClientView<'a> {
    handshake: Option<&'a Event>,
    frames: Vec<&'a Event>,
    pings: Vec<&'a Event>,
    close: Option<(&'a Event, &'a Close)>,
    welcome_t: Option<f64>,
    last_t: f64,
}

impl<'a> ClientView<'a> {
    fn of(t: &'a Transcript, client: &str) -> ClientView<'a> {
        let mut v = ClientView {
            handshake: None,
            frames: Vec::new(),
            pings: Vec::new(),
            close: None,
            welcome_t: None,
            last_t: 0.0,
        };
        for e in t.events_of(client) {
            v.last_t = v.last_t.max(e.t_ms);
            match &e.kind {
                EventKind::Handshake(_) | EventKind::HandshakeFailed(_) => v.handshake = Some(e),
                EventKind::In(p) => {
                    if is_ping(p) {
                        v.pings.push(e);
                    } else {
                        if v.welcome_t.is_none()
                            && p.text().and_then(json_type).as_deref() == Some("welcome")
                        {
                            v.welcome_t = Some(e.t_ms);
                        }
                        v.frames.push(e);
                    }
                }
                EventKind::Close(c) => v.close = Some((e, c)),
                EventKind::Out(_) | EventKind::Http(_) | EventKind::Note(_) => {}
            }
        }
        v
    }
}

fn json_type(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("type")?.as_str().map(str::to_owned)
}

/// Whether a frame is a ping (any frame whose JSON `type` is `"ping"`; its shape is
/// checked separately).
fn is_ping(p: &Payload) -> bool {
    p.text().and_then(json_type).as_deref() == Some("ping")
}

/// The ping's `message` if the frame has exactly the shape `{"type":"ping","message":<int>}`.
fn ping_message(p: &Payload) -> Option<i64> {
    let v: Value = serde_json::from_str(p.text()?).ok()?;
    let o = v.as_object()?;
    if o.len() != 2 || o.get("type")?.as_str()? != "ping" {
        return None;
    }
    o.get("message")?.as_i64()
}

fn payload_of(e: &Event) -> &Payload {
    match &e.kind {
        EventKind::In(p) | EventKind::Out(p) => p,
        _ => unreachable!("only frame events are compared as frames"),
    }
}

fn describe_handshake(e: Option<&Event>) -> String {
    match e.map(|e| &e.kind) {
        None => "no handshake".into(),
        Some(EventKind::Handshake(h)) => match &h.response {
            None => "a handshake without a response (a script, not a recording)".into(),
            Some(r) => format!(
                "upgraded: status {}, subprotocol {}",
                r.status,
                r.subprotocol
                    .as_deref()
                    .map_or("none".to_owned(), |s| format!("{s:?}"))
            ),
        },
        Some(EventKind::HandshakeFailed(h)) => format!("refused: status {}", h.status),
        Some(_) => unreachable!(),
    }
}

fn describe_close(c: Option<&Close>) -> String {
    match c {
        None => "the connection never closed".into(),
        Some(c) => {
            let who = if c.server_initiated() {
                "server closed first"
            } else if c.client_initiated() {
                "client closed first"
            } else {
                "closed without a close handshake"
            };
            format!("{who}, code {}", close_code(c))
        }
    }
}

/// The code the server sent for a server-initiated close, else the event's code.
fn close_code(c: &Close) -> u16 {
    match &c.outcome {
        Some(o) if c.server_initiated() => o.rcvd.as_ref().map_or(c.code, |f| f.code),
        _ => c.code,
    }
}

fn compare_client(
    client: &str,
    e: &ClientView<'_>,
    a: &ClientView<'_>,
    deviations: &Deviations,
) -> Result<(), Mismatch> {
    let mismatch = |t_ms: f64, what: String, expected: String, actual: String| Mismatch {
        client: client.to_owned(),
        t_ms,
        what,
        expected,
        actual,
    };

    // 1. Handshake outcome.
    let (eh, ah) = (
        describe_handshake(e.handshake),
        describe_handshake(a.handshake),
    );
    if eh != ah {
        let t = e.handshake.or(a.handshake).map_or(0.0, |ev| ev.t_ms);
        return Err(mismatch(t, "handshake outcome differs".into(), eh, ah));
    }

    // 2. Frames, pings excluded; with the tolerated deviations applied to the observation.
    let mut actual_frames: Vec<&Event> = a.frames.clone();
    if deviations.allows(Deviation::RemoteDisconnectFrame) {
        let e_closed_by_server = e.close.is_some_and(|(_, c)| c.server_initiated());
        let a_closed_by_server = a.close.is_some_and(|(_, c)| c.server_initiated());
        let is_remote = |ev: &&Event| payload_of(ev).text() == Some(REMOTE_DISCONNECT_FRAME);
        if e_closed_by_server
            && a_closed_by_server
            && actual_frames.last().is_some_and(is_remote)
            && !e.frames.last().is_some_and(is_remote)
        {
            actual_frames.pop();
        }
    }
    for (i, pair) in e
        .frames
        .iter()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(
            actual_frames
                .iter()
                .map(Some)
                .chain(std::iter::repeat(None)),
        )
        .enumerate()
    {
        match pair {
            (None, None) => break,
            (Some(ef), None) => {
                return Err(mismatch(
                    ef.t_ms,
                    format!("frame #{} is missing", i + 1),
                    payload_of(ef).display(),
                    "nothing".into(),
                ))
            }
            (None, Some(af)) => {
                return Err(mismatch(
                    af.t_ms,
                    format!("unexpected frame #{}", i + 1),
                    "nothing".into(),
                    payload_of(af).display(),
                ))
            }
            (Some(ef), Some(af)) => {
                if let Some(why) = frame_difference(payload_of(ef), payload_of(af)) {
                    return Err(mismatch(
                        ef.t_ms,
                        format!("frame #{} differs ({why})", i + 1),
                        payload_of(ef).display(),
                        payload_of(af).display(),
                    ));
                }
            }
        }
    }

    // 3. Close.
    let (ec, ac) = (e.close.map(|(_, c)| c), a.close.map(|(_, c)| c));
    let same_close = match (ec, ac) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.server_initiated() == y.server_initiated()
                && x.client_initiated() == y.client_initiated()
                && (!x.server_initiated() || close_code(x) == close_code(y))
        }
        _ => false,
    };
    if !same_close {
        let t = e.close.or(a.close).map_or(e.last_t, |(ev, _)| ev.t_ms);
        return Err(mismatch(
            t,
            "close differs".into(),
            describe_close(ec),
            describe_close(ac),
        ));
    }

    // 4. Pings.
    for (side, view) in [("expected", e), ("actual", a)] {
        for p in &view.pings {
            if ping_message(payload_of(p)).is_none() {
                let frame = payload_of(p).display();
                let (exp, act) = if side == "expected" {
                    (frame, "(not compared)".into())
                } else {
                    (r#"{"type":"ping","message":<integer>}"#.into(), frame)
                };
                return Err(mismatch(
                    p.t_ms,
                    format!("ping has the wrong shape ({side} side)"),
                    exp,
                    act,
                ));
            }
        }
    }
    for w in a.pings.windows(2) {
        let (p, q) = (w[0], w[1]);
        let gap = q.t_ms - p.t_ms;
        let (mp, mq) = (
            ping_message(payload_of(p)).unwrap_or_default(),
            ping_message(payload_of(q)).unwrap_or_default(),
        );
        if (gap - PING_INTERVAL_MS).abs() > PING_JITTER_MS || mq <= mp {
            return Err(mismatch(
                q.t_ms,
                format!(
                    "ping cadence: pings must be {PING_INTERVAL_MS} ± {PING_JITTER_MS} ms apart \
                     with increasing messages, these are {gap:.1} ms apart"
                ),
                format!(
                    "a ping about {PING_INTERVAL_MS} ms after {}",
                    payload_of(p).display()
                ),
                payload_of(q).display(),
            ));
        }
    }
    if let (Some(w), Some(p)) = (a.welcome_t, a.pings.first()) {
        if p.t_ms - w > PING_INTERVAL_MS + PING_JITTER_MS {
            return Err(mismatch(
                p.t_ms,
                format!("first ping comes {:.1} ms after the welcome", p.t_ms - w),
                format!(
                    "a ping at most {} ms after the welcome",
                    PING_INTERVAL_MS + PING_JITTER_MS
                ),
                payload_of(p).display(),
            ));
        }
    }
    if e.pings.len().abs_diff(a.pings.len()) > PING_COUNT_TOLERANCE {
        return Err(mismatch(
            e.pings.first().or(a.pings.first()).map_or(0.0, |p| p.t_ms),
            format!("ping count differs by more than {PING_COUNT_TOLERANCE}"),
            format!("{} pings", e.pings.len()),
            format!("{} pings", a.pings.len()),
        ));
    }
    Ok(())
}

/// Why two frames differ, or `None` if they are equal under the rules.
fn frame_difference(expected: &Payload, actual: &Payload) -> Option<String> {
    match (expected, actual) {
        (Payload::Text(x), Payload::Text(y)) => {
            match (
                serde_json::from_str::<Value>(x),
                serde_json::from_str::<Value>(y),
            ) {
                (Ok(vx), Ok(vy)) => {
                    let (ix, iy) = (vx.get("identifier"), vy.get("identifier"));
                    if ix != iy {
                        return Some("identifier strings differ".into());
                    }
                    (vx != vy).then(|| "JSON values differ".into())
                }
                _ => (x != y).then(|| "frames differ (not both JSON)".into()),
            }
        }
        (Payload::Large(l), Payload::Text(y)) | (Payload::Text(y), Payload::Large(l)) => {
            (!l.matches(y)).then(|| "large frame's length or SHA-256 differs".into())
        }
        (Payload::Large(x), Payload::Large(y)) => (x.len != y.len || x.sha256 != y.sha256)
            .then(|| "large frame's length or SHA-256 differs".into()),
        (Payload::Binary(x), Payload::Binary(y)) => (x != y).then(|| "binary frames differ".into()),
        _ => Some("one is a text frame, the other binary".into()),
    }
}

fn compare_http(expected: &Transcript, actual: &Transcript) -> Result<(), Mismatch> {
    let calls = |t: &Transcript| -> Vec<(f64, String, Option<u16>)> {
        t.events_of(SCENARIO_CLIENT)
            .filter_map(|e| match &e.kind {
                EventKind::Http(h) => Some((
                    e.t_ms,
                    format!("{} {}", h.method, h.path),
                    h.response.as_ref().map(|r| r.status),
                )),
                _ => None,
            })
            .collect()
    };
    let (ec, ac) = (calls(expected), calls(actual));
    let show = |c: Option<&(f64, String, Option<u16>)>| match c {
        None => "no call".to_owned(),
        Some((_, what, None)) => format!("{what} without a response"),
        Some((_, what, Some(s))) => format!("{what} -> {s}"),
    };
    for i in 0..ec.len().max(ac.len()) {
        let (x, y) = (ec.get(i), ac.get(i));
        if show(x) != show(y) {
            return Err(Mismatch {
                client: SCENARIO_CLIENT.into(),
                t_ms: x.or(y).map_or(0.0, |c| c.0),
                what: format!("http call #{} differs", i + 1),
                expected: show(x),
                actual: show(y),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
                    kind: EventKind::In(Payload::Text(format!(
                        r#"{{"type":"ping","message":{v}}}"#
                    ))),
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
        bad.events[2].kind =
            EventKind::In(Payload::Text(r#"{"type":"ping","message":"5"}"#.into()));
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
}
