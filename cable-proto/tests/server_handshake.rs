//! The server state machine, points 1-4 of the protocol (wire format, identifiers,
//! handshake decisions, frames before the welcome), with exact frames.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use cable_proto::server::{Config, Event, LimitAction, Limits, SubscriptionAccept};
use cable_proto::{
    CommandError, DisconnectReason, HandshakeRefusal, HandshakeRequest, Identity, OriginPattern,
    OriginPolicy, UsageError,
};
use common::*;

// ---------------------------------------------------------------- 1. wire format, 2. identifiers

#[test]
fn identifiers_are_echoed_byte_for_byte_and_key_order_makes_another_subscription() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.subscribe(conn, CHAT, &["chat_r1"]);
    host.subscribe(conn, CHAT_REORDERED, &["chat_r1"]);
    let spaced = r#"{"channel": "ChatChannel", "room": "r1"}"#;
    host.subscribe(conn, spaced, &["chat_r1"]);
    assert_eq!(host.server.subscription_count(), 3);
    let delivery = host
        .server
        .broadcast("chat_r1", r#"{"text":"hi"}"#, host.now);
    assert_eq!(delivery.recipients, 3);
    assert_eq!(delivery.encoded, 3);
    let mut frames = host.frames(conn);
    frames.sort_by_key(|f| format!("{f:?}"));
    let mut expected = vec![
        Out::Text(data_frame(CHAT, r#"{"text":"hi"}"#)),
        Out::Text(data_frame(CHAT_REORDERED, r#"{"text":"hi"}"#)),
        Out::Text(data_frame(spaced, r#"{"text":"hi"}"#)),
    ];
    expected.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(frames, expected);
}

#[test]
fn identifier_params_reach_the_application() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.send(
        conn,
        &subscribe(r#"{"channel":"ChatChannel","room":"r1","n":5}"#),
    );
    let events = host.events();
    let Some(Event::SubscriptionRequested {
        identifier,
        identity,
        ..
    }) = events.first()
    else {
        panic!("{events:?}")
    };
    assert_eq!(identity.as_str(), "alice");
    assert_eq!(identifier.channel(), "ChatChannel");
    assert_eq!(identifier.param("n"), Some(&serde_json::json!(5)));
    let keys: Vec<&String> = identifier.params().keys().collect();
    assert_eq!(keys, ["channel", "room", "n"]);
}

#[test]
fn html_characters_in_identifiers_are_escaped_in_the_outer_frame() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    let id = "{\"channel\":\"ChatChannel\",\"room\":\"<a&b>/\u{2028}é\"}";
    host.send(conn, &subscribe(id));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server
        .accept_subscription(pending, SubscriptionAccept::new(), host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(
            "{\"identifier\":\"{\\\"channel\\\":\\\"ChatChannel\\\",\\\"room\\\":\\\"\\u003ca\\u0026b\\u003e/\\u2028é\\\"}\",\"type\":\"confirm_subscription\"}"
                .into()
        )]
    );
}

#[test]
fn identifier_length_limit() {
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        limits: Limits {
            max_identifier_bytes: 30,
            ..Limits::default()
        },
        ..Config::default()
    });
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    assert!(host.frames(conn).is_empty());
    assert_eq!(
        failures(&host.events()),
        vec![CommandError::InvalidIdentifier(
            cable_proto::IdentifierError::TooLong { len: 37, limit: 30 }
        )]
    );
    assert_eq!(host.server.subscription_count(), 0);
}

// ---------------------------------------------------------------- 3. handshake decisions

#[test]
fn subprotocol_negotiation_as_rails() {
    let mut host = Host::new();
    let open = |host: &mut Host, protocols: &[&str]| {
        let request = HandshakeRequest {
            protocols,
            ..HandshakeRequest::default()
        };
        host.server
            .handle_open(&request, host.now)
            .unwrap()
            .subprotocol
    };
    assert_eq!(
        open(&mut host, &["actioncable-v1-json, actioncable-unsupported"]).as_deref(),
        Some("actioncable-v1-json")
    );
    assert_eq!(
        open(
            &mut host,
            &["actioncable-unsupported", "actioncable-v1-json"]
        )
        .as_deref(),
        Some("actioncable-unsupported")
    );
    assert_eq!(open(&mut host, &[]), None);
    assert_eq!(open(&mut host, &["actioncable-v2-json"]), None);
    assert_eq!(host.server.connection_count(), 4, "all four are accepted");
}

#[test]
fn refused_origin_creates_no_connection() {
    let mut host = Host::with_config(Config {
        origins: OriginPolicy {
            allow_any: false,
            same_origin_as_host: true,
            allowed: vec![OriginPattern::parse("http://allowed.example")],
        },
        ..Config::default()
    });
    let request = |origin| HandshakeRequest {
        host: Some("127.0.0.1:8080"),
        origin,
        secure: false,
        protocols: &[],
    };
    let refusal = host
        .server
        .handle_open(&request(Some("http://evil.example")), host.now)
        .unwrap_err();
    assert_eq!(
        refusal,
        HandshakeRefusal::OriginNotAllowed {
            origin: Some("http://evil.example".into())
        }
    );
    assert_eq!((refusal.status(), refusal.body()), (404, "Page not found"));
    assert!(host.server.handle_open(&request(None), host.now).is_err());
    assert_eq!(host.server.connection_count(), 0);
    assert!(host
        .server
        .handle_open(&request(Some("http://127.0.0.1:8080")), host.now)
        .is_ok());
    assert!(host
        .server
        .handle_open(&request(Some("http://allowed.example")), host.now)
        .is_ok());
}

#[test]
fn accepted_connection_is_welcomed() {
    let mut host = Host::new();
    let (conn, pending) = host.open_pending();
    assert!(host.all_frames().is_empty(), "nothing before the decision");
    host.server
        .accept_connection(pending, Identity::new("alice"), host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(r#"{"type":"welcome"}"#.into())]
    );
    assert_eq!(
        host.server.identity(conn).map(Identity::as_str),
        Some("alice")
    );
}

#[test]
fn a_connection_rejected_with_a_reason_gets_that_disconnect_frame() {
    let mut host = Host::new();
    let (conn, pending) = host.open_pending();
    host.send(conn, &subscribe(CHAT));
    host.server
        .reject_connection_with(
            pending,
            DisconnectReason::Other("server_error".into()),
            true,
            host.now,
        )
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(r#"{"type":"disconnect","reason":"server_error","reconnect":true}"#.into()),
            Out::Close(1000),
        ]
    );
    // The held subscribe was never processed.
    assert_eq!(
        host.events(),
        vec![Event::Disconnecting {
            connection: conn,
            reason: DisconnectReason::Other("server_error".into()),
            reconnect: true
        }]
    );
}

#[test]
fn rejected_connection_gets_unauthorized_and_close_without_welcome() {
    let mut host = Host::new();
    let (conn, pending) = host.open_pending();
    host.send(conn, &subscribe(CHAT));
    host.server.reject_connection(pending, host.now).unwrap();
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#.into()),
            Out::Close(1000),
        ]
    );
    // The held subscribe was never processed.
    assert_eq!(
        host.events(),
        vec![Event::Disconnecting {
            connection: conn,
            reason: DisconnectReason::Unauthorized,
            reconnect: false
        }]
    );
    // No pings for it either.
    host.advance(Duration::from_secs(3));
    assert!(host.all_frames().is_empty());
    // Frames after the close are refused with a typed error.
    host.send(conn, &subscribe(CHAT));
    assert_eq!(failures(&host.events()), vec![CommandError::Closing]);
    host.server.handle_close(conn, host.now).unwrap();
    assert_eq!(
        host.events(),
        vec![Event::Closed {
            connection: conn,
            identity: None
        }]
    );
}

// ---------------------------------------------------------------- 4. before welcome

#[test]
fn frames_before_welcome_are_handled_after_it_in_order() {
    let mut host = Host::new();
    let (conn, pending) = host.open_pending();
    host.send(conn, &subscribe(CHAT));
    host.send(conn, &message(CHAT, r#"{"action":"whoami"}"#));
    host.send(conn, "garbage");
    assert!(host.events().is_empty(), "held, not handled");
    host.server
        .accept_connection(pending, Identity::new("alice"), host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(r#"{"type":"welcome"}"#.into())]
    );
    // The subscribe comes out; the rest waits for its decision.
    let events = host.events();
    assert_eq!(events.len(), 1);
    let Some(Event::SubscriptionRequested { pending, .. }) = events.into_iter().next() else {
        panic!()
    };
    host.server
        .accept_subscription(pending, SubscriptionAccept::new(), host.now)
        .unwrap();
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(CHAT))]);
    // The message comes out; the garbage waits for the perform's decision.
    let perform = host.perform();
    assert_eq!(&*perform.action, "whoami");
    host.complete(perform);
    let events = host.events();
    assert!(matches!(
        &events[0],
        Event::CommandFailed {
            error: CommandError::InvalidJson(_),
            ..
        }
    ));
    assert_eq!(events.len(), 1);
}

fn hold_limits(on_hold_overflow: LimitAction) -> Config {
    Config {
        origins: OriginPolicy::allow_any(),
        limits: Limits {
            max_held_frames: 2,
            max_held_bytes: 1024,
            on_hold_overflow,
            ..Limits::default()
        },
        ..Config::default()
    }
}

#[test]
fn a_flood_before_welcome_disconnects_by_default() {
    assert_eq!(
        Limits::default().on_hold_overflow,
        LimitAction::Disconnect { reconnect: true }
    );
    let mut host = Host::with_config(hold_limits(LimitAction::Disconnect { reconnect: true }));
    let (conn, pending) = host.open_pending();
    host.send(conn, &subscribe(CHAT));
    host.send(conn, &subscribe(CHAT_REORDERED));
    host.send(conn, &subscribe(r#"{"channel":"X"}"#));
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(
                r#"{"type":"disconnect","reason":"invalid_request","reconnect":true}"#.into()
            ),
            Out::Close(1000),
        ]
    );
    let events = host.events();
    assert_eq!(
        failures(&events),
        vec![CommandError::HoldOverflow {
            frames: 2,
            bytes: 1024
        }]
    );
    assert_eq!(
        host.server
            .accept_connection(pending, Identity::new("a"), host.now),
        Err(UsageError::StaleDecision)
    );
}

#[test]
fn a_flood_before_welcome_can_be_dropped_instead() {
    let mut host = Host::with_config(hold_limits(LimitAction::Ignore));
    let (conn, pending) = host.open_pending();
    host.send(conn, &subscribe(CHAT));
    host.send(conn, &subscribe(CHAT_REORDERED));
    host.send(conn, &subscribe(r#"{"channel":"X"}"#));
    assert!(host.all_frames().is_empty());
    assert_eq!(
        failures(&host.events()),
        vec![CommandError::HoldOverflow {
            frames: 2,
            bytes: 1024
        }]
    );
    host.server
        .accept_connection(pending, Identity::new("alice"), host.now)
        .unwrap();
    host.all_frames();
    let events = host.events();
    assert!(
        matches!(&events[..], [Event::SubscriptionRequested { identifier, .. }] if identifier.as_str() == CHAT)
    );
}
