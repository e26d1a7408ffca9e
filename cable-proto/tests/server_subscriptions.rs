//! The server state machine, point 5 of the protocol (subscriptions: accept, reject,
//! abandon, duplicates, unsubscribe, messages, limits), with exact frames.
#![allow(clippy::disallowed_methods)]

mod common;

use cable_proto::server::{Config, Event, Limits, SubscriptionAccept, UnsubscribeCause};
use cable_proto::{CommandError, Identity, JsonText, OriginPolicy};
use common::*;

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
