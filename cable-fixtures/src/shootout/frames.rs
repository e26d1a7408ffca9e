//! The frames of the benchmark: the subscribe and broadcast commands a client sends, and
//! the recognition of a broadcast in what the server sends back ([`parse_delivery`]).

use super::IDENTIFIER;

/// The subscribe command for [`IDENTIFIER`].
pub fn subscribe_frame() -> String {
    serde_json::json!({"command": "subscribe", "identifier": IDENTIFIER}).to_string()
}

/// The `message` command asking for broadcast `id`:
/// `{"action":"broadcast","payload":{"sendTime":<ns>,"id":<id>,"padding":"xx.."}}` as the
/// JSON-encoded `data` string.
pub fn broadcast_frame(id: u64, send_time_ns: u64, padding: usize) -> String {
    let data = serde_json::json!({
        "action": "broadcast",
        "payload": {"sendTime": send_time_ns, "id": id, "padding": "x".repeat(padding)},
    });
    serde_json::json!({
        "command": "message",
        "identifier": IDENTIFIER,
        "data": data.to_string(),
    })
    .to_string()
}

/// A server frame that carries one of our broadcasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The broadcast's id.
    pub id: u64,
    /// It is the sender's `broadcastResult`, not the `bench_all` delivery.
    pub result: bool,
}

/// Recognises a broadcast in a server frame by string search: the first `"id":` followed
/// by digits after `"message":`, and whether `"broadcastResult"` appears. Welcome, pings,
/// confirmations and anything else give `None`.
pub fn parse_delivery(frame: &str) -> Option<Delivery> {
    let message = frame.find(r#""message":"#)?;
    let rest = &frame[message..];
    let at = rest.find(r#""id":"#)? + r#""id":"#.len();
    let digits = rest[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let id = digits[..end].parse().ok()?;
    Some(Delivery {
        id,
        result: rest.contains(r#""broadcastResult""#),
    })
}
