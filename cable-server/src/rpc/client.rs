//! The HTTP side of the RPC: one keep-alive client (hyper-util's pooled
//! client), a bound on the calls in flight, a deadline per call, the
//! secret and AnyCable's metadata headers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;

/// Largest answer body read.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Why an RPC call did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No answer within the deadline (waiting for a slot included).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be sent or its answer not read.
    #[error("transport: {0}")]
    Transport(String),
    /// The backend answered with another status than 200.
    #[error("HTTP status {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer is not the JSON expected.
    #[error("bad answer: {0}")]
    Decode(#[from] serde_json::Error),
    /// `--rpc-url` is not an `http://` URL.
    #[error("bad RPC URL {0:?}: {1}")]
    Url(String, String),
}

/// The settings of an [`RpcClient`].
#[derive(Debug, Clone)]
pub struct RpcSettings {
    /// The base URL; calls go to `<url>/connect`, `/command`, `/disconnect`.
    pub url: String,
    /// Sent as `Authorization: Bearer <secret>`.
    pub secret: Option<String>,
    /// The deadline of one call.
    pub timeout: Duration,
    /// Most calls in flight.
    pub concurrency: usize,
}

/// A client of AnyCable's RPC over HTTP, cheap to clone.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
    authorization: Option<String>,
    timeout: Duration,
    slots: Semaphore,
    /// Where calls are counted and timed, once the host gives it.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("base", &self.inner.base)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client for `settings` (checks the URL).
    pub fn new(settings: &RpcSettings) -> Result<Self, RpcError> {
        let base = settings.url.trim_end_matches('/').to_owned();
        let uri: Uri =
            format!("{base}/connect")
                .parse()
                .map_err(|e: hyper::http::uri::InvalidUri| {
                    RpcError::Url(settings.url.clone(), e.to_string())
                })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(RpcError::Url(
                settings.url.clone(),
                "expected http://HOST[:PORT]/PATH".into(),
            ));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                authorization: settings
                    .secret
                    .as_ref()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("Bearer {s}")),
                timeout: settings.timeout,
                slots: Semaphore::new(settings.concurrency.max(1)),
                metrics: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The deadline of one call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// `POST <url>/<method>` with `body` and `x-anycable-meta-sid: <sid>`;
    /// waits for a slot, all within the deadline.
    pub async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        method: &str,
        sid: &str,
        body: &Q,
    ) -> Result<A, RpcError> {
        let timeout = self.inner.timeout;
        let start = std::time::Instant::now();
        let answer = match tokio::time::timeout(timeout, self.call_untimed(method, sid, body)).await
        {
            Ok(answer) => answer,
            Err(_) => Err(RpcError::Timeout(timeout)),
        };
        if let Some(metrics) = self.inner.metrics.get() {
            let outcome = match &answer {
                Ok(_) => "ok",
                Err(RpcError::Timeout(_)) => "timeout",
                Err(_) => "error",
            };
            metrics.rpc_call(method, outcome, start.elapsed().as_secs_f64());
        }
        answer
    }

    /// Counts a call of `method` that was dropped before it was made.
    pub fn count_dropped(&self, method: &str) {
        if let Some(metrics) = self.inner.metrics.get() {
            metrics.rpc_dropped(method);
        }
    }

    /// Counts and times every call in `metrics` from now on (the first
    /// given stays).
    pub fn attach_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    async fn call_untimed<Q: Serialize, A: DeserializeOwned>(
        &self,
        method: &str,
        sid: &str,
        body: &Q,
    ) -> Result<A, RpcError> {
        let body = serde_json::to_vec(body)?;
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/{method}", self.inner.base))
            .header(CONTENT_TYPE, "application/json")
            .header("x-anycable-meta-sid", sid)
            .header("x-anycable-meta-protov", "v1");
        if let Some(authorization) = &self.inner.authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        let response = self
            .inner
            .http
            .request(request)
            .await
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| RpcError::Transport(e.to_string()))?
            .to_bytes();
        if status != 200 {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(RpcError::Status { status, body: text });
        }
        Ok(serde_json::from_slice(&body)?)
    }
}
