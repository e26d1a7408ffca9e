//! Subscription identifiers.
//!
//! The identifier a client sends with `subscribe` is a JSON *string* whose
//! content is itself JSON, e.g. `{"channel":"ChatChannel","room":"1"}`. As in
//! Rails, the raw string, byte for byte, is the subscription key: the same
//! params in another key order or with other spacing name another
//! subscription. It is echoed unchanged in every frame for that subscription.
//! Its parsed params (the `channel` and the rest) are there for the
//! application.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::json::write_rails_string;
use crate::scan::Literal;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Longer than the configured limit.
    #[error("identifier is {len} bytes, over the limit of {limit}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Not a JSON text.
    #[error("identifier is not JSON: {0}")]
    NotJson(crate::json::InvalidJson),
    /// JSON, but not an object.
    #[error("identifier is not a JSON object")]
    NotObject,
    /// No `channel` key, or its value is not a string.
    #[error("identifier has no string \"channel\"")]
    MissingChannel,
}

struct Inner {
    raw: Box<str>,
    /// `raw` as a JSON string literal with Rails' escaping, ready to splice.
    literal: Box<[u8]>,
    params: Map<String, Value>,
}

/// A parsed subscription identifier: cheap to clone (reference counted),
/// compared and hashed by its raw string.
#[derive(Clone)]
pub struct Identifier(Arc<Inner>);

impl Identifier {
    /// Parses an identifier string, refusing it when longer than `max_len` bytes.
    ///
    /// ```
    /// use cable_proto::Identifier;
    /// let id = Identifier::parse(r#"{"channel":"ChatChannel","room":"r1"}"#, 1024).unwrap();
    /// assert_eq!(id.channel(), "ChatChannel");
    /// assert_eq!(id.param("room").and_then(|v| v.as_str()), Some("r1"));
    /// assert_eq!(id.json_literal(), br#""{\"channel\":\"ChatChannel\",\"room\":\"r1\"}""#);
    /// ```
    pub fn parse(raw: &str, max_len: usize) -> Result<Self, IdentifierError> {
        if raw.len() > max_len {
            return Err(IdentifierError::TooLong {
                len: raw.len(),
                limit: max_len,
            });
        }
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| IdentifierError::NotJson(crate::json::InvalidJson::from_serde(e)))?;
        let Value::Object(params) = value else {
            return Err(IdentifierError::NotObject);
        };
        if !matches!(params.get("channel"), Some(Value::String(_))) {
            return Err(IdentifierError::MissingChannel);
        }
        let mut literal = Vec::with_capacity(raw.len() + raw.len() / 4 + 2);
        write_rails_string(&mut literal, raw);
        Ok(Self(Arc::new(Inner {
            raw: raw.into(),
            literal: literal.into_boxed_slice(),
            params,
        })))
    }

    /// The raw identifier string, exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0.raw
    }

    /// The `channel` param.
    pub fn channel(&self) -> &str {
        self.0
            .params
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// All params, `channel` included (Rails' `params`).
    pub fn params(&self) -> &Map<String, Value> {
        &self.0.params
    }

    /// One param.
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.0.params.get(key)
    }

    /// The identifier as a JSON string literal, quotes included, escaped as
    /// Rails escapes it inside frames.
    pub fn json_literal(&self) -> &[u8] {
        &self.0.literal
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Identifier").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Identifier {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Identifier {}

impl Hash for Identifier {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for Identifier {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// An [`Identifier`] as the core's index keys it: by its Rails-escaped
/// literal, which is what a client's own literal usually is already, so
/// that a command's identifier is found without decoding it.
#[derive(Clone)]
pub(crate) struct LiteralKey(pub(crate) Identifier);

impl PartialEq for LiteralKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.json_literal() == other.0.json_literal()
    }
}

impl Eq for LiteralKey {}

impl Hash for LiteralKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.json_literal().hash(state);
    }
}

impl Borrow<[u8]> for LiteralKey {
    fn borrow(&self) -> &[u8] {
        self.0.json_literal()
    }
}

impl fmt::Debug for LiteralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A command's identifier as it came: the literal the fast path found, or
/// the string the full parser decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdentifierText<'a> {
    Scanned(Literal<'a>),
    Decoded(&'a str),
}

impl<'a> IdentifierText<'a> {
    /// The key of [`LiteralKey`]: the Rails-escaped literal.
    pub(crate) fn key(&self) -> Cow<'a, [u8]> {
        match self {
            Self::Scanned(literal) if literal.is_rails_form() => Cow::Borrowed(literal.quoted()),
            _ => {
                let decoded = self.decoded();
                let mut key = Vec::with_capacity(decoded.len() + decoded.len() / 4 + 2);
                write_rails_string(&mut key, &decoded);
                Cow::Owned(key)
            }
        }
    }

    /// The identifier string.
    pub(crate) fn decoded(&self) -> Cow<'a, str> {
        match self {
            Self::Scanned(literal) => literal.decode(),
            Self::Decoded(text) => Cow::Borrowed(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_string_is_the_key() {
        let a = Identifier::parse(r#"{"channel":"C","id":1}"#, 100).unwrap();
        let b = Identifier::parse(r#"{"id":1,"channel":"C"}"#, 100).unwrap();
        let c = Identifier::parse(r#"{"channel": "C","id":1}"#, 100).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.params(), b.params());
        assert_eq!(
            a,
            Identifier::parse(r#"{"channel":"C","id":1}"#, 100).unwrap()
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Identifier::parse(r#"{"channel":"C"}"#, 5).unwrap_err(),
            IdentifierError::TooLong { len: 15, limit: 5 }
        );
        assert!(matches!(
            Identifier::parse("{nope", 100).unwrap_err(),
            IdentifierError::NotJson(_)
        ));
        assert_eq!(
            Identifier::parse("[1]", 100).unwrap_err(),
            IdentifierError::NotObject
        );
        assert_eq!(
            Identifier::parse(r#"{"room":1}"#, 100).unwrap_err(),
            IdentifierError::MissingChannel
        );
        assert_eq!(
            Identifier::parse(r#"{"channel":5}"#, 100).unwrap_err(),
            IdentifierError::MissingChannel
        );
    }
}
