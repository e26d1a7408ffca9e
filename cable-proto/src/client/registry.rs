//! The consumer's subscriptions (`subscriptions.js`) and the subscription
//! guarantor (`subscription_guarantor.js`): which subscriptions exist, in
//! creation order, which share an identifier, and which wait for their
//! confirmation.

use std::collections::BTreeMap;

use super::SubscriptionKey;

/// One local subscription.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) identifier: String,
    /// Confirmed on the current connection.
    pub(super) confirmed: bool,
    /// Confirmed on some connection before (the next confirmation is a
    /// reconnection).
    pub(super) confirmed_before: bool,
}

/// Every local subscription, keyed by creation order, with an index by
/// identifier.
#[derive(Debug, Default)]
pub(super) struct Registry {
    next_key: u64,
    entries: BTreeMap<SubscriptionKey, Entry>,
    by_identifier: BTreeMap<String, Vec<SubscriptionKey>>,
    /// The guarantor's pending subscriptions, in the order they were
    /// guaranteed.
    pending: Vec<SubscriptionKey>,
}

impl Registry {
    pub(super) fn add(&mut self, identifier: String) -> SubscriptionKey {
        let key = SubscriptionKey(self.next_key);
        self.next_key += 1;
        self.by_identifier
            .entry(identifier.clone())
            .or_default()
            .push(key);
        self.entries.insert(
            key,
            Entry {
                identifier,
                confirmed: false,
                confirmed_before: false,
            },
        );
        key
    }

    /// Removes a subscription; gives its identifier and whether another local
    /// subscription still shares it.
    pub(super) fn remove(&mut self, key: SubscriptionKey) -> Option<(String, bool)> {
        let entry = self.entries.remove(&key)?;
        self.forget_pending(key);
        let mut shared = false;
        if let Some(keys) = self.by_identifier.get_mut(&entry.identifier) {
            keys.retain(|k| *k != key);
            shared = !keys.is_empty();
            if !shared {
                self.by_identifier.remove(&entry.identifier);
            }
        }
        Some((entry.identifier, shared))
    }

    pub(super) fn get(&self, key: SubscriptionKey) -> Option<&Entry> {
        self.entries.get(&key)
    }

    pub(super) fn get_mut(&mut self, key: SubscriptionKey) -> Option<&mut Entry> {
        self.entries.get_mut(&key)
    }

    /// The subscriptions sharing an identifier, in creation order.
    pub(super) fn find_all(&self, identifier: &str) -> Vec<SubscriptionKey> {
        self.by_identifier
            .get(identifier)
            .cloned()
            .unwrap_or_default()
    }

    /// Every subscription, in creation order.
    pub(super) fn keys(&self) -> Vec<SubscriptionKey> {
        self.entries.keys().copied().collect()
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// `guarantee(subscription)`: pending until confirmed (no duplicates).
    pub(super) fn guarantee(&mut self, key: SubscriptionKey) {
        if !self.pending.contains(&key) {
            self.pending.push(key);
        }
    }

    /// `forget(subscription)`.
    pub(super) fn forget_pending(&mut self, key: SubscriptionKey) {
        self.pending.retain(|k| *k != key);
    }

    pub(super) fn pending(&self) -> Vec<SubscriptionKey> {
        self.pending.clone()
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The connection is gone: nothing is confirmed any more.
    pub(super) fn connection_lost(&mut self) {
        self.pending.clear();
        for entry in self.entries.values_mut() {
            entry.confirmed = false;
        }
    }
}
