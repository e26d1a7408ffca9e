//! Parsing server frames: what an Action Cable server sends and a client
//! receives, in one pass, borrowing from the frame where the JSON allows.
//! The rules are in the documentation of [`parse_server_frame`].

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::DisconnectReason;
use crate::json::{InvalidJson, JsonErrorKind};
use crate::scalar::{read_object, Key, NotAnObject, Scalar};

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
    let fields: Fields<'_> = read_object(text).map_err(|e| match e {
        NotAnObject::OtherValue => ServerFrameError::NotAnObject,
        NotAnObject::Invalid(err) => ServerFrameError::InvalidJson(err),
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
        return Ok(if json.starts_with('{') {
            Scalar::Object
        } else {
            Scalar::Array
        });
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
#[path = "parse_tests.rs"]
mod tests;
