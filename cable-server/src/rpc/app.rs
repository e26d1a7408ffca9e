//! [`RpcApp`]: the [`CableApp`] whose decisions are the backend's, asked
//! through AnyCable's RPC over HTTP. Every call runs on a task of its own
//! and answers the core's token through a [`CoreHandle`]; the core holds the
//! connection's later commands meanwhile (arrival order) and its decision
//! deadlines bound the wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cable_proto::server::{
    Config, ConnectionAccept, DecisionTimeouts, Event, PendingConnection, PendingSubscription,
    Perform, PerformOutcome, SubscriptionAccept, UnsubscribeCause,
};
use cable_proto::{ConnectionId, DisconnectReason, Identity, SubscriptionId};

use super::client::{RpcClient, RpcError, RpcSettings};
use super::disconnects::{DisconnectCall, DisconnectQueue};
use super::hooks::{MessageRefusal, NoHooks, RpcHooks};
use super::protocol::{
    merge_state, same_identifier, CommandRequest, CommandResponse, ConnectRequest, ConnectResponse,
    DisconnectRequest, Env, StateMap, Status, Transmission,
};
use crate::app::{
    AppContext, CableApp, ControlRequest, CoreHandle, HttpResponse, PubSubApp, RequestInfo,
    ShutdownWork, SyncApp, PUBSUB_CHANNEL,
};

/// How much later than the call's own deadline the core's connect
/// deadline fires: a connect past `--rpc-timeout-ms` is an RPC error
/// (closed, the client may reconnect, as with AnyCable), and the core's
/// deadline only bounds a stuck task.
const CONNECT_BACKSTOP: Duration = Duration::from_secs(1);

/// The disconnect frame of a connection whose connect call failed (status
/// 0, HTTP error, timeout): AnyCable closes such a connection without a
/// frame (1011), so the client reconnects; here the frame says so.
fn rpc_error_reason() -> DisconnectReason {
    DisconnectReason::Other("server_error".into())
}

/// The settings of an [`RpcApp`] (`--rpc-*`).
#[derive(Debug, Clone)]
pub struct RpcAppSettings {
    /// The backend: URL, secret, deadline, concurrency.
    pub rpc: RpcSettings,
    /// Request headers passed in `env.headers` (lower case).
    pub proxy_headers: Vec<String>,
    /// `/disconnect` calls started per second.
    pub disconnect_rate: u32,
    /// `/disconnect` calls waiting at most.
    pub disconnect_backlog: usize,
}

/// One subscription of the backend's.
#[derive(Debug, Clone)]
struct Sub {
    identifier: String,
    istate: StateMap,
}

/// What the app keeps of one connection.
#[derive(Debug, Default)]
struct Conn {
    sid: String,
    url: String,
    headers: BTreeMap<String, String>,
    /// The connect call's `identifiers`, once accepted.
    identifiers: Option<String>,
    cstate: StateMap,
    /// Live subscriptions of the backend's.
    subs: HashMap<SubscriptionId, Sub>,
    /// Subscriptions ended by the connection's end, for `/disconnect`.
    ended: Vec<Sub>,
}

impl Conn {
    fn env(&self, istate: StateMap) -> Env {
        Env {
            url: self.url.clone(),
            headers: self.headers.clone(),
            cstate: self.cstate.clone(),
            istate,
        }
    }
}

type Conns = Arc<Mutex<HashMap<ConnectionId, Conn>>>;

/// The app of `--rpc-url`: connections, subscriptions, actions and
/// disconnects are the backend's (AnyCable's RPC over HTTP); `$pubsub`
/// subscriptions are answered by the server itself, as [`PubSubApp`] does.
pub struct RpcApp {
    client: RpcClient,
    settings: RpcAppSettings,
    conns: Conns,
    disconnects: Option<DisconnectQueue>,
    pubsub: PubSubApp,
    /// `Turbo::StreamsChannel` is served by `pubsub` (a secret is set).
    turbo_local: bool,
    sid_seed: u64,
    sids: AtomicU64,
    hooks: Arc<dyn RpcHooks>,
    name: &'static str,
}

impl std::fmt::Debug for RpcApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcApp")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl RpcApp {
    /// The app for `settings` (checks the URL).
    pub fn new(settings: RpcAppSettings) -> Result<Self, RpcError> {
        let client = RpcClient::new(&settings.rpc)?;
        Ok(Self {
            client,
            settings,
            conns: Arc::default(),
            disconnects: None,
            pubsub: PubSubApp::default(),
            turbo_local: false,
            sid_seed: crate::random_seed(),
            sids: AtomicU64::new(0),
            hooks: Arc::new(NoHooks),
            name: "rpc",
        })
    }

    /// Serves signed `$pubsub` streams and, when a secret is set for them,
    /// `Turbo::StreamsChannel` itself, without calling the backend (as
    /// AnyCable does with its streams secrets).
    pub fn with_signed_streams(mut self, signed: crate::signed_streams::SignedStreams) -> Self {
        self.turbo_local = signed.turbo.is_some() || signed.streams.is_some();
        self.pubsub = PubSubApp::default().with_signed_streams(signed);
        self
    }

    /// The same app with `hooks` ([`RpcHooks`]) and `name` (for logs).
    pub fn with_hooks(mut self, name: &'static str, hooks: Arc<dyn RpcHooks>) -> Self {
        self.name = name;
        self.hooks = hooks;
        self
    }

    fn new_sid(&self) -> String {
        let n = self.sids.fetch_add(1, Ordering::Relaxed);
        format!("{:012x}{n:x}", self.sid_seed & 0xffff_ffff_ffff)
    }

    /// The environment of an upgrade request: its absolute URL, the proxied
    /// headers and `REMOTE_ADDR`.
    fn env_of(&self, request: &RequestInfo) -> (String, BTreeMap<String, String>) {
        let scheme = match request.header("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let host = request.header("host").unwrap_or("localhost");
        let url = format!("{scheme}://{host}{}", request.path_and_query);
        let mut headers = BTreeMap::new();
        for name in &self.settings.proxy_headers {
            if let Some(value) = request.header(name).filter(|v| !v.is_empty()) {
                headers.insert(name.to_ascii_lowercase(), value.to_owned());
            }
        }
        if let Some(addr) = request.remote_addr {
            headers.insert("REMOTE_ADDR".to_owned(), addr.ip().to_string());
        }
        (url, headers)
    }

    /// A channel the server serves itself: `$pubsub`, and Turbo streams
    /// when their secret is set.
    fn is_pubsub(&self, identifier: &cable_proto::Identifier) -> bool {
        match identifier.channel() {
            PUBSUB_CHANNEL => true,
            crate::signed_streams::TURBO_STREAMS_CHANNEL => self.turbo_local,
            _ => false,
        }
    }

    fn subscribe(
        &self,
        handle: CoreHandle,
        connection: ConnectionId,
        identifier: String,
        pending: PendingSubscription,
    ) {
        let request = {
            let conns = self.conns.lock().expect("rpc state");
            conns.get(&connection).and_then(|c| {
                Some((
                    c.sid.clone(),
                    CommandRequest {
                        command: "subscribe",
                        identifier: identifier.clone(),
                        connection_identifiers: c.identifiers.clone()?,
                        data: None,
                        env: c.env(StateMap::new()),
                    },
                ))
            })
        };
        let extra_streams = self.hooks.subscription_streams(&identifier);
        let client = self.client.clone();
        let conns = Arc::clone(&self.conns);
        tokio::spawn(async move {
            let Some((sid, request)) = request else {
                let _ = handle.reject_subscription(pending).await;
                return;
            };
            let subscription = pending.subscription();
            let answer: Result<CommandResponse, RpcError> =
                client.call("command", &sid, &request).await;
            let answer = match answer {
                Ok(answer) if answer.status == Status::Error => {
                    tracing::warn!(
                        sid,
                        identifier,
                        error = answer.error_msg,
                        "subscribe: application error: rejected"
                    );
                    None
                }
                Ok(answer) => Some(answer),
                Err(error) => {
                    tracing::warn!(sid, identifier, %error, "subscribe failed: rejected");
                    None
                }
            };
            let Some(answer) = answer else {
                log_refused(handle.reject_subscription(pending).await);
                return;
            };
            let accepted = answer.status == Status::Success;
            {
                let mut conns = conns.lock().expect("rpc state");
                let Some(conn) = conns.get_mut(&connection) else {
                    return;
                };
                merge_state(&mut conn.cstate, answer.env.cstate.clone());
                if accepted {
                    let mut istate = StateMap::new();
                    merge_state(&mut istate, answer.env.istate.clone());
                    conn.subs.insert(
                        subscription,
                        Sub {
                            identifier: identifier.clone(),
                            istate,
                        },
                    );
                }
            }
            let effects = Effects::of(&answer, &identifier);
            let outcome = handle
                .call(move |server, now| {
                    for message in &effects.messages {
                        let _ = server.transmit(subscription, message, now);
                    }
                    let decided = if accepted {
                        let accept = answer
                            .streams
                            .iter()
                            .chain(&extra_streams)
                            .fold(SubscriptionAccept::new(), |a, s| a.stream(s.as_str()));
                        server.accept_subscription(pending, accept, now)
                    } else {
                        server.reject_subscription(pending, now)
                    };
                    if let Some((reason, reconnect)) = effects.disconnect {
                        let _ = server.disconnect(connection, reason, reconnect, now);
                    }
                    decided
                })
                .await;
            log_refused(outcome.and_then(|r| r.map_err(Into::into)));
        });
    }

    fn perform(&self, handle: CoreHandle, perform: Perform) {
        let connection = perform.connection;
        let subscription = perform.subscription;
        let identifier = perform.identifier.as_str().to_owned();
        let request = {
            let conns = self.conns.lock().expect("rpc state");
            conns.get(&connection).and_then(|c| {
                let istate = c.subs.get(&subscription)?.istate.clone();
                Some((
                    c.sid.clone(),
                    CommandRequest {
                        command: "message",
                        identifier: identifier.clone(),
                        connection_identifiers: c.identifiers.clone()?,
                        data: Some(perform.data.clone()),
                        env: c.env(istate),
                    },
                ))
            })
        };
        let pending = perform.pending;
        let data = perform.data.clone();
        let client = self.client.clone();
        let conns = Arc::clone(&self.conns);
        let hooks = Arc::clone(&self.hooks);
        tokio::spawn(async move {
            let Some((sid, request)) = request else {
                let _ = handle.veto_perform(pending).await;
                return;
            };
            let answer: Result<CommandResponse, RpcError> =
                client.call("command", &sid, &request).await;
            let answer = match answer {
                Ok(answer) if answer.status == Status::Error => {
                    tracing::warn!(
                        sid,
                        identifier,
                        error = answer.error_msg,
                        "perform: application error: dropped"
                    );
                    hooks.message_refused(&identifier, MessageRefusal::Failed);
                    None
                }
                Ok(answer) => Some(answer),
                Err(error) => {
                    tracing::warn!(sid, identifier, %error, "perform failed: dropped");
                    let why = match error {
                        RpcError::Timeout(_) => MessageRefusal::TimedOut,
                        _ => MessageRefusal::Failed,
                    };
                    hooks.message_refused(&identifier, why);
                    None
                }
            };
            let Some(answer) = answer else {
                log_refused(handle.veto_perform(pending).await);
                return;
            };
            {
                let mut conns = conns.lock().expect("rpc state");
                if let Some(conn) = conns.get_mut(&connection) {
                    merge_state(&mut conn.cstate, answer.env.cstate.clone());
                    if let Some(sub) = conn.subs.get_mut(&subscription) {
                        merge_state(&mut sub.istate, answer.env.istate.clone());
                    }
                }
            }
            let effects = Effects::of(&answer, &identifier);
            let mut outcome = PerformOutcome::new();
            if answer.stop_streams {
                outcome = outcome.stop_all_streams();
            }
            for stream in &answer.stopped_streams {
                outcome = outcome.stop_stream(stream.as_str());
            }
            for stream in &answer.streams {
                outcome = outcome.stream(stream.as_str());
            }
            for message in effects.messages {
                outcome = outcome.transmit(message);
            }
            if answer.status == Status::Success {
                for (stream, payload) in hooks.message_broadcasts(&identifier, data.as_str()) {
                    outcome = outcome.broadcast(stream.as_str(), payload);
                }
            } else {
                hooks.message_refused(&identifier, MessageRefusal::Vetoed);
            }
            if let Some((reason, reconnect)) = effects.disconnect {
                outcome = outcome.disconnect(reason, reconnect);
            }
            log_refused(handle.complete_perform(pending, outcome).await);
        });
    }

    /// `unsubscribe` on the backend (Rails' `unsubscribed`), after the core
    /// removed the subscription; nobody waits for it.
    fn unsubscribe(&self, connection: ConnectionId, subscription: SubscriptionId) {
        let request = {
            let mut conns = self.conns.lock().expect("rpc state");
            conns.get_mut(&connection).and_then(|c| {
                let sub = c.subs.remove(&subscription)?;
                Some((
                    c.sid.clone(),
                    CommandRequest {
                        command: "unsubscribe",
                        identifier: sub.identifier,
                        connection_identifiers: c.identifiers.clone()?,
                        data: None,
                        env: c.env(sub.istate),
                    },
                ))
            })
        };
        let Some((sid, request)) = request else {
            return;
        };
        let client = self.client.clone();
        let conns = Arc::clone(&self.conns);
        tokio::spawn(async move {
            match client
                .call::<_, CommandResponse>("command", &sid, &request)
                .await
            {
                Ok(answer) if answer.status != Status::Error => {
                    if let Some(conn) = conns.lock().expect("rpc state").get_mut(&connection) {
                        merge_state(&mut conn.cstate, answer.env.cstate);
                    }
                }
                Ok(answer) => {
                    tracing::warn!(
                        sid,
                        error = answer.error_msg,
                        "unsubscribe: application error"
                    )
                }
                Err(error) => tracing::warn!(sid, %error, "unsubscribe failed"),
            }
        });
    }

    /// A session came back on a new connection: what the backend gave the
    /// previous one (identifiers, `cstate`, each channel's `istate`) is the
    /// new one's, under a new sid; the backend is not asked again.
    fn restored(&self, restored: &cable_proto::server::SessionRestored) {
        let mut conns = self.conns.lock().expect("rpc state");
        let Some(mut conn) = conns.remove(&restored.previous_connection) else {
            conns.remove(&restored.connection);
            return;
        };
        conn.sid = self.new_sid();
        if let Some(fresh) = conns.remove(&restored.connection) {
            conn.url = fresh.url;
            conn.headers = fresh.headers;
        }
        let previous = std::mem::take(&mut conn.subs);
        let moved = restored.previous_subscriptions.iter();
        conn.subs = moved
            .zip(&restored.subscriptions)
            .filter_map(|(old, (new, _))| Some((*new, previous.get(old)?.clone())))
            .collect();
        tracing::debug!(connection = %restored.connection, subscriptions = conn.subs.len(), "rpc session restored");
        conns.insert(restored.connection, conn);
    }

    fn closed(&mut self, connection: ConnectionId) {
        let Some(conn) = self.conns.lock().expect("rpc state").remove(&connection) else {
            return;
        };
        let Some(identifiers) = conn.identifiers.clone() else {
            return;
        };
        let mut subs = conn.ended.clone();
        subs.extend(conn.subs.values().cloned());
        let istate = subs
            .iter()
            .filter(|s| !s.istate.is_empty())
            .filter_map(|s| Some((s.identifier.clone(), serde_json::to_string(&s.istate).ok()?)))
            .collect();
        let call = DisconnectCall {
            sid: conn.sid.clone(),
            request: DisconnectRequest {
                identifiers,
                subscriptions: subs.into_iter().map(|s| s.identifier).collect(),
                env: conn.env(istate),
            },
        };
        let settings = &self.settings;
        let client = &self.client;
        let queued = self
            .disconnects
            .get_or_insert_with(|| {
                DisconnectQueue::start(
                    client.clone(),
                    settings.disconnect_rate,
                    settings.disconnect_backlog,
                )
            })
            .enqueue(call);
        if !queued {
            // `cable_rpc_calls_total{method="disconnect",outcome="dropped"}`.
            client.count_dropped("disconnect");
        }
    }
}

/// What an answer's transmissions and `disconnect` flag do besides the
/// decision: messages for the subscription, and a disconnect.
struct Effects {
    messages: Vec<cable_proto::JsonText>,
    disconnect: Option<(DisconnectReason, bool)>,
}

impl Effects {
    fn of(answer: &CommandResponse, identifier: &str) -> Self {
        let mut messages = Vec::new();
        let mut disconnect = None;
        for frame in &answer.transmissions {
            match Transmission::parse(frame) {
                Transmission::Message {
                    identifier: id,
                    message,
                } if same_identifier(&id, identifier) => messages.push(message),
                Transmission::Confirm(id) | Transmission::Reject(id)
                    if same_identifier(&id, identifier) => {}
                Transmission::Disconnect { reason, reconnect } => {
                    disconnect = Some((reason, reconnect));
                }
                other => {
                    tracing::debug!(
                        ?other,
                        identifier,
                        "transmission not for this subscription: dropped"
                    );
                }
            }
        }
        if answer.disconnect && disconnect.is_none() {
            disconnect = Some((DisconnectReason::Other("closed".into()), true));
        }
        Self {
            messages,
            disconnect,
        }
    }
}

/// An answer the core refused: its deadline passed (the core logged it and
/// answered in our place) or the connection is gone.
fn log_refused(outcome: Result<(), crate::app::AnswerError>) {
    if let Err(error) = outcome {
        tracing::debug!(%error, "RPC answer refused by the core");
    }
}

impl CableApp for RpcApp {
    fn name(&self) -> &str {
        self.name
    }

    /// The `/disconnect` calls of the connections closed so far (the
    /// shutdown's among them) are made before the server exits.
    fn shutdown(&mut self, deadline: Instant) -> Option<ShutdownWork> {
        let queue = self.disconnects.take()?;
        Some(Box::pin(async move {
            queue.flush(deadline).await;
        }))
    }

    fn control(
        &mut self,
        _cx: &mut AppContext<'_>,
        request: &ControlRequest<'_>,
    ) -> Option<HttpResponse> {
        self.hooks.control(request)
    }

    /// A restored session keeps the connection's identifiers and `cstate`
    /// and each subscription's `istate` (AnyCable's session cache), with no
    /// Connect call.
    fn resumable(&self) -> bool {
        true
    }

    /// The restored session's env is the new request's (its URL and
    /// headers), as AnyCable's is.
    fn resuming(&mut self, request: &RequestInfo, connection: ConnectionId) {
        let (url, headers) = self.env_of(request);
        let conn = Conn {
            url,
            headers,
            ..Conn::default()
        };
        self.conns
            .lock()
            .expect("rpc state")
            .insert(connection, conn);
    }

    fn configure(&self, config: &mut Config) {
        let deadline = Some(self.settings.rpc.timeout);
        config.decision_timeouts = DecisionTimeouts {
            connect: Some(self.settings.rpc.timeout + CONNECT_BACKSTOP),
            subscribe: deadline,
            perform: deadline,
        };
    }

    fn connect(
        &mut self,
        cx: &mut AppContext<'_>,
        request: &RequestInfo,
        pending: PendingConnection,
    ) {
        let connection = pending.connection();
        if let Err(why) = self.hooks.admit(request) {
            tracing::info!(why, "connection refused before the backend was asked");
            if let Err(error) = cx.server.reject_connection(pending, cx.now) {
                tracing::debug!(%error, "reject refused by the core");
            }
            return;
        }
        let sid = self.new_sid();
        let (url, headers) = self.env_of(request);
        let conn = Conn {
            sid: sid.clone(),
            url,
            headers,
            ..Conn::default()
        };
        let body = ConnectRequest {
            env: conn.env(StateMap::new()),
        };
        self.conns
            .lock()
            .expect("rpc state")
            .insert(connection, conn);
        let handle = cx.handle();
        let client = self.client.clone();
        let conns = Arc::clone(&self.conns);
        tokio::spawn(async move {
            let answer: Result<ConnectResponse, RpcError> =
                client.call("connect", &sid, &body).await;
            let answer = match answer {
                Ok(answer) if answer.status == Status::Success => answer,
                Ok(answer) if answer.status == Status::Failure => {
                    tracing::info!(sid, "connection rejected by the backend");
                    log_refused(handle.reject_connection(pending).await);
                    return;
                }
                Ok(answer) => {
                    tracing::warn!(
                        sid,
                        error = answer.error_msg,
                        "connect: application error: connection closed"
                    );
                    let reject = handle.reject_connection_with(pending, rpc_error_reason(), true);
                    log_refused(reject.await);
                    return;
                }
                Err(error) => {
                    tracing::warn!(sid, %error, "connect failed: connection closed");
                    let reject = handle.reject_connection_with(pending, rpc_error_reason(), true);
                    log_refused(reject.await);
                    return;
                }
            };
            {
                let mut conns = conns.lock().expect("rpc state");
                let Some(conn) = conns.get_mut(&connection) else {
                    return;
                };
                conn.identifiers = Some(answer.identifiers.clone());
                merge_state(&mut conn.cstate, answer.env.cstate.clone());
            }
            let mut accept = ConnectionAccept::new(Identity::new(answer.identifiers.as_str()));
            for frame in &answer.transmissions {
                match Transmission::parse(frame) {
                    Transmission::Welcome(fields) => {
                        for (key, value) in fields {
                            accept = accept.welcome_field(&key, value);
                        }
                    }
                    Transmission::Invalid => {
                        tracing::debug!(sid, frame, "connect transmission is not JSON: dropped");
                    }
                    _ => match cable_proto::JsonText::new(frame.as_str()) {
                        Ok(frame) => accept = accept.transmit(frame),
                        Err(_) => tracing::debug!(sid, "connect transmission dropped"),
                    },
                }
            }
            log_refused(handle.accept_connection(pending, accept).await);
        });
    }

    fn handle_event(&mut self, cx: &mut AppContext<'_>, event: Event) {
        match event {
            Event::SubscriptionRequested {
                connection,
                identifier,
                pending,
                ..
            } => {
                if self.is_pubsub(&identifier) {
                    let event = Event::SubscriptionRequested {
                        connection,
                        identity: Identity::new(""),
                        identifier,
                        pending,
                    };
                    SyncApp::handle_event(&mut self.pubsub, cx.server, event, cx.now);
                } else {
                    let identifier = identifier.as_str().to_owned();
                    self.subscribe(cx.handle(), connection, identifier, pending);
                }
            }
            Event::Perform(perform) => {
                if self.is_pubsub(&perform.identifier) {
                    SyncApp::handle_event(
                        &mut self.pubsub,
                        cx.server,
                        Event::Perform(perform),
                        cx.now,
                    );
                } else {
                    self.perform(cx.handle(), perform);
                }
            }
            Event::Unsubscribed {
                connection,
                subscription,
                cause,
                ..
            } => match cause {
                UnsubscribeCause::ConnectionClosed | UnsubscribeCause::Disconnected => {
                    let mut conns = self.conns.lock().expect("rpc state");
                    if let Some(conn) = conns.get_mut(&connection) {
                        if let Some(sub) = conn.subs.remove(&subscription) {
                            conn.ended.push(sub);
                        }
                    }
                }
                _ => self.unsubscribe(connection, subscription),
            },
            Event::Closed { connection, .. } => self.closed(connection),
            Event::SessionRestored(restored) => self.restored(&restored),
            _ => {}
        }
    }

    fn attach_metrics(&mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) {
        self.client.attach_metrics(metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> RpcApp {
        RpcApp::new(RpcAppSettings {
            rpc: RpcSettings {
                url: "http://127.0.0.1:9/_anycable".into(),
                secret: None,
                timeout: Duration::from_secs(1),
                concurrency: 2,
            },
            proxy_headers: vec!["cookie".into(), "X-Api-Key".into()],
            disconnect_rate: 10,
            disconnect_backlog: 10,
        })
        .unwrap()
    }

    #[test]
    fn env_has_the_absolute_url_the_proxied_headers_and_remote_addr() {
        let request = RequestInfo {
            path_and_query: "/cable?token=a".into(),
            headers: vec![
                ("host".into(), "example.com:8080".into()),
                ("cookie".into(), "s=1".into()),
                ("x-api-key".into(), "k".into()),
                ("authorization".into(), "Bearer t".into()),
            ],
            remote_addr: Some("10.0.0.7:5555".parse().unwrap()),
        };
        let (url, headers) = app().env_of(&request);
        assert_eq!(url, "http://example.com:8080/cable?token=a");
        assert_eq!(
            headers,
            BTreeMap::from([
                ("REMOTE_ADDR".to_owned(), "10.0.0.7".to_owned()),
                ("cookie".to_owned(), "s=1".to_owned()),
                ("x-api-key".to_owned(), "k".to_owned()),
            ])
        );
        let behind_tls = RequestInfo {
            headers: vec![
                ("host".into(), "example.com".into()),
                ("x-forwarded-proto".into(), "https".into()),
            ],
            ..request
        };
        assert_eq!(
            app().env_of(&behind_tls).0,
            "https://example.com/cable?token=a"
        );
    }

    #[test]
    fn transmissions_become_messages_and_a_disconnect() {
        let id = r#"{"channel":"C"}"#;
        let answer = CommandResponse {
            status: Status::Success,
            transmissions: vec![
                serde_json::json!({"identifier": id, "type": "confirm_subscription"}).to_string(),
                serde_json::json!({"identifier": id, "message": {"a": 1}}).to_string(),
                serde_json::json!({"identifier": "other", "message": {"b": 2}}).to_string(),
            ],
            disconnect: true,
            ..CommandResponse::default()
        };
        let effects = Effects::of(&answer, id);
        assert_eq!(
            effects.messages,
            [cable_proto::JsonText::new(r#"{"a":1}"#).unwrap()]
        );
        assert_eq!(
            effects.disconnect,
            Some((DisconnectReason::Other("closed".into()), true))
        );
        let answer = CommandResponse {
            transmissions: vec![
                r#"{"type":"disconnect","reason":"remote","reconnect":false}"#.into(),
            ],
            ..CommandResponse::default()
        };
        assert_eq!(
            Effects::of(&answer, id).disconnect,
            Some((DisconnectReason::Remote, false))
        );
    }
}
