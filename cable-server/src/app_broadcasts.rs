//! Broadcasts made inside the app (a perform's outcome such as the
//! reference app's `speak`, the platformOS receive path, a dialect's thread
//! message), carried to every node.
//!
//! The core reports them as [`Event::Publish`](cable_proto::server::Event::Publish)
//! (`Config::publish_upstream` is always on in cable-server). Without Redis
//! the core delivers them at once. With Redis they go out as Rails' adapter
//! sends `ActionCable.server.broadcast`: `PUBLISH <prefix>:<stream>
//! <payload>`, from one publisher task and one connection, in the order the
//! app made them; and every node, the one that made them included, delivers
//! them when Redis hands them back. So each reaches every node's clients
//! exactly once, in the same order everywhere (Redis delivers one
//! connection's publishes in order), and a Rails node on the same Redis
//! sees them too.
//!
//! A broadcast that skips its sender (a BuddyBoss thread message, a typing
//! indicator) is published the same way; the node that made it remembers
//! `(stream, payload, sender)` in [`Exclusions`] and, when the next message
//! on that stream with that payload comes back from Redis, delivers it to
//! everyone but the sender. Its own publishes come back in order, so the
//! only case where it picks another's message is an identical payload on the
//! same stream published by someone else first: the sender then misses that
//! copy and gets its own, the same bytes.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use cable_proto::ConnectionId;

/// One app broadcast for the Redis publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publication {
    /// The stream (broadcasting).
    pub(crate) stream: String,
    /// Its JSON text payload.
    pub(crate) payload: String,
}

/// How long a remembered exclusion waits for its message to come back.
const EXCLUSION_TTL: Duration = Duration::from_secs(30);

struct Exclusion {
    payload: String,
    connection: ConnectionId,
    expires: Instant,
}

/// The senders to skip when this node's own except-sender publishes come
/// back from Redis, per stream in publish order; bounded in number and age.
pub(crate) struct Exclusions {
    by_stream: HashMap<String, VecDeque<Exclusion>>,
    len: usize,
    cap: usize,
}

impl Exclusions {
    /// At most `cap` remembered at once.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            by_stream: HashMap::new(),
            len: 0,
            cap,
        }
    }

    /// Whether nothing is remembered (the fast path of every broadcast).
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Remembers that the next `payload` on `stream` is this node's and skips
    /// `connection`. `false`: at the bound (the sender will get its own
    /// message).
    pub(crate) fn expect(
        &mut self,
        stream: &str,
        payload: &str,
        connection: ConnectionId,
        now: Instant,
    ) -> bool {
        if self.len >= self.cap {
            self.sweep(now);
            if self.len >= self.cap {
                return false;
            }
        }
        self.by_stream
            .entry(stream.to_owned())
            .or_default()
            .push_back(Exclusion {
                payload: payload.to_owned(),
                connection,
                expires: now + EXCLUSION_TTL,
            });
        self.len += 1;
        true
    }

    /// A message on `stream` came back: the connection to skip, if it is the
    /// one this node published next on that stream.
    pub(crate) fn take(
        &mut self,
        stream: &str,
        payload: &str,
        now: Instant,
    ) -> Option<ConnectionId> {
        let queue = self.by_stream.get_mut(stream)?;
        while queue.front().is_some_and(|e| e.expires <= now) {
            queue.pop_front();
            self.len -= 1;
        }
        let found = if queue.front().is_some_and(|e| e.payload == payload) {
            self.len -= 1;
            queue.pop_front().map(|e| e.connection)
        } else {
            None
        };
        if queue.is_empty() {
            self.by_stream.remove(stream);
        }
        found
    }

    fn sweep(&mut self, now: Instant) {
        let mut len = 0;
        self.by_stream.retain(|_, queue| {
            queue.retain(|e| e.expires > now);
            len += queue.len();
            !queue.is_empty()
        });
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(server: &mut cable_proto::server::Server, now: Instant) -> ConnectionId {
        let request = cable_proto::HandshakeRequest {
            host: Some("h"),
            origin: Some("http://h"),
            secure: false,
            protocols: &[],
        };
        server
            .handle_open(&request, now)
            .expect("same origin")
            .connection
    }

    #[test]
    fn own_publishes_are_matched_in_order_and_expire() {
        let now = Instant::now();
        let mut server = cable_proto::server::Server::new(
            cable_proto::server::Config::default(),
            now,
            Duration::ZERO,
        );
        let a = connection(&mut server, now);
        let b = connection(&mut server, now);
        let mut exclusions = Exclusions::new(2);
        assert!(exclusions.expect("t", "1", a, now));
        assert!(exclusions.expect("t", "2", b, now));
        assert!(!exclusions.expect("t", "3", b, now), "bounded");
        // Someone else's message first: not ours.
        assert_eq!(exclusions.take("t", "2", now), None);
        assert_eq!(exclusions.take("t", "1", now), Some(a));
        assert_eq!(exclusions.take("t", "2", now), Some(b));
        assert!(exclusions.is_empty());
        assert!(exclusions.expect("u", "1", a, now));
        let later = now + EXCLUSION_TTL;
        assert_eq!(exclusions.take("u", "1", later), None, "expired");
        assert!(exclusions.is_empty());
    }
}
