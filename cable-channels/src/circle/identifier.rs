//! [`CircleIdentifier`]: a subscription's identifier, parsed and rendered.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::CircleChannelKind;
use crate::action_cable::ChannelIdentifier;
use crate::tagged::parse_object;
use crate::{encode_json, DecodeError, Object, Value};

/// A Circle channel identifier: the channel, its id, and any other params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleIdentifier {
    /// Which channel.
    pub kind: CircleChannelKind,
    /// The value of the channel's param ([`CircleChannelKind::param_name`]).
    pub id: u64,
    /// Other params, encoded after the id (keys `channel` and the param are skipped).
    pub extra: Object,
}

impl CircleIdentifier {
    /// An identifier with no extra params.
    pub fn new(kind: CircleChannelKind, id: u64) -> Self {
        Self {
            kind,
            id,
            extra: Object::new(),
        }
    }

    /// `{"channel":"ChatRoomChannel","community_member_id":N}`.
    pub fn chat_room(community_member_id: u64) -> Self {
        Self::new(CircleChannelKind::ChatRoom, community_member_id)
    }

    /// `{"channel":"NotificationChannel","community_member_id":N}`.
    pub fn notification(community_member_id: u64) -> Self {
        Self::new(CircleChannelKind::Notification, community_member_id)
    }

    /// `{"channel":"Chats::RoomChannel","chat_room_id":N}`.
    pub fn chats_room(chat_room_id: u64) -> Self {
        Self::new(CircleChannelKind::ChatsRoom, chat_room_id)
    }

    /// `{"channel":"Chats::CommunityMemberThreadsChannel","community_member_id":N}`.
    pub fn community_member_threads(community_member_id: u64) -> Self {
        Self::new(
            CircleChannelKind::ChatsCommunityMemberThreads,
            community_member_id,
        )
    }

    /// The pubsub stream this subscription streams from.
    pub fn stream_name(&self) -> String {
        self.kind.stream_name(self.id)
    }

    /// Parses an identifier string.
    pub fn parse(identifier: &str) -> Result<Self, DecodeError> {
        let mut obj = parse_object(identifier)?;
        let channel = crate::tagged::take_string(&mut obj, "channel")?;
        let kind = CircleChannelKind::from_channel_name(&channel)
            .ok_or(DecodeError::UnknownChannel(channel))?;
        let param = kind.param_name();
        let invalid = DecodeError::InvalidField {
            field: param,
            expected: "a non-negative integer or a string of digits",
        };
        let id = match obj.shift_remove(param) {
            None => return Err(DecodeError::MissingField { field: param }),
            Some(Value::Number(n)) => n.as_u64().ok_or(invalid)?,
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map_err(|_| invalid)?
            }
            Some(_) => return Err(invalid),
        };
        Ok(Self {
            kind,
            id,
            extra: obj,
        })
    }
}

impl Serialize for CircleIdentifier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let param = self.kind.param_name();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("channel", self.kind.channel_name())?;
        map.serialize_entry(param, &self.id)?;
        for (k, v) in self
            .extra
            .iter()
            .filter(|(k, _)| *k != "channel" && *k != param)
        {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl ChannelIdentifier for CircleIdentifier {
    fn identifier(&self) -> String {
        encode_json(self)
    }
}

impl fmt::Display for CircleIdentifier {
    /// The identifier string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.identifier())
    }
}
