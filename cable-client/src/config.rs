//! [`ClientConfig`]: where to connect, with which headers, and what to do when
//! the server says the credential expired.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cable_proto::client::ConsumerConfig;

/// The future a [`CredentialCallback`] returns: a fresh token, or `None`
/// when there is none to be had (the client then stops).
pub type CredentialFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// Called when the server disconnects with `token_expired`; the token it
/// gives replaces [`ClientConfig::token`] for every later connection.
pub type CredentialCallback = Arc<dyn Fn() -> CredentialFuture + Send + Sync>;

/// How a [`Client`](crate::Client) connects.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `ws://host:port/cable` (or `wss://` with the `tls` feature).
    pub url: String,
    /// The `Origin` header. `None` sends the URL's own origin
    /// (`http://host:port` for `ws://`, `https://…` for `wss://`), which
    /// Rails and cable-server allow as same-origin: a server refuses an
    /// upgrade with no `Origin`, or a foreign one, with a bare 404.
    pub origin: Option<String>,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// More request headers, in order.
    pub headers: Vec<(String, String)>,
    /// The consumer's timings (the JS client's by default) and extra
    /// subprotocols.
    pub consumer: ConsumerConfig,
    /// A connect (TCP, TLS, upgrade) taking longer fails (10 s).
    pub connect_timeout: Duration,
    /// The largest frame accepted from the server (16 MiB).
    pub max_message_size: usize,
    /// Frames a subscription may hold unread before the client stops reading
    /// the socket for it (1024): backpressure, never loss.
    pub subscription_buffer: usize,
    /// The seed of the reconnect jitter; `None` takes one from the clock.
    pub jitter_seed: Option<u64>,
    /// Asked for a fresh token on `token_expired`; without one the client
    /// stops there.
    pub on_token_expired: Option<CredentialCallback>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("origin", &self.origin)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.len())
            .field("consumer", &self.consumer)
            .field("connect_timeout", &self.connect_timeout)
            .field("on_token_expired", &self.on_token_expired.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            origin: None,
            token: None,
            headers: Vec::new(),
            consumer: ConsumerConfig::default(),
            connect_timeout: Duration::from_secs(10),
            max_message_size: 16 << 20,
            subscription_buffer: 1024,
            jitter_seed: None,
            on_token_expired: None,
        }
    }

    /// Sets the `Origin` header.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Sets the bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the consumer's timings.
    pub fn consumer(mut self, consumer: ConsumerConfig) -> Self {
        self.consumer = consumer;
        self
    }

    /// Sets the jitter seed (a fixed schedule, for tests).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Sets the credential callback for `token_expired`.
    pub fn on_token_expired<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.on_token_expired = Some(Arc::new(move || Box::pin(callback())));
        self
    }

    /// The `Origin` sent: [`ClientConfig::origin`], else the URL's own.
    pub fn effective_origin(&self) -> Option<String> {
        if let Some(origin) = &self.origin {
            return Some(origin.clone());
        }
        let (scheme, rest) = self.url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let scheme = match scheme {
            "wss" | "https" => "https",
            _ => "http",
        };
        Some(format!("{scheme}://{authority}"))
    }
}
