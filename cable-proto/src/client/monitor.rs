//! The liveness monitor and reconnect schedule of `@rails/actioncable`'s
//! `ConnectionMonitor`, with the clock and the randomness supplied by the host.

use std::time::{Duration, Instant};

use super::ConsumerConfig;

/// Where the reconnect schedule's jitter comes from: the host's randomness.
///
/// Each call gives a number in `[0, 1)`, the role `Math.random()` plays in the
/// JavaScript client; values outside that range (or NaN) are clamped into it.
/// A fixed source makes the schedule exact, which is what tests use.
pub trait JitterSource: Send {
    /// The next number in `[0, 1)`.
    fn next_unit(&mut self) -> f64;
}

impl<F: FnMut() -> f64 + Send> JitterSource for F {
    fn next_unit(&mut self) -> f64 {
        self()
    }
}

/// A small deterministic generator (SplitMix64) seeded by the host, for hosts
/// that have a seed but no random-number crate at hand.
#[derive(Debug, Clone)]
pub struct SeededJitter {
    state: u64,
}

impl SeededJitter {
    /// A generator starting from `seed` (the host's entropy).
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl JitterSource for SeededJitter {
    fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits: a float in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The interval before the monitor's next poll, as `getPollInterval()`
/// computes it: `stale_threshold × (1 + rate)^min(attempts, 10) × (1 +
/// jitter)`, where `jitter` is `unit` scaled to `[0, 1)` before any reconnect
/// attempt and to `[0, rate)` after, in whole milliseconds (rounded down).
pub fn poll_interval(config: &ConsumerConfig, attempts: u32, unit: f64) -> Duration {
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    let rate = if config.backoff_rate.is_finite() {
        config.backoff_rate.max(0.0)
    } else {
        0.0
    };
    let exponent = attempts.min(config.max_backoff_exponent);
    let backoff = (1.0 + rate).powi(i32::try_from(exponent).unwrap_or(i32::MAX));
    let jitter_max = if attempts == 0 { 1.0 } else { rate };
    let millis =
        config.stale_threshold.as_secs_f64() * 1000.0 * backoff * (1.0 + jitter_max * unit);
    // Rounded down to whole milliseconds, as timers take them; a nonsensical
    // configuration gives a capped interval rather than a panic.
    let millis = if millis.is_finite() {
        millis.clamp(1.0, 1e12).floor()
    } else {
        1e12
    };
    Duration::from_millis(millis as u64)
}

/// The monitor's state: `ConnectionMonitor`'s fields.
#[derive(Debug, Default)]
pub(super) struct Monitor {
    pub(super) running: bool,
    pub(super) started_at: Option<Instant>,
    pub(super) pinged_at: Option<Instant>,
    pub(super) disconnected_at: Option<Instant>,
    pub(super) attempts: u32,
    pub(super) next_poll: Option<Instant>,
}

impl Monitor {
    /// `start()`: a no-op while running.
    pub(super) fn start(&mut self, now: Instant, interval: impl FnOnce(u32) -> Duration) {
        if self.running {
            return;
        }
        self.running = true;
        self.started_at = Some(now);
        self.next_poll = Some(now + interval(self.attempts));
    }

    /// `stop()`.
    pub(super) fn stop(&mut self) {
        self.running = false;
        self.next_poll = None;
    }

    /// `recordConnect()`: a welcome.
    pub(super) fn record_connect(&mut self) {
        self.attempts = 0;
        self.disconnected_at = None;
    }

    /// `connectionIsStale()`: no frame for more than the threshold.
    pub(super) fn is_stale(&self, now: Instant, threshold: Duration) -> bool {
        match self.pinged_at.or(self.started_at) {
            Some(at) => now.saturating_duration_since(at) > threshold,
            None => false,
        }
    }

    /// `disconnectedRecently()`: closed less than the threshold ago.
    pub(super) fn disconnected_recently(&self, now: Instant, threshold: Duration) -> bool {
        self.disconnected_at
            .is_some_and(|at| now.saturating_duration_since(at) < threshold)
    }
}
