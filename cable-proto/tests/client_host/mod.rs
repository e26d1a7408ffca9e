//! A host for the consumer in virtual time: a clock that only moves when the
//! test says so, a fixed jitter source, and drains of what came out.

// The tests' one clock read (the start); the consumer never reads one.
#![allow(dead_code, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use cable_proto::client::{Consumer, ConsumerConfig, Event};

/// The consumer under test and its virtual clock.
pub struct Host {
    pub consumer: Consumer,
    pub t0: Instant,
    pub now: Instant,
}

impl Host {
    /// A consumer whose jitter source always answers `unit`.
    pub fn new(unit: f64) -> Self {
        let t0 = Instant::now();
        Self {
            consumer: Consumer::new(ConsumerConfig::default(), move || unit, t0),
            t0,
            now: t0,
        }
    }

    /// Milliseconds since the start.
    pub fn at_ms(&self) -> u128 {
        (self.now - self.t0).as_millis()
    }

    /// Moves the clock to `ms` after the start, firing every deadline on the
    /// way at its exact time, as a prompt host does.
    pub fn advance_to(&mut self, ms: u64) {
        let target = self.t0 + Duration::from_millis(ms);
        while let Some(at) = self.consumer.poll_timeout() {
            if at > target {
                break;
            }
            self.now = at.max(self.now);
            self.consumer.handle_timeout(self.now);
        }
        self.now = target;
        self.consumer.handle_timeout(self.now);
    }

    /// A text frame from the server, now.
    pub fn frame(&mut self, text: &str) {
        self.consumer
            .handle_text(text.as_bytes(), self.now)
            .expect("a valid server frame");
    }

    pub fn transmits(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.consumer.poll_transmit()).collect()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.consumer.poll_event()).collect()
    }

    /// Connect, open with the JS client's subprotocol, welcome.
    pub fn welcomed(&mut self) {
        self.consumer.connect(self.now);
        self.consumer
            .handle_open(Some("actioncable-v1-json"), self.now);
        self.frame(r#"{"type":"welcome"}"#);
    }

    /// Drives the host's part until the next `Event::Connect`, returning the
    /// virtual time (ms) at which it came, or `None` before `limit_ms`.
    pub fn next_connect(&mut self, limit_ms: u64) -> Option<u128> {
        loop {
            if self.events().contains(&Event::Connect) {
                return Some(self.at_ms());
            }
            let at = self.consumer.poll_timeout()?;
            if at > self.t0 + Duration::from_millis(limit_ms) {
                return None;
            }
            self.now = at.max(self.now);
            self.consumer.handle_timeout(self.now);
        }
    }
}
