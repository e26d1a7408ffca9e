//! The connections of each identity, in accept order: a doubly linked list
//! through the connection records, with its ends in a map, so that adding
//! and removing a connection is O(1) however many share an identity (every
//! tokenless client of an open app is `anonymous`).
//!
//! The map is keyed by the identity's seeded hash, not by the identity: its
//! entries take 16 bytes instead of 24 (and hold no reference on the
//! identity). Identities whose hashes collide share a list; every
//! connection keeps its identity, and [`Server::connections_of`] keeps only
//! those of the identity asked for.

use std::hash::BuildHasher;

use crate::types::Identity;

use super::records::NONE;
use super::Server;

impl Server {
    /// Gives connection `index` `identity` and appends it to the identity's
    /// list.
    pub(super) fn link_identity(&mut self, index: u32, identity: Identity) {
        let key = self.identity_key(identity.as_str());
        let tail = match self.identities.get_mut(&key) {
            Some((_, tail)) => {
                let previous = *tail;
                *tail = index;
                previous
            }
            None => {
                self.identities.insert(key, (index, index));
                NONE
            }
        };
        if tail != NONE {
            if let Some(c) = self.conns.get_mut(tail) {
                c.next_same_identity = index;
            }
        }
        if let Some(conn) = self.conns.get_mut(index) {
            conn.prev_same_identity = tail;
            conn.next_same_identity = NONE;
            conn.identity = Some(identity);
        }
    }

    /// Takes connection `index` out of its identity's list (it keeps the
    /// identity, for [`Event::Closed`](super::Event::Closed)). Idempotent.
    pub(super) fn unlink_identity(&mut self, index: u32) {
        let Some(conn) = self.conns.get(index) else {
            return;
        };
        let Some(identity) = conn.identity.as_ref() else {
            return;
        };
        let key = self.identity_key(identity.as_str());
        let (prev, next) = (conn.prev_same_identity, conn.next_same_identity);
        let Some(&(head, tail)) = self.identities.get(&key) else {
            return;
        };
        if prev == NONE && head != index {
            return; // not in the list (unlinked already)
        }
        match (prev, next) {
            (NONE, NONE) => {
                self.identities.remove(&key);
            }
            _ => {
                if let Some(c) = self.conns.get_mut(prev) {
                    c.next_same_identity = next;
                }
                if let Some(c) = self.conns.get_mut(next) {
                    c.prev_same_identity = prev;
                }
                let new_head = if head == index { next } else { head };
                let new_tail = if tail == index { prev } else { tail };
                if let Some(ends) = self.identities.get_mut(&key) {
                    *ends = (new_head, new_tail);
                }
            }
        }
        if let Some(c) = self.conns.get_mut(index) {
            c.prev_same_identity = NONE;
            c.next_same_identity = NONE;
        }
    }

    /// The connections of an identity, in accept order.
    pub(super) fn connections_of(&self, identity: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = self
            .identities
            .get(&self.identity_key(identity))
            .map_or(NONE, |&(head, _)| head);
        while let Some(conn) = self.conns.get(cur) {
            if conn
                .identity
                .as_ref()
                .is_some_and(|i| i.as_str() == identity)
            {
                out.push(cur);
            }
            cur = conn.next_same_identity;
        }
        out
    }

    /// The key of `identity`'s list: its seeded hash.
    fn identity_key(&self, identity: &str) -> u64 {
        self.identities.hasher().hash_one(identity)
    }
}
