//! AnyCable's extended protocol in virtual time: client pings, pong
//! deadlines, whispers and presence, each asserted frame by frame.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use cable_proto::server::{
    Config, Event, ExtendedConfig, PingPrecision, PresenceAction, SessionPing,
    PROTOCOL_V1_EXT_JSON, PROTOCOL_V1_JSON,
};
use cable_proto::{ConnectionId, HandshakeRequest, Identity, JsonText, OriginPolicy};
use common::*;

const PUB: &str = r#"{"channel":"$pubsub","stream_name":"room"}"#;
const PUB_LIT: &str = r#""{\"channel\":\"$pubsub\",\"stream_name\":\"room\"}""#;

fn host(pong_timeout: Option<Duration>) -> Host {
    Host::with_config(Config {
        origins: OriginPolicy::allow_any(),
        protocols: vec![PROTOCOL_V1_EXT_JSON.into(), PROTOCOL_V1_JSON.into()],
        extended: ExtendedConfig {
            pong_timeout,
            ..ExtendedConfig::default()
        },
        ..Config::default()
    })
}

fn connect(host: &mut Host, user: &str, protocol: &str) -> ConnectionId {
    let request = HandshakeRequest {
        host: Some("example.com"),
        origin: Some("http://example.com"),
        secure: false,
        protocols: &[protocol],
    };
    let incoming = host.server.handle_open(&request, host.now).unwrap();
    host.server
        .accept_connection(incoming.pending, Identity::new(user), host.now)
        .unwrap();
    host.all_frames();
    incoming.connection
}

fn text(s: &str) -> Out {
    Out::Text(s.to_owned())
}

#[test]
fn session_ping_parameters_parse_as_anycable_reads_them() {
    let ping = |pi, ptp| SessionPing::from_params(pi, ptp);
    assert_eq!(
        ping(Some("10"), None).interval,
        Some(Duration::from_secs(10))
    );
    assert_eq!(ping(Some("0"), None).interval, Some(Duration::ZERO));
    assert_eq!(ping(Some("-5"), None).interval, Some(Duration::ZERO));
    // Not an integer: ignored (AnyCable logs it).
    assert_eq!(ping(Some("1.5"), None).interval, None);
    assert_eq!(ping(Some("x"), None), SessionPing::default());
    assert_eq!(ping(None, Some("ms")).precision, PingPrecision::Millis);
    assert_eq!(ping(None, Some("ns")).precision, PingPrecision::Nanos);
    assert_eq!(ping(None, Some("s")).precision, PingPrecision::Seconds);
    assert_eq!(ping(None, Some("us")).precision, PingPrecision::Seconds);
}

#[test]
fn own_ping_interval_and_timestamp_precision() {
    let mut host = host(None);
    let own = connect(&mut host, "a", PROTOCOL_V1_EXT_JSON);
    let nanos = connect(&mut host, "b", PROTOCOL_V1_EXT_JSON);
    let silent = connect(&mut host, "c", PROTOCOL_V1_EXT_JSON);
    let usual = connect(&mut host, "d", PROTOCOL_V1_EXT_JSON);
    let plain = connect(&mut host, "e", PROTOCOL_V1_JSON);
    let now = host.now;
    let set = |host: &mut Host, conn, pi, ptp| {
        host.server
            .set_session_ping(conn, SessionPing::from_params(pi, ptp), now);
    };
    set(&mut host, own, Some("10"), Some("ms"));
    set(&mut host, nanos, None, Some("ns"));
    set(&mut host, silent, Some("0"), None);
    // Plain connections keep Action Cable's pings.
    set(&mut host, plain, Some("10"), Some("ms"));
    // The server's beat (3 s): the usual and plain connections; the one
    // with only its own precision, on its own timer of the same interval.
    host.advance(Duration::from_secs(3));
    let frames = host.all_frames();
    // Deadlines fire before the beat.
    assert_eq!(
        frames,
        vec![
            (
                nanos,
                text(r#"{"type":"ping","message":1700000003000000000}"#)
            ),
            (usual, text(r#"{"type":"ping","message":1700000003}"#)),
            (plain, text(r#"{"type":"ping","message":1700000003}"#)),
        ]
    );
    host.advance(Duration::from_secs(3));
    host.advance(Duration::from_secs(3));
    let frames = host.all_frames();
    assert!(
        frames.iter().all(|(c, _)| *c != own && *c != silent),
        "{frames:?}"
    );
    // 10 s: its own ping, in milliseconds.
    host.advance(Duration::from_secs(1));
    assert_eq!(
        host.frames(own),
        vec![text(r#"{"type":"ping","message":1700000010000}"#)]
    );
    host.advance(Duration::from_secs(10));
    let frames = host.all_frames();
    assert!(
        frames.contains(&(own, text(r#"{"type":"ping","message":1700000020000}"#))),
        "{frames:?}"
    );
    assert!(frames.iter().all(|(c, _)| *c != silent), "{frames:?}");
}

#[test]
fn own_ping_interval_sets_the_pong_deadline() {
    let mut host = host(Some(Duration::from_secs(2)));
    let own = connect(&mut host, "a", PROTOCOL_V1_EXT_JSON);
    let now = host.now;
    host.server
        .set_session_ping(own, SessionPing::from_params(Some("10"), None), now);
    // The server's pings do not start its pong deadline.
    host.advance(Duration::from_secs(9));
    assert!(host.all_frames().is_empty());
    host.advance(Duration::from_secs(1));
    assert_eq!(
        host.frames(own),
        vec![text(r#"{"type":"ping","message":1700000010}"#)]
    );
    host.advance(Duration::from_secs(2));
    assert_eq!(
        host.frames(own),
        vec![
            text(r#"{"type":"disconnect","reason":"no_pong","reconnect":true}"#),
            Out::Close(1000)
        ]
    );
}

#[test]
fn a_client_ping_gets_a_pong() {
    let mut host = host(None);
    let conn = connect(&mut host, "a", PROTOCOL_V1_EXT_JSON);
    host.send(conn, r#"{"command":"ping"}"#);
    assert_eq!(host.frames(conn), vec![text(r#"{"type":"pong"}"#)]);
    // A plain connection: an unknown command, as in Rails.
    let plain = connect(&mut host, "b", PROTOCOL_V1_JSON);
    host.send(plain, r#"{"command":"ping"}"#);
    assert!(host.all_frames().is_empty());
    assert!(matches!(&host.events()[..], [Event::CommandFailed { .. }]));
}

#[test]
fn silence_after_a_ping_ends_with_no_pong() {
    let mut host = host(Some(Duration::from_secs(6)));
    let quiet = connect(&mut host, "a", PROTOCOL_V1_EXT_JSON);
    let talker = connect(&mut host, "b", PROTOCOL_V1_EXT_JSON);
    let plain = connect(&mut host, "c", PROTOCOL_V1_JSON);
    host.advance(Duration::from_secs(3)); // the ping
    let ping = format!(r#"{{"type":"ping","message":{}}}"#, UNIX_START + 3);
    assert_eq!(host.all_frames().len(), 3);
    host.advance(Duration::from_secs(2));
    host.send(talker, r#"{"command":"pong"}"#);
    assert!(host.all_frames().is_empty());
    host.advance(Duration::from_secs(1)); // the second ping at 6 s
    host.all_frames();
    host.advance(Duration::from_secs(3)); // 9 s: the first deadline
    let frames = host.all_frames();
    assert_eq!(
        frames,
        vec![
            (
                quiet,
                text(r#"{"type":"disconnect","reason":"no_pong","reconnect":true}"#)
            ),
            (quiet, Out::Close(1000)),
            (
                talker,
                text(&ping.replace(&(UNIX_START + 3).to_string(), &(UNIX_START + 9).to_string()))
            ),
            (
                plain,
                text(&ping.replace(&(UNIX_START + 3).to_string(), &(UNIX_START + 9).to_string()))
            ),
        ]
    );
    assert!(host.server.is_open(talker));
    assert!(host.server.is_open(plain));
}

#[test]
fn a_whisper_reaches_every_other_subscriber_and_is_never_stored() {
    let mut host = host(None);
    let a = connect(&mut host, "a", PROTOCOL_V1_EXT_JSON);
    let b = connect(&mut host, "b", PROTOCOL_V1_EXT_JSON);
    let c = connect(&mut host, "c", PROTOCOL_V1_JSON);
    let sub_a = host.subscribe(a, PUB, &["room"]);
    let sub_b = host.subscribe(b, PUB, &["room"]);
    host.subscribe(c, PUB, &["room"]);
    // Not allowed yet: refused, nothing sent.
    let whisper = format!(
        r#"{{"command":"whisper","identifier":{},"data":{{"event":"typing","user":"Jack"}}}}"#,
        lit(PUB)
    );
    host.send(a, &whisper);
    assert!(host.all_frames().is_empty());
    assert!(matches!(&host.events()[..], [Event::CommandFailed { .. }]));
    host.server.allow_whisper(sub_a, "room").unwrap();
    host.server.allow_whisper(sub_b, "room").unwrap();
    host.send(a, &whisper);
    let expected =
        format!(r#"{{"identifier":{PUB_LIT},"message":{{"event":"typing","user":"Jack"}}}}"#);
    assert_eq!(
        host.all_frames(),
        vec![(b, text(&expected)), (c, text(&expected))]
    );
    assert!(host.events().is_empty());
}

#[test]
fn presence_commands_reach_the_host_and_its_answers_the_subscribers() {
    let mut host = host(None);
    let a = connect(&mut host, "a", PROTOCOL_V1_EXT_JSON);
    let b = connect(&mut host, "b", PROTOCOL_V1_EXT_JSON);
    let sub_a = host.subscribe(a, PUB, &["room"]);
    let sub_b = host.subscribe(b, PUB, &["room"]);
    host.server.allow_presence(sub_a, "room").unwrap();
    host.server.allow_presence(sub_b, "room").unwrap();
    host.send(
        a,
        &format!(
            r#"{{"command":"join","identifier":{},"presence":{{"id":"u1","info":{{"name":"Ann"}}}}}}"#,
            lit(PUB)
        ),
    );
    let request = match host.events().pop() {
        Some(Event::PresenceRequested(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(request.stream.as_str(), "room");
    assert_eq!(
        request.action,
        PresenceAction::Join {
            id: "u1".into(),
            info: r#"{"name":"Ann"}"#.into()
        }
    );
    let join = JsonText::new(r#"{"type":"join","id":"u1","info":{"name":"Ann"}}"#).unwrap();
    assert_eq!(host.server.broadcast_presence("room", &join, host.now), 2);
    let frame = format!(
        r#"{{"type":"presence","identifier":{PUB_LIT},"message":{{"type":"join","id":"u1","info":{{"name":"Ann"}}}}}}"#
    );
    assert_eq!(
        host.all_frames(),
        vec![(a, text(&frame)), (b, text(&frame))]
    );
    // The real client's query: data {} and the records expected.
    host.send(
        b,
        &format!(
            r#"{{"command":"presence","identifier":{},"data":{{}}}}"#,
            lit(PUB)
        ),
    );
    let request = match host.events().pop() {
        Some(Event::PresenceRequested(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(request.action, PresenceAction::Info);
    let info =
        JsonText::new(r#"{"type":"info","total":1,"records":[{"id":"u1","info":{"name":"Ann"}}]}"#)
            .unwrap();
    host.server
        .transmit_presence(request.subscription, &info, host.now)
        .unwrap();
    assert_eq!(
        host.frames(b),
        vec![text(&format!(
            r#"{{"type":"presence","identifier":{PUB_LIT},"message":{{"type":"info","total":1,"records":[{{"id":"u1","info":{{"name":"Ann"}}}}]}}}}"#
        ))]
    );
    // The real client's leave carries no id.
    host.send(
        a,
        &format!(r#"{{"command":"leave","identifier":{}}}"#, lit(PUB)),
    );
    assert!(matches!(
        &host.events()[..],
        [Event::PresenceRequested(r)] if r.action == PresenceAction::Leave { id: None }
    ));
}
