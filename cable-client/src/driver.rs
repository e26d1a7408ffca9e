//! The task that owns the socket: it feeds the consumer state machine what
//! happens (frames, opens, closes, time) and carries out what it asks
//! (connect, close, ask for a credential, write frames, deliver events).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cable_proto::client::{
    Consumer, Event, PerformError, SeededJitter, SubscribeError, SubscriptionKey,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::subscription::SubscriptionEvent;
use crate::{ClientConfig, ClientError, Status};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a handle asks of the driver.
pub(crate) enum Request {
    Subscribe {
        identifier: String,
        reply: oneshot::Sender<
            Result<(SubscriptionKey, mpsc::Receiver<SubscriptionEvent>), SubscribeError>,
        >,
    },
    Unsubscribe {
        key: SubscriptionKey,
    },
    Perform {
        key: SubscriptionKey,
        action: Option<String>,
        data: Map<String, Value>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Disconnect,
}

/// How a connect ended.
enum Connected {
    /// Open, with the subprotocol the server chose.
    Open(Box<Ws>, Option<String>),
    /// The server upgraded without a subprotocol the client offered.
    NoSubprotocol,
    /// Refused or failed (why, for the log and the status).
    Failed(String),
}

type Pending<T> = Option<Pin<Box<dyn Future<Output = T> + Send>>>;

pub(crate) struct Driver {
    config: ClientConfig,
    consumer: Consumer,
    token: Option<String>,
    socket: Option<Box<Ws>>,
    connecting: Pending<Connected>,
    refreshing: Pending<Option<String>>,
    subscriptions: HashMap<SubscriptionKey, mpsc::Sender<SubscriptionEvent>>,
    requests: mpsc::UnboundedReceiver<Request>,
    status: watch::Sender<Status>,
}

fn now() -> Instant {
    Instant::now()
}

impl Driver {
    pub(crate) fn new(
        config: ClientConfig,
        requests: mpsc::UnboundedReceiver<Request>,
        status: watch::Sender<Status>,
    ) -> Self {
        let seed = config.jitter_seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
        let consumer = Consumer::new(config.consumer.clone(), SeededJitter::new(seed), now());
        Self {
            token: config.token.clone(),
            config,
            consumer,
            socket: None,
            connecting: None,
            refreshing: None,
            subscriptions: HashMap::new(),
            requests,
            status,
        }
    }

    pub(crate) async fn run(mut self) {
        self.consumer.connect(now());
        loop {
            self.flush().await;
            if !self.consumer.is_running()
                && self.socket.is_none()
                && self.connecting.is_none()
                && self.requests.is_closed()
            {
                break;
            }
            let deadline = self
                .consumer
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                request = self.requests.recv() => match request {
                    Some(request) => self.handle_request(request),
                    // Every handle is gone: close for good.
                    None => {
                        self.consumer.disconnect(now());
                        self.flush().await;
                        break;
                    }
                },
                message = next_message(&mut self.socket) => self.handle_message(message),
                outcome = wait(&mut self.connecting) => {
                    self.connecting = None;
                    self.handle_connected(outcome);
                }
                token = wait(&mut self.refreshing) => {
                    self.refreshing = None;
                    match token {
                        Some(token) => {
                            self.token = Some(token);
                            self.consumer.credential_refreshed(now());
                        }
                        None => self.consumer.credential_unavailable(now()),
                    }
                }
                () = sleep_until(deadline) => self.consumer.handle_timeout(now()),
            }
        }
    }

    fn handle_request(&mut self, request: Request) {
        match request {
            Request::Subscribe { identifier, reply } => {
                let answer = self.consumer.subscribe(&identifier, now()).map(|key| {
                    let (tx, rx) = mpsc::channel(self.config.subscription_buffer.max(1));
                    self.subscriptions.insert(key, tx);
                    (key, rx)
                });
                let _ = reply.send(answer);
            }
            Request::Unsubscribe { key } => {
                self.subscriptions.remove(&key);
                self.consumer.unsubscribe(key, now());
            }
            Request::Perform {
                key,
                action,
                data,
                reply,
            } => {
                let sent = match action {
                    Some(action) => self.consumer.perform(key, &action, &data, now()),
                    None => self.consumer.send(key, &data, now()),
                };
                let _ = reply.send(sent.map_err(|e| match e {
                    PerformError::NotConnected => ClientError::NotConnected,
                    _ => ClientError::UnknownSubscription,
                }));
            }
            Request::Disconnect => self.consumer.disconnect(now()),
        }
    }

    fn handle_message(&mut self, message: Option<Result<Message, WsError>>) {
        match message {
            Some(Ok(Message::Text(text))) => {
                if let Err(e) = self.consumer.handle_text(text.as_bytes(), now()) {
                    tracing::warn!(error = %e, "ignored a frame that does not parse");
                }
            }
            Some(Ok(Message::Close(frame))) => {
                tracing::debug!(?frame, "the server closed the socket");
                self.socket = None;
                self.consumer.handle_close(now());
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(error = %e, "the socket failed");
                self.socket = None;
                self.consumer.handle_close(now());
            }
            None => {
                self.socket = None;
                self.consumer.handle_close(now());
            }
        }
    }

    fn handle_connected(&mut self, outcome: Connected) {
        match outcome {
            Connected::Open(socket, subprotocol) => {
                self.socket = Some(socket);
                self.consumer.handle_open(subprotocol.as_deref(), now());
            }
            Connected::NoSubprotocol => self.consumer.handle_open(None, now()),
            Connected::Failed(why) => {
                tracing::warn!(url = %self.config.url, "connect failed: {why}");
                self.status
                    .send_replace(Status::Disconnected { error: Some(why) });
                self.consumer.handle_close(now());
            }
        }
    }

    /// Writes what the consumer queued and carries out its events.
    async fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(frame) = self.consumer.poll_transmit() {
                progressed = true;
                let Some(socket) = self.socket.as_mut() else {
                    continue;
                };
                if let Err(e) = socket.send(Message::text(frame)).await {
                    tracing::debug!(error = %e, "write failed");
                    self.socket = None;
                    self.consumer.handle_close(now());
                }
            }
            while let Some(event) = self.consumer.poll_event() {
                progressed = true;
                self.carry_out(event).await;
            }
            if !progressed {
                break;
            }
        }
    }

    async fn carry_out(&mut self, event: Event) {
        match event {
            Event::Connect => {
                self.status.send_replace(Status::Connecting);
                self.connecting = Some(Box::pin(connect(
                    self.config.clone(),
                    self.token.clone(),
                    self.consumer.subprotocols(),
                )));
            }
            Event::Close => {
                if let Some(mut socket) = self.socket.take() {
                    // Close politely in the background; the consumer already
                    // counts the socket as gone.
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(2),
                            SinkExt::close(&mut socket),
                        )
                        .await;
                    });
                }
                self.connecting = None;
                if !matches!(*self.status.borrow(), Status::Stopped(_)) {
                    self.status
                        .send_replace(Status::Disconnected { error: None });
                }
            }
            Event::TokenExpired => match &self.config.on_token_expired {
                Some(callback) => self.refreshing = Some(callback()),
                None => self.consumer.credential_unavailable(now()),
            },
            Event::Welcomed { sid } => {
                self.status.send_replace(Status::Connected { sid });
            }
            Event::ServerDisconnect { reason, reconnect } => {
                tracing::info!(?reason, ?reconnect, "the server disconnects");
            }
            Event::Stopped(reason) => {
                tracing::info!(?reason, "stopped");
                self.status.send_replace(Status::Stopped(reason));
            }
            Event::Connected { key, reconnected } => {
                self.deliver(key, SubscriptionEvent::Connected { reconnected })
                    .await;
            }
            Event::Rejected { key } => {
                self.deliver(key, SubscriptionEvent::Rejected).await;
                self.subscriptions.remove(&key);
            }
            Event::Received { key, message } => {
                self.deliver(key, SubscriptionEvent::Received(message))
                    .await;
            }
            Event::Disconnected {
                key,
                will_reconnect,
            } => {
                self.deliver(key, SubscriptionEvent::Disconnected { will_reconnect })
                    .await;
            }
            _ => {}
        }
    }

    async fn deliver(&mut self, key: SubscriptionKey, event: SubscriptionEvent) {
        if let Some(tx) = self.subscriptions.get(&key) {
            // A full buffer waits for the reader: backpressure, not loss.
            if tx.send(event).await.is_err() {
                self.subscriptions.remove(&key);
            }
        }
    }
}

async fn next_message(socket: &mut Option<Box<Ws>>) -> Option<Result<Message, WsError>> {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

async fn wait<T>(pending: &mut Pending<T>) -> T {
    match pending {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Opens a socket as a browser would: `Origin`, the consumer's subprotocols,
/// the bearer token and the configured headers.
async fn connect(
    config: ClientConfig,
    token: Option<String>,
    subprotocols: Vec<String>,
) -> Connected {
    let mut request = match config.url.as_str().into_client_request() {
        Ok(request) => request,
        Err(e) => return Connected::Failed(format!("bad URL {:?}: {e}", config.url)),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(origin) = config.effective_origin() {
        headers.push(("Origin".to_owned(), origin));
    }
    headers.push(("Sec-WebSocket-Protocol".to_owned(), subprotocols.join(", ")));
    if let Some(token) = &token {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    headers.extend(config.headers.iter().cloned());
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            return Connected::Failed(format!("invalid header {name:?}"));
        };
        request.headers_mut().insert(name, value);
    }
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size));
    let attempt = tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Err(_) => Connected::Failed(format!("no answer within {:?}", config.connect_timeout)),
        Ok(Ok((socket, response))) => {
            let subprotocol = response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Connected::Open(Box::new(socket), subprotocol)
        }
        Ok(Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)))) => {
            Connected::NoSubprotocol
        }
        Ok(Err(WsError::Http(response))) => {
            let status = response.status();
            let hint = if status.as_u16() == 404 {
                " (an Action Cable server answers a missing or foreign Origin with a bare 404: \
                 set ClientConfig::origin to one the server allows)"
            } else {
                ""
            };
            Connected::Failed(format!(
                "the server refused the upgrade: HTTP {status}{hint}"
            ))
        }
        Ok(Err(e)) => Connected::Failed(e.to_string()),
    }
}

impl From<SubscribeError> for ClientError {
    fn from(e: SubscribeError) -> Self {
        ClientError::Subscribe(e)
    }
}
