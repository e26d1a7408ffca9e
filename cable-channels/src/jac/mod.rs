//! Jac Cloud's `/websocket` endpoint (`jac-cloud-websocket.md`, and the recorded
//! behaviour of the real server, `jac-cloud` 0.2.11, in `../shared/jacref/README.md`).
//!
//! Plain WebSocket, JSON text frames. Clients send events tagged by `type`
//! ([`JacClientEvent`]); the server sends one of five shapes ([`JacServerFrame`]):
//! connection info, a walker reply, a walker error, a validation error list, a
//! traceback, and otherwise the delivered `data` object verbatim, with no envelope.
//!
//! # Ids
//!
//! | type | format | other forms |
//! |---|---|---|
//! | [`ClientId`] | `<unix seconds>:<32 lowercase hex>` ([`GeneratedId`]) | kept as [`ClientId::Other`] (a client may name any id; the server just finds nobody) |
//! | [`ChannelId`] | the generated format when the server picks it | any string given in `?channel_id=` is [`ChannelId::Named`] |
//! | [`RootId`] | `n:<name>:<24 lowercase hex ObjectId>`, name usually empty (`n::…`) | kept as [`RootId::Other`] (the server answers a traceback) |
//!
//! Decoding never rejects an id string: every string is representable, and the
//! strict parsers ([`GeneratedId`] and [`ObjectId`] via `FromStr`) say whether it is
//! in the generated format. Classification is exact: a string in the generated
//! format is always the structured variant, so `Display` gives back the same string.

mod client;
mod ids;
mod server;

pub use client::{
    ChangeUserEvent, ChannelEvent, ClientEvent, ConnectionEvent, JacClientEvent, UserEvent,
    WalkerEvent,
};
pub use ids::{websocket_path, ChannelId, ClientId, GeneratedId, ObjectId, RootId};
pub use server::{
    ConnectionInfo, JacServerFrame, LocItem, ValidationError, WalkerError, WalkerResponse,
};
