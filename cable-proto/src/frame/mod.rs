//! Server frames, byte for byte as Rails writes them.
//!
//! Key order is Rails' (hashes keep insertion order): `{"type":"welcome"}`,
//! `{"type":"ping","message":<unix seconds>}`,
//! `{"identifier":<id>,"type":"confirm_subscription"}`,
//! `{"identifier":<id>,"type":"reject_subscription"}`,
//! `{"identifier":<id>,"message":<payload>}` and
//! `{"type":"disconnect","reason":<reason>,"reconnect":<bool>}`.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::identifier::Identifier;
use crate::json::write_rails_string;

mod parse;
pub use parse::{parse_server_frame, ServerFrame, ServerFrameError, UnknownFrame, Welcome};

/// Why the server closes a connection; the `reason` of a disconnect frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The application refused the connection (Rails' `reject_unauthorized_connection`).
    Unauthorized,
    /// The request was not a valid Action Cable request.
    InvalidRequest,
    /// The server is restarting or shutting down.
    ServerRestart,
    /// Closed on request of another process (Rails 7.1+ remote disconnect).
    Remote,
    /// The client did not read its frames fast enough (AnyCable's reason).
    TooSlow,
    /// The connection's credentials expired (AnyCable's reason).
    TokenExpired,
    /// A reason of the application's own.
    Other(Cow<'static, str>),
}

impl DisconnectReason {
    /// The reason as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InvalidRequest => "invalid_request",
            Self::ServerRestart => "server_restart",
            Self::Remote => "remote",
            Self::TooSlow => "too_slow",
            Self::TokenExpired => "token_expired",
            Self::Other(reason) => reason,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The WebSocket close code Action Cable uses after a disconnect frame.
pub const CLOSE_NORMAL: u16 = 1000;

/// One frame for the host to write to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame. Frames of one broadcast share one allocation.
    Text(Bytes),
    /// A close frame: write it, then close the socket once the peer answers
    /// (or after a grace period of the host's choosing).
    Close {
        /// The close code (Rails: 1000).
        code: u16,
        /// The close reason (Rails: empty).
        reason: &'static str,
    },
}

impl Frame {
    /// The text of a text frame.
    pub fn text(&self) -> Option<&str> {
        match self {
            // Frames built by the core are always valid UTF-8.
            Self::Text(bytes) => std::str::from_utf8(bytes).ok(),
            Self::Close { .. } => None,
        }
    }

    /// Bytes this frame adds to the connection's outbound queue.
    pub fn queued_len(&self) -> usize {
        match self {
            Self::Text(bytes) => bytes.len(),
            Self::Close { .. } => 0,
        }
    }
}

/// `{"type":"welcome"}`
pub fn welcome() -> Bytes {
    Bytes::from_static(br#"{"type":"welcome"}"#)
}

/// `{"type":"ping","message":<unix_seconds>}`
pub fn ping(unix_seconds: u64) -> Bytes {
    Bytes::from(format!(r#"{{"type":"ping","message":{unix_seconds}}}"#))
}

/// `{"identifier":<id>,"type":"confirm_subscription"}`
pub fn confirm(identifier: &Identifier) -> Bytes {
    identifier_frame(identifier, br#","type":"confirm_subscription"}"#)
}

/// `{"identifier":<id>,"type":"reject_subscription"}`
pub fn reject(identifier: &Identifier) -> Bytes {
    identifier_frame(identifier, br#","type":"reject_subscription"}"#)
}

fn identifier_frame(identifier: &Identifier, tail: &[u8]) -> Bytes {
    let literal = identifier.json_literal();
    let mut out = Vec::with_capacity(14 + literal.len() + tail.len());
    out.extend_from_slice(br#"{"identifier":"#);
    out.extend_from_slice(literal);
    out.extend_from_slice(tail);
    Bytes::from(out)
}

/// `{"identifier":<id>,"message":<message>}` where `message` is JSON text,
/// spliced as given.
pub fn message(identifier: &Identifier, message_json: &str) -> Bytes {
    message_from_literal(identifier.json_literal(), message_json.as_bytes())
}

/// The same as [`message`] from an identifier's ready JSON literal.
pub(crate) fn message_from_literal(literal: &[u8], message_json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(26 + literal.len() + message_json.len());
    out.extend_from_slice(br#"{"identifier":"#);
    out.extend_from_slice(literal);
    out.extend_from_slice(br#","message":"#);
    out.extend_from_slice(message_json);
    out.push(b'}');
    Bytes::from(out)
}

/// `{"identifier":<id>,"message":"<text>"}`: `text` sent as a JSON string,
/// as Rails does for a stream with a block that transmits the raw payload.
pub fn message_string(identifier: &Identifier, text: &str) -> Bytes {
    let mut literal = Vec::with_capacity(text.len() + 2);
    write_rails_string(&mut literal, text);
    message_from_literal(identifier.json_literal(), &literal)
}

/// `{"type":"disconnect","reason":<reason>,"reconnect":<reconnect>}`
pub fn disconnect(reason: &DisconnectReason, reconnect: bool) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(br#"{"type":"disconnect","reason":"#);
    write_rails_string(&mut out, reason.as_str());
    out.extend_from_slice(if reconnect {
        br#","reconnect":true}"#.as_slice()
    } else {
        br#","reconnect":false}"#.as_slice()
    });
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> Identifier {
        Identifier::parse(raw, usize::MAX).unwrap()
    }

    #[test]
    fn frames_match_rails_bytes() {
        let chat = id(r#"{"channel":"ChatChannel","room":"r1"}"#);
        assert_eq!(&welcome()[..], br#"{"type":"welcome"}"#);
        assert_eq!(
            &ping(1795325343)[..],
            br#"{"type":"ping","message":1795325343}"#
        );
        assert_eq!(
            &confirm(&chat)[..],
            br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","type":"confirm_subscription"}"#
        );
        assert_eq!(
            &reject(&chat)[..],
            br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","type":"reject_subscription"}"#
        );
        assert_eq!(
            &message(&chat, r#"{"text":"hi from alice","from":"alice"}"#)[..],
            br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","message":{"text":"hi from alice","from":"alice"}}"#
        );
        assert_eq!(
            &message_string(&chat, r#"{"a":"<"}"#)[..],
            br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","message":"{\"a\":\"\u003c\"}"}"#
        );
    }

    #[test]
    fn disconnect_frames() {
        assert_eq!(
            &disconnect(&DisconnectReason::Unauthorized, false)[..],
            br#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#
        );
        assert_eq!(
            &disconnect(&DisconnectReason::ServerRestart, true)[..],
            br#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#
        );
        assert_eq!(
            &disconnect(&DisconnectReason::Remote, true)[..],
            br#"{"type":"disconnect","reason":"remote","reconnect":true}"#
        );
        assert_eq!(
            &disconnect(&DisconnectReason::TooSlow, true)[..],
            br#"{"type":"disconnect","reason":"too_slow","reconnect":true}"#
        );
        assert_eq!(
            &disconnect(&DisconnectReason::InvalidRequest, true)[..],
            br#"{"type":"disconnect","reason":"invalid_request","reconnect":true}"#
        );
        assert_eq!(
            &disconnect(&DisconnectReason::Other("a<b".into()), false)[..],
            br#"{"type":"disconnect","reason":"a\u003cb","reconnect":false}"#
        );
    }

    #[test]
    fn identifier_with_html_characters_is_escaped_in_the_outer_frame() {
        let raw = "{\"channel\":\"ChatChannel\",\"room\":\"<&>/\u{2028}é\"}";
        let frame = confirm(&id(raw));
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            "{\"identifier\":\"{\\\"channel\\\":\\\"ChatChannel\\\",\\\"room\\\":\\\"\\u003c\\u0026\\u003e/\\u2028é\\\"}\",\"type\":\"confirm_subscription\"}"
        );
    }
}
