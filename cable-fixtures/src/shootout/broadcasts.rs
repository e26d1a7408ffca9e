//! The broadcast rounds: senders picked by the seeded [`Prng`], `concurrent` broadcasts in
//! flight, round trips timed at the sender, then the drain of outstanding deliveries
//! ([`broadcast_phase`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::clients::{Client, ResultMsg, Shared};
use super::{broadcast_frame, Latency, ShootoutOptions, ShootoutReport};

/// A small deterministic PRNG (SplitMix64): the same seed picks the same senders.
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// What one round of broadcasts measured.
#[derive(Default)]
struct Round {
    rtts: Vec<f64>,
    sent: usize,
    send_errors: usize,
    lost: usize,
    timed_out: bool,
    first_send: Option<Instant>,
}

/// Sends the broadcasts `ids`, `opts.concurrent` in flight, and collects their results.
async fn round(
    opts: &ShootoutOptions,
    clients: &mut [Client],
    prng: &mut Prng,
    results_rx: &mut mpsc::UnboundedReceiver<ResultMsg>,
    ids: std::ops::Range<u64>,
    deadline: Instant,
) -> Round {
    let mut out = Round {
        rtts: Vec::with_capacity(ids.clone().count()),
        ..Round::default()
    };
    let concurrent = opts.concurrent.max(1);
    // id -> (sender, sent at)
    let mut pending: BTreeMap<u64, (usize, Instant)> = BTreeMap::new();
    let mut next_id = ids.start;
    'run: while next_id < ids.end || !pending.is_empty() {
        while pending.len() < concurrent && next_id < ids.end {
            let id = next_id;
            next_id += 1;
            let client = &mut clients[prng.below(clients.len())];
            let send_time_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let frame = broadcast_frame(id, send_time_ns, opts.payload_padding);
            let sent_at = Instant::now();
            out.first_send.get_or_insert(sent_at);
            match timeout(
                Duration::from_secs(5),
                client.sink.send(Message::text(frame)),
            )
            .await
            {
                Ok(Ok(())) => {
                    out.sent += 1;
                    pending.insert(id, (client.index, sent_at));
                }
                _ => out.send_errors += 1,
            }
        }
        if pending.is_empty() {
            continue;
        }
        let oldest = pending
            .values()
            .map(|&(_, at)| at)
            .min()
            .unwrap_or(deadline);
        let wake = (oldest + opts.sample_timeout).min(deadline);
        tokio::select! {
            got = results_rx.recv() => {
                let Some((sender, id, at)) = got else { break 'run };
                if pending.get(&id).is_some_and(|&(expected, _)| expected == sender) {
                    if let Some((_, sent_at)) = pending.remove(&id) {
                        out.rtts.push(at.duration_since(sent_at).as_secs_f64() * 1000.0);
                    }
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    out.timed_out = true;
                    break 'run;
                }
                let now = Instant::now();
                let before = pending.len();
                pending.retain(|_, &mut (_, at)| now.duration_since(at) < opts.sample_timeout);
                out.lost += before - pending.len();
            }
        }
    }
    out.lost += pending.len();
    out
}

/// Waits until `counter` reaches `target` or `until`; whether it did.
async fn drain(counter: &AtomicU64, target: u64, until: Instant) -> bool {
    loop {
        if counter.load(Ordering::Relaxed) >= target {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(super) async fn broadcast_phase(
    opts: &ShootoutOptions,
    clients: &mut [Client],
    shared: &Shared,
    results_rx: &mut mpsc::UnboundedReceiver<ResultMsg>,
    deadline: Instant,
    report: &mut ShootoutReport,
) {
    let mut prng = Prng::new(opts.seed);
    let k = opts.samples as u64;
    let receivers = clients.len() as u64;
    if opts.warmup > 0 {
        // Ids after the measured ones: their deliveries are counted apart.
        let warm = round(
            opts,
            clients,
            &mut prng,
            results_rx,
            k..k + opts.warmup as u64,
            deadline,
        )
        .await;
        let until = (Instant::now() + opts.drain).min(deadline);
        drain(
            &shared.warmup_deliveries,
            warm.sent as u64 * receivers,
            until,
        )
        .await;
        if warm.timed_out {
            report.timed_out = true;
            return;
        }
    }
    let measured = round(opts, clients, &mut prng, results_rx, 0..k, deadline).await;
    report.timed_out |= measured.timed_out;
    report.sent = measured.sent;
    report.send_errors = measured.send_errors;
    report.lost_results = measured.lost;
    report.results = measured.rtts.len();
    report.rtt_ms = Latency::of(&measured.rtts);

    report.expected_deliveries = report.sent as u64 * receivers;
    let until = (Instant::now() + opts.drain).min(deadline);
    let complete = drain(&shared.deliveries, report.expected_deliveries, until).await;
    if !complete && Instant::now() >= deadline {
        report.timed_out = true;
    }
    report.deliveries = shared.deliveries.load(Ordering::Relaxed);
    report.duplicates = shared.duplicates.load(Ordering::Relaxed);
    report.missing = report.expected_deliveries.saturating_sub(report.deliveries);
    if let Some(first) = measured.first_send {
        let last =
            shared.t0 + Duration::from_nanos(shared.last_delivery_ns.load(Ordering::Relaxed));
        let span = last.saturating_duration_since(first).as_secs_f64();
        report.broadcast_ms = span * 1000.0;
        if span > 0.0 {
            report.deliveries_per_s = Some(report.deliveries as f64 / span);
        }
    }
}
