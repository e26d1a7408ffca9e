//! Presence kept in this process's memory: who is present on each stream,
//! with their info. A presence held only by connections that went away
//! stays for the presence TTL (a reconnect re-joins without a new `join`
//! event); an explicit `leave` or unsubscribe ends it at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cable_proto::json::write_rails_string;
use cable_proto::{ConnectionId, JsonText, SubscriptionId};

/// A subscription holding a presence.
type Holder = (ConnectionId, SubscriptionId);

#[derive(Debug)]
struct Record {
    info: Box<str>,
    holders: Vec<Holder>,
    /// Since when no live connection holds it.
    gone_since: Option<Instant>,
    /// Join order, for the records' order.
    order: u64,
}

/// Presence of every stream, in memory.
#[derive(Debug, Default)]
pub struct MemoryPresence {
    ttl: Duration,
    streams: HashMap<String, HashMap<String, Record>>,
    joins: u64,
}

/// A presence event to broadcast on a stream.
pub type PresenceEvent = (String, JsonText);

impl MemoryPresence {
    /// Presence kept `ttl` after its last connection went away.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            ..Self::default()
        }
    }

    /// `holder` is present on `stream` as `id`: the `join` event if `id` was
    /// not present.
    pub fn join(
        &mut self,
        stream: &str,
        id: &str,
        info: &str,
        holder: Holder,
        now: Instant,
    ) -> Option<JsonText> {
        let _ = now;
        let records = self.streams.entry(stream.to_owned()).or_default();
        // One presence id per subscription: joining as another leaves the
        // previous one.
        if let Some(record) = records.get_mut(id) {
            record.gone_since = None;
            if !record.holders.contains(&holder) {
                record.holders.push(holder);
            }
            record.info = info.into();
            return None;
        }
        self.joins += 1;
        records.insert(
            id.to_owned(),
            Record {
                info: info.into(),
                holders: vec![holder],
                gone_since: None,
                order: self.joins,
            },
        );
        Some(join_event(id, info))
    }

    /// `holder` leaves `id` (or every presence it holds on `stream`): the
    /// `leave` events of the ids nobody holds any more.
    pub fn leave(&mut self, stream: &str, id: Option<&str>, holder: Holder) -> Vec<JsonText> {
        let Some(records) = self.streams.get_mut(stream) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        records.retain(|rid, record| {
            if id.is_some_and(|id| id != rid) || !record.holders.contains(&holder) {
                return true;
            }
            record.holders.retain(|h| *h != holder);
            if record.holders.is_empty() {
                events.push(leave_event(rid));
                return false;
            }
            true
        });
        if records.is_empty() {
            self.streams.remove(stream);
        }
        events
    }

    /// A subscription ended by `unsubscribe` (or the app): it leaves
    /// everything at once.
    pub fn unsubscribed(&mut self, subscription: SubscriptionId) -> Vec<PresenceEvent> {
        let streams: Vec<String> = self.streams.keys().cloned().collect();
        let mut out = Vec::new();
        for stream in streams {
            let holders: Vec<Holder> = self.streams[&stream]
                .values()
                .flat_map(|r| r.holders.iter().copied())
                .filter(|(_, s)| *s == subscription)
                .collect();
            for holder in holders {
                for event in self.leave(&stream, None, holder) {
                    out.push((stream.clone(), event));
                }
            }
        }
        out
    }

    /// A connection's socket is gone: what only it held stays for the TTL.
    pub fn connection_gone(&mut self, connection: ConnectionId, now: Instant) {
        for records in self.streams.values_mut() {
            for record in records.values_mut() {
                let before = record.holders.len();
                record.holders.retain(|(c, _)| *c != connection);
                if before > 0 && record.holders.is_empty() {
                    record.gone_since = Some(now);
                }
            }
        }
    }

    /// The ids each stream's live connections hold here.
    pub fn held(&self) -> Vec<(String, Vec<String>)> {
        self.streams
            .iter()
            .map(|(stream, records)| {
                let ids = records
                    .iter()
                    .filter(|(_, r)| !r.holders.is_empty())
                    .map(|(id, _)| id.clone())
                    .collect();
                (stream.clone(), ids)
            })
            .collect()
    }

    /// Presence past its TTL ends: the `leave` events.
    pub fn sweep(&mut self, now: Instant) -> Vec<PresenceEvent> {
        let mut out = Vec::new();
        let ttl = self.ttl;
        for (stream, records) in &mut self.streams {
            records.retain(|id, record| match record.gone_since {
                Some(since) if now.saturating_duration_since(since) >= ttl => {
                    out.push((stream.clone(), leave_event(id)));
                    false
                }
                _ => true,
            });
        }
        self.streams.retain(|_, records| !records.is_empty());
        out
    }

    /// `{"type":"info","total":N,"records":[{"id":…,"info":…}]}` for
    /// `stream`, in join order.
    pub fn info(&self, stream: &str) -> JsonText {
        let mut records: Vec<(&String, &Record)> = self
            .streams
            .get(stream)
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        records.sort_by_key(|(_, r)| r.order);
        let mut out = Vec::new();
        out.extend_from_slice(br#"{"type":"info","total":"#);
        out.extend_from_slice(records.len().to_string().as_bytes());
        out.extend_from_slice(br#","records":["#);
        for (i, (id, record)) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            write_rails_string(&mut out, id);
            out.extend_from_slice(br#","info":"#);
            out.extend_from_slice(record.info.as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        json(out)
    }
}

fn json(bytes: Vec<u8>) -> JsonText {
    JsonText::new(String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|_| JsonText::string(""))
}

/// `{"type":"join","id":…,"info":…}`
pub fn join_event(id: &str, info: &str) -> JsonText {
    let mut out = Vec::new();
    out.extend_from_slice(br#"{"type":"join","id":"#);
    write_rails_string(&mut out, id);
    out.extend_from_slice(br#","info":"#);
    out.extend_from_slice(info.as_bytes());
    out.push(b'}');
    json(out)
}

/// `{"type":"leave","id":…}`
pub fn leave_event(id: &str) -> JsonText {
    let mut out = Vec::new();
    out.extend_from_slice(br#"{"type":"leave","id":"#);
    write_rails_string(&mut out, id);
    out.push(b'}');
    json(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Holder {
        // Handles of a real core: connection n with subscription n.
        let mut server = cable_proto::server::Server::new(
            cable_proto::server::Config {
                origins: cable_proto::OriginPolicy::allow_any(),
                ..Default::default()
            },
            Instant::now(),
            Duration::ZERO,
        );
        let request = cable_proto::HandshakeRequest {
            host: Some("h"),
            origin: Some("http://h"),
            secure: false,
            protocols: &[],
        };
        let mut last = None;
        for _ in 0..=n {
            let incoming = server.handle_open(&request, Instant::now()).unwrap();
            server
                .accept_connection(
                    incoming.pending,
                    cable_proto::Identity::new("u"),
                    Instant::now(),
                )
                .unwrap();
            server
                .handle_text(
                    incoming.connection,
                    br#"{"command":"subscribe","identifier":"{\"channel\":\"C\"}"}"#,
                    Instant::now(),
                )
                .unwrap();
            while let Some(event) = server.poll_event() {
                if let cable_proto::server::Event::SubscriptionRequested { pending, .. } = event {
                    last = Some((incoming.connection, pending.subscription()));
                    let _ = server.abandon_subscription(pending, Instant::now());
                }
            }
        }
        last.unwrap()
    }

    #[test]
    fn presence_survives_a_reconnect_within_its_ttl_and_ends_after() {
        let t0 = Instant::now();
        let mut presence = MemoryPresence::new(Duration::from_secs(15));
        let (first, again) = (ids(0), ids(1));
        let join = presence.join("room", "u1", r#"{"n":"Ann"}"#, first, t0);
        assert_eq!(
            join.unwrap().as_str(),
            r#"{"type":"join","id":"u1","info":{"n":"Ann"}}"#
        );
        presence.connection_gone(first.0, t0);
        // Still present; the reconnect's join is no news.
        assert_eq!(
            presence.info("room").as_str(),
            r#"{"type":"info","total":1,"records":[{"id":"u1","info":{"n":"Ann"}}]}"#
        );
        assert!(presence
            .join(
                "room",
                "u1",
                r#"{"n":"Ann"}"#,
                again,
                t0 + Duration::from_secs(5)
            )
            .is_none());
        assert!(presence.sweep(t0 + Duration::from_secs(30)).is_empty());
        // Gone for good: a leave once the TTL passed.
        presence.connection_gone(again.0, t0 + Duration::from_secs(31));
        assert!(presence.sweep(t0 + Duration::from_secs(45)).is_empty());
        let left = presence.sweep(t0 + Duration::from_secs(46));
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.as_str(), r#"{"type":"leave","id":"u1"}"#);
        assert_eq!(
            presence.info("room").as_str(),
            r#"{"type":"info","total":0,"records":[]}"#
        );
    }
}
