//! Jac sockets' keepalive, as Jac Cloud's server (uvicorn with the
//! `websockets` legacy implementation) runs it for each connection: sleep
//! the interval, send a ping with 4 random bytes, wait up to the timeout for
//! the pong carrying them, and start over from the pong; without it, close
//! with 1011 `keepalive ping timeout` (recorded:
//! `cable-fixtures/transcripts/jac/keepalive/`).
//!
//! The state machine is IO-free (every call takes `now`); the connection's
//! reader drives it.

use std::time::{Duration, Instant};

/// The close code when no pong came in time (`websockets`: 1011).
pub(crate) const TIMEOUT_CODE: u16 = 1011;
/// The close reason when no pong came in time.
pub(crate) const TIMEOUT_REASON: &str = "keepalive ping timeout";

/// How a Jac socket is kept alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeepaliveTimes {
    /// Time between a pong (or the open) and the next ping.
    pub(crate) interval: Duration,
    /// How long a pong may take (none: pings are never answered for).
    pub(crate) timeout: Option<Duration>,
}

/// What is due when the keepalive's deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepaliveStep {
    /// Send a ping with this payload.
    Ping([u8; 4]),
    /// No pong in time: close with [`TIMEOUT_CODE`].
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next ping is due then.
    Sleeping(Instant),
    /// A ping with this payload waits for its pong until then.
    Waiting([u8; 4], Instant),
}

/// One socket's keepalive.
#[derive(Debug)]
pub(crate) struct Keepalive {
    times: KeepaliveTimes,
    state: State,
}

impl Keepalive {
    /// The keepalive of a socket opened at `now`.
    pub(crate) fn new(times: KeepaliveTimes, now: Instant) -> Self {
        Self {
            times,
            state: State::Sleeping(now + times.interval),
        }
    }

    /// When to look again.
    pub(crate) fn deadline(&self) -> Instant {
        match self.state {
            State::Sleeping(at) | State::Waiting(_, at) => at,
        }
    }

    /// The deadline passed: what is due, if anything yet; a ping's payload
    /// comes from `entropy`.
    pub(crate) fn step(
        &mut self,
        now: Instant,
        entropy: impl FnOnce() -> [u8; 4],
    ) -> Option<KeepaliveStep> {
        match self.state {
            State::Sleeping(at) if now >= at => {
                let payload = entropy();
                self.state = match self.times.timeout {
                    Some(timeout) => State::Waiting(payload, now + timeout),
                    None => State::Sleeping(now + self.times.interval),
                };
                Some(KeepaliveStep::Ping(payload))
            }
            State::Waiting(_, at) if now >= at => Some(KeepaliveStep::TimedOut),
            _ => None,
        }
    }

    /// A pong with `payload` arrived: the one awaited starts the next
    /// interval; any other is ignored (as `websockets` ignores an
    /// unsolicited pong).
    pub(crate) fn pong(&mut self, payload: &[u8], now: Instant) {
        if let State::Waiting(awaited, _) = self.state {
            if payload == awaited {
                self.state = State::Sleeping(now + self.times.interval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn times(timeout: Option<u32>) -> KeepaliveTimes {
        KeepaliveTimes {
            interval: 20 * S,
            timeout: timeout.map(|t| t * S),
        }
    }

    #[test]
    fn pings_after_the_interval_and_times_out_without_its_pong() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(times(Some(20)), t0);
        assert_eq!(k.deadline(), t0 + 20 * S);
        assert_eq!(k.step(t0 + 19 * S, || [1; 4]), None);
        assert_eq!(
            k.step(t0 + 20 * S, || [1, 2, 3, 4]),
            Some(KeepaliveStep::Ping([1, 2, 3, 4]))
        );
        assert_eq!(k.deadline(), t0 + 40 * S);
        // A pong with another payload does not count.
        k.pong(&[9, 9, 9, 9], t0 + 21 * S);
        assert_eq!(k.step(t0 + 39 * S, || [0; 4]), None);
        assert_eq!(
            k.step(t0 + 40 * S, || [0; 4]),
            Some(KeepaliveStep::TimedOut)
        );
    }

    #[test]
    fn the_pong_starts_the_next_interval() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(times(Some(20)), t0);
        assert!(k.step(t0 + 20 * S, || [7; 4]).is_some());
        k.pong(&[7; 4], t0 + 25 * S);
        assert_eq!(k.deadline(), t0 + 45 * S);
        assert_eq!(k.step(t0 + 41 * S, || [0; 4]), None);
        assert_eq!(
            k.step(t0 + 45 * S, || [8; 4]),
            Some(KeepaliveStep::Ping([8; 4]))
        );
    }

    #[test]
    fn without_a_timeout_pings_go_on_unanswered() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(times(None), t0);
        for n in 1..=3u8 {
            assert_eq!(
                k.step(t0 + u32::from(n) * 20 * S, || [n; 4]),
                Some(KeepaliveStep::Ping([n; 4]))
            );
        }
        assert_eq!(k.deadline(), t0 + 80 * S);
    }
}
