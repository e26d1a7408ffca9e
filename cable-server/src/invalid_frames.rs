//! The bound on a connection's invalid frames: whatever the core refuses
//! (binary frames, frames that are not JSON objects, unknown commands,
//! commands for unknown subscriptions, frames over the size limit...) spends
//! from a token bucket; past it, the core task disconnects the connection
//! with `{"type":"disconnect","reason":"invalid_request","reconnect":false}`
//! (`reconnect: false`, so that a misbehaving client does not loop). A
//! BuddyBoss connection's refusals (its `{"type":"error"}` replies) spend from
//! the same bucket; past it, it gets BuddyBoss' error frame
//! `too many refused frames: disconnected`, then the close.

use std::time::Instant;

/// A token bucket of invalid frames: `per_sec` tokens, refilled at
/// `per_sec` a second.
#[derive(Debug)]
pub(crate) struct InvalidFrameBudget {
    per_sec: u32,
    /// Tokens left and when they were counted; `None` until the first
    /// invalid frame (a full bucket).
    state: Option<(f64, Instant)>,
}

impl InvalidFrameBudget {
    pub(crate) fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            state: None,
        }
    }

    /// Spends a token for one invalid frame; `false` when none is left.
    pub(crate) fn spend(&mut self, now: Instant) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        let rate = f64::from(self.per_sec);
        let tokens = match self.state {
            None => rate,
            Some((tokens, since)) => {
                (tokens + now.saturating_duration_since(since).as_secs_f64() * rate).min(rate)
            }
        };
        if tokens >= 1.0 {
            self.state = Some((tokens - 1.0, now));
            true
        } else {
            self.state = Some((tokens, now));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_of_the_rate_then_the_refill() {
        let start = Instant::now();
        let mut budget = InvalidFrameBudget::new(10);
        assert!((0..10).all(|_| budget.spend(start)));
        assert!(!budget.spend(start));
        // A tenth of a second refills one token.
        assert!(budget.spend(start + Duration::from_millis(100)));
        assert!(!budget.spend(start + Duration::from_millis(100)));
        // No bound at 0.
        let mut unbounded = InvalidFrameBudget::new(0);
        assert!((0..1000).all(|_| unbounded.spend(start)));
    }
}
