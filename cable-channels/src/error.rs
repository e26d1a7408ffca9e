//! The one error type of every decoder in this crate.

/// Why some input did not decode. Decoders never panic; every malformed input ends
/// here.
///
/// The error is `Clone + Eq` (serde_json's own errors are kept as their message) so
/// that tests and callers can compare it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is not JSON text (or not UTF-8, or nested deeper than 128 levels).
    #[error("invalid JSON: {message}")]
    Syntax {
        /// serde_json's message, with line and column.
        message: String,
    },
    /// A JSON object was expected.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead (`"an array"`, `"null"`...).
        found: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's wire name.
        field: &'static str,
    },
    /// A field has the wrong JSON type or an invalid value.
    #[error("field `{field}` must be {expected}")]
    InvalidField {
        /// The field's wire name.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The payload of a known event or message type does not fit its type.
    #[error("invalid `{name}` payload: {message}")]
    InvalidPayload {
        /// The event or message type whose payload failed.
        name: String,
        /// serde's description of the problem.
        message: String,
    },
    /// An identifier names a channel this decoder does not know.
    #[error("unknown channel `{0}`")]
    UnknownChannel(String),
    /// A known Circle event arrived on a channel that, per Circle's doc, does not
    /// carry it.
    #[error("event `{event}` does not travel on {channel}")]
    EventNotAllowed {
        /// The event name.
        event: &'static str,
        /// The channel name.
        channel: &'static str,
    },
    /// A string is not in the strict format of an id type.
    #[error("invalid {kind}: {reason}")]
    InvalidId {
        /// The id type (`"generated id"`, `"object id"`, ...).
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl DecodeError {
    pub(crate) fn from_syntax(e: serde_json::Error) -> Self {
        DecodeError::Syntax {
            message: e.to_string(),
        }
    }

    pub(crate) fn payload(name: &str, e: serde_json::Error) -> Self {
        DecodeError::InvalidPayload {
            name: name.to_owned(),
            message: e.to_string(),
        }
    }
}
