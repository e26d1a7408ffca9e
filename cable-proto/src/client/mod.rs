//! The client side: a consumer state machine that behaves like
//! `@rails/actioncable`'s `Consumer`, IO-free like [`crate::server`].
//!
//! The host owns the socket, the clock and the randomness; the consumer owns
//! the protocol: which subscriptions exist, when `subscribe` is (re)sent, when
//! the connection is stale, when to reconnect, when to stop. Every call that
//! can change state takes `now`; [`Consumer::poll_timeout`] says when to call
//! [`Consumer::handle_timeout`]; frames to write come out of
//! [`Consumer::poll_transmit`], instructions and subscription events out of
//! [`Consumer::poll_event`].
//!
//! What it does, as `@rails/actioncable` 8.1 does (`connection.js`,
//! `connection_monitor.js`, `subscriptions.js`, `subscription_guarantor.js`):
//! - identifiers are the caller's JSON text, as `JSON.stringify(params)`
//!   builds them (the caller's key order) and frames are matched on it;
//! - `subscribe` is re-sent every 500 ms until confirmed or rejected (the
//!   guarantor's timer, restarted by every new subscribe), and every
//!   subscription is re-sent after each welcome;
//! - `perform(action, data)` sends `data` as a JSON string with `action`
//!   added last (replacing the value in place when `data` has one);
//!   `unsubscribe` is sent only when no other local subscription shares the
//!   identifier; frames for unknown identifiers are ignored;
//! - any frame is a sign of life; the monitor polls every `6 s ×
//!   1.15^min(attempts, 10) × (1 + jitter)` (jitter in `[0, 1)` before a
//!   reconnect attempt, `[0, 0.15)` after), and a poll that finds no frame for
//!   more than 6 s counts an attempt and reopens the connection (closing the
//!   old socket and opening 500 ms later), unless the socket closed less than
//!   6 s ago;
//! - a disconnect frame without `reconnect: true` stops the monitor; a socket
//!   that opens without the `actioncable-v1-json` subprotocol is closed and
//!   the consumer stops.
//!
//! Where it differs, on purpose:
//! - `subscribe` is sent once welcomed, never earlier (the JS client sends it
//!   as soon as the socket is open, then again after the welcome);
//! - `connected` comes once per subscription and connection, and
//!   `reconnected` is per subscription (it was confirmed on an earlier
//!   connection); the JS client marks only the first confirmation after a
//!   reconnect;
//! - `token_expired` (cable-server, AnyCable) is a pending decision for the
//!   host: [`Event::TokenExpired`] asks for a fresh credential, and the
//!   consumer reconnects as soon as the host answers
//!   [`Consumer::credential_refreshed`] (or stops on
//!   [`Consumer::credential_unavailable`], or when
//!   [`ConsumerConfig::credential_timeout`] passes without an answer);
//! - frames of unknown types are ignored rather than passed to
//!   `received(undefined)`;
//! - a connect still pending at a stale poll is abandoned ([`Event::Close`])
//!   and another one made after the reopen delay (the JS client leaves a
//!   connecting socket to the browser's own timeout).
//!
//! ## A run loop
//!
//! A host plays both sides in memory: cable-proto's consumer against
//! cable-proto's server. The consumer connects, subscribes, performs,
//! receives the broadcast it caused; then the server's frames stop reaching
//! it, and it reopens the connection on its own schedule.
//!
//! ```
#![doc = include_str!("../../examples/consumer_loop.rs")]
//! ```

mod events;
mod monitor;
mod registry;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub use events::{Event, PerformError, StopReason, SubscribeError, SubscriptionKey};
pub use monitor::{poll_interval, JitterSource, SeededJitter};

use crate::command::Command;
use crate::frame::{parse_server_frame, DisconnectReason, ServerFrame, ServerFrameError};
use monitor::Monitor;
use registry::Registry;

/// The subprotocol the consumer speaks.
pub const SUBPROTOCOL: &str = "actioncable-v1-json";
/// The subprotocol `@rails/actioncable` offers last so that an old server
/// that knows none of the offered ones can be told apart; never accepted.
pub const UNSUPPORTED_SUBPROTOCOL: &str = "actioncable-unsupported";

/// The consumer's timings and limits; the defaults are the JS client's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// No frame for longer than this is a stale connection
    /// (`ConnectionMonitor.staleThreshold`, 6 s: two missed pings).
    pub stale_threshold: Duration,
    /// The backoff rate (`reconnectionBackoffRate`, 0.15).
    pub backoff_rate: f64,
    /// The attempts counted in the backoff at most (10).
    pub max_backoff_exponent: u32,
    /// Between closing a stale socket and opening the next one
    /// (`Connection.reopenDelay`, 500 ms).
    pub reopen_delay: Duration,
    /// Between re-sends of an unconfirmed `subscribe` (the guarantor, 500 ms;
    /// at least 1 ms).
    pub resubscribe_interval: Duration,
    /// How long the host has to answer [`Event::TokenExpired`] (30 s); then
    /// the consumer stops with [`StopReason::CredentialTimeout`].
    pub credential_timeout: Duration,
    /// Subprotocols offered after the two of the JS client (its
    /// `consumer.subprotocols`).
    pub extra_subprotocols: Vec<String>,
    /// The longest identifier [`Consumer::subscribe`] takes (64 KiB).
    pub max_identifier_len: usize,
    /// The most local subscriptions (10 000).
    pub max_subscriptions: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            stale_threshold: Duration::from_secs(6),
            backoff_rate: 0.15,
            max_backoff_exponent: 10,
            reopen_delay: Duration::from_millis(500),
            resubscribe_interval: Duration::from_millis(500),
            credential_timeout: Duration::from_secs(30),
            extra_subprotocols: Vec::new(),
            max_identifier_len: 64 * 1024,
            max_subscriptions: 10_000,
        }
    }
}

/// The socket as the consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    /// No socket.
    Closed,
    /// [`Event::Connect`] was emitted; waiting for the host's
    /// [`Consumer::handle_open`] or [`Consumer::handle_close`].
    Connecting,
    /// Open, no welcome yet.
    Open,
    /// Welcomed: commands go out.
    Welcomed,
}

/// A consumer: `@rails/actioncable`'s `createConsumer()` without the socket.
pub struct Consumer {
    config: ConsumerConfig,
    jitter: Box<dyn JitterSource>,
    socket: SocketState,
    /// The JS connection's `disconnected` flag (true until the first open).
    disconnected: bool,
    monitor: Monitor,
    registry: Registry,
    guarantor_at: Option<Instant>,
    reopen_at: Option<Instant>,
    credential_deadline: Option<Instant>,
    transmits: VecDeque<String>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("socket", &self.socket)
            .field("subscriptions", &self.registry.len())
            .field("reconnect_attempts", &self.monitor.attempts)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer with no subscriptions and no socket; nothing happens until
    /// [`Consumer::connect`] or [`Consumer::subscribe`].
    pub fn new(config: ConsumerConfig, jitter: impl JitterSource + 'static, now: Instant) -> Self {
        let _ = now;
        Self {
            config,
            jitter: Box::new(jitter),
            socket: SocketState::Closed,
            disconnected: true,
            monitor: Monitor::default(),
            registry: Registry::default(),
            guarantor_at: None,
            reopen_at: None,
            credential_deadline: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The subprotocols to offer, in order: `actioncable-v1-json`,
    /// `actioncable-unsupported`, then [`ConsumerConfig::extra_subprotocols`].
    pub fn subprotocols(&self) -> Vec<String> {
        let mut offered = vec![SUBPROTOCOL.to_owned(), UNSUPPORTED_SUBPROTOCOL.to_owned()];
        offered.extend(self.config.extra_subprotocols.iter().cloned());
        offered
    }

    /// The socket's state.
    pub fn socket_state(&self) -> SocketState {
        self.socket
    }

    /// Whether the monitor runs (the consumer reconnects by itself).
    pub fn is_running(&self) -> bool {
        self.monitor.running
    }

    /// The monitor's count of reconnect attempts since the last welcome.
    pub fn reconnect_attempts(&self) -> u32 {
        self.monitor.attempts
    }

    /// Whether an [`Event::TokenExpired`] awaits the host's answer.
    pub fn awaiting_credential(&self) -> bool {
        self.credential_deadline.is_some()
    }

    /// A subscription's identifier.
    pub fn identifier(&self, key: SubscriptionKey) -> Option<&str> {
        self.registry.get(key).map(|e| e.identifier.as_str())
    }

    /// Whether a subscription is confirmed on the current connection.
    pub fn is_confirmed(&self, key: SubscriptionKey) -> bool {
        self.registry.get(key).is_some_and(|e| e.confirmed)
    }

    /// Opens the connection (`consumer.connect()`): [`Event::Connect`] unless
    /// a socket is open or opening, or a credential is awaited. Starts the
    /// monitor. Returns whether a connect was asked for.
    pub fn connect(&mut self, now: Instant) -> bool {
        self.handle_timeout(now);
        if self.credential_deadline.is_some() {
            return false;
        }
        self.open(now)
    }

    /// Closes the connection for good (`consumer.disconnect()`): stops the
    /// monitor, closes the socket, [`Event::Stopped`].
    pub fn disconnect(&mut self, now: Instant) {
        self.handle_timeout(now);
        self.stop(StopReason::Requested, now);
    }

    /// Adds a subscription (`consumer.subscriptions.create(params)`), its
    /// identifier the JSON text of the params object, and opens the
    /// connection when there is none (`ensureActiveConnection`). `subscribe`
    /// goes out at once when welcomed, else after the next welcome.
    pub fn subscribe(
        &mut self,
        identifier: &str,
        now: Instant,
    ) -> Result<SubscriptionKey, SubscribeError> {
        self.handle_timeout(now);
        if identifier.len() > self.config.max_identifier_len {
            return Err(SubscribeError::TooLong {
                len: identifier.len(),
                max: self.config.max_identifier_len,
            });
        }
        if self.registry.len() >= self.config.max_subscriptions {
            return Err(SubscribeError::TooMany(self.config.max_subscriptions));
        }
        if serde_json::from_str::<Map<String, Value>>(identifier).is_err() {
            return Err(SubscribeError::NotAnObject);
        }
        let key = self.registry.add(identifier.to_owned());
        if self.credential_deadline.is_none() {
            self.open(now);
        }
        if self.socket == SocketState::Welcomed {
            self.send_subscribe(key, now);
        }
        Ok(key)
    }

    /// Removes a subscription (`subscription.unsubscribe()`); `unsubscribe`
    /// goes out only when welcomed and no other local subscription shares
    /// the identifier. Returns whether the key was known.
    pub fn unsubscribe(&mut self, key: SubscriptionKey, now: Instant) -> bool {
        self.handle_timeout(now);
        let Some((identifier, shared)) = self.registry.remove(key) else {
            return false;
        };
        if !shared && self.socket == SocketState::Welcomed {
            self.transmits.push_back(
                Command::Unsubscribe {
                    identifier: identifier.into(),
                }
                .encode(),
            );
        }
        true
    }

    /// `subscription.perform(action, data)`: `data` with `action` set (added
    /// last, or replacing an `action` in place, as `data.action = action`
    /// does), sent as a `message` command.
    pub fn perform(
        &mut self,
        key: SubscriptionKey,
        action: &str,
        data: &Map<String, Value>,
        now: Instant,
    ) -> Result<(), PerformError> {
        let mut data = data.clone();
        data.insert("action".to_owned(), Value::String(action.to_owned()));
        self.send(key, &data, now)
    }

    /// `subscription.send(data)`: a `message` command with `data` as its
    /// JSON string, keys in their order.
    pub fn send(
        &mut self,
        key: SubscriptionKey,
        data: &Map<String, Value>,
        now: Instant,
    ) -> Result<(), PerformError> {
        self.handle_timeout(now);
        let identifier = self
            .registry
            .get(key)
            .ok_or(PerformError::UnknownSubscription)?
            .identifier
            .clone();
        if self.socket != SocketState::Welcomed {
            return Err(PerformError::NotConnected);
        }
        let data = serde_json::to_string(data).unwrap_or_default();
        self.transmits.push_back(
            Command::Message {
                identifier: identifier.into(),
                data: data.into(),
            }
            .encode(),
        );
        Ok(())
    }

    /// The socket the host opened for [`Event::Connect`] is open, with the
    /// subprotocol the server chose. Without `actioncable-v1-json` the socket
    /// is closed and the consumer stops ([`StopReason::UnsupportedProtocol`]).
    pub fn handle_open(&mut self, subprotocol: Option<&str>, now: Instant) {
        self.handle_timeout(now);
        if self.socket != SocketState::Connecting {
            return;
        }
        self.socket = SocketState::Open;
        self.disconnected = false;
        if subprotocol != Some(SUBPROTOCOL) {
            self.stop(
                StopReason::UnsupportedProtocol {
                    subprotocol: subprotocol.map(str::to_owned),
                },
                now,
            );
        }
    }

    /// A text frame from the server. A frame that does not parse changes
    /// nothing (it is not a sign of life) and gives its error.
    pub fn handle_text(&mut self, frame: &[u8], now: Instant) -> Result<(), ServerFrameError> {
        self.handle_timeout(now);
        if !matches!(self.socket, SocketState::Open | SocketState::Welcomed) {
            return Ok(());
        }
        let frame = parse_server_frame(frame)?;
        self.monitor.pinged_at = Some(now);
        match frame {
            ServerFrame::Welcome(welcome) => {
                self.socket = SocketState::Welcomed;
                self.monitor.record_connect();
                self.events.push_back(Event::Welcomed {
                    sid: welcome.sid.map(|s| s.into_owned()),
                });
                for key in self.registry.keys() {
                    self.send_subscribe(key, now);
                }
            }
            ServerFrame::Ping { .. } => {}
            ServerFrame::Disconnect { reason, reconnect } => {
                self.events.push_back(Event::ServerDisconnect {
                    reason: reason.clone(),
                    reconnect,
                });
                if reason == Some(DisconnectReason::TokenExpired) {
                    self.close_socket(now);
                    self.credential_deadline = Some(now + self.config.credential_timeout);
                    self.events.push_back(Event::TokenExpired);
                } else if reconnect == Some(true) {
                    self.close_socket(now);
                } else {
                    self.stop(StopReason::ServerRefused { reason }, now);
                }
            }
            ServerFrame::Confirm { identifier } => {
                for key in self.registry.find_all(&identifier) {
                    self.registry.forget_pending(key);
                    if let Some(entry) = self.registry.get_mut(key) {
                        if !entry.confirmed {
                            entry.confirmed = true;
                            let reconnected = entry.confirmed_before;
                            entry.confirmed_before = true;
                            self.events.push_back(Event::Connected { key, reconnected });
                        }
                    }
                }
            }
            ServerFrame::Reject { identifier } => {
                for key in self.registry.find_all(&identifier) {
                    self.registry.remove(key);
                    self.events.push_back(Event::Rejected { key });
                }
            }
            ServerFrame::Message {
                identifier,
                message,
            } => {
                for key in self.registry.find_all(&identifier) {
                    self.events.push_back(Event::Received {
                        key,
                        message: message.clone().into_owned(),
                    });
                }
            }
            _ => {}
        }
        if !self.registry.has_pending() {
            self.guarantor_at = None;
        }
        Ok(())
    }

    /// The socket closed (by the peer or the network), or the connect asked
    /// for failed. Ignored when there is no socket.
    pub fn handle_close(&mut self, now: Instant) {
        self.handle_timeout(now);
        if self.socket != SocketState::Closed {
            self.socket_gone(now);
        }
    }

    /// The host has a fresh credential after [`Event::TokenExpired`]: the
    /// consumer reconnects at once ([`Event::Connect`]).
    pub fn credential_refreshed(&mut self, now: Instant) {
        self.handle_timeout(now);
        if self.credential_deadline.take().is_some() {
            self.open(now);
        }
    }

    /// The host cannot get a fresh credential: the consumer stops
    /// ([`StopReason::CredentialUnavailable`]).
    pub fn credential_unavailable(&mut self, now: Instant) {
        self.handle_timeout(now);
        if self.credential_deadline.take().is_some() {
            self.stop(StopReason::CredentialUnavailable, now);
        }
    }

    /// Fires what is due at `now`: the credential deadline, a delayed
    /// reopen, the guarantor's re-sends, the monitor's poll. Every other call
    /// does this first.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.credential_deadline.is_some_and(|at| at <= now) {
            self.credential_deadline = None;
            self.stop(StopReason::CredentialTimeout, now);
        }
        if self.reopen_at.is_some_and(|at| at <= now) {
            self.reopen_at = None;
            if self.monitor.running && self.credential_deadline.is_none() {
                self.open(now);
            }
        }
        if self.guarantor_at.is_some_and(|at| at <= now) {
            self.guarantor_at = None;
            if self.socket == SocketState::Welcomed {
                for key in self.registry.pending() {
                    self.send_subscribe(key, now);
                }
            }
        }
        if self.monitor.next_poll.is_some_and(|at| at <= now) {
            self.reconnect_if_stale(now);
            if self.monitor.running {
                let interval = self.interval();
                self.monitor.next_poll = Some(now + interval);
            }
        }
    }

    /// When [`Consumer::handle_timeout`] is next due, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.credential_deadline,
            self.reopen_at,
            self.guarantor_at,
            self.monitor.next_poll,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next text frame to write, in order.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmits.pop_front()
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn interval(&mut self) -> Duration {
        let unit = self.jitter.next_unit();
        poll_interval(&self.config, self.monitor.attempts, unit)
    }

    /// `connection.open()`.
    fn open(&mut self, now: Instant) -> bool {
        if self.socket != SocketState::Closed {
            return false;
        }
        self.socket = SocketState::Connecting;
        self.reopen_at = None;
        self.events.push_back(Event::Connect);
        if !self.monitor.running {
            let unit = self.jitter.next_unit();
            let interval = poll_interval(&self.config, self.monitor.attempts, unit);
            self.monitor.start(now, |_| interval);
        }
        true
    }

    /// `reconnectIfStale()`.
    fn reconnect_if_stale(&mut self, now: Instant) {
        let threshold = self.config.stale_threshold;
        if !self.monitor.is_stale(now, threshold) {
            return;
        }
        self.monitor.attempts = self.monitor.attempts.saturating_add(1);
        if self.monitor.disconnected_recently(now, threshold) || self.credential_deadline.is_some()
        {
            return;
        }
        // `connection.reopen()`.
        if self.socket == SocketState::Closed {
            self.open(now);
        } else {
            self.close_socket(now);
            self.reopen_at = Some(now + self.config.reopen_delay);
        }
    }

    /// Sends `subscribe` and guarantees it (the guarantor's timer restarts).
    fn send_subscribe(&mut self, key: SubscriptionKey, now: Instant) {
        let Some(entry) = self.registry.get(key) else {
            return;
        };
        self.transmits.push_back(
            Command::Subscribe {
                identifier: entry.identifier.as_str().into(),
            }
            .encode(),
        );
        self.registry.guarantee(key);
        // At least 1 ms: a zero interval would make the deadline due forever.
        let interval = self
            .config
            .resubscribe_interval
            .max(Duration::from_millis(1));
        self.guarantor_at = Some(now + interval);
    }

    /// Stops the monitor, closes the socket, reports [`Event::Stopped`].
    fn stop(&mut self, reason: StopReason, now: Instant) {
        self.monitor.stop();
        self.reopen_at = None;
        self.credential_deadline = None;
        self.close_socket(now);
        self.events.push_back(Event::Stopped(reason));
    }

    /// Asks the host to close the socket and counts it as gone.
    fn close_socket(&mut self, now: Instant) {
        if self.socket != SocketState::Closed {
            self.events.push_back(Event::Close);
            self.socket_gone(now);
        }
    }

    /// The socket's `onclose`.
    fn socket_gone(&mut self, now: Instant) {
        self.socket = SocketState::Closed;
        self.registry.connection_lost();
        self.guarantor_at = None;
        if self.disconnected {
            return;
        }
        self.disconnected = true;
        self.monitor.disconnected_at = Some(now);
        let will_reconnect = self.monitor.running;
        for key in self.registry.keys() {
            self.events.push_back(Event::Disconnected {
                key,
                will_reconnect,
            });
        }
    }
}
