//! Subscription handles: what the application holds, raw or typed.

use std::marker::PhantomData;

use cable_channels::DecodeError;
use cable_proto::client::SubscriptionKey;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::channel::Channel;
use crate::driver::Request;
use crate::ClientError;

/// What happens to a subscription, in order (`@rails/actioncable`'s
/// callbacks).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// Confirmed (`connected`); `reconnected` when it had been confirmed on
    /// an earlier connection (messages may have been missed in between).
    Connected {
        /// Confirmed again after a reconnect.
        reconnected: bool,
    },
    /// Rejected (`rejected`): the subscription is over.
    Rejected,
    /// A message (`received`): the `message` value's JSON text.
    Received(String),
    /// The connection closed (`disconnected`).
    Disconnected {
        /// The client will reconnect and resubscribe by itself.
        will_reconnect: bool,
    },
}

/// A subscription: its events, and the commands it can send. Dropping it
/// unsubscribes (the `unsubscribe` command goes out only when no other
/// subscription of the client shares the identifier, as in the JS client).
#[derive(Debug)]
pub struct Subscription {
    pub(crate) key: SubscriptionKey,
    pub(crate) identifier: String,
    pub(crate) events: mpsc::Receiver<SubscriptionEvent>,
    pub(crate) requests: mpsc::UnboundedSender<Request>,
}

impl Subscription {
    /// The identifier string.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The next event; `None` once the client is gone or the subscription
    /// was rejected and its events read.
    pub async fn next(&mut self) -> Option<SubscriptionEvent> {
        self.events.recv().await
    }

    /// `perform(action, data)`: `data` with `action` added last, sent as a
    /// `message` command. Fails when the connection is not welcomed (the
    /// message is not queued, as in the JS client).
    pub async fn perform(
        &self,
        action: &str,
        data: &Map<String, Value>,
    ) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Perform {
                key: self.key,
                action: Some(action.to_owned()),
                data: data.clone(),
                reply,
            })
            .map_err(|_| ClientError::Closed)?;
        answer.await.map_err(|_| ClientError::Closed)?
    }

    /// `send(data)`: `data` as is (no `action` added).
    pub async fn send(&self, data: &Map<String, Value>) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Perform {
                key: self.key,
                action: None,
                data: data.clone(),
                reply,
            })
            .map_err(|_| ClientError::Closed)?;
        answer.await.map_err(|_| ClientError::Closed)?
    }

    /// Unsubscribes (the same as dropping it).
    pub fn unsubscribe(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.requests.send(Request::Unsubscribe { key: self.key });
    }
}

/// A [`SubscriptionEvent`] with the message decoded by the channel.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TypedEvent<M> {
    /// Confirmed.
    Connected {
        /// Confirmed again after a reconnect.
        reconnected: bool,
    },
    /// Rejected.
    Rejected,
    /// A message, decoded (or why it did not decode, with its text).
    Received(Result<M, (DecodeError, String)>),
    /// The connection closed.
    Disconnected {
        /// The client will reconnect and resubscribe by itself.
        will_reconnect: bool,
    },
}

/// A subscription to a typed [`Channel`].
#[derive(Debug)]
pub struct TypedSubscription<C: Channel> {
    pub(crate) channel: C,
    pub(crate) inner: Subscription,
    pub(crate) _marker: PhantomData<fn() -> C::Message>,
}

impl<C: Channel> TypedSubscription<C> {
    /// The channel.
    pub fn channel(&self) -> &C {
        &self.channel
    }

    /// The untyped subscription under it (perform, send, identifier).
    pub fn raw(&self) -> &Subscription {
        &self.inner
    }

    /// The next event, its message decoded.
    pub async fn next(&mut self) -> Option<TypedEvent<C::Message>> {
        Some(match self.inner.next().await? {
            SubscriptionEvent::Connected { reconnected } => TypedEvent::Connected { reconnected },
            SubscriptionEvent::Rejected => TypedEvent::Rejected,
            SubscriptionEvent::Received(text) => {
                TypedEvent::Received(self.channel.decode(&text).map_err(|e| (e, text)))
            }
            SubscriptionEvent::Disconnected { will_reconnect } => {
                TypedEvent::Disconnected { will_reconnect }
            }
        })
    }

    /// `perform(action, data)`.
    pub async fn perform(
        &self,
        action: &str,
        data: &Map<String, Value>,
    ) -> Result<(), ClientError> {
        self.inner.perform(action, data).await
    }
}
