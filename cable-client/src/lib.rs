//! # cable-client
//!
//! An Action Cable client on tokio. The protocol is
//! [`cable_proto::client::Consumer`], the IO-free state machine that behaves
//! like `@rails/actioncable`: subscriptions re-sent until confirmed, every
//! subscription re-sent after a reconnect, a stale connection (no frame for
//! more than 6 s) reopened on the JS client's backoff schedule, no reconnect
//! after `reconnect: false`. This crate owns the socket (tokio-tungstenite),
//! the clock and the randomness, and adds what a program needs around it:
//! typed subscriptions ([`Channel`], with Circle's channels from
//! `cable-channels`), a connection [`Status`] to watch, and a credential
//! callback for `token_expired` ([`ClientConfig::on_token_expired`]).
//!
//! It sends an `Origin` header, the URL's own unless told otherwise: Rails
//! and cable-server answer an upgrade with no `Origin` (or one they do not
//! allow) with a bare 404.
//!
//! ## A run loop
//!
//! ```no_run
//! use cable_client::{Client, ClientConfig, PubSubStream, TypedEvent};
//!
//! # async fn run() -> Result<(), cable_client::ClientError> {
//! let client = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/cable"));
//! let mut chat = client.subscribe_to(PubSubStream("chat_1".into())).await?;
//! while let Some(event) = chat.next().await {
//!     match event {
//!         TypedEvent::Connected { reconnected } => eprintln!("subscribed (again: {reconnected})"),
//!         TypedEvent::Received(Ok(message)) => println!("{message}"),
//!         TypedEvent::Received(Err((error, text))) => eprintln!("{error}: {text}"),
//!         TypedEvent::Disconnected { will_reconnect } => eprintln!("lost (back soon: {will_reconnect})"),
//!         TypedEvent::Rejected => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod channel;
mod config;
mod driver;
mod subscription;

use std::marker::PhantomData;

use cable_proto::client::{StopReason, SubscribeError};
use tokio::sync::{mpsc, oneshot, watch};

pub use cable_proto::client::ConsumerConfig;
pub use channel::{Channel, PubSubStream};
pub use config::{ClientConfig, CredentialCallback, CredentialFuture};
pub use subscription::{Subscription, SubscriptionEvent, TypedEvent, TypedSubscription};

use driver::{Driver, Request};

/// The connection's state, as [`Client::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// A connect is under way.
    Connecting,
    /// Welcomed by the server.
    Connected {
        /// The welcome's `sid`, if any.
        sid: Option<String>,
    },
    /// No connection; the client reconnects by itself.
    Disconnected {
        /// Why the last connect failed, if it did.
        error: Option<String>,
    },
    /// The client gave up (or was told to): no more reconnects.
    Stopped(StopReason),
}

/// Why a call on a [`Client`] or a [`Subscription`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The identifier was refused.
    #[error(transparent)]
    Subscribe(SubscribeError),
    /// The connection is not welcomed: nothing was sent.
    #[error("not connected")]
    NotConnected,
    /// The subscription is over (rejected or unsubscribed).
    #[error("unknown subscription")]
    UnknownSubscription,
    /// The client's task is gone.
    #[error("the client is closed")]
    Closed,
}

/// A connection to an Action Cable server that reconnects by itself. Cheap
/// to share by reference; dropping it (and every subscription) closes the
/// connection.
#[derive(Debug)]
pub struct Client {
    requests: mpsc::UnboundedSender<Request>,
    status: watch::Receiver<Status>,
}

impl Client {
    /// Starts connecting (on the current tokio runtime) and returns at once.
    pub fn connect(config: ClientConfig) -> Client {
        let (requests, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(Status::Connecting);
        tokio::spawn(Driver::new(config, rx, status_tx).run());
        Client { requests, status }
    }

    /// The connection's state now.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits until the status satisfies `condition`; gives it, or `None` when
    /// the client's task ended first.
    pub async fn wait_for(&self, condition: impl FnMut(&Status) -> bool) -> Option<Status> {
        let mut status = self.status.clone();
        status.wait_for(condition).await.ok().map(|s| s.clone())
    }

    /// Subscribes with a raw identifier (the JSON text of the params, in the
    /// order the server should see them).
    pub async fn subscribe(&self, identifier: &str) -> Result<Subscription, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Subscribe {
                identifier: identifier.to_owned(),
                reply,
            })
            .map_err(|_| ClientError::Closed)?;
        let (key, events) = answer.await.map_err(|_| ClientError::Closed)??;
        Ok(Subscription {
            key,
            identifier: identifier.to_owned(),
            events,
            requests: self.requests.clone(),
        })
    }

    /// Subscribes to a typed channel.
    pub async fn subscribe_to<C: Channel>(
        &self,
        channel: C,
    ) -> Result<TypedSubscription<C>, ClientError> {
        let inner = self.subscribe(&channel.identifier()).await?;
        Ok(TypedSubscription {
            channel,
            inner,
            _marker: PhantomData,
        })
    }

    /// Closes the connection for good (`consumer.disconnect()`).
    pub fn disconnect(&self) {
        let _ = self.requests.send(Request::Disconnect);
    }
}
