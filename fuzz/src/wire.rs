//! What a host sees on the wire, checked frame by frame: every text frame
//! of an Action Cable connection has a known shape, a disconnect frame is
//! always followed by the close, no frame follows the close, `welcome` comes
//! first, and the bytes queued for a connection (text frames minus what was
//! reported written; the farewell disconnect frame is not counted) never
//! exceed the configured bound and equal what the core reports. A
//! connection of a custom protocol ([`Wire::open_custom`]) gets text frames
//! of any shape (UTF-8), no welcome, and a bare close.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only.

use std::collections::HashMap;

use bytes::Bytes;
use cable_proto::server::{Frame, Server, Transmit};
use cable_proto::ConnectionId;

use crate::frames::{classify, ServerFrame};

/// One drained frame, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A text frame counted against the queue bound.
    Frame(ConnectionId, ServerFrame),
    /// The farewell: `{"type":"disconnect",...}` followed by the close.
    Farewell {
        /// The connection.
        connection: ConnectionId,
        /// The disconnect reason.
        reason: String,
        /// The reconnect flag.
        reconnect: bool,
    },
    /// A text frame of a custom-protocol connection, counted against the
    /// queue bound.
    Custom(ConnectionId, Bytes),
    /// The bare close of a custom-protocol connection.
    Closed(ConnectionId),
}

#[derive(Debug, Default, Clone)]
struct ConnWire {
    welcomed: bool,
    closed: bool,
    queued: usize,
    custom: bool,
}

/// The wire state of every connection the host knows.
#[derive(Debug, Default)]
pub struct Wire {
    conns: HashMap<ConnectionId, ConnWire>,
    /// The configured `max_queued_bytes`.
    pub limit: usize,
}

impl Wire {
    /// A wire for a server whose `max_queued_bytes` is `limit`.
    pub fn new(limit: usize) -> Self {
        Self {
            conns: HashMap::new(),
            limit,
        }
    }

    /// A connection was opened.
    pub fn open(&mut self, connection: ConnectionId) {
        let previous = self.conns.insert(connection, ConnWire::default());
        assert!(previous.is_none(), "connection handle {connection} reused");
    }

    /// A connection of a custom protocol was opened.
    pub fn open_custom(&mut self, connection: ConnectionId) {
        let wire = ConnWire {
            custom: true,
            ..ConnWire::default()
        };
        let previous = self.conns.insert(connection, wire);
        assert!(previous.is_none(), "connection handle {connection} reused");
    }

    /// The host closed the socket: forget the connection.
    pub fn forget(&mut self, connection: ConnectionId) {
        self.conns.remove(&connection);
    }

    /// Whether a close frame was written to the connection.
    pub fn close_sent(&self, connection: ConnectionId) -> bool {
        self.conns.get(&connection).is_some_and(|c| c.closed)
    }

    /// Whether the connection got its welcome.
    pub fn welcomed(&self, connection: ConnectionId) -> bool {
        self.conns.get(&connection).is_some_and(|c| c.welcomed)
    }

    /// Bytes queued and not reported written, as the host counts them.
    pub fn queued(&self, connection: ConnectionId) -> usize {
        self.conns.get(&connection).map_or(0, |c| c.queued)
    }

    /// The host wrote `bytes` of the connection's frames.
    pub fn written(&mut self, connection: ConnectionId, bytes: usize) {
        if let Some(c) = self.conns.get_mut(&connection) {
            c.queued = c.queued.saturating_sub(bytes);
        }
    }

    /// Drains every transmit of `server` and checks it.
    pub fn drain(&mut self, server: &mut Server) -> Vec<Seen> {
        let transmits: Vec<Transmit> = std::iter::from_fn(|| server.poll_transmit()).collect();
        self.check(&transmits)
    }

    /// Checks a batch of transmits, in order.
    pub fn check(&mut self, transmits: &[Transmit]) -> Vec<Seen> {
        let mut seen = Vec::with_capacity(transmits.len());
        let mut i = 0;
        while i < transmits.len() {
            let Transmit { connection, frame } = &transmits[i];
            let connection = *connection;
            let state = self.conns.get_mut(&connection).unwrap_or_else(|| {
                panic!("frame for unknown or closed connection {connection}: {frame:?}")
            });
            assert!(
                !state.closed,
                "frame after the close on {connection}: {frame:?}"
            );
            if state.custom {
                match frame {
                    Frame::Close { code, reason } => {
                        assert_eq!(*code, 1000, "close code");
                        assert_eq!(*reason, "", "close reason");
                        state.closed = true;
                        seen.push(Seen::Closed(connection));
                    }
                    Frame::Text(bytes) => {
                        assert!(
                            std::str::from_utf8(bytes).is_ok(),
                            "text frame that is not UTF-8 on {connection}: {bytes:?}"
                        );
                        state.queued += bytes.len();
                        assert!(
                            state.queued <= self.limit,
                            "{connection}: {} bytes queued, over the bound of {}",
                            state.queued,
                            self.limit
                        );
                        seen.push(Seen::Custom(connection, bytes.clone()));
                    }
                }
                i += 1;
                continue;
            }
            match frame {
                Frame::Close { code, .. } => {
                    panic!("close ({code}) without a disconnect frame before it on {connection}")
                }
                Frame::Text(bytes) => {
                    let classified = classify(bytes);
                    let next_is_close = matches!(
                        transmits.get(i + 1),
                        Some(Transmit { connection: c, frame: Frame::Close { .. } }) if *c == connection
                    );
                    if next_is_close {
                        let ServerFrame::Disconnect { reason, reconnect } = classified else {
                            panic!("close after a frame that is not a disconnect on {connection}: {classified:?}");
                        };
                        if let Some(Transmit {
                            frame:
                                Frame::Close {
                                    code,
                                    reason: close_reason,
                                },
                            ..
                        }) = transmits.get(i + 1)
                        {
                            assert_eq!(*code, 1000, "close code");
                            assert_eq!(*close_reason, "", "close reason");
                        }
                        state.closed = true;
                        seen.push(Seen::Farewell {
                            connection,
                            reason,
                            reconnect,
                        });
                        i += 2;
                        continue;
                    }
                    if let ServerFrame::Disconnect { .. } = classified {
                        panic!("disconnect frame without a close after it on {connection}");
                    }
                    if classified == ServerFrame::Welcome {
                        assert!(!state.welcomed, "second welcome on {connection}");
                        state.welcomed = true;
                    } else {
                        assert!(
                            state.welcomed,
                            "frame before the welcome on {connection}: {classified:?}"
                        );
                    }
                    state.queued += bytes.len();
                    assert!(
                        state.queued <= self.limit,
                        "{connection}: {} bytes queued, over the bound of {}",
                        state.queued,
                        self.limit
                    );
                    seen.push(Seen::Frame(connection, classified));
                }
            }
            i += 1;
        }
        seen
    }

    /// Checks that the core counts the same queued bytes as the host for
    /// every connection, within the bound.
    pub fn check_queued(&self, server: &Server) {
        for (&connection, state) in &self.conns {
            let queued = server.queued_bytes(connection);
            assert_eq!(
                queued, state.queued,
                "{connection}: the core counts {queued} queued bytes, the host {}",
                state.queued
            );
            assert!(queued <= self.limit, "{connection}: queued over the bound");
        }
    }
}
