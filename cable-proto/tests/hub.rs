//! The broadcast hub: streams that change, targets, ordering, stream
//! lifecycle events and slow consumers, with exact frames.
#![allow(clippy::disallowed_methods)]

mod common;

use cable_proto::server::{Config, Event, Frame, Limits, UnsubscribeCause};
use cable_proto::{DisconnectReason, JsonText, OriginPolicy, StreamMode};
use common::*;

const FEED: &str = r#"{"channel":"FeedChannel"}"#;

fn texts(frames: Vec<Out>) -> Vec<String> {
    frames
        .into_iter()
        .map(|f| match f {
            Out::Text(t) => t,
            Out::Close(c) => panic!("close {c}"),
        })
        .collect()
}

#[test]
fn streams_change_while_the_subscription_stays() {
    let mut host = Host::new();
    let conn = host.connect("alice");
    host.send(conn, &subscribe(FEED));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    let sub = pending.subscription();
    host.server
        .accept_subscription(
            pending,
            cable_proto::server::SubscriptionAccept::new()
                .stream("feed_a")
                .stream("feed_b"),
            host.now,
        )
        .unwrap();
    host.all_frames();
    assert_eq!(
        host.events(),
        vec![
            Event::StreamStarted("feed_a".into()),
            Event::StreamStarted("feed_b".into())
        ]
    );
    // follow: stream_from in an action.
    host.server
        .stream_from(sub, "feed_c", StreamMode::Json, host.now)
        .unwrap();
    host.server
        .stream_from(sub, "feed_c", StreamMode::Json, host.now)
        .unwrap();
    assert_eq!(host.events(), vec![Event::StreamStarted("feed_c".into())]);
    assert_eq!(
        host.server
            .broadcast("feed_c", r#"{"n":1}"#, host.now)
            .recipients,
        1,
        "once, not twice"
    );
    assert_eq!(
        texts(host.frames(conn)),
        vec![data_frame(FEED, r#"{"n":1}"#)]
    );
    // unfollow: stop_stream_from.
    host.server
        .stop_stream_from(sub, "feed_a", host.now)
        .unwrap();
    assert_eq!(host.events(), vec![Event::StreamStopped("feed_a".into())]);
    assert_eq!(
        host.server.broadcast("feed_a", "{}", host.now).recipients,
        0
    );
    assert_eq!(
        host.server.broadcast("feed_b", "{}", host.now).recipients,
        1
    );
    host.all_frames();
    // unfollow_all: stop_all_streams; the subscription stays.
    host.server.stop_all_streams(sub, host.now).unwrap();
    let mut stopped = host.events();
    stopped.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        stopped,
        vec![
            Event::StreamStopped("feed_b".into()),
            Event::StreamStopped("feed_c".into())
        ]
    );
    assert_eq!(host.server.stream_count(), 0);
    assert_eq!(host.server.subscription_count(), 1);
    host.send(conn, &message(FEED, r#"{"action":"follow"}"#));
    assert!(matches!(&host.events()[..], [Event::Perform(_)]));
}

#[test]
fn a_stream_appears_with_its_first_subscriber_and_goes_with_its_last() {
    let mut host = Host::new();
    let a = host.connect("alice");
    let b = host.connect("bob");
    host.send(a, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server
        .accept_subscription(
            pending,
            cable_proto::server::SubscriptionAccept::new().stream("chat_r1"),
            host.now,
        )
        .unwrap();
    assert_eq!(host.events(), vec![Event::StreamStarted("chat_r1".into())]);
    host.send(b, &subscribe(CHAT));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server
        .accept_subscription(
            pending,
            cable_proto::server::SubscriptionAccept::new().stream("chat_r1"),
            host.now,
        )
        .unwrap();
    assert_eq!(host.events(), vec![], "no second start");
    host.all_frames();
    host.send(a, &unsubscribe(CHAT));
    assert!(matches!(&host.events()[..], [Event::Unsubscribed { .. }]));
    host.server.handle_close(b, host.now).unwrap();
    let events = host.events();
    assert!(
        matches!(
            &events[..],
            [Event::Unsubscribed { cause: UnsubscribeCause::ConnectionClosed, .. }, Event::StreamStopped(s), Event::Closed { .. }] if s.as_str() == "chat_r1"
        ),
        "{events:?}"
    );
}

#[test]
fn one_encode_per_identifier_and_every_recipient_shares_the_bytes() {
    let mut host = Host::new();
    let conns: Vec<_> = (0..5).map(|i| host.connect(&format!("u{i}"))).collect();
    for &c in &conns[..3] {
        host.subscribe(c, CHAT, &["chat_r1"]);
    }
    for &c in &conns[3..] {
        host.subscribe(c, CHAT_REORDERED, &["chat_r1"]);
    }
    // The payload is spliced as given: spacing and escapes survive.
    let payload = r#"{"text": "hi \u00e9", "n": 1.50}"#;
    let delivery = host.server.broadcast("chat_r1", payload, host.now);
    assert_eq!((delivery.recipients, delivery.encoded), (5, 2));
    let transmits: Vec<_> = std::iter::from_fn(|| host.server.poll_transmit()).collect();
    assert_eq!(transmits.len(), 5);
    let bytes: Vec<_> = transmits
        .iter()
        .map(|t| match &t.frame {
            Frame::Text(b) => b.clone(),
            Frame::Close { .. } => panic!(),
        })
        .collect();
    assert_eq!(&bytes[0][..], data_frame(CHAT, payload).as_bytes());
    assert_eq!(
        &bytes[3][..],
        data_frame(CHAT_REORDERED, payload).as_bytes()
    );
    assert!(bytes[..3].iter().all(|b| b.as_ptr() == bytes[0].as_ptr()));
    assert!(bytes[3..].iter().all(|b| b.as_ptr() == bytes[3].as_ptr()));
    assert_ne!(bytes[0].as_ptr(), bytes[3].as_ptr());
}

#[test]
fn raw_string_delivery() {
    let mut host = Host::new();
    let raw_id = r#"{"channel":"RawStreamChannel","name":"x"}"#;
    let a = host.connect("alice");
    host.send(a, &subscribe(raw_id));
    let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
        panic!()
    };
    host.server
        .accept_subscription(
            pending,
            cable_proto::server::SubscriptionAccept::new().stream_raw("raw_x"),
            host.now,
        )
        .unwrap();
    host.all_frames();
    let b = host.connect("bob");
    host.subscribe(b, CHAT, &["raw_x"]);
    // JSON payload: the raw subscriber gets it as a string, the other as JSON.
    host.server.broadcast("raw_x", r#"{"a":"<b>"}"#, host.now);
    let frames = host.all_frames();
    assert_eq!(
        frames,
        vec![
            (
                a,
                Out::Text(data_frame(raw_id, r#""{\"a\":\"\u003cb\u003e\"}""#))
            ),
            (b, Out::Text(data_frame(CHAT, r#"{"a":"<b>"}"#))),
        ]
    );
    // Not JSON: only the raw subscriber can take it.
    let delivery = host.server.broadcast("raw_x", "plain text", host.now);
    assert_eq!((delivery.recipients, delivery.skipped_invalid_json), (1, 1));
    assert_eq!(
        host.all_frames(),
        vec![(a, Out::Text(data_frame(raw_id, r#""plain text""#)))]
    );
    // The string entry point: everyone gets a JSON string.
    host.server.broadcast_string("raw_x", "hello", host.now);
    assert_eq!(
        host.all_frames(),
        vec![
            (a, Out::Text(data_frame(raw_id, r#""hello""#))),
            (b, Out::Text(data_frame(CHAT, r#""hello""#)))
        ]
    );
}

#[test]
fn rails_escaping_encoder_for_payloads_from_rust_values() {
    let value = serde_json::json!({"text": "<script>&</script>", "from": "alice"});
    let payload = JsonText::from_value(&value).unwrap();
    assert_eq!(
        payload.as_str(),
        r#"{"text":"\u003cscript\u003e\u0026\u003c/script\u003e","from":"alice"}"#
    );
}

#[test]
fn targets_identity_connection_subscription_and_stream_except() {
    let mut host = Host::new();
    let a1 = host.connect("alice");
    let a2 = host.connect("alice");
    let b = host.connect("bob");
    let sa = host.subscribe(a1, CHAT, &["chat_r1"]);
    host.subscribe(a2, CHAT, &["chat_r1"]);
    host.subscribe(b, CHAT, &["chat_r1"]);
    let frame = JsonText::new(r#"{"type":"chat","data":{"m":"hi"}}"#).unwrap();
    // Every connection of one identity.
    assert_eq!(
        host.server
            .send_frame_to_identity("alice", &frame, host.now),
        2
    );
    assert_eq!(
        host.all_frames(),
        vec![
            (a1, Out::Text(frame.as_str().into())),
            (a2, Out::Text(frame.as_str().into()))
        ]
    );
    assert_eq!(
        host.server
            .send_frame_to_identity("nobody", &frame, host.now),
        0
    );
    // One connection.
    host.server.send_frame(b, &frame, host.now).unwrap();
    assert_eq!(
        host.all_frames(),
        vec![(b, Out::Text(frame.as_str().into()))]
    );
    // One subscription.
    host.server
        .transmit(sa, &JsonText::string("only you"), host.now)
        .unwrap();
    assert_eq!(
        host.all_frames(),
        vec![(a1, Out::Text(data_frame(CHAT, r#""only you""#)))]
    );
    // A stream except one connection (the typist).
    let delivery = host
        .server
        .broadcast_except("chat_r1", r#"{"typing":"alice"}"#, a1, host.now);
    assert_eq!(delivery.recipients, 2);
    assert_eq!(
        host.all_frames(),
        vec![
            (a2, Out::Text(data_frame(CHAT, r#"{"typing":"alice"}"#))),
            (b, Out::Text(data_frame(CHAT, r#"{"typing":"alice"}"#)))
        ]
    );
}

#[test]
fn publish_order_and_membership_at_publish_time() {
    let mut host = Host::new();
    let a = host.connect("alice");
    host.subscribe(a, CHAT, &["chat_r1"]);
    for n in 0..5 {
        host.server
            .broadcast("chat_r1", &format!(r#"{{"n":{n}}}"#), host.now);
    }
    let mut frames = host.all_frames();
    let b = host.connect("bob");
    host.subscribe(b, CHAT, &["chat_r1"]);
    host.server.broadcast("chat_r1", r#"{"n":5}"#, host.now);
    host.send(a, &unsubscribe(CHAT));
    host.server.broadcast("chat_r1", r#"{"n":6}"#, host.now);
    frames.extend(host.all_frames());
    let of = |c| -> Vec<String> {
        frames
            .iter()
            .filter(|(x, _)| *x == c)
            .map(|(_, f)| format!("{f:?}"))
            .collect()
    };
    let expect = |ns: &[u32]| -> Vec<String> {
        ns.iter()
            .map(|n| {
                format!(
                    "{:?}",
                    Out::Text(data_frame(CHAT, &format!(r#"{{"n":{n}}}"#)))
                )
            })
            .collect()
    };
    assert_eq!(
        of(a),
        expect(&[0, 1, 2, 3, 4, 5]),
        "in publish order, none after leaving"
    );
    assert_eq!(of(b), expect(&[5, 6]), "none from before joining");
}

fn slow_host(limit: usize) -> Host {
    Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        limits: Limits {
            max_queued_bytes: limit,
            ..Limits::default()
        },
        ..Config::default()
    })
}

#[test]
fn a_slow_consumer_alone_is_disconnected() {
    let frame_len = data_frame(CHAT, r#"{"n":0}"#).len();
    let confirm_len = confirm(CHAT).len();
    let welcome_len = r#"{"type":"welcome"}"#.len();
    let limit = welcome_len + confirm_len + 3 * frame_len;
    let mut host = slow_host(limit);
    let fast = host.connect("fast");
    host.subscribe(fast, CHAT, &["chat_r1"]);
    // The slow one never gets its writes reported.
    let slow = {
        let (conn, pending) = host.open_pending();
        host.server
            .accept_connection(pending, cable_proto::Identity::new("slow"), host.now)
            .unwrap();
        host.send(conn, &subscribe(CHAT));
        let Some(Event::SubscriptionRequested { pending, .. }) = host.events().pop() else {
            panic!()
        };
        host.server
            .accept_subscription(
                pending,
                cable_proto::server::SubscriptionAccept::new().stream("chat_r1"),
                host.now,
            )
            .unwrap();
        conn
    };
    let mut slow_frames = Vec::new();
    let drain = |host: &mut Host, slow_frames: &mut Vec<Out>| {
        while let Some(t) = host.server.poll_transmit() {
            match t.frame {
                Frame::Text(bytes) if t.connection == fast => {
                    host.server
                        .handle_written(fast, bytes.len(), host.now)
                        .unwrap();
                }
                Frame::Text(bytes) => {
                    slow_frames.push(Out::Text(String::from_utf8(bytes.to_vec()).unwrap()))
                }
                Frame::Close { code, .. } => {
                    assert_eq!(t.connection, slow);
                    slow_frames.push(Out::Close(code));
                }
            }
        }
    };
    drain(&mut host, &mut slow_frames);
    host.events();
    for n in 0..3 {
        assert_eq!(
            host.server
                .broadcast("chat_r1", &format!(r#"{{"n":{n}}}"#), host.now)
                .recipients,
            2
        );
    }
    drain(&mut host, &mut slow_frames);
    assert_eq!(host.server.queued_bytes(slow), limit);
    assert_eq!(host.server.queued_bytes(fast), 0);
    // One more frame would go past the bound.
    assert_eq!(
        host.server
            .broadcast("chat_r1", r#"{"n":3}"#, host.now)
            .recipients,
        1
    );
    drain(&mut host, &mut slow_frames);
    assert_eq!(
        &slow_frames[slow_frames.len() - 2..],
        &[
            Out::Text(r#"{"type":"disconnect","reason":"too_slow","reconnect":true}"#.into()),
            Out::Close(1000)
        ]
    );
    assert!(!slow_frames.contains(&Out::Text(data_frame(CHAT, r#"{"n":3}"#))));
    let events = host.events();
    assert!(events.contains(&Event::Disconnecting {
        connection: slow,
        reason: DisconnectReason::TooSlow,
        reconnect: true
    }));
    assert!(events.iter().any(|e| matches!(e, Event::Unsubscribed { connection, cause: UnsubscribeCause::Disconnected, .. } if *connection == slow)));
    assert!(host.server.queued_bytes(slow) <= limit);
    // Everyone else goes on.
    assert_eq!(
        host.server
            .broadcast("chat_r1", r#"{"n":4}"#, host.now)
            .recipients,
        1
    );
    assert_eq!(
        host.all_frames(),
        vec![(fast, Out::Text(data_frame(CHAT, r#"{"n":4}"#)))]
    );
}

#[test]
fn a_broadcast_larger_than_any_queue_is_refused_and_disconnects_nobody() {
    let limit = 4096;
    let mut host = slow_host(limit);
    let a = host.connect("a");
    host.subscribe(a, CHAT, &["chat_r1"]);
    let b = host.connect("b");
    host.subscribe(b, CHAT, &["chat_r1"]);
    let huge = format!(r#"{{"text":"{}"}}"#, "x".repeat(limit));
    let delivery = host.server.broadcast("chat_r1", &huge, host.now);
    assert_eq!(delivery.recipients, 0);
    assert_eq!(delivery.encoded, 0);
    assert_eq!(delivery.skipped_too_large, 2);
    assert_eq!(host.all_frames(), vec![]);
    assert!(host.events().is_empty(), "nobody disconnected");
    // The next broadcast that fits reaches both.
    let delivery = host.server.broadcast("chat_r1", r#"{"n":1}"#, host.now);
    assert_eq!(delivery.recipients, 2);
    assert_eq!(
        host.all_frames(),
        vec![
            (a, Out::Text(data_frame(CHAT, r#"{"n":1}"#))),
            (b, Out::Text(data_frame(CHAT, r#"{"n":1}"#))),
        ]
    );
}

#[test]
fn written_reports_free_the_queue() {
    let mut host = slow_host(200);
    let conn = host.connect("alice");
    host.subscribe(conn, CHAT, &["chat_r1"]);
    for n in 0..50 {
        host.server
            .broadcast("chat_r1", &format!(r#"{{"n":{n}}}"#), host.now);
        assert_eq!(host.frames(conn).len(), 1, "frame {n} delivered");
    }
    assert_eq!(host.server.queued_bytes(conn), 0);
}

#[test]
fn pings_count_against_the_bound_so_a_dead_peer_is_found() {
    let mut host = slow_host(100);
    let (conn, pending) = host.open_pending();
    host.server
        .accept_connection(pending, cable_proto::Identity::new("ghost"), host.now)
        .unwrap();
    let mut closed = false;
    for _ in 0..10 {
        host.advance(std::time::Duration::from_secs(3));
        while let Some(t) = host.server.poll_transmit() {
            closed |= matches!(t.frame, Frame::Close { .. });
        }
    }
    assert!(closed);
    assert!(!host.server.is_open(conn));
}

fn ready_host() -> Host {
    Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        confirm_when_streams_ready: true,
        ..Config::default()
    })
}

fn request(
    host: &mut Host,
    conn: cable_proto::ConnectionId,
    identifier: &str,
) -> cable_proto::server::PendingSubscription {
    host.send(conn, &subscribe(identifier));
    match host.events().pop() {
        Some(Event::SubscriptionRequested { pending, .. }) => pending,
        other => panic!("{other:?}"),
    }
}

#[test]
fn confirmation_waits_for_new_streams_to_be_ready_upstream() {
    let mut host = ready_host();
    let a = host.connect("alice");
    let pending = request(&mut host, a, CHAT);
    host.send(a, &message(CHAT, r#"{"action":"whoami"}"#));
    let accept = cable_proto::server::SubscriptionAccept::new()
        .transmit(JsonText::string("early"))
        .stream("chat_r1")
        .stream("chat_all");
    host.server
        .accept_subscription(pending, accept, host.now)
        .unwrap();
    // Transmissions go at once; the confirmation waits for both streams.
    assert_eq!(texts(host.frames(a)), vec![data_frame(CHAT, r#""early""#)]);
    assert_eq!(
        host.events(),
        vec![
            Event::StreamStarted("chat_r1".into()),
            Event::StreamStarted("chat_all".into())
        ],
        "the message waits behind the confirmation"
    );
    host.server.stream_ready("chat_r1", host.now);
    assert!(host.all_frames().is_empty());
    host.server.stream_ready("chat_all", host.now);
    assert_eq!(texts(host.frames(a)), vec![confirm(CHAT)]);
    assert!(matches!(&host.events()[..], [Event::Perform(p)] if &*p.action == "whoami"));
    // A stream already ready confirms at once.
    let b = host.connect("bob");
    let pending = request(&mut host, b, CHAT);
    host.server
        .accept_subscription(
            pending,
            cable_proto::server::SubscriptionAccept::new().stream("chat_r1"),
            host.now,
        )
        .unwrap();
    assert_eq!(texts(host.frames(b)), vec![confirm(CHAT)]);
    // Ready twice, or unknown: no-op.
    host.server.stream_ready("chat_r1", host.now);
    host.server.stream_ready("nope", host.now);
    assert!(host.all_frames().is_empty());
}

#[test]
fn a_waiting_subscription_of_a_closed_connection_is_never_confirmed() {
    let mut host = ready_host();
    let a = host.connect("alice");
    let pending = request(&mut host, a, CHAT);
    host.send(a, &subscribe(CHAT_REORDERED));
    host.server
        .accept_subscription(
            pending,
            cable_proto::server::SubscriptionAccept::new().stream("chat_r1"),
            host.now,
        )
        .unwrap();
    host.server.handle_close(a, host.now).unwrap();
    let events = host.events();
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::SubscriptionRequested { .. })),
        "{events:?}"
    );
    assert!(host.all_frames().is_empty());
    host.server.stream_ready("chat_r1", host.now);
    assert!(host.all_frames().is_empty());
    assert_eq!(host.server.subscription_count(), 0);
}
