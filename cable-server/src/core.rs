//! The core task: the one owner of the [`cable_proto::Server`] and of the
//! app. Connection tasks, the HTTP handlers and the Redis bridge talk to it
//! through one channel of [`CoreInput`]s; it answers with frames on each
//! connection's outbound channel. No locks on the hot path.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cable_proto::server::{Event, Frame, Protocol, Server, Transmit};
use cable_proto::{CommandError, ConnectionId, DisconnectReason, HandshakeRequest, StreamName};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::app::{
    AppContext, CableApp, ControlRequest, CoreHandle, CoreJob, HttpResponse, RequestInfo,
};
use crate::app_broadcasts::{Exclusions, Publication};
use crate::flow::{InboundFlow, Sent};
use crate::invalid_frames::InvalidFrameBudget;
use crate::metrics::{CoreGauges, Metrics};
use crate::refusal_log::{Refusal, RefusalLog};

/// How many except-sender publishes a node remembers while they travel
/// through Redis (see [`Exclusions`]).
const MAX_EXCLUSIONS: usize = 65_536;
/// How many queued inputs the core handles in a row before it looks at its
/// timers again.
const INPUT_BATCH: usize = 256;
/// How long a confirmation waits for the upstream subscription of its
/// streams before it goes out anyway (a core deadline).
pub(crate) const UPSTREAM_WAIT: Duration = Duration::from_secs(3);

/// A frame for a connection's writer.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// A text frame.
    Text(Utf8Bytes),
    /// A close frame; the writer closes the socket after it.
    Close { code: u16, reason: &'static str },
}

/// What an upgrade request carries to the core.
#[derive(Debug)]
pub(crate) struct OpenRequest {
    pub(crate) host: Option<String>,
    pub(crate) origin: Option<String>,
    pub(crate) secure: bool,
    pub(crate) protocols: Vec<String>,
    /// What the path speaks.
    pub(crate) at: crate::mounts::PathProtocols,
    pub(crate) info: RequestInfo,
}

/// The core's answer to an upgrade request.
#[derive(Debug)]
pub(crate) enum OpenReply {
    /// Refused before the upgrade (origin): answer with this status and body.
    Refused { status: u16, body: &'static str },
    /// Accepted: upgrade with `subprotocol`, then write what `outbound` yields.
    Accepted {
        connection: ConnectionId,
        subprotocol: Option<String>,
        outbound: mpsc::UnboundedReceiver<Outbound>,
        /// The reader's window, settled by the core.
        flow: Arc<InboundFlow>,
        /// The protocol chosen for it (its frame limit depends on it).
        protocol: Protocol,
    },
    /// The server is shutting down.
    Unavailable,
}

/// Inputs of the core task.
pub(crate) enum CoreInput {
    /// An upgrade request.
    Open {
        request: OpenRequest,
        reply: oneshot::Sender<OpenReply>,
    },
    /// A text frame from a client.
    Text {
        connection: ConnectionId,
        frame: Bytes,
    },
    /// A binary frame from a client.
    Binary {
        connection: ConnectionId,
        frame: Bytes,
    },
    /// A writer wrote this many bytes of text frames.
    Written {
        connection: ConnectionId,
        bytes: usize,
    },
    /// A socket is gone.
    Closed { connection: ConnectionId },
    /// A broadcast (JSON text payload) from outside: HTTP or Redis.
    Broadcast { stream: String, payload: String },
    /// A remote disconnect of every connection of an identity.
    RemoteDisconnect { identity: String, reconnect: bool },
    /// The upstream bridge is subscribed to this stream (Redis answered the
    /// `SUBSCRIBE`).
    UpstreamReady(StreamName),
    /// A job of the app's, from a [`CoreHandle`] (a decision answered later).
    Job(CoreJob),
    /// A plain HTTP request for the app.
    Control {
        method: String,
        path_and_query: String,
        body: Bytes,
        reply: oneshot::Sender<Option<HttpResponse>>,
    },
    /// The answer to a Jac socket's decision (a token, a walker).
    JacAnswer {
        connection: ConnectionId,
        answer: cable_proto::dialect::jac::Answer,
    },
    /// A client event of another Jac replica (its `event` object).
    JacReplica(Bytes),
    /// A scrape of `/metrics`: the core's gauges.
    Gauges { reply: oneshot::Sender<CoreGauges> },
    /// Stop: every client gets `server_restart`, then the core ends once
    /// they are gone or after `timeout`.
    Shutdown { timeout: Duration },
}

/// Commands for an upstream pub/sub bridge (Redis), following the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// A stream got its first local subscriber.
    Subscribe(StreamName),
    /// A stream lost its last local subscriber.
    Unsubscribe(StreamName),
}

struct Slot {
    connection: ConnectionId,
    outbound: mpsc::UnboundedSender<Outbound>,
    /// The reader's window: what the core received, and whether some of it
    /// may be held.
    flow: Arc<InboundFlow>,
    received: Sent,
    in_holding: bool,
    /// The bound on the frames the core refuses.
    invalid: InvalidFrameBudget,
    /// The close code at shutdown, when not the core's (Jac: 1012; Jac
    /// sockets are the ones with one, and get Jac's keepalive pings).
    shutdown_code: Option<u16>,
}

/// The state of the core task.
pub(crate) struct Core {
    server: Server,
    app: Box<dyn CableApp>,
    slots: Vec<Option<Slot>>,
    upstream: Option<mpsc::UnboundedSender<Upstream>>,
    /// The last text frame converted, to convert a broadcast's shared bytes
    /// once for all its recipients.
    last_text: Option<(Bytes, Utf8Bytes)>,
    shutdown_deadline: Option<Instant>,
    /// Given to the app, to answer decisions from other tasks.
    handle: CoreHandle,
    /// The plain protocols' dialects (BuddyBoss).
    dialects: crate::mounts::Dialects,
    /// Connections whose last frames may be held for a pending decision:
    /// their readers' windows are settled after every drain.
    holding: Vec<ConnectionId>,
    /// Refused frames allowed per second and connection (0: any).
    invalid_frames_per_sec: u32,
    refusals: Arc<RefusalLog>,
    /// AnyCable's extended protocol: sessions, history, presence.
    anycable: crate::anycable::Extended,
    /// Where app broadcasts go to reach every node (Redis), if anywhere.
    publisher: Option<mpsc::Sender<Publication>>,
    /// This node's except-sender publishes on their way through Redis.
    exclusions: Exclusions,
    metrics: Arc<Metrics>,
}

/// What the core task is wired to besides its app.
pub(crate) struct CoreLinks {
    /// The Redis subscriber's commands.
    pub(crate) upstream: Option<mpsc::UnboundedSender<Upstream>>,
    /// The Redis publisher of app broadcasts.
    pub(crate) publisher: Option<mpsc::Sender<Publication>>,
    /// The node's metrics.
    pub(crate) metrics: Arc<Metrics>,
}

impl Core {
    /// The extended protocol's host side, as configured.
    pub(crate) fn with_anycable(mut self, anycable: crate::anycable::Extended) -> Self {
        self.anycable = anycable;
        self
    }

    pub(crate) fn new(
        mut config: cable_proto::server::Config,
        app: Box<dyn CableApp>,
        links: CoreLinks,
        handle: CoreHandle,
        dialects: crate::mounts::Dialects,
        invalid_frames_per_sec: u32,
        refusals: Arc<RefusalLog>,
    ) -> Self {
        let CoreLinks {
            upstream,
            publisher,
            metrics,
        } = links;
        // With an upstream bridge, confirm as Rails' Redis adapter does: once
        // the stream is subscribed upstream (or after UPSTREAM_WAIT, as the
        // bridge subscribes again once Redis is back).
        config.confirm_when_streams_ready = upstream.is_some();
        // App broadcasts come out as events: delivered here at once, or
        // through Redis to every node (see `app_broadcasts`).
        config.publish_upstream = true;
        config.upstream_ready_timeout = Some(UPSTREAM_WAIT);
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            server: Server::new(config, Instant::now(), unix_now),
            app,
            slots: Vec::new(),
            upstream,
            last_text: None,
            shutdown_deadline: None,
            handle,
            dialects,
            holding: Vec::new(),
            invalid_frames_per_sec,
            refusals,
            anycable: crate::anycable::Extended::new(&Default::default()),
            publisher,
            exclusions: Exclusions::new(MAX_EXCLUSIONS),
            metrics,
        }
    }

    /// Runs until shut down (and every client is gone or the shutdown
    /// timeout passed) or until every sender of `inputs` is dropped.
    pub(crate) async fn run(mut self, mut inputs: mpsc::Receiver<CoreInput>) {
        loop {
            let deadline = [self.server.poll_timeout(), self.shutdown_deadline]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    self.handle(input);
                    // Each input's events reach the app before the next
                    // input: a synchronous app answers a decision before the
                    // connection's next frame arrives, so nothing is held.
                    self.drain(Instant::now());
                    for _ in 0..INPUT_BATCH {
                        match inputs.try_recv() {
                            Ok(input) => {
                                self.handle(input);
                                self.drain(Instant::now());
                            }
                            Err(_) => break,
                        }
                    }
                }
                () = sleep => {
                    let now = Instant::now();
                    self.server.handle_timeout(now);
                    self.anycable.tick(&mut self.server, now);
                }
            }
            self.drain(Instant::now());
            if let Some(deadline) = self.shutdown_deadline {
                if self.server.connection_count() == 0 {
                    tracing::info!("every client is gone");
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(
                        connections = self.server.connection_count(),
                        "shutdown timeout: exiting with clients still connected"
                    );
                    break;
                }
            }
        }
        // What the app still owes for closed connections (AnyCable RPC's
        // /disconnect calls), within what is left of the shutdown timeout.
        let deadline = self.shutdown_deadline.unwrap_or_else(Instant::now);
        if let Some(work) = self.app.shutdown(deadline) {
            if tokio::time::timeout_at(deadline.into(), work)
                .await
                .is_err()
            {
                tracing::warn!("shutdown timeout: the app's remaining work is cut short");
            }
        }
    }

    fn handle(&mut self, input: CoreInput) {
        let now = Instant::now();
        match input {
            CoreInput::Open { request, reply } => {
                let answer = self.open(request, now);
                if let Err(OpenReply::Accepted { connection, .. }) = reply.send(answer) {
                    // The HTTP side is gone before the upgrade.
                    self.close(connection, now);
                }
            }
            CoreInput::Text { connection, frame } => {
                self.received(connection, frame.len());
                if let Err(error) = self.server.handle_text(connection, &frame, now) {
                    tracing::trace!(%connection, %error, "text frame for a stale connection");
                }
            }
            CoreInput::Binary { connection, frame } => {
                self.received(connection, frame.len());
                let _ = self.server.handle_binary(connection, &frame, now);
            }
            CoreInput::Written { connection, bytes } => {
                let _ = self.server.handle_written(connection, bytes, now);
            }
            CoreInput::Closed { connection } => self.close(connection, now),
            CoreInput::Broadcast { stream, payload } => {
                // One of this node's except-sender publishes, back from Redis?
                let except = if self.exclusions.is_empty() {
                    None
                } else {
                    self.exclusions
                        .take(&stream, &payload, now)
                        .filter(|c| self.server.contains(*c))
                };
                let delivery = match except {
                    Some(except) => self.server.broadcast_except(&stream, &payload, except, now),
                    None => self
                        .anycable
                        .broadcast(&mut self.server, &stream, &payload, now),
                };
                self.delivered(&delivery);
                tracing::debug!(
                    stream,
                    recipients = delivery.recipients,
                    encoded = delivery.encoded,
                    "broadcast"
                );
            }
            CoreInput::RemoteDisconnect {
                identity,
                reconnect,
            } => {
                let closed = self.server.disconnect_identity(&identity, reconnect, now);
                tracing::info!(identity, reconnect, closed, "remote disconnect");
            }
            CoreInput::UpstreamReady(stream) => {
                self.server.stream_ready(stream.as_str(), now);
            }
            CoreInput::Job(job) => job(&mut self.server, now),
            CoreInput::Control {
                method,
                path_and_query,
                body,
                reply,
            } => {
                let request = ControlRequest {
                    method: &method,
                    path_and_query: &path_and_query,
                    body: &body,
                };
                let mut cx = AppContext {
                    server: &mut self.server,
                    now,
                    handle: &self.handle,
                };
                let answer = self.app.control(&mut cx, &request);
                let _ = reply.send(answer);
            }
            CoreInput::JacAnswer { connection, answer } => {
                self.dialects
                    .jac_answer(&mut self.server, connection, answer, now);
            }
            CoreInput::JacReplica(event) => {
                self.dialects.jac_replica(&mut self.server, &event, now);
            }
            CoreInput::Gauges { reply } => {
                let _ = reply.send(CoreGauges {
                    connections: self.server.connection_count(),
                    subscriptions: self.server.subscription_count(),
                    streams: self.server.stream_count(),
                });
            }
            CoreInput::Shutdown { timeout } => {
                if self.shutdown_deadline.is_none() {
                    tracing::info!(
                        connections = self.server.connection_count(),
                        "shutting down: server_restart to every client"
                    );
                    self.server.restart(now);
                    self.shutdown_deadline = Some(now + timeout);
                }
            }
        }
    }

    fn open(&mut self, request: OpenRequest, now: Instant) -> OpenReply {
        if self.shutdown_deadline.is_some() {
            return OpenReply::Unavailable;
        }
        let protocols: Vec<&str> = request.protocols.iter().map(String::as_str).collect();
        let protocol = request
            .at
            .choose(&request.protocols, &self.server.config().protocols);
        // A plain protocol's client without an Origin is not a browser: it
        // is taken as same-origin (see `mounts`).
        let same_origin = match (&request.origin, protocol) {
            (None, Protocol::Custom(_)) => {
                let scheme = if request.secure { "https" } else { "http" };
                Some(format!(
                    "{scheme}://{}",
                    request.host.as_deref().unwrap_or_default()
                ))
            }
            _ => None,
        };
        let handshake = HandshakeRequest {
            host: request.host.as_deref(),
            origin: request.origin.as_deref().or(same_origin.as_deref()),
            secure: request.secure,
            protocols: &protocols,
        };
        let incoming = match self.server.handle_open_as(&handshake, protocol, now) {
            Ok(incoming) => incoming,
            Err(refusal) => {
                if request.origin.is_none() {
                    // The newcomer's first client: say what to do.
                    tracing::info!(
                        "upgrade refused with 404 (as Rails): the request has no Origin header; \
                         send one that is allowed, or start with --allowed-origin ORIGIN \
                         (or --allow-any-origin)"
                    );
                } else {
                    tracing::info!(%refusal, "upgrade refused with 404 (as Rails)");
                }
                return OpenReply::Refused {
                    status: refusal.status(),
                    body: refusal.body(),
                };
            }
        };
        let connection = incoming.connection;
        self.metrics.connections_opened.inc();
        let (outbound, receiver) = mpsc::unbounded_channel();
        let flow = Arc::new(InboundFlow::new(&self.server.config().limits));
        let index = connection.index() as usize;
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(Slot {
            connection,
            outbound,
            flow: Arc::clone(&flow),
            received: Sent::default(),
            in_holding: false,
            invalid: InvalidFrameBudget::new(self.invalid_frames_per_sec),
            // Jac Cloud (uvicorn) closes its sockets with 1012 when it stops.
            shutdown_code: (protocol == Protocol::Custom(crate::jac::JAC)).then_some(1012),
        });
        if protocol.is_action_cable() {
            let mut cx = AppContext {
                server: &mut self.server,
                now,
                handle: &self.handle,
            };
            match self
                .anycable
                .open(cx.server, &request.info, incoming.pending, now)
            {
                Some(pending) => self.app.connect(&mut cx, &request.info, pending),
                None => self.app.resuming(&request.info, connection),
            }
        } else {
            self.dialects.accept(
                &mut self.server,
                incoming.pending,
                connection,
                &request.info,
                now,
            );
        }
        OpenReply::Accepted {
            connection,
            subprotocol: incoming.subprotocol,
            outbound: receiver,
            flow,
            protocol,
        }
    }

    fn close(&mut self, connection: ConnectionId, now: Instant) {
        self.anycable.closed(connection, now);
        if self.server.handle_close(connection, now).is_ok() {
            tracing::debug!(%connection, "connection closed");
        }
        self.dialects.closed(connection);
        if let Some(slot) = self.slots.get_mut(connection.index() as usize) {
            if slot.as_ref().is_some_and(|s| s.connection == connection) {
                if let Some(slot) = slot.take() {
                    slot.flow.release();
                }
            }
        }
    }

    /// A frame of `len` bytes from `connection` is about to reach the core.
    fn received(&mut self, connection: ConnectionId, len: usize) {
        let Some(Some(slot)) = self.slots.get_mut(connection.index() as usize) else {
            return;
        };
        if slot.connection != connection {
            return;
        }
        slot.received.add(len as u64);
        if !slot.in_holding {
            slot.in_holding = true;
            self.holding.push(connection);
        }
    }

    /// Tells the readers of connections that sent frames lately how much of
    /// it the core is done with (handled, not held for a decision).
    fn settle_flows(&mut self) {
        let holding = std::mem::take(&mut self.holding);
        for connection in holding {
            let Some(Some(slot)) = self.slots.get_mut(connection.index() as usize) else {
                continue;
            };
            if slot.connection != connection {
                continue;
            }
            let (dialect_frames, dialect_bytes) = self.dialects.held(connection);
            let held_frames = (self.server.held_frames(connection) + dialect_frames) as u64;
            let held_bytes = (self.server.held_bytes(connection) + dialect_bytes) as u64;
            slot.flow.settle(
                slot.received.frames.saturating_sub(held_frames),
                slot.received.bytes.saturating_sub(held_bytes),
            );
            if held_frames > 0 {
                self.holding.push(connection);
            } else {
                slot.in_holding = false;
            }
        }
    }

    /// Drains events (to the app) and frames (to the writers) until both
    /// queues are empty, then settles the readers' windows.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(transmit) = self.server.poll_transmit() {
                progressed = true;
                self.send(transmit);
            }
            while let Some(event) = self.server.poll_event() {
                progressed = true;
                if let Event::Received {
                    connection,
                    frame,
                    binary,
                } = &event
                {
                    if self
                        .dialects
                        .received(&mut self.server, *connection, frame, *binary, now)
                    {
                        self.spend_invalid(*connection, now);
                    }
                    continue;
                }
                if let Event::Publish {
                    stream,
                    payload,
                    except,
                } = event
                {
                    self.publish(stream.as_str(), payload.as_str(), except, now);
                    continue;
                }
                let Some(event) = self.anycable.intercept(&mut self.server, event, now) else {
                    continue;
                };
                self.observe(&event, now);
                let mut cx = AppContext {
                    server: &mut self.server,
                    now,
                    handle: &self.handle,
                };
                self.app.handle_event(&mut cx, event);
            }
            if !progressed {
                break;
            }
        }
        self.last_text = None;
        self.settle_flows();
    }

    fn observe(&mut self, event: &Event, now: Instant) {
        match event {
            Event::StreamStarted(stream) => {
                if let Some(upstream) = &self.upstream {
                    let _ = upstream.send(Upstream::Subscribe(stream.clone()));
                }
            }
            Event::UpstreamTimedOut(stream) => {
                tracing::warn!(%stream, "upstream subscription not confirmed in time: confirming anyway");
            }
            Event::DecisionExpired {
                connection,
                decision,
            } => {
                tracing::warn!(%connection, ?decision, "the app did not decide in time");
            }
            Event::StreamStopped(stream) => {
                if let Some(upstream) = &self.upstream {
                    let _ = upstream.send(Upstream::Unsubscribe(stream.clone()));
                }
            }
            Event::CommandFailed { connection, error } => {
                tracing::debug!(%connection, %error, "command failed");
                self.metrics.frames_refused.inc();
                if !matches!(error, CommandError::Closing) {
                    self.spend_invalid(*connection, now);
                }
            }
            Event::Disconnecting {
                connection,
                reason,
                reconnect,
            } => {
                tracing::debug!(%connection, %reason, reconnect, "disconnecting");
                self.metrics
                    .disconnects
                    .with_label_values(&[reason.as_str()])
                    .inc();
                if *reason == DisconnectReason::TooSlow {
                    self.metrics.slow_clients_cut.inc();
                }
            }
            _ => {}
        }
    }

    /// A broadcast made by the app: to Redis, for every node (this one
    /// included) to deliver when it comes back; without Redis, here at once.
    fn publish(&mut self, stream: &str, payload: &str, except: Option<ConnectionId>, now: Instant) {
        self.metrics.app_broadcasts.inc();
        let Some(publisher) = &self.publisher else {
            let delivery = match except {
                Some(except) => self.server.broadcast_except(stream, payload, except, now),
                None => self
                    .anycable
                    .broadcast(&mut self.server, stream, payload, now),
            };
            self.delivered(&delivery);
            return;
        };
        let publication = Publication {
            stream: stream.to_owned(),
            payload: payload.to_owned(),
        };
        match publisher.try_send(publication) {
            Ok(()) => {
                // Its sender is a member here, so the message comes back.
                if let Some(except) = except {
                    if self.server.subscriber_count(stream) > 0
                        && !self.exclusions.expect(stream, payload, except, now)
                    {
                        tracing::debug!(
                            stream,
                            "too many exclusions in flight: the sender gets its own"
                        );
                    }
                }
            }
            Err(_) => {
                self.metrics.app_broadcasts_dropped.inc();
                self.refusals.record(Refusal::BroadcastDropped);
            }
        }
    }

    /// Counts a delivery.
    fn delivered(&self, delivery: &cable_proto::server::Delivery) {
        self.metrics.broadcasts_delivered.inc();
        self.metrics.deliveries.inc_by(delivery.recipients as u64);
        if delivery.skipped_too_large > 0 {
            self.refusals.record(Refusal::BroadcastDropped);
            self.metrics
                .broadcast_frames_dropped
                .with_label_values(&["too_large"])
                .inc_by(delivery.skipped_too_large as u64);
        }
        if delivery.skipped_invalid_json > 0 {
            self.metrics
                .broadcast_frames_dropped
                .with_label_values(&["invalid_json"])
                .inc_by(delivery.skipped_invalid_json as u64);
        }
    }

    /// One more frame the core (or a plain dialect) refused: past the
    /// connection's budget, it is disconnected (Action Cable:
    /// `invalid_request`, no reconnect; BuddyBoss: its error frame, then the
    /// close).
    fn spend_invalid(&mut self, connection: ConnectionId, now: Instant) {
        let Some(Some(slot)) = self.slots.get_mut(connection.index() as usize) else {
            return;
        };
        if slot.connection != connection || slot.invalid.spend(now) {
            return;
        }
        self.refusals.record(Refusal::InvalidFrames);
        self.dialects
            .refused_too_often(&mut self.server, connection, now);
        let _ = self
            .server
            .disconnect(connection, DisconnectReason::InvalidRequest, false, now);
    }

    fn send(&mut self, transmit: Transmit) {
        let Some(Some(slot)) = self.slots.get(transmit.connection.index() as usize) else {
            return;
        };
        if slot.connection != transmit.connection {
            return;
        }
        let out = match transmit.frame {
            Frame::Text(bytes) => {
                let text = match &self.last_text {
                    Some((last, text))
                        if last.as_ptr() == bytes.as_ptr() && last.len() == bytes.len() =>
                    {
                        text.clone()
                    }
                    _ => match Utf8Bytes::try_from(bytes.clone()) {
                        Ok(text) => {
                            self.last_text = Some((bytes, text.clone()));
                            text
                        }
                        Err(_) => {
                            tracing::error!("the core produced a frame that is not UTF-8");
                            return;
                        }
                    },
                };
                Outbound::Text(text)
            }
            Frame::Close { code, reason } => Outbound::Close {
                code: match slot.shutdown_code {
                    Some(code) if self.shutdown_deadline.is_some() => code,
                    _ => code,
                },
                reason,
            },
        };
        let _ = slot.outbound.send(out);
    }
}
