//! What an operation leads the host to expect: the frames it must cause
//! ([`Expect`]) and, from the model alone, what a broadcast must deliver to
//! whom and how `Delivery` counts it ([`Broadcasted`]).

use std::collections::{BTreeSet, HashMap};

use cable_proto::server::UnsubscribeCause;
use cable_proto::{ConnectionId, StreamMode};
use serde_json::Value;

use super::op::ENVELOPES;
use super::Harness;

/// What the current operation leads the host to expect on the wire.
#[derive(Debug, Default)]
pub(super) struct Expect {
    /// Connections accepted by this operation (their welcome).
    pub(super) welcomed: Vec<ConnectionId>,
    /// `(connection, identifier)` confirmed or rejected by this operation.
    pub(super) confirmed: Vec<(ConnectionId, String)>,
    pub(super) rejected: Vec<(ConnectionId, String)>,
    /// Message frames: `(connection, identifier, message, exact raw JSON)`.
    pub(super) messages: Vec<(ConnectionId, String, Value, Option<String>)>,
    /// Application frames.
    pub(super) application: Vec<(ConnectionId, Value)>,
    /// Connections that get a ping, and its seconds.
    pub(super) pings: Option<(Vec<ConnectionId>, u64)>,
    /// Cause of `Unsubscribed` events this operation may report.
    pub(super) unsubscribe_cause: Option<UnsubscribeCause>,
    /// The connection `handle_close` was called for.
    pub(super) closing: Option<ConnectionId>,
}

impl Harness {
    /// What a broadcast must do, from the model alone.
    pub(super) fn expected_broadcast(
        &self,
        stream: &str,
        payload: &str,
        except: Option<ConnectionId>,
        force_raw: bool,
    ) -> Broadcasted {
        let valid = serde_json::from_str::<serde::de::IgnoredAny>(payload).is_ok();
        // A group's frame larger than a queue may hold is refused for all
        // its members (`Delivery::skipped_too_large`).
        let limit = self.limits.max_queued_bytes;
        let message_len = |raw: bool| {
            if raw {
                rails_string(payload).len()
            } else {
                payload.len()
            }
        };
        let mut too_large = 0;
        let mut groups: BTreeSet<(String, bool)> = BTreeSet::new();
        let mut skipped = 0;
        let mut frames: HashMap<ConnectionId, Vec<(String, Value, Option<String>)>> =
            HashMap::new();
        for sub in self.subs.iter().filter(|s| s.live()) {
            for (name, mode) in &sub.streams {
                if name != stream {
                    continue;
                }
                let raw = force_raw || *mode == StreamMode::RawString;
                if !raw && !valid {
                    skipped += 1;
                    continue;
                }
                let len = r#"{"identifier":,"message":}"#.len()
                    + rails_string(&sub.identifier).len()
                    + message_len(raw);
                if len > limit {
                    too_large += 1;
                    continue;
                }
                groups.insert((sub.identifier.clone(), *mode == StreamMode::RawString));
                if Some(sub.conn) == except {
                    continue;
                }
                let (message, exact) = if raw {
                    (Value::String(payload.to_owned()), None)
                } else {
                    (parse_value(payload), Some(payload.to_owned()))
                };
                frames
                    .entry(sub.conn)
                    .or_default()
                    .push((sub.identifier.clone(), message, exact));
            }
        }
        // Joins: one group per envelope.
        let mut envelopes: BTreeSet<usize> = BTreeSet::new();
        let mut enveloped: HashMap<ConnectionId, Vec<Value>> = HashMap::new();
        for conn in &self.conns {
            for (name, index) in &conn.joins {
                if name != stream {
                    continue;
                }
                let (prefix, suffix, raw) = ENVELOPES[*index];
                let raw = force_raw || raw;
                if !raw && !valid {
                    skipped += 1;
                    continue;
                }
                if prefix.len() + message_len(raw) + suffix.len() > limit {
                    too_large += 1;
                    continue;
                }
                envelopes.insert(*index);
                if Some(conn.id) == except {
                    continue;
                }
                let message = if raw {
                    Value::String(payload.to_owned()).to_string()
                } else {
                    payload.to_owned()
                };
                enveloped
                    .entry(conn.id)
                    .or_default()
                    .push(parse_value(&format!("{prefix}{message}{suffix}")));
            }
        }
        Broadcasted {
            frames,
            enveloped,
            encoded: Some(groups.len() + envelopes.len()),
            skipped: Some(skipped),
            too_large: Some(too_large),
            targets: None,
        }
    }
}

/// What a broadcast (or a frame to an identity) must deliver.
#[derive(Debug, Default)]
pub(super) struct Broadcasted {
    /// Per connection: `(identifier, message, exact JSON text)` frames.
    pub(super) frames: HashMap<ConnectionId, Vec<(String, Value, Option<String>)>>,
    /// Per connection: the frames of its joins (whole, as JSON values).
    pub(super) enveloped: HashMap<ConnectionId, Vec<Value>>,
    pub(super) encoded: Option<usize>,
    pub(super) skipped: Option<usize>,
    pub(super) too_large: Option<usize>,
    /// For frames to an identity: the connections it must reach.
    pub(super) targets: Option<Vec<ConnectionId>>,
}

impl Broadcasted {
    pub(super) fn identity(targets: Vec<ConnectionId>) -> Self {
        Self {
            targets: Some(targets),
            ..Self::default()
        }
    }

    /// Adds the frames of another broadcast of the same operation (the
    /// counts of `Delivery` are then unknown).
    pub(super) fn merge(&mut self, other: Broadcasted) {
        for (c, frames) in other.frames {
            self.frames.entry(c).or_default().extend(frames);
        }
        for (c, frames) in other.enveloped {
            self.enveloped.entry(c).or_default().extend(frames);
        }
        self.encoded = None;
        self.skipped = None;
        self.too_large = None;
    }
}

/// `text` as a JSON string literal, escaped as Rails escapes it.
fn rails_string(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    cable_proto::json::write_rails_string(&mut out, text);
    out
}

pub(super) fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("payload {text:?} is not JSON: {e}"))
}
