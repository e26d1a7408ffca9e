//! The shootout's clients: connecting and subscribing them ([`join_all`]) and their
//! readers, which count `bench_all` deliveries into the [`Shared`] bitmap and pass each
//! `broadcastResult` to the coordinator.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{parse_delivery, subscribe_frame, ShootoutOptions, ShootoutReport};
use crate::Error;

/// What the readers share with the coordinator.
pub(super) struct Shared {
    /// One bit per (client, broadcast id): delivered on `bench_all`.
    pub(super) bits: Vec<AtomicU64>,
    pub(super) samples: usize,
    /// Warm-up broadcasts (ids after the measured ones).
    pub(super) warmup: usize,
    pub(super) deliveries: AtomicU64,
    pub(super) warmup_deliveries: AtomicU64,
    pub(super) duplicates: AtomicU64,
    /// Nanoseconds since `t0` of the latest delivery.
    pub(super) last_delivery_ns: AtomicU64,
    pub(super) disconnected: AtomicUsize,
    pub(super) resubscribes: AtomicUsize,
    pub(super) t0: Instant,
}

impl Shared {
    fn deliver(&self, client: usize, id: u64) {
        if id >= self.samples as u64 {
            if id < (self.samples + self.warmup) as u64 {
                self.warmup_deliveries.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let bit = client * self.samples + id as usize;
        let mask = 1u64 << (bit % 64);
        if self.bits[bit / 64].fetch_or(mask, Ordering::Relaxed) & mask == 0 {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
            let ns = self.t0.elapsed().as_nanos() as u64;
            self.last_delivery_ns.fetch_max(ns, Ordering::Relaxed);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

type Ws = WebSocketStream<TcpStream>;
type Sink = SplitSink<Ws, Message>;

/// A `broadcastResult`: (sender, id, arrival).
pub(super) type ResultMsg = (usize, u64, Instant);

pub(super) struct Client {
    pub(super) index: usize,
    pub(super) sink: Sink,
    pub(super) reader: JoinHandle<()>,
}

/// How long a client waits for its confirmation before subscribing again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(3);

fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE (24): this process; ENFILE (23): the system.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Why one client could not join.
enum JoinError {
    /// Out of file descriptors: stop the run.
    Fatal(String),
    /// Anything else: count it.
    Failed(String),
}

async fn read_text(stream: &mut SplitStream<Ws>) -> Result<String, String> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(c))) => return Err(format!("closed by the server: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed".into()),
        }
    }
}

async fn join_one(
    index: usize,
    opts: &ShootoutOptions,
    shared: Arc<Shared>,
    results: mpsc::UnboundedSender<ResultMsg>,
) -> Result<Client, JoinError> {
    let target = &opts.target;
    let tcp = match TcpStream::connect((target.ip, target.port)).await {
        Ok(tcp) => tcp,
        Err(e) if is_fd_exhaustion(&e) => {
            return Err(JoinError::Fatal(format!(
                "out of file descriptors after {index} connections ({e}): raise the limit, \
                 e.g. `ulimit -n 65536` (see `ulimit -Hn`)"
            )))
        }
        Err(e) => return Err(JoinError::Failed(format!("connect: {e}"))),
    };
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{}{}", target.authority, target.path);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| JoinError::Failed(format!("request: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("actioncable-v1-json"),
    );
    if let Ok(origin) = HeaderValue::from_str(&format!("http://{}", target.authority)) {
        headers.insert("Origin", origin);
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(client_config()))
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Io(io) if is_fd_exhaustion(&io) => {
                JoinError::Fatal(format!("out of file descriptors: {io}"))
            }
            e => JoinError::Failed(format!("handshake: {e}")),
        })?;
    let (mut sink, mut stream) = ws.split();
    // As the Rails JS client: subscribe once welcomed, and subscribe again while no
    // confirmation comes (its SubscriptionGuarantor; the server ignores duplicates).
    loop {
        let frame = read_text(&mut stream).await.map_err(JoinError::Failed)?;
        if frame.contains(r#""type":"welcome""#) {
            break;
        }
        if frame.contains(r#""type":"disconnect""#) {
            return Err(JoinError::Failed(format!("refused: {frame}")));
        }
    }
    let subscribe = subscribe_frame();
    loop {
        sink.send(Message::text(subscribe.as_str()))
            .await
            .map_err(|e| JoinError::Failed(format!("subscribe: {e}")))?;
        let confirmed = timeout(RESUBSCRIBE_AFTER, async {
            loop {
                let frame = read_text(&mut stream).await?;
                if frame.contains("confirm_subscription") {
                    return Ok(());
                }
                if frame.contains("reject_subscription") || frame.contains(r#""type":"disconnect""#)
                {
                    return Err(format!("refused: {frame}"));
                }
            }
        })
        .await;
        match confirmed {
            Ok(Ok(())) => break,
            Ok(Err(e)) => return Err(JoinError::Failed(e)),
            Err(_) => {
                shared.resubscribes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let reader = tokio::spawn(read_loop(index, stream, shared, results));
    Ok(Client {
        index,
        sink,
        reader,
    })
}

async fn read_loop(
    index: usize,
    mut stream: SplitStream<Ws>,
    shared: Arc<Shared>,
    results: mpsc::UnboundedSender<ResultMsg>,
) {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => {
                if let Some(d) = parse_delivery(text.as_str()) {
                    if d.result {
                        let _ = results.send((index, d.id, Instant::now()));
                    } else {
                        shared.deliver(index, d.id);
                    }
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    shared.disconnected.fetch_add(1, Ordering::Relaxed);
}

/// Connects and subscribes the clients; returns the ones confirmed.
pub(super) async fn join_all(
    opts: &ShootoutOptions,
    shared: &Arc<Shared>,
    results: &mpsc::UnboundedSender<ResultMsg>,
    deadline: Instant,
    report: &mut ShootoutReport,
) -> Result<Vec<Client>, Error> {
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let opts_arc = Arc::new(opts.clone());
    let mut tasks = Vec::with_capacity(opts.clients);
    for index in 0..opts.clients {
        let permits = permits.clone();
        let opts = opts_arc.clone();
        let shared = shared.clone();
        let results = results.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.ok()?;
            let joined = timeout(
                opts.connect_timeout,
                join_one(index, &opts, shared, results),
            )
            .await;
            Some(match joined {
                Ok(r) => r,
                Err(_) => Err(JoinError::Failed(format!(
                    "not connected and confirmed within {:?}",
                    opts.connect_timeout
                ))),
            })
        }));
    }
    let mut clients = Vec::with_capacity(opts.clients);
    let mut fatal = None;
    for task in tasks {
        let outcome = match timeout_at(deadline, task).await {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) | Ok(Err(_)) => Err(JoinError::Failed("task failed".into())),
            Err(_) => {
                report.timed_out = true;
                Err(JoinError::Failed("overall timeout".into()))
            }
        };
        match outcome {
            Ok(c) => clients.push(c),
            Err(JoinError::Fatal(e)) => {
                report.connect_failures += 1;
                fatal.get_or_insert(e);
            }
            Err(JoinError::Failed(e)) => {
                report.connect_failures += 1;
                report.first_connect_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = fatal {
        for c in clients {
            c.reader.abort();
        }
        return Err(Error::Live(e));
    }
    Ok(clients)
}
