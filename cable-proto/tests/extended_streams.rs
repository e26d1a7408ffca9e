//! AnyCable's extended protocol in virtual time: negotiation, positions on
//! broadcasts, history (on request and with subscribe) and session resume,
//! each asserted frame by frame.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use cable_proto::server::{
    Config, Event, ExtendedConfig, HistoryError, PendingConnection, StreamHistory, StreamPosition,
    PROTOCOL_V1_EXT_JSON, PROTOCOL_V1_JSON,
};
use cable_proto::{ConnectionId, HandshakeRequest, Identity, OriginPolicy};
use common::*;

const PUB: &str = r#"{"channel":"$pubsub","stream_name":"chat"}"#;

fn host() -> Host {
    Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        protocols: vec![PROTOCOL_V1_EXT_JSON.into(), PROTOCOL_V1_JSON.into()],
        extended: ExtendedConfig {
            session_ttl: Some(Duration::from_secs(300)),
            ..ExtendedConfig::default()
        },
        ..Config::default()
    })
}

/// Opens a connection offering `offered`; returns it, its token and the
/// subprotocol chosen.
fn open(host: &mut Host, offered: &[&str]) -> (ConnectionId, PendingConnection, Option<String>) {
    let request = HandshakeRequest {
        host: Some("example.com"),
        origin: Some("http://example.com"),
        secure: false,
        protocols: offered,
    };
    let incoming = host.server.handle_open(&request, host.now).unwrap();
    (incoming.connection, incoming.pending, incoming.subprotocol)
}

/// An extended connection as `user` with session id `sid`, welcome drained.
fn connect_ext(host: &mut Host, user: &str, sid: &str) -> ConnectionId {
    let (conn, pending, chosen) = open(host, &[PROTOCOL_V1_EXT_JSON]);
    assert_eq!(chosen.as_deref(), Some(PROTOCOL_V1_EXT_JSON));
    host.server
        .accept_session(pending, Identity::new(user).into(), sid, host.now)
        .unwrap();
    assert_eq!(
        host.frames(conn),
        vec![Out::Text(format!(r#"{{"type":"welcome","sid":"{sid}"}}"#))]
    );
    conn
}

fn unix(host: &Host) -> Duration {
    Duration::from_secs(UNIX_START) + host.now.duration_since(host.start)
}

/// Answers every history request among the events from `history`, as a host
/// does; returns the other events.
fn answer_history(host: &mut Host, history: &mut StreamHistory) -> Vec<Event> {
    let mut rest = Vec::new();
    for event in host.events() {
        let Event::HistoryRequested(request) = event else {
            rest.push(event);
            continue;
        };
        let now = unix(host);
        let mut entries = Vec::new();
        let mut failed = None;
        for s in &request.streams {
            let read = match (&s.from, s.since) {
                (Some(from), _) => history.read_from(s.stream.as_str(), from, now),
                (None, Some(since)) => Ok(history.read_since(s.stream.as_str(), since, now)),
                (None, None) => Err(HistoryError::NoPosition),
            };
            match read {
                Ok(read) => entries.extend(read),
                Err(e) => failed = Some(e),
            }
        }
        let answer = match failed {
            Some(e) => Err(e),
            None => Ok(entries),
        };
        host.server
            .complete_history(request.pending, answer, host.now)
            .unwrap();
    }
    rest
}

fn text(s: &str) -> Out {
    Out::Text(s.to_owned())
}

#[test]
fn negotiation_offers_the_extended_protocol_beside_the_plain_one() {
    let mut host = host();
    let (_, _, ext) = open(&mut host, &[PROTOCOL_V1_EXT_JSON, PROTOCOL_V1_JSON]);
    assert_eq!(ext.as_deref(), Some(PROTOCOL_V1_EXT_JSON));
    let (_, _, plain) = open(&mut host, &[PROTOCOL_V1_JSON]);
    assert_eq!(plain.as_deref(), Some(PROTOCOL_V1_JSON));
    // Without it configured, an extended-only client gets nothing.
    let mut plain_host = Host::new();
    let (_, _, none) = open(&mut plain_host, &[PROTOCOL_V1_EXT_JSON]);
    assert_eq!(none, None);
}

#[test]
fn positions_only_on_extended_connections() {
    let mut host = host();
    let ext = connect_ext(&mut host, "a", "s1");
    host.subscribe(ext, PUB, &["chat"]);
    let (plain, pending, _) = open(&mut host, &[PROTOCOL_V1_JSON]);
    host.server
        .accept_connection(pending, Identity::new("b"), host.now)
        .unwrap();
    host.all_frames();
    host.subscribe(plain, PUB, &["chat"]);
    let mut history = StreamHistory::new("ep", 100, Duration::from_secs(300));
    let position = history.append("chat", r#"{"n":1}"#, unix(&host));
    assert_eq!(position, StreamPosition::new("ep", 1));
    let delivery = host
        .server
        .broadcast_at("chat", r#"{"n":1}"#, &position, host.now);
    assert_eq!(delivery.recipients, 2);
    let frames = host.all_frames();
    assert_eq!(
        frames,
        vec![
            (
                ext,
                text(
                    r#"{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}","message":{"n":1},"stream_id":"chat","epoch":"ep","offset":1}"#
                )
            ),
            (
                plain,
                text(
                    r#"{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}","message":{"n":1}}"#
                )
            ),
        ]
    );
}

#[test]
fn history_command_replays_after_the_position_then_confirms() {
    let mut host = host();
    let conn = connect_ext(&mut host, "a", "s1");
    host.subscribe(conn, PUB, &["chat"]);
    let mut history = StreamHistory::new("ep", 100, Duration::from_secs(300));
    for n in 1..=3 {
        let p = history.append("chat", &format!(r#"{{"n":{n}}}"#), unix(&host));
        host.server
            .broadcast_at("chat", &format!(r#"{{"n":{n}}}"#), &p, host.now);
    }
    host.frames(conn);
    host.send(
        conn,
        &format!(
            r#"{{"identifier":{},"command":"history","history":{{"since":{UNIX_START},"streams":{{"chat":{{"epoch":"ep","offset":1}}}}}}}}"#,
            lit(PUB)
        ),
    );
    assert!(answer_history(&mut host, &mut history).is_empty());
    assert_eq!(
        host.frames(conn),
        vec![
            text(
                r#"{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}","message":{"n":2},"stream_id":"chat","epoch":"ep","offset":2}"#
            ),
            text(
                r#"{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}","message":{"n":3},"stream_id":"chat","epoch":"ep","offset":3}"#
            ),
            text(
                r#"{"type":"confirm_history","identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}"}"#
            ),
        ]
    );
    // Another epoch: the history was lost meanwhile.
    host.send(
        conn,
        &format!(
            r#"{{"identifier":{},"command":"history","history":{{"streams":{{"chat":{{"epoch":"old","offset":1}}}}}}}}"#,
            lit(PUB)
        ),
    );
    answer_history(&mut host, &mut history);
    assert_eq!(
        host.frames(conn),
        vec![text(
            r#"{"type":"reject_history","identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}"}"#
        )]
    );
}

#[test]
fn history_is_bounded_by_count_and_age() {
    let mut history = StreamHistory::new("ep", 3, Duration::from_secs(10));
    let t0 = Duration::from_secs(UNIX_START);
    for n in 1..=5 {
        history.append("s", &n.to_string(), t0);
    }
    assert_eq!(history.len(), 3);
    // 2 is gone: a client at 1 missed it.
    assert_eq!(
        history.read_from("s", &StreamPosition::new("ep", 1), t0),
        Err(HistoryError::PositionGone {
            requested: 1,
            oldest: 3
        })
    );
    let from_2: Vec<u64> = history
        .read_from("s", &StreamPosition::new("ep", 2), t0)
        .unwrap()
        .iter()
        .map(|e| e.position.offset)
        .collect();
    assert_eq!(from_2, vec![3, 4, 5]);
    // Past the TTL nothing is left, and the stream answers as unknown.
    let later = t0 + Duration::from_secs(11);
    history.prune(later);
    assert!(history.is_empty());
    assert_eq!(
        history.read_from("s", &StreamPosition::new("ep", 5), later),
        Err(HistoryError::UnknownStream)
    );
    // Offsets go on after the TTL emptied the stream.
    assert_eq!(
        history.append("s", "6", later),
        StreamPosition::new("ep", 6)
    );
}

#[test]
fn subscribe_with_history_confirms_then_replays_since() {
    let mut host = host();
    let mut history = StreamHistory::new("ep", 100, Duration::from_secs(300));
    history.append("chat", r#""early""#, unix(&host));
    host.advance(Duration::from_secs(5));
    history.append("chat", r#""late""#, unix(&host));
    let conn = connect_ext(&mut host, "a", "s1");
    host.send(
        conn,
        &format!(
            r#"{{"command":"subscribe","identifier":{},"history":{{"since":{},"streams":{{}}}}}}"#,
            lit(PUB),
            UNIX_START + 3
        ),
    );
    let pending = match host.events().pop() {
        Some(Event::SubscriptionRequested { pending, .. }) => pending,
        other => panic!("{other:?}"),
    };
    host.server
        .accept_subscription(
            pending,
            cable_proto::server::SubscriptionAccept::new().stream("chat"),
            host.now,
        )
        .unwrap();
    answer_history(&mut host, &mut history);
    assert_eq!(
        host.frames(conn),
        vec![
            text(
                r#"{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}","type":"confirm_subscription"}"#
            ),
            text(
                r#"{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}","message":"late","stream_id":"chat","epoch":"ep","offset":2}"#
            ),
            text(
                r#"{"type":"confirm_history","identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}"}"#
            ),
        ]
    );
}

#[test]
fn a_session_comes_back_with_its_subscriptions_and_no_callbacks() {
    let mut host = host();
    let conn = connect_ext(&mut host, "alice", "s1");
    let sub = host.subscribe(conn, PUB, &["chat"]);
    host.server.handle_close(conn, host.now).unwrap();
    // No Unsubscribed, no Closed: the session is kept.
    let events = host.events();
    assert_eq!(
        events,
        vec![Event::StreamStopped(cable_proto::StreamName::new("chat"))]
    );
    assert_eq!(host.server.kept_sessions(), 1);
    host.advance(Duration::from_secs(10));
    let (again, pending, _) = open(&mut host, &[PROTOCOL_V1_EXT_JSON]);
    let restored = host
        .server
        .restore_session(pending, "s1", "s2", host.now)
        .unwrap();
    assert_eq!(restored.identity, Some(Identity::new("alice")));
    assert_eq!(
        host.frames(again),
        vec![text(
            r#"{"type":"welcome","sid":"s2","restored":true,"restored_ids":["{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}"]}"#
        )]
    );
    let events = host.events();
    assert!(
        matches!(&events[..], [Event::StreamStarted(_), Event::SessionRestored(r)] if r.subscriptions.len() == 1)
    );
    // The application learns which connection and subscriptions came back
    // as which, to move what it keeps for them.
    assert_eq!(restored.previous_connection, conn);
    assert_eq!(restored.previous_subscriptions, vec![sub]);
    assert_eq!(restored.subscriptions[0].1.as_str(), PUB);
    // Subscribed again without a subscribe: broadcasts arrive.
    host.server.broadcast_at(
        "chat",
        r#"{"n":7}"#,
        &StreamPosition::new("ep", 7),
        host.now,
    );
    assert_eq!(
        host.frames(again),
        vec![text(
            r#"{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}","message":{"n":7},"stream_id":"chat","epoch":"ep","offset":7}"#
        )]
    );
    // The session is gone once restored: the old sid does not work twice.
    let (third, pending, _) = open(&mut host, &[PROTOCOL_V1_EXT_JSON]);
    assert!(host
        .server
        .restore_session(pending, "s1", "s3", host.now)
        .is_err());
    let _ = third;
}

#[test]
fn a_restore_keeps_the_credential_expiry_and_is_refused_past_it() {
    let mut host = host();
    let (conn, pending, _) = open(&mut host, &[PROTOCOL_V1_EXT_JSON]);
    let expires = host.now + Duration::from_secs(60);
    let accept =
        cable_proto::server::ConnectionAccept::new(Identity::new("alice")).expires_at(expires);
    host.server
        .accept_session(pending, accept, "s1", host.now)
        .unwrap();
    host.frames(conn);
    host.subscribe(conn, PUB, &["chat"]);
    host.server.handle_close(conn, host.now).unwrap();
    host.events();
    host.advance(Duration::from_secs(30));
    // Restored: the credential still expires when it did, not 60 s later.
    let (again, pending, _) = open(&mut host, &[PROTOCOL_V1_EXT_JSON]);
    host.server
        .restore_session(pending, "s1", "s2", host.now)
        .unwrap();
    assert_eq!(host.server.expiry(again), Some(expires));
    host.frames(again);
    host.advance(Duration::from_secs(30));
    assert_eq!(
        host.frames(again),
        vec![
            text(r#"{"type":"disconnect","reason":"token_expired","reconnect":false}"#),
            Out::Close(1000)
        ]
    );
    // A session kept past its credential's expiry is not restored: it ends.
    let (conn, pending, _) = open(&mut host, &[PROTOCOL_V1_EXT_JSON]);
    let accept = cable_proto::server::ConnectionAccept::new(Identity::new("bob"))
        .expires_at(host.now + Duration::from_secs(10));
    host.server
        .accept_session(pending, accept, "s3", host.now)
        .unwrap();
    host.frames(conn);
    host.subscribe(conn, PUB, &["chat"]);
    host.server.handle_close(conn, host.now).unwrap();
    host.events();
    host.advance(Duration::from_secs(11));
    let (_, pending, _) = open(&mut host, &[PROTOCOL_V1_EXT_JSON]);
    assert!(host
        .server
        .restore_session(pending, "s3", "s4", host.now)
        .is_err());
    let events = host.events();
    assert!(
        matches!(
            &events[..],
            [Event::Unsubscribed { .. }, Event::Closed { identity: Some(i), .. }] if i.as_str() == "bob"
        ),
        "{events:?}"
    );
    assert_eq!(host.server.kept_sessions(), 0);
}

#[test]
fn a_session_not_restored_in_time_ends_with_its_callbacks() {
    let mut host = host();
    let conn = connect_ext(&mut host, "alice", "s1");
    host.subscribe(conn, PUB, &["chat"]);
    host.server.handle_close(conn, host.now).unwrap();
    host.events();
    host.advance(Duration::from_secs(299));
    assert!(host.events().is_empty());
    host.advance(Duration::from_secs(1));
    let events = host.events();
    assert!(
        matches!(
            &events[..],
            [Event::Unsubscribed { .. }, Event::Closed { identity: Some(i), .. }] if i.as_str() == "alice"
        ),
        "{events:?}"
    );
    assert_eq!(host.server.kept_sessions(), 0);
    let (_, pending, _) = open(&mut host, &[PROTOCOL_V1_EXT_JSON]);
    assert!(host
        .server
        .restore_session(pending, "s1", "s2", host.now)
        .is_err());
}

#[test]
fn plain_connections_and_server_closes_keep_no_session() {
    let mut host = host();
    // A plain connection: no resume even with a sid.
    let (plain, pending, _) = open(&mut host, &[PROTOCOL_V1_JSON]);
    host.server
        .accept_session(pending, Identity::new("b").into(), "p1", host.now)
        .unwrap();
    host.frames(plain);
    host.server.handle_close(plain, host.now).unwrap();
    assert_eq!(host.server.kept_sessions(), 0);
    // A connection the server disconnected: the client forgets its sid.
    let conn = connect_ext(&mut host, "a", "s1");
    host.server
        .disconnect(conn, cable_proto::DisconnectReason::Remote, true, host.now)
        .unwrap();
    host.server.handle_close(conn, host.now).unwrap();
    assert_eq!(host.server.kept_sessions(), 0);
}
