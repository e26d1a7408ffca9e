//! Target `timers`: the core's deadlines and decisions under arbitrary time.
//!
//! A few connections (Action Cable or a custom protocol) are opened and
//! accepted or rejected after random delays; they subscribe and perform,
//! and the host answers, vetoes, forgets or answers late; credentials get
//! expiries that are set, moved, refreshed and cleared; streams are reported
//! ready or not; broadcasts go out; time advances by random amounts (zero,
//! a little, up to the next deadline or just before it, days, years), calls
//! sometimes pass a `now` behind the core's clock, and `handle_timeout` runs
//! at `poll_timeout` or at random times. The configuration draws
//! `DecisionTimeouts`, `upstream_ready_timeout`, `confirm_when_streams_ready`,
//! the ping interval and the hold bound.
//!
//! The host keeps its own model of every deadline, computed from the core's
//! clock `T` (the latest `now` passed: the core counts a deadline from its
//! own clock when it opens the decision) and checks after every call:
//!
//! - **nothing fires early**: `DecisionExpired` only for the decision the
//!   connection waits for, of the right kind, once `T >= ` its deadline; a
//!   `token_expired` disconnect only once `T >=` the expiry the host set;
//!   `UpstreamTimedOut` only for a stream not ready once `T >=` its deadline;
//!   a confirmation that waits for streams only once they are all ready;
//! - **nothing is missed**: after `handle_timeout`, `set_expiry` and
//!   `accept_connection` (calls that end with every due deadline fired) no
//!   deadline `<= T` is still pending in the model (decision, expiry,
//!   upstream); after any other call only one opened by that very call and
//!   due exactly at `T` (a zero timeout) may be; a subscription whose
//!   streams are all ready is confirmed;
//! - **`poll_timeout`** is never later than any pending deadline or the next
//!   ping beat, is never earlier than `T` unless it is the ping beat that is
//!   already due (no `handle_timeout` since), and after `handle_timeout(t)`
//!   it is later than `t` (a host looping on it never spins);
//! - **answers**: an answer after the deadline passed is refused with
//!   `UsageError::DecisionExpired` (or `StaleDecision` once a later decision
//!   of the connection expired, or the connection is gone), never `Ok`; an
//!   answer refused so must come with the expiry (or the close) in the same
//!   call; an `Ok` answer means the deadline had not passed;
//! - **a vetoed, expired or late perform sends nothing**: every frame that
//!   carries a perform's mark comes out in the call that completed it;
//! - **order**: while a connection's decision is pending (or its
//!   confirmation waits for streams) none of its later commands is handled:
//!   no `SubscriptionRequested`, `Perform` or command error of its own comes
//!   out, performs come out in the order sent, a custom connection's frames
//!   come out as `Received` in the order sent and only once it is accepted;
//!   and a connection that waits for nothing holds no frame;
//! - **the timer store stays bounded**: `timer_count()` is at most
//!   `max(64, 2 * (2 * connections + streams))`, as counted before the call,
//!   plus the deadlines the call itself set (the store's compaction rule);
//! - no panic.
//!
//! Layout: `decode` reads the configuration and one operation per step
//! from the input (and holds the pools its indices pick from), `model`
//! keeps the deadlines and decisions the host can compute, `operations`
//! makes the calls on the core and records what they asked, `checks`
//! drains the core after every call and checks the invariants above.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only, like the other cable-proto targets.

mod checks;
mod decode;
mod model;
mod operations;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cable_proto::server::{DecisionTimeouts, Server};
use cable_proto::{ConnectionId, SubscriptionId, UsageError};

use crate::input::Input;
use crate::wire::Wire;
use model::{Conn, Refused, StreamModel, Token};

/// Most operations one input runs.
pub const MAX_OPS: usize = 512;

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut host = Host::new(&mut input);
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        host.step(&mut input);
        ops += 1;
    }
    host.finish();
}

/// The host: the server under test, what it sees on the wire, and its
/// model of every connection, decision, token and stream.
struct Host {
    server: Server,
    wire: Wire,
    timeouts: DecisionTimeouts,
    upstream: Option<Duration>,
    confirm_when_ready: bool,
    start: Instant,
    /// The host's time.
    wall: Instant,
    /// How far behind `wall` calls pass their `now`.
    lag: Duration,
    /// The core's clock: the latest `now` passed.
    clock: Instant,
    interval: Duration,
    /// The next ping beat, as the core must schedule it.
    next_ping: Instant,
    conns: Vec<Conn>,
    tokens: Vec<Token>,
    late: Vec<Token>,
    streams: BTreeMap<String, StreamModel>,
    performs: u64,
    broadcasts: u64,
    /// Print every step (`CABLE_FUZZ_TRACE` set).
    trace: bool,
    /// Calls made so far (the number of the latest).
    calls: u64,
    /// The latest call that ends with every due deadline fired.
    strict_call: u64,
    // Per step.
    timeout_at: Option<Instant>,
    pinged: bool,
    completed: BTreeSet<u64>,
    rejects: Vec<(ConnectionId, usize)>,
    refused: Vec<Refused>,
    sent_now: Option<(ConnectionId, u32)>,
    ready_now: Option<String>,
    unsubscribed_now: Option<SubscriptionId>,
    closed_now: Option<ConnectionId>,
    late_answer: Option<(ConnectionId, u32, Result<(), UsageError>)>,
    pushed: usize,
    bound_before: usize,
    calls_before: u64,
}

impl Host {
    /// Forgets what the previous step expected.
    fn begin_step(&mut self) {
        self.timeout_at = None;
        self.pinged = false;
        self.completed.clear();
        self.rejects.clear();
        self.refused.clear();
        self.sent_now = None;
        self.ready_now = None;
        self.unsubscribed_now = None;
        self.closed_now = None;
        self.late_answer = None;
        self.pushed = 0;
        self.bound_before = 2 * self.server.connection_count() + self.server.stream_count();
        self.calls_before = self.calls;
    }

    fn finish(mut self) {
        while !self.conns.is_empty() {
            self.begin_step();
            self.close(0);
            self.settle();
            self.check();
        }
        assert_eq!(self.server.subscription_count(), 0, "subscriptions left");
        assert_eq!(self.server.stream_count(), 0, "streams left");
        assert!(self.streams.is_empty(), "streams not reported stopped");
        // Every late token is refused, as the model says.
        while !self.late.is_empty() {
            self.begin_step();
            self.answer_late(0, 0);
            self.settle();
        }
    }
}
