//! Regressions of bugs fixed by the server's reshape, each shown failing on
//! the code before it.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;

use cable_proto::server::{Config, Event, Frame, SubscriptionAccept};
use cable_proto::{ConnectionId, Identity, JsonText, OriginPolicy};
use common::*;

/// Bug 1: `stream_ready` counted a stream once per group of the
/// subscription on it, so a subscription on stream `a` in two modes was
/// confirmed when `a` alone was ready, before `b` was subscribed upstream: a
/// broadcast published on `b` after the client saw the confirmation could be
/// lost.
///
/// What must hold: the confirmation (and the connection's later commands)
/// wait until both `a` and `b` are ready; meanwhile broadcasts on the ready
/// stream reach the subscription (in both of its modes), as Rails delivers a
/// ready stream's messages before the confirmation; after the confirmation, a
/// broadcast on `b` reaches it.
#[test]
fn a_stream_taken_in_two_modes_counts_once_for_the_confirmation() {
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        confirm_when_streams_ready: true,
        ..Config::default()
    });
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!("no subscription request")
    };
    // A later command: it waits for the confirmation.
    host.send(conn, &message(CHAT, r#"{"action":"whoami"}"#));
    let accept = SubscriptionAccept::new()
        .stream("a")
        .stream_raw("a")
        .stream("b");
    host.server
        .accept_subscription(pending, accept, host.now)
        .unwrap();
    assert_eq!(
        host.events(),
        vec![
            Event::StreamStarted("a".into()),
            Event::StreamStarted("b".into())
        ]
    );
    assert_eq!(host.frames(conn), vec![]);

    host.server.stream_ready("a", host.now);
    assert_eq!(host.frames(conn), vec![], "confirmed with `b` not ready");
    assert_eq!(
        host.events(),
        vec![],
        "the message went before the confirmation"
    );
    assert_eq!(host.server.held_frames(conn), 1);

    let delivery = host.server.broadcast("a", r#"{"n":1}"#, host.now);
    assert_eq!((delivery.recipients, delivery.encoded), (2, 2));
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(data_frame(CHAT, r#"{"n":1}"#)),
            Out::Text(data_frame(CHAT, r#""{\"n\":1}""#)),
        ]
    );

    host.server.stream_ready("b", host.now);
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(CHAT))]);
    let perform = host.perform();
    assert_eq!(&*perform.action, "whoami");
    host.complete(perform);

    let delivery = host.server.broadcast("b", r#"{"n":2}"#, host.now);
    assert_eq!((delivery.recipients, delivery.encoded), (1, 1));
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(data_frame(CHAT, r#"{"n":2}"#))]
    );
}

/// A tiny deterministic generator (xorshift64*), so that the schedule is the
/// same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// Bug 2: the connections of one identity were a singly linked list walked
/// to its tail on every accept (and to a connection's predecessor on every
/// close): with every tokenless client `anonymous`, n accepts cost O(n²).
/// They are a doubly linked list now, O(1) per change. No counter of the
/// core's work is observable, so this checks what the fix must keep: at
/// 100,000 connections of one identity, after removals at the head, the tail
/// and the middle, interleaved with new accepts, the identity's connections
/// are exactly the live ones in accept order, as a model keeps them. The
/// cost is timed by the bench group `identities` (one identity beside
/// distinct ones); the old code's accepts were quadratic at this size.
#[test]
fn one_identity_of_100_000_connections_keeps_its_accept_order_through_removals() {
    const N: usize = 100_000;
    let mut host = Host::new();
    // Accept order -> handle, for the live connections of "anonymous".
    let mut model: BTreeMap<usize, ConnectionId> = BTreeMap::new();
    let mut accepted: Vec<ConnectionId> = Vec::new();
    let accept = |host: &mut Host, accepted: &mut Vec<ConnectionId>, model: &mut BTreeMap<_, _>| {
        let (conn, pending) = host.open_pending();
        host.server
            .accept_connection(pending, Identity::new("anonymous"), host.now)
            .unwrap();
        while host.server.poll_transmit().is_some() {}
        model.insert(accepted.len(), conn);
        accepted.push(conn);
    };
    let close = |host: &mut Host, model: &mut BTreeMap<usize, ConnectionId>, order: usize| {
        let conn = model.remove(&order).expect("a live connection");
        host.server.handle_close(conn, host.now).unwrap();
        while host.server.poll_event().is_some() {}
    };
    let check = |host: &Host, model: &BTreeMap<usize, ConnectionId>| {
        let expected: Vec<ConnectionId> = model.values().copied().collect();
        assert_eq!(host.server.connections_of_identity("anonymous"), expected);
    };
    for _ in 0..N {
        accept(&mut host, &mut accepted, &mut model);
    }
    check(&host, &model);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for step in 0..60_000 {
        match step % 4 {
            0 => {
                let head = *model.keys().next().unwrap();
                close(&mut host, &mut model, head);
            }
            1 => {
                let tail = *model.keys().next_back().unwrap();
                close(&mut host, &mut model, tail);
            }
            2 => {
                // A live connection from the middle: the first live one at or
                // after a random accept position.
                let at = rng.below(accepted.len());
                let order = model
                    .range(at..)
                    .next()
                    .or_else(|| model.range(..at).next_back())
                    .map(|(&k, _)| k)
                    .unwrap();
                close(&mut host, &mut model, order);
            }
            _ => accept(&mut host, &mut accepted, &mut model),
        }
        if step % 15_000 == 14_999 {
            check(&host, &model);
        }
    }
    check(&host, &model);
    assert_eq!(host.server.connection_count(), model.len());

    // Targeting follows the list: every live connection once, in accept order.
    let frame = JsonText::new(r#"{"type":"note"}"#).unwrap();
    assert_eq!(
        host.server
            .send_frame_to_identity("anonymous", &frame, host.now),
        model.len()
    );
    let reached: Vec<ConnectionId> = std::iter::from_fn(|| host.server.poll_transmit())
        .map(|t| t.connection)
        .collect();
    assert_eq!(reached, model.values().copied().collect::<Vec<_>>());
    assert_eq!(
        host.server
            .disconnect_identity("anonymous", false, host.now),
        model.len()
    );
    let closed: Vec<ConnectionId> = std::iter::from_fn(|| host.server.poll_transmit())
        .filter(|t| matches!(t.frame, Frame::Close { .. }))
        .map(|t| t.connection)
        .collect();
    assert_eq!(closed, model.values().copied().collect::<Vec<_>>());
    assert_eq!(host.server.connections_of_identity("anonymous"), vec![]);
    // The identity starts afresh.
    let conn = host.connect("anonymous");
    assert_eq!(host.server.connections_of_identity("anonymous"), vec![conn]);
}
