//! How applications plug into cable-server: the [`CableApp`] trait, and the
//! default embedded app, [`PubSubApp`].
//!
//! The host owns the sockets, the clock and the pub/sub bridges; an app owns
//! the decisions: who may connect, which subscriptions to accept and with
//! which streams, what an action does, and which plain HTTP endpoints it
//! serves beside the WebSocket mount. Every call runs on the core task, with
//! the [`cable_proto::Server`] borrowed mutably: an app answers at once (a
//! synchronous policy on top of the core's pending tokens).

use std::time::Instant;

use cable_proto::{Config, Event, Identity, Server, SubscriptionAccept};

/// What an app sees of a WebSocket upgrade request.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The request target, path and query, e.g. `/cable?token=alice`.
    pub path_and_query: String,
    /// The request headers, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl RequestInfo {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Authorization` header.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The value of query parameter `name`, percent-decoded (`+` is a
    /// space; the last one wins when it repeats, as in Rack).
    pub fn query_param(&self, name: &str) -> Option<String> {
        cable_proto::handshake::query_param(&self.path_and_query, name)
    }

    /// The connection token, as the reference app reads it: the `token`
    /// query parameter if present and not empty, else the value of an
    /// `Authorization: Bearer <token>` header.
    pub fn token(&self) -> Option<String> {
        if let Some(token) = self.query_param("token").filter(|t| !t.is_empty()) {
            return Some(token);
        }
        let token = cable_proto::handshake::bearer_token(self.authorization()?.trim());
        (!token.is_empty()).then(|| token.to_owned())
    }
}

/// A plain HTTP request the host did not handle itself, offered to the app
/// (control endpoints).
#[derive(Debug, Clone)]
pub struct ControlRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The request target, path and query.
    pub path_and_query: &'a str,
    /// The request body (empty for a GET).
    pub body: &'a [u8],
}

impl ControlRequest<'_> {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query, |(p, _)| p)
    }
}

/// An HTTP answer from an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl HttpResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.into(),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: body.into(),
        }
    }
}

/// An Action Cable application hosted by cable-server.
///
/// The host calls [`configure`](Self::configure) once, then for every
/// accepted upgrade [`authenticate`](Self::authenticate), for every core
/// event [`handle_event`](Self::handle_event) (the host itself has already
/// looked at stream and connection events), and for plain HTTP requests that
/// are not the host's own (`/health`, `POST /_broadcast`, the mount path)
/// [`control`](Self::control).
pub trait CableApp: Send + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// Adjusts the core's configuration (origins, limits, protocols) before
    /// the server starts. The host applies its command-line options first.
    fn configure(&self, _config: &mut Config) {}

    /// Decides on a connection: `Some(identity)` welcomes it, `None` rejects
    /// it with `{"type":"disconnect","reason":"unauthorized","reconnect":false}`.
    fn authenticate(&mut self, request: &RequestInfo) -> Option<Identity>;

    /// Handles one event of the core: answers subscription requests, runs
    /// actions, reacts to unsubscribes.
    fn handle_event(&mut self, server: &mut Server, event: Event, now: Instant);

    /// Serves a plain HTTP request (a control endpoint). `None`: 404.
    fn control(
        &mut self,
        _server: &mut Server,
        _request: &ControlRequest<'_>,
        _now: Instant,
    ) -> Option<HttpResponse> {
        None
    }
}

/// The channel name of public streams, as AnyCable spells it.
pub const PUBSUB_CHANNEL: &str = "$pubsub";

/// The default app: public streams in the manner of AnyCable, nothing else.
///
/// - Connections: the token comes from `?token=` or `Authorization: Bearer`.
///   With no allow-list every connection is welcomed, its identity being the
///   token or `anonymous`; with an allow-list (`--token`, repeatable) only a
///   listed token is welcomed and everything else is rejected as
///   unauthorized.
/// - Subscriptions: identifier `{"channel":"$pubsub","stream_name":"<S>"}`
///   is confirmed and streams from `<S>`; a `$pubsub` identifier without a
///   string `stream_name` is rejected (`reject_subscription`); any other
///   channel is dropped without a frame, as Rails does for an unknown
///   channel class.
/// - Actions: none (a `message` command is ignored, as Rails ignores an
///   unknown action).
#[derive(Debug, Clone, Default)]
pub struct PubSubApp {
    tokens: Vec<String>,
}

impl PubSubApp {
    /// The app; `tokens` is the allow-list (empty: any token, or none).
    pub fn new(tokens: Vec<String>) -> Self {
        Self { tokens }
    }
}

impl CableApp for PubSubApp {
    fn name(&self) -> &str {
        "pubsub"
    }

    fn authenticate(&mut self, request: &RequestInfo) -> Option<Identity> {
        let token = request.token();
        if self.tokens.is_empty() {
            return Some(Identity::new(token.as_deref().unwrap_or("anonymous")));
        }
        let token = token?;
        self.tokens.contains(&token).then(|| Identity::new(token))
    }

    fn handle_event(&mut self, server: &mut Server, event: Event, now: Instant) {
        let Event::SubscriptionRequested {
            identifier,
            pending,
            ..
        } = event
        else {
            return;
        };
        let pending = pending.take();
        let outcome = if identifier.channel() != PUBSUB_CHANNEL {
            server.abandon_subscription(pending, now)
        } else {
            match identifier.param("stream_name").and_then(|v| v.as_str()) {
                Some(stream) if !stream.is_empty() => {
                    let accept = SubscriptionAccept::new().stream(stream.to_owned());
                    server.accept_subscription(pending, accept, now)
                }
                _ => server.reject_subscription(pending, now),
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "subscription decision refused by the core");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, auth: Option<&str>) -> RequestInfo {
        RequestInfo {
            path_and_query: path.to_owned(),
            headers: auth
                .map(|a| vec![("authorization".to_owned(), a.to_owned())])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn tokens_from_query_or_bearer() {
        assert_eq!(
            request("/cable?token=alice", None).token().as_deref(),
            Some("alice")
        );
        assert_eq!(
            request("/cable?x=1&token=a%20b+c", None).token().as_deref(),
            Some("a b c")
        );
        assert_eq!(
            request("/cable", Some("Bearer bob")).token().as_deref(),
            Some("bob")
        );
        assert_eq!(
            request("/cable?token=", Some("bearer carol"))
                .token()
                .as_deref(),
            Some("carol")
        );
        assert_eq!(request("/cable", None).token(), None);
    }

    #[test]
    fn allow_list() {
        let mut open = PubSubApp::default();
        assert_eq!(
            open.authenticate(&request("/cable", None))
                .unwrap()
                .as_str(),
            "anonymous"
        );
        let mut closed = PubSubApp::new(vec!["s3cret".into()]);
        assert!(closed.authenticate(&request("/cable", None)).is_none());
        assert!(closed
            .authenticate(&request("/cable?token=nope", None))
            .is_none());
        assert_eq!(
            closed
                .authenticate(&request("/cable?token=s3cret", None))
                .unwrap()
                .as_str(),
            "s3cret"
        );
    }
}
