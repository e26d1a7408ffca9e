//! [`RpcHooks`]: what an app built on [`RpcApp`](super::RpcApp) adds to the
//! backend's decisions, without a copy of the RPC app: a check of the
//! upgrade request before the backend is asked, streams of the server's own
//! on an accepted subscription, broadcasts of a message the backend
//! accepted, a note of the messages it did not, and control endpoints.
//! Every method has a default that adds nothing ([`NoHooks`]).

use cable_proto::JsonText;

use crate::app::{ControlRequest, HttpResponse, RequestInfo};

/// Why a client message (`command: "message"`) had no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRefusal {
    /// The backend answered status failure (`2`).
    Vetoed,
    /// No answer within `--rpc-timeout-ms`.
    TimedOut,
    /// Status error (`0`), an HTTP error, an answer not understood.
    Failed,
}

/// Additions to [`RpcApp`](super::RpcApp)'s behaviour (see the module docs).
pub trait RpcHooks: Send + Sync + 'static {
    /// Checks an upgrade request before the connect call: `Err(why)` rejects
    /// the connection as unauthorized and the backend is not asked.
    fn admit(&self, _request: &RequestInfo) -> Result<(), String> {
        Ok(())
    }

    /// Streams the server adds to a subscription the backend accepted,
    /// besides those the backend names.
    fn subscription_streams(&self, _identifier: &str) -> Vec<String> {
        Vec::new()
    }

    /// Broadcasts (stream, payload) the server makes for a message the
    /// backend answered with status success; `data` is the command's `data`
    /// as the client sent it. Nothing is broadcast for any other answer.
    fn message_broadcasts(&self, _identifier: &str, _data: &str) -> Vec<(String, JsonText)> {
        Vec::new()
    }

    /// A message had no effect, for `why`.
    fn message_refused(&self, _identifier: &str, _why: MessageRefusal) {}

    /// Serves a plain HTTP request the host did not handle (`None`: 404).
    fn control(&self, _request: &ControlRequest<'_>) -> Option<HttpResponse> {
        None
    }
}

/// Hooks that add nothing: the plain RPC app.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl RpcHooks for NoHooks {}
