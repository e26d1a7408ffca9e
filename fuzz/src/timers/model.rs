//! The deadline model: each connection's state and what its commands wait
//! for (a decision with its deadline, or streams), the decisions numbered as
//! the core numbers them, the outstanding and late tokens, the streams and
//! their upstream deadlines, all counted from the core's clock (the latest
//! `now` passed); and the queries on it the other parts share.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use cable_proto::server::{PendingConnection, PendingPerform, PendingSubscription};
use cable_proto::{ConnectionId, SubscriptionId};

use super::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Pending,
    Open,
    Closing,
}

/// What a pending decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Connection,
    Subscription { sub: SubscriptionId, ident: usize },
    Perform { number: u64 },
}

/// What a connection's commands wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Blocked {
    No,
    /// A decision of the application: the token is out.
    Decision {
        seq: u32,
        kind: Kind,
        deadline: Option<Instant>,
        /// The call that opened it.
        step: u64,
    },
    /// A subscription was accepted; its confirmation waits for streams.
    Streams {
        ident: usize,
        streams: Vec<String>,
    },
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) id: ConnectionId,
    pub(super) custom: bool,
    pub(super) state: State,
    pub(super) blocked: Blocked,
    /// Decisions numbered as the core numbers them (the connection's is 1).
    pub(super) seq: u32,
    /// The number of the last decision that expired (0: none).
    pub(super) last_expired: u32,
    pub(super) expiry: Option<Instant>,
    /// Live subscriptions (confirmed or waiting for streams), by identifier.
    pub(super) subs: BTreeMap<usize, SubscriptionId>,
    /// Frames sent.
    pub(super) sent: u32,
    /// The sequence number of the last perform reported.
    pub(super) last_perform: u32,
    /// Custom protocol: frames sent and not reported yet, in order.
    pub(super) unreceived: VecDeque<u32>,
}

#[derive(Debug)]
pub(super) enum Handle {
    Connection(PendingConnection),
    Subscription(PendingSubscription),
    Perform(PendingPerform),
}

#[derive(Debug)]
pub(super) struct Token {
    pub(super) conn: ConnectionId,
    pub(super) seq: u32,
    pub(super) handle: Handle,
    /// A perform's number (its mark in frames).
    pub(super) number: u64,
}

#[derive(Debug)]
pub(super) struct StreamModel {
    pub(super) ready: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) step: u64,
}

/// A call on something the model had live, refused: the call itself must
/// have ended it before its own work (it fires what is due first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// An answer to decision `seq` of the connection refused as expired:
    /// the decision expired in this call, and it is the last to.
    Expired(ConnectionId, u32),
    /// An answer refused as stale: the connection closed in this call, or
    /// the decision expired in it and a later one of the connection too.
    Stale(ConnectionId, u32),
    /// `ConnectionNotOpen` or `UnknownSubscription`: the connection closed
    /// in this call.
    Closed(ConnectionId),
}

impl Host {
    /// The `now` calls pass: the host's time minus the lag.
    pub(super) fn call_time(&self) -> Instant {
        self.wall
            .checked_sub(self.lag)
            .map_or(self.start, |t| t.max(self.start))
    }

    /// A call with `now` is about to be made: the core's clock follows.
    pub(super) fn begin_call(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        self.calls += 1;
    }

    /// The `now` of the next call, which is about to be made.
    pub(super) fn now(&mut self) -> Instant {
        let now = self.call_time();
        self.begin_call(now);
        now
    }

    pub(super) fn conn_at(&self, index: usize) -> Option<ConnectionId> {
        (!self.conns.is_empty()).then(|| self.conns[index % self.conns.len()].id)
    }

    pub(super) fn conn(&mut self, id: ConnectionId) -> &mut Conn {
        self.conns
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} is not a known connection"))
    }

    pub(super) fn known(&self, id: ConnectionId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }

    /// A deadline `timeout` after the core's clock (none past what an
    /// `Instant` holds).
    pub(super) fn after(&self, timeout: Option<Duration>) -> Option<Instant> {
        timeout.and_then(|t| self.clock.checked_add(t))
    }

    /// Takes the outstanding token at `which` among those `select` accepts.
    pub(super) fn take_token(
        &mut self,
        which: usize,
        select: fn(&Handle) -> bool,
    ) -> Option<Token> {
        let at: Vec<usize> = (0..self.tokens.len())
            .filter(|&i| select(&self.tokens[i].handle))
            .collect();
        (!at.is_empty()).then(|| self.tokens.remove(at[which % at.len()]))
    }

    /// The deadline of decision `seq` of `conn`, as the model has it.
    pub(super) fn deadline_of(&self, conn: ConnectionId, seq: u32) -> Option<Instant> {
        match self.known(conn).map(|c| &c.blocked) {
            Some(Blocked::Decision {
                seq: s, deadline, ..
            }) if *s == seq => *deadline,
            other => panic!("outstanding token {seq} of {conn} without its decision: {other:?}"),
        }
    }

    /// Whether every deadline of the model is after the core's clock.
    pub(super) fn nothing_due(&self) -> bool {
        let clock = self.clock;
        let conns = self.conns.iter().filter(|c| c.state != State::Closing);
        conns.clone().all(|c| c.expiry.is_none_or(|e| e > clock))
            && conns.clone().all(|c| match &c.blocked {
                Blocked::Decision { deadline, .. } => deadline.is_none_or(|d| d > clock),
                _ => true,
            })
            && self
                .streams
                .values()
                .all(|s| s.ready || s.deadline.is_none_or(|d| d > clock))
    }

    /// Moves a connection's outstanding tokens to the late ones.
    pub(super) fn retire_tokens(&mut self, conn: ConnectionId) {
        let mut i = 0;
        while i < self.tokens.len() {
            if self.tokens[i].conn == conn {
                let token = self.tokens.remove(i);
                self.late.push(token);
            } else {
                i += 1;
            }
        }
    }
}
