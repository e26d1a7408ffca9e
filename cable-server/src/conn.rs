//! One WebSocket connection: a reader that forwards frames to the core, and
//! a writer that coalesces the core's frames (write many, flush once) and
//! reports what it wrote.
//!
//! The reader also polices the peer, on the host's side of the core: a
//! message over the frame limit is refused from its header (the WebSocket
//! layer's size limits are the core's) and closes the connection with 1009;
//! invalid frames beyond a rate close it with 1008; with an idle timeout, a
//! peer from which nothing is received gets a WebSocket ping halfway and is
//! closed at the end; a Jac socket is kept alive as Jac Cloud's server
//! does ([`crate::jac::keepalive`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cable_proto::ConnectionId;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::core::{CoreInput, Outbound};
use crate::flow::{InboundFlow, Sent};
use crate::jac::keepalive::{self, Keepalive, KeepaliveStep, KeepaliveTimes};
use crate::options::Options;
use crate::refusal_log::{Refusal, RefusalLog};

/// Most frames written before one flush.
const BATCH_FRAMES: usize = 256;
/// Most bytes written before one flush.
const BATCH_BYTES: usize = 256 * 1024;

/// How connections are timed and policed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnPolicy {
    /// How long one batch of writes may take.
    pub(crate) write_timeout: Duration,
    /// How long to wait for the peer's close after ours.
    pub(crate) close_grace: Duration,
    /// Close a connection from which nothing was received for this long.
    pub(crate) idle_timeout: Option<Duration>,
    /// Jac's keepalive (Jac sockets only).
    pub(crate) keepalive: Option<KeepaliveTimes>,
}

impl ConnPolicy {
    /// The policy the options ask for.
    pub(crate) fn from_options(options: &Options) -> Self {
        Self {
            write_timeout: options.write_timeout(),
            close_grace: options.close_grace(),
            idle_timeout: options.idle_timeout(),
            keepalive: None,
        }
    }

    /// The policy with Jac's keepalive.
    pub(crate) fn with_keepalive(self, keepalive: Option<KeepaliveTimes>) -> Self {
        Self { keepalive, ..self }
    }
}

/// Why the host closes a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostClose {
    /// A message over the frame limit.
    TooBig,
    /// Nothing received within the idle timeout.
    Idle,
    /// A text message that is not UTF-8.
    InvalidUtf8,
    /// No pong to Jac's keepalive ping in time.
    KeepaliveTimeout,
}

impl HostClose {
    fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            HostClose::TooBig => (CloseCode::Size, "message too big"),
            HostClose::Idle => (CloseCode::Away, "idle timeout"),
            // As Jac Cloud's server (websockets) does: 1007, no reason.
            HostClose::InvalidUtf8 => (CloseCode::Invalid, ""),
            HostClose::KeepaliveTimeout => (
                CloseCode::from(keepalive::TIMEOUT_CODE),
                keepalive::TIMEOUT_REASON,
            ),
        };
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    fn refusal(self) -> Refusal {
        match self {
            HostClose::TooBig => Refusal::FrameTooLarge,
            HostClose::Idle | HostClose::KeepaliveTimeout => Refusal::IdleTimeout,
            HostClose::InvalidUtf8 => Refusal::InvalidFrames,
        }
    }
}

/// What the reader asks of the writer, ahead of the core's frames.
#[derive(Debug)]
enum Control {
    /// Send a WebSocket ping with this payload (the idle timeout's probe,
    /// Jac's keepalive).
    Ping(Bytes),
    /// Send this close, wait the close grace, end.
    Close(HostClose),
}

/// How the reader ended.
enum ReadEnd {
    /// The peer closed, vanished or broke the protocol; or the core is gone.
    Gone,
    /// The host closes the connection.
    Host(HostClose),
}

/// How a connection talks to the core task.
pub(crate) struct ConnChannels {
    /// The core's frames for this connection.
    pub(crate) outbound: mpsc::UnboundedReceiver<Outbound>,
    /// The core's inputs.
    pub(crate) core: mpsc::Sender<CoreInput>,
    /// The inbound window the core settles.
    pub(crate) flow: Arc<InboundFlow>,
}

/// Serves one upgraded connection until it is gone, then tells the core.
pub(crate) async fn run_connection<S>(
    ws: WebSocketStream<S>,
    connection: ConnectionId,
    channels: ConnChannels,
    policy: ConnPolicy,
    refusals: Arc<RefusalLog>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ConnChannels {
        outbound,
        core,
        flow,
    } = channels;
    let (sink, mut stream) = ws.split();
    let (control, controls) = mpsc::channel(4);
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbound,
        controls,
        core.clone(),
        connection,
        policy,
    ));
    let reader = async {
        let mut sent = Sent::default();
        let mut idle = policy
            .idle_timeout
            .map(|t| IdleWatch::new(t, Instant::now()));
        let mut keepalive = policy.keepalive.map(|t| Keepalive::new(t, Instant::now()));
        loop {
            let deadline = [
                idle.as_ref().map(IdleWatch::deadline),
                keepalive.as_ref().map(Keepalive::deadline),
            ]
            .into_iter()
            .flatten()
            .min();
            let next = match deadline {
                None => stream.next().await,
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline.into(), stream.next()).await {
                        Ok(next) => {
                            if let Some(watch) = &mut idle {
                                watch.heard(Instant::now());
                            }
                            next
                        }
                        Err(_) => {
                            let now = Instant::now();
                            let due = keepalive
                                .as_mut()
                                .and_then(|k| k.step(now, crate::jac::ping_payload));
                            match due {
                                Some(KeepaliveStep::Ping(payload)) => {
                                    let ping = Control::Ping(Bytes::copy_from_slice(&payload));
                                    let _ = control.send(ping).await;
                                }
                                Some(KeepaliveStep::TimedOut) => {
                                    return ReadEnd::Host(HostClose::KeepaliveTimeout)
                                }
                                None => {}
                            }
                            match idle.as_mut().and_then(|watch| watch.step(now)) {
                                Some(IdleStep::Ping) => {
                                    let _ = control.send(Control::Ping(Bytes::new())).await;
                                }
                                Some(IdleStep::Close) => return ReadEnd::Host(HostClose::Idle),
                                None => {}
                            }
                            continue;
                        }
                    }
                }
            };
            let Some(message) = next else {
                return ReadEnd::Gone;
            };
            let input = match message {
                Ok(Message::Text(text)) => CoreInput::Text {
                    connection,
                    frame: text.into(),
                },
                Ok(Message::Binary(frame)) => CoreInput::Binary { connection, frame },
                Ok(Message::Pong(payload)) => {
                    if let Some(keepalive) = &mut keepalive {
                        keepalive.pong(&payload, Instant::now());
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
                    tracing::debug!(%connection, size, max_size, "message too big: closing with 1009");
                    return ReadEnd::Host(HostClose::TooBig);
                }
                Err(WsError::Utf8(error)) => {
                    tracing::debug!(%connection, %error, "text is not UTF-8: closing with 1007");
                    return ReadEnd::Host(HostClose::InvalidUtf8);
                }
                Err(error) => {
                    tracing::debug!(%connection, %error, "read failed");
                    return ReadEnd::Gone;
                }
            };
            // Backpressure: while the core holds this connection's frames
            // for a pending decision, read no more than its hold takes.
            let len = match &input {
                CoreInput::Text { frame, .. } | CoreInput::Binary { frame, .. } => frame.len(),
                _ => 0,
            } as u64;
            flow.admit(sent, len).await;
            sent.add(len);
            if core.send(input).await.is_err() {
                return ReadEnd::Gone;
            }
        }
    };
    let end = tokio::select! {
        end = reader => end,
        _ = &mut writer => ReadEnd::Gone,
    };
    match end {
        ReadEnd::Host(close) => {
            refusals.record(close.refusal());
            // The writer takes the close ahead of the core's frames (before
            // the core, told below, drops the connection's queue), sends it
            // and lingers for the close grace, so that the peer reads it
            // before the socket goes. Nothing more is read: an oversized
            // message stays unread.
            let sent = control.send(Control::Close(close)).await.is_ok();
            let _ = core.send(CoreInput::Closed { connection }).await;
            if sent {
                let bound = policy.write_timeout + policy.close_grace;
                let _ = tokio::time::timeout(bound, &mut writer).await;
            }
            writer.abort();
        }
        ReadEnd::Gone => {
            writer.abort();
            let _ = core.send(CoreInput::Closed { connection }).await;
        }
    }
}

async fn write_loop<W>(
    mut sink: W,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    mut controls: mpsc::Receiver<Control>,
    core: mpsc::Sender<CoreInput>,
    connection: ConnectionId,
    policy: ConnPolicy,
) where
    W: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    loop {
        let first = tokio::select! {
            biased;
            Some(control) = controls.recv() => {
                let (message, closing) = match control {
                    Control::Ping(payload) => (Message::Ping(payload), false),
                    Control::Close(close) => (Message::Close(Some(close.frame())), true),
                };
                match tokio::time::timeout(policy.write_timeout, sink.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::debug!(%connection, %error, "write failed");
                        return;
                    }
                    Err(_) => return,
                }
                if closing {
                    tokio::time::sleep(policy.close_grace).await;
                    return;
                }
                continue;
            }
            first = outbound.recv() => match first {
                Some(first) => first,
                None => return,
            },
        };
        let mut written = 0usize;
        let mut closing = false;
        let batch = async {
            let mut next = Some(first);
            let mut frames = 0;
            while let Some(out) = next.take() {
                match out {
                    Outbound::Text(text) => {
                        written += text.len();
                        sink.feed(Message::Text(text)).await?;
                    }
                    Outbound::Close { code, reason } => {
                        closing = true;
                        let frame = CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        };
                        sink.feed(Message::Close(Some(frame))).await?;
                        break;
                    }
                }
                frames += 1;
                if frames >= BATCH_FRAMES || written >= BATCH_BYTES {
                    break;
                }
                next = outbound.try_recv().ok();
            }
            sink.flush().await
        };
        match tokio::time::timeout(policy.write_timeout, batch).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%connection, %error, "write failed");
                return;
            }
            Err(_) => {
                tracing::info!(%connection, "write timed out: dropping the connection");
                return;
            }
        }
        if written > 0 {
            let _ = core
                .send(CoreInput::Written {
                    connection,
                    bytes: written,
                })
                .await;
        }
        if closing {
            // The reader sees the peer's answer and ends the connection;
            // this is the bound on waiting for it.
            tokio::time::sleep(policy.close_grace).await;
            return;
        }
    }
}

/// What to do when the idle watch's deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdleStep {
    /// Halfway: probe with a WebSocket ping.
    Ping,
    /// Nothing received for the whole timeout: close.
    Close,
}

/// The idle timeout of one connection.
#[derive(Debug)]
struct IdleWatch {
    timeout: Duration,
    last_heard: Instant,
    pinged: bool,
}

impl IdleWatch {
    fn new(timeout: Duration, now: Instant) -> Self {
        Self {
            timeout,
            last_heard: now,
            pinged: false,
        }
    }

    /// When to look again: halfway before the ping, at the end after it.
    fn deadline(&self) -> Instant {
        if self.pinged {
            self.last_heard + self.timeout
        } else {
            self.last_heard + self.timeout / 2
        }
    }

    /// Something was received.
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged = false;
    }

    /// The deadline passed: what to do, if anything yet.
    fn step(&mut self, now: Instant) -> Option<IdleStep> {
        if now >= self.last_heard + self.timeout {
            Some(IdleStep::Close)
        } else if !self.pinged && now >= self.last_heard + self.timeout / 2 {
            self.pinged = true;
            Some(IdleStep::Ping)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_watch_pings_halfway_then_closes() {
        let start = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut watch = IdleWatch::new(timeout, start);
        assert_eq!(watch.deadline(), start + Duration::from_secs(5));
        assert_eq!(watch.step(start + Duration::from_secs(1)), None);
        assert_eq!(
            watch.step(start + Duration::from_secs(5)),
            Some(IdleStep::Ping)
        );
        assert_eq!(watch.deadline(), start + timeout);
        assert_eq!(watch.step(start + timeout), Some(IdleStep::Close));
        // An answer starts over.
        watch.heard(start + Duration::from_secs(6));
        assert_eq!(watch.deadline(), start + Duration::from_secs(11));
        assert_eq!(
            watch.step(start + Duration::from_secs(11)),
            Some(IdleStep::Ping)
        );
    }
}
