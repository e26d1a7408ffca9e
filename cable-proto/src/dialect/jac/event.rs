//! Jac Cloud's client events, parsed and validated the way its pydantic
//! models (`jac_cloud.jaseci.dtos.websocket`) do, with the errors in their
//! recorded shapes.

use serde_json::{Map, Value};

use crate::json::JsonText;

/// The event tags, in the order Jac Cloud's union lists them.
pub const EVENT_TYPES: [&str; 6] = [
    "connection",
    "walker",
    "user",
    "channel",
    "client",
    "change_user",
];

/// The pydantic version whose error URLs Jac Cloud 0.2.11 sends.
const PYDANTIC_URL: &str = "https://errors.pydantic.dev/2.10/v/";

/// A walker call (`{"type":"walker",...}`).
#[derive(Debug, Clone, PartialEq)]
pub struct WalkerEvent {
    /// The walker's name.
    pub walker: String,
    /// The entry node's reference id (default: the socket's root).
    pub node: Option<String>,
    /// Whether the walker's answer is sent back.
    pub response: bool,
    /// The walker's fields.
    pub context: Map<String, Value>,
}

/// Who a client event reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `user`: `root_ids`.
    User,
    /// `channel`: `channel_ids`.
    Channel,
    /// `client`: `client_ids`.
    Client,
}

impl TargetKind {
    /// The event's `type`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Channel => "channel",
            Self::Client => "client",
        }
    }

    /// The field listing the targets.
    pub fn field(self) -> &'static str {
        match self {
            Self::User => "root_ids",
            Self::Channel => "channel_ids",
            Self::Client => "client_ids",
        }
    }
}

/// A parsed client event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `{"type":"connection"}`: the connection info again.
    Connection,
    /// A walker call.
    Walker(WalkerEvent),
    /// A user, channel or client event: `data` to every target.
    Notify {
        /// Which kind of targets.
        kind: TargetKind,
        /// The targets, duplicates kept.
        targets: Vec<String>,
        /// The object delivered verbatim.
        data: Map<String, Value>,
    },
    /// `change_user` with its `token` (absent and `null` alike: `None`).
    ChangeUser {
        /// The token.
        token: Option<String>,
    },
}

/// Why a frame is refused; [`EventError::frame`] is what the real server
/// answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// The text is not JSON (the real server sends Python's traceback of
    /// `json.decoder.JSONDecodeError`).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A binary frame (the real server's `receive_json` reads text only and
    /// fails with `KeyError: 'text'`).
    #[error("binary frames are not read")]
    Binary,
    /// Pydantic validation errors, each a complete error object.
    #[error("validation failed: {} error(s)", .0.len())]
    Validation(Vec<Value>),
    /// Any other exception of the real server, as its last traceback line
    /// (`ValueError: ...`).
    #[error("{0}")]
    Exception(String),
}

impl EventError {
    /// The frame: `{"error":[<pydantic errors>]}` or, for exceptions,
    /// `{"error":["Traceback (most recent call last):\n", "<Type>: <msg>\n"]}`.
    pub fn frame(&self) -> JsonText {
        let errors = match self {
            Self::Validation(errors) => Value::Array(errors.clone()),
            Self::InvalidJson(message) => {
                traceback(&format!("json.decoder.JSONDecodeError: {message}"))
            }
            Self::Binary => traceback("KeyError: 'text'"),
            Self::Exception(line) => traceback(line),
        };
        let mut map = Map::new();
        map.insert("error".into(), errors);
        json(Value::Object(map))
    }
}

/// A traceback in the shape of Python's `format_exception` (no stack lines:
/// cable-server has no Python stack to show).
pub fn traceback(last_line: &str) -> Value {
    Value::Array(vec![
        Value::from("Traceback (most recent call last):\n"),
        Value::from(format!("{last_line}\n")),
    ])
}

/// One pydantic error object (`type, loc, msg, input, [ctx], url`).
pub fn pydantic_error(
    kind: &str,
    loc: &[Value],
    msg: &str,
    input: Value,
    ctx: Option<Value>,
) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::from(kind));
    map.insert("loc".into(), Value::Array(loc.to_vec()));
    map.insert("msg".into(), Value::from(msg));
    map.insert("input".into(), input);
    if let Some(ctx) = ctx {
        map.insert("ctx".into(), ctx);
    }
    map.insert("url".into(), Value::from(format!("{PYDANTIC_URL}{kind}")));
    Value::Object(map)
}

/// Parses one text frame as Jac Cloud does.
pub fn parse(frame: &[u8]) -> Result<Event, EventError> {
    let value: Value =
        serde_json::from_slice(frame).map_err(|e| EventError::InvalidJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(EventError::Validation(vec![pydantic_error(
            "model_attributes_type",
            &[Value::from("event")],
            "Input should be a valid dictionary or object to extract fields from",
            value,
            None,
        )]));
    };
    let tag = match obj.get("type") {
        Some(Value::String(tag)) => tag.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => {
            return Err(EventError::Validation(vec![pydantic_error(
                "union_tag_not_found",
                &[Value::from("event")],
                "Unable to extract tag using discriminator 'type'",
                Value::Object(obj),
                Some(serde_json::json!({"discriminator": "'type'"})),
            )]))
        }
    };
    let Some(tag) = EVENT_TYPES.iter().copied().find(|t| *t == tag) else {
        let expected = EVENT_TYPES
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(EventError::Validation(vec![pydantic_error(
            "union_tag_invalid",
            &[Value::from("event")],
            &format!(
                "Input tag '{tag}' found using 'type' does not match any of the expected tags: {expected}"
            ),
            Value::Object(obj),
            Some(serde_json::json!({
                "discriminator": "'type'",
                "tag": tag,
                "expected_tags": expected,
            })),
        )]));
    };
    let mut errors = Vec::new();
    let event = match tag {
        "connection" => Event::Connection,
        "walker" => {
            let walker = string_field(&obj, tag, "walker", true, &mut errors);
            let node = string_field(&obj, tag, "node", false, &mut errors);
            let response = match obj.get("response") {
                None => false,
                Some(v) => lax_bool(v).unwrap_or_else(|e| {
                    errors.push(e.at(&loc(tag, "response"), v));
                    false
                }),
            };
            let context = match obj.get("context") {
                None => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(v) => {
                    errors.push(dict_type(&loc(tag, "context"), v));
                    Map::new()
                }
            };
            Event::Walker(WalkerEvent {
                walker: walker.unwrap_or_default(),
                node,
                response,
                context,
            })
        }
        "user" | "channel" | "client" => {
            let kind = match tag {
                "user" => TargetKind::User,
                "channel" => TargetKind::Channel,
                _ => TargetKind::Client,
            };
            let targets = id_list(&obj, kind, &mut errors);
            let data = match obj.get("data") {
                Some(Value::Object(m)) => m.clone(),
                None => {
                    errors.push(missing(&loc(tag, "data"), &obj));
                    Map::new()
                }
                Some(v) => {
                    errors.push(dict_type(&loc(tag, "data"), v));
                    Map::new()
                }
            };
            Event::Notify {
                kind,
                targets,
                data,
            }
        }
        _ => Event::ChangeUser {
            token: string_field(&obj, tag, "token", false, &mut errors),
        },
    };
    if errors.is_empty() {
        Ok(event)
    } else {
        Err(EventError::Validation(errors))
    }
}

fn loc(tag: &str, field: &str) -> Vec<Value> {
    vec![Value::from("event"), Value::from(tag), Value::from(field)]
}

fn missing(loc: &[Value], obj: &Map<String, Value>) -> Value {
    pydantic_error(
        "missing",
        loc,
        "Field required",
        Value::Object(obj.clone()),
        None,
    )
}

fn dict_type(loc: &[Value], input: &Value) -> Value {
    pydantic_error(
        "dict_type",
        loc,
        "Input should be a valid dictionary",
        input.clone(),
        None,
    )
}

fn string_type(loc: &[Value], input: &Value) -> Value {
    pydantic_error(
        "string_type",
        loc,
        "Input should be a valid string",
        input.clone(),
        None,
    )
}

/// A `str` field (`required`: no default) or `str | None` (absent and
/// `null`: `None`).
fn string_field(
    obj: &Map<String, Value>,
    tag: &str,
    field: &str,
    required: bool,
    errors: &mut Vec<Value>,
) -> Option<String> {
    match obj.get(field) {
        Some(Value::String(s)) => Some(s.clone()),
        None if required => {
            errors.push(missing(&loc(tag, field), obj));
            None
        }
        None | Some(Value::Null) if !required => None,
        Some(v) => {
            errors.push(string_type(&loc(tag, field), v));
            None
        }
        None => None,
    }
}

/// `list[str]` with at least one item.
fn id_list(obj: &Map<String, Value>, kind: TargetKind, errors: &mut Vec<Value>) -> Vec<String> {
    let field_loc = loc(kind.tag(), kind.field());
    match obj.get(kind.field()) {
        None => {
            errors.push(missing(&field_loc, obj));
            Vec::new()
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                errors.push(pydantic_error(
                    "too_short",
                    &field_loc,
                    "List should have at least 1 item after validation, not 0",
                    Value::Array(Vec::new()),
                    Some(serde_json::json!({
                        "field_type": "List",
                        "min_length": 1,
                        "actual_length": 0,
                    })),
                ));
            }
            let mut ids = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => ids.push(s.clone()),
                    other => {
                        let mut at = field_loc.clone();
                        at.push(Value::from(i));
                        errors.push(string_type(&at, other));
                    }
                }
            }
            ids
        }
        Some(v) => {
            errors.push(pydantic_error(
                "list_type",
                &field_loc,
                "Input should be a valid list",
                v.clone(),
                None,
            ));
            Vec::new()
        }
    }
}

/// Why a value is not a lax boolean.
enum BoolError {
    Parsing,
    Type,
}

impl BoolError {
    fn at(self, loc: &[Value], input: &Value) -> Value {
        match self {
            Self::Parsing => pydantic_error(
                "bool_parsing",
                loc,
                "Input should be a valid boolean, unable to interpret input",
                input.clone(),
                None,
            ),
            Self::Type => pydantic_error(
                "bool_type",
                loc,
                "Input should be a valid boolean",
                input.clone(),
                None,
            ),
        }
    }
}

/// Pydantic's lax `bool`: booleans, 0/1, and the usual words.
fn lax_bool(value: &Value) -> Result<bool, BoolError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Ok(false),
            Some(1.0) => Ok(true),
            _ => Err(BoolError::Parsing),
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
            _ => Err(BoolError::Parsing),
        },
        _ => Err(BoolError::Type),
    }
}

/// Compact JSON, keys in order (as orjson writes it).
pub(super) fn json(value: Value) -> JsonText {
    JsonText::from_value(&value).unwrap_or_else(|_| JsonText::string(""))
}
