//! The server state machine, points 6-7 of the protocol (pings; close, restart and
//! remote disconnect), with exact frames.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use cable_proto::server::{Config, Event, UnsubscribeCause};
use cable_proto::{Identity, OriginPolicy, UsageError};
use common::*;

// ---------------------------------------------------------------- 6. pings

#[test]
fn one_ping_frame_for_every_welcomed_connection() {
    let mut host = Host::new();
    let a = host.connect("alice");
    let b = host.connect("bob");
    let (pending_conn, _pending) = host.open_pending();
    assert_eq!(
        host.server.poll_timeout(),
        Some(host.start + Duration::from_secs(3))
    );
    host.advance(Duration::from_millis(2999));
    assert!(host.all_frames().is_empty());
    host.advance(Duration::from_millis(1));
    let mut pings = Vec::new();
    while let Some(t) = host.server.poll_transmit() {
        pings.push(t);
    }
    assert_eq!(
        pings.len(),
        2,
        "not to the pending connection {pending_conn}"
    );
    let (cable_proto::server::Frame::Text(x), cable_proto::server::Frame::Text(y)) =
        (&pings[0].frame, &pings[1].frame)
    else {
        panic!()
    };
    assert_eq!(&x[..], br#"{"type":"ping","message":1700000003}"#);
    assert_eq!(x.as_ptr(), y.as_ptr(), "one encoded frame, shared");
    assert_eq!([pings[0].connection, pings[1].connection], [a, b]);
    assert_eq!(
        host.server.poll_timeout(),
        Some(host.start + Duration::from_secs(6))
    );
    // A late timeout sends one ping and keeps the beat.
    host.advance(Duration::from_millis(7500));
    assert_eq!(
        host.frames_for_all_text(),
        vec![r#"{"type":"ping","message":1700000010}"#; 2]
    );
    assert_eq!(
        host.server.poll_timeout(),
        Some(host.start + Duration::from_secs(12))
    );
}

trait AllText {
    fn frames_for_all_text(&mut self) -> Vec<String>;
}

impl AllText for Host {
    fn frames_for_all_text(&mut self) -> Vec<String> {
        self.all_frames()
            .into_iter()
            .map(|(_, f)| match f {
                Out::Text(t) => t,
                Out::Close(c) => panic!("close {c}"),
            })
            .collect()
    }
}

#[test]
fn ping_interval_is_configurable() {
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        ping_interval: Duration::from_secs(10),
        ..Config::default()
    });
    let _a = host.connect("alice");
    assert_eq!(
        host.server.poll_timeout(),
        Some(host.start + Duration::from_secs(10))
    );
    host.advance(Duration::from_secs(10));
    assert_eq!(
        host.frames_for_all_text(),
        vec![r#"{"type":"ping","message":1700000010}"#]
    );
}

// ---------------------------------------------------------------- 7. close, restart, remote

#[test]
fn close_reports_every_subscription_then_the_close() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    let s1 = host.subscribe(conn, CHAT, &["chat_r1"]);
    let s2 = host.subscribe(conn, CHAT_REORDERED, &["chat_r1"]);
    host.server.handle_close(conn, host.now).unwrap();
    let events = host.events();
    let mut ended: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Unsubscribed {
                subscription,
                cause,
                ..
            } => {
                assert_eq!(*cause, UnsubscribeCause::ConnectionClosed);
                Some(*subscription)
            }
            _ => None,
        })
        .collect();
    ended.sort();
    let mut expected = vec![s1, s2];
    expected.sort();
    assert_eq!(ended, expected);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::StreamStopped(_)))
            .count(),
        1
    );
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            connection: conn,
            identity: Some(Identity::new("alice"))
        })
    );
    assert_eq!(host.server.subscription_count(), 0);
    assert_eq!(host.server.stream_count(), 0);
    assert_eq!(host.server.connection_count(), 0);
    assert_eq!(
        host.server.handle_text(conn, b"{}", host.now),
        Err(UsageError::UnknownConnection)
    );
}

#[test]
fn restart_disconnects_everyone_with_server_restart() {
    let mut host = Host::new();
    let a = host.connect("alice");
    let b = host.connect("bob");
    host.subscribe(a, CHAT, &["chat_r1"]);
    host.server.restart(host.now);
    let frames = host.all_frames();
    let restart =
        Out::Text(r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#.into());
    assert_eq!(
        frames,
        vec![
            (a, restart.clone()),
            (a, Out::Close(1000)),
            (b, restart),
            (b, Out::Close(1000))
        ]
    );
    assert_eq!(host.server.subscription_count(), 0);
    let events = host.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Unsubscribed {
            cause: UnsubscribeCause::Disconnected,
            ..
        }
    )));
    // No more pings to closing connections.
    host.advance(Duration::from_secs(3));
    assert!(host.all_frames().is_empty());
}

#[test]
fn remote_disconnect_closes_every_connection_of_the_identity() {
    let mut host = Host::new();
    let a1 = host.connect("alice");
    let a2 = host.connect("alice");
    let b = host.connect("bob");
    assert_eq!(host.server.disconnect_identity("alice", false, host.now), 2);
    let remote = Out::Text(r#"{"type":"disconnect","reason":"remote","reconnect":false}"#.into());
    assert_eq!(
        host.all_frames(),
        vec![
            (a1, remote.clone()),
            (a1, Out::Close(1000)),
            (a2, remote),
            (a2, Out::Close(1000))
        ]
    );
    assert_eq!(host.server.disconnect_identity("alice", true, host.now), 0);
    assert!(host.server.is_open(b));
}
