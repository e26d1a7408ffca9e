//! What the server may put on the wire: every text frame is valid JSON of one
//! of Action Cable's shapes, keys in Rails' order.
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only.

use serde_json::Value;

/// A server text frame, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// `{"type":"welcome"}`
    Welcome,
    /// `{"type":"ping","message":<unix seconds>}`
    Ping(u64),
    /// `{"identifier":<id>,"type":"confirm_subscription"}`
    Confirm(String),
    /// `{"identifier":<id>,"type":"reject_subscription"}`
    Reject(String),
    /// `{"identifier":<id>,"message":<message>}`
    Message {
        /// The identifier string.
        identifier: String,
        /// The message.
        message: Value,
        /// The message's JSON text, exactly as spliced into the frame.
        raw: String,
    },
    /// `{"type":"disconnect","reason":<reason>,"reconnect":<bool>}`
    Disconnect {
        /// The reason.
        reason: String,
        /// The reconnect flag.
        reconnect: bool,
    },
    /// A frame the application sent whole (`send_frame`): an object whose
    /// `type` is none of the above. Which of them are expected is the
    /// caller's business.
    Application(Value),
}

/// Classifies `bytes`, panicking with the frame in the message when it is not
/// valid UTF-8, not JSON, or not of a known shape.
pub fn classify(bytes: &[u8]) -> ServerFrame {
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("server frame is not UTF-8 ({e}): {bytes:?}"));
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("server frame is not JSON ({e}): {text}"));
    let Value::Object(map) = &value else {
        panic!("server frame is not an object: {text}");
    };
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    let string = |key: &str| -> String {
        match map.get(key) {
            Some(Value::String(s)) => s.clone(),
            other => panic!("server frame field {key} is not a string ({other:?}): {text}"),
        }
    };
    match keys.as_slice() {
        ["type"] if string("type") == "welcome" => {
            assert_eq!(text, r#"{"type":"welcome"}"#, "welcome bytes");
            ServerFrame::Welcome
        }
        ["type", "message"] if string("type") == "ping" => {
            let seconds = map["message"]
                .as_u64()
                .unwrap_or_else(|| panic!("ping message is not an integer: {text}"));
            assert_eq!(
                text,
                format!(r#"{{"type":"ping","message":{seconds}}}"#),
                "ping bytes"
            );
            ServerFrame::Ping(seconds)
        }
        ["identifier", "type"] => {
            let identifier = string("identifier");
            check_identifier_literal(text);
            match string("type").as_str() {
                "confirm_subscription" => ServerFrame::Confirm(identifier),
                "reject_subscription" => ServerFrame::Reject(identifier),
                other => panic!("unknown identifier frame type {other:?}: {text}"),
            }
        }
        ["identifier", "message"] => {
            let identifier = string("identifier");
            let literal_end = check_identifier_literal(text);
            let raw = text[literal_end..]
                .strip_prefix(r#","message":"#)
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or_else(|| panic!("message frame layout: {text}"))
                .to_owned();
            ServerFrame::Message {
                identifier,
                message: map["message"].clone(),
                raw,
            }
        }
        ["type", "reason", "reconnect"] if string("type") == "disconnect" => {
            let reconnect = map["reconnect"]
                .as_bool()
                .unwrap_or_else(|| panic!("disconnect reconnect is not a boolean: {text}"));
            ServerFrame::Disconnect {
                reason: string("reason"),
                reconnect,
            }
        }
        _ => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
            assert!(
                !matches!(
                    kind,
                    "welcome"
                        | "ping"
                        | "disconnect"
                        | "confirm_subscription"
                        | "reject_subscription"
                ),
                "protocol frame of the wrong layout: {text}"
            );
            ServerFrame::Application(value)
        }
    }
}

/// Checks the identifier literal at the start of an identifier frame is
/// escaped as Rails escapes it (no raw `<`, `>`, `&`, U+2028, U+2029 or
/// control characters) and returns where it ends.
fn check_identifier_literal(text: &str) -> usize {
    let rest = text
        .strip_prefix(r#"{"identifier":""#)
        .unwrap_or_else(|| panic!("identifier frame does not start with the identifier: {text}"));
    let start = text.len() - rest.len();
    let bytes = rest.as_bytes();
    let mut i = 0;
    loop {
        match bytes.get(i) {
            None => panic!("unterminated identifier literal: {text}"),
            Some(b'\\') => i += 2,
            Some(b'"') => break,
            Some(&b) => {
                assert!(
                    !matches!(b, b'<' | b'>' | b'&') && b >= 0x20,
                    "identifier literal not escaped as Rails does ({:?}): {text}",
                    b as char
                );
                i += 1;
            }
        }
    }
    let literal = &rest[..i];
    assert!(
        !literal.contains('\u{2028}') && !literal.contains('\u{2029}'),
        "identifier literal holds a raw line separator: {text}"
    );
    start + i + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_shapes() {
        assert_eq!(classify(br#"{"type":"welcome"}"#), ServerFrame::Welcome);
        assert_eq!(
            classify(br#"{"type":"ping","message":17}"#),
            ServerFrame::Ping(17)
        );
        assert_eq!(
            classify(
                br#"{"identifier":"{\"channel\":\"A\u003c\"}","type":"confirm_subscription"}"#
            ),
            ServerFrame::Confirm(r#"{"channel":"A<"}"#.into())
        );
        let ServerFrame::Message { raw, .. } =
            classify(br#"{"identifier":"x","message": [1, {"a":"}"}] }"#)
        else {
            panic!()
        };
        assert_eq!(raw, r#" [1, {"a":"}"}] "#);
    }

    #[test]
    #[should_panic(expected = "not escaped")]
    fn refuses_raw_html_in_identifiers() {
        classify(br#"{"identifier":"<","type":"confirm_subscription"}"#);
    }
}
