//! Per-session pings (AnyCable's `?pi=` and `?ptp=`): an extended connection
//! may ask for its own ping interval (whole seconds; 0 or less: no pings)
//! and for the precision of the ping's timestamp (`s`, `ms` or `ns`; any
//! other value is seconds). A connection with settings of its own is pinged
//! on its own beat, from the moment they are set, instead of the server's.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ExtConn, ExtTimer};
use crate::server::records::ConnState;
use crate::server::timers::TimerKey;
use crate::server::Server;
use crate::types::ConnectionId;

/// The unit of a ping's `message` timestamp (AnyCable's `ptp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PingPrecision {
    /// Unix seconds (the default, as Action Cable sends).
    #[default]
    Seconds,
    /// Unix milliseconds (`ptp=ms`).
    Millis,
    /// Unix nanoseconds (`ptp=ns`).
    Nanos,
}

impl PingPrecision {
    /// AnyCable's `ptp` value: `ms`, `ns`, anything else seconds.
    pub fn from_param(value: &str) -> Self {
        match value {
            "ms" => Self::Millis,
            "ns" => Self::Nanos,
            _ => Self::Seconds,
        }
    }

    fn stamp(self, unix: Duration) -> u128 {
        match self {
            Self::Seconds => u128::from(unix.as_secs()),
            Self::Millis => unix.as_millis(),
            Self::Nanos => unix.as_nanos(),
        }
    }
}

/// The ping settings of one extended session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionPing {
    /// Its own interval (`pi`); `Some(Duration::ZERO)`: no pings; `None`:
    /// the server's.
    pub interval: Option<Duration>,
    /// The timestamp's precision (`ptp`).
    pub precision: PingPrecision,
}

impl SessionPing {
    /// AnyCable's parameters: `pi` (an integer of seconds, ignored when it
    /// is not one; 0 or less: no pings) and `ptp`.
    pub fn from_params(pi: Option<&str>, ptp: Option<&str>) -> Self {
        let interval = pi.and_then(|v| v.trim().parse::<i64>().ok()).map(|secs| {
            u64::try_from(secs)
                .map(Duration::from_secs)
                .unwrap_or(Duration::ZERO)
        });
        Self {
            interval,
            precision: ptp.map(PingPrecision::from_param).unwrap_or_default(),
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Server {
    /// Sets the ping settings of extended connection `connection` (from its
    /// `?pi=` and `?ptp=`): from now on it is pinged every
    /// `interval` (not at all for zero), its first ping one interval from
    /// `now`, with a timestamp of that precision, instead of on the
    /// server's beat. Ignored for a plain connection or default settings.
    pub fn set_session_ping(&mut self, connection: ConnectionId, ping: SessionPing, now: Instant) {
        self.advance(now);
        if ping.is_default()
            || !self.is_extended(connection.index)
            || self
                .conns
                .get_checked(connection.index, connection.generation)
                .is_none()
        {
            return;
        }
        let interval = ping.interval.unwrap_or(self.config.ping_interval);
        let Some(ext) = self.ext_conn_mut(connection) else {
            return;
        };
        ext.ping = Some(ping);
        if !interval.is_zero() {
            let (conn, generation) = (connection.index, connection.generation);
            self.set_timer(
                now + interval,
                TimerKey::Extended(ExtTimer::Ping { conn, generation }),
            );
        }
    }

    fn ext_conn_mut(&mut self, connection: ConnectionId) -> Option<&mut ExtConn> {
        self.ext
            .conns
            .get_mut(&connection.index)
            .filter(|c| c.generation == connection.generation && c.extended)
    }

    /// Whether connection `index` is pinged on its own beat.
    pub(in crate::server) fn has_own_ping(&self, index: u32) -> bool {
        !self.ext.conns.is_empty() && self.ext.conns.get(&index).is_some_and(|c| c.ping.is_some())
    }

    /// The own ping of connection `conn` is due at `at`.
    pub(super) fn own_ping(&mut self, at: Instant, conn: u32, generation: u32) {
        let Some(ping) = self
            .ext
            .conns
            .get(&conn)
            .filter(|c| c.generation == generation)
            .and_then(|c| c.ping)
        else {
            return;
        };
        let Some(record) = self.conns.get_checked(conn, generation) else {
            return;
        };
        let interval = ping.interval.unwrap_or(self.config.ping_interval);
        if interval.is_zero() {
            return;
        }
        if record.state == ConnState::Open {
            let unix = self.unix_base + at.saturating_duration_since(self.clock_base);
            let stamp = ping.precision.stamp(unix);
            let frame = Bytes::from(format!(r#"{{"type":"ping","message":{stamp}}}"#));
            self.push(conn, frame);
            self.ext_pinged_one(conn, generation, at);
            self.flush_overflow();
        } else if record.state == ConnState::Closing {
            return;
        }
        self.set_timer(
            at + interval,
            TimerKey::Extended(ExtTimer::Ping { conn, generation }),
        );
    }
}
