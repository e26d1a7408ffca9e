//! Decisions with deadlines, perform outcomes, credential expiry, the
//! upstream wait, and what an accepted connection starts with; exact frames.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use cable_proto::server::{
    Config, ConnectionAccept, DecisionTimeouts, Event, ExpiredDecision, PerformOutcome,
    SubscriptionAccept, UnsubscribeCause,
};
use cable_proto::{DisconnectReason, Identifier, Identity, JsonText, OriginPolicy, UsageError};
use common::*;

const NS: Duration = Duration::from_nanos(1);
const CONNECT: Duration = Duration::from_secs(5);
const SUBSCRIBE: Duration = Duration::from_secs(7);
const PERFORM: Duration = Duration::from_secs(11);
const OTHER: &str = r#"{"channel":"OtherChannel"}"#;

const UNAUTHORIZED: &str = r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#;
const TOKEN_EXPIRED: &str = r#"{"type":"disconnect","reason":"token_expired","reconnect":false}"#;

/// Deadlines on every decision; pings out of the way (an hour apart).
fn host() -> Host {
    Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        ping_interval: Duration::from_secs(3600),
        decision_timeouts: DecisionTimeouts {
            connect: Some(CONNECT),
            subscribe: Some(SUBSCRIBE),
            perform: Some(PERFORM),
        },
        ..Config::default()
    })
}

fn json(text: &str) -> JsonText {
    JsonText::new(text).unwrap()
}

fn identifier(text: &str) -> Identifier {
    Identifier::parse(text, 1024).unwrap()
}

fn text(t: &str) -> Out {
    Out::Text(t.into())
}

// ---------------------------------------------------------------- connect

#[test]
fn the_connect_deadline_rejects_as_unauthorized_at_exactly_the_deadline() {
    let mut host = host();
    let (conn, pending) = host.open_pending();
    host.send(conn, &subscribe(CHAT));
    assert_eq!(host.server.poll_timeout(), Some(host.start + CONNECT));
    host.advance(CONNECT - NS);
    assert_eq!(host.all_frames(), vec![]);
    assert_eq!(host.events(), vec![]);
    host.advance(NS);
    assert_eq!(
        host.frames(conn),
        vec![text(UNAUTHORIZED), Out::Close(1000)]
    );
    // The held subscribe is never handled.
    assert_eq!(
        host.events(),
        vec![
            Event::DecisionExpired {
                connection: conn,
                decision: ExpiredDecision::Connection
            },
            Event::Disconnecting {
                connection: conn,
                reason: DisconnectReason::Unauthorized,
                reconnect: false
            }
        ]
    );
    assert_eq!(
        host.server
            .accept_connection(pending, Identity::new("alice"), host.now),
        Err(UsageError::DecisionExpired)
    );
    assert_eq!(host.all_frames(), vec![]);
    host.server.handle_close(conn, host.now).unwrap();
    assert_eq!(
        host.events(),
        vec![Event::Closed {
            connection: conn,
            identity: None
        }]
    );
}

#[test]
fn a_late_rejection_is_expired_too_and_any_input_fires_due_deadlines_first() {
    let mut host = host();
    let (conn, pending) = host.open_pending();
    // No handle_timeout: the answer itself comes after the deadline.
    host.now += CONNECT;
    assert_eq!(
        host.server.reject_connection(pending, host.now),
        Err(UsageError::DecisionExpired)
    );
    assert_eq!(
        host.frames(conn),
        vec![text(UNAUTHORIZED), Out::Close(1000)]
    );
    assert!(matches!(
        &host.events()[..],
        [
            Event::DecisionExpired {
                decision: ExpiredDecision::Connection,
                ..
            },
            Event::Disconnecting { .. }
        ]
    ));
}

#[test]
fn an_answer_before_the_connect_deadline_cancels_it() {
    let mut host = host();
    let (conn, pending) = host.open_pending();
    host.now += CONNECT - NS;
    host.server
        .accept_connection(pending, Identity::new("alice"), host.now)
        .unwrap();
    assert_eq!(host.frames(conn), vec![text(r#"{"type":"welcome"}"#)]);
    host.advance(CONNECT * 10);
    assert_eq!(host.all_frames(), vec![]);
    assert_eq!(host.events(), vec![]);
    assert!(host.server.is_open(conn));
}

// ---------------------------------------------------------------- subscribe

#[test]
fn the_subscribe_deadline_rejects_the_subscription_and_later_commands_go_on() {
    let mut host = host();
    let conn = host.connect("alice");
    host.advance(Duration::from_secs(1));
    let asked = host.now;
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    let sub = pending.subscription();
    host.send(conn, &subscribe(OTHER));
    // The connect deadline, answered, may still be reported: a wake-up
    // that does nothing.
    assert!(host.server.poll_timeout() <= Some(asked + SUBSCRIBE));
    host.advance(SUBSCRIBE - NS);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    assert_eq!(host.server.poll_timeout(), Some(asked + SUBSCRIBE));
    host.advance(NS);
    assert_eq!(host.frames(conn), vec![Out::Text(reject(CHAT))]);
    let mut events = host.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        Event::DecisionExpired {
            connection: conn,
            decision: ExpiredDecision::Subscription {
                subscription: sub,
                identifier: identifier(CHAT)
            }
        }
    );
    // The next command went on: a request of its own, with its own deadline.
    let Some(Event::SubscriptionRequested {
        pending: other,
        identifier: other_identifier,
        ..
    }) = events.pop()
    else {
        panic!()
    };
    assert_eq!(other_identifier.as_str(), OTHER);
    assert_eq!(
        host.server
            .accept_subscription(pending, SubscriptionAccept::new().stream("s"), host.now),
        Err(UsageError::DecisionExpired)
    );
    assert_eq!(host.server.stream_count(), 0, "nothing of the late answer");
    host.server
        .accept_subscription(other, SubscriptionAccept::new(), host.now)
        .unwrap();
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(OTHER))]);
    // Answered: its deadline never fires.
    host.advance(SUBSCRIBE * 2);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    assert_eq!(host.server.subscription_count(), 1);
}

#[test]
fn a_held_subscribe_gets_its_deadline_when_it_is_handled() {
    let mut host = host();
    let (conn, pending) = host.open_pending();
    host.send(conn, &subscribe(CHAT));
    host.advance(Duration::from_secs(4));
    host.server
        .accept_connection(pending, Identity::new("alice"), host.now)
        .unwrap();
    let accepted = host.now;
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.all_frames();
    // Past the deadline counted from the frame's arrival, not from its handling.
    host.advance(SUBSCRIBE - NS);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    assert_eq!(host.server.poll_timeout(), Some(accepted + SUBSCRIBE));
    host.server.reject_subscription(pending, host.now).unwrap();
    assert_eq!(host.frames(conn), vec![Out::Text(reject(CHAT))]);
}

#[test]
fn the_subscribe_deadline_stops_at_the_answer_even_while_the_confirmation_waits_upstream() {
    let mut host = Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        ping_interval: Duration::from_secs(3600),
        confirm_when_streams_ready: true,
        decision_timeouts: DecisionTimeouts {
            subscribe: Some(SUBSCRIBE),
            ..DecisionTimeouts::default()
        },
        ..Config::default()
    });
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.advance(SUBSCRIBE - NS);
    host.server
        .accept_subscription(pending, SubscriptionAccept::new().stream("s"), host.now)
        .unwrap();
    assert_eq!(host.events(), vec![Event::StreamStarted("s".into())]);
    // The application answered: the upstream wait has no deadline of its own
    // here, and the subscription's deadline no longer applies.
    host.advance(SUBSCRIBE * 10);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    host.server.stream_ready("s", host.now);
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(CHAT))]);
}

// ---------------------------------------------------------------- perform

#[test]
fn the_perform_deadline_vetoes_it_and_the_late_outcome_applies_nothing() {
    let mut host = host();
    let a = host.connect("alice");
    let b = host.connect("bob");
    host.subscribe(a, CHAT, &["chat_r1"]);
    host.subscribe(b, CHAT, &["chat_r1"]);
    host.send(a, &message(CHAT, r#"{"action":"speak","n":1}"#));
    let asked = host.now;
    let first = host.perform();
    host.send(a, &message(CHAT, r#"{"action":"speak","n":2}"#));
    assert_eq!(host.events(), vec![], "the second waits for the first");
    assert!(host.server.poll_timeout() <= Some(asked + PERFORM));
    host.advance(PERFORM - NS);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    assert_eq!(host.server.poll_timeout(), Some(asked + PERFORM));
    host.advance(NS);
    assert_eq!(
        host.all_frames(),
        vec![],
        "an expired perform sends nothing"
    );
    let mut events = host.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        Event::DecisionExpired {
            connection: a,
            decision: ExpiredDecision::Perform
        }
    );
    let Some(Event::Perform(second)) = events.pop() else {
        panic!()
    };
    assert_eq!(second.data, r#"{"action":"speak","n":2}"#);
    let late = PerformOutcome::new()
        .broadcast("chat_r1", json(r#"{"late":true}"#))
        .transmit(json(r#"{"late":true}"#))
        .stream("late_stream")
        .disconnect(DisconnectReason::Other("late".into()), false);
    assert_eq!(
        host.server.complete_perform(first.pending, late, host.now),
        Err(UsageError::DecisionExpired)
    );
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    assert_eq!(host.server.stream_count(), 1);
    assert!(host.server.is_open(a));
    // The second one, answered in time, is applied.
    host.server
        .complete_perform(
            second.pending,
            PerformOutcome::new().broadcast("chat_r1", json(r#"{"n":2}"#)),
            host.now,
        )
        .unwrap();
    assert_eq!(
        host.all_frames(),
        vec![
            (a, Out::Text(data_frame(CHAT, r#"{"n":2}"#))),
            (b, Out::Text(data_frame(CHAT, r#"{"n":2}"#)))
        ]
    );
    host.advance(PERFORM * 2);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
}

#[test]
fn a_late_answer_to_the_last_decision_is_expired_and_applies_nothing() {
    let mut host = host();
    let conn = host.connect("alice");
    host.subscribe(conn, CHAT, &["chat_r1"]);
    host.send(conn, &message(CHAT, r#"{"action":"speak"}"#));
    let perform = host.perform();
    host.advance(PERFORM);
    assert_eq!(
        host.events(),
        vec![Event::DecisionExpired {
            connection: conn,
            decision: ExpiredDecision::Perform
        }]
    );
    let outcome = PerformOutcome::new()
        .transmit(json(r#"{"late":true}"#))
        .broadcast("chat_r1", json(r#"{"late":true}"#));
    assert_eq!(
        host.server
            .complete_perform(perform.pending, outcome, host.now),
        Err(UsageError::DecisionExpired)
    );
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    // Same for a veto, and for a subscription.
    host.send(conn, &message(CHAT, r#"{"action":"speak"}"#));
    let perform = host.perform();
    host.advance(PERFORM);
    host.events();
    assert_eq!(
        host.server.veto_perform(perform.pending, host.now),
        Err(UsageError::DecisionExpired)
    );
    host.send(conn, &subscribe(OTHER));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.advance(SUBSCRIBE);
    assert_eq!(host.frames(conn), vec![Out::Text(reject(OTHER))]);
    host.events();
    assert_eq!(
        host.server.reject_subscription(pending, host.now),
        Err(UsageError::DecisionExpired)
    );
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
}

#[test]
fn a_vetoed_perform_broadcasts_nothing_and_the_next_command_goes_on() {
    let mut host = host();
    let a = host.connect("alice");
    let b = host.connect("bob");
    let sub = host.subscribe(a, CHAT, &["chat_r1"]);
    host.subscribe(b, CHAT, &["chat_r1"]);
    host.send(a, &message(CHAT, r#"{"action":"speak"}"#));
    host.send(a, &message(CHAT, r#"{"action":"typing"}"#));
    let perform = host.perform();
    assert_eq!(&*perform.action, "speak");
    host.server.veto_perform(perform.pending, host.now).unwrap();
    assert_eq!(host.all_frames(), vec![]);
    let next = host.perform();
    assert_eq!(&*next.action, "typing");
    assert_eq!(host.server.streams_of(sub), vec!["chat_r1".into()]);
    host.complete(next);
    // Vetoed in time: no deadline fires later.
    host.advance(PERFORM * 2);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
}

#[test]
fn commands_after_a_pending_perform_wait_and_run_in_order_after_its_outcome() {
    let mut host = host();
    let conn = host.connect("alice");
    host.subscribe(conn, CHAT, &["chat_r1"]);
    host.send(conn, &message(CHAT, r#"{"action":"speak"}"#));
    let perform = host.perform();
    host.send(conn, &unsubscribe(CHAT));
    host.send(conn, &subscribe(OTHER));
    host.send(conn, "garbage");
    assert_eq!(host.events(), vec![]);
    assert_eq!(host.server.held_frames(conn), 3);
    host.advance(PERFORM - NS);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    let outcome = PerformOutcome::new()
        .transmit(json(r#"{"said":"hi"}"#))
        .broadcast("chat_r1", json(r#"{"text":"hi"}"#));
    host.server
        .complete_perform(perform.pending, outcome, host.now)
        .unwrap();
    // The outcome reached the subscription before the unsubscribe removed it.
    assert_eq!(
        host.frames(conn),
        vec![
            Out::Text(data_frame(CHAT, r#"{"said":"hi"}"#)),
            Out::Text(data_frame(CHAT, r#"{"text":"hi"}"#)),
        ]
    );
    let events = host.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(
        &events[0],
        Event::Unsubscribed {
            cause: UnsubscribeCause::Command,
            ..
        }
    ));
    assert_eq!(events[1], Event::StreamStopped("chat_r1".into()));
    assert!(
        matches!(&events[2], Event::SubscriptionRequested { identifier, .. } if identifier.as_str() == OTHER)
    );
    // The garbage waits for the new subscription's decision.
    assert_eq!(host.server.held_frames(conn), 1);
}

#[test]
fn a_perform_outcome_applies_in_the_documented_order() {
    let mut host = host();
    let a = host.connect("alice");
    let b = host.connect("bob");
    let sub = host.subscribe(a, CHAT, &["room", "old", "gone"]);
    host.subscribe(b, CHAT, &["room", "new"]);
    host.send(a, &message(CHAT, r#"{"action":"move"}"#));
    let perform = host.perform();
    // Built in another order than the one it is applied in: streams
    // stopped, streams started, transmissions, broadcasts, the disconnect.
    let outcome = PerformOutcome::new()
        .disconnect(DisconnectReason::Other("moved".into()), true)
        .broadcast("new", json(r#"{"m":"new"}"#))
        .broadcast("old", json(r#"{"m":"old"}"#))
        .broadcast_except_sender("room", json(r#"{"m":"room"}"#))
        .transmit(json(r#"{"m":"you"}"#))
        .stream("new")
        .stop_stream("old");
    host.server
        .complete_perform(perform.pending, outcome, host.now)
        .unwrap();
    assert_eq!(
        host.all_frames(),
        vec![
            (a, Out::Text(data_frame(CHAT, r#"{"m":"you"}"#))),
            // `new`: bob joined it first, alice just now.
            (b, Out::Text(data_frame(CHAT, r#"{"m":"new"}"#))),
            (a, Out::Text(data_frame(CHAT, r#"{"m":"new"}"#))),
            // `old` reaches nobody any more; `room` everyone but the sender.
            (b, Out::Text(data_frame(CHAT, r#"{"m":"room"}"#))),
            (
                a,
                text(r#"{"type":"disconnect","reason":"moved","reconnect":true}"#)
            ),
            (a, Out::Close(1000)),
        ]
    );
    let events = host.events();
    assert_eq!(events[0], Event::StreamStopped("old".into()));
    assert_eq!(
        events[1],
        Event::Disconnecting {
            connection: a,
            reason: DisconnectReason::Other("moved".into()),
            reconnect: true
        }
    );
    assert!(matches!(
        &events[2],
        Event::Unsubscribed { subscription, cause: UnsubscribeCause::Disconnected, .. } if *subscription == sub
    ));
    assert_eq!(events[3], Event::StreamStopped("gone".into()));
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(host.server.subscriber_count("room"), 1);
    assert_eq!(host.server.subscriber_count("new"), 1);
}

#[test]
fn a_perform_outcome_can_stop_every_stream_then_start_others() {
    let mut host = host();
    let conn = host.connect("alice");
    let sub = host.subscribe(conn, CHAT, &["x", "y"]);
    host.send(conn, &message(CHAT, r#"{"action":"switch"}"#));
    let perform = host.perform();
    let outcome = PerformOutcome::new()
        .broadcast("x", json(r#"{"s":"x"}"#))
        .broadcast("z", json(r#"{"s":"z"}"#))
        .stream_raw("z")
        .stop_all_streams();
    host.server
        .complete_perform(perform.pending, outcome, host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(data_frame(CHAT, r#""{\"s\":\"z\"}""#))]
    );
    let mut stopped = host.events();
    let started = stopped.pop();
    stopped.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        stopped,
        vec![
            Event::StreamStopped("x".into()),
            Event::StreamStopped("y".into())
        ]
    );
    assert_eq!(started, Some(Event::StreamStarted("z".into())));
    assert_eq!(host.server.streams_of(sub), vec!["z".into()]);
    assert_eq!(host.server.subscription_count(), 1);
}

// ---------------------------------------------------------------- accepting a connection

#[test]
fn welcome_extras_and_first_transmissions() {
    let mut host = host();
    let (conn, pending) = host.open_pending();
    let accept =
        ConnectionAccept::new(Identity::new("alice")).welcome_field("sid", JsonText::string("abc"));
    host.server
        .accept_connection(pending, accept, host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![text(r#"{"type":"welcome","sid":"abc"}"#)]
    );

    let (conn, pending) = host.open_pending();
    let accept = ConnectionAccept::new(Identity::new("bob"))
        .welcome_field("sid", JsonText::string("s-<1>"))
        .welcome_field("restored", json("true"))
        .transmit(json(r#"{"type":"hello"}"#));
    assert_eq!(accept.identity().as_str(), "bob");
    host.server
        .accept_connection(pending, accept, host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![
            text(r#"{"type":"welcome","sid":"s-\u003c1\u003e","restored":true}"#),
            text(r#"{"type":"hello"}"#),
        ]
    );
    assert_eq!(
        host.server.identity(conn).map(Identity::as_str),
        Some("bob")
    );
}

// ---------------------------------------------------------------- credential expiry

#[test]
fn an_expired_credential_disconnects_at_exactly_its_deadline() {
    let mut host = host();
    let expires = host.start + Duration::from_secs(60);
    let (conn, pending) = host.open_pending();
    host.server
        .accept_connection(
            pending,
            ConnectionAccept::new(Identity::new("alice")).expires_at(expires),
            host.now,
        )
        .unwrap();
    host.all_frames();
    assert_eq!(host.server.expiry(conn), Some(expires));
    assert!(host.server.poll_timeout() <= Some(expires));
    host.advance(Duration::from_secs(60) - NS);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    assert_eq!(host.server.poll_timeout(), Some(expires));
    assert!(host.server.is_open(conn));
    host.advance(NS);
    assert_eq!(
        host.frames(conn),
        vec![text(TOKEN_EXPIRED), Out::Close(1000)]
    );
    assert_eq!(
        host.events(),
        vec![Event::Disconnecting {
            connection: conn,
            reason: DisconnectReason::TokenExpired,
            reconnect: false
        }]
    );
    assert_eq!(host.server.expiry(conn), None);
}

#[test]
fn set_expiry_moves_clears_and_expires_at_once() {
    let mut host = host();
    let start = host.start;
    let conn = host.connect("alice");
    host.server
        .set_expiry(conn, Some(start + Duration::from_secs(10)), host.now)
        .unwrap();
    // A refreshed credential: the deadline moves later.
    host.advance(Duration::from_secs(5));
    host.server
        .set_expiry(conn, Some(start + Duration::from_secs(30)), host.now)
        .unwrap();
    assert_eq!(
        host.server.expiry(conn),
        Some(start + Duration::from_secs(30))
    );
    host.advance(Duration::from_secs(24)); // start + 29 s
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    // And earlier.
    host.server
        .set_expiry(conn, Some(start + Duration::from_secs(29) + NS), host.now)
        .unwrap();
    host.advance(NS);
    assert_eq!(
        host.frames(conn),
        vec![text(TOKEN_EXPIRED), Out::Close(1000)]
    );
    host.events();
    assert_eq!(
        host.server.set_expiry(conn, None, host.now),
        Err(UsageError::ConnectionNotOpen)
    );

    // Cleared: nothing ever fires.
    let other = host.connect("bob");
    host.server
        .set_expiry(other, Some(host.now + Duration::from_secs(1)), host.now)
        .unwrap();
    host.server.set_expiry(other, None, host.now).unwrap();
    assert_eq!(host.server.expiry(other), None);
    host.advance(Duration::from_secs(100));
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    assert!(host.server.is_open(other));

    // A deadline already passed closes the connection at once.
    host.server
        .set_expiry(other, Some(host.now), host.now)
        .unwrap();
    assert_eq!(
        host.frames(other),
        vec![text(TOKEN_EXPIRED), Out::Close(1000)]
    );
}

#[test]
fn a_credential_expired_at_accept_closes_at_once() {
    let mut host = host();
    let (conn, pending) = host.open_pending();
    host.now += Duration::from_secs(1);
    let expired = host.now - NS;
    host.server
        .accept_connection(
            pending,
            ConnectionAccept::new(Identity::new("alice")).expires_at(expired),
            host.now,
        )
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![
            text(r#"{"type":"welcome"}"#),
            text(TOKEN_EXPIRED),
            Out::Close(1000)
        ]
    );
}

// ---------------------------------------------------------------- the upstream wait

fn upstream_host(timeout: Duration) -> Host {
    Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        ping_interval: Duration::from_secs(3600),
        confirm_when_streams_ready: true,
        upstream_ready_timeout: Some(timeout),
        ..Config::default()
    })
}

#[test]
fn the_upstream_timeout_confirms_anyway() {
    let upstream = Duration::from_secs(2);
    let mut host = upstream_host(upstream);
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.advance(Duration::from_secs(1));
    let started = host.now;
    host.server
        .accept_subscription(pending, SubscriptionAccept::new().stream("s"), host.now)
        .unwrap();
    assert_eq!(host.events(), vec![Event::StreamStarted("s".into())]);
    assert_eq!(host.server.poll_timeout(), Some(started + upstream));
    host.advance(upstream - NS);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
    host.advance(NS);
    assert_eq!(host.events(), vec![Event::UpstreamTimedOut("s".into())]);
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(CHAT))]);
    // Ready late: nothing more.
    host.server.stream_ready("s", host.now);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
}

#[test]
fn a_stream_ready_in_time_cancels_the_upstream_timeout() {
    let upstream = Duration::from_secs(2);
    let mut host = upstream_host(upstream);
    let conn = host.connect("alice");
    host.send(conn, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server
        .accept_subscription(pending, SubscriptionAccept::new().stream("s"), host.now)
        .unwrap();
    host.events();
    host.advance(upstream - NS);
    host.server.stream_ready("s", host.now);
    assert_eq!(host.frames(conn), vec![Out::Text(confirm(CHAT))]);
    host.advance(upstream * 10);
    assert_eq!((host.all_frames(), host.events()), (vec![], vec![]));
}
