//! `--app circle`: Circle's real-time system (`../shared/seeds/circle-websockets.md`)
//! served on our stack, so that Circle's documented Node client works
//! against it unmodified.
//!
//! - Connections present a member token (`Authorization: Bearer`, or
//!   `?token=`): a JWT (`--jwt-secret`) whose `sub` is the
//!   `community_member_id`, or a static `--token` that is the id itself. The
//!   token's `exp` closes the live connection with `token_expired` at that
//!   instant. Anything else is rejected as unauthorized, and the log says why.
//! - The welcome carries a `sid` unique per connection, as Circle's server
//!   sends it: `{"type":"welcome","sid":"JnehncGjAQuLBIBoImSMk"}`.
//! - `ChatRoomChannel`, `NotificationChannel` and
//!   `Chats::CommunityMemberThreadsChannel` (by `community_member_id`) are
//!   confirmed for the token's own member only; `Chats::RoomChannel` (by
//!   `chat_room_id`) for a member of the room only ([`RoomDirectory`]);
//!   anything else is refused with `reject_subscription`. Streams are named as
//!   `cable_channels::circle` names them, so a backend publishing Circle's
//!   events (`POST /_broadcast`, Redis) reaches the right members.
//! - Actions: none (answered with no effect).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::path::Path;
use std::time::Instant;

use cable_channels::circle::{CircleChannelKind, CircleIdentifier};
use cable_proto::server::{ConnectionAccept, Event, PerformOutcome, Server, SubscriptionAccept};
use cable_proto::JsonText;

use crate::app::{RequestInfo, SyncApp};
use crate::credentials::{unix_now, Credentials};

/// Who is in which chat room: the one question `Chats::RoomChannel` asks. A
/// deployment plugs its database in; [`RoomsFile`] is the embedded default.
pub trait RoomDirectory: Send + 'static {
    /// Whether member `community_member_id` is a participant of room
    /// `chat_room_id`.
    fn is_member(&self, chat_room_id: u64, community_member_id: u64) -> bool;
}

/// Why a rooms file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RoomsFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not `{"chat_rooms": {"<chat_room_id>": [<community_member_id>, ...]}}`.
    #[error("{path} is not {{\"chat_rooms\": {{\"<chat_room_id>\": [<community_member_id>, ...]}}}}: {detail}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// Room membership from a JSON file:
/// `{"chat_rooms": {"<chat_room_id>": [<community_member_id>, ...]}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomsFile {
    rooms: HashMap<u64, HashSet<u64>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsJson {
    chat_rooms: HashMap<String, Vec<u64>>,
}

impl RoomsFile {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, RoomsFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RoomsFileError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|detail| RoomsFileError::Format {
            path: shown,
            detail,
        })
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let json: RoomsJson = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut rooms = HashMap::new();
        for (room, members) in json.chat_rooms {
            let id: u64 = room
                .parse()
                .map_err(|_| format!("room id {room:?} is not a non-negative integer"))?;
            rooms.insert(id, members.into_iter().collect());
        }
        Ok(Self { rooms })
    }
}

impl RoomDirectory for RoomsFile {
    fn is_member(&self, chat_room_id: u64, community_member_id: u64) -> bool {
        self.rooms
            .get(&chat_room_id)
            .is_some_and(|members| members.contains(&community_member_id))
    }
}

/// Session ids for the welcome: 21 characters of `[A-Za-z0-9]` (as Circle's
/// look), from 128 bits that the host's randomness keys and a counter makes
/// unique per connection.
struct SidGenerator {
    keys: [std::collections::hash_map::RandomState; 2],
    counter: u64,
}

impl SidGenerator {
    fn new() -> Self {
        Self {
            keys: Default::default(),
            counter: 0,
        }
    }

    fn next(&mut self) -> String {
        const ALPHABET: &[u8; 62] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        self.counter += 1;
        let high = u128::from(self.keys[0].hash_one(self.counter));
        let low = u128::from(self.keys[1].hash_one(self.counter));
        let mut bits = (high << 64) | low;
        (0..21)
            .map(|_| {
                let c = ALPHABET[(bits % 62) as usize];
                bits /= 62;
                c as char
            })
            .collect()
    }
}

/// The Circle app.
pub struct CircleApp {
    credentials: Credentials,
    rooms: Box<dyn RoomDirectory>,
    sids: SidGenerator,
}

impl std::fmt::Debug for CircleApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircleApp")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl CircleApp {
    /// The app, with the deployment's credentials and room directory.
    pub fn new(credentials: Credentials, rooms: Box<dyn RoomDirectory>) -> Self {
        Self {
            credentials,
            rooms,
            sids: SidGenerator::new(),
        }
    }

    fn decide(&self, member: Option<u64>, identifier: &str) -> Option<SubscriptionAccept> {
        let identifier = CircleIdentifier::parse(identifier).ok()?;
        let member = member?;
        let allowed = match identifier.kind {
            CircleChannelKind::ChatsRoom => self.rooms.is_member(identifier.id, member),
            CircleChannelKind::ChatRoom
            | CircleChannelKind::Notification
            | CircleChannelKind::ChatsCommunityMemberThreads => identifier.id == member,
        };
        allowed.then(|| SubscriptionAccept::new().stream(identifier.stream_name()))
    }
}

impl SyncApp for CircleApp {
    fn name(&self) -> &str {
        "circle"
    }

    fn authenticate(&mut self, request: &RequestInfo) -> Option<ConnectionAccept> {
        let unix_now = unix_now();
        match self.credentials.verify(request, unix_now) {
            Ok(verified) => {
                let sid = self.sids.next();
                Some(
                    verified
                        .accept(Instant::now(), unix_now)
                        .welcome_field("sid", JsonText::string(&sid)),
                )
            }
            Err(error) => {
                tracing::info!(%error, path = request.path_and_query, "circle: connection refused");
                None
            }
        }
    }

    fn handle_event(&mut self, server: &mut Server, event: Event, now: Instant) {
        match event {
            Event::SubscriptionRequested {
                identity,
                identifier,
                pending,
                ..
            } => {
                let member = identity.as_str().parse::<u64>().ok();
                let outcome = match self.decide(member, identifier.as_str()) {
                    Some(accept) => server.accept_subscription(pending, accept, now),
                    None => {
                        tracing::info!(%identity, %identifier, "circle: subscription rejected");
                        server.reject_subscription(pending, now)
                    }
                };
                if let Err(error) = outcome {
                    tracing::warn!(%error, "subscription decision refused by the core");
                }
            }
            Event::Perform(perform) => {
                let _ = server.complete_perform(perform.pending, PerformOutcome::new(), now);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_files_and_their_errors() {
        let rooms = RoomsFile::parse(r#"{"chat_rooms": {"7": [1, 2], "8": []}}"#).unwrap();
        assert!(rooms.is_member(7, 1));
        assert!(!rooms.is_member(7, 3));
        assert!(!rooms.is_member(8, 1));
        assert!(!rooms.is_member(9, 1));
        assert!(RoomsFile::parse(r#"{"chat_rooms": {"x": [1]}}"#).is_err());
        assert!(RoomsFile::parse(r#"{"rooms": {}}"#).is_err());
        assert!(RoomsFile::parse(r#"{"chat_rooms": {"1": ["a"]}}"#).is_err());
    }

    #[test]
    fn sids_look_like_circles_and_differ() {
        let mut sids = SidGenerator::new();
        let a = sids.next();
        let b = sids.next();
        assert_eq!(a.len(), 21);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn member_channels_for_the_member_rooms_for_participants() {
        let rooms = RoomsFile::parse(r#"{"chat_rooms": {"7": [42]}}"#).unwrap();
        let app = CircleApp::new(Credentials::default(), Box::new(rooms));
        let stream = |member, identifier: &str| {
            app.decide(member, identifier)
                .map(|accept| format!("{accept:?}"))
        };
        assert!(stream(
            Some(42),
            r#"{"channel":"ChatRoomChannel","community_member_id":42}"#
        )
        .unwrap()
        .contains("chat-room-channel-42"));
        assert!(stream(
            Some(42),
            r#"{"channel":"ChatRoomChannel","community_member_id":43}"#
        )
        .is_none());
        assert!(stream(
            Some(42),
            r#"{"channel":"NotificationChannel","community_member_id":"42"}"#
        )
        .unwrap()
        .contains("notification-channel-42"));
        assert!(stream(
            Some(42),
            r#"{"channel":"Chats::RoomChannel","chat_room_id":7}"#
        )
        .unwrap()
        .contains("chat-room-7-channel"));
        assert!(stream(
            Some(43),
            r#"{"channel":"Chats::RoomChannel","chat_room_id":7}"#
        )
        .is_none());
        assert!(stream(
            None,
            r#"{"channel":"ChatRoomChannel","community_member_id":42}"#
        )
        .is_none());
        assert!(stream(Some(42), r#"{"channel":"OtherChannel"}"#).is_none());
    }
}
