//! The faulty clients, active during the faults window: connection churn
//! (clean closes and TCP resets), slow readers that stop reading, and
//! clients that send garbage, binary frames, oversized frames, floods of
//! commands, or bytes that are not WebSocket frames at all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::healthy::{Run, FIREHOSE_ROOM, SOAK_ROOM};
use super::wire::{chat_identifier, reset, subscribe, Endpoint, Ws};
use crate::shootout::Prng;

/// What the faulty clients did.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Churn connections opened and subscribed.
    pub churn_connections: AtomicU64,
    /// Of them, ended with a TCP reset.
    pub churn_resets: AtomicU64,
    /// Faulty connections that could not open (the server refused or was
    /// busy).
    pub connect_failures: AtomicU64,
    /// Slow readers that stalled.
    pub slow_readers: AtomicU64,
    /// Of them, cut by the server.
    pub slow_cut: AtomicU64,
    /// Of those, with a `too_slow` disconnect frame seen.
    pub slow_cut_too_slow: AtomicU64,
    /// Garbage sessions run.
    pub garbage_sessions: AtomicU64,
    /// Frames that were not valid commands (bad JSON, unknown commands).
    pub garbage_frames: AtomicU64,
    /// Binary frames.
    pub binary_frames: AtomicU64,
    /// Frames over the server's frame limit.
    pub oversized_frames: AtomicU64,
    /// Floods of commands.
    pub floods: AtomicU64,
    /// Connections that wrote bytes that are not WebSocket frames.
    pub raw_garbage: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads and drops frames until `until` or until the connection ends;
/// whether it ended, and whether a `too_slow` disconnect arrived.
async fn drain(ws: &mut Ws, until: Instant) -> (bool, bool) {
    let mut too_slow = false;
    loop {
        match timeout_at(until, ws.next()).await {
            Err(_) => return (false, too_slow),
            Ok(Some(Ok(Message::Text(text)))) => {
                too_slow |= text.contains(r#""reason":"too_slow""#);
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                return (true, too_slow)
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Churn client `index`: connect, subscribe to the soak room, read a
/// little, then leave with a close or a TCP reset; again until the faults
/// end.
pub(crate) async fn churner(run: &Run, endpoints: &[Endpoint], index: usize, counts: &FaultCounts) {
    let mut prng = Prng::new(0xc4a2 + index as u64);
    sleep_until_faults(run).await;
    let identifier = chat_identifier(SOAK_ROOM);
    let mut round = 0usize;
    while Instant::now() < run.faults_until {
        round += 1;
        let endpoint = &endpoints[(index + round) % endpoints.len()];
        let mut ws = match endpoint.connect(&format!("churn{index}"), None).await {
            Ok(ws) => ws,
            Err(_) => {
                bump(&counts.connect_failures);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if subscribe(&mut ws, &identifier).await.is_err() {
            bump(&counts.connect_failures);
            continue;
        }
        bump(&counts.churn_connections);
        let stay = Duration::from_millis(50 + prng.below(450) as u64);
        let _ = drain(&mut ws, Instant::now() + stay).await;
        if prng.below(2) == 0 {
            bump(&counts.churn_resets);
            reset(ws);
        } else {
            let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
        }
    }
}

/// Slow reader `index`: a 4 KiB receive buffer, subscribed to the
/// firehose, stops reading for `stall`; then reads to see whether the
/// server cut it. Again while there is time for a whole stall.
pub(crate) async fn slow_reader(
    run: &Run,
    endpoints: &[Endpoint],
    index: usize,
    stall: Duration,
    counts: &FaultCounts,
) {
    sleep_until_faults(run).await;
    let identifier = chat_identifier(FIREHOSE_ROOM);
    let mut round = 0usize;
    while Instant::now() + stall < run.faults_until {
        round += 1;
        let endpoint = &endpoints[(index + round) % endpoints.len()];
        let mut ws = match endpoint.connect(&format!("slow{index}"), Some(4096)).await {
            Ok(ws) => ws,
            Err(_) => {
                bump(&counts.connect_failures);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if subscribe(&mut ws, &identifier).await.is_err() {
            bump(&counts.connect_failures);
            continue;
        }
        bump(&counts.slow_readers);
        sleep(stall).await;
        let (ended, too_slow) = drain(&mut ws, Instant::now() + Duration::from_secs(5)).await;
        if ended {
            bump(&counts.slow_cut);
            if too_slow {
                bump(&counts.slow_cut_too_slow);
            }
        } else {
            let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
        }
    }
}

/// Garbage client `index`: sessions of one misbehaviour each, until the
/// faults end.
pub(crate) async fn garbage(
    run: &Run,
    endpoints: &[Endpoint],
    index: usize,
    oversized: usize,
    counts: &FaultCounts,
) {
    let mut prng = Prng::new(0x9a7b + index as u64);
    sleep_until_faults(run).await;
    let mut round = 0usize;
    while Instant::now() < run.faults_until {
        round += 1;
        let endpoint = &endpoints[(index + round) % endpoints.len()];
        bump(&counts.garbage_sessions);
        let kind = prng.below(6);
        if kind == 5 {
            raw_garbage(endpoint, &mut prng, counts).await;
            continue;
        }
        let mut ws = match endpoint.connect(&format!("garbage{index}"), None).await {
            Ok(ws) => ws,
            Err(_) => {
                bump(&counts.connect_failures);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let frames: Vec<Message> = match kind {
            0 => {
                bump(&counts.garbage_frames);
                vec![
                    Message::text("{not json"),
                    Message::text("[]"),
                    Message::text("null"),
                ]
            }
            1 => {
                bump(&counts.garbage_frames);
                vec![
                    Message::text(r#"{"command":"dance","identifier":"{}"}"#),
                    Message::text(
                        r#"{"command":"message","identifier":"{\"channel\":\"Nope\"}","data":"{}"}"#,
                    ),
                    Message::text(r#"{"command":"subscribe"}"#),
                ]
            }
            2 => {
                bump(&counts.binary_frames);
                vec![Message::binary(random_bytes(&mut prng, 1024))]
            }
            3 => {
                bump(&counts.oversized_frames);
                vec![Message::text(format!(
                    r#"{{"command":"message","identifier":"x","data":"{}"}}"#,
                    "y".repeat(oversized)
                ))]
            }
            _ => {
                bump(&counts.floods);
                let frame = r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"none\"}","data":"{\"action\":\"speak\",\"text\":\"flood\"}"}"#;
                (0..500).map(|_| Message::text(frame)).collect()
            }
        };
        let send = async {
            for frame in frames {
                ws.feed(frame).await?;
            }
            ws.flush().await
        };
        let _ = timeout(Duration::from_secs(5), send).await;
        let _ = drain(&mut ws, Instant::now() + Duration::from_millis(300)).await;
        let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
    }
}

/// Upgrades, then writes bytes that are not a WebSocket frame, and waits for
/// the server to close.
async fn raw_garbage(endpoint: &Endpoint, prng: &mut Prng, counts: &FaultCounts) {
    let Ok(mut stream) = endpoint.raw_upgrade().await else {
        bump(&counts.connect_failures);
        return;
    };
    bump(&counts.raw_garbage);
    let _ = stream.write_all(&random_bytes(prng, 4096)).await;
    let mut sink = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(n)) = timeout_at(until, stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}

fn random_bytes(prng: &mut Prng, len: usize) -> Vec<u8> {
    (0..len).map(|_| prng.next_u64() as u8).collect()
}

async fn sleep_until_faults(run: &Run) {
    tokio::time::sleep_until(run.faults_from).await;
}
