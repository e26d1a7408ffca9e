//! Walker calls through the Jac Cloud app itself: `POST
//! <backend>/walker/<name>` (or `/walker/<name>/<node>`) with the walker's
//! fields as the body and the socket's token as `Authorization: Bearer`,
//! and the answer turned into the frame the real server sends over its
//! WebSocket.
//!
//! Which walkers exist and which need authentication is read from the app's
//! OpenAPI document (`GET /openapi.json`: a `/walker/<name>` path, with a
//! `security` requirement or not), so that the WebSocket's refusals are the
//! real server's: "Invalid request!" for an unknown walker, "requires to be
//! authenticated!" and "requires to be unauthenticated!" both ways, without
//! running it. Without that document, every call goes to the backend and its
//! HTTP answer decides.
//!
//! What cannot be the same over HTTP (documented in the README): a walker
//! must list `"post"` in its methods to be reachable (one that lists only
//! `"websocket"` is "Invalid request!"); `notify_self` is a no-op for a
//! walker run over HTTP; tracebacks are the backend's HTTP ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cable_proto::dialect::jac::event::{traceback, WalkerEvent};
use cable_proto::dialect::jac::WalkerAnswer;
use cable_proto::JsonText;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};

/// The largest walker answer read (bigger: an error frame).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The message of a walker that the backend does not serve.
pub const INVALID_WALKER: &str = "Invalid request! Please use valid walker event!";

/// A bad `--jac-backend`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not http://HOST[:PORT]")]
pub struct BackendUrlError(String);

/// How often the walker index may be fetched again for a name it lacks.
const INDEX_REFRESH: Duration = Duration::from_secs(1);

/// The app's walkers from its OpenAPI document: name -> needs authentication.
#[derive(Debug, Default)]
struct WalkerIndex {
    walkers: Option<HashMap<String, bool>>,
    fetched: Option<Instant>,
}

/// The Jac Cloud app's HTTP side.
#[derive(Debug, Clone)]
pub struct Backend {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
    timeout: Duration,
    index: Arc<tokio::sync::Mutex<WalkerIndex>>,
    /// Calls in flight at most (the rest wait, within their deadline).
    slots: Arc<tokio::sync::Semaphore>,
}

impl Backend {
    /// The backend at `url` (`http://HOST:PORT`), each call bounded by
    /// `timeout`, at most `concurrency` calls in flight.
    pub fn new(url: &str, timeout: Duration, concurrency: usize) -> Result<Self, BackendUrlError> {
        let base = url.trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|_| BackendUrlError(url.to_owned()))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(BackendUrlError(url.to_owned()));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            http,
            base,
            timeout,
            index: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
        })
    }

    /// Runs `event` with the socket's `token`; every outcome is an answer.
    pub async fn call(&self, event: &WalkerEvent, token: Option<&str>) -> WalkerAnswer {
        if event.walker.is_empty()
            || !event
                .walker
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return walker_error(INVALID_WALKER);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let Ok(Ok(_slot)) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
            return exception(&format!(
                "TimeoutError: no free call to the Jac backend within {} ms",
                self.timeout.as_millis()
            ));
        };
        match self.needs_auth(&event.walker, deadline).await {
            Some(None) => return walker_error(INVALID_WALKER),
            Some(Some(true)) if token.is_none() => {
                return walker_error(&format!(
                    "Event {} requires to be authenticated!",
                    event.walker
                ))
            }
            Some(Some(false)) if token.is_some() => {
                return walker_error(&format!(
                    "Event {} requires to be unauthenticated!",
                    event.walker
                ))
            }
            _ => {}
        }
        match tokio::time::timeout_at(deadline, self.post(event, token)).await {
            Ok(Ok((status, body))) => answer(&event.walker, status, &body),
            Ok(Err(error)) => exception(&format!("ConnectionError: the Jac backend: {error}")),
            Err(_) => exception(&format!(
                "TimeoutError: the Jac backend did not answer within {} ms",
                self.timeout.as_millis()
            )),
        }
    }

    /// Whether walker `name` needs authentication: `None` without an
    /// OpenAPI document, `Some(None)` when the app has no such walker.
    async fn needs_auth(&self, name: &str, deadline: tokio::time::Instant) -> Option<Option<bool>> {
        let mut index = self.index.lock().await;
        let known = index.walkers.as_ref().map(|w| w.get(name).copied());
        let stale = index.fetched.is_none_or(|at| at.elapsed() >= INDEX_REFRESH);
        if matches!(known, None | Some(None)) && stale {
            index.fetched = Some(Instant::now());
            let fetched = tokio::time::timeout_at(deadline, self.get("/openapi.json")).await;
            if let Ok(Ok((200, body))) = fetched {
                index.walkers = walker_index(&body);
            }
        }
        index.walkers.as_ref().map(|w| w.get(name).copied())
    }

    async fn get(&self, path: &str) -> Result<(u16, Bytes), String> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }

    async fn post(&self, event: &WalkerEvent, token: Option<&str>) -> Result<(u16, Bytes), String> {
        let mut uri = format!("{}/walker/{}", self.base, event.walker);
        if let Some(node) = &event.node {
            uri.push('/');
            uri.push_str(&percent_encode(node));
        }
        let body =
            serde_json::to_vec(&Value::Object(event.context.clone())).map_err(|e| e.to_string())?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

/// The walkers of an OpenAPI document: each `POST /walker/<name>` path, and
/// whether it has a `security` requirement.
fn walker_index(openapi: &[u8]) -> Option<HashMap<String, bool>> {
    let doc: Value = serde_json::from_slice(openapi).ok()?;
    let mut walkers = HashMap::new();
    for (path, item) in doc.get("paths")?.as_object()? {
        let Some(name) = path.strip_prefix("/walker/") else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        if let Some(post) = item.get("post") {
            let secured = post
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            walkers.insert(name.to_owned(), secured);
        }
    }
    Some(walkers)
}

/// The WebSocket frame for the backend's HTTP answer to walker `name`.
pub fn answer(name: &str, status: u16, body: &[u8]) -> WalkerAnswer {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let detail = value.as_ref().and_then(|v| v.get("detail"));
    match status {
        200..=299 => match std::str::from_utf8(body)
            .ok()
            .and_then(|t| JsonText::new(t).ok())
        {
            Some(body) => WalkerAnswer::Reports(body),
            None => exception("ValueError: the Jac backend's answer is not JSON"),
        },
        // Not authenticated (no token), or a token the backend refused.
        401 | 403 if detail.is_some_and(Value::is_string) => {
            walker_error(&format!("Event {name} requires to be authenticated!"))
        }
        403 => match detail.and_then(|d| d.get("error")).and_then(Value::as_str) {
            Some(message) => walker_error(message),
            None => walker_error(&format!("Event {name} requires to be authenticated!")),
        },
        404 | 405 => walker_error(INVALID_WALKER),
        422 => match detail.and_then(Value::as_array) {
            Some(errors) => error_list(errors.iter().map(websocket_error).collect()),
            None => exception("ValueError: the Jac backend refused the walker's fields"),
        },
        _ => match value
            .as_ref()
            .and_then(|v| v.get("errors"))
            .and_then(Value::as_array)
        {
            Some(lines) => error_list(lines.clone()),
            None => exception(&format!("RuntimeError: the Jac backend answered {status}")),
        },
    }
}

/// A 422 error as the WebSocket side shows it: `loc` without the `body`
/// prefix, and pydantic's `url`.
fn websocket_error(error: &Value) -> Value {
    let Value::Object(map) = error else {
        return error.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match (k.as_str(), v) {
            ("loc", Value::Array(loc)) => {
                let loc = match loc.first() {
                    Some(Value::String(first)) if first == "body" => loc[1..].to_vec(),
                    _ => loc.clone(),
                };
                out.insert(k.clone(), Value::Array(loc));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if !out.contains_key("url") {
        if let Some(Value::String(kind)) = map.get("type") {
            out.insert(
                "url".into(),
                Value::from(format!("https://errors.pydantic.dev/2.10/v/{kind}")),
            );
        }
    }
    Value::Object(out)
}

fn error_list(items: Vec<Value>) -> WalkerAnswer {
    let mut map = Map::new();
    map.insert("error".into(), Value::Array(items));
    WalkerAnswer::Error(frame(Value::Object(map)))
}

fn exception(line: &str) -> WalkerAnswer {
    let mut map = Map::new();
    map.insert("error".into(), traceback(line));
    WalkerAnswer::Error(frame(Value::Object(map)))
}

/// `{"type":"walker","error":<message>}`.
pub fn walker_error(message: &str) -> WalkerAnswer {
    let mut map = Map::new();
    map.insert("type".into(), Value::from("walker"));
    map.insert("error".into(), Value::from(message));
    WalkerAnswer::Error(frame(Value::Object(map)))
}

fn frame(value: Value) -> JsonText {
    JsonText::from_value(&value).unwrap_or_else(|_| JsonText::string(""))
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_frame(answer: WalkerAnswer) -> String {
        match answer {
            WalkerAnswer::Error(frame) => frame.as_str().to_owned(),
            other => panic!("{other:?}"),
        }
    }

    /// The backend's HTTP answers (as the real server gave them) become the
    /// real server's WebSocket frames (jacref README 14-17).
    #[test]
    fn http_answers_become_websocket_frames() {
        assert_eq!(
            answer(
                "echo_report",
                200,
                br#"{"status":200,"reports":[{"echo":7},"second"]}"#
            ),
            WalkerAnswer::Reports(
                JsonText::new(r#"{"status":200,"reports":[{"echo":7},"second"]}"#).unwrap()
            )
        );
        assert_eq!(
            error_frame(answer("nope", 404, br#"{"detail":"Not Found"}"#)),
            r#"{"type":"walker","error":"Invalid request! Please use valid walker event!"}"#
        );
        assert_eq!(
            error_frame(answer(
                "echo_report_auth",
                403,
                br#"{"detail":"Not authenticated"}"#
            )),
            r#"{"type":"walker","error":"Event echo_report_auth requires to be authenticated!"}"#
        );
        assert_eq!(
            error_frame(answer(
                "echo_report",
                422,
                br#"{"detail":[{"type":"missing","loc":["body","val"],"msg":"Field required","input":{}}]}"#
            )),
            r#"{"error":[{"type":"missing","loc":["val"],"msg":"Field required","input":{},"url":"https://errors.pydantic.dev/2.10/v/missing"}]}"#
        );
        let boom = error_frame(answer(
            "boom",
            500,
            br#"{"errors":["Traceback (most recent call last):\n","ValueError: boom happened\n"]}"#,
        ));
        assert_eq!(
            boom,
            r#"{"error":["Traceback (most recent call last):\n","ValueError: boom happened\n"]}"#
        );
        assert_eq!(
            error_frame(answer(
                "echo_report",
                403,
                br#"{"detail":{"error":"You don't have access on target entry n::6b028e084b49d9ccc6934a7d!"}}"#
            )),
            r#"{"type":"walker","error":"You don't have access on target entry n::6b028e084b49d9ccc6934a7d!"}"#
        );
        assert_eq!(percent_encode("n::0a/b c"), "n::0a%2Fb%20c");
        let index = walker_index(
            br#"{"paths":{"/walker/a":{"post":{"security":[{"HTTPBearer":[]}]}},
                 "/walker/a/{node}":{"post":{}},"/walker/b":{"post":{}},"/user/login":{"post":{}}}}"#,
        )
        .unwrap();
        assert_eq!(index.len(), 2);
        assert!(index["a"]);
        assert!(!index["b"]);
    }
}
