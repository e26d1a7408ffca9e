//! Credential deadlines in bulk: 10,000 connections with distinct expiries,
//! set in a scrambled order, each closed with `token_expired` at exactly its
//! instant, in deadline order, by a host that only sleeps until
//! `poll_timeout`.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use cable_proto::server::{Config, ConnectionAccept, Event};
use cable_proto::{DisconnectReason, Identity, OriginPolicy};
use common::*;

#[test]
fn ten_thousand_distinct_deadlines_fire_in_order_each_at_its_instant() {
    const N: u64 = 10_000;
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        // Pings out of the way.
        ping_interval: Duration::from_secs(365 * 24 * 3600),
        ..Config::default()
    });
    // Deadline of connection i: start + 1 s + perm(i) ms, a permutation so
    // that the set order is not the deadline order.
    let mut expected = Vec::new();
    for i in 0..N {
        let slot = (i * 7_919) % N;
        let at = host.start + Duration::from_secs(1) + Duration::from_millis(slot);
        let (conn, pending) = host.open_pending();
        host.server
            .accept_connection(
                pending,
                ConnectionAccept::new(Identity::new(format!("m{i}"))).expires_at(at),
                host.now,
            )
            .unwrap();
        expected.push((at, conn));
    }
    host.all_frames();
    host.events();
    expected.sort();
    let mut fired = Vec::new();
    while fired.len() < expected.len() {
        let next = host.server.poll_timeout().expect("a deadline is pending");
        assert!(next >= host.now, "poll_timeout went back in time");
        host.now = next;
        host.server.handle_timeout(next);
        for event in host.events() {
            match event {
                Event::Disconnecting {
                    connection,
                    reason: DisconnectReason::TokenExpired,
                    reconnect: false,
                } => fired.push((host.now, connection)),
                other => panic!("unexpected {other:?}"),
            }
        }
        host.all_frames();
    }
    assert_eq!(fired, expected, "every expiry at its instant, in order");
    // The store is bounded: stale entries do not pile up.
    assert!(host.server.timer_count() <= 2 * N as usize + 64);
}
