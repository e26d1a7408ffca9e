//! Keeping a walker's notifications ahead of its response, as the real
//! server sends them: a walker's `notify_*` are published to Redis (Jac
//! Cloud publishes synchronously, before the walker returns), so once the
//! walker's HTTP response is in, a marker that cable-server publishes on its
//! own channel reaches cable-server's subscription after every notification
//! of the call (Redis runs commands one at a time and writes a subscriber's
//! messages in that order, whatever their channel). The response is handed
//! to the core once the marker is seen, or after [`WAIT`] at most.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// The longest a walker's response waits for its marker.
pub(crate) const WAIT: Duration = Duration::from_millis(250);

/// The markers of one replica.
pub(crate) struct Barrier {
    client: redis::Client,
    /// The channel markers go through (`replicas:barrier:<instance>`).
    channel: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl Barrier {
    /// The markers of replica `instance`, published with `client`.
    pub(crate) fn new(client: redis::Client, instance: &str) -> Self {
        Self {
            client,
            channel: format!("replicas:barrier:{instance}"),
            next: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
            connection: tokio::sync::Mutex::new(None),
        }
    }

    /// The channel the subscriber must listen to as well.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// Publishes a marker and waits until the subscriber has seen it (and
    /// so has handed every message published before it to the core), or
    /// [`WAIT`] at most.
    pub(crate) async fn wait(&self) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (seen, marker) = oneshot::channel();
        self.lock().insert(id, seen);
        let published = tokio::time::timeout(WAIT, async {
            self.publish(id).await?;
            marker.await.ok()
        })
        .await;
        if !matches!(published, Ok(Some(()))) {
            self.lock().remove(&id);
            tracing::debug!("jac replica: a walker's marker was not seen in time");
        }
    }

    /// The subscriber saw a marker.
    pub(crate) fn seen(&self, payload: &[u8]) {
        let id = std::str::from_utf8(payload)
            .ok()
            .and_then(|p| p.parse::<u64>().ok());
        if let Some(seen) = id.and_then(|id| self.lock().remove(&id)) {
            let _ = seen.send(());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn publish(&self, id: u64) -> Option<()> {
        let mut connection = self.connection.lock().await;
        if connection.is_none() {
            *connection = self.client.get_multiplexed_async_connection().await.ok();
        }
        let c = connection.as_mut()?;
        let mut command = redis::cmd("PUBLISH");
        command.arg(&self.channel).arg(id);
        if command.query_async::<i64>(c).await.is_err() {
            *connection = None;
            return None;
        }
        Some(())
    }
}
