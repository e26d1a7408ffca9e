//! cable-proto's consumer against the real `@rails/actioncable` (8.1, from
//! npm), scenario by scenario, in virtual time: `js/consumer_trace.mjs` runs
//! each scenario of `js/scenarios/` through the JS consumer (fake WebSocket,
//! virtual clock, `Math.random()` = 0.5) and prints what it did; this test
//! runs the same scenario through `cable_proto::client::Consumer` (jitter
//! 0.5) and the two traces must be equal: sockets opened (with the
//! subprotocols offered) and closed, frames sent byte for byte, callbacks
//! made, each at the same millisecond.
//!
//! The scenarios stay clear of the consumer's documented differences
//! (`subscribe` before the welcome, `reconnected` on later confirmations,
//! duplicate confirmations, `token_expired`, unknown frame types), except
//! `deviations`, which pins the first two: its traces differ in exactly
//! those entries.
//!
//! Needs `node` and the npm packages of `cable-server/tests/js` (installed
//! with `npm ci` there when missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cable_proto::client::{Consumer, ConsumerConfig, Event, SubscriptionKey};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The JS consumer's trace of a scenario.
fn js_trace(scenario: &Path) -> Value {
    let js = workspace().join("cable-server/tests/js");
    let actioncable =
        js.join("node_modules/@rails/actioncable/app/assets/javascripts/actioncable.esm.js");
    if !actioncable.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&js)
            .status()
            .expect("npm (apt-get install npm)");
        assert!(status.success(), "npm ci in {}", js.display());
    }
    let output = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/consumer_trace.mjs"))
        .arg(scenario)
        .env("ACTIONCABLE", &actioncable)
        .output()
        .expect("node (apt-get install nodejs)");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON trace")
}

/// The same scenario through cable-proto's consumer.
struct RustHost {
    consumer: Consumer,
    t0: Instant,
    subs: Vec<SubscriptionKey>,
    trace: Vec<Value>,
}

impl RustHost {
    fn ms(&self, at: Instant) -> u64 {
        (at - self.t0).as_millis() as u64
    }

    fn index(&self, key: SubscriptionKey) -> usize {
        self.subs
            .iter()
            .position(|k| *k == key)
            .expect("a known key")
    }

    fn drain(&mut self, now: Instant) {
        let t = self.ms(now);
        while let Some(event) = self.consumer.poll_event() {
            let entry = match event {
                Event::Connect => json!([t, "connect", self.consumer.subprotocols().join(", ")]),
                Event::Close => json!([t, "close"]),
                Event::Connected { key, reconnected } => {
                    json!([t, "connected", self.index(key), reconnected])
                }
                Event::Rejected { key } => json!([t, "rejected", self.index(key)]),
                Event::Received { key, message } => {
                    // As the JS harness logs it: JSON.stringify of the parsed value.
                    let value: Value = serde_json::from_str(&message).unwrap();
                    json!([t, "received", self.index(key), value.to_string()])
                }
                Event::Disconnected {
                    key,
                    will_reconnect,
                } => json!([t, "disconnected", self.index(key), will_reconnect]),
                _ => continue,
            };
            self.trace.push(entry);
        }
        while let Some(frame) = self.consumer.poll_transmit() {
            self.trace.push(json!([t, "send", frame]));
        }
    }

    /// Fires every deadline up to `at` at its own time.
    fn advance_to(&mut self, at: Instant) {
        while let Some(due) = self.consumer.poll_timeout() {
            if due > at {
                break;
            }
            self.consumer.handle_timeout(due);
            self.drain(due);
        }
    }
}

fn rust_trace(scenario: &Value) -> Value {
    let t0 = Instant::now();
    let mut host = RustHost {
        consumer: Consumer::new(ConsumerConfig::default(), || 0.5, t0),
        t0,
        subs: Vec::new(),
        trace: Vec::new(),
    };
    for step in scenario.as_array().unwrap() {
        let now = t0 + Duration::from_millis(step["at"].as_u64().unwrap());
        host.advance_to(now);
        let c = &mut host.consumer;
        match step["op"].as_str().unwrap() {
            "subscribe" => {
                let key = c.subscribe(&step["params"].to_string(), now).unwrap();
                host.subs.push(key);
            }
            "unsubscribe" => {
                let key = host.subs[step["sub"].as_u64().unwrap() as usize];
                c.unsubscribe(key, now);
            }
            "perform" => {
                let key = host.subs[step["sub"].as_u64().unwrap() as usize];
                let action = step["action"].as_str().unwrap();
                let _ = c.perform(key, action, step["data"].as_object().unwrap(), now);
            }
            "open" => {
                let protocol = step["protocol"].as_str().filter(|p| !p.is_empty());
                c.handle_open(protocol, now);
            }
            "frame" => c
                .handle_text(step["text"].as_str().unwrap().as_bytes(), now)
                .unwrap(),
            "drop" => c.handle_close(now),
            "connect" => {
                c.connect(now);
            }
            "disconnect" => c.disconnect(now),
            "end" => {}
            op => panic!("unknown op {op}"),
        }
        host.drain(now);
    }
    Value::Array(host.trace)
}

/// Both traces of a scenario: (cable-proto's, the JS client's).
fn traces(name: &str) -> (Value, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/js/scenarios")
        .join(format!("{name}.json"));
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (rust_trace(&scenario), js_trace(&path))
}

fn same_as_the_js_client(name: &str) {
    let (rust, js) = traces(name);
    assert!(
        !js.as_array().unwrap().is_empty(),
        "the JS client did nothing"
    );
    assert_eq!(
        serde_json::to_string_pretty(&rust).unwrap(),
        serde_json::to_string_pretty(&js).unwrap(),
        "cable-proto's consumer (left) and @rails/actioncable (right) differ on {name}"
    );
}

/// Guarantor re-sends, a rejection, perform, a message, a server restart
/// and the reconnect on the monitor's schedule with `reconnected: true`, a
/// stale connection reopened, a failed connect, then a socket without the
/// subprotocol: closed, and no reconnect ever after.
#[test]
fn reconnect_scenario_matches_the_js_client() {
    same_as_the_js_client("reconnect");
}

/// Two subscriptions of one identifier: one subscribe each after the
/// welcome, one message each, no unsubscribe until the last goes; the
/// caller's key order; an unknown identifier ignored; `data.action` replaced
/// in place; `reconnect: false` stops.
#[test]
fn shared_identifier_scenario_matches_the_js_client() {
    same_as_the_js_client("shared_identifier");
}

/// An unreachable server: the backoff schedule, attempt by attempt.
#[test]
fn unreachable_scenario_matches_the_js_client() {
    same_as_the_js_client("unreachable");
}

/// The consumer's documented differences, pinned against the real client:
/// a `subscribe` made while the socket is open but not yet welcomed goes out
/// only after the welcome (the JS client sends it at once, then again after
/// the welcome), and after a reconnect every subscription confirmed before
/// is `reconnected` (the JS client says so only of the first confirmation).
/// Everything else is the same.
#[test]
fn the_documented_differences_and_nothing_else() {
    let (rust, js) = traces("deviations");
    let third = r#"{"command":"subscribe","identifier":"{\"channel\":\"Third\"}"}"#;
    let only_js = [
        json!([9015, "send", third]),
        json!([9040, "connected", 1, false]),
    ];
    let only_rust = [json!([9040, "connected", 1, true])];
    let without = |trace: &Value, drop: &[Value]| -> Vec<Value> {
        for entry in drop {
            assert!(
                trace.as_array().unwrap().contains(entry),
                "{entry} is not in {trace:#}"
            );
        }
        trace
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !drop.contains(e))
            .cloned()
            .collect()
    };
    let rust_rest = without(&rust, &only_rust);
    let js_rest = without(&js, &only_js);
    assert!(rust_rest.len() > 10, "{rust_rest:#?}");
    assert_eq!(
        serde_json::to_string_pretty(&rust_rest).unwrap(),
        serde_json::to_string_pretty(&js_rest).unwrap()
    );
}
