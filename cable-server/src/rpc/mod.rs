//! Application logic outside the server: AnyCable's RPC over HTTP.
//!
//! With `--rpc-url URL`, cable-server asks a backend (an
//! `@anycable/serverless-js` app, a Rails app with `anycable-rails`) to
//! connect, subscribe, perform and disconnect, as AnyCable's server does:
//! `POST URL/connect`, `URL/command`, `URL/disconnect`, JSON bodies. Every
//! channel is the backend's except the server's own `$pubsub` streams
//! (`{"channel":"$pubsub","stream_name":S}`, answered as
//! [`PubSubApp`](crate::PubSubApp) does). `--token` and `--jwt-secret` play no part: the backend
//! authenticates.
//!
//! - [`protocol`]: the bodies and answers (serde), the mapping of
//!   transmissions;
//! - [`client`]: HTTP with keep-alive, the concurrency bound, deadlines,
//!   the secret;
//! - [`app`]: [`RpcApp`], the [`CableApp`](crate::CableApp) that turns the
//!   core's events into calls and answers the core's tokens later;
//! - [`disconnects`]: the bounded, rate-limited `/disconnect` queue;
//! - [`hooks`]: [`RpcHooks`], what an app built on [`RpcApp`] adds (the
//!   platformOS app: [`crate::platformos`]).
//!
//! ## Every request
//!
//! `POST`, `Content-Type: application/json`, `x-anycable-meta-sid: <sid>`
//! (a session id the server makes per connection; serverless-js puts it in
//! the welcome), `x-anycable-meta-protov: v1`, and with `--rpc-secret S`
//! `Authorization: Bearer S` (as AnyCable's HTTP RPC). A call waits for one
//! of `--rpc-concurrency` slots and has a deadline, `--rpc-timeout-ms`
//! (waiting for a slot included), enforced by the core's decision deadlines
//! ([`DecisionTimeouts`](cable_proto::server::DecisionTimeouts)) for
//! subscribe and message, by the call itself for connect (the core's
//! connect deadline, one second later, only bounds a stuck task) and for
//! unsubscribe and disconnect. An answer other than HTTP 200, or not JSON,
//! is an error.
//!
//! ## Fields sent
//!
//! | call | field | what we put there |
//! |---|---|---|
//! | all | `env.url` | the upgrade request's absolute URL: `http://` (`https://` with `X-Forwarded-Proto: https`) + `Host` + path and query |
//! | all | `env.headers` | the `--rpc-proxy-header` headers the request had (default `cookie`), names in lower case, and `REMOTE_ADDR` (the TCP peer's IP) |
//! | all | `env.cstate` | the connection state: every `env.cstate` answered so far, merged (an empty value deletes its key); left out when empty |
//! | command | `env.istate` | the subscription's own state, merged from its answers' `env.istate`; left out when empty |
//! | disconnect | `env.istate` | per subscription identifier, its state map as a JSON string (AnyCable's form) |
//! | command | `command` | `subscribe`, `message` (an action), `unsubscribe` (client's unsubscribe) |
//! | command | `identifier` | the identifier string as the client sent it |
//! | command | `connection_identifiers` | the connect answer's `identifiers` |
//! | command | `data` | `message` only: the command's `data` JSON text as it is (an `action`-less `data`, what `subscription.send(data)` sends, too: Rails dispatches it to `receive`) |
//! | disconnect | `identifiers` | the connect answer's `identifiers` |
//! | disconnect | `subscriptions` | the identifiers of the backend's subscriptions the connection had when it closed (`$pubsub` ones excluded) |
//!
//! ## Fields answered
//!
//! | call | field | what we do with it |
//! |---|---|---|
//! | all | `status` | `1` success, `2` failure, `0` (or missing) error; a number, or the enum's name |
//! | all | `error_msg` | logged |
//! | connect | `identifiers` | kept for later calls; also the connection's identity in the core (remote disconnects by identity) |
//! | connect | `transmissions` | `{"type":"welcome",..}`: not sent as such (the core writes the welcome), its other fields (`sid`) join the core's welcome; the `disconnect` frame of a failure: not forwarded (the core's rejection writes `unauthorized`); any other frame: sent after the welcome |
//! | connect | `env.cstate` | merged into the connection state |
//! | command | `streams` | subscribe: the subscription's streams; message: streams started |
//! | command | `stopped_streams` | message: streams stopped |
//! | command | `stop_streams` | message: every stream of the subscription stopped |
//! | command | `transmissions` | `{"identifier":I,"message":M}` for this subscription: `M` transmitted to it (before the confirmation on subscribe); `confirm_subscription`/`reject_subscription` for it: not forwarded (the core writes them from `status`); a `disconnect` frame: its reason and reconnect close the connection; frames for other subscriptions or of other kinds: dropped (logged at debug) |
//! | command | `disconnect` | close the connection afterwards (reason `closed`, reconnect `true`, unless a `disconnect` frame was transmitted) |
//! | command | `env.cstate`, `env.istate` | merged into the connection's and the subscription's state |
//! | command | `presence` | ignored (not part of this implementation) |
//! | disconnect | `status` | `0`: an error (tried again, see below) |
//!
//! ## Outcomes
//!
//! | call | success | failure (`2`) | error (`0`), HTTP error, timeout |
//! |---|---|---|---|
//! | connect | welcome | `{"type":"disconnect","reason":"unauthorized","reconnect":false}` and a close | `{"type":"disconnect","reason":"server_error","reconnect":true}` and a close (logged): the client tries again later, as after AnyCable's close (1011, no frame) on an RPC error |
//! | subscribe | `confirm_subscription` | `reject_subscription` | `reject_subscription` (logged) |
//! | message | outcome applied | outcome applied (as AnyCable) | the command is dropped, nothing applied (logged); the connection's later commands go on |
//! | unsubscribe | state merged | logged | logged (the core already removed the subscription) |
//! | disconnect | done | done | tried again (3 attempts in all, backoff 200 ms, 400 ms), then dropped (logged) |
//!
//! `/disconnect` calls go through a queue (`--rpc-disconnect-rate` calls a
//! second, `--rpc-disconnect-backlog` waiting; full: dropped, counted and
//! logged at most once a second), as AnyCable's disconnect queue, so a mass
//! disconnect does not flood the backend. At shutdown the queue is flushed
//! without the rate, as AnyCable does: the calls of every connection closed
//! by then (the shutdown's own among them) are made before the server exits,
//! within `--shutdown-timeout-ms`. A connection's commands reach the backend one at a time, in
//! arrival order (the core holds the later ones while a decision is
//! pending), except `unsubscribe`, sent when the core has already removed
//! the subscription; other connections proceed meanwhile.
//!
//! ## Broadcasts
//!
//! The backend broadcasts over HTTP: `POST /_broadcast` takes
//! `{"stream":S,"data":D}` with `D` a JSON string (what serverless-js'
//! `broadcaster` and AnyCable's HTTP broadcaster send) or any JSON value,
//! and `--broadcast-key K` checks `Authorization: Bearer K`.

pub mod app;
pub mod client;
pub mod disconnects;
pub mod hooks;
pub mod protocol;

pub use app::{RpcApp, RpcAppSettings};
pub use client::{RpcClient, RpcError, RpcSettings};
pub use hooks::{MessageRefusal, NoHooks, RpcHooks};
