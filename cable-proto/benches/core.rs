//! Core benchmarks, each beside its baseline in the same run:
//! - handling `subscribe` and `message` vs `serde_json::from_slice::<IgnoredAny>` of the same bytes;
//! - broadcast fan-out (1 to 100,000 subscribers, one or distinct identifiers) vs a loop
//!   cloning one `Bytes` into a `Vec`, per recipient;
//! - a ping tick over 100,000 connections vs the same clone loop.
//!
//! Bytes of state per connection and per subscription are measured by
//! `cable-proto/tests/alloc.rs` and `cable-fixtures bench --quick` (counting allocators).
#![allow(missing_docs, clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cable_proto::{
    Config, ConnectionId, Event, HandshakeRequest, Identity, OriginPolicy, Server,
    SubscriptionAccept,
};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use serde::de::IgnoredAny;

const SUBSCRIBE: &[u8] =
    br#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}"}"#;
const MESSAGE: &[u8] = br#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}","data":"{\"text\":\"hello there, this is a chat message\",\"action\":\"speak\"}"}"#;

fn server() -> (Server, Instant) {
    let now = Instant::now();
    let config = Config {
        origins: OriginPolicy::allow_any(),
        limits: cable_proto::Limits {
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
    let incoming = server
        .handle_open(&HandshakeRequest::default(), now)
        .unwrap();
    server
        .accept_connection(incoming.pending, Identity::new(user), now)
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
        .accept_subscription(
            pending.take(),
            SubscriptionAccept::new().stream(stream),
            now,
        )
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
            server.abandon_subscription(pending.take(), now).unwrap();
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
            black_box(server.poll_event());
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
                    let delivery = server.broadcast("chat_lobby", black_box(payload));
                    debug_assert_eq!(delivery.recipients, n);
                    while let Some(t) = server.poll_transmit() {
                        black_box(t);
                    }
                })
            });
        }
    }
    group.finish();
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
    group.bench_function("core/100000", |b| {
        let (mut server, start) = server();
        for _ in 0..N {
            connect(&mut server, start, "u");
        }
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
    });
    group.finish();
}

criterion_group!(benches, commands, fan_out, ping_tick);
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
