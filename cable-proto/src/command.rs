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

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::CommandError;
use crate::json::InvalidJson;
use crate::scalar::{read_object, Key, NotAnObject, Scalar};

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
    // One UTF-8 check of the whole frame (a WebSocket text frame is UTF-8
    // already) spares the parser a check per string.
    let text = std::str::from_utf8(frame).map_err(|e| {
        CommandError::InvalidJson(InvalidJson {
            kind: crate::json::JsonErrorKind::Syntax,
            line: 1,
            column: e.valid_up_to() + 1,
        })
    })?;
    let fields: Fields<'_> = read_object(text).map_err(|e| match e {
        NotAnObject::OtherValue => CommandError::NotAnObject,
        NotAnObject::Invalid(err) => CommandError::InvalidJson(err),
    })?;
    let command = match fields.command {
        None => return Err(CommandError::MissingCommand),
        Some(Scalar::Str(name)) => name,
        Some(other) => return Err(CommandError::UnknownCommand(other.describe())),
    };
    let Fields {
        identifier, data, ..
    } = fields;
    let identifier = || -> Result<Cow<'_, str>, CommandError> {
        match identifier {
            None | Some(Scalar::Null) => Err(CommandError::MissingIdentifier),
            Some(Scalar::Str(id)) => Ok(id),
            Some(_) => Err(CommandError::IdentifierNotString),
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
            let data = match data {
                None | Some(Scalar::Null) => return Err(CommandError::MissingData),
                Some(Scalar::Str(data)) => data,
                Some(_) => return Err(CommandError::DataNotString),
            };
            Ok(Command::Message { identifier, data })
        }
        _ => Err(CommandError::UnknownCommand(
            Scalar::Str(command.clone()).describe(),
        )),
    }
}

/// The `action` of a message's data, checked to be a JSON object.
///
/// Returns `None` for no action (a missing, `null` or empty `action`, which
/// Rails dispatches to `receive`).
pub(crate) fn data_action(data: &str) -> Result<Option<Cow<'_, str>>, CommandError> {
    let action: DataAction<'_> = read_object(data).map_err(|e| match e {
        NotAnObject::OtherValue => CommandError::DataNotObject,
        NotAnObject::Invalid(err) => CommandError::DataNotJson(err),
    })?;
    match action.0 {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(name)) if name.is_empty() => Ok(None),
        Some(Scalar::Str(name)) => Ok(Some(name)),
        Some(_) => Err(CommandError::ActionNotString),
    }
}

/// The three fields of a command; others are skipped. The last occurrence of
/// a duplicated key wins, as with Ruby's JSON parser.
struct Fields<'a> {
    command: Option<Scalar<'a>>,
    identifier: Option<Scalar<'a>>,
    data: Option<Scalar<'a>>,
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
                while let Some(key) = map.next_key::<Key<'de>>()? {
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
struct DataAction<'a>(Option<Scalar<'a>>);

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
                while let Some(key) = map.next_key::<Key<'de>>()? {
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
