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
//!    large frames by length and SHA-256. One exception to the order, for what Rails leaves
//!    unordered: a *broadcast group* of the recording is compared as a multiset (see below).
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
//! **Broadcast groups.** Rails 6.1 defines no order among the frames one broadcast produces
//! for several subscriptions of one connection: each subscription's stream callback runs on
//! its own in the worker pool. A broadcast group is a run of at least two consecutive
//! non-ping frames of one client *in the recording* such that
//!
//! - each frame is a text frame whose JSON is an object with exactly the keys `identifier`
//!   (a string) and `message` (a stream message, not a confirmation or any other frame);
//! - all have the same `message` value (JSON equality), and there are at least two
//!   different `identifier` strings among them;
//! - no scripted step of the scenario (a handshake, `out` frame, `http` call or
//!   client-initiated close, of any client) is recorded between two consecutive members,
//!   so no new cause can have come between them.
//!
//! Groups are maximal. The observation's frames at the same positions (the frames before a
//! group are matched one to one, so the positions line up) must be the same frames in any
//! order: each member matched by exactly one frame under the rules above, so a missing,
//! duplicated, changed or foreign frame in the group is still a difference. Everything else
//! stays strictly ordered. The rule is not a [`Deviation`]: it applies in every replay,
//! against the core and against live servers, Rails included.
//!
//! Anything else is a [`Mismatch`], unless a [`Deviation`] in the given set tolerates it.

use std::fmt;
use std::ops::Range;

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
    let steps = step_positions(expected);
    for c in &clients {
        let e = ClientView::of(expected, c);
        let a = ClientView::of(actual, c);
        let groups = broadcast_groups(&e, &steps);
        if let Err(m) = compare_client(c, &e, &a, &groups, deviations) {
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
    /// Where each of `frames` is in the transcript's events.
    frame_positions: Vec<usize>,
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
            frame_positions: Vec::new(),
            pings: Vec::new(),
            close: None,
            welcome_t: None,
            last_t: 0.0,
        };
        for (i, e) in t.events.iter().enumerate() {
            if e.client != client {
                continue;
            }
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
                        v.frame_positions.push(i);
                    }
                }
                EventKind::Close(c) => v.close = Some((e, c)),
                EventKind::Out(_) | EventKind::Http(_) | EventKind::Note(_) => {}
            }
        }
        v
    }
}

/// Where the scripted steps of a recording are among its events: handshakes (refused or
/// not), `out` frames, `http` calls and client-initiated closes, of every client. Sorted.
fn step_positions(t: &Transcript) -> Vec<usize> {
    t.events
        .iter()
        .enumerate()
        .filter(|(_, e)| match &e.kind {
            EventKind::Handshake(_)
            | EventKind::HandshakeFailed(_)
            | EventKind::Out(_)
            | EventKind::Http(_) => true,
            EventKind::Close(c) => c.client_initiated(),
            EventKind::In(_) | EventKind::Note(_) => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// The `identifier` and `message` of a frame that is exactly
/// `{"identifier": <string>, "message": <any>}` (a stream message).
fn stream_message(p: &Payload) -> Option<(String, Value)> {
    let v: Value = serde_json::from_str(p.text()?).ok()?;
    let o = v.as_object()?;
    if o.len() != 2 {
        return None;
    }
    let identifier = o.get("identifier")?.as_str()?.to_owned();
    Some((identifier, o.get("message")?.clone()))
}

/// The broadcast groups of a recorded client (see the module docs), as ranges of indices
/// into its `frames`, in order.
fn broadcast_groups(view: &ClientView<'_>, steps: &[usize]) -> Vec<Range<usize>> {
    let members: Vec<Option<(String, Value)>> = view
        .frames
        .iter()
        .map(|e| stream_message(payload_of(e)))
        .collect();
    // Whether a scripted step lies between the events at positions `a` < `b`.
    let step_between = |a: usize, b: usize| {
        let next = steps.partition_point(|&s| s <= a);
        steps.get(next).is_some_and(|&s| s < b)
    };
    let mut groups = Vec::new();
    let mut i = 0;
    while i < members.len() {
        let mut j = i + 1;
        if let Some((_, message)) = &members[i] {
            while j < members.len()
                && members[j].as_ref().is_some_and(|(_, m)| m == message)
                && !step_between(view.frame_positions[j - 1], view.frame_positions[j])
            {
                j += 1;
            }
            let first_id = members[i].as_ref().map(|(id, _)| id);
            let several = members[i + 1..j]
                .iter()
                .any(|m| m.as_ref().map(|(id, _)| id) != first_id);
            if several {
                groups.push(i..j);
            }
        }
        i = j;
    }
    groups
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
    groups: &[Range<usize>],
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
    let mut groups = groups.iter().peekable();
    let mut i = 0;
    while i < e.frames.len().max(actual_frames.len()) {
        if let Some(g) = groups.next_if(|g| g.start == i) {
            compare_group(g, &e.frames, &actual_frames)
                .map_err(|(t, what, exp, act)| mismatch(t, what, exp, act))?;
            i = g.end;
            continue;
        }
        match (e.frames.get(i), actual_frames.get(i)) {
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
        i += 1;
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

/// Compares the recorded broadcast group `g` with the observed frames at the same positions
/// as a multiset: every member must be matched by exactly one of them. Returns the
/// mismatch's time, description, expected and actual side.
fn compare_group(
    g: &Range<usize>,
    expected: &[&Event],
    actual: &[&Event],
) -> Result<(), (f64, String, String, String)> {
    let members = &expected[g.clone()];
    let window = actual
        .get(g.clone())
        .unwrap_or(&actual[g.start.min(actual.len())..]);
    let mut unmatched: Vec<&Event> = window.to_vec();
    for (k, ef) in members.iter().enumerate() {
        let found = unmatched
            .iter()
            .position(|af| frame_difference(payload_of(ef), payload_of(af)).is_none());
        match found {
            Some(at) => {
                unmatched.remove(at);
            }
            None => {
                let n = g.start + k + 1;
                let group = format!(
                    "frames #{}-#{} are one broadcast to several subscriptions, compared in \
                     any order",
                    g.start + 1,
                    g.end
                );
                let (what, act) = if unmatched.is_empty() {
                    (
                        format!("frame #{n} is missing ({group})"),
                        "nothing".to_owned(),
                    )
                } else {
                    let left: Vec<String> = unmatched
                        .iter()
                        .map(|af| payload_of(af).display())
                        .collect();
                    (
                        format!("frame #{n} differs ({group}; no frame there matches it)"),
                        left.join(" | "),
                    )
                };
                return Err((ef.t_ms, what, payload_of(ef).display(), act));
            }
        }
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
#[path = "compare_tests.rs"]
mod tests;
