//! A host for [`Server`] driven by a sequence of [`Op`]s, with a naive model
//! of what the core must have done, checked after every operation.
//!
//! The model is the host's own bookkeeping, built from what the host asked
//! for and what the core reported, without looking at the core's insides:
//!
//! - connections: pending, open or closing, with their identity and the
//!   bytes queued for them (see [`Wire`]);
//! - subscriptions: pending (with their decision token) or live (with their
//!   streams and modes);
//! - streams: those the core reported started and not stopped.
//!
//! After every operation the host drains every frame and event, then checks:
//!
//! - every frame is valid JSON of a known shape, in a legal order ([`Wire`]);
//! - no subscription survives its connection: a closing connection has none,
//!   every live one ends with `Unsubscribed` before `Closed`, and no event or
//!   frame names a connection after its `Closed`;
//! - a broadcast reaches exactly the live subscriptions and joins on its
//!   stream (minus the excepted connection), once per stream membership,
//!   with the payload spliced (or as a string, or in the join's envelope),
//!   and is encoded once per group (identifier and mode, or envelope); a
//!   group whose frame is larger than a queue may hold gets nothing
//!   (`Delivery::skipped_too_large`); a completed perform's outcome applies
//!   as documented, a vetoed one not at all;
//! - commands wait: no subscription request or perform of a connection
//!   while another of its decisions is pending;
//! - `subscription_count`, `connection_count`, `stream_count`,
//!   `subscriber_count`, `subscriptions`, `streams_of`, `joined_streams`,
//!   `identity`, `is_open` and `queued_bytes` agree with the model;
//! - queued bytes never exceed the bound;
//! - `poll_timeout` never goes back in time (time only moves forward) and a
//!   due timeout pings every open connection once, with the right seconds;
//! - decisions on stale tokens and calls with stale handles are refused.
//!
//! Layout: `op` is the vocabulary (the operations and the pools their
//! indices pick from), `config` the server configuration of a run, `model`
//! the host's records, `driver` runs an operation on the core and the
//! model, `expected` predicts what it must produce on the wire, `checks`
//! drains the core and checks every invariant.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only.

mod checks;
mod config;
mod driver;
mod expected;
mod model;
mod op;

pub use config::{config, limits};
pub use op::{client_frame, BroadcastKind, Op, Outcome, DATA, IDENTIFIERS, PAYLOADS};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cable_proto::server::{
    Config, Limits, PendingConnection, PendingPerform, PendingSubscription, Server,
};
use cable_proto::{ConnectionId, SubscriptionId};

use crate::wire::Wire;
use model::{ConnModel, PerformModel, SubModel};

/// Unix time at the harness's start (ping payloads count from it).
const UNIX_START: Duration = Duration::from_secs(1_700_000_000);

/// The host and its model.
#[derive(Debug)]
pub struct Harness {
    server: Server,
    start: Instant,
    now: Instant,
    limits: Limits,
    wire: Wire,
    conns: Vec<ConnModel>,
    subs: Vec<SubModel>,
    streams: BTreeSet<String>,
    performs: Vec<PerformModel>,
    stale_subs: Vec<PendingSubscription>,
    stale_conns: Vec<PendingConnection>,
    stale_performs: Vec<PendingPerform>,
    closed_conns: Vec<ConnectionId>,
    ended_subs: Vec<SubscriptionId>,
    last_deadline: Option<Instant>,
    frame_seq: u64,
}

impl Harness {
    /// A host for a server with `config`.
    pub fn new(config: Config) -> Self {
        // The host reads the clock once, for the epoch of its virtual time.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let limits = config.limits.clone();
        let server = Server::new(config, start, UNIX_START);
        let last_deadline = server.poll_timeout();
        Self {
            server,
            start,
            now: start,
            wire: Wire::new(limits.max_queued_bytes),
            limits,
            conns: Vec::new(),
            subs: Vec::new(),
            streams: BTreeSet::new(),
            performs: Vec::new(),
            stale_subs: Vec::new(),
            stale_conns: Vec::new(),
            stale_performs: Vec::new(),
            closed_conns: Vec::new(),
            ended_subs: Vec::new(),
            last_deadline,
            frame_seq: 0,
        }
    }

    /// The server under test.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Closes every connection and checks nothing is left behind.
    pub fn finish(mut self) {
        while !self.conns.is_empty() {
            self.step(Op::Close { conn: 0 });
        }
        assert_eq!(self.server.subscription_count(), 0, "subscriptions left");
        assert_eq!(self.server.stream_count(), 0, "streams left");
        assert_eq!(self.server.connection_count(), 0, "connections left");
        assert!(self.streams.is_empty(), "streams not reported stopped");
    }
}
