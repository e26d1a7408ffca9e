//! One WebSocket connection: a reader that forwards frames to the core, and
//! a writer that coalesces the core's frames (write many, flush once) and
//! reports what it wrote.

use std::time::Duration;

use cable_proto::ConnectionId;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::core::{CoreInput, Outbound};

/// Most frames written before one flush.
const BATCH_FRAMES: usize = 256;
/// Most bytes written before one flush.
const BATCH_BYTES: usize = 256 * 1024;

/// Timing of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnTiming {
    /// How long one batch of writes may take.
    pub(crate) write_timeout: Duration,
    /// How long to wait for the peer's close after ours.
    pub(crate) close_grace: Duration,
}

/// Serves one upgraded connection until it is gone, then tells the core.
pub(crate) async fn run_connection<S>(
    ws: WebSocketStream<S>,
    connection: ConnectionId,
    outbound: mpsc::UnboundedReceiver<Outbound>,
    core: mpsc::Sender<CoreInput>,
    timing: ConnTiming,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut stream) = ws.split();
    let mut writer = tokio::spawn(write_loop(sink, outbound, core.clone(), connection, timing));
    let reader = async {
        while let Some(message) = stream.next().await {
            let input = match message {
                Ok(Message::Text(text)) => CoreInput::Text {
                    connection,
                    frame: text.into(),
                },
                Ok(Message::Binary(frame)) => CoreInput::Binary { connection, frame },
                Ok(_) => continue,
                Err(error) => {
                    tracing::debug!(%connection, %error, "read failed");
                    break;
                }
            };
            if core.send(input).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = reader => {}
        _ = &mut writer => {}
    }
    writer.abort();
    let _ = core.send(CoreInput::Closed { connection }).await;
}

async fn write_loop<W>(
    mut sink: W,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    core: mpsc::Sender<CoreInput>,
    connection: ConnectionId,
    timing: ConnTiming,
) where
    W: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    while let Some(first) = outbound.recv().await {
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
        match tokio::time::timeout(timing.write_timeout, batch).await {
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
            tokio::time::sleep(timing.close_grace).await;
            return;
        }
    }
}
