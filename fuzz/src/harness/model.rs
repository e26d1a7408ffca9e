//! The host's records: connections (pending, open or closing, with their
//! identity, token and joins), subscriptions (pending with their token, or
//! live with their streams) and pending performs, built only from what the
//! host asked and what the core reported; and the lookups the other parts
//! of the harness share.

use cable_proto::server::{PendingConnection, PendingPerform, PendingSubscription};
use cable_proto::{ConnectionId, StreamMode, SubscriptionId};

use super::Harness;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnState {
    Pending,
    Open,
    Closing,
}

#[derive(Debug)]
pub(super) struct ConnModel {
    pub(super) id: ConnectionId,
    pub(super) token: Option<PendingConnection>,
    pub(super) state: ConnState,
    pub(super) identity: Option<String>,
    /// Streams joined, with the index of their envelope in
    /// [`ENVELOPES`](super::op::ENVELOPES).
    pub(super) joins: Vec<(String, usize)>,
}

#[derive(Debug)]
pub(super) struct PerformModel {
    pub(super) conn: ConnectionId,
    pub(super) sub: SubscriptionId,
    pub(super) token: PendingPerform,
}

#[derive(Debug)]
pub(super) struct SubModel {
    pub(super) id: SubscriptionId,
    pub(super) conn: ConnectionId,
    pub(super) identifier: String,
    pub(super) token: Option<PendingSubscription>,
    pub(super) streams: Vec<(String, StreamMode)>,
}

impl SubModel {
    pub(super) fn live(&self) -> bool {
        self.token.is_none()
    }
}

impl Harness {
    pub(super) fn conn_at(&self, index: usize) -> Option<ConnectionId> {
        (!self.conns.is_empty()).then(|| self.conns[index % self.conns.len()].id)
    }

    pub(super) fn conn_model(&mut self, id: ConnectionId) -> &mut ConnModel {
        self.conns
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} is not a known connection"))
    }

    pub(super) fn sub_pos(&self, id: SubscriptionId) -> Option<usize> {
        self.subs.iter().position(|s| s.id == id)
    }

    pub(super) fn pending_at(&self, index: usize) -> Option<usize> {
        let pending: Vec<usize> = (0..self.subs.len())
            .filter(|&i| !self.subs[i].live())
            .collect();
        (!pending.is_empty()).then(|| pending[index % pending.len()])
    }

    /// The pending performs of a connection that goes away become stale.
    pub(super) fn stale_performs(&mut self, connection: ConnectionId) {
        let mut i = 0;
        while i < self.performs.len() {
            if self.performs[i].conn == connection {
                let perform = self.performs.remove(i);
                self.stale_performs.push(perform.token);
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn open_conns_of(&self, identity: &str) -> Vec<ConnectionId> {
        self.conns
            .iter()
            .filter(|c| c.state == ConnState::Open && c.identity.as_deref() == Some(identity))
            .map(|c| c.id)
            .collect()
    }
}
