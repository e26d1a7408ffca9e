//! Parsing server frames: what an Action Cable server sends and a client
//! receives, in one pass, borrowing from the frame where the JSON allows.
//! The rules are in the documentation of [`parse_server_frame`].

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::DisconnectReason;
use crate::json::{InvalidJson, JsonErrorKind};

impl DisconnectReason {
    /// The reason for a disconnect frame's `reason` string; never fails.
    ///
    /// A known reason gives its variant, anything else (AnyCable's
    /// `idle_timeout` and `no_pong` included) gives [`DisconnectReason::Other`],
    /// so `parse(r.as_str())` gives back `r` for every variant, and an `Other`
    /// from `parse` never holds a known reason.
    ///
    /// ```
    /// use cable_proto::DisconnectReason;
    /// assert_eq!(DisconnectReason::parse("server_restart"), DisconnectReason::ServerRestart);
    /// assert_eq!(DisconnectReason::parse("no_pong"), DisconnectReason::Other("no_pong".into()));
    /// assert_eq!("remote".parse(), Ok(DisconnectReason::Remote));
    /// ```
    pub fn parse(reason: &str) -> Self {
        match reason {
            "unauthorized" => Self::Unauthorized,
            "invalid_request" => Self::InvalidRequest,
            "server_restart" => Self::ServerRestart,
            "remote" => Self::Remote,
            "too_slow" => Self::TooSlow,
            "token_expired" => Self::TokenExpired,
            other => Self::Other(Cow::Owned(other.to_owned())),
        }
    }
}

impl FromStr for DisconnectReason {
    type Err = Infallible;

    /// [`DisconnectReason::parse`]: never fails.
    fn from_str(reason: &str) -> Result<Self, Infallible> {
        Ok(Self::parse(reason))
    }
}

/// A frame a server sends, as a client receives it.
///
/// Strings are borrowed from the frame when they hold no JSON escapes. An
/// identifier on the wire is a JSON string holding JSON, so its quotes are
/// always escaped and its decoded form is owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerFrame<'a> {
    /// `{"type":"welcome"}`, possibly with AnyCable's session fields.
    Welcome(Welcome<'a>),
    /// `{"type":"ping","message":<unix seconds>}`
    Ping {
        /// The `message`: the server's clock in Unix seconds; `None` when the
        /// key is missing or `null`.
        unix_seconds: Option<u64>,
    },
    /// `{"identifier":<id>,"type":"confirm_subscription"}`
    Confirm {
        /// The identifier string, decoded: the key the client subscribed with.
        identifier: Cow<'a, str>,
    },
    /// `{"identifier":<id>,"type":"reject_subscription"}`
    Reject {
        /// The identifier string, decoded.
        identifier: Cow<'a, str>,
    },
    /// `{"identifier":<id>,"message":<any JSON>}`: a transmission or a
    /// broadcast. Other keys (AnyCable's `stream_id`, `epoch`, `offset`) are
    /// ignored.
    Message {
        /// The identifier string, decoded.
        identifier: Cow<'a, str>,
        /// The `message` value's JSON text exactly as sent (without the
        /// whitespace around it): borrowed from the frame.
        message: Cow<'a, str>,
    },
    /// `{"type":"disconnect","reason":<reason>,"reconnect":<bool>}`: the
    /// server is about to close the connection.
    Disconnect {
        /// The `reason`; `None` when missing or `null` (Rails'
        /// `close(reason: nil)` sends `null`).
        reason: Option<DisconnectReason>,
        /// The `reconnect` flag; `None` when missing or `null`.
        ///
        /// Rails 6.0+ always sends it (its `close` defaults it to `true`); a
        /// frame without it comes from elsewhere (AnyCable's serverless-js
        /// sends `{"type":"disconnect","reason":"unauthorized"}`). Clients
        /// disagree on what a missing flag means: `@rails/actioncable` passes
        /// it to `close({allowReconnect})`, so it does **not** reconnect;
        /// anycable-client stops only on an explicit `false`, so it does. The
        /// choice is the client's, hence no default here.
        reconnect: Option<bool>,
    },
    /// A frame with a `type` this parser does not know.
    Unknown(UnknownFrame<'a>),
}

impl ServerFrame<'_> {
    /// The identifier the frame is about: that of a confirmation, a
    /// rejection, a message, or an unknown frame with a string `identifier`.
    pub fn identifier(&self) -> Option<&str> {
        match self {
            Self::Confirm { identifier }
            | Self::Reject { identifier }
            | Self::Message { identifier, .. } => Some(identifier),
            Self::Unknown(frame) => frame.identifier.as_deref(),
            Self::Welcome(_) | Self::Ping { .. } | Self::Disconnect { .. } => None,
        }
    }

    /// The frame with every borrowed string made owned.
    pub fn into_owned(self) -> ServerFrame<'static> {
        match self {
            Self::Welcome(welcome) => ServerFrame::Welcome(welcome.into_owned()),
            Self::Ping { unix_seconds } => ServerFrame::Ping { unix_seconds },
            Self::Confirm { identifier } => ServerFrame::Confirm {
                identifier: owned(identifier),
            },
            Self::Reject { identifier } => ServerFrame::Reject {
                identifier: owned(identifier),
            },
            Self::Message {
                identifier,
                message,
            } => ServerFrame::Message {
                identifier: owned(identifier),
                message: owned(message),
            },
            Self::Disconnect { reason, reconnect } => ServerFrame::Disconnect { reason, reconnect },
            Self::Unknown(frame) => ServerFrame::Unknown(frame.into_owned()),
        }
    }
}

/// A welcome frame's fields. Rails sends none; AnyCable sends `sid`, and
/// `restored` and `restored_ids` when it restored a session (extended
/// protocol).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Welcome<'a> {
    /// The session id (`sid`); `None` when missing or `null`.
    pub sid: Option<Cow<'a, str>>,
    /// Whether the server restored the session named by the client's
    /// previous `sid` (`restored`); `false` when missing or `null`.
    pub restored: bool,
    /// The identifiers of the restored subscriptions (`restored_ids`),
    /// decoded; empty when missing or `null`.
    pub restored_ids: Vec<Cow<'a, str>>,
    /// Every key but `type`, `identifier`, `message`, `sid`, `restored` and
    /// `restored_ids`, with its value's raw JSON text, in frame order.
    pub extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl Welcome<'_> {
    /// The welcome with every borrowed string made owned.
    pub fn into_owned(self) -> Welcome<'static> {
        Welcome {
            sid: self.sid.map(owned),
            restored: self.restored,
            restored_ids: self.restored_ids.into_iter().map(owned).collect(),
            extra: owned_pairs(self.extra),
        }
    }
}

/// A frame whose `type` is not one this parser knows, e.g. AnyCable's
/// `{"type":"confirm_history","identifier":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFrame<'a> {
    /// The `type`.
    pub kind: Cow<'a, str>,
    /// The `identifier`, decoded, when it is a string.
    pub identifier: Option<Cow<'a, str>>,
    /// The `message` value's raw JSON text, when there is one.
    pub message: Option<Cow<'a, str>>,
    /// Every key but `type`, `identifier` and `message`, with its value's raw
    /// JSON text, in frame order.
    pub extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl UnknownFrame<'_> {
    /// The frame with every borrowed string made owned.
    pub fn into_owned(self) -> UnknownFrame<'static> {
        UnknownFrame {
            kind: owned(self.kind),
            identifier: self.identifier.map(owned),
            message: self.message.map(owned),
            extra: owned_pairs(self.extra),
        }
    }
}

/// Why a server frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerFrameError {
    /// A text frame with no bytes.
    #[error("empty frame")]
    EmptyFrame,
    /// Not JSON (or not UTF-8), or JSON followed by trailing garbage.
    #[error("frame is not JSON: {0}")]
    InvalidJson(InvalidJson),
    /// JSON, but not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// A key the frame's type needs is missing or `null`: `identifier` (of a
    /// confirmation, a rejection or a message) or `message` (of a message).
    #[error("frame has no {0:?}")]
    MissingField(&'static str),
    /// A key holds a value of the wrong JSON type.
    #[error("{field:?} is not {expected}")]
    WrongType {
        /// The key.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
}

/// Parses one text frame sent by a server.
///
/// The frame's `type` decides the variant, as in `@rails/actioncable`
/// (`connection.js`): no `type` (or `null`) is a message. Key order does not
/// matter (Rails writes `identifier` first, AnyCable's Go code `type` first).
/// A `type` this parser does not know (AnyCable's `pong`, `confirm_history`,
/// `reject_history`, `presence`, ...) gives [`ServerFrame::Unknown`], not an
/// error: a client skips or handles it and carries on. Keys a variant does
/// not interpret are ignored, except in [`Welcome::extra`] and
/// [`UnknownFrame::extra`].
///
/// JSON rules:
/// - The frame is exactly one JSON object in UTF-8; whitespace around it is
///   allowed, anything else after it is [`ServerFrameError::InvalidJson`].
/// - For keys the parser interprets, the last occurrence of a duplicated key
///   wins, as with JavaScript's and Ruby's `JSON.parse`. The `extra` lists
///   keep every occurrence, in frame order.
/// - Keys are compared after unescaping (`"\u0074ype"` is `type`) and are
///   case-sensitive, as are types.
/// - Raw JSON texts (a message, an extra value) are checked against JSON's
///   grammar as `serde_json`'s `RawValue` checks them: no nesting limit, and
///   a lone surrogate escape such as `"\ud800"` is accepted (the grammar
///   allows it and `JSON.parse` takes it; decoding it into a Rust string
///   fails). Strings the parser decodes (keys, `type`, `identifier`, `sid`,
///   `reason`, `restored_ids`) must be valid Unicode.
///
/// ```
/// use cable_proto::frame::{parse_server_frame, ServerFrame};
/// let frame = br#"{"identifier":"{\"channel\":\"ChatChannel\"}","message":{"text":"hi"}}"#;
/// let ServerFrame::Message { identifier, message } = parse_server_frame(frame).unwrap() else {
///     unreachable!()
/// };
/// assert_eq!(identifier, r#"{"channel":"ChatChannel"}"#);
/// assert_eq!(message, r#"{"text":"hi"}"#);
/// ```
pub fn parse_server_frame(frame: &[u8]) -> Result<ServerFrame<'_>, ServerFrameError> {
    if frame.is_empty() {
        return Err(ServerFrameError::EmptyFrame);
    }
    let text = std::str::from_utf8(frame).map_err(|e| {
        ServerFrameError::InvalidJson(invalid_at(frame, e.valid_up_to(), JsonErrorKind::Syntax))
    })?;
    let fields: Fields<'_> = serde_json::from_str(text).map_err(|e| {
        let err = InvalidJson::from_serde(e);
        // Every value is accepted by the visitors, so a data error is the
        // top-level value not being an object; tell a valid non-object apart
        // from text that is not JSON at all.
        if err.kind == JsonErrorKind::Data {
            match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => ServerFrameError::NotAnObject,
                Err(e) => ServerFrameError::InvalidJson(InvalidJson::from_serde(e)),
            }
        } else {
            ServerFrameError::InvalidJson(err)
        }
    })?;
    fields.into_frame(text)
}

/// The keys of a frame in one pass. `type` and `identifier` are decoded,
/// `message` and every other key kept as raw JSON text.
struct Fields<'a> {
    kind: Option<Scalar<'a>>,
    identifier: Option<Scalar<'a>>,
    message: Option<&'a RawValue>,
    extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    fn into_frame(self, text: &'a str) -> Result<ServerFrame<'a>, ServerFrameError> {
        let Fields {
            kind,
            identifier,
            message,
            mut extra,
        } = self;
        let kind = match kind {
            None | Some(Scalar::Null) => None,
            Some(Scalar::Str(kind)) => Some(kind),
            Some(_) => return Err(wrong_type("type", "a string")),
        };
        let identifier_required = |identifier: Option<Scalar<'a>>| match identifier {
            None | Some(Scalar::Null) => Err(ServerFrameError::MissingField("identifier")),
            Some(Scalar::Str(id)) => Ok(id),
            Some(_) => Err(wrong_type("identifier", "a string")),
        };
        let Some(kind) = kind else {
            let identifier = identifier_required(identifier)?;
            let message = match message {
                Some(raw) => Cow::Borrowed(raw.get()),
                None => return Err(ServerFrameError::MissingField("message")),
            };
            return Ok(ServerFrame::Message {
                identifier,
                message,
            });
        };
        match &*kind {
            "welcome" => {
                let sid = match last(&extra, "sid")
                    .map(|raw| scalar(text, raw))
                    .transpose()?
                {
                    None | Some(Scalar::Null) => None,
                    Some(Scalar::Str(sid)) => Some(sid),
                    Some(_) => return Err(wrong_type("sid", "a string")),
                };
                let restored = match last(&extra, "restored")
                    .map(|raw| scalar(text, raw))
                    .transpose()?
                {
                    None | Some(Scalar::Null) => false,
                    Some(Scalar::Bool(restored)) => restored,
                    Some(_) => return Err(wrong_type("restored", "a boolean")),
                };
                let restored_ids = match last(&extra, "restored_ids") {
                    None => Vec::new(),
                    Some(raw) => string_list(text, raw)?,
                };
                extra.retain(|(key, _)| !matches!(&**key, "sid" | "restored" | "restored_ids"));
                Ok(ServerFrame::Welcome(Welcome {
                    sid,
                    restored,
                    restored_ids,
                    extra: raw_pairs(extra),
                }))
            }
            "ping" => {
                let unix_seconds = match message.map(RawValue::get) {
                    None | Some("null") => None,
                    Some(raw) => Some(
                        serde_json::from_str::<u64>(raw)
                            .map_err(|_| wrong_type("message", "a non-negative integer"))?,
                    ),
                };
                Ok(ServerFrame::Ping { unix_seconds })
            }
            "confirm_subscription" => Ok(ServerFrame::Confirm {
                identifier: identifier_required(identifier)?,
            }),
            "reject_subscription" => Ok(ServerFrame::Reject {
                identifier: identifier_required(identifier)?,
            }),
            "disconnect" => {
                let reason = match last(&extra, "reason")
                    .map(|raw| scalar(text, raw))
                    .transpose()?
                {
                    None | Some(Scalar::Null) => None,
                    Some(Scalar::Str(reason)) => Some(DisconnectReason::parse(&reason)),
                    Some(_) => return Err(wrong_type("reason", "a string")),
                };
                let reconnect = match last(&extra, "reconnect")
                    .map(|raw| scalar(text, raw))
                    .transpose()?
                {
                    None | Some(Scalar::Null) => None,
                    Some(Scalar::Bool(reconnect)) => Some(reconnect),
                    Some(_) => return Err(wrong_type("reconnect", "a boolean")),
                };
                Ok(ServerFrame::Disconnect { reason, reconnect })
            }
            _ => Ok(ServerFrame::Unknown(UnknownFrame {
                kind,
                identifier: match identifier {
                    Some(Scalar::Str(id)) => Some(id),
                    _ => None,
                },
                message: message.map(|raw| Cow::Borrowed(raw.get())),
                extra: raw_pairs(extra),
            })),
        }
    }
}

fn wrong_type(field: &'static str, expected: &'static str) -> ServerFrameError {
    ServerFrameError::WrongType { field, expected }
}

fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

fn owned_pairs(
    pairs: Vec<(Cow<'_, str>, Cow<'_, str>)>,
) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    pairs
        .into_iter()
        .map(|(key, value)| (owned(key), owned(value)))
        .collect()
}

fn raw_pairs<'a>(pairs: Vec<(Cow<'a, str>, &'a RawValue)>) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    pairs
        .into_iter()
        .map(|(key, raw)| (key, Cow::Borrowed(raw.get())))
        .collect()
}

/// The last value of `key` among the raw keys.
fn last<'a>(extra: &[(Cow<'a, str>, &'a RawValue)], key: &str) -> Option<&'a RawValue> {
    extra
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, raw)| *raw)
}

/// Where `offset` (a byte offset into `text`) is, as serde_json reports
/// positions: 1-based line, 1-based byte column.
fn invalid_at(text: &[u8], offset: usize, kind: JsonErrorKind) -> InvalidJson {
    let before = &text[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    InvalidJson {
        kind,
        line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
        column: offset - line_start + 1,
    }
}

/// A raw value of the frame `text` decoded as a scalar. Objects and arrays
/// are not looked into.
fn scalar<'a>(text: &'a str, raw: &'a RawValue) -> Result<Scalar<'a>, ServerFrameError> {
    let json = raw.get();
    if json.starts_with(['{', '[']) {
        return Ok(Scalar::Other);
    }
    // Already checked against JSON's grammar; only a string with an escaped
    // lone surrogate fails to decode.
    serde_json::from_str(json).map_err(|_| undecodable(text, json))
}

/// A raw `restored_ids` value decoded as a list of strings.
fn string_list<'a>(
    text: &'a str,
    raw: &'a RawValue,
) -> Result<Vec<Cow<'a, str>>, ServerFrameError> {
    let json = raw.get();
    if json == "null" {
        return Ok(Vec::new());
    }
    if !json.starts_with('[') {
        return Err(wrong_type("restored_ids", "an array of strings"));
    }
    match serde_json::from_str::<StringList<'a>>(json) {
        Ok(list) => Ok(list.0),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(wrong_type("restored_ids", "an array of strings"))
        }
        Err(_) => Err(undecodable(text, json)),
    }
}

/// A string of `json`, a slice of `text`, that does not decode to Unicode.
fn undecodable(text: &str, json: &str) -> ServerFrameError {
    let offset = (json.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    ServerFrameError::InvalidJson(invalid_at(text.as_bytes(), offset, JsonErrorKind::Syntax))
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a frame object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Fields {
                    kind: None,
                    identifier: None,
                    message: None,
                    extra: Vec::new(),
                };
                while let Some(Key(key)) = map.next_key()? {
                    match &*key {
                        "type" => fields.kind = Some(map.next_value()?),
                        "identifier" => fields.identifier = Some(map.next_value()?),
                        "message" => fields.message = Some(map.next_value()?),
                        _ => {
                            let raw: &'de RawValue = map.next_value()?;
                            fields.extra.push((key, raw));
                        }
                    }
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A value as far as the parser needs to know it: a string (borrowed when
/// it has no escapes), `null`, a boolean, or anything else.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Null,
    Bool(bool),
    Other,
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(deserializer)? {
            Scalar::Str(key) => Ok(Key(key)),
            _ => Err(de::Error::custom("a key must be a string")),
        }
    }
}

/// An array of strings, each borrowed when it has no escapes.
struct StringList<'a>(Vec<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StringList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList<'de>, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element::<Scalar<'de>>()? {
                    match item {
                        Scalar::Str(s) => list.push(s),
                        _ => {
                            return Err(de::Error::invalid_type(
                                de::Unexpected::Other("a non-string"),
                                &self,
                            ))
                        }
                    }
                }
                Ok(StringList(list))
            }
        }
        deserializer.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{
        confirm, disconnect, message_from_literal, message_string, ping, reject, welcome,
    };
    use crate::identifier::Identifier;
    use crate::json::write_rails_string;
    use proptest::prelude::*;

    fn parse(frame: &[u8]) -> ServerFrame<'_> {
        parse_server_frame(frame)
            .unwrap_or_else(|e| panic!("{:?} does not parse: {e}", String::from_utf8_lossy(frame)))
    }

    fn err(frame: &[u8]) -> ServerFrameError {
        match parse_server_frame(frame) {
            Ok(parsed) => panic!("{:?} parses to {parsed:?}", String::from_utf8_lossy(frame)),
            Err(e) => e,
        }
    }

    const CHAT: &str = r#"{"channel":"ChatChannel","room":"r1"}"#;

    #[test]
    fn rails_frames() {
        assert_eq!(
            parse(br#"{"type":"welcome"}"#),
            ServerFrame::Welcome(Welcome::default())
        );
        assert_eq!(
            parse(br#"{"type":"ping","message":1795325343}"#),
            ServerFrame::Ping {
                unix_seconds: Some(1795325343)
            }
        );
        assert_eq!(
            parse(br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","type":"confirm_subscription"}"#),
            ServerFrame::Confirm { identifier: CHAT.into() }
        );
        assert_eq!(
            parse(br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","type":"reject_subscription"}"#),
            ServerFrame::Reject { identifier: CHAT.into() }
        );
        assert_eq!(
            parse(br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","message":{"text":"a\u003cb","n":[1,2.5,null]}}"#),
            ServerFrame::Message {
                identifier: CHAT.into(),
                message: r#"{"text":"a\u003cb","n":[1,2.5,null]}"#.into()
            }
        );
        assert_eq!(
            parse(br#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#),
            ServerFrame::Disconnect {
                reason: Some(DisconnectReason::Unauthorized),
                reconnect: Some(false)
            }
        );
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        // AnyCable's Go code writes `type` first.
        assert_eq!(
            parse(b" \n{ \"type\" : \"confirm_subscription\" ,\t\"identifier\":\"{\\\"channel\\\":\\\"C\\\"}\" }\r\n "),
            ServerFrame::Confirm { identifier: r#"{"channel":"C"}"#.into() }
        );
        // The message's text is the value alone, without the whitespace around it.
        assert_eq!(
            parse(b"{\"message\" :  [ 1 , 2 ]  ,\"identifier\":\"x\"}"),
            ServerFrame::Message {
                identifier: "x".into(),
                message: "[ 1 , 2 ]".into()
            }
        );
    }

    #[test]
    fn message_values_of_every_json_type() {
        for value in [
            r#""tock""#,
            "null",
            "0",
            "-1.5e3",
            "true",
            "[]",
            "{}",
            r#"{"a":{"b":[{}]}}"#,
        ] {
            let frame = format!(r#"{{"identifier":"x","message":{value}}}"#);
            assert_eq!(
                parse(frame.as_bytes()),
                ServerFrame::Message {
                    identifier: "x".into(),
                    message: value.into()
                }
            );
        }
    }

    #[test]
    fn borrows_what_has_no_escapes() {
        let frame = br#"{"identifier":"plain","message":{"a":"\n"}}"#;
        let ServerFrame::Message {
            identifier,
            message,
        } = parse(frame)
        else {
            panic!("not a message")
        };
        assert!(matches!(identifier, Cow::Borrowed("plain")));
        assert!(matches!(message, Cow::Borrowed(r#"{"a":"\n"}"#)));
        let frame = br#"{"identifier":"{\"channel\":\"C\"}","type":"confirm_subscription"}"#;
        let ServerFrame::Confirm { identifier } = parse(frame) else {
            panic!("not a confirmation")
        };
        assert!(matches!(identifier, Cow::Owned(_)));
        let ServerFrame::Welcome(welcome) = parse(br#"{"type":"welcome","sid":"s1","x":[1]}"#)
        else {
            panic!("not a welcome")
        };
        assert!(matches!(welcome.sid, Some(Cow::Borrowed("s1"))));
        assert!(matches!(
            welcome.extra[0],
            (Cow::Borrowed("x"), Cow::Borrowed("[1]"))
        ));
    }

    #[test]
    fn anycable_welcome() {
        assert_eq!(
            parse(br#"{"type":"welcome","sid":"abc"}"#),
            ServerFrame::Welcome(Welcome {
                sid: Some("abc".into()),
                ..Welcome::default()
            })
        );
        assert_eq!(
            parse(br#"{"type":"welcome","sid":"new","restored":true,"restored_ids":["{\"channel\":\"A\"}","b"],"server":{"v":1},"z":null}"#),
            ServerFrame::Welcome(Welcome {
                sid: Some("new".into()),
                restored: true,
                restored_ids: vec![r#"{"channel":"A"}"#.into(), "b".into()],
                extra: vec![("server".into(), r#"{"v":1}"#.into()), ("z".into(), "null".into())],
            })
        );
        assert_eq!(
            parse(br#"{"sid":null,"restored":null,"restored_ids":null,"type":"welcome"}"#),
            ServerFrame::Welcome(Welcome::default())
        );
        assert_eq!(
            parse(br#"{"type":"welcome","restored":false,"restored_ids":[]}"#),
            ServerFrame::Welcome(Welcome::default())
        );
        // A welcome's identifier and message mean nothing and are dropped.
        assert_eq!(
            parse(br#"{"type":"welcome","identifier":"x","message":5}"#),
            ServerFrame::Welcome(Welcome::default())
        );
        assert_eq!(
            err(br#"{"type":"welcome","sid":5}"#),
            wrong_type("sid", "a string")
        );
        assert_eq!(
            err(br#"{"type":"welcome","restored":"yes"}"#),
            wrong_type("restored", "a boolean")
        );
        for bad in [
            r#""a""#,
            r#"{"a":"b"}"#,
            "[1]",
            r#"["a",null]"#,
            r#"[["a"]]"#,
        ] {
            let frame = format!(r#"{{"type":"welcome","restored_ids":{bad}}}"#);
            assert_eq!(
                err(frame.as_bytes()),
                wrong_type("restored_ids", "an array of strings"),
                "{frame}"
            );
        }
        // The same keys mean nothing in other frames.
        assert_eq!(
            parse(br#"{"type":"ping","message":1,"sid":5,"restored":"x"}"#),
            ServerFrame::Ping {
                unix_seconds: Some(1)
            }
        );
    }

    #[test]
    fn pings() {
        assert_eq!(
            parse(br#"{"type":"ping"}"#),
            ServerFrame::Ping { unix_seconds: None }
        );
        assert_eq!(
            parse(br#"{"type":"ping","message":null}"#),
            ServerFrame::Ping { unix_seconds: None }
        );
        assert_eq!(
            parse(br#"{"type":"ping","message":18446744073709551615}"#),
            ServerFrame::Ping {
                unix_seconds: Some(u64::MAX)
            }
        );
        for bad in [
            "-1",
            "1.5",
            "1e9",
            "18446744073709551616",
            r#""1700000000""#,
            "[1]",
            "true",
        ] {
            let frame = format!(r#"{{"type":"ping","message":{bad}}}"#);
            assert_eq!(
                err(frame.as_bytes()),
                wrong_type("message", "a non-negative integer"),
                "{frame}"
            );
        }
    }

    #[test]
    fn disconnects() {
        assert_eq!(
            parse(br#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#),
            ServerFrame::Disconnect {
                reason: Some(DisconnectReason::ServerRestart),
                reconnect: Some(true)
            }
        );
        // serverless-js: no reconnect; Rails' close(reason: nil): a null reason.
        assert_eq!(
            parse(br#"{"type":"disconnect","reason":"unauthorized"}"#),
            ServerFrame::Disconnect {
                reason: Some(DisconnectReason::Unauthorized),
                reconnect: None
            }
        );
        assert_eq!(
            parse(br#"{"type":"disconnect","reason":null,"reconnect":true}"#),
            ServerFrame::Disconnect {
                reason: None,
                reconnect: Some(true)
            }
        );
        assert_eq!(
            parse(br#"{"type":"disconnect","reconnect":null}"#),
            ServerFrame::Disconnect {
                reason: None,
                reconnect: None
            }
        );
        assert_eq!(
            parse(br#"{"reconnect":false,"reason":"idle_timeout","type":"disconnect"}"#),
            ServerFrame::Disconnect {
                reason: Some(DisconnectReason::Other("idle_timeout".into())),
                reconnect: Some(false)
            }
        );
        assert_eq!(
            parse(br#"{"type":"disconnect","reason":"a\u003cb"}"#),
            ServerFrame::Disconnect {
                reason: Some(DisconnectReason::Other("a<b".into())),
                reconnect: None
            }
        );
        assert_eq!(
            err(br#"{"type":"disconnect","reason":1}"#),
            wrong_type("reason", "a string")
        );
        assert_eq!(
            err(br#"{"type":"disconnect","reconnect":"false"}"#),
            wrong_type("reconnect", "a boolean")
        );
        assert_eq!(
            err(br#"{"type":"disconnect","reconnect":0}"#),
            wrong_type("reconnect", "a boolean")
        );
    }

    #[test]
    fn unknown_types_are_surfaced() {
        assert_eq!(
            parse(br#"{"type":"confirm_history","identifier":"{\"channel\":\"C\"}"}"#),
            ServerFrame::Unknown(UnknownFrame {
                kind: "confirm_history".into(),
                identifier: Some(r#"{"channel":"C"}"#.into()),
                message: None,
                extra: vec![],
            })
        );
        assert_eq!(
            parse(br#"{"type":"pong"}"#),
            ServerFrame::Unknown(UnknownFrame {
                kind: "pong".into(),
                identifier: None,
                message: None,
                extra: vec![]
            })
        );
        let frame = br#"{"type":"presence","identifier":"x","message":{"type":"join","id":"1"},"reason":5}"#;
        let parsed = parse(frame);
        assert_eq!(parsed.identifier(), Some("x"));
        assert_eq!(
            parsed,
            ServerFrame::Unknown(UnknownFrame {
                kind: "presence".into(),
                identifier: Some("x".into()),
                message: Some(r#"{"type":"join","id":"1"}"#.into()),
                extra: vec![("reason".into(), "5".into())],
            })
        );
        // Nothing about an unknown frame's keys is required.
        assert_eq!(
            parse(br#"{"type":"","identifier":7}"#),
            ServerFrame::Unknown(UnknownFrame {
                kind: "".into(),
                identifier: None,
                message: None,
                extra: vec![]
            })
        );
        // Types are case-sensitive, as in the JS client.
        assert!(matches!(
            parse(br#"{"type":"Welcome"}"#),
            ServerFrame::Unknown(_)
        ));
    }

    #[test]
    fn type_rules() {
        // A null type is no type: a message, as the JS client has it.
        assert_eq!(
            parse(br#"{"type":null,"identifier":"x","message":1}"#),
            ServerFrame::Message {
                identifier: "x".into(),
                message: "1".into()
            }
        );
        for bad in ["1", "true", "[]", r#"{"a":1}"#] {
            let frame = format!(r#"{{"type":{bad},"identifier":"x","message":1}}"#);
            assert_eq!(
                err(frame.as_bytes()),
                wrong_type("type", "a string"),
                "{frame}"
            );
        }
        // A type is a type even next to a message.
        assert_eq!(
            parse(br#"{"identifier":"x","message":1,"type":"confirm_subscription"}"#),
            ServerFrame::Confirm {
                identifier: "x".into()
            }
        );
    }

    #[test]
    fn required_keys() {
        use ServerFrameError::MissingField;
        assert_eq!(err(b"{}"), MissingField("identifier"));
        assert_eq!(err(br#"{"message":1}"#), MissingField("identifier"));
        assert_eq!(
            err(br#"{"identifier":null,"message":1}"#),
            MissingField("identifier")
        );
        assert_eq!(err(br#"{"identifier":"x"}"#), MissingField("message"));
        assert_eq!(
            err(br#"{"type":"confirm_subscription"}"#),
            MissingField("identifier")
        );
        assert_eq!(
            err(br#"{"type":"reject_subscription","identifier":null}"#),
            MissingField("identifier")
        );
        assert_eq!(
            err(br#"{"type":"confirm_subscription","identifier":{"channel":"C"}}"#),
            wrong_type("identifier", "a string")
        );
        assert_eq!(
            err(br#"{"identifier":1,"message":1}"#),
            wrong_type("identifier", "a string")
        );
        // An empty identifier is a string like any other: it is not checked
        // to be JSON, it is the key the client subscribed with.
        assert_eq!(
            parse(br#"{"identifier":"","message":1}"#),
            ServerFrame::Message {
                identifier: "".into(),
                message: "1".into()
            }
        );
    }

    #[test]
    fn last_duplicate_wins_other_keys_are_all_kept() {
        assert_eq!(
            parse(br#"{"type":"ping","type":"confirm_subscription","identifier":"a","identifier":"b"}"#),
            ServerFrame::Confirm { identifier: "b".into() }
        );
        assert_eq!(
            parse(br#"{"identifier":"a","message":1,"message":{"x":2}}"#),
            ServerFrame::Message {
                identifier: "a".into(),
                message: r#"{"x":2}"#.into()
            }
        );
        assert_eq!(
            parse(br#"{"type":"disconnect","reconnect":true,"reason":"remote","reconnect":false}"#),
            ServerFrame::Disconnect {
                reason: Some(DisconnectReason::Remote),
                reconnect: Some(false)
            }
        );
        // The last `sid` wins even when an earlier one is of the wrong type.
        assert_eq!(
            parse(br#"{"type":"welcome","sid":5,"x":1,"sid":"b","x":2}"#),
            ServerFrame::Welcome(Welcome {
                sid: Some("b".into()),
                extra: vec![("x".into(), "1".into()), ("x".into(), "2".into())],
                ..Welcome::default()
            })
        );
    }

    #[test]
    fn keys_are_compared_unescaped() {
        assert_eq!(
            parse(br#"{"\u0074ype":"confirm_subscription","identif\u0069er":"x"}"#),
            ServerFrame::Confirm {
                identifier: "x".into()
            }
        );
        assert_eq!(
            parse(br#"{"type":"welcome","s\u0069d":"a","\u00e9":1}"#),
            ServerFrame::Welcome(Welcome {
                sid: Some("a".into()),
                extra: vec![("é".into(), "1".into())],
                ..Welcome::default()
            })
        );
    }

    #[test]
    fn bad_frames() {
        use ServerFrameError::*;
        assert_eq!(err(b""), EmptyFrame);
        for frame in [
            &b"{nope"[..],
            b"{\"type\":\"welcome\"} x",
            b"{\"type\":\"welcome\"}{}",
            b"[1",
            b"{\"type\":\"welcome\"",
            b" ",
            b"nul",
            b"{\"a\":01}",
            b"{\"a\":'x'}",
            b"{\"a\":1,}",
        ] {
            assert!(
                matches!(err(frame), InvalidJson(_)),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
        assert!(matches!(err(b"{\"a\":1} x"), InvalidJson(e) if e.kind == JsonErrorKind::Syntax));
        assert!(matches!(err(b"{\"a\":"), InvalidJson(e) if e.kind == JsonErrorKind::Eof));
        for frame in [&b"[1]"[..], b"\"welcome\"", b"1", b"null", b" true "] {
            assert_eq!(
                err(frame),
                NotAnObject,
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn positions_of_errors() {
        // Not UTF-8: the position of the first bad byte.
        assert_eq!(
            err(b"{\"type\":\n \"w\xffelcome\"}"),
            ServerFrameError::InvalidJson(InvalidJson {
                kind: JsonErrorKind::Syntax,
                line: 2,
                column: 4
            })
        );
        // A lone surrogate is JSON's grammar, so a raw message keeps it...
        assert_eq!(
            parse(br#"{"identifier":"x","message":"\ud800"}"#),
            ServerFrame::Message {
                identifier: "x".into(),
                message: r#""\ud800""#.into()
            }
        );
        // ...but a string the parser decodes cannot hold it.
        assert!(matches!(
            err(br#"{"identifier":"\ud800","message":1}"#),
            ServerFrameError::InvalidJson(e) if e.kind == JsonErrorKind::Syntax
        ));
        assert_eq!(
            err(b"{\"type\":\"welcome\",\n\"sid\": \"\\udc00\"}"),
            ServerFrameError::InvalidJson(InvalidJson {
                kind: JsonErrorKind::Syntax,
                line: 2,
                column: 8
            })
        );
        assert!(matches!(
            err(br#"{"type":"welcome","restored_ids":["\ud800"]}"#),
            ServerFrameError::InvalidJson(e) if e.kind == JsonErrorKind::Syntax
        ));
    }

    #[test]
    fn deep_messages_have_no_nesting_limit() {
        let depth = 10_000;
        let value = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let frame = format!(r#"{{"identifier":"x","message":{value},"extra":{value}}}"#);
        assert_eq!(
            parse(frame.as_bytes()),
            ServerFrame::Message {
                identifier: "x".into(),
                message: value.as_str().into()
            }
        );
        let unbalanced = format!(r#"{{"identifier":"x","message":{}}}"#, "[".repeat(depth));
        assert!(matches!(
            err(unbalanced.as_bytes()),
            ServerFrameError::InvalidJson(_)
        ));
    }

    #[test]
    fn into_owned_keeps_the_frame() {
        let frames: [&[u8]; 4] = [
            br#"{"type":"welcome","sid":"s","restored":true,"restored_ids":["a"],"x":1}"#,
            br#"{"identifier":"a","message":[1]}"#,
            br#"{"type":"presence","identifier":"a","message":2,"y":3}"#,
            br#"{"type":"disconnect","reason":"other"}"#,
        ];
        for frame in frames {
            let parsed = parse(frame);
            assert_eq!(parsed.clone().into_owned(), parsed);
        }
    }

    #[test]
    fn disconnect_reasons_round_trip() {
        use DisconnectReason::*;
        // No wildcard: a new variant must be added here, and to `parse`.
        fn known(reason: &DisconnectReason) -> bool {
            match reason {
                Unauthorized | InvalidRequest | ServerRestart | Remote | TooSlow | TokenExpired => {
                    true
                }
                Other(_) => false,
            }
        }
        let all = [
            Unauthorized,
            InvalidRequest,
            ServerRestart,
            Remote,
            TooSlow,
            TokenExpired,
        ];
        for reason in &all {
            assert!(known(reason));
            assert_eq!(&DisconnectReason::parse(reason.as_str()), reason);
            assert_eq!(
                reason.as_str().parse::<DisconnectReason>().as_ref(),
                Ok(reason)
            );
        }
        for other in [
            "",
            "idle_timeout",
            "no_pong",
            "Unauthorized",
            "unauthorized ",
            "é<",
        ] {
            let reason = DisconnectReason::parse(other);
            assert_eq!(reason, Other(other.to_owned().into()));
            assert_eq!(reason.as_str(), other);
        }
    }

    #[test]
    fn builders_parse_back() {
        let chat = Identifier::parse(CHAT, usize::MAX).unwrap();
        assert_eq!(parse(&welcome()), ServerFrame::Welcome(Welcome::default()));
        assert_eq!(
            parse(&ping(0)),
            ServerFrame::Ping {
                unix_seconds: Some(0)
            }
        );
        assert_eq!(
            parse(&ping(u64::MAX)),
            ServerFrame::Ping {
                unix_seconds: Some(u64::MAX)
            }
        );
        assert_eq!(
            parse(&confirm(&chat)),
            ServerFrame::Confirm {
                identifier: CHAT.into()
            }
        );
        assert_eq!(
            parse(&reject(&chat)),
            ServerFrame::Reject {
                identifier: CHAT.into()
            }
        );
        assert_eq!(
            parse(&message_string(&chat, "<b>\u{2028}")),
            ServerFrame::Message {
                identifier: CHAT.into(),
                message: r#""\u003cb\u003e\u2028""#.into()
            }
        );
        for reason in [
            DisconnectReason::Unauthorized,
            DisconnectReason::InvalidRequest,
            DisconnectReason::ServerRestart,
            DisconnectReason::Remote,
            DisconnectReason::TooSlow,
            DisconnectReason::TokenExpired,
            DisconnectReason::Other("a<b\"\n".into()),
        ] {
            for reconnect in [false, true] {
                assert_eq!(
                    parse(&disconnect(&reason, reconnect)),
                    ServerFrame::Disconnect {
                        reason: Some(reason.clone()),
                        reconnect: Some(reconnect)
                    }
                );
            }
        }
    }

    /// Arbitrary JSON values, strings with every kind of character.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Whole floats: serde_json's default float parsing may be off by an ulp
            // on others.
            any::<i32>().prop_map(|n| Value::from(f64::from(n))),
            any::<String>().prop_map(Value::String),
            "[<>&\u{2028}\"\\\\/\u{0}-\u{1f}a]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn message_frames_round_trip(
            identifier in prop_oneof![any::<String>(), "[<>&\u{2028}\"\\\\/\u{0}-\u{1f}a-c]{0,12}"],
            value in json_value(),
        ) {
            let mut literal = Vec::new();
            write_rails_string(&mut literal, &identifier);
            let payload = crate::json::to_rails_json(&value).unwrap();
            let frame = message_from_literal(&literal, payload.as_bytes());
            let ServerFrame::Message { identifier: parsed_id, message } = parse(&frame) else {
                panic!("not a message: {frame:?}");
            };
            prop_assert_eq!(&parsed_id, &identifier);
            // Borrowed exactly when the literal is the string between quotes.
            prop_assert_eq!(
                matches!(parsed_id, Cow::Borrowed(_)),
                literal[1..literal.len() - 1] == *identifier.as_bytes()
            );
            prop_assert!(matches!(message, Cow::Borrowed(_)));
            prop_assert_eq!(&*message, payload.as_str());
            prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&message).unwrap(), value);
        }

        #[test]
        fn identifier_frames_round_trip(room in any::<String>(), kind in 0..2u8) {
            let raw = serde_json::json!({"channel": "ChatChannel", "room": room}).to_string();
            let id = Identifier::parse(&raw, usize::MAX).unwrap();
            let (frame, expected) = if kind == 0 {
                (confirm(&id), ServerFrame::Confirm { identifier: raw.as_str().into() })
            } else {
                (reject(&id), ServerFrame::Reject { identifier: raw.as_str().into() })
            };
            prop_assert_eq!(parse(&frame), expected);
        }

        #[test]
        fn disconnect_frames_round_trip(reason in any::<String>(), reconnect in any::<bool>()) {
            let reason = DisconnectReason::parse(&reason);
            let frame = disconnect(&reason, reconnect);
            prop_assert_eq!(
                parse(&frame),
                ServerFrame::Disconnect { reason: Some(reason), reconnect: Some(reconnect) }
            );
        }

        #[test]
        fn ping_frames_round_trip(unix_seconds in any::<u64>()) {
            let frame = ping(unix_seconds);
            prop_assert_eq!(parse(&frame), ServerFrame::Ping { unix_seconds: Some(unix_seconds) });
        }
    }
}
