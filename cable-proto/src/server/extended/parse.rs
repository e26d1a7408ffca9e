//! The extended commands' fields, read from a frame the Action Cable parser
//! did not know (`history`, `whisper`, `join`, `leave`, `presence`, `ping`,
//! `pong`) and the extra keys of a `subscribe`. These commands are rare next
//! to `message`: they are read with plain serde, apart from the hot parser.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::CommandError;
use crate::json::InvalidJson;
use crate::types::StreamName;

use super::presence::PresenceAction;
use super::StreamPosition;

/// A `history` object: `{"since":<unix s>,"streams":{<stream>:{"epoch","offset"}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HistoryQuery {
    pub(super) since: Option<u64>,
    pub(super) streams: Vec<(StreamName, StreamPosition)>,
}

/// An extended command.
#[derive(Debug)]
pub(super) enum ExtCommand {
    Ping,
    Pong,
    History {
        identifier: String,
        query: HistoryQuery,
    },
    Whisper {
        identifier: String,
        data: String,
    },
    Presence {
        identifier: String,
        action: PresenceAction,
    },
}

/// What a `subscribe` may carry besides its identifier.
#[derive(Debug, Default)]
pub(super) struct SubscribeExtras {
    pub(super) history: Option<HistoryQuery>,
    pub(super) join: Option<(Box<str>, Box<str>)>,
}

#[derive(Deserialize)]
struct RawCommand<'a> {
    command: Option<String>,
    identifier: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    history: Option<RawHistory>,
    #[serde(borrow)]
    presence: Option<RawPresence<'a>>,
}

#[derive(Deserialize)]
struct RawHistory {
    since: Option<f64>,
    #[serde(default)]
    streams: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPresence<'a> {
    id: Option<serde_json::Value>,
    #[serde(borrow)]
    info: Option<&'a RawValue>,
}

fn bad(e: serde_json::Error) -> CommandError {
    CommandError::InvalidJson(InvalidJson::from_serde(e))
}

/// The extended command in `frame`; `Ok(None)`: not one of them.
pub(super) fn parse(frame: &[u8]) -> Result<Option<ExtCommand>, CommandError> {
    let raw: RawCommand<'_> = serde_json::from_slice(frame).map_err(bad)?;
    let Some(name) = raw.command.as_deref() else {
        return Ok(None);
    };
    let identifier = || {
        raw.identifier
            .clone()
            .ok_or(CommandError::MissingIdentifier)
    };
    let command = match name {
        "ping" => ExtCommand::Ping,
        "pong" => ExtCommand::Pong,
        "history" => {
            let identifier = identifier()?;
            let query = match raw.history {
                Some(h) => history_query(h),
                None => return Err(CommandError::MissingData),
            };
            ExtCommand::History { identifier, query }
        }
        "whisper" => {
            let identifier = identifier()?;
            let data = match raw.data {
                Some(d) if d.get().starts_with('{') => d.get().to_owned(),
                Some(_) => return Err(CommandError::DataNotObject),
                None => return Err(CommandError::MissingData),
            };
            ExtCommand::Whisper { identifier, data }
        }
        "join" => {
            let identifier = identifier()?;
            let Some(presence) = raw.presence else {
                return Err(CommandError::MissingData);
            };
            let Some(id) = presence_id(presence.id.as_ref()) else {
                return Err(CommandError::MissingData);
            };
            let info = presence.info.map_or("null", RawValue::get);
            ExtCommand::Presence {
                identifier,
                action: PresenceAction::Join {
                    id,
                    info: info.into(),
                },
            }
        }
        "leave" => ExtCommand::Presence {
            identifier: identifier()?,
            action: PresenceAction::Leave {
                id: raw
                    .presence
                    .as_ref()
                    .and_then(|p| presence_id(p.id.as_ref())),
            },
        },
        "presence" => ExtCommand::Presence {
            identifier: identifier()?,
            action: PresenceAction::Info,
        },
        _ => return Ok(None),
    };
    Ok(Some(command))
}

/// The `history` and `presence` keys of a `subscribe`.
pub(super) fn subscribe_extras(frame: &[u8]) -> Result<SubscribeExtras, CommandError> {
    let raw: RawCommand<'_> = serde_json::from_slice(frame).map_err(bad)?;
    let join = raw.presence.and_then(|p| {
        let id = presence_id(p.id.as_ref())?;
        Some((id, p.info.map_or("null", RawValue::get).into()))
    });
    Ok(SubscribeExtras {
        history: raw.history.map(history_query),
        join,
    })
}

/// A presence id: a string, or a number taken as its text.
fn presence_id(value: Option<&serde_json::Value>) -> Option<Box<str>> {
    match value? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.as_str().into()),
        serde_json::Value::Number(n) => Some(n.to_string().into()),
        _ => None,
    }
}

fn history_query(raw: RawHistory) -> HistoryQuery {
    let since = raw
        .since
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s as u64);
    let streams = raw
        .streams
        .into_iter()
        .filter_map(|(name, pos)| {
            let epoch = pos.get("epoch")?.as_str()?;
            let offset = pos.get("offset")?.as_u64()?;
            Some((StreamName::new(name), StreamPosition::new(epoch, offset)))
        })
        .collect();
    HistoryQuery { since, streams }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_real_client_sends() {
        let frame = br#"{"identifier":"x","command":"history","history":{"since":1700000000,"streams":{"s":{"epoch":"e1","offset":3}}}}"#;
        let Some(ExtCommand::History { identifier, query }) = parse(frame).unwrap() else {
            panic!("not a history")
        };
        assert_eq!(identifier, "x");
        assert_eq!(query.since, Some(1_700_000_000));
        assert_eq!(
            query.streams,
            vec![(StreamName::new("s"), StreamPosition::new("e1", 3))]
        );
        let leave = parse(br#"{"command":"leave","identifier":"x"}"#).unwrap();
        assert!(matches!(
            leave,
            Some(ExtCommand::Presence {
                action: PresenceAction::Leave { id: None },
                ..
            })
        ));
        let whisper =
            parse(br#"{"command":"whisper","identifier":"x","data":{"b":1,"a":2}}"#).unwrap();
        assert!(
            matches!(whisper, Some(ExtCommand::Whisper { data, .. }) if data == r#"{"b":1,"a":2}"#)
        );
        assert!(parse(br#"{"command":"nope"}"#).unwrap().is_none());
        assert_eq!(
            parse(br#"{"command":"whisper","identifier":"x","data":"s"}"#).unwrap_err(),
            CommandError::DataNotObject
        );
    }
}
