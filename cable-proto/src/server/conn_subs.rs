//! The subscriptions of each connection: a singly linked list through the
//! subscription records ([`Sub::next_of_conn`]), in subscribe order, headed
//! by [`Conn::first_sub`]. A connection holds few subscriptions (at most
//! `max_subscriptions`), so walking the list is as fast as scanning a slice,
//! and an idle connection carries four bytes for it instead of sixteen.
//!
//! [`Conn::first_sub`]: super::records::Conn::first_sub

use crate::slab::Slab;

use super::records::{Sub, NONE};
use super::Server;

/// The subscriptions of one connection, in subscribe order.
pub(super) struct ConnSubs<'a> {
    subs: &'a Slab<Sub>,
    next: u32,
}

impl Iterator for ConnSubs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let current = self.next;
        let sub = self.subs.get(current)?;
        self.next = sub.next_of_conn;
        Some(current)
    }
}

impl Server {
    /// The subscriptions of connection `conn`, in subscribe order.
    pub(super) fn subs_of(&self, conn: u32) -> ConnSubs<'_> {
        ConnSubs {
            subs: &self.subs,
            next: self.conns.get(conn).map_or(NONE, |c| c.first_sub),
        }
    }

    /// Appends subscription `sub` to connection `conn`'s list.
    pub(super) fn link_sub(&mut self, conn: u32, sub: u32) {
        if let Some(s) = self.subs.get_mut(sub) {
            s.next_of_conn = NONE;
        }
        match self.subs_of(conn).last() {
            Some(last) => {
                if let Some(s) = self.subs.get_mut(last) {
                    s.next_of_conn = sub;
                }
            }
            None => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.first_sub = sub;
                }
            }
        }
    }

    /// Takes subscription `sub` out of connection `conn`'s list, if it is in it.
    pub(super) fn unlink_sub(&mut self, conn: u32, sub: u32) {
        let next = self.subs.get(sub).map_or(NONE, |s| s.next_of_conn);
        if self.conns.get(conn).is_some_and(|c| c.first_sub == sub) {
            if let Some(c) = self.conns.get_mut(conn) {
                c.first_sub = next;
            }
            return;
        }
        let before = self
            .subs_of(conn)
            .find(|&s| self.subs.get(s).is_some_and(|s| s.next_of_conn == sub));
        if let Some(s) = before.and_then(|before| self.subs.get_mut(before)) {
            s.next_of_conn = next;
        }
    }

    /// Empties connection `conn`'s list and returns what it held, in order.
    pub(super) fn take_subs(&mut self, conn: u32) -> Vec<u32> {
        let subs: Vec<u32> = self.subs_of(conn).collect();
        if let Some(c) = self.conns.get_mut(conn) {
            c.first_sub = NONE;
        }
        subs
    }
}
