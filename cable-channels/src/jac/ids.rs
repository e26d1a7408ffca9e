//! Jac's ids: generated client and channel ids, ObjectIds, root ids, and the
//! path a client connects to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DecodeError;

/// `<unix seconds>:<uuid4 as 32 lowercase hex>`: the client ids and default channel
/// ids the server generates (e.g. `1795329544:d7844122882c4fe68c2afb45471d322b`).
///
/// Parsing is strict: canonical decimal seconds (no sign, no leading zero), one `:`,
/// exactly 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GeneratedId {
    /// The server's clock when the id was made.
    pub unix_seconds: u64,
    /// The uuid4, as a number.
    pub uuid: u128,
}

impl FromStr for GeneratedId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, DecodeError> {
        let bad = |reason| DecodeError::InvalidId {
            kind: "generated id",
            reason,
        };
        let (secs, hex) = s.split_once(':').ok_or(bad("no `:`"))?;
        if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("seconds are not decimal digits"));
        }
        if secs.len() > 1 && secs.starts_with('0') {
            return Err(bad("seconds have a leading zero"));
        }
        let unix_seconds = secs.parse().map_err(|_| bad("seconds overflow u64"))?;
        if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("not 32 lowercase hex digits after `:`"));
        }
        let uuid = u128::from_str_radix(hex, 16).map_err(|_| bad("bad hex"))?;
        Ok(GeneratedId { unix_seconds, uuid })
    }
}

impl fmt::Display for GeneratedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:032x}", self.unix_seconds, self.uuid)
    }
}

/// A WebSocket client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// In the server's generated format.
    Generated(GeneratedId),
    /// Any other string (never one in the generated format).
    Other(String),
}

/// A channel id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelId {
    /// Picked by the server (no or empty `?channel_id=`).
    Generated(GeneratedId),
    /// Named by the client, URL-decoded (e.g. `room1`, `my room/1`); never a string
    /// in the generated format.
    Named(String),
}

macro_rules! generated_or_string {
    ($ty:ident, $other:ident) => {
        impl $ty {
            /// The structured id, if the string is in the generated format.
            pub fn generated(&self) -> Option<GeneratedId> {
                match self {
                    $ty::Generated(g) => Some(*g),
                    $ty::$other(_) => None,
                }
            }
        }
        impl From<&str> for $ty {
            fn from(s: &str) -> Self {
                match s.parse() {
                    Ok(g) => $ty::Generated(g),
                    Err(_) => $ty::$other(s.to_owned()),
                }
            }
        }
        impl From<String> for $ty {
            fn from(s: String) -> Self {
                match s.parse() {
                    Ok(g) => $ty::Generated(g),
                    Err(_) => $ty::$other(s),
                }
            }
        }
        impl From<GeneratedId> for $ty {
            fn from(g: GeneratedId) -> Self {
                $ty::Generated(g)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $ty::Generated(g) => g.fmt(f),
                    $ty::$other(s) => f.write_str(s),
                }
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($ty::from)
            }
        }
    };
}

generated_or_string!(ClientId, Other);
generated_or_string!(ChannelId, Named);

/// A MongoDB ObjectId: 12 bytes, written as 24 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId(pub [u8; 12]);

impl FromStr for ObjectId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, DecodeError> {
        let b = s.as_bytes();
        if b.len() != 24 {
            return Err(DecodeError::InvalidId {
                kind: "object id",
                reason: "not 24 hex digits",
            });
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(DecodeError::InvalidId {
                kind: "object id",
                reason: "not lowercase hex",
            }),
        };
        let mut out = [0u8; 12];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
        }
        Ok(ObjectId(out))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A node reference such as a user's root: `n:<name>:<ObjectId>`.
///
/// The WebSocket root id is `"n::" + <root_id from /user/login>`. The server matches
/// users by ObjectId only, so `n:Root:<hex>` reaches the same user
/// ([`RootId::same_node`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootId {
    /// `n:<name>:<24 lowercase hex>`.
    Node {
        /// The name segment (usually empty).
        name: String,
        /// The ObjectId.
        object_id: ObjectId,
    },
    /// Any other string (e.g. `"garbage"`); never one in the node format.
    Other(String),
}

impl RootId {
    /// The public (unauthenticated) root, `n::000000000000000000000001`.
    pub const PUBLIC_OBJECT_ID: ObjectId = ObjectId([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    /// `n::000000000000000000000001`, the root every anonymous socket shares.
    pub fn public() -> Self {
        Self::node(Self::PUBLIC_OBJECT_ID)
    }

    /// `n::<object id>`.
    pub fn node(object_id: ObjectId) -> Self {
        RootId::Node {
            name: String::new(),
            object_id,
        }
    }

    /// The ObjectId, if the string is in the node format.
    pub fn object_id(&self) -> Option<ObjectId> {
        match self {
            RootId::Node { object_id, .. } => Some(*object_id),
            RootId::Other(_) => None,
        }
    }

    /// Whether this is the public root (by ObjectId, as the server matches).
    pub fn is_public(&self) -> bool {
        self.object_id() == Some(Self::PUBLIC_OBJECT_ID)
    }

    /// Whether both name the same node (same ObjectId, any name).
    pub fn same_node(&self, other: &RootId) -> bool {
        match (self.object_id(), other.object_id()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

impl From<&str> for RootId {
    fn from(s: &str) -> Self {
        let parsed = s
            .strip_prefix("n:")
            .and_then(|rest| rest.rsplit_once(':'))
            .and_then(|(name, hex)| Some((name, hex.parse::<ObjectId>().ok()?)));
        match parsed {
            Some((name, object_id)) => RootId::Node {
                name: name.to_owned(),
                object_id,
            },
            None => RootId::Other(s.to_owned()),
        }
    }
}

impl From<String> for RootId {
    fn from(s: String) -> Self {
        match RootId::from(s.as_str()) {
            RootId::Other(_) => RootId::Other(s),
            node => node,
        }
    }
}

impl fmt::Display for RootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootId::Node { name, object_id } => write!(f, "n:{name}:{object_id}"),
            RootId::Other(s) => f.write_str(s),
        }
    }
}

impl Serialize for RootId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RootId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RootId::from)
    }
}

/// The path a client connects to: `/websocket`, plus `?channel_id=<id>` (percent-
/// encoded as `encodeURIComponent` does) to join a channel, which is Jac Cloud's
/// notion of subscribing.
pub fn websocket_path(channel_id: Option<&str>) -> String {
    let mut path = String::from("/websocket");
    if let Some(id) = channel_id {
        path.push_str("?channel_id=");
        for b in id.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
    }
    path
}
