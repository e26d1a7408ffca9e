//! Client commands: parsing (borrowing from the frame where the JSON allows)
//! and encoding (as the `@rails/actioncable` client writes them).
//!
//! ```
//! use cable_proto::command::{parse, Command};
//! let frame = br#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\"}","data":"{\"action\":\"speak\"}"}"#;
//! let Command::Message { identifier, data } = parse(frame).unwrap() else { unreachable!() };
//! assert_eq!(identifier, r#"{"channel":"ChatChannel"}"#);
//! assert_eq!(data, r#"{"action":"speak"}"#);
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{truncate, CommandError};
use crate::json::InvalidJson;

/// A client command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `{"command":"subscribe","identifier":<id>}`
    Subscribe {
        /// The identifier string.
        identifier: Cow<'a, str>,
    },
    /// `{"command":"unsubscribe","identifier":<id>}`
    Unsubscribe {
        /// The identifier string.
        identifier: Cow<'a, str>,
    },
    /// `{"command":"message","identifier":<id>,"data":<JSON text>}`
    Message {
        /// The identifier string.
        identifier: Cow<'a, str>,
        /// The `data` string: JSON text holding `action` and the arguments.
        data: Cow<'a, str>,
    },
}

impl Command<'_> {
    /// The command as `@rails/actioncable` sends it (`JSON.stringify` of
    /// `{command, identifier[, data]}`).
    pub fn encode(&self) -> String {
        fn string(s: &str) -> String {
            serde_json::to_string(s).unwrap_or_default()
        }
        match self {
            Self::Subscribe { identifier } => format!(
                r#"{{"command":"subscribe","identifier":{}}}"#,
                string(identifier)
            ),
            Self::Unsubscribe { identifier } => format!(
                r#"{{"command":"unsubscribe","identifier":{}}}"#,
                string(identifier)
            ),
            Self::Message { identifier, data } => format!(
                r#"{{"command":"message","identifier":{},"data":{}}}"#,
                string(identifier),
                string(data)
            ),
        }
    }

    /// The identifier string of the command.
    pub fn identifier(&self) -> &str {
        match self {
            Self::Subscribe { identifier }
            | Self::Unsubscribe { identifier }
            | Self::Message { identifier, .. } => identifier,
        }
    }

    /// The command with every borrowed string made owned.
    pub fn into_owned(self) -> Command<'static> {
        match self {
            Self::Subscribe { identifier } => Command::Subscribe {
                identifier: Cow::Owned(identifier.into_owned()),
            },
            Self::Unsubscribe { identifier } => Command::Unsubscribe {
                identifier: Cow::Owned(identifier.into_owned()),
            },
            Self::Message { identifier, data } => Command::Message {
                identifier: Cow::Owned(identifier.into_owned()),
                data: Cow::Owned(data.into_owned()),
            },
        }
    }
}

/// Parses one text frame into a command.
pub fn parse(frame: &[u8]) -> Result<Command<'_>, CommandError> {
    if frame.is_empty() {
        return Err(CommandError::EmptyFrame);
    }
    let fields: Fields<'_> = serde_json::from_slice(frame).map_err(|e| {
        let err = InvalidJson::from_serde(e);
        // The visitor refuses non-objects at the first token; tell a valid
        // non-object apart from text that is not JSON at all.
        if err.kind == crate::json::JsonErrorKind::Data {
            match serde_json::from_slice::<IgnoredAny>(frame) {
                Ok(_) => CommandError::NotAnObject,
                Err(e) => CommandError::InvalidJson(InvalidJson::from_serde(e)),
            }
        } else {
            CommandError::InvalidJson(err)
        }
    })?;
    let command = match fields.command {
        None => return Err(CommandError::MissingCommand),
        Some(raw) => match string_of(raw) {
            Some(name) => name,
            None => return Err(CommandError::UnknownCommand(truncate(raw.get(), 64))),
        },
    };
    let identifier = || -> Result<Cow<'_, str>, CommandError> {
        match fields.identifier {
            None => Err(CommandError::MissingIdentifier),
            Some(raw) if raw.get() == "null" => Err(CommandError::MissingIdentifier),
            Some(raw) => string_of(raw).ok_or(CommandError::IdentifierNotString),
        }
    };
    match &*command {
        "subscribe" => Ok(Command::Subscribe {
            identifier: identifier()?,
        }),
        "unsubscribe" => Ok(Command::Unsubscribe {
            identifier: identifier()?,
        }),
        "message" => {
            let identifier = identifier()?;
            let data = match fields.data {
                None => return Err(CommandError::MissingData),
                Some(raw) if raw.get() == "null" => return Err(CommandError::MissingData),
                Some(raw) => string_of(raw).ok_or(CommandError::DataNotString)?,
            };
            Ok(Command::Message { identifier, data })
        }
        _ => Err(CommandError::UnknownCommand(truncate(
            fields.command.map_or("", RawValue::get),
            64,
        ))),
    }
}

/// The string a raw JSON value holds, borrowed when it has no escapes.
fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<CowStr<'_>>(raw.get())
        .ok()
        .map(|s| s.0)
}

/// The `action` of a message's data, checked to be a JSON object.
///
/// Returns `None` for no action (a missing, `null` or empty `action`, which
/// Rails dispatches to `receive`).
pub(crate) fn data_action(data: &str) -> Result<Option<Cow<'_, str>>, CommandError> {
    let action: DataAction<'_> = serde_json::from_str(data).map_err(|e| {
        let err = InvalidJson::from_serde(e);
        if err.kind == crate::json::JsonErrorKind::Data {
            match serde_json::from_str::<IgnoredAny>(data) {
                Ok(_) => CommandError::DataNotObject,
                Err(e) => CommandError::DataNotJson(InvalidJson::from_serde(e)),
            }
        } else {
            CommandError::DataNotJson(err)
        }
    })?;
    match action.0 {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => match string_of(raw) {
            Some(name) if name.is_empty() => Ok(None),
            Some(name) => Ok(Some(name)),
            None => Err(CommandError::ActionNotString),
        },
    }
}

/// The three fields of a command; others are skipped. The last occurrence of
/// a duplicated key wins, as with Ruby's JSON parser.
struct Fields<'a> {
    command: Option<&'a RawValue>,
    identifier: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Fields {
                    command: None,
                    identifier: None,
                    data: None,
                };
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match &*key.0 {
                        "command" => fields.command = Some(map.next_value()?),
                        "identifier" => fields.identifier = Some(map.next_value()?),
                        "data" => fields.data = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// The `action` key of a message's data object.
struct DataAction<'a>(Option<&'a RawValue>);

impl<'de> Deserialize<'de> for DataAction<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DataAction<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a data object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataAction<'de>, A::Error> {
                let mut action = None;
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    if &*key.0 == "action" {
                        action = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(DataAction(action))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A string that borrows from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonErrorKind;

    #[test]
    fn parses_the_three_commands() {
        let sub = br#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}"}"#;
        assert_eq!(
            parse(sub).unwrap(),
            Command::Subscribe {
                identifier: r#"{"channel":"ChatChannel","room":"r1"}"#.into()
            }
        );
        let unsub = br#"{"identifier":"x","command":"unsubscribe","extra":[1,{"a":2}]}"#;
        assert_eq!(
            parse(unsub).unwrap(),
            Command::Unsubscribe {
                identifier: "x".into()
            }
        );
        let msg = br#"{"command":"message","identifier":"id","data":"{\"action\": \"whoami\"}"}"#;
        assert_eq!(
            parse(msg).unwrap(),
            Command::Message {
                identifier: "id".into(),
                data: r#"{"action": "whoami"}"#.into()
            }
        );
    }

    #[test]
    fn borrows_when_there_are_no_escapes() {
        let frame = br#"{"command":"subscribe","identifier":"plain"}"#;
        let Command::Subscribe { identifier } = parse(frame).unwrap() else {
            panic!("not a subscribe")
        };
        assert!(matches!(identifier, Cow::Borrowed("plain")));
    }

    #[test]
    fn bad_frames() {
        use CommandError::*;
        assert_eq!(parse(b"").unwrap_err(), EmptyFrame);
        assert!(
            matches!(parse(b"{nope").unwrap_err(), InvalidJson(e) if e.kind == JsonErrorKind::Syntax)
        );
        assert!(
            matches!(parse(br#"{"command":"subscribe"} x"#).unwrap_err(), InvalidJson(e) if e.kind == JsonErrorKind::Syntax)
        );
        assert!(matches!(parse(b"[1").unwrap_err(), InvalidJson(_)));
        assert_eq!(parse(b"[1]").unwrap_err(), NotAnObject);
        assert_eq!(parse(b"\"subscribe\"").unwrap_err(), NotAnObject);
        assert_eq!(parse(b"{}").unwrap_err(), MissingCommand);
        assert_eq!(
            parse(br#"{"command":"Subscribe","identifier":"x"}"#).unwrap_err(),
            UnknownCommand("\"Subscribe\"".into())
        );
        assert_eq!(
            parse(br#"{"command":5}"#).unwrap_err(),
            UnknownCommand("5".into())
        );
        assert_eq!(
            parse(br#"{"command":"subscribe"}"#).unwrap_err(),
            MissingIdentifier
        );
        assert_eq!(
            parse(br#"{"command":"subscribe","identifier":null}"#).unwrap_err(),
            MissingIdentifier
        );
        assert_eq!(
            parse(br#"{"command":"subscribe","identifier":{"channel":"C"}}"#).unwrap_err(),
            IdentifierNotString
        );
        assert_eq!(
            parse(br#"{"command":"message","identifier":"x"}"#).unwrap_err(),
            MissingData
        );
        assert_eq!(
            parse(br#"{"command":"message","identifier":"x","data":{"action":"a"}}"#).unwrap_err(),
            DataNotString
        );
    }

    #[test]
    fn last_duplicate_key_wins() {
        let frame =
            br#"{"command":"unsubscribe","command":"subscribe","identifier":"a","identifier":"b"}"#;
        assert_eq!(
            parse(frame).unwrap(),
            Command::Subscribe {
                identifier: "b".into()
            }
        );
    }

    #[test]
    fn data_action_rules() {
        assert_eq!(
            data_action(r#"{"text":"hi","action":"speak"}"#).unwrap(),
            Some("speak".into())
        );
        assert_eq!(data_action(r#"{"text":"hi"}"#).unwrap(), None);
        assert_eq!(data_action(r#"{"action":null}"#).unwrap(), None);
        assert_eq!(data_action(r#"{"action":""}"#).unwrap(), None);
        assert_eq!(
            data_action(r#"{"action":5}"#).unwrap_err(),
            CommandError::ActionNotString
        );
        assert_eq!(data_action("[1]").unwrap_err(), CommandError::DataNotObject);
        assert!(matches!(
            data_action("{").unwrap_err(),
            CommandError::DataNotJson(_)
        ));
        assert!(matches!(
            data_action("").unwrap_err(),
            CommandError::DataNotJson(_)
        ));
    }

    #[test]
    fn encode_matches_the_js_client() {
        let cmd = Command::Message {
            identifier: r#"{"channel":"ChatChannel","room":"r1"}"#.into(),
            data: r#"{"text":"hi from alice","action":"speak"}"#.into(),
        };
        assert_eq!(
            cmd.encode(),
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","data":"{\"text\":\"hi from alice\",\"action\":\"speak\"}"}"#
        );
    }
}
