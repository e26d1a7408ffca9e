//! The HTTP side: one port for the WebSocket mount, the health check,
//! `POST /_broadcast` and the app's control endpoints.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::admission::{ConnectionSlots, Eviction};
use crate::app::RequestInfo;
use crate::conn::{run_connection, ConnChannels, ConnPolicy};
use crate::core::{CoreInput, OpenReply, OpenRequest};
use crate::redis_bridge::Publisher;
use crate::refusal_log::{Refusal, RefusalLog};

/// Largest body accepted on `POST /_broadcast` and control endpoints.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) core: mpsc::Sender<CoreInput>,
    pub(crate) mounts: crate::mounts::MountTable,
    pub(crate) health_path: String,
    pub(crate) broadcast_key: Option<String>,
    pub(crate) publisher: Option<Publisher>,
    /// With `--history-redis`: broadcasts go through the shared history.
    pub(crate) history: Option<(crate::anycable::redis_history::RedisHistory, String)>,
    pub(crate) ws_config: WebSocketConfig,
    /// The WebSocket layer's settings for Jac sockets (their own frame
    /// limit, `--jac-max-frame-bytes`).
    pub(crate) jac_ws_config: WebSocketConfig,
    /// How Jac sockets are timed: [`Shared::policy`] and Jac's keepalive.
    pub(crate) jac_policy: ConnPolicy,
    pub(crate) policy: ConnPolicy,
    /// The open WebSocket connections, against `--max-connections`.
    pub(crate) slots: Arc<ConnectionSlots>,
    /// Where refusals are counted, for rate-limited logging.
    pub(crate) refusals: Arc<RefusalLog>,
    /// Largest broadcast payload accepted ([`max_broadcast_payload`]).
    pub(crate) max_broadcast_payload: usize,
    /// How long a request may take to head (a request body, here; hyper
    /// times the head).
    pub(crate) handshake_timeout: Option<Duration>,
    /// `GET` here answers the metrics (`None`: not served).
    pub(crate) metrics_path: Option<String>,
    /// The node's metrics.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

/// Serves one accepted connection's HTTP phase: its requests, until it
/// closes or upgrades to a WebSocket (whose task then runs on its own). The
/// phase ends early when a request head takes longer than
/// `handshake_timeout` (hyper's header read timeout, which also bounds the
/// wait for the next request on a kept-alive connection), or when
/// `eviction` fires to make room for a newer connection.
pub(crate) async fn serve_http_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut eviction: Eviction,
    handshake_timeout: Option<Duration>,
) {
    let refusals = Arc::clone(&shared.refusals);
    let service = service_fn(move |mut request: Request<Incoming>| {
        // The peer's address, for the app's `RequestInfo::remote_addr`.
        request.extensions_mut().insert(peer);
        handle(request, Arc::clone(&shared))
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        served = served => {
            if let Err(error) = served {
                if error.is_timeout() {
                    refusals.record(Refusal::HandshakeTimeout);
                }
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
        }
        Ok(()) = &mut eviction => {
            tracing::debug!(%peer, "HTTP connection evicted by a newer one");
        }
    }
}

type HttpResult = Result<Response<Full<Bytes>>, Infallible>;

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn not_found() -> Response<Full<Bytes>> {
    respond(404, "text/plain", "Page not found")
}

/// 503, and the connection closes after it (a refused client keeps no
/// file descriptor).
fn unavailable_closing() -> Response<Full<Bytes>> {
    let mut response = respond(503, "text/plain", "Service Unavailable");
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Routes one request.
pub(crate) async fn handle(request: Request<Incoming>, shared: Arc<Shared>) -> HttpResult {
    let path = request.uri().path();
    if let Some(at) = shared.mounts.at(path) {
        return Ok(websocket(request, &shared, at).await);
    }
    if path == shared.health_path && matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(respond(200, "text/plain", "ok"));
    }
    if path == "/_broadcast" {
        return Ok(broadcast(request, &shared).await);
    }
    if shared.metrics_path.as_deref() == Some(path) && request.method() == Method::GET {
        return Ok(metrics(&shared).await);
    }
    if shared.mounts.has_jac() && has_token(&request, header::UPGRADE, "websocket") {
        // As Jac Cloud's server answers a WebSocket upgrade on any other path.
        let mut response = respond(403, "text/plain", "");
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    Ok(control(request, &shared).await)
}

/// `GET /metrics`: the core's gauges, read from the core task, and every
/// counter.
async fn metrics(shared: &Shared) -> Response<Full<Bytes>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if shared.core.send(CoreInput::Gauges { reply }).await.is_err() {
        return unavailable_closing();
    }
    let Ok(gauges) = answer.await else {
        return unavailable_closing();
    };
    respond(
        200,
        crate::metrics::CONTENT_TYPE,
        shared.metrics.render(gauges),
    )
}

fn header_str(request: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn has_token(request: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

async fn websocket(
    mut request: Request<Incoming>,
    shared: &Shared,
    at: crate::mounts::PathProtocols,
) -> Response<Full<Bytes>> {
    // Rails answers anything that is not a WebSocket upgrade on the mount
    // path with 404 "Page not found".
    let is_upgrade = request.method() == Method::GET
        && has_token(&request, header::UPGRADE, "websocket")
        && has_token(&request, header::CONNECTION, "upgrade");
    let Some(key) = header_str(&request, header::SEC_WEBSOCKET_KEY).map(str::to_owned) else {
        return not_found();
    };
    if !is_upgrade {
        return not_found();
    }
    if header_str(&request, header::SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut response = respond(426, "text/plain", "Upgrade Required");
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    // Past --max-connections: refused before the core hears of it.
    let Some(slot) = shared.slots.try_take() else {
        shared.refusals.record(Refusal::ConnectionLimit);
        return unavailable_closing();
    };
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let protocols = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let secure = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let open = OpenRequest {
        host: header_str(&request, header::HOST).map(str::to_owned),
        origin: header_str(&request, header::ORIGIN).map(str::to_owned),
        secure,
        protocols,
        at,
        info: RequestInfo {
            path_and_query: request.uri().path_and_query().map_or_else(
                || request.uri().path().to_owned(),
                |p| p.as_str().to_owned(),
            ),
            headers,
            remote_addr: request.extensions().get::<std::net::SocketAddr>().copied(),
        },
    };
    let (reply, answer) = oneshot::channel();
    if shared
        .core
        .send(CoreInput::Open {
            request: open,
            reply,
        })
        .await
        .is_err()
    {
        return respond(503, "text/plain", "Service Unavailable");
    }
    let (connection, subprotocol, outbound, flow, protocol) = match answer.await {
        Ok(OpenReply::Accepted {
            connection,
            subprotocol,
            outbound,
            flow,
            protocol,
        }) => (connection, subprotocol, outbound, flow, protocol),
        Ok(OpenReply::Refused { status, body }) => return respond(status, "text/plain", body),
        Ok(OpenReply::Unavailable) | Err(_) => {
            return respond(503, "text/plain", "Service Unavailable")
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let core = shared.core.clone();
    let (config, policy) = if protocol == cable_proto::server::Protocol::Custom(crate::jac::JAC) {
        (shared.jac_ws_config, shared.jac_policy)
    } else {
        (shared.ws_config, shared.policy)
    };
    let refusals = Arc::clone(&shared.refusals);
    tokio::spawn(async move {
        // The connection's place is held until it is gone.
        let _slot = slot;
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                let channels = ConnChannels {
                    outbound,
                    core,
                    flow,
                };
                run_connection(ws, connection, channels, policy, refusals).await;
            }
            Err(error) => {
                tracing::debug!(%connection, %error, "upgrade failed");
                let _ = core.send(CoreInput::Closed { connection }).await;
            }
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = subprotocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// The request's body, at most [`MAX_BODY`] bytes (else 413), received
/// within the handshake deadline (else 408, and the connection closes).
async fn read_body(
    request: Request<Incoming>,
    shared: &Shared,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let collect = Limited::new(request.into_body(), MAX_BODY).collect();
    let collected = match shared.handshake_timeout {
        Some(deadline) => match tokio::time::timeout(deadline, collect).await {
            Ok(collected) => collected,
            Err(_) => {
                shared.refusals.record(Refusal::HandshakeTimeout);
                let mut response = respond(408, "text/plain", "Request Timeout");
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Err(response);
            }
        },
        None => collect.await,
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(respond(413, "text/plain", "Payload Too Large")),
    }
}

/// The largest broadcast payload whose frame fits in one connection's
/// queue (`max_queued_bytes`) whatever the subscription's identifier: a
/// broadcast's frame is `{"identifier":<identifier as a JSON string>,
/// "message":<payload>}`, 26 bytes plus the identifier's literal, whose
/// escapes (`\u003c` for `<`, as Rails writes it) take at most 6 bytes per
/// byte of an identifier of at most `max_identifier_bytes`, plus its quotes.
/// A bigger payload would close every subscriber as `too_slow`.
pub(crate) fn max_broadcast_payload(limits: &cable_proto::server::Limits) -> usize {
    let envelope = limits
        .max_identifier_bytes
        .saturating_mul(6)
        .saturating_add(26 + 2);
    limits.max_queued_bytes.saturating_sub(envelope)
}

/// One broadcast of `POST /_broadcast`.
#[derive(Debug, serde::Deserialize)]
struct BroadcastBody {
    stream: String,
    data: serde_json::Value,
}

/// Parses the body of `POST /_broadcast`: one `{"stream": S, "data": D}` or
/// an array of them. `D` is the message: a JSON string holding JSON text
/// (AnyCable's form, as `ActionCable.server.broadcast` encodes it), or any
/// other JSON value, taken as is. Returns `(stream, payload JSON text)`.
pub(crate) fn parse_broadcasts(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let items: Vec<BroadcastBody> = match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>(),
        other => serde_json::from_value(other).map(|one| vec![one]),
    }
    .map_err(|e| format!("expected {{\"stream\": .., \"data\": ..}}: {e}"))?;
    items
        .into_iter()
        .map(|item| {
            let payload = match item.data {
                serde_json::Value::String(text) => {
                    cable_proto::json::validate(&text)
                        .map_err(|e| format!("data is a string but not JSON text: {e}"))?;
                    text
                }
                other => cable_proto::json::to_rails_json(&other)
                    .map_err(|e| format!("data cannot be encoded: {e}"))?,
            };
            Ok((item.stream, payload))
        })
        .collect()
}

async fn broadcast(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        let mut response = respond(405, "text/plain", "Method Not Allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if let Some(key) = &shared.broadcast_key {
        let presented = header_str(&request, header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if presented != Some(key.as_str()) {
            return respond(401, "text/plain", "Unauthorized");
        }
    }
    let body = match read_body(request, shared).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let broadcasts = match parse_broadcasts(&body) {
        Ok(b) => b,
        Err(why) => return respond(422, "text/plain", why),
    };
    // Refused whole, before any of it is delivered or published.
    if let Some((stream, payload)) = broadcasts
        .iter()
        .find(|(_, payload)| payload.len() > shared.max_broadcast_payload)
    {
        shared.refusals.record(Refusal::BroadcastTooLarge);
        tracing::debug!(stream, bytes = payload.len(), "broadcast too large");
        return respond(
            413,
            "text/plain",
            format!(
                "a broadcast of {} bytes does not fit in a connection's queue \
                 (at most {} bytes of payload; see --max-queued-bytes)",
                payload.len(),
                shared.max_broadcast_payload
            ),
        );
    }
    for (stream, payload) in broadcasts {
        if let Some((history, epoch)) = &shared.history {
            let unix_now = crate::credentials::unix_now();
            if let Err(error) = history.append(&stream, &payload, unix_now, epoch).await {
                tracing::warn!(%error, stream, "append to the Redis history failed");
                return respond(503, "text/plain", format!("Redis: {error}"));
            }
            continue;
        }
        match &shared.publisher {
            Some(publisher) => {
                if let Err(error) = publisher.publish(&stream, &payload).await {
                    tracing::warn!(%error, stream, "publish to Redis failed");
                    return respond(503, "text/plain", format!("Redis: {error}"));
                }
            }
            None => {
                if shared
                    .core
                    .send(CoreInput::Broadcast { stream, payload })
                    .await
                    .is_err()
                {
                    return respond(503, "text/plain", "Service Unavailable");
                }
            }
        }
    }
    respond(201, "text/plain", "")
}

async fn control(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let path_and_query = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let body = match read_body(request, shared).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (reply, answer) = oneshot::channel();
    let input = CoreInput::Control {
        method,
        path_and_query,
        body,
        reply,
    };
    if shared.core.send(input).await.is_err() {
        return respond(503, "text/plain", "Service Unavailable");
    }
    match answer.await {
        Ok(Some(response)) => respond(response.status, response.content_type, response.body),
        Ok(None) => not_found(),
        Err(_) => respond(503, "text/plain", "Service Unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_bodies() {
        assert_eq!(
            parse_broadcasts(br#"{"stream":"s","data":"{\"a\":1}"}"#).unwrap(),
            vec![("s".to_owned(), r#"{"a":1}"#.to_owned())]
        );
        assert_eq!(
            parse_broadcasts(br#"[{"stream":"s","data":{"a":1}},{"stream":"t","data":"\"x\""}]"#)
                .unwrap(),
            vec![
                ("s".to_owned(), r#"{"a":1}"#.to_owned()),
                ("t".to_owned(), r#""x""#.to_owned())
            ]
        );
        assert!(parse_broadcasts(br#"{"stream":"s","data":"not json"}"#).is_err());
        assert!(parse_broadcasts(br#"{"data":1}"#).is_err());
        assert!(parse_broadcasts(b"nope").is_err());
    }
}
