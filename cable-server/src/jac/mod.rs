//! The host of the Jac Cloud dialect (`--mount /websocket=jac`): the
//! IO-free [`cable_proto::dialect::Jac`] on the core task, and the IO its
//! decisions need, each answered back to the core as a
//! `JacAnswer` input:
//!
//! - tokens ([`tokens`]): Jac's HS256 JWT with `--jac-token-secret`, and its
//!   token store in Redis with `--redis-url`;
//! - walkers ([`backend`]): `POST <--jac-backend>/walker/<name>`;
//! - the deployment's other replicas ([`replica`]): Redis channel
//!   `replicas`, in and out, with `--redis-url`.
//!
//! Each Jac socket's keepalive (`keepalive`: a ping every
//! `--jac-ping-interval-ms`, 1011 without its pong within
//! `--jac-ping-timeout-ms`) runs in the socket's own task.
//!
//! Ids come from the host: a client id and a random channel id are
//! `<unix seconds>:<32 hex>` from the clock and the standard library's
//! randomly keyed hasher.

pub mod backend;
mod barrier;
pub(crate) mod keepalive;
pub mod replica;
pub mod tokens;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cable_proto::dialect::jac::{ids, Answer, Decision, Handled, Jac, OpenParams};
use cable_proto::server::{PendingConnection, Protocol, Server};
use cable_proto::{ConnectionId, JsonText};
use tokio::sync::mpsc;

use crate::app::RequestInfo;
use crate::core::CoreInput;
use crate::credentials::unix_now;

pub use backend::Backend;
pub use tokens::JacTokens;

/// The protocol number of Jac connections in the core.
pub(crate) const JAC: u16 = 2;

/// Most client events waiting to be published to the other replicas (past
/// it they are dropped, counted and logged).
const RELAY_QUEUE: usize = 4096;

/// How long a token store lookup may take (past it: the socket is public).
const TOKEN_STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the Jac dialect is configured with.
#[derive(Debug, Default)]
pub struct JacSettings {
    /// The Jac Cloud app's HTTP side, for walkers (none: every walker is
    /// "Invalid request!").
    pub backend: Option<Backend>,
    /// The verifier of tokens (none: every token is invalid, every socket
    /// public).
    pub tokens: Option<Arc<JacTokens>>,
    /// The deployment's Redis, to join it as a replica.
    pub replica: Option<redis::Client>,
}

/// The Jac dialect and its IO, on the core task.
pub(crate) struct JacHost {
    jac: Jac,
    backend: Option<Backend>,
    tokens: Option<Arc<JacTokens>>,
    core: mpsc::Sender<CoreInput>,
    relay: Option<mpsc::Sender<JsonText>>,
    /// With a replica Redis: a walker's response waits for its
    /// notifications ([`barrier`]).
    barrier: Option<Arc<barrier::Barrier>>,
    /// Events not published because the queue to Redis was full.
    relay_dropped: u64,
}

impl JacHost {
    /// The host; with a replica Redis, spawns its subscriber and publisher
    /// (on the current tokio runtime).
    pub(crate) fn new(settings: JacSettings, core: mpsc::Sender<CoreInput>) -> Self {
        let mut barrier = None;
        let relay = settings.replica.map(|client| {
            let instance = generated_id();
            tracing::info!(instance, "jac: joining the deployment's replicas");
            let markers = Arc::new(barrier::Barrier::new(client.clone(), &instance));
            barrier = Some(Arc::clone(&markers));
            tokio::spawn(replica::run_subscriber(
                client.clone(),
                instance.clone(),
                core.clone(),
                markers,
            ));
            let (tx, rx) = mpsc::channel(RELAY_QUEUE);
            tokio::spawn(replica::run_publisher(client, instance, rx));
            tx
        });
        Self {
            jac: Jac::new(Protocol::Custom(JAC)),
            backend: settings.backend,
            tokens: settings.tokens,
            core,
            relay,
            barrier,
            relay_dropped: 0,
        }
    }

    /// A Jac socket opened.
    pub(crate) fn open(
        &mut self,
        server: &mut Server,
        pending: PendingConnection,
        connection: ConnectionId,
        info: &RequestInfo,
        now: Instant,
    ) {
        let auth = info.query_param("auth");
        let params = OpenParams {
            client_id: generated_id(),
            channel_id: info
                .query_param("channel_id")
                .filter(|c| !c.is_empty())
                .unwrap_or_else(generated_id),
            credential: ids::credential(auth.as_deref(), info.authorization()).map(str::to_owned),
            authorization: info.authorization().map(str::to_owned),
        };
        let handled = self.jac.open(server, pending, connection, params, now);
        self.after(server, connection, handled, now);
    }

    /// A frame of a Jac socket.
    pub(crate) fn received(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        frame: &[u8],
        binary: bool,
        now: Instant,
    ) {
        let handled = self.jac.handle(server, connection, frame, binary, now);
        self.after(server, connection, handled, now);
    }

    /// The answer to a decision of the socket.
    pub(crate) fn answer(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        answer: Answer,
        now: Instant,
    ) {
        let handled = self.jac.answer(server, connection, answer, now);
        self.after(server, connection, handled, now);
    }

    /// An event of another replica.
    pub(crate) fn replica_event(&mut self, server: &mut Server, event: &[u8], now: Instant) {
        match self.jac.deliver(server, event, now) {
            Ok(reached) => tracing::debug!(reached, "jac: replica event delivered"),
            Err(error) => tracing::debug!(%error, "jac: replica event refused"),
        }
    }

    /// The frames and bytes of `connection` held for its pending decision.
    pub(crate) fn held(&self, connection: ConnectionId) -> (usize, usize) {
        (
            self.jac.held_frames(connection),
            self.jac.held_bytes(connection),
        )
    }

    /// A socket is gone.
    pub(crate) fn closed(&mut self, connection: ConnectionId) {
        self.jac.close(connection);
    }

    fn after(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        handled: Result<Handled, cable_proto::UsageError>,
        now: Instant,
    ) {
        let mut next = Some(handled);
        while let Some(handled) = next.take() {
            let handled = match handled {
                Ok(handled) => handled,
                Err(error) => {
                    tracing::trace!(%connection, %error, "jac: stale connection");
                    return;
                }
            };
            for error in &handled.errors {
                tracing::debug!(%connection, %error, "jac: refused");
            }
            if let Some(relay) = &self.relay {
                for event in handled.relay {
                    if relay.try_send(event).is_err() {
                        // Redis is slow or gone: the other replicas miss it.
                        self.relay_dropped += 1;
                        if self.relay_dropped.is_power_of_two() {
                            tracing::warn!(
                                dropped = self.relay_dropped,
                                "jac replica: queue to Redis full: events not published"
                            );
                        }
                    }
                }
            }
            for decision in handled.decisions {
                // An answer known at once is applied at once (and may let
                // held frames through: the loop goes on with them).
                if let Some(answer) = self.decide(decision) {
                    next = Some(self.jac.answer(server, connection, answer, now));
                }
            }
        }
    }

    /// Starts a decision: its answer now, or later through the core.
    fn decide(&self, decision: Decision) -> Option<Answer> {
        match decision {
            Decision::Authenticate { connection, token } => {
                let Some(tokens) = self.tokens.clone() else {
                    return Some(Answer::Authenticated(None));
                };
                if !tokens.has_store() {
                    return Some(Answer::Authenticated(tokens.verify_now(&token, unix_now())));
                }
                let core = self.core.clone();
                tokio::spawn(async move {
                    let credential = tokio::time::timeout(
                        TOKEN_STORE_TIMEOUT,
                        tokens.verify(&token, unix_now()),
                    )
                    .await
                    .ok()
                    .flatten();
                    let answer = Answer::Authenticated(credential);
                    let _ = core.send(CoreInput::JacAnswer { connection, answer }).await;
                });
                None
            }
            Decision::Walker {
                connection,
                event,
                token,
            } => {
                let Some(backend) = self.backend.clone() else {
                    return Some(Answer::Walker(backend::walker_error(
                        backend::INVALID_WALKER,
                    )));
                };
                let core = self.core.clone();
                let barrier = self.barrier.clone();
                tokio::spawn(async move {
                    let answer = Answer::Walker(backend.call(&event, token.as_deref()).await);
                    if let Some(barrier) = barrier {
                        barrier.wait().await;
                    }
                    let _ = core.send(CoreInput::JacAnswer { connection, answer }).await;
                });
                None
            }
        }
    }
}

/// The payload of a keepalive ping: 4 random bytes, as Jac Cloud's server
/// (websockets) sends.
pub(crate) fn ping_payload() -> [u8; 4] {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(unix_now().as_nanos() as u64);
    let bytes = hasher.finish().to_le_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// A Jac id: `<unix seconds>:<32 hex>` from the clock and the randomly
/// keyed hasher of the standard library (a fresh key per call, plus a
/// counter).
pub(crate) fn generated_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 16];
    for half in random.chunks_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    ids::generated_id(unix_now().as_secs(), random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_real_servers_shape_and_differ() {
        let a = generated_id();
        let b = generated_id();
        assert!(ids::is_generated_id(&a), "{a}");
        assert_ne!(a, b);
    }
}
