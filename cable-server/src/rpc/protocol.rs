//! The JSON bodies of AnyCable's RPC over HTTP (`POST <url>/connect`,
//! `<url>/command`, `<url>/disconnect`), as AnyCable's `rpc.proto` defines
//! them and its Go server encodes them: field names in snake case, empty
//! fields left out, `status` a number. Answers are read leniently: every
//! field may be missing or `null`, `status` may also be the enum's name, and
//! the camel-case names of protobuf's JSON mapping are accepted too.
//!
//! Also here: how the `transmissions` of an answer map onto the core's
//! frames ([`Transmission`]).

use std::collections::BTreeMap;

use cable_proto::{DisconnectReason, JsonText};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A state map (`cstate`, `istate`): string keys, string values.
pub type StateMap = BTreeMap<String, String>;

/// The request environment (`Env`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Env {
    /// The absolute URL of the WebSocket upgrade request.
    pub url: String,
    /// The proxied request headers (and `REMOTE_ADDR`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The connection state.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cstate: StateMap,
    /// The channel state: on a command, the subscription's own map; on a
    /// disconnect, each subscription's map JSON-encoded, by identifier.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub istate: StateMap,
}

/// `POST <url>/connect`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectRequest {
    /// The environment.
    pub env: Env,
}

/// `POST <url>/command`.
#[derive(Debug, Clone, Serialize)]
pub struct CommandRequest {
    /// `subscribe`, `unsubscribe` or `message`.
    pub command: &'static str,
    /// The subscription's identifier, as the client sent it.
    pub identifier: String,
    /// The `identifiers` the connect call answered.
    pub connection_identifiers: String,
    /// A `message`'s data, the JSON text the client sent, as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The environment, `istate` the subscription's.
    pub env: Env,
}

/// `POST <url>/disconnect`.
#[derive(Debug, Clone, Serialize)]
pub struct DisconnectRequest {
    /// The `identifiers` the connect call answered.
    pub identifiers: String,
    /// The identifiers of the subscriptions the connection had.
    pub subscriptions: Vec<String>,
    /// The environment.
    pub env: Env,
}

/// An answer's `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Status {
    /// 0: the application failed (an exception); also a missing status.
    #[default]
    Error,
    /// 1: done.
    Success,
    /// 2: refused (unauthorized connection, rejected subscription).
    Failure,
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Number(n) if n.as_u64() == Some(1) => Self::Success,
            Value::Number(n) if n.as_u64() == Some(2) => Self::Failure,
            Value::String(s) if s.eq_ignore_ascii_case("success") => Self::Success,
            Value::String(s) if s.eq_ignore_ascii_case("failure") => Self::Failure,
            _ => Self::Error,
        })
    }
}

/// `null` as the default.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The state changes of an answer (`EnvResponse`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct EnvChanges {
    /// Connection state to merge (an empty value deletes its key).
    #[serde(deserialize_with = "nullable")]
    pub cstate: StateMap,
    /// Channel state to merge into the subscription's.
    #[serde(deserialize_with = "nullable")]
    pub istate: StateMap,
}

/// The answer of `/connect`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ConnectResponse {
    /// The outcome.
    pub status: Status,
    /// The connection's identifiers (a string of the backend's own format).
    #[serde(deserialize_with = "nullable")]
    pub identifiers: String,
    /// Whole frames for the client (the welcome among them).
    #[serde(deserialize_with = "nullable")]
    pub transmissions: Vec<String>,
    /// Why it failed (logged).
    #[serde(deserialize_with = "nullable", alias = "errorMsg")]
    pub error_msg: String,
    /// State changes.
    #[serde(deserialize_with = "nullable")]
    pub env: EnvChanges,
}

/// The answer of `/command`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct CommandResponse {
    /// The outcome.
    pub status: Status,
    /// Close the connection afterwards.
    #[serde(deserialize_with = "nullable")]
    pub disconnect: bool,
    /// Stop every stream of the subscription.
    #[serde(deserialize_with = "nullable", alias = "stopStreams")]
    pub stop_streams: bool,
    /// Streams to start.
    #[serde(deserialize_with = "nullable")]
    pub streams: Vec<String>,
    /// Streams to stop.
    #[serde(deserialize_with = "nullable", alias = "stoppedStreams")]
    pub stopped_streams: Vec<String>,
    /// Whole frames for the client.
    #[serde(deserialize_with = "nullable")]
    pub transmissions: Vec<String>,
    /// Why it failed (logged).
    #[serde(deserialize_with = "nullable", alias = "errorMsg")]
    pub error_msg: String,
    /// State changes.
    #[serde(deserialize_with = "nullable")]
    pub env: EnvChanges,
}

/// The answer of `/disconnect`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DisconnectResponse {
    /// The outcome (only 0 counts as a failure).
    pub status: Status,
    /// Why it failed (logged).
    #[serde(deserialize_with = "nullable", alias = "errorMsg")]
    pub error_msg: String,
}

/// Merges `changes` into `state` as AnyCable does: an empty value deletes
/// its key, any other sets it.
pub fn merge_state(state: &mut StateMap, changes: StateMap) {
    for (key, value) in changes {
        if value.is_empty() {
            state.remove(&key);
        } else {
            state.insert(key, value);
        }
    }
}

/// One frame of an answer's `transmissions`, as the core sees it. The core
/// writes the welcome, the confirmations and the rejections itself, so
/// those frames are not forwarded; a subscription's messages go through
/// the core's `transmit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmission {
    /// `{"type":"welcome",...}`: its other fields join the core's welcome.
    Welcome(Vec<(String, JsonText)>),
    /// `{"type":"disconnect","reason":R,"reconnect":B}`.
    Disconnect {
        /// The reason.
        reason: DisconnectReason,
        /// The reconnect flag (default `true`, as in Rails).
        reconnect: bool,
    },
    /// `{"identifier":I,"type":"confirm_subscription"}` (the core confirms).
    Confirm(String),
    /// `{"identifier":I,"type":"reject_subscription"}` (the core rejects).
    Reject(String),
    /// `{"identifier":I,"message":M}`: a message for subscription `I`.
    Message {
        /// The identifier the frame names.
        identifier: String,
        /// The message.
        message: JsonText,
    },
    /// Any other frame, whole.
    Other(JsonText),
    /// Not JSON: dropped.
    Invalid,
}

impl Transmission {
    /// Classifies one transmitted frame.
    pub fn parse(frame: &str) -> Self {
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            return Self::Invalid;
        };
        let Value::Object(map) = &value else {
            return JsonText::new(frame).map_or(Self::Invalid, Self::Other);
        };
        let identifier = map.get("identifier").and_then(Value::as_str);
        match (map.get("type").and_then(Value::as_str), identifier) {
            (Some("welcome"), _) => Self::Welcome(
                map.iter()
                    .filter(|(k, _)| k.as_str() != "type")
                    .filter_map(|(k, v)| Some((k.clone(), JsonText::from_value(v).ok()?)))
                    .collect(),
            ),
            (Some("disconnect"), _) => Self::Disconnect {
                reason: match map.get("reason").and_then(Value::as_str) {
                    Some("unauthorized") => DisconnectReason::Unauthorized,
                    Some("token_expired") => DisconnectReason::TokenExpired,
                    Some("server_restart") => DisconnectReason::ServerRestart,
                    Some("remote") => DisconnectReason::Remote,
                    Some("invalid_request") => DisconnectReason::InvalidRequest,
                    Some(other) => DisconnectReason::Other(other.to_owned().into()),
                    None => DisconnectReason::Other("closed".into()),
                },
                reconnect: map
                    .get("reconnect")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            },
            (Some("confirm_subscription"), Some(id)) => Self::Confirm(id.to_owned()),
            (Some("reject_subscription"), Some(id)) => Self::Reject(id.to_owned()),
            (None, Some(id)) if map.contains_key("message") => {
                match JsonText::from_value(&map["message"]) {
                    Ok(message) => Self::Message {
                        identifier: id.to_owned(),
                        message,
                    },
                    Err(_) => Self::Invalid,
                }
            }
            _ => JsonText::new(frame).map_or(Self::Invalid, Self::Other),
        }
    }
}

/// Whether two identifier strings name the same subscription: equal text,
/// or equal JSON.
pub fn same_identifier(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_leave_empty_fields_out() {
        let request = CommandRequest {
            command: "subscribe",
            identifier: r#"{"channel":"C"}"#.into(),
            connection_identifiers: r#"{"user":"a"}"#.into(),
            data: None,
            env: Env {
                url: "http://h/cable".into(),
                ..Env::default()
            },
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"command":"subscribe","identifier":"{\"channel\":\"C\"}","connection_identifiers":"{\"user\":\"a\"}","env":{"url":"http://h/cable"}}"#
        );
    }

    #[test]
    fn answers_are_read_leniently() {
        let answer: CommandResponse = serde_json::from_str(
            r#"{"status":1,"disconnect":false,"stop_streams":false,"streams":["a"],
                "stopped_streams":null,"transmissions":null,"error_msg":"","env":{"cstate":null,"istate":{"k":"v"}}}"#,
        )
        .unwrap();
        assert_eq!(answer.status, Status::Success);
        assert_eq!(answer.streams, ["a"]);
        assert!(answer.transmissions.is_empty());
        assert_eq!(answer.env.istate["k"], "v");
        let answer: ConnectResponse = serde_json::from_str(r#"{"status":"FAILURE"}"#).unwrap();
        assert_eq!(answer.status, Status::Failure);
        let answer: ConnectResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(answer.status, Status::Error);
        let answer: CommandResponse =
            serde_json::from_str(r#"{"status":2,"stopStreams":true,"errorMsg":"no"}"#).unwrap();
        assert!(answer.stop_streams);
        assert_eq!(answer.error_msg, "no");
    }

    #[test]
    fn state_merges_delete_empty_values() {
        let mut state = StateMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
        merge_state(
            &mut state,
            StateMap::from([("a".into(), String::new()), ("c".into(), "3".into())]),
        );
        assert_eq!(
            state,
            StateMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
        );
    }

    #[test]
    fn transmissions_classified() {
        assert_eq!(
            Transmission::parse(r#"{"type":"welcome","sid":"s1"}"#),
            Transmission::Welcome(vec![("sid".into(), JsonText::string("s1"))])
        );
        assert_eq!(
            Transmission::parse(r#"{"type":"disconnect","reason":"unauthorized"}"#),
            Transmission::Disconnect {
                reason: DisconnectReason::Unauthorized,
                reconnect: true
            }
        );
        assert_eq!(
            Transmission::parse(r#"{"identifier":"I","type":"confirm_subscription"}"#),
            Transmission::Confirm("I".into())
        );
        assert_eq!(
            Transmission::parse(r#"{"identifier":"I","message":{"a":1}}"#),
            Transmission::Message {
                identifier: "I".into(),
                message: JsonText::new(r#"{"a":1}"#).unwrap()
            }
        );
        assert!(matches!(
            Transmission::parse(r#"{"x":1}"#),
            Transmission::Other(_)
        ));
        assert_eq!(Transmission::parse("nope"), Transmission::Invalid);
        assert!(same_identifier(
            r#"{"channel":"C","id":1}"#,
            r#"{ "channel": "C", "id": 1 }"#
        ));
    }
}
