//! How applications plug into cable-server: the [`CableApp`] trait, its
//! synchronous form [`SyncApp`], the [`CoreHandle`] through which an app
//! answers later, and the default embedded app, [`PubSubApp`].
//!
//! The host owns the sockets, the clock and the pub/sub bridges; an app owns
//! the decisions: who may connect, which subscriptions to accept and with
//! which streams, what an action does, and which plain HTTP endpoints it
//! serves beside the WebSocket mount. Every call runs on the core task, with
//! the [`cable_proto::server::Server`] borrowed mutably through an
//! [`AppContext`]. A decision can be answered at once through it, or later,
//! from any task, through [`AppContext::handle`] (after a database query or
//! an HTTP call): the connection's commands wait for the answer, and the
//! deadlines of [`cable_proto::server::DecisionTimeouts`] bound the wait.
//!
//! ```no_run
//! use cable_server::app::{AppContext, CableApp, RequestInfo};
//! use cable_proto::server::{ConnectionAccept, Event, PendingConnection, PerformOutcome};
//! use cable_proto::Identity;
//!
//! /// Authenticates against a (slow) remote service, answers performs at once.
//! struct Remote;
//!
//! impl CableApp for Remote {
//!     fn name(&self) -> &str { "remote" }
//!
//!     fn connect(&mut self, cx: &mut AppContext<'_>, request: &RequestInfo, pending: PendingConnection) {
//!         let handle = cx.handle();
//!         let token = request.token();
//!         tokio::spawn(async move {
//!             // ... ask the remote service about `token` ...
//!             let answer = match token {
//!                 Some(user) => handle.accept_connection(pending, ConnectionAccept::new(Identity::new(user))).await,
//!                 None => handle.reject_connection(pending).await,
//!             };
//!             if let Err(error) = answer {
//!                 tracing::warn!(%error, "late or refused answer");
//!             }
//!         });
//!     }
//!
//!     fn handle_event(&mut self, cx: &mut AppContext<'_>, event: Event) {
//!         if let Event::Perform(perform) = event {
//!             let _ = cx.server.complete_perform(perform.pending, PerformOutcome::new(), cx.now);
//!         }
//!     }
//! }
//! ```

use std::net::SocketAddr;
use std::time::Instant;

use cable_proto::server::{
    Config, ConnectionAccept, Event, PendingConnection, PendingPerform, PendingSubscription,
    PerformOutcome, Server, SubscriptionAccept,
};
use cable_proto::{ConnectionId, DisconnectReason, Identity, UsageError};
use tokio::sync::{mpsc, oneshot};

use crate::core::CoreInput;
use crate::credentials::Credentials;

/// What an app sees of a WebSocket upgrade request.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The request target, path and query, e.g. `/cable?token=alice`.
    pub path_and_query: String,
    /// The request headers, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The peer's address (the TCP peer: a proxy's, behind one).
    pub remote_addr: Option<SocketAddr>,
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

/// What an app works with on every call: the core, the time of the input,
/// and the way to answer later.
pub struct AppContext<'a> {
    /// The core, borrowed for this call: answer decisions, broadcast, query.
    pub server: &'a mut Server,
    /// The time of the input being handled (pass it to the core's calls).
    pub now: Instant,
    pub(crate) handle: &'a CoreHandle,
}

impl AppContext<'_> {
    /// A handle to answer decisions (or do anything else with the core)
    /// later, from any task.
    pub fn handle(&self) -> CoreHandle {
        self.handle.clone()
    }
}

/// Why an answer sent through a [`CoreHandle`] did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The core refused it: the token is stale (the connection went away,
    /// or it was answered already) or its deadline passed
    /// ([`UsageError::DecisionExpired`]).
    #[error("the core refused the answer: {0}")]
    Refused(#[from] UsageError),
    /// The server is shutting down: the core task is gone.
    #[error("the server is gone")]
    ServerGone,
}

/// A job for the core task: runs with the server and the time it is run at.
pub(crate) type CoreJob = Box<dyn FnOnce(&mut Server, Instant) + Send>;

/// A handle to the core task, cheap to clone and to send to other tasks:
/// answers decisions when the app is ready. Each call queues a job on the
/// core task and waits for its result; the connection's commands wait for
/// the answer meanwhile.
#[derive(Clone)]
pub struct CoreHandle {
    pub(crate) inputs: mpsc::Sender<CoreInput>,
}

impl std::fmt::Debug for CoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreHandle").finish_non_exhaustive()
    }
}

impl CoreHandle {
    /// Runs `job` on the core task with the server and the current time,
    /// and returns what it returns.
    pub async fn call<R, F>(&self, job: F) -> Result<R, AnswerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Server, Instant) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: CoreJob = Box::new(move |server, now| {
            let _ = reply.send(job(server, now));
        });
        self.inputs
            .send(CoreInput::Job(job))
            .await
            .map_err(|_| AnswerError::ServerGone)?;
        answer.await.map_err(|_| AnswerError::ServerGone)
    }

    async fn answer<F>(&self, job: F) -> Result<(), AnswerError>
    where
        F: FnOnce(&mut Server, Instant) -> Result<(), UsageError> + Send + 'static,
    {
        Ok(self.call(job).await??)
    }

    /// [`Server::accept_connection`] from another task.
    pub async fn accept_connection(
        &self,
        pending: PendingConnection,
        accept: impl Into<ConnectionAccept>,
    ) -> Result<(), AnswerError> {
        let accept = accept.into();
        self.answer(move |server, now| server.accept_connection(pending, accept, now))
            .await
    }

    /// [`Server::reject_connection`] from another task.
    pub async fn reject_connection(&self, pending: PendingConnection) -> Result<(), AnswerError> {
        self.answer(move |server, now| server.reject_connection(pending, now))
            .await
    }

    /// [`Server::reject_connection_with`] from another task.
    pub async fn reject_connection_with(
        &self,
        pending: PendingConnection,
        reason: DisconnectReason,
        reconnect: bool,
    ) -> Result<(), AnswerError> {
        self.answer(move |server, now| {
            server.reject_connection_with(pending, reason, reconnect, now)
        })
        .await
    }

    /// [`Server::accept_subscription`] from another task.
    pub async fn accept_subscription(
        &self,
        pending: PendingSubscription,
        accept: SubscriptionAccept,
    ) -> Result<(), AnswerError> {
        self.answer(move |server, now| server.accept_subscription(pending, accept, now))
            .await
    }

    /// [`Server::reject_subscription`] from another task.
    pub async fn reject_subscription(
        &self,
        pending: PendingSubscription,
    ) -> Result<(), AnswerError> {
        self.answer(move |server, now| server.reject_subscription(pending, now))
            .await
    }

    /// [`Server::abandon_subscription`] from another task.
    pub async fn abandon_subscription(
        &self,
        pending: PendingSubscription,
    ) -> Result<(), AnswerError> {
        self.answer(move |server, now| server.abandon_subscription(pending, now))
            .await
    }

    /// [`Server::complete_perform`] from another task.
    pub async fn complete_perform(
        &self,
        pending: PendingPerform,
        outcome: PerformOutcome,
    ) -> Result<(), AnswerError> {
        self.answer(move |server, now| server.complete_perform(pending, outcome, now))
            .await
    }

    /// [`Server::veto_perform`] from another task.
    pub async fn veto_perform(&self, pending: PendingPerform) -> Result<(), AnswerError> {
        self.answer(move |server, now| server.veto_perform(pending, now))
            .await
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

/// An application hosted by cable-server.
///
/// The host calls [`configure`](Self::configure) once, then for every
/// accepted upgrade [`connect`](Self::connect), for every core event
/// [`handle_event`](Self::handle_event) (the host itself has already looked
/// at stream and connection events), and for plain HTTP requests that are not
/// the host's own (`/health`, `POST /_broadcast`, the mount path)
/// [`control`](Self::control). Decisions (a [`PendingConnection`], the
/// tokens inside [`Event::SubscriptionRequested`] and [`Event::Perform`]) are
/// answered through `cx.server` at once or through `cx.handle()` later. An
/// app that answers everything at once is simpler to write as a [`SyncApp`].
pub trait CableApp: Send + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// Adjusts the core's configuration (origins, limits, protocols,
    /// deadlines) before the server starts. The host applies its
    /// command-line options first.
    fn configure(&self, _config: &mut Config) {}

    /// Whether a closed extended connection's session may be kept and
    /// restored without [`connect`](Self::connect) (AnyCable's session
    /// resume): the app then gets [`Event::SessionRestored`] and moves
    /// whatever it keeps per connection and subscription from the previous
    /// ids to the new ones. `false` (the default): no session is kept, a
    /// client that comes back with its sid gets a fresh welcome.
    fn resumable(&self) -> bool {
        false
    }

    /// A session is being restored on `connection`, which came with
    /// `request` (instead of [`connect`](Self::connect)); its
    /// [`Event::SessionRestored`] follows.
    fn resuming(&mut self, _request: &RequestInfo, _connection: ConnectionId) {}

    /// A connection waits for authentication: accept it
    /// ([`Server::accept_connection`]) or reject it
    /// ([`Server::reject_connection`]), now or later.
    fn connect(
        &mut self,
        cx: &mut AppContext<'_>,
        request: &RequestInfo,
        pending: PendingConnection,
    );

    /// Handles one event of the core: answers subscription requests and
    /// performs, reacts to unsubscribes.
    fn handle_event(&mut self, cx: &mut AppContext<'_>, event: Event);

    /// Serves a plain HTTP request (a control endpoint). `None`: 404.
    fn control(
        &mut self,
        _cx: &mut AppContext<'_>,
        _request: &ControlRequest<'_>,
    ) -> Option<HttpResponse> {
        None
    }

    /// The host's metrics (`GET /metrics`), given once before the server
    /// starts: an app that calls a backend counts its calls there
    /// ([`Metrics::rpc_call`](crate::metrics::Metrics::rpc_call)).
    fn attach_metrics(&mut self, _metrics: std::sync::Arc<crate::metrics::Metrics>) {}

    /// The server is stopping (every client gone, or the shutdown timeout
    /// passed): work the app still owes for closed connections (calls to a
    /// backend, say), which the host awaits until `deadline` (the end of
    /// `--shutdown-timeout-ms`) before exiting. `None` (the default):
    /// nothing to finish.
    fn shutdown(&mut self, _deadline: Instant) -> Option<ShutdownWork> {
        None
    }
}

/// What an app finishes at shutdown ([`CableApp::shutdown`]).
pub type ShutdownWork = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// An application that decides everything at once: a synchronous policy on
/// top of the core's tokens. Every `SyncApp` is a [`CableApp`].
pub trait SyncApp: Send + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// Adjusts the core's configuration before the server starts.
    fn configure(&self, _config: &mut Config) {}

    /// As [`CableApp::resumable`].
    fn resumable(&self) -> bool {
        false
    }

    /// Decides on a connection: `Some` welcomes it (an [`Identity`] or a
    /// full [`ConnectionAccept`]), `None` rejects it with
    /// `{"type":"disconnect","reason":"unauthorized","reconnect":false}`.
    fn authenticate(&mut self, request: &RequestInfo) -> Option<ConnectionAccept>;

    /// Handles one event of the core. Subscription requests and performs
    /// must be answered: the connection's commands wait for the answer.
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

impl<T: SyncApp> CableApp for T {
    fn name(&self) -> &str {
        SyncApp::name(self)
    }

    fn configure(&self, config: &mut Config) {
        SyncApp::configure(self, config);
    }

    fn resumable(&self) -> bool {
        SyncApp::resumable(self)
    }

    fn connect(
        &mut self,
        cx: &mut AppContext<'_>,
        request: &RequestInfo,
        pending: PendingConnection,
    ) {
        let connection = pending.connection();
        let outcome = match self.authenticate(request) {
            Some(accept) => {
                tracing::debug!(%connection, identity = %accept.identity(), path = request.path_and_query, "connection accepted");
                cx.server.accept_connection(pending, accept, cx.now)
            }
            None => {
                tracing::info!(%connection, path = request.path_and_query, "unauthorized connection rejected");
                cx.server.reject_connection(pending, cx.now)
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%connection, %error, "connection decision refused by the core");
        }
    }

    fn handle_event(&mut self, cx: &mut AppContext<'_>, event: Event) {
        SyncApp::handle_event(self, cx.server, event, cx.now);
    }

    fn control(
        &mut self,
        cx: &mut AppContext<'_>,
        request: &ControlRequest<'_>,
    ) -> Option<HttpResponse> {
        SyncApp::control(self, cx.server, request, cx.now)
    }
}

/// The channel name of public streams, as AnyCable spells it.
pub const PUBSUB_CHANNEL: &str = "$pubsub";

/// The default app: public streams in the manner of AnyCable, nothing else.
///
/// - Connections: the token comes from `?token=` or `Authorization: Bearer`.
///   With no credentials configured every connection is welcomed, its
///   identity being the token or `anonymous`; with `--token` or
///   `--jwt-secret` only a valid credential is welcomed (a JWT's `exp` closes
///   the connection with `token_expired` at that instant) and everything
///   else is rejected as unauthorized.
/// - Subscriptions: identifier `{"channel":"$pubsub","stream_name":"<S>"}`
///   is confirmed and streams from `<S>`; a `$pubsub` identifier without a
///   string `stream_name` is rejected (`reject_subscription`); any other
///   channel is dropped without a frame, as Rails does for an unknown
///   channel class.
/// - Actions: none (a `message` command is answered with no effect, as
///   Rails ignores an unknown action).
#[derive(Debug, Clone, Default)]
pub struct PubSubApp {
    credentials: Credentials,
    signed: crate::signed_streams::SignedStreams,
}

impl PubSubApp {
    /// The app, accepting `credentials` (open: any connection).
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            signed: Default::default(),
        }
    }

    /// Also serves signed `$pubsub` streams and Turbo streams with these
    /// secrets ([`crate::signed_streams`]).
    pub fn with_signed_streams(mut self, signed: crate::signed_streams::SignedStreams) -> Self {
        self.signed = signed;
        self
    }
}

impl SyncApp for PubSubApp {
    fn name(&self) -> &str {
        "pubsub"
    }

    /// It keeps nothing per connection.
    fn resumable(&self) -> bool {
        true
    }

    fn authenticate(&mut self, request: &RequestInfo) -> Option<ConnectionAccept> {
        if self.credentials.is_open() {
            let token = request.token();
            let identity = Identity::new(token.as_deref().unwrap_or("anonymous"));
            return Some(identity.into());
        }
        let unix_now = crate::credentials::unix_now();
        match self.credentials.verify(request, unix_now) {
            Ok(verified) => Some(verified.accept(Instant::now(), unix_now)),
            Err(error) => {
                tracing::info!(%error, path = request.path_and_query, "connection refused");
                None
            }
        }
    }

    fn handle_event(&mut self, server: &mut Server, event: Event, now: Instant) {
        let (identifier, pending) = match event {
            Event::SubscriptionRequested {
                identifier,
                pending,
                ..
            } => (identifier, pending),
            Event::Perform(perform) => {
                // No actions: answered with no effect.
                let _ = server.complete_perform(perform.pending, PerformOutcome::new(), now);
                return;
            }
            _ => return,
        };
        use crate::signed_streams::StreamRequest;
        let outcome = match self.signed.resolve(&identifier) {
            StreamRequest::NotOurs => server.abandon_subscription(pending, now),
            StreamRequest::Refused => server.reject_subscription(pending, now),
            StreamRequest::Signed(stream) => {
                let accept = SubscriptionAccept::new().stream(stream);
                server.accept_subscription(pending, accept, now)
            }
            StreamRequest::Public(stream) => {
                let subscription = pending.subscription();
                let accept = SubscriptionAccept::new().stream(stream.clone());
                let accepted = server.accept_subscription(pending, accept, now);
                // Public streams whisper and share presence (AnyCable's
                // public streams; extended connections only).
                if accepted.is_ok() {
                    let _ = server.allow_whisper(subscription, stream.clone());
                    let _ = server.allow_presence(subscription, stream);
                }
                accepted
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
            remote_addr: None,
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
                .identity()
                .as_str(),
            "anonymous"
        );
        let mut closed = PubSubApp::new(Credentials::new(vec!["s3cret".into()], None).unwrap());
        assert!(closed.authenticate(&request("/cable", None)).is_none());
        assert!(closed
            .authenticate(&request("/cable?token=nope", None))
            .is_none());
        assert_eq!(
            closed
                .authenticate(&request("/cable?token=s3cret", None))
                .unwrap()
                .identity()
                .as_str(),
            "s3cret"
        );
    }
}
