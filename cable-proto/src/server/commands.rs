//! Frames in: Action Cable commands parsed and dispatched, other protocols'
//! frames handed out, and frames held while a decision is pending.

use std::borrow::Cow;
use std::time::Instant;

use bytes::Bytes;

use crate::command::{self, Command};
use crate::error::{truncate, CommandError, UsageError};
use crate::frame::DisconnectReason;
use crate::identifier::{Identifier, IdentifierText, LiteralKey};
use crate::scan::{self, ScannedCommand};
use crate::types::ConnectionId;

use super::config::LimitAction;
use super::decisions::{PendingPerform, PendingSubscription};
use super::events::{Event, Perform, UnsubscribeCause};
use super::records::{Awaiting, ConnState, IdentEntry, Sub, NONE};
use super::Server;

impl Server {
    /// A text frame arrived on `connection`. Whatever the frame holds, this
    /// returns `Ok` for a live connection; what the peer got wrong comes out
    /// as [`Event::CommandFailed`]. On a [`Protocol::Custom`](super::Protocol::Custom)
    /// connection it comes out as [`Event::Received`].
    pub fn handle_text(
        &mut self,
        connection: ConnectionId,
        frame: &[u8],
        now: Instant,
    ) -> Result<(), UsageError> {
        self.handle_frame(connection, frame, false, now)
    }

    /// A binary frame arrived. Action Cable ignores those (Rails logs
    /// "Couldn't handle non-string message": [`CommandError::BinaryFrame`]);
    /// a custom protocol gets it as [`Event::Received`].
    pub fn handle_binary(
        &mut self,
        connection: ConnectionId,
        frame: &[u8],
        now: Instant,
    ) -> Result<(), UsageError> {
        self.handle_frame(connection, frame, true, now)
    }

    fn handle_frame(
        &mut self,
        connection: ConnectionId,
        frame: &[u8],
        binary: bool,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.advance(now);
        self.conn(connection)?;
        let index = connection.index;
        self.ext_keepalive(index);
        let conn = self.conn(connection)?;
        if conn.state == ConnState::Closing {
            self.fail(index, CommandError::Closing);
            return Ok(());
        }
        if binary && conn.protocol.is_action_cable() {
            self.fail(index, CommandError::BinaryFrame { len: frame.len() });
            return Ok(());
        }
        let limits = &self.config.limits;
        if frame.len() > limits.max_frame_bytes {
            let error = CommandError::FrameTooLarge {
                len: frame.len(),
                limit: limits.max_frame_bytes,
            };
            let action = limits.on_frame_too_large;
            self.limit_exceeded(index, error, action);
            return Ok(());
        }
        if conn.awaiting != Awaiting::Nothing {
            let (held_frames, held_bytes) = conn.held_len();
            if held_frames >= limits.max_held_frames
                || held_bytes + frame.len() > limits.max_held_bytes
            {
                let error = CommandError::HoldOverflow {
                    frames: limits.max_held_frames,
                    bytes: limits.max_held_bytes,
                };
                let action = limits.on_hold_overflow;
                self.limit_exceeded(index, error, action);
                return Ok(());
            }
            if let Some(conn) = self.conns.get_mut(index) {
                let held = &mut conn.extra_mut().held;
                held.bytes += frame.len();
                held.frames.push_back((frame.into(), binary));
            }
            return Ok(());
        }
        self.process_frame(index, frame, binary);
        self.flush_overflow();
        Ok(())
    }

    /// How many frames of `connection` are held for a pending decision (a
    /// host may stop reading the socket meanwhile, as cable-server does).
    pub fn held_frames(&self, connection: ConnectionId) -> usize {
        self.conn(connection).map_or(0, |c| c.held_len().0)
    }

    /// How many bytes of `connection`'s frames are held for a pending
    /// decision.
    pub fn held_bytes(&self, connection: ConnectionId) -> usize {
        self.conn(connection).map_or(0, |c| c.held_len().1)
    }

    pub(super) fn fail(&mut self, index: u32, error: CommandError) {
        let connection = self.connection_id(index);
        self.events
            .push_back(Event::CommandFailed { connection, error });
    }

    fn limit_exceeded(&mut self, index: u32, error: CommandError, action: LimitAction) {
        self.fail(index, error);
        if let LimitAction::Disconnect { reconnect } = action {
            self.disconnect_index(index, DisconnectReason::InvalidRequest, reconnect);
        }
    }

    /// The connection's decision is in: handle its held frames, in order,
    /// until the next decision or the end.
    pub(super) fn resume(&mut self, index: u32) {
        self.close_decision(index);
        self.flush_overflow();
        loop {
            let Some(conn) = self.conns.get_mut(index) else {
                return;
            };
            if conn.state != ConnState::Open || conn.awaiting != Awaiting::Nothing {
                return;
            }
            let Some(extra) = conn.extra.as_mut() else {
                return;
            };
            let Some((frame, binary)) = extra.held.frames.pop_front() else {
                conn.shrink_extra();
                return;
            };
            extra.held.bytes -= frame.len();
            self.process_frame(index, &frame, binary);
            self.flush_overflow();
        }
    }

    fn process_frame(&mut self, index: u32, frame: &[u8], binary: bool) {
        let Some(conn) = self.conns.get(index) else {
            return;
        };
        if !conn.protocol.is_action_cable() {
            self.events.push_back(Event::Received {
                connection: self.connection_id(index),
                frame: Bytes::copy_from_slice(frame),
                binary,
            });
            return;
        }
        // The commonest commands take the fast path; anything it is not sure
        // of, the full parser (whose answers are the reference).
        match scan::command(frame) {
            Some(ScannedCommand::Subscribe(identifier)) => {
                self.command_subscribe(index, IdentifierText::Scanned(identifier));
                // A flat subscribe carries no `history` or `presence` object,
                // but an extended connection's extras are looked for all the same.
                if self.is_extended(index) {
                    self.ext_subscribing(index, &identifier.decode(), frame);
                }
                return;
            }
            Some(ScannedCommand::Unsubscribe(identifier)) => {
                return self.command_unsubscribe(index, IdentifierText::Scanned(identifier));
            }
            Some(ScannedCommand::Message { identifier, data }) => {
                return self.command_message(
                    index,
                    IdentifierText::Scanned(identifier),
                    Cow::Owned(data),
                );
            }
            None => {}
        }
        match command::parse(frame) {
            Err(error) => {
                if !self.ext_command(index, frame, &error) {
                    self.fail(index, error);
                }
            }
            Ok(Command::Subscribe { identifier }) => {
                self.command_subscribe(index, IdentifierText::Decoded(&identifier));
                self.ext_subscribing(index, &identifier, frame);
            }
            Ok(Command::Unsubscribe { identifier }) => {
                self.command_unsubscribe(index, IdentifierText::Decoded(&identifier))
            }
            Ok(Command::Message { identifier, data }) => {
                self.command_message(index, IdentifierText::Decoded(&identifier), data)
            }
            // `Command` is non-exhaustive for future (extended protocol) commands.
            #[allow(unreachable_patterns)]
            Ok(_) => self.fail(index, CommandError::UnknownCommand("".into())),
        }
    }

    /// Connection `conn`'s subscription whose identifier's Rails-escaped
    /// literal is `key`. A connection holds few subscriptions (at most
    /// `max_subscriptions`): comparing their literals is cheaper than
    /// hashing `key`, and an index would cost memory.
    fn sub_by_key(&self, conn: u32, key: &[u8]) -> Option<u32> {
        self.subs_of(conn).find(|&s| {
            self.subs.get(s).is_some_and(|sub| {
                self.idents
                    .get(sub.ident)
                    .is_some_and(|e| e.identifier.json_literal() == key)
            })
        })
    }

    /// Connection `conn`'s subscription to the (decoded) `identifier`.
    // Unused by the three commands (their literal takes the fast path), kept
    // for commands that name an identifier and have no literal at hand.
    #[allow(dead_code)]
    pub(super) fn find_sub(&self, conn: u32, identifier: &str) -> Option<u32> {
        self.sub_by_key(conn, &IdentifierText::Decoded(identifier).key())
    }

    fn command_unsubscribe(&mut self, index: u32, identifier: IdentifierText<'_>) {
        match self.sub_by_key(index, &identifier.key()) {
            Some(sub) => self.remove_subscription(sub, Some(UnsubscribeCause::Command)),
            None => self.fail(
                index,
                CommandError::UnknownSubscription {
                    identifier: truncate(&identifier.decoded(), 256),
                },
            ),
        }
    }

    fn command_subscribe(&mut self, index: u32, identifier: IdentifierText<'_>) {
        let key = identifier.key();
        if self.sub_by_key(index, &key).is_some() {
            self.fail(
                index,
                CommandError::AlreadySubscribed {
                    identifier: truncate(&identifier.decoded(), 256),
                },
            );
            return;
        }
        let limits = &self.config.limits;
        let count = self.subs_of(index).count();
        if count >= limits.max_subscriptions {
            let error = CommandError::TooManySubscriptions {
                limit: limits.max_subscriptions,
            };
            let action = limits.on_too_many_subscriptions;
            self.limit_exceeded(index, error, action);
            return;
        }
        let ident = match self.ident_index.get(&*key) {
            Some(&ident) => ident,
            None => match Identifier::parse(&identifier.decoded(), limits.max_identifier_bytes) {
                Ok(identifier) => {
                    let (ident, _) = self.idents.insert(IdentEntry {
                        identifier: identifier.clone(),
                        refs: 0,
                    });
                    self.ident_index.insert(LiteralKey(identifier), ident);
                    ident
                }
                Err(error) => {
                    self.fail(index, CommandError::InvalidIdentifier(error));
                    return;
                }
            },
        };
        if let Some(entry) = self.idents.get_mut(ident) {
            entry.refs += 1;
        }
        let (sub, _) = self.subs.insert(Sub {
            conn: index,
            ident,
            waiting: 0,
            live: false,
            next_of_conn: NONE,
            memberships: Box::default(),
        });
        self.link_sub(index, sub);
        let identity = self.identity_of(index);
        let timeout = self.config.decision_timeouts.subscribe;
        let seq = self.open_decision(index, Awaiting::Subscription, timeout);
        let connection = self.connection_id(index);
        self.events.push_back(Event::SubscriptionRequested {
            connection,
            identity,
            identifier: self.identifier_of(ident).clone(),
            pending: PendingSubscription {
                subscription: self.subscription_id(sub),
                connection,
                seq,
            },
        });
    }

    fn command_message(&mut self, index: u32, identifier: IdentifierText<'_>, data: Cow<'_, str>) {
        let Some(sub) = self.sub_by_key(index, &identifier.key()) else {
            self.fail(
                index,
                CommandError::UnknownSubscription {
                    identifier: truncate(&identifier.decoded(), 256),
                },
            );
            return;
        };
        if !self.subs.get(sub).is_some_and(|s| s.live) {
            // Cannot happen while commands wait for the subscription's
            // decision; kept as Rails' answer to an unconfirmed identifier.
            self.fail(
                index,
                CommandError::UnknownSubscription {
                    identifier: truncate(&identifier.decoded(), 256),
                },
            );
            return;
        }
        let action = match scan::action(&data).map_or_else(|| command::data_action(&data), Ok) {
            Ok(action) => action.map_or_else(|| "receive".into(), |a| Box::<str>::from(&*a)),
            Err(error) => {
                self.fail(index, error);
                return;
            }
        };
        let identifier = self.identifier_of_sub(sub).clone();
        let identity = self.identity_of(index);
        let timeout = self.config.decision_timeouts.perform;
        let seq = self.open_decision(index, Awaiting::Perform, timeout);
        let connection = self.connection_id(index);
        let subscription = self.subscription_id(sub);
        self.events.push_back(Event::Perform(Perform {
            connection,
            subscription,
            identity,
            identifier,
            action,
            data: data.into_owned(),
            pending: PendingPerform {
                subscription,
                connection,
                seq,
            },
        }));
    }
}
