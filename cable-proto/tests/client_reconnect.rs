//! The consumer's liveness monitor and reconnects in virtual time, one test
//! per behaviour of `@rails/actioncable` 8.1 (`connection.js`,
//! `connection_monitor.js`), with a fixed jitter source.

mod client_host;

use cable_proto::client::{Event, StopReason};
use cable_proto::DisconnectReason;
use client_host::Host;

const CHAT: &str = r#"{"channel":"ChatChannel","room":"1"}"#;
const SUBSCRIBE_CHAT: &str =
    r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}"}"#;
const CONFIRM_CHAT: &str = r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","type":"confirm_subscription"}"#;
const PING: &str = r#"{"type":"ping","message":1700000000}"#;

#[test]
fn the_subprotocols_offered_are_the_js_clients() {
    let host = Host::new(0.0);
    assert_eq!(
        host.consumer.subprotocols(),
        vec!["actioncable-v1-json", "actioncable-unsupported"]
    );
}

#[test]
fn pings_every_3_s_keep_the_connection_alive() {
    let mut host = Host::new(0.0);
    host.welcomed();
    host.events();
    for ms in (3000..=60_000).step_by(3000) {
        host.advance_to(ms);
        host.frame(PING);
    }
    assert!(host.events().is_empty(), "no reconnect while pings arrive");
    assert_eq!(host.consumer.reconnect_attempts(), 0);
}

#[test]
fn no_frame_for_more_than_6_s_is_stale_at_the_next_poll_and_the_socket_is_reopened() {
    // Jitter 0: the monitor polls every 6 s (6 s × 1.15^0 × (1 + 0)).
    let mut host = Host::new(0.0);
    host.welcomed();
    for ms in (3000..=30_000).step_by(3000) {
        host.advance_to(ms);
        host.frame(PING);
    }
    host.events();
    // The poll at 36 s finds exactly 6 s of silence: not stale (> 6 s is).
    host.advance_to(41_999);
    assert!(host.events().is_empty());
    // The poll at 42 s finds 12 s: stale; the socket closes, and the next
    // one opens after the 500 ms reopen delay.
    host.advance_to(42_000);
    assert_eq!(host.events(), vec![Event::Close]);
    assert_eq!(host.consumer.reconnect_attempts(), 1);
    host.advance_to(42_499);
    assert!(host.events().is_empty());
    host.advance_to(42_500);
    assert_eq!(host.events(), vec![Event::Connect]);
}

#[test]
fn the_first_poll_comes_after_6_s_times_one_plus_jitter() {
    // Jitter 0.5 before any attempt: 6 s × 1.5 = 9 s.
    let mut host = Host::new(0.5);
    host.welcomed();
    host.advance_to(2500);
    host.frame(PING);
    host.events();
    host.advance_to(8999);
    assert!(host.events().is_empty());
    host.advance_to(9000);
    assert_eq!(host.events(), vec![Event::Close], "6.5 s of silence at 9 s");
}

#[test]
fn the_backoff_schedule_follows_the_connection_monitor_with_a_fixed_jitter() {
    // The server is unreachable: every connect fails at once. The intervals
    // are the real @rails/actioncable 8.1's getPollInterval() with
    // Math.random() = 0.5, for reconnectAttempts 0..=12 (node, the npm
    // package): 9000, 7417.4999…, 8530.12…, 9809.64…, 11281.09…, 12973.25…,
    // 14919.24…, 17157.12…, 19730.69…, 22690.30…, 26093.84… (then capped).
    let mut host = Host::new(0.5);
    host.consumer.connect(host.now);
    let mut connects = Vec::new();
    while let Some(at) = host.next_connect(200_000) {
        connects.push(at);
        host.consumer.handle_close(host.now);
    }
    assert_eq!(
        connects,
        vec![
            0, 9000, 16_417, 24_947, 34_756, 46_037, 59_010, 73_929, 91_086, 110_816, 133_506,
            159_599, 185_692
        ]
    );
    assert_eq!(host.consumer.reconnect_attempts(), 12);
}

#[test]
fn a_welcome_resets_the_attempts_and_the_backoff() {
    let mut host = Host::new(0.5);
    host.consumer.connect(host.now);
    host.next_connect(100_000);
    host.consumer.handle_close(host.now);
    host.next_connect(100_000); // 9 s
    host.consumer.handle_close(host.now);
    host.next_connect(100_000); // 16.417 s
    assert_eq!(host.consumer.reconnect_attempts(), 2);
    host.consumer
        .handle_open(Some("actioncable-v1-json"), host.now);
    host.frame(r#"{"type":"welcome"}"#);
    assert_eq!(host.consumer.reconnect_attempts(), 0);
}

#[test]
fn every_subscription_is_resent_after_the_welcome_that_follows_a_reconnect() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let a = host.consumer.subscribe(CHAT, host.now).unwrap();
    let b = host
        .consumer
        .subscribe(r#"{"channel":"Other"}"#, host.now)
        .unwrap();
    host.advance_to(100);
    host.frame(CONFIRM_CHAT);
    host.frame(r#"{"identifier":"{\"channel\":\"Other\"}","type":"confirm_subscription"}"#);
    host.transmits();
    host.events();
    // A server restart: the disconnect frame, then the socket goes.
    host.advance_to(1000);
    host.frame(r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#);
    assert_eq!(
        host.events(),
        vec![
            Event::ServerDisconnect {
                reason: Some(DisconnectReason::ServerRestart),
                reconnect: Some(true)
            },
            Event::Close,
            Event::Disconnected {
                key: a,
                will_reconnect: true
            },
            Event::Disconnected {
                key: b,
                will_reconnect: true
            },
        ]
    );
    // The poll at 6 s finds 5 s of silence; the one at 12 s reopens.
    assert_eq!(host.next_connect(60_000), Some(12_000));
    host.consumer
        .handle_open(Some("actioncable-v1-json"), host.now);
    assert!(host.transmits().is_empty());
    host.advance_to(12_050);
    host.frame(r#"{"type":"welcome"}"#);
    assert_eq!(
        host.transmits(),
        vec![
            SUBSCRIBE_CHAT,
            r#"{"command":"subscribe","identifier":"{\"channel\":\"Other\"}"}"#
        ]
    );
    host.frame(CONFIRM_CHAT);
    host.frame(r#"{"identifier":"{\"channel\":\"Other\"}","type":"confirm_subscription"}"#);
    assert_eq!(
        host.events(),
        vec![
            Event::Welcomed { sid: None },
            Event::Connected {
                key: a,
                reconnected: true
            },
            Event::Connected {
                key: b,
                reconnected: true
            },
        ]
    );
}

#[test]
fn a_poll_skips_reopening_a_connection_closed_less_than_6_s_ago() {
    let mut host = Host::new(0.0);
    host.welcomed();
    host.advance_to(5500);
    host.frame(PING);
    host.advance_to(9000);
    host.consumer.handle_close(host.now); // the network dropped it
    host.events();
    // At 12 s: stale (6.5 s) but closed 3 s ago: an attempt, no reopen.
    host.advance_to(12_000);
    assert!(host.events().is_empty());
    assert_eq!(host.consumer.reconnect_attempts(), 1);
    // Next poll: 6 s × 1.15 × (1 + 0) later, which JavaScript computes as
    // 6899.999999999999 ms and a browser's setTimeout truncates to 6899.
    assert_eq!(host.next_connect(60_000), Some(18_899));
    assert_eq!(host.consumer.reconnect_attempts(), 2);
}

#[test]
fn a_disconnect_with_reconnect_false_stops_for_good() {
    for frame in [
        r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#,
        // No flag: @rails/actioncable's close({allowReconnect: undefined}) stops too.
        r#"{"type":"disconnect","reason":"unauthorized"}"#,
    ] {
        let mut host = Host::new(0.0);
        host.welcomed();
        let key = host.consumer.subscribe(CHAT, host.now).unwrap();
        host.frame(CONFIRM_CHAT);
        host.events();
        host.frame(frame);
        let events = host.events();
        assert_eq!(
            events[1..],
            [
                Event::Close,
                Event::Disconnected {
                    key,
                    will_reconnect: false
                },
                Event::Stopped(StopReason::ServerRefused {
                    reason: Some(DisconnectReason::Unauthorized)
                })
            ]
        );
        assert!(!host.consumer.is_running());
        assert_eq!(host.consumer.poll_timeout(), None);
        assert_eq!(host.next_connect(600_000), None);
    }
}

#[test]
fn a_socket_without_the_supported_subprotocol_is_closed_and_never_retried() {
    for chosen in [None, Some("actioncable-unsupported")] {
        let mut host = Host::new(0.0);
        host.consumer.connect(host.now);
        host.events();
        host.consumer.handle_open(chosen, host.now);
        assert_eq!(
            host.events(),
            vec![
                Event::Close,
                Event::Stopped(StopReason::UnsupportedProtocol {
                    subprotocol: chosen.map(str::to_owned)
                })
            ]
        );
        assert_eq!(host.next_connect(600_000), None);
    }
}

#[test]
fn token_expired_asks_for_a_fresh_credential_and_reconnects_once_it_comes() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let key = host.consumer.subscribe(CHAT, host.now).unwrap();
    host.frame(CONFIRM_CHAT);
    host.transmits();
    host.events();
    host.advance_to(1000);
    // What cable-server (and AnyCable) send when a credential expires.
    host.frame(r#"{"type":"disconnect","reason":"token_expired","reconnect":false}"#);
    assert_eq!(
        host.events(),
        vec![
            Event::ServerDisconnect {
                reason: Some(DisconnectReason::TokenExpired),
                reconnect: Some(false)
            },
            Event::Close,
            Event::Disconnected {
                key,
                will_reconnect: true
            },
            Event::TokenExpired,
        ]
    );
    // No reconnect with the expired credential, however long the host takes.
    host.advance_to(20_000);
    assert!(host.events().is_empty());
    assert!(host.consumer.awaiting_credential());
    host.consumer.credential_refreshed(host.now);
    assert_eq!(host.events(), vec![Event::Connect]);
    host.consumer
        .handle_open(Some("actioncable-v1-json"), host.now);
    host.frame(r#"{"type":"welcome"}"#);
    assert_eq!(host.transmits(), vec![SUBSCRIBE_CHAT]);
    host.frame(CONFIRM_CHAT);
    assert!(host.events().contains(&Event::Connected {
        key,
        reconnected: true
    }));
}

#[test]
fn token_expired_without_a_fresh_credential_stops() {
    let mut host = Host::new(0.0);
    host.welcomed();
    host.frame(r#"{"type":"disconnect","reason":"token_expired","reconnect":false}"#);
    host.events();
    host.consumer.credential_unavailable(host.now);
    assert_eq!(
        host.events(),
        vec![Event::Stopped(StopReason::CredentialUnavailable)]
    );
    assert_eq!(host.next_connect(600_000), None);

    // No answer at all: the deadline (30 s) stops the consumer.
    let mut host = Host::new(0.0);
    host.welcomed();
    host.advance_to(1000);
    host.frame(r#"{"type":"disconnect","reason":"token_expired","reconnect":false}"#);
    host.events();
    host.advance_to(30_999);
    assert!(host.events().is_empty());
    host.advance_to(31_000);
    assert_eq!(
        host.events(),
        vec![Event::Stopped(StopReason::CredentialTimeout)]
    );
    assert_eq!(host.next_connect(600_000), None);
}

#[test]
fn disconnect_closes_and_stops_and_a_new_subscription_connects_again() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let key = host.consumer.subscribe(CHAT, host.now).unwrap();
    host.events();
    host.consumer.disconnect(host.now);
    assert_eq!(
        host.events(),
        vec![
            Event::Close,
            Event::Disconnected {
                key,
                will_reconnect: false
            },
            Event::Stopped(StopReason::Requested)
        ]
    );
    assert_eq!(host.next_connect(600_000), None);
    // ensureActiveConnection: creating a subscription opens it again.
    host.consumer
        .subscribe(r#"{"channel":"Other"}"#, host.now)
        .unwrap();
    assert_eq!(host.events(), vec![Event::Connect]);
    assert!(host.consumer.is_running());
}
