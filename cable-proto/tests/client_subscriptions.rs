//! The consumer's subscriptions in virtual time, one test per behaviour of
//! `@rails/actioncable` 8.1 (`subscriptions.js`, `subscription_guarantor.js`,
//! `subscription.js`), with the exact frames it writes.

mod client_host;

use cable_proto::client::{Event, PerformError, SubscribeError};
use client_host::Host;
use serde_json::json;

const CHAT: &str = r#"{"channel":"ChatChannel","room":"1"}"#;
const SUBSCRIBE_CHAT: &str =
    r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}"}"#;
const CONFIRM_CHAT: &str = r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","type":"confirm_subscription"}"#;

#[test]
fn subscribe_goes_out_once_welcomed_and_opens_the_connection() {
    let mut host = Host::new(0.0);
    let key = host.consumer.subscribe(CHAT, host.now).unwrap();
    // ensureActiveConnection: a subscription opens the connection.
    assert_eq!(host.events(), vec![Event::Connect]);
    host.consumer
        .handle_open(Some("actioncable-v1-json"), host.now);
    assert!(host.transmits().is_empty(), "nothing before the welcome");
    host.frame(r#"{"type":"welcome"}"#);
    assert_eq!(host.transmits(), vec![SUBSCRIBE_CHAT]);
    host.frame(CONFIRM_CHAT);
    assert_eq!(
        host.events(),
        vec![
            Event::Welcomed { sid: None },
            Event::Connected {
                key,
                reconnected: false
            }
        ]
    );
    assert!(host.consumer.is_confirmed(key));
}

#[test]
fn the_guarantor_resends_subscribe_every_500_ms_until_confirmed() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let key = host.consumer.subscribe(CHAT, host.now).unwrap();
    assert_eq!(host.transmits(), vec![SUBSCRIBE_CHAT]);
    host.advance_to(499);
    assert!(host.transmits().is_empty());
    host.advance_to(500);
    assert_eq!(host.transmits(), vec![SUBSCRIBE_CHAT]);
    host.advance_to(999);
    assert!(host.transmits().is_empty());
    host.advance_to(1000);
    assert_eq!(host.transmits(), vec![SUBSCRIBE_CHAT]);
    host.advance_to(1200);
    host.frame(CONFIRM_CHAT);
    host.advance_to(5000);
    assert!(host.transmits().is_empty(), "no re-send once confirmed");
    assert!(host.events().contains(&Event::Connected {
        key,
        reconnected: false
    }));
}

#[test]
fn a_new_subscribe_restarts_the_guarantors_shared_timer() {
    let mut host = Host::new(0.0);
    host.welcomed();
    host.consumer.subscribe(CHAT, host.now).unwrap();
    host.advance_to(300);
    host.consumer
        .subscribe(r#"{"channel":"Other"}"#, host.now)
        .unwrap();
    host.transmits();
    // The timer restarted at 300 ms: both re-sent at 800 ms, in order.
    host.advance_to(799);
    assert!(host.transmits().is_empty());
    host.advance_to(800);
    assert_eq!(
        host.transmits(),
        vec![
            SUBSCRIBE_CHAT.to_owned(),
            r#"{"command":"subscribe","identifier":"{\"channel\":\"Other\"}"}"#.to_owned()
        ]
    );
}

#[test]
fn a_rejection_removes_every_subscription_of_the_identifier_and_stops_resends() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let a = host.consumer.subscribe(CHAT, host.now).unwrap();
    let b = host.consumer.subscribe(CHAT, host.now).unwrap();
    host.transmits();
    host.events();
    host.frame(
        r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","type":"reject_subscription"}"#,
    );
    assert_eq!(
        host.events(),
        vec![Event::Rejected { key: a }, Event::Rejected { key: b }]
    );
    host.advance_to(3000);
    assert!(host.transmits().is_empty());
    assert_eq!(host.consumer.identifier(a), None);
    host.frame(r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","message":1}"#);
    assert!(host.events().is_empty());
}

#[test]
fn identifiers_keep_the_callers_key_order_and_match_byte_for_byte() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let key = host
        .consumer
        .subscribe(r#"{"room":"1","channel":"ChatChannel"}"#, host.now)
        .unwrap();
    assert_eq!(
        host.transmits(),
        vec![
            r#"{"command":"subscribe","identifier":"{\"room\":\"1\",\"channel\":\"ChatChannel\"}"}"#
        ]
    );
    host.events();
    // The same params in another order are another identifier: ignored.
    host.frame(CONFIRM_CHAT);
    assert!(host.events().is_empty());
    host.frame(
        r#"{"identifier":"{\"room\":\"1\",\"channel\":\"ChatChannel\"}","message":{"x":1}}"#,
    );
    assert_eq!(
        host.events(),
        vec![Event::Received {
            key,
            message: r#"{"x":1}"#.to_owned()
        }]
    );
}

#[test]
fn messages_reach_every_subscription_sharing_the_identifier_and_unknown_ones_are_ignored() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let a = host.consumer.subscribe(CHAT, host.now).unwrap();
    let b = host.consumer.subscribe(CHAT, host.now).unwrap();
    host.frame(CONFIRM_CHAT);
    host.events();
    host.frame(r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","message":"hi"}"#);
    host.frame(r#"{"identifier":"{\"channel\":\"Nobody\"}","message":"lost"}"#);
    host.frame(r#"{"identifier":"{\"channel\":\"Nobody\"}","type":"confirm_subscription"}"#);
    assert_eq!(
        host.events(),
        vec![
            Event::Received {
                key: a,
                message: r#""hi""#.to_owned()
            },
            Event::Received {
                key: b,
                message: r#""hi""#.to_owned()
            }
        ]
    );
}

#[test]
fn unsubscribe_goes_out_only_when_no_other_local_subscription_shares_the_identifier() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let a = host.consumer.subscribe(CHAT, host.now).unwrap();
    let b = host.consumer.subscribe(CHAT, host.now).unwrap();
    host.frame(CONFIRM_CHAT);
    host.transmits();
    assert!(host.consumer.unsubscribe(a, host.now));
    assert!(host.transmits().is_empty());
    assert!(!host.consumer.unsubscribe(a, host.now), "already gone");
    assert!(host.consumer.unsubscribe(b, host.now));
    assert_eq!(
        host.transmits(),
        vec![
            r#"{"command":"unsubscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}"}"#
        ]
    );
}

#[test]
fn perform_sends_data_as_a_json_string_with_action_added_last() {
    let mut host = Host::new(0.0);
    host.welcomed();
    let key = host.consumer.subscribe(CHAT, host.now).unwrap();
    host.frame(CONFIRM_CHAT);
    host.transmits();
    let data = json!({"body": "hi <b>", "n": 1});
    host.consumer
        .perform(key, "speak", data.as_object().unwrap(), host.now)
        .unwrap();
    // `data.action = action` on an object that has `action` keeps its place.
    let data = json!({"action": "old", "body": "x"});
    host.consumer
        .perform(key, "speak", data.as_object().unwrap(), host.now)
        .unwrap();
    host.consumer
        .perform(key, "away", &serde_json::Map::new(), host.now)
        .unwrap();
    assert_eq!(
        host.transmits(),
        vec![
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","data":"{\"body\":\"hi <b>\",\"n\":1,\"action\":\"speak\"}"}"#,
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","data":"{\"action\":\"speak\",\"body\":\"x\"}"}"#,
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","data":"{\"action\":\"away\"}"}"#,
        ]
    );
}

#[test]
fn perform_without_a_welcomed_connection_sends_nothing_and_says_so() {
    let mut host = Host::new(0.0);
    let key = host.consumer.subscribe(CHAT, host.now).unwrap();
    assert_eq!(
        host.consumer
            .perform(key, "speak", &serde_json::Map::new(), host.now),
        Err(PerformError::NotConnected)
    );
    host.consumer.unsubscribe(key, host.now);
    assert_eq!(
        host.consumer
            .perform(key, "speak", &serde_json::Map::new(), host.now),
        Err(PerformError::UnknownSubscription)
    );
    assert!(host.transmits().is_empty());
}

#[test]
fn identifiers_that_are_not_json_objects_are_refused() {
    let mut host = Host::new(0.0);
    for bad in ["", "[]", "\"ChatChannel\"", "{", "{} x"] {
        assert_eq!(
            host.consumer.subscribe(bad, host.now),
            Err(SubscribeError::NotAnObject),
            "{bad:?}"
        );
    }
    assert!(host.events().is_empty());
}

#[test]
fn a_frame_that_does_not_parse_is_an_error_and_changes_nothing() {
    let mut host = Host::new(0.0);
    host.welcomed();
    host.events();
    assert!(host.consumer.handle_text(b"{\"type\":", host.now).is_err());
    assert!(host.consumer.handle_text(b"", host.now).is_err());
    assert!(host.events().is_empty());
    assert!(host.transmits().is_empty());
}

#[test]
fn a_zero_resubscribe_interval_still_moves_time_forward() {
    let t0 = host_start();
    let mut config = cable_proto::client::ConsumerConfig::default();
    config.resubscribe_interval = std::time::Duration::ZERO;
    let mut consumer = cable_proto::client::Consumer::new(config, || 0.0, t0);
    consumer.connect(t0);
    consumer.handle_open(Some("actioncable-v1-json"), t0);
    consumer.handle_text(br#"{"type":"welcome"}"#, t0).unwrap();
    consumer.subscribe(CHAT, t0).unwrap();
    consumer.handle_timeout(t0);
    let next = consumer.poll_timeout().unwrap();
    assert_eq!(next - t0, std::time::Duration::from_millis(1));
}

fn host_start() -> std::time::Instant {
    Host::new(0.0).t0
}
