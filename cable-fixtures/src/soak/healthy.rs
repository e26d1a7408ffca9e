//! The healthy clients: producers that `speak` numbered messages at a
//! steady rate and time their own round trip, and subscribers that check
//! every message by its number. Nothing may be lost, duplicated or
//! reordered for them, and none of them may be cut.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::tally::{parse_text, Tally};
use super::wire::{chat_identifier, speak, subscribe, Endpoint, Ws};

/// The room of the checked messages.
pub(crate) const SOAK_ROOM: &str = "soak";
/// The room of the firehose (large messages for the slow readers).
pub(crate) const FIREHOSE_ROOM: &str = "firehose";

/// Round trips up to a minute, in microseconds, 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What every task of a run shares.
pub(crate) struct Run {
    /// The faults run in `[faults_from, faults_until)`.
    pub(crate) faults_from: Instant,
    /// See `faults_from`.
    pub(crate) faults_until: Instant,
    /// Producers stop sending.
    pub(crate) end: Instant,
    /// Readers stop reading (after the drain).
    pub(crate) close: Instant,
    /// When each producer sent each message, by sequence number.
    pub(crate) send_times: Vec<Mutex<Vec<Instant>>>,
    /// Declared outages (a Redis restart until both nodes are back).
    pub(crate) outages: Mutex<Vec<(Instant, Instant)>>,
    /// Round trips of messages sent outside the faults window.
    pub(crate) rtt_quiet: Mutex<Histogram<u64>>,
    /// Round trips of messages sent inside it.
    pub(crate) rtt_faults: Mutex<Histogram<u64>>,
    /// Healthy clients that were cut or could not connect, and why.
    pub(crate) healthy_cut: Mutex<Vec<String>>,
    /// Firehose messages sent.
    pub(crate) firehose_sent: AtomicU64,
    /// Set when the server went away (no healthy client could reconnect).
    pub(crate) server_gone: AtomicBool,
    /// Every healthy client passes it once subscribed (or failed): the
    /// producers start sending only then, so nobody misses the first
    /// messages.
    pub(crate) subscribed: tokio::sync::Barrier,
}

impl Run {
    /// Whether `at` is inside the faults window.
    pub(crate) fn in_faults(&self, at: Instant) -> bool {
        at >= self.faults_from && at < self.faults_until
    }

    /// Whether message `seq` of `producer` was sent during an outage.
    pub(crate) fn in_outage(&self, producer: usize, seq: u64) -> bool {
        let Some(sent) = self
            .send_times
            .get(producer)
            .and_then(|t| t.lock().ok()?.get(seq as usize).copied())
        else {
            return false;
        };
        self.outages
            .lock()
            .map(|o| o.iter().any(|(from, to)| sent >= *from && sent <= *to))
            .unwrap_or(false)
    }

    /// Messages each producer sent.
    pub(crate) fn sent(&self) -> Vec<u64> {
        self.send_times
            .iter()
            .map(|t| t.lock().map_or(0, |t| t.len() as u64))
            .collect()
    }

    fn cut(&self, who: &str, why: impl std::fmt::Display) {
        if let Ok(mut cut) = self.healthy_cut.lock() {
            cut.push(format!("{who}: {why}"));
        }
    }
}

/// The text of a chat broadcast frame, if it is one.
fn message_text(frame: &str) -> Option<String> {
    let value: Value = serde_json::from_str(frame).ok()?;
    Some(value.get("message")?.get("text")?.as_str()?.to_owned())
}

/// Reads `stream` until `run.close`, tallying soak messages; `own` is the
/// producer number whose round trips this client times.
async fn read_tally<S>(stream: &mut S, run: &Run, who: &str, own: Option<usize>) -> Tally
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut tally = Tally::default();
    loop {
        let next = match timeout_at(run.close, stream.next()).await {
            Err(_) => return tally,
            Ok(next) => next,
        };
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                run.cut(who, format!("closed by the server: {frame:?}"));
                return tally;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                run.cut(who, e);
                return tally;
            }
            None => {
                run.cut(who, "the connection ended");
                return tally;
            }
        };
        if text.contains(r#""type":"disconnect""#) {
            run.cut(who, text.as_str());
            return tally;
        }
        let Some((producer, seq)) = message_text(&text).as_deref().and_then(parse_text) else {
            continue;
        };
        tally.record(producer, seq);
        if own == Some(producer) {
            record_round_trip(run, producer, seq);
        }
    }
}

/// Connects as `token` and subscribes to `room`; `None` (and the client
/// counted as cut) if it cannot.
async fn open(run: &Run, endpoint: &Endpoint, who: &str, token: &str, room: &str) -> Option<Ws> {
    let mut ws = match endpoint.connect(token, None).await {
        Ok(ws) => ws,
        Err(e) => {
            run.cut(who, format!("cannot connect: {e}"));
            run.server_gone.store(true, Ordering::Relaxed);
            return None;
        }
    };
    if let Err(e) = subscribe(&mut ws, &chat_identifier(room)).await {
        run.cut(who, format!("cannot subscribe: {e}"));
        return None;
    }
    Some(ws)
}

/// A subscriber of the soak room: its tally at the end.
pub(crate) async fn subscriber(run: &Run, endpoint: &Endpoint, index: usize) -> Tally {
    let who = format!("subscriber {index}");
    let opened = open(run, endpoint, &who, &format!("sub{index}"), SOAK_ROOM).await;
    run.subscribed.wait().await;
    let Some(mut ws) = opened else {
        return Tally::default();
    };
    let tally = read_tally(&mut ws, run, &who, None).await;
    let _ = ws.close(None).await;
    tally
}

/// Producer `index`: subscribes to the soak room, then sends `"<index>:<seq>"`
/// every `period` until `run.end`, timing its own messages' round trips.
pub(crate) async fn producer(
    run: &Run,
    endpoint: &Endpoint,
    index: usize,
    period: Duration,
) -> Tally {
    let who = format!("producer {index}");
    let opened = open(run, endpoint, &who, &format!("prod{index}"), SOAK_ROOM).await;
    run.subscribed.wait().await;
    let Some(ws) = opened else {
        return Tally::default();
    };
    let identifier = chat_identifier(SOAK_ROOM);
    let (mut sink, mut stream) = ws.split();
    let writer = async {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = Instant::now();
            if now >= run.end {
                return;
            }
            let seq = {
                let Ok(mut times) = run.send_times[index].lock() else {
                    return;
                };
                times.push(now);
                times.len() - 1
            };
            if let Err(e) = sink
                .send(speak(&identifier, &format!("{index}:{seq}")))
                .await
            {
                run.cut(&who, format!("send failed: {e}"));
                return;
            }
        }
    };
    let reader = read_tally(&mut stream, run, &who, Some(index));
    let ((), tally) = tokio::join!(writer, reader);
    if let Ok(mut ws) = sink.reunite(stream) {
        let _ = ws.close(None).await;
    }
    tally
}

/// The firehose: large `speak`s to its room during the faults, for the slow
/// readers to fall behind on (its own copies are read and dropped).
pub(crate) async fn firehose(run: &Run, endpoint: &Endpoint, bytes: usize, period: Duration) {
    let who = "firehose";
    tokio::time::sleep_until(run.faults_from).await;
    let mut ws = match endpoint.connect("firehose", None).await {
        Ok(ws) => ws,
        Err(e) => return run.cut(who, format!("cannot connect: {e}")),
    };
    let identifier = chat_identifier(FIREHOSE_ROOM);
    if let Err(e) = subscribe(&mut ws, &identifier).await {
        return run.cut(who, format!("cannot subscribe: {e}"));
    }
    let padding = "x".repeat(bytes);
    let (mut sink, mut stream) = ws.split();
    let writer = async {
        let mut ticks = tokio::time::interval(period);
        let mut seq = 0u64;
        loop {
            ticks.tick().await;
            if Instant::now() >= run.faults_until {
                return;
            }
            if let Err(e) = sink
                .send(speak(&identifier, &format!("0:{seq}:{padding}")))
                .await
            {
                return run.cut(who, format!("send failed: {e}"));
            }
            seq += 1;
            run.firehose_sent.fetch_add(1, Ordering::Relaxed);
        }
    };
    let reader = async {
        loop {
            match timeout_at(run.close, stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(text)))) if text.contains(r#""type":"disconnect""#) => {
                    return run.cut(who, text.as_str())
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {
                    return run.cut(who, "the connection ended")
                }
                Ok(Some(Err(e))) => return run.cut(who, e),
                Ok(Some(Ok(_))) => {}
            }
        }
    };
    tokio::join!(writer, reader);
}

fn record_round_trip(run: &Run, producer: usize, seq: u64) {
    let now = Instant::now();
    let sent = run.send_times[producer]
        .lock()
        .ok()
        .and_then(|t| t.get(seq as usize).copied());
    if let Some(sent) = sent {
        let micros = now.duration_since(sent).as_micros().max(1) as u64;
        let histogram = if run.in_faults(sent) {
            &run.rtt_faults
        } else {
            &run.rtt_quiet
        };
        if let Ok(mut h) = histogram.lock() {
            h.saturating_record(micros);
        }
    }
}
