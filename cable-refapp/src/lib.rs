//! # cable-refapp
//!
//! The reference app in Rust: `../shared/refserver/config.ru` on top of
//! `cable-proto`, behaving as the Rails one does on the wire. cable-server
//! runs it with `--app reference`; cable-fixtures replays the Rails corpus
//! against it.
//!
//! - Connection: the token comes from the `token` query parameter, else from
//!   `Authorization: Bearer <token>`; token `bad` is rejected; no token means
//!   user `anonymous`. The identity is the user.
//! - Origins: same origin as the host, `http://allowed.example` and
//!   `http://localhost[:port]`.
//! - Channels `ChatChannel`, `NotificationChannel`, `GreetingChannel`,
//!   `RawStreamChannel`, `FeedChannel` and `BenchmarkChannel`, with their
//!   actions and callbacks; Rails 6.1's quirks kept where a client can tell
//!   (an unknown channel gets no frame; `ApplicationCable::Channel` and
//!   `ActionCable::Channel::Base` themselves are subscribable).
//! - Actions are answered as one [`PerformOutcome`] each (transmissions,
//!   broadcasts, streams started or stopped).
//! - Control operations `/broadcast`, `/notify`, `/disconnect`, `/restart`,
//!   `/stats`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cable_refapp::ReferenceApp;
//! use cable_proto::server::Server;
//! use cable_proto::HandshakeRequest;
//!
//! let now = Instant::now();
//! let mut app = ReferenceApp::new();
//! let mut server = Server::new(ReferenceApp::config(), now, Duration::from_secs(1_700_000_000));
//! let request = HandshakeRequest { host: Some("127.0.0.1:8080"), origin: Some("http://127.0.0.1:8080"), ..Default::default() };
//! let incoming = server.handle_open(&request, now).unwrap();
//! let identity = app.authenticate("/cable?token=alice", None).unwrap();
//! server.accept_connection(incoming.pending, identity, now).unwrap();
//! server.handle_text(incoming.connection, br#"{"command":"subscribe","identifier":"{\"channel\":\"GreetingChannel\"}"}"#, now).unwrap();
//! app.run(&mut server, now);
//! let frames: Vec<String> = std::iter::from_fn(|| server.poll_transmit())
//!     .filter_map(|t| t.frame.text().map(str::to_owned))
//!     .collect();
//! assert_eq!(frames[1], r#"{"identifier":"{\"channel\":\"GreetingChannel\"}","message":{"greeting":"hello alice"}}"#);
//! assert_eq!(frames[2], r#"{"identifier":"{\"channel\":\"GreetingChannel\"}","type":"confirm_subscription"}"#);
//! ```

use std::collections::HashMap;
use std::time::Instant;

use cable_proto::handshake::{bearer_token, query_pairs, query_param, OriginPattern};
use cable_proto::server::{Config, Event, Perform, PerformOutcome, Server, SubscriptionAccept};
use cable_proto::{Identity, JsonText, OriginPolicy, SubscriptionId};
use serde_json::{json, Map, Value};

/// The reference application.
#[derive(Debug, Default)]
pub struct ReferenceApp {
    /// `BenchmarkChannel` subscriptions' own streams.
    bench_streams: HashMap<SubscriptionId, String>,
    /// Numbers `BenchmarkChannel`'s own streams (Rails uses a UUID; clients
    /// never see the name).
    bench_counter: u64,
}

impl ReferenceApp {
    /// A fresh app.
    pub fn new() -> Self {
        Self::default()
    }

    /// The core configuration the reference server runs with: Rails'
    /// defaults, and the origins of `config.ru`.
    pub fn config() -> Config {
        Config {
            origins: OriginPolicy {
                allow_any: false,
                same_origin_as_host: true,
                allowed: vec![
                    OriginPattern::Exact("http://allowed.example".to_owned()),
                    OriginPattern::AnyPort {
                        scheme: "http".to_owned(),
                        host: "localhost".to_owned(),
                    },
                ],
            },
            ..Config::default()
        }
    }

    /// `ApplicationCable::Connection#connect`: the user for a request target
    /// (`/cable?token=alice`) and its `Authorization` header; `None` rejects.
    pub fn authenticate(
        &self,
        path_and_query: &str,
        authorization: Option<&str>,
    ) -> Option<Identity> {
        let mut token = query_param(path_and_query, "token").filter(|t| !is_blank(t));
        if token.is_none() {
            if let Some(auth) = authorization.filter(|a| !is_blank(a)) {
                token = Some(bearer_token(auth).to_owned());
            }
        }
        match token.as_deref() {
            Some("bad") => None,
            Some(user) => Some(Identity::new(user)),
            None => Some(Identity::new("anonymous")),
        }
    }

    /// Handles every event the server has, until it has none.
    pub fn run(&mut self, server: &mut Server, now: Instant) {
        while let Some(event) = server.poll_event() {
            self.handle_event(server, event, now);
        }
    }

    /// Handles one event.
    pub fn handle_event(&mut self, server: &mut Server, event: Event, now: Instant) {
        match event {
            Event::SubscriptionRequested {
                identity,
                identifier,
                pending,
                ..
            } => {
                let subscription = pending.subscription();
                let user = identity.as_str();
                // Decisions on a live token cannot fail; a stale one means the
                // connection went away meanwhile, which is fine to ignore.
                let _ = match identifier.channel() {
                    "ChatChannel" => {
                        let room = identifier.param("room");
                        if room == Some(&Value::String("forbidden".to_owned())) {
                            server.reject_subscription(pending, now)
                        } else {
                            let stream = format!("chat_{}", ruby_to_s(room));
                            server.accept_subscription(
                                pending,
                                SubscriptionAccept::new().stream(stream),
                                now,
                            )
                        }
                    }
                    "NotificationChannel" => server.accept_subscription(
                        pending,
                        SubscriptionAccept::new().stream(notification_stream(user)),
                        now,
                    ),
                    "GreetingChannel" => {
                        let greeting = encode(&json!({ "greeting": format!("hello {user}") }));
                        server.accept_subscription(
                            pending,
                            SubscriptionAccept::new().transmit(greeting),
                            now,
                        )
                    }
                    "RawStreamChannel" => {
                        let stream = format!("raw_{}", ruby_to_s(identifier.param("name")));
                        server.accept_subscription(
                            pending,
                            SubscriptionAccept::new().stream_raw(stream),
                            now,
                        )
                    }
                    "FeedChannel" => server.accept_subscription(
                        pending,
                        SubscriptionAccept::new().stream("feed_a").stream("feed_b"),
                        now,
                    ),
                    "BenchmarkChannel" => {
                        self.bench_counter += 1;
                        let own = format!("bench_{}", self.bench_counter);
                        self.bench_streams.insert(subscription, own.clone());
                        server.accept_subscription(
                            pending,
                            SubscriptionAccept::new().stream(own).stream("bench_all"),
                            now,
                        )
                    }
                    // Rails 6.1 checks `ActionCable::Channel::Base >= klass`:
                    // the base classes themselves subscribe, with no streams.
                    "ApplicationCable::Channel" | "ActionCable::Channel::Base" => {
                        server.accept_subscription(pending, SubscriptionAccept::new(), now)
                    }
                    // "Subscription class not found": logged, no frame.
                    _ => server.abandon_subscription(pending, now),
                };
            }
            Event::Perform(perform) => self.perform(server, perform, now),
            // A session came back (AnyCable's resume): its subscriptions
            // live on under new ids, with what they had.
            Event::SessionRestored(restored) => {
                let moved = restored.previous_subscriptions.iter();
                for (previous, (now_id, _)) in moved.zip(&restored.subscriptions) {
                    if let Some(stream) = self.bench_streams.remove(previous) {
                        self.bench_streams.insert(*now_id, stream);
                    }
                }
            }
            Event::Unsubscribed {
                subscription,
                identity,
                identifier,
                ..
            } => {
                self.bench_streams.remove(&subscription);
                if identifier.channel() == "FeedChannel" {
                    feed_left(server, identity.as_str(), now);
                }
            }
            _ => {}
        }
    }

    /// Runs an action and answers its perform with the outcome, all at once.
    fn perform(&mut self, server: &mut Server, perform: Perform, now: Instant) {
        let outcome = self.action(&perform);
        // A stale token means the connection went away meanwhile.
        let _ = server.complete_perform(perform.pending, outcome, now);
    }

    /// What an action does, as Rails' channel classes of config.ru do it.
    fn action(&mut self, perform: &Perform) -> PerformOutcome {
        let outcome = PerformOutcome::new();
        let user = perform.identity.as_str();
        let Ok(Value::Object(mut data)) = serde_json::from_str::<Value>(&perform.data) else {
            return outcome;
        };
        let sub = perform.subscription;
        let action = perform.action.as_ref();
        match (perform.identifier.channel(), action) {
            ("ChatChannel", "speak") => {
                let room = ruby_to_s(perform.identifier.param("room"));
                let message = json!({ "text": field(&data, "text"), "from": user });
                outcome.broadcast(format!("chat_{room}"), encode(&message))
            }
            ("ChatChannel", "whoami") => {
                let message = json!({
                    "user": user,
                    "room": perform.identifier.param("room").cloned().unwrap_or(Value::Null),
                    "params": perform.identifier.params(),
                });
                outcome.transmit(encode(&message))
            }
            ("ChatChannel", "echo") => outcome.transmit(encode(&Value::Object(data))),
            // `boom` raises inside the action: Rails logs it, nothing is sent.
            ("ChatChannel", "boom") => outcome,
            ("ChatChannel", "transmit_string") => {
                outcome.transmit(JsonText::string("just a string"))
            }
            ("ChatChannel", "notify_me") => {
                let message = json!({ "text": field(&data, "text"), "via": "notify_me" });
                outcome.broadcast(notification_stream(user), encode(&message))
            }
            // `unsubscribed` is a public method of these channels, so Rails
            // lets a client perform it.
            ("ChatChannel", "unsubscribed") => outcome,
            ("FeedChannel", "unsubscribed") => {
                outcome.broadcast("feed_events", encode(&json!({ "left": user })))
            }
            ("GreetingChannel", "receive") => {
                outcome.transmit(encode(&json!({ "received": Value::Object(data) })))
            }
            ("FeedChannel", "follow") => {
                let name = ruby_to_s(data.get("name"));
                outcome.stream(format!("feed_{name}"))
            }
            ("FeedChannel", "unfollow") => {
                let name = ruby_to_s(data.get("name"));
                outcome.stop_stream(format!("feed_{name}"))
            }
            ("FeedChannel", "unfollow_all") => outcome.stop_all_streams(),
            ("BenchmarkChannel", "echo") => match self.bench_streams.get(&sub) {
                Some(own) => outcome.broadcast(own.as_str(), encode(&Value::Object(data))),
                None => outcome,
            },
            ("BenchmarkChannel", "broadcast") => {
                let outcome = outcome.broadcast("bench_all", encode(&Value::Object(data.clone())));
                data.insert(
                    "action".to_owned(),
                    Value::String("broadcastResult".to_owned()),
                );
                match self.bench_streams.get(&sub) {
                    Some(own) => outcome.broadcast(own.as_str(), encode(&Value::Object(data))),
                    None => outcome,
                }
            }
            // "Unable to process ChatChannel#nope": logged, no frame.
            _ => outcome,
        }
    }

    /// The control endpoints of the reference server: `(status, JSON body)`
    /// for `/broadcast`, `/notify`, `/disconnect`, `/restart` and `/stats`;
    /// `None` for any other path.
    pub fn control(
        &mut self,
        server: &mut Server,
        path_and_query: &str,
        now: Instant,
    ) -> Option<(u16, String)> {
        let path = path_and_query.split('?').next().unwrap_or_default();
        let param = |name| query_param(path_and_query, name);
        let body = match path {
            "/broadcast" => {
                let stream = param("stream").unwrap_or_default();
                let text = param("text");
                if path_and_query_has(path_and_query, "raw") {
                    server.broadcast(&stream, text.as_deref().unwrap_or_default(), now);
                } else {
                    server.publish(&stream, &encode(&json!({ "text": text })), None, now);
                }
                json!({ "ok": true, "stream": stream })
            }
            "/notify" => {
                let user = param("user").unwrap_or_default();
                let stream = notification_stream(&user);
                server.publish(
                    &stream,
                    &encode(&json!({ "text": param("text") })),
                    None,
                    now,
                );
                json!({ "ok": true, "broadcasting": stream })
            }
            "/disconnect" => {
                let user = param("user").unwrap_or_default();
                server.disconnect_identity(&user, true, now);
                json!({ "ok": true })
            }
            "/restart" => {
                server.restart(now);
                json!({ "ok": true })
            }
            "/stats" => json!({
                "connections": server.connection_count(),
                "subscriptions": server.subscription_count(),
                "streams": server.stream_count(),
            }),
            _ => return None,
        };
        Some((200, body.to_string()))
    }
}

/// `NotificationChannel.broadcasting_for(user)`: `notification:<user>`.
pub fn notification_stream(user: &str) -> String {
    format!("notification:{user}")
}

fn feed_left(server: &mut Server, user: &str, now: Instant) {
    server.publish("feed_events", &encode(&json!({ "left": user })), None, now);
}

fn field(data: &Map<String, Value>, key: &str) -> Value {
    data.get(key).cloned().unwrap_or(Value::Null)
}

/// Encodes as `ActiveSupport::JSON.encode` does.
fn encode(value: &Value) -> JsonText {
    // Encoding a `Value` cannot fail.
    JsonText::from_value(value).unwrap_or_else(|_| JsonText::string(""))
}

/// Ruby's `to_s` of a param, as string interpolation shows it.
fn ruby_to_s(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => ruby_inspect(other),
    }
}

/// Ruby 3.1's `inspect` of a decoded JSON value (what `to_s` shows for
/// arrays and hashes).
fn ruby_inspect(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(ruby_inspect)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}=>{}",
                    ruby_inspect(&Value::String(k.clone())),
                    ruby_inspect(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Ruby's `blank?` for a string: empty or whitespace only.
fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

fn path_and_query_has(path_and_query: &str, name: &str) -> bool {
    query_pairs(path_and_query).any(|(k, _)| k == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_as_the_rails_connection_reads_them() {
        let app = ReferenceApp::new();
        let user = |q: &str, h: Option<&str>| app.authenticate(q, h).map(|i| i.as_str().to_owned());
        assert_eq!(user("/cable?token=alice", None).as_deref(), Some("alice"));
        assert_eq!(user("/cable?token=bad", None), None);
        assert_eq!(user("/cable", Some("Bearer bad")), None);
        assert_eq!(user("/cable", Some("bearer   bob")).as_deref(), Some("bob"));
        assert_eq!(
            user("/cable", Some("Token xyz")).as_deref(),
            Some("Token xyz")
        );
        assert_eq!(user("/cable", None).as_deref(), Some("anonymous"));
        assert_eq!(
            user("/cable?token=", Some("Bearer carol")).as_deref(),
            Some("carol")
        );
        assert_eq!(user("/cable?token=a%20b+c", None).as_deref(), Some("a b c"));
        assert_eq!(user("/cable?token=x&token=y", None).as_deref(), Some("y"));
    }

    #[test]
    fn ruby_interpolation_of_params() {
        assert_eq!(ruby_to_s(None), "");
        assert_eq!(ruby_to_s(Some(&json!(1))), "1");
        assert_eq!(ruby_to_s(Some(&json!("r1"))), "r1");
        assert_eq!(ruby_to_s(Some(&json!([1, "a", null]))), r#"[1, "a", nil]"#);
        assert_eq!(ruby_to_s(Some(&json!({"a": true}))), r#"{"a"=>true}"#);
    }
}
