//! platformOS's WebSockets (`--app platformos --rpc-url URL`): the
//! `conversate` chat of the pOS Marketplace Template, and any other channel
//! of the same shape (`{"channel":C,"room_id":R}`), on top of
//! [`RpcApp`](crate::rpc::RpcApp) through [`RpcHooks`].
//!
//! | platformOS | here |
//! |---|---|
//! | `createConsumer('/websocket')` | the mount path defaults to `/websocket` (`--path` overrides) |
//! | `subscribed.liquid` returning `true` | the backend's `subscribe` answer: status success confirms; failure, error or no answer within `--rpc-timeout-ms` rejects |
//! | the room's subscribers | an accepted subscription streams from `<channel>:<room_id>` (`conversate:12`; `12` and `"12"` are one room), besides the streams the backend names |
//! | `receive.liquid` returning `false` | the backend's `message` answer: only status success broadcasts the message (the command's `data` as the client sent it) to the room's stream; a failure (vetoed), an error, or no answer in time (timed out) broadcasts nothing, and is counted and logged |
//! | the per-connection queue | the core hands a connection's commands to the backend one at a time, in arrival order |
//! | `websockets_require_csrf_token` | `--require-csrf`: an upgrade without a non-empty `authenticity_token` query parameter is rejected (`unauthorized`) before the backend is asked; the token reaches the backend's `connect` in `env.url` for it to verify |
//! | `channel_send_message(channel_name, room_id, payload)` | a broadcast to `<channel_name>:<room_id>` through `POST /_broadcast` or Redis: [`cable_channels::platformos::channel_send_message`] |
//!
//! `GET /_platformos/stats` answers the counts:
//! `{"broadcast":N,"vetoed":N,"timed_out":N,"failed":N}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cable_channels::platformos::room_stream;
use cable_channels::IdValue;
use cable_proto::JsonText;

use crate::app::{ControlRequest, HttpResponse, RequestInfo};
use crate::rpc::{MessageRefusal, RpcHooks};

/// The default mount path of the platformOS app (the doc's
/// `createConsumer('/websocket')`).
pub const MOUNT_PATH: &str = "/websocket";

/// The path of the counts (`GET`).
pub const STATS_PATH: &str = "/_platformos/stats";

/// The query parameter that carries the CSRF token.
pub const CSRF_PARAM: &str = "authenticity_token";

/// The room stream of a subscription identifier `{"channel":C,"room_id":R}`:
/// `C:R`, with `R` a non-negative integer or a string (`12` and `"12"` give
/// the same stream). `None` for another shape.
pub fn identifier_room_stream(identifier: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(identifier).ok()?;
    let channel = value.get("channel")?.as_str()?;
    let room_id = match value.get("room_id")? {
        serde_json::Value::Number(n) => IdValue::Number(n.as_u64()?),
        serde_json::Value::String(s) => IdValue::Text(s.clone()),
        _ => return None,
    };
    Some(room_stream(channel, &room_id))
}

/// The counts of client messages.
#[derive(Debug, Default)]
pub struct PlatformOsStats {
    /// Accepted by the backend and broadcast to the room.
    pub broadcast: AtomicU64,
    /// Vetoed by the backend (`receive.liquid` returning `false`).
    pub vetoed: AtomicU64,
    /// No answer within the deadline.
    pub timed_out: AtomicU64,
    /// An RPC error (status error, HTTP error, bad answer).
    pub failed: AtomicU64,
}

impl PlatformOsStats {
    /// The counts as JSON.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "broadcast": self.broadcast.load(Ordering::Relaxed),
            "vetoed": self.vetoed.load(Ordering::Relaxed),
            "timed_out": self.timed_out.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
        })
        .to_string()
    }
}

/// The [`RpcHooks`] of the platformOS app (see the module docs).
#[derive(Debug, Default)]
pub struct PlatformOsHooks {
    require_csrf: bool,
    stats: Arc<PlatformOsStats>,
}

impl PlatformOsHooks {
    /// The hooks; `require_csrf`: `--require-csrf`.
    pub fn new(require_csrf: bool) -> Self {
        Self {
            require_csrf,
            stats: Arc::default(),
        }
    }

    /// The counts.
    pub fn stats(&self) -> Arc<PlatformOsStats> {
        Arc::clone(&self.stats)
    }
}

impl RpcHooks for PlatformOsHooks {
    fn admit(&self, request: &RequestInfo) -> Result<(), String> {
        if self.require_csrf
            && request
                .query_param(CSRF_PARAM)
                .is_none_or(|token| token.is_empty())
        {
            return Err(format!("no {CSRF_PARAM} (--require-csrf)"));
        }
        Ok(())
    }

    fn subscription_streams(&self, identifier: &str) -> Vec<String> {
        identifier_room_stream(identifier).into_iter().collect()
    }

    fn message_broadcasts(&self, identifier: &str, data: &str) -> Vec<(String, JsonText)> {
        let Some(stream) = identifier_room_stream(identifier) else {
            return Vec::new();
        };
        match JsonText::new(data) {
            Ok(payload) => {
                self.stats.broadcast.fetch_add(1, Ordering::Relaxed);
                vec![(stream, payload)]
            }
            Err(_) => Vec::new(),
        }
    }

    fn message_refused(&self, identifier: &str, why: MessageRefusal) {
        let counter = match why {
            MessageRefusal::Vetoed => &self.stats.vetoed,
            MessageRefusal::TimedOut => &self.stats.timed_out,
            MessageRefusal::Failed => &self.stats.failed,
        };
        let total = counter.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(identifier, ?why, total, "message not broadcast");
    }

    fn control(&self, request: &ControlRequest<'_>) -> Option<HttpResponse> {
        (request.method == "GET" && request.path() == STATS_PATH)
            .then(|| HttpResponse::json(200, self.stats.to_json()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_streams_of_identifiers() {
        let stream = identifier_room_stream;
        assert_eq!(
            stream(r#"{"channel":"conversate","room_id":12}"#).as_deref(),
            Some("conversate:12")
        );
        assert_eq!(
            stream(r#"{"channel":"conversate","room_id":"12"}"#).as_deref(),
            Some("conversate:12")
        );
        assert_eq!(
            stream(r#"{"channel":"other","room_id":"a"}"#).as_deref(),
            Some("other:a")
        );
        assert_eq!(stream(r#"{"channel":"conversate"}"#), None);
        assert_eq!(stream(r#"{"channel":"conversate","room_id":-1}"#), None);
        assert_eq!(stream(r#"{"channel":"conversate","room_id":[1]}"#), None);
    }

    #[test]
    fn csrf_is_required_only_when_asked() {
        let request = |q: &str| RequestInfo {
            path_and_query: format!("/websocket{q}"),
            headers: vec![],
            remote_addr: None,
        };
        let strict = PlatformOsHooks::new(true);
        assert!(strict.admit(&request("")).is_err());
        assert!(strict.admit(&request("?authenticity_token=")).is_err());
        assert!(strict.admit(&request("?authenticity_token=t0k")).is_ok());
        assert!(PlatformOsHooks::new(false).admit(&request("")).is_ok());
    }
}
