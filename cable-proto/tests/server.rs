//! The server state machine, point by point of the protocol, with exact frames.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use cable_proto::server::{
    Config, Event, LimitAction, Limits, PerformOutcome, SubscriptionAccept, UnsubscribeCause,
};
use cable_proto::{
    CommandError, DisconnectReason, HandshakeRefusal, HandshakeRequest, Identity, JsonText,
    OriginPattern, OriginPolicy, UsageError,
};
use common::*;

fn failures(events: &[Event]) -> Vec<CommandError> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CommandFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

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

// ---------------------------------------------------------------- 5. subscriptions

#[test]
fn accept_sends_transmissions_then_confirm_and_starts_streams() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    let sub = pending.subscription();
    // A transmit while pending goes before the confirmation too.
    host.server
        .transmit(sub, &JsonText::new(r#"{"early":true}"#).unwrap(), host.now)
        .unwrap();
    let accept = SubscriptionAccept::new()
        .transmit(JsonText::new(r#"{"greeting":"hello alice"}"#).unwrap())
        .stream("chat_r1")
        .stream("chat_all");
    host.server
        .accept_subscription(pending, accept, host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(data_frame(CHAT, r#"{"early":true}"#)),
            Out::Text(data_frame(CHAT, r#"{"greeting":"hello alice"}"#)),
            Out::Text(confirm(CHAT)),
        ]
    );
    assert_eq!(
        host.events(),
        vec![
            Event::StreamStarted("chat_r1".into()),
            Event::StreamStarted("chat_all".into())
        ]
    );
    assert_eq!(
        host.server.streams_of(sub),
        vec!["chat_r1".into(), "chat_all".into()]
    );
    // And a transmit at any later time.
    host.server
        .transmit(sub, &JsonText::string("later"), host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(data_frame(CHAT, r#""later""#))]
    );
}

#[test]
fn reject_sends_reject_and_frees_the_identifier() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server.reject_subscription(pending, host.now).unwrap();
    assert_eq!(host.frames(conn), vec![Out::Text(reject(CHAT))]);
    assert_eq!(host.server.subscription_count(), 0);
    assert!(
        host.events().is_empty(),
        "no unsubscribed event for a rejection"
    );
    // A message to it now is to an unknown subscription.
    host.send(conn, &message(CHAT, r#"{"action":"whoami"}"#));
    assert!(host.all_frames().is_empty());
    assert!(matches!(
        &failures(&host.events())[..],
        [CommandError::UnknownSubscription { .. }]
    ));
    // Subscribing again asks the application again.
    host.send(conn, &subscribe(CHAT));
    assert!(matches!(
        &host.events()[..],
        [Event::SubscriptionRequested { .. }]
    ));
}

#[test]
fn abandon_sends_nothing() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.send(conn, &subscribe(r#"{"channel":"NoSuchChannel"}"#));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server.abandon_subscription(pending, host.now).unwrap();
    assert!(host.all_frames().is_empty());
    assert_eq!(host.server.subscription_count(), 0);
}

#[test]
fn duplicate_subscribe_sends_nothing_live_or_pending() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.subscribe(conn, CHAT, &["chat_r1"]);
    host.send(conn, &subscribe(CHAT));
    assert!(host.all_frames().is_empty());
    assert_eq!(
        failures(&host.events()),
        vec![CommandError::AlreadySubscribed {
            identifier: CHAT.into()
        }]
    );
    // Pending: the duplicate waits behind the decision, then fails.
    let other = r#"{"channel":"GreetingChannel"}"#;
    host.send(conn, &subscribe(other));
    host.send(conn, &subscribe(other));
    let events = host.events();
    assert_eq!(events.len(), 1);
    let Some(Event::SubscriptionRequested { pending, .. }) = events.into_iter().next() else {
        panic!()
    };
    host.server
        .accept_subscription(pending, SubscriptionAccept::new(), host.now)
        .unwrap();
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(other))]);
    assert_eq!(
        failures(&host.events()),
        vec![CommandError::AlreadySubscribed {
            identifier: other.into()
        }]
    );
    assert_eq!(host.server.subscription_count(), 2);
}

#[test]
fn unsubscribe_removes_streams_and_sends_nothing() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    let sub = host.subscribe(conn, CHAT, &["chat_r1"]);
    host.send(conn, &unsubscribe(CHAT));
    assert!(host.all_frames().is_empty());
    let events = host.events();
    assert_eq!(
        events,
        vec![
            Event::Unsubscribed {
                connection: conn,
                subscription: sub,
                identity: Identity::new("alice"),
                identifier: cable_proto::Identifier::parse(CHAT, 1024).unwrap(),
                cause: UnsubscribeCause::Command,
            },
            Event::StreamStopped("chat_r1".into()),
        ]
    );
    assert_eq!(
        host.server.broadcast("chat_r1", "{}", host.now).recipients,
        0
    );
    host.send(conn, &unsubscribe(CHAT));
    assert!(matches!(
        &failures(&host.events())[..],
        [CommandError::UnknownSubscription { .. }]
    ));
}

#[test]
fn message_becomes_perform_and_receive_without_action() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    let sub = host.subscribe(conn, CHAT, &[]);
    host.send(conn, &message(CHAT, r#"{"text":"hi","action":"speak"}"#));
    host.send(conn, &message(CHAT, r#"{"text":"hi"}"#));
    host.send(conn, &message(CHAT, r#"{"action":""}"#));
    // One perform at a time: each comes out when the one before is answered.
    let mut performs = Vec::new();
    for _ in 0..3 {
        let p = host.perform();
        assert_eq!(p.subscription, sub);
        assert_eq!(p.connection, conn);
        assert_eq!(p.identity.as_str(), "alice");
        assert_eq!(p.identifier.as_str(), CHAT);
        assert_eq!(host.server.held_frames(conn), 2 - performs.len());
        performs.push((p.action.to_string(), p.data.to_string()));
        host.complete(p);
    }
    assert!(host.events().is_empty());
    assert_eq!(
        performs,
        [
            (
                "speak".to_owned(),
                r#"{"text":"hi","action":"speak"}"#.to_owned()
            ),
            ("receive".to_owned(), r#"{"text":"hi"}"#.to_owned()),
            ("receive".to_owned(), r#"{"action":""}"#.to_owned()),
        ]
    );
    assert!(host.all_frames().is_empty());
}

#[test]
fn commands_wait_for_a_pending_subscription_in_arrival_order() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    host.send(conn, &message(CHAT, r#"{"action":"whoami"}"#));
    host.send(conn, &unsubscribe(CHAT));
    host.send(conn, &subscribe(CHAT_REORDERED));
    let events = host.events();
    assert_eq!(
        events.len(),
        1,
        "only the first subscribe so far: {events:?}"
    );
    let Some(Event::SubscriptionRequested { pending, .. }) = events.into_iter().next() else {
        panic!()
    };
    host.server
        .accept_subscription(pending, SubscriptionAccept::new().stream("s"), host.now)
        .unwrap();
    let mut events = host.events();
    // The message found the confirmed subscription; the rest waits for the
    // perform's decision.
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], Event::StreamStarted("s".into()));
    let Some(Event::Perform(perform)) = events.pop() else {
        panic!("{events:?}")
    };
    assert_eq!(&*perform.action, "whoami");
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(CHAT))]);
    host.complete(perform);
    // Then the unsubscribe removed it, the next subscribe is pending.
    let events = host.events();
    assert!(matches!(
        &events[0],
        Event::Unsubscribed {
            cause: UnsubscribeCause::Command,
            ..
        }
    ));
    assert!(matches!(&events[1], Event::StreamStopped(_)));
    assert!(
        matches!(&events[2], Event::SubscriptionRequested { identifier, .. } if identifier.as_str() == CHAT_REORDERED)
    );
    assert_eq!(events.len(), 3);
    assert!(host.all_frames().is_empty());
}

#[test]
fn too_many_subscriptions() {
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        limits: Limits {
            max_subscriptions: 1,
            ..Limits::default()
        },
        ..Config::default()
    });
    let conn = host.connect("alice");
    host.subscribe(conn, CHAT, &[]);
    host.send(conn, &subscribe(CHAT_REORDERED));
    assert!(host.all_frames().is_empty());
    assert_eq!(
        failures(&host.events()),
        vec![CommandError::TooManySubscriptions { limit: 1 }]
    );
    assert_eq!(host.server.subscription_count(), 1);
}

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

// ---------------------------------------------------------------- 8. bad input

#[test]
fn bad_input_yields_typed_errors_nothing_on_the_wire_and_no_state_change() {
    use cable_proto::json::JsonErrorKind;
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        limits: Limits {
            max_frame_bytes: 512,
            ..Limits::default()
        },
        ..Config::default()
    });
    let conn = host.connect("alice");
    host.subscribe(conn, CHAT, &["chat_r1"]);
    let long = format!(
        r#"{{"command":"subscribe","identifier":"{}"}}"#,
        "x".repeat(600)
    );
    type Check = Box<dyn Fn(&CommandError) -> bool>;
    let cases: Vec<(&str, Check)> = vec![
        (
            "not json",
            Box::new(
                |e| matches!(e, CommandError::InvalidJson(j) if j.kind == JsonErrorKind::Syntax),
            ),
        ),
        ("", Box::new(|e| *e == CommandError::EmptyFrame)),
        (
            r#"{"command":"subscribe","identifier":"x"}garbage"#,
            Box::new(|e| matches!(e, CommandError::InvalidJson(_))),
        ),
        ("[1,2]", Box::new(|e| *e == CommandError::NotAnObject)),
        ("42", Box::new(|e| *e == CommandError::NotAnObject)),
        (
            r#"{"identifier":"x"}"#,
            Box::new(|e| *e == CommandError::MissingCommand),
        ),
        (
            r#"{"command":"SUBSCRIBE","identifier":"x"}"#,
            Box::new(|e| *e == CommandError::UnknownCommand("\"SUBSCRIBE\"".into())),
        ),
        (
            r#"{"command":"ping"}"#,
            Box::new(|e| *e == CommandError::UnknownCommand("\"ping\"".into())),
        ),
        (
            r#"{"command":"subscribe"}"#,
            Box::new(|e| *e == CommandError::MissingIdentifier),
        ),
        (
            r#"{"command":"subscribe","identifier":{"channel":"C"}}"#,
            Box::new(|e| *e == CommandError::IdentifierNotString),
        ),
        (
            r#"{"command":"subscribe","identifier":"not json"}"#,
            Box::new(|e| {
                matches!(
                    e,
                    CommandError::InvalidIdentifier(cable_proto::IdentifierError::NotJson(_))
                )
            }),
        ),
        (
            r#"{"command":"subscribe","identifier":"[1]"}"#,
            Box::new(|e| {
                *e == CommandError::InvalidIdentifier(cable_proto::IdentifierError::NotObject)
            }),
        ),
        (
            r#"{"command":"subscribe","identifier":"{\"room\":1}"}"#,
            Box::new(|e| {
                *e == CommandError::InvalidIdentifier(cable_proto::IdentifierError::MissingChannel)
            }),
        ),
        (
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}"}"#,
            Box::new(|e| *e == CommandError::MissingData),
        ),
        (
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","data":{"action":"x"}}"#,
            Box::new(|e| *e == CommandError::DataNotString),
        ),
        (
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","data":"nope"}"#,
            Box::new(|e| matches!(e, CommandError::DataNotJson(_))),
        ),
        (
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","data":"[1]"}"#,
            Box::new(|e| *e == CommandError::DataNotObject),
        ),
        (
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","data":"{\"action\":7}"}"#,
            Box::new(|e| *e == CommandError::ActionNotString),
        ),
        (
            r#"{"command":"message","identifier":"{\"channel\":\"Other\"}","data":"{}"}"#,
            Box::new(|e| matches!(e, CommandError::UnknownSubscription { .. })),
        ),
        (
            r#"{"command":"unsubscribe","identifier":"{\"channel\":\"Other\"}"}"#,
            Box::new(|e| matches!(e, CommandError::UnknownSubscription { .. })),
        ),
        (
            long.as_str(),
            Box::new(|e| {
                *e == CommandError::FrameTooLarge {
                    len: 639,
                    limit: 512,
                }
            }),
        ),
    ];
    for (frame, expected) in &cases {
        host.send(conn, frame);
        assert!(host.all_frames().is_empty(), "{frame:?} sent something");
        let errors = failures(&host.events());
        assert_eq!(errors.len(), 1, "{frame:?}: {errors:?}");
        assert!(expected(&errors[0]), "{frame:?}: {:?}", errors[0]);
        assert_eq!(host.server.subscription_count(), 1, "{frame:?}");
        assert!(host.server.is_open(conn));
    }
    host.server
        .handle_binary(conn, &[1, 2, 3], host.now)
        .unwrap();
    assert_eq!(
        failures(&host.events()),
        vec![CommandError::BinaryFrame { len: 3 }]
    );
    // The connection still works.
    assert_eq!(
        host.server
            .broadcast("chat_r1", r#"{"ok":1}"#, host.now)
            .recipients,
        1
    );
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(data_frame(CHAT, r#"{"ok":1}"#))]
    );
}

#[test]
fn oversized_frames_can_disconnect() {
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        limits: Limits {
            max_frame_bytes: 10,
            on_frame_too_large: LimitAction::Disconnect { reconnect: false },
            ..Limits::default()
        },
        ..Config::default()
    });
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(
                r#"{"type":"disconnect","reason":"invalid_request","reconnect":false}"#.into()
            ),
            Out::Close(1000)
        ]
    );
}

// ---------------------------------------------------------------- 9. usage errors

#[test]
fn embedder_errors() {
    let mut host = Host::new();
    let (gone, pending) = host.open_pending();
    host.server.handle_close(gone, host.now).unwrap();
    assert_eq!(
        host.server
            .accept_connection(pending, Identity::new("alice"), host.now),
        Err(UsageError::StaleDecision)
    );
    host.events();
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    let sub = pending.subscription();
    assert_eq!(
        host.server
            .stream_from(sub, "x", cable_proto::StreamMode::Json, host.now),
        Err(UsageError::SubscriptionNotLive)
    );
    host.server.reject_subscription(pending, host.now).unwrap();
    assert_eq!(
        host.server.unsubscribe(sub, host.now),
        Err(UsageError::UnknownSubscription)
    );
    // Tokens cannot be answered twice (they are moved); a token whose
    // connection went away is stale.
    host.all_frames();
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server.handle_close(conn, host.now).unwrap();
    assert_eq!(
        host.server
            .accept_subscription(pending, SubscriptionAccept::new(), host.now),
        Err(UsageError::StaleDecision)
    );
    let conn = host.connect("bob");
    host.subscribe(conn, CHAT, &[]);
    host.send(conn, &message(CHAT, "{}"));
    let perform = host.perform();
    host.server.handle_close(conn, host.now).unwrap();
    assert_eq!(
        host.server
            .complete_perform(perform.pending, PerformOutcome::new(), host.now),
        Err(UsageError::StaleDecision)
    );
    host.events();
    assert_eq!(
        host.server.handle_close(conn, host.now),
        Err(UsageError::UnknownConnection)
    );
    assert_eq!(
        host.server.handle_written(conn, 1, host.now),
        Err(UsageError::UnknownConnection)
    );
    assert!(JsonText::new("{nope").is_err());
}
