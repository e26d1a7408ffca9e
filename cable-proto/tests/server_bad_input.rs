//! The server state machine, points 8-9 of the protocol (bad peer input and embedder
//! usage errors), with exact frames.
#![allow(clippy::disallowed_methods)]

mod common;

use cable_proto::server::{Config, Event, LimitAction, Limits, PerformOutcome, SubscriptionAccept};
use cable_proto::{CommandError, Identity, JsonText, OriginPolicy, UsageError};
use common::*;

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
