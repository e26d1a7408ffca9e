//! `--rpc-url` against a scripted backend in Rust (AnyCable's RPC over
//! HTTP): the outcome of each call when the backend fails, answers status
//! 0 or is too slow; the bound on calls in flight; a connection's commands
//! in arrival order while other connections proceed; and the rate-limited,
//! retried `/disconnect` queue. The real `@anycable/serverless-js` backend
//! is in `rpc_node.rs`.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{next_message, send, CableServer, Ws};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// One call the backend got.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    method: String,
    sid: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Backend {
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    flaky_failures: AtomicUsize,
}

impl Backend {
    fn calls(&self, method: &str) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The scripted answers: `(delay, HTTP status, body)`.
    fn answer(&self, method: &str, body: &Value) -> (u64, u16, Value) {
        let url = body["env"]["url"].as_str().unwrap_or_default();
        let token = url.split("token=").nth(1).unwrap_or_default();
        match method {
            "connect" => match token {
                "err" => (0, 200, json!({"status": 0, "error_msg": "exception"})),
                "http500" => (0, 500, json!({"error": "boom"})),
                "fail" => (
                    0,
                    200,
                    json!({"status": 2, "transmissions": [r#"{"type":"disconnect","reason":"unauthorized"}"#]}),
                ),
                _ => {
                    let delay = token
                        .strip_prefix("slow")
                        .and_then(|ms| ms.parse().ok())
                        .unwrap_or(0);
                    let welcome = json!({"type": "welcome", "sid": "from-backend"}).to_string();
                    (
                        delay,
                        200,
                        json!({"status": 1, "identifiers": format!("user:{token}"), "transmissions": [welcome],
                               "env": {"cstate": {"token": token}}}),
                    )
                }
            },
            "command" => {
                let identifier = body["identifier"].as_str().unwrap_or_default();
                let channel: Value = serde_json::from_str(identifier).unwrap_or_default();
                match (body["command"].as_str(), channel["channel"].as_str()) {
                    (Some("subscribe"), Some("Err")) => (0, 200, json!({"status": 0})),
                    (Some("subscribe"), Some("Slow")) => (2000, 200, json!({"status": 1})),
                    (Some("subscribe"), _) => (
                        0,
                        200,
                        json!({"status": 1, "streams": [format!("room_{}", channel["room"].as_str().unwrap_or(""))],
                               "transmissions": [json!({"identifier": identifier, "type": "confirm_subscription"}).to_string()]}),
                    ),
                    (Some("message"), _) => {
                        let data: Value =
                            serde_json::from_str(body["data"].as_str().unwrap_or("{}")).unwrap();
                        let frame =
                            json!({"identifier": identifier, "message": {"done": data["n"]}});
                        (
                            data["ms"].as_u64().unwrap_or(0),
                            200,
                            json!({"status": 1, "transmissions": [frame.to_string()]}),
                        )
                    }
                    _ => (0, 200, json!({"status": 1})),
                }
            }
            "disconnect" => {
                if body["identifiers"] == "user:flaky"
                    && self.flaky_failures.fetch_add(1, Ordering::SeqCst) == 0
                {
                    (0, 503, json!({"error": "try later"}))
                } else {
                    (0, 200, json!({"status": 1}))
                }
            }
            _ => (0, 404, json!({})),
        }
    }
}

/// Serves the scripted backend on a free loopback port.
async fn start_backend() -> (SocketAddr, Arc<Backend>) {
    let backend = Arc::new(Backend::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::clone(&backend);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let backend = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let backend = Arc::clone(&backend);
                    async move {
                        let method = request.uri().path().rsplit('/').next().unwrap().to_owned();
                        let sid = request
                            .headers()
                            .get("x-anycable-meta-sid")
                            .map(|v| v.to_str().unwrap().to_owned());
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let now = backend.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        backend.max_in_flight.fetch_max(now, Ordering::SeqCst);
                        backend.calls.lock().unwrap().push(Call {
                            at: Instant::now(),
                            method: method.clone(),
                            sid,
                            body: body.clone(),
                        });
                        let (delay, status, answer) = backend.answer(&method, &body);
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        backend.in_flight.fetch_sub(1, Ordering::SeqCst);
                        let response = Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(answer.to_string())))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, backend)
}

fn rpc_server(backend: SocketAddr, extra: &[&str]) -> CableServer {
    let url = format!("http://{backend}/_anycable");
    let mut args = vec!["--rpc-url", url.as_str()];
    args.extend_from_slice(extra);
    CableServer::start(&args)
}

async fn subscribe(ws: &mut Ws, identifier: &str) -> Value {
    send(
        ws,
        json!({"command": "subscribe", "identifier": identifier}),
    )
    .await;
    next_message(ws).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_of_errors_failures_and_deadlines() {
    let (addr, backend) = start_backend().await;
    let server = rpc_server(addr, &["--rpc-timeout-ms", "500"]);

    // Accepted: one welcome, with the backend's sid.
    let mut ws = server.connect("?token=alice").await;
    assert_eq!(
        next_message(&mut ws).await.unwrap(),
        json!({"type": "welcome", "sid": "from-backend"})
    );
    let connect = &backend.calls("connect")[0];
    assert!(connect.sid.as_deref().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        connect.body["env"]["url"],
        format!("http://{}/cable?token=alice", server.addr)
    );

    // Subscribe: status 0 and a deadline reject; success confirms once.
    let err = json!({"channel": "Err"}).to_string();
    assert_eq!(
        subscribe(&mut ws, &err).await,
        json!({"identifier": err, "type": "reject_subscription"})
    );
    let slow = json!({"channel": "Slow"}).to_string();
    let started = Instant::now();
    assert_eq!(
        subscribe(&mut ws, &slow).await,
        json!({"identifier": slow, "type": "reject_subscription"})
    );
    assert!(started.elapsed() >= Duration::from_millis(450));
    let room = json!({"channel": "Room", "room": "1"}).to_string();
    assert_eq!(
        subscribe(&mut ws, &room).await,
        json!({"identifier": room, "type": "confirm_subscription"})
    );
    let subscribe_call = backend
        .calls("command")
        .into_iter()
        .find(|c| c.body["identifier"] == room)
        .unwrap();
    assert_eq!(subscribe_call.body["connection_identifiers"], "user:alice");
    assert_eq!(
        subscribe_call.body["env"]["cstate"],
        json!({"token": "alice"})
    );
    // The subscription streams from what the backend said.
    let status = common::post_broadcast(
        server.addr,
        None,
        &json!({"stream": "room_1", "data": "{\"hi\":1}"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        next_message(&mut ws).await.unwrap(),
        json!({"identifier": room, "message": {"hi": 1}})
    );

    // Connect: a failure is unauthorized; status 0, HTTP 500 and a deadline
    // close with reconnect allowed.
    for (token, reason, reconnect) in [
        ("fail", "unauthorized", false),
        ("err", "server_error", true),
        ("http500", "server_error", true),
        ("slow2000", "server_error", true),
    ] {
        let started = Instant::now();
        let mut ws = server.connect(&format!("?token={token}")).await;
        assert_eq!(
            next_message(&mut ws).await,
            Some(json!({"type": "disconnect", "reason": reason, "reconnect": reconnect})),
            "token {token}"
        );
        assert_eq!(next_message(&mut ws).await, None, "closed after {token}");
        if token == "slow2000" {
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(450) && waited < Duration::from_millis(1400),
                "{waited:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_bounded_and_commands_in_arrival_order() {
    let (addr, backend) = start_backend().await;
    let server = rpc_server(addr, &["--rpc-concurrency", "2"]);

    // Six slow connects at once: at most two at the backend at a time.
    let mut sockets = Vec::new();
    for _ in 0..6 {
        sockets.push(server.connect("?token=slow200").await);
    }
    for ws in &mut sockets {
        assert_eq!(next_message(ws).await.unwrap()["type"], "welcome");
    }
    assert_eq!(backend.max_in_flight.load(Ordering::SeqCst), 2);

    // A slow action then a quick one on one connection: answered in that
    // order; another connection's action meanwhile is answered first.
    let room = json!({"channel": "Room", "room": "1"}).to_string();
    let (first, rest) = sockets.split_at_mut(1);
    let (a, b) = (&mut first[0], &mut rest[0]);
    subscribe(a, &room).await;
    subscribe(b, &room).await;
    let perform = |n: u64, ms: u64| {
        json!({"command": "message", "identifier": room,
               "data": json!({"action": "work", "n": n, "ms": ms}).to_string()})
    };
    send(a, perform(1, 600)).await;
    send(a, perform(2, 0)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    send(b, perform(3, 0)).await;
    let b_done = next_message(b).await.unwrap();
    assert_eq!(b_done["message"], json!({"done": 3}));
    assert!(
        sent.elapsed() < Duration::from_millis(400),
        "the other connection did not wait for the slow action"
    );
    assert_eq!(
        next_message(a).await.unwrap()["message"],
        json!({"done": 1})
    );
    assert_eq!(
        next_message(a).await.unwrap()["message"],
        json!({"done": 2})
    );
    // The data went to the backend as the client sent it.
    let messages: Vec<String> = backend
        .calls("command")
        .iter()
        .filter(|c| c.body["command"] == "message")
        .map(|c| c.body["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        messages[0],
        json!({"action": "work", "n": 1, "ms": 600}).to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnects_rate_limited_and_retried() {
    let (addr, backend) = start_backend().await;
    let server = rpc_server(addr, &["--rpc-disconnect-rate", "20"]);
    let room = json!({"channel": "Room", "room": "1"}).to_string();
    let mut sockets = Vec::new();
    for i in 0..10 {
        let token = if i == 0 {
            "flaky".to_owned()
        } else {
            format!("m{i}")
        };
        let mut ws = server.connect(&format!("?token={token}")).await;
        assert_eq!(next_message(&mut ws).await.unwrap()["type"], "welcome");
        assert_eq!(
            subscribe(&mut ws, &room).await["type"],
            "confirm_subscription"
        );
        sockets.push(ws);
    }
    // A mass disconnect.
    drop(sockets);
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.calls("disconnect").len() < 11 {
        assert!(
            Instant::now() < deadline,
            "disconnects: {:?}",
            backend.calls("disconnect").len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = backend.calls("disconnect");
    assert_eq!(calls.len(), 11, "ten disconnects and one retry");
    // Ten starts at 20 a second take at least 9 intervals of 50 ms.
    let first = calls.iter().map(|c| c.at).min().unwrap();
    let starts: Vec<&Call> = calls
        .iter()
        .filter(|c| c.body["identifiers"] != "user:flaky")
        .collect();
    let last = starts.iter().map(|c| c.at).max().unwrap();
    assert!(
        last - first >= Duration::from_millis(400),
        "spread {:?}",
        last - first
    );
    let flaky: Vec<&Call> = calls
        .iter()
        .filter(|c| c.body["identifiers"] == "user:flaky")
        .collect();
    assert_eq!(flaky.len(), 2, "the failed call was tried again");
    assert_eq!(flaky[0].body["subscriptions"], json!([room]));
    assert_eq!(flaky[0].body["env"]["cstate"], json!({"token": "flaky"}));
}
