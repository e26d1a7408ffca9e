//! Core benchmarks, each beside its baseline in the same run:
//! - handling `subscribe` and `message` vs `serde_json::from_slice::<IgnoredAny>` of the same bytes;
//! - broadcast fan-out (1 to 100,000 subscribers, one or distinct identifiers) vs a loop
//!   cloning one `Bytes` into a `Vec`, per recipient;
//! - broadcast fan-out to 10,000 members of a room mixed across three encodings (an Action
//!   Cable identifier and two envelopes of custom-protocol connections) vs the same clone loop;
//! - a ping tick over 100,000 connections vs the same clone loop, and the same tick with
//!   every connection holding a credential deadline (none due);
//! - accepting and closing 100,000 connections of one identity vs 100,000 distinct
//!   identities (the identity lists are O(1) per change).
//!
//! Bytes of state per connection and per subscription are measured by
//! `cable-proto/tests/alloc.rs` and `cable-fixtures bench --quick` (counting allocators).
#![allow(missing_docs, clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cable_proto::server::{
    Config, ConnectionAccept, Envelope, Event, PerformOutcome, Protocol, Server, SubscriptionAccept,
};
use cable_proto::{ConnectionId, HandshakeRequest, Identity, OriginPolicy, StreamMode};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use serde::de::IgnoredAny;

const SUBSCRIBE: &[u8] =
    br#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}"}"#;
const MESSAGE: &[u8] = br#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}","data":"{\"text\":\"hello there, this is a chat message\",\"action\":\"speak\"}"}"#;

fn server() -> (Server, Instant) {
    let now = Instant::now();
    let config = Config {
        origins: OriginPolicy::allow_any(),
        limits: cable_proto::server::Limits {
            max_queued_bytes: usize::MAX,
            ..Default::default()
        },
        ..Config::default()
    };
    (
        Server::new(config, now, Duration::from_secs(1_700_000_000)),
        now,
    )
}

fn connect(server: &mut Server, now: Instant, user: &str) -> ConnectionId {
    connect_as(server, now, Protocol::ActionCable, Identity::new(user))
}

fn connect_as(
    server: &mut Server,
    now: Instant,
    protocol: Protocol,
    accept: impl Into<ConnectionAccept>,
) -> ConnectionId {
    let incoming = server
        .handle_open_as(&HandshakeRequest::default(), protocol, now)
        .unwrap();
    server
        .accept_connection(incoming.pending, accept, now)
        .unwrap();
    while server.poll_transmit().is_some() {}
    incoming.connection
}

fn subscribe(
    server: &mut Server,
    now: Instant,
    conn: ConnectionId,
    identifier: &str,
    stream: &str,
) {
    let frame = format!(
        r#"{{"command":"subscribe","identifier":{}}}"#,
        serde_json::to_string(identifier).unwrap()
    );
    server.handle_text(conn, frame.as_bytes(), now).unwrap();
    let Some(Event::SubscriptionRequested { pending, .. }) = server.poll_event() else {
        panic!("no subscription request")
    };
    server
        .accept_subscription(pending, SubscriptionAccept::new().stream(stream), now)
        .unwrap();
    while server.poll_transmit().is_some() {}
    while server.poll_event().is_some() {}
}

fn commands(c: &mut Criterion) {
    let mut group = c.benchmark_group("command");
    group.bench_function("subscribe/baseline_ignored_any", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(SUBSCRIBE)).unwrap())
    });
    group.bench_function("subscribe/core", |b| {
        let (mut server, now) = server();
        let conn = connect(&mut server, now, "alice");
        b.iter(|| {
            server.handle_text(conn, black_box(SUBSCRIBE), now).unwrap();
            let Some(Event::SubscriptionRequested { pending, .. }) = server.poll_event() else {
                unreachable!()
            };
            server.abandon_subscription(pending, now).unwrap();
        })
    });
    group.bench_function("message/baseline_ignored_any", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(MESSAGE)).unwrap())
    });
    group.bench_function("message/core", |b| {
        let (mut server, now) = server();
        let conn = connect(&mut server, now, "alice");
        subscribe(
            &mut server,
            now,
            conn,
            r#"{"channel":"ChatChannel","room":"lobby"}"#,
            "chat_lobby",
        );
        b.iter(|| {
            server.handle_text(conn, black_box(MESSAGE), now).unwrap();
            let Some(Event::Perform(perform)) = server.poll_event() else {
                unreachable!()
            };
            // An action with no effect on the wire; the next message waits for it.
            server
                .complete_perform(black_box(perform).pending, PerformOutcome::new(), now)
                .unwrap();
        })
    });
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    let payload = r#"{"text":"hello there, this is a chat message","from":"alice"}"#;
    for n in [1usize, 100, 10_000, 100_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("baseline_clone_loop", n), &n, |b, &n| {
            let frame = Bytes::from(vec![b'x'; 120]);
            let mut out: Vec<Bytes> = Vec::with_capacity(n);
            b.iter(|| {
                for _ in 0..n {
                    out.push(frame.clone());
                }
                out.clear();
            })
        });
        for distinct in [false, true] {
            let (mut server, now) = server();
            for i in 0..n {
                let conn = connect(&mut server, now, "u");
                let id = if distinct {
                    format!(r#"{{"channel":"ChatChannel","room":"lobby","n":{i}}}"#)
                } else {
                    r#"{"channel":"ChatChannel","room":"lobby"}"#.to_owned()
                };
                subscribe(&mut server, now, conn, &id, "chat_lobby");
            }
            let name = if distinct {
                "core_distinct_identifiers"
            } else {
                "core_one_identifier"
            };
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter(|| {
                    let delivery = server.broadcast("chat_lobby", black_box(payload), now);
                    debug_assert_eq!(delivery.recipients, n);
                    while let Some(t) = server.poll_transmit() {
                        black_box(t);
                    }
                })
            });
        }
        if n == 10_000 {
            let (mut server, now) = mixed_room(n);
            group.bench_with_input(
                BenchmarkId::new("core_mixed_three_encodings", n),
                &n,
                |b, &n| {
                    b.iter(|| {
                        let delivery = server.broadcast("room", black_box(payload), now);
                        debug_assert_eq!((delivery.recipients, delivery.encoded), (n, 3));
                        while let Some(t) = server.poll_transmit() {
                            black_box(t);
                        }
                    })
                },
            );
            let (mut server, now) = dialect_room(n);
            group.bench_with_input(
                BenchmarkId::new("core_mixed_three_dialects", n),
                &n,
                |b, &n| {
                    b.iter(|| {
                        let delivery = server.broadcast("room", black_box(payload), now);
                        debug_assert_eq!((delivery.recipients, delivery.encoded), (n, 3));
                        while let Some(t) = server.poll_transmit() {
                            black_box(t);
                        }
                    })
                },
            );
        }
    }
    group.finish();
}

/// A room of `n` members across three dialects: Action Cable subscriptions,
/// BuddyBoss connections that joined thread "room" through the dialect, and
/// a third dialect's raw-string envelope.
fn dialect_room(n: usize) -> (Server, Instant) {
    use cable_proto::dialect::BuddyBoss;
    let (mut server, now) = mixed_room(0);
    let bb = BuddyBoss::new(Protocol::Custom(7));
    for i in 0..n {
        match i % 3 {
            0 => {
                let conn = connect(&mut server, now, "u");
                subscribe(
                    &mut server,
                    now,
                    conn,
                    r#"{"channel":"ChatChannel","room":"lobby"}"#,
                    "room",
                );
            }
            1 => {
                let conn = connect_as(&mut server, now, Protocol::Custom(7), Identity::new("u"));
                bb.handle(
                    &mut server,
                    conn,
                    br#"{"type":"join_thread","threadId":"room"}"#,
                    false,
                    None,
                    now,
                )
                .unwrap();
            }
            _ => {
                let conn = connect_as(&mut server, now, Protocol::Custom(2), Identity::new("u"));
                let envelope = Envelope::new(r#"["room","#, "]", StreamMode::RawString);
                server.join(conn, "room", envelope, now).unwrap();
            }
        }
    }
    while server.poll_event().is_some() {}
    (server, now)
}

/// A room of `n` members, a third each: Action Cable subscriptions of one
/// identifier, and custom-protocol connections joined with one of two
/// envelopes.
fn mixed_room(n: usize) -> (Server, Instant) {
    let (mut server, now) = server();
    let envelopes = [
        Envelope::new(r#"{"type":"new_message","data":"#, "}", StreamMode::Json),
        Envelope::new(r#"["room","#, "]", StreamMode::RawString),
    ];
    for i in 0..n {
        match i % 3 {
            0 => {
                let conn = connect(&mut server, now, "u");
                subscribe(
                    &mut server,
                    now,
                    conn,
                    r#"{"channel":"ChatChannel","room":"lobby"}"#,
                    "room",
                );
            }
            k => {
                let dialect = k as u16;
                let conn = connect_as(
                    &mut server,
                    now,
                    Protocol::Custom(dialect),
                    Identity::new("u"),
                );
                server
                    .join(conn, "room", envelopes[k - 1].clone(), now)
                    .unwrap();
            }
        }
    }
    while server.poll_event().is_some() {}
    (server, now)
}

fn ping_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_tick");
    group.sample_size(20);
    const N: usize = 100_000;
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("baseline_clone_loop/100000", |b| {
        let frame = Bytes::from_static(br#"{"type":"ping","message":1700000000}"#);
        let mut out: Vec<Bytes> = Vec::with_capacity(N);
        b.iter(|| {
            for _ in 0..N {
                out.push(frame.clone());
            }
            out.clear();
        })
    });
    for with_expiry in [false, true] {
        let name = if with_expiry {
            "core_credential_deadlines_none_due/100000"
        } else {
            "core/100000"
        };
        group.bench_function(name, |b| ping_tick_core(b, N, with_expiry));
    }
    group.finish();
}

/// A ping tick over `n` welcomed connections; with `with_expiry`, each holds
/// a credential deadline far beyond the run.
fn ping_tick_core(b: &mut criterion::Bencher<'_>, n: usize, with_expiry: bool) {
    let (mut server, start) = server();
    let expiry = start + Duration::from_secs(100 * 365 * 24 * 3600);
    for _ in 0..n {
        let mut accept = ConnectionAccept::new(Identity::new("u"));
        if with_expiry {
            accept = accept.expires_at(expiry);
        }
        connect_as(&mut server, start, Protocol::ActionCable, accept);
    }
    debug_assert_eq!(server.timer_count(), if with_expiry { n } else { 0 });
    let mut now = start;
    b.iter_batched(
        || {
            now += Duration::from_secs(3);
            now
        },
        |now| {
            server.handle_timeout(now);
            while let Some(t) = server.poll_transmit() {
                black_box(t);
            }
        },
        BatchSize::PerIteration,
    )
}

fn identities(c: &mut Criterion) {
    let mut group = c.benchmark_group("identities");
    group.sample_size(10);
    const N: usize = 100_000;
    group.throughput(Throughput::Elements(N as u64));
    let one: Vec<Identity> = vec![Identity::new("anonymous"); N];
    let distinct: Vec<Identity> = (0..N).map(|i| Identity::new(format!("user{i}"))).collect();
    // Closed in an order that is neither accept order nor its reverse: every
    // close is from the middle of the list as often as from its ends.
    let order: Vec<usize> = (0..N).map(|i| (i * 7919) % N).collect();
    for (name, identities) in [
        ("baseline_distinct_identities", &distinct),
        ("core_one_identity", &one),
    ] {
        group.bench_function(BenchmarkId::new(name, N), |b| {
            b.iter_batched(
                server,
                |(mut server, now)| {
                    let conns: Vec<ConnectionId> = identities
                        .iter()
                        .map(|identity| {
                            connect_as(&mut server, now, Protocol::ActionCable, identity.clone())
                        })
                        .collect();
                    for &i in &order {
                        server.handle_close(conns[i], now).unwrap();
                    }
                    while server.poll_event().is_some() {}
                    debug_assert_eq!(server.connection_count(), 0);
                    server
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// Closing connections that hold many subscriptions (a mass disconnect):
/// 100 connections × 256 subscriptions on shared streams, every one ended
/// with its events, beside a bare `HashMap` removal of as many keys.
fn mass_close(c: &mut Criterion) {
    let mut group = c.benchmark_group("mass_close");
    group.sample_size(10);
    const CONNS: usize = 100;
    const SUBS: usize = 256;
    group.throughput(Throughput::Elements((CONNS * SUBS) as u64));
    let keys: Vec<String> = (0..CONNS * SUBS)
        .map(|i| format!("c{}:s{}", i / SUBS, i % SUBS))
        .collect();
    group.bench_function(
        BenchmarkId::new("baseline_hashmap_remove", CONNS * SUBS),
        |b| {
            b.iter_batched(
                || {
                    keys.iter()
                        .enumerate()
                        .map(|(i, k)| (k.clone(), i as u32))
                        .collect::<std::collections::HashMap<String, u32>>()
                },
                |mut map| {
                    for key in &keys {
                        black_box(map.remove(key.as_str()));
                    }
                    map
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.bench_function(BenchmarkId::new("core_close", CONNS * SUBS), |b| {
        b.iter_batched(
            || {
                let (mut server, now) = server();
                let conns: Vec<ConnectionId> = (0..CONNS)
                    .map(|i| {
                        let conn = connect(&mut server, now, &format!("user{i}"));
                        for s in 0..SUBS {
                            let identifier = format!(r#"{{"channel":"RoomChannel","room":{s}}}"#);
                            subscribe(&mut server, now, conn, &identifier, &format!("room_{s}"));
                        }
                        conn
                    })
                    .collect();
                (server, now, conns)
            },
            |(mut server, now, conns)| {
                for conn in conns {
                    server.handle_close(conn, now).unwrap();
                }
                while server.poll_event().is_some() {}
                server
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, commands, fan_out, ping_tick, identities, mass_close);
criterion_main!(benches, comp);

fn components(c: &mut Criterion) {
    let mut group = c.benchmark_group("components");
    group.bench_function("parse_message", |b| {
        b.iter(|| black_box(cable_proto::command::parse(black_box(MESSAGE)).unwrap()))
    });
    group.bench_function("parse_subscribe", |b| {
        b.iter(|| black_box(cable_proto::command::parse(black_box(SUBSCRIBE)).unwrap()))
    });
    group.finish();
}
criterion_group!(comp, components);
