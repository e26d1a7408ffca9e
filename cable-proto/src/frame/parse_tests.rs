//! Unit tests of the server frame parser.

use super::*;
use crate::frame::{
    confirm, disconnect, message_from_literal, message_string, ping, reject, welcome,
};
use crate::identifier::Identifier;
use crate::json::write_rails_string;
use proptest::prelude::*;

fn parse(frame: &[u8]) -> ServerFrame<'_> {
    parse_server_frame(frame)
        .unwrap_or_else(|e| panic!("{:?} does not parse: {e}", String::from_utf8_lossy(frame)))
}

fn err(frame: &[u8]) -> ServerFrameError {
    match parse_server_frame(frame) {
        Ok(parsed) => panic!("{:?} parses to {parsed:?}", String::from_utf8_lossy(frame)),
        Err(e) => e,
    }
}

const CHAT: &str = r#"{"channel":"ChatChannel","room":"r1"}"#;

#[test]
fn rails_frames() {
    assert_eq!(
        parse(br#"{"type":"welcome"}"#),
        ServerFrame::Welcome(Welcome::default())
    );
    assert_eq!(
        parse(br#"{"type":"ping","message":1795325343}"#),
        ServerFrame::Ping {
            unix_seconds: Some(1795325343)
        }
    );
    assert_eq!(
        parse(br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","type":"confirm_subscription"}"#),
        ServerFrame::Confirm { identifier: CHAT.into() }
    );
    assert_eq!(
        parse(br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","type":"reject_subscription"}"#),
        ServerFrame::Reject { identifier: CHAT.into() }
    );
    assert_eq!(
        parse(br#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"r1\"}","message":{"text":"a\u003cb","n":[1,2.5,null]}}"#),
        ServerFrame::Message {
            identifier: CHAT.into(),
            message: r#"{"text":"a\u003cb","n":[1,2.5,null]}"#.into()
        }
    );
    assert_eq!(
        parse(br#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#),
        ServerFrame::Disconnect {
            reason: Some(DisconnectReason::Unauthorized),
            reconnect: Some(false)
        }
    );
}

#[test]
fn key_order_and_whitespace_do_not_matter() {
    // AnyCable's Go code writes `type` first.
    assert_eq!(
        parse(b" \n{ \"type\" : \"confirm_subscription\" ,\t\"identifier\":\"{\\\"channel\\\":\\\"C\\\"}\" }\r\n "),
        ServerFrame::Confirm { identifier: r#"{"channel":"C"}"#.into() }
    );
    // The message's text is the value alone, without the whitespace around it.
    assert_eq!(
        parse(b"{\"message\" :  [ 1 , 2 ]  ,\"identifier\":\"x\"}"),
        ServerFrame::Message {
            identifier: "x".into(),
            message: "[ 1 , 2 ]".into()
        }
    );
}

#[test]
fn message_values_of_every_json_type() {
    for value in [
        r#""tock""#,
        "null",
        "0",
        "-1.5e3",
        "true",
        "[]",
        "{}",
        r#"{"a":{"b":[{}]}}"#,
    ] {
        let frame = format!(r#"{{"identifier":"x","message":{value}}}"#);
        assert_eq!(
            parse(frame.as_bytes()),
            ServerFrame::Message {
                identifier: "x".into(),
                message: value.into()
            }
        );
    }
}

#[test]
fn borrows_what_has_no_escapes() {
    let frame = br#"{"identifier":"plain","message":{"a":"\n"}}"#;
    let ServerFrame::Message {
        identifier,
        message,
    } = parse(frame)
    else {
        panic!("not a message")
    };
    assert!(matches!(identifier, Cow::Borrowed("plain")));
    assert!(matches!(message, Cow::Borrowed(r#"{"a":"\n"}"#)));
    let frame = br#"{"identifier":"{\"channel\":\"C\"}","type":"confirm_subscription"}"#;
    let ServerFrame::Confirm { identifier } = parse(frame) else {
        panic!("not a confirmation")
    };
    assert!(matches!(identifier, Cow::Owned(_)));
    let ServerFrame::Welcome(welcome) = parse(br#"{"type":"welcome","sid":"s1","x":[1]}"#) else {
        panic!("not a welcome")
    };
    assert!(matches!(welcome.sid, Some(Cow::Borrowed("s1"))));
    assert!(matches!(
        welcome.extra[0],
        (Cow::Borrowed("x"), Cow::Borrowed("[1]"))
    ));
}

#[test]
fn anycable_welcome() {
    assert_eq!(
        parse(br#"{"type":"welcome","sid":"abc"}"#),
        ServerFrame::Welcome(Welcome {
            sid: Some("abc".into()),
            ..Welcome::default()
        })
    );
    assert_eq!(
        parse(br#"{"type":"welcome","sid":"new","restored":true,"restored_ids":["{\"channel\":\"A\"}","b"],"server":{"v":1},"z":null}"#),
        ServerFrame::Welcome(Welcome {
            sid: Some("new".into()),
            restored: true,
            restored_ids: vec![r#"{"channel":"A"}"#.into(), "b".into()],
            extra: vec![("server".into(), r#"{"v":1}"#.into()), ("z".into(), "null".into())],
        })
    );
    assert_eq!(
        parse(br#"{"sid":null,"restored":null,"restored_ids":null,"type":"welcome"}"#),
        ServerFrame::Welcome(Welcome::default())
    );
    assert_eq!(
        parse(br#"{"type":"welcome","restored":false,"restored_ids":[]}"#),
        ServerFrame::Welcome(Welcome::default())
    );
    // A welcome's identifier and message mean nothing and are dropped.
    assert_eq!(
        parse(br#"{"type":"welcome","identifier":"x","message":5}"#),
        ServerFrame::Welcome(Welcome::default())
    );
    assert_eq!(
        err(br#"{"type":"welcome","sid":5}"#),
        wrong_type("sid", "a string")
    );
    assert_eq!(
        err(br#"{"type":"welcome","restored":"yes"}"#),
        wrong_type("restored", "a boolean")
    );
    for bad in [
        r#""a""#,
        r#"{"a":"b"}"#,
        "[1]",
        r#"["a",null]"#,
        r#"[["a"]]"#,
    ] {
        let frame = format!(r#"{{"type":"welcome","restored_ids":{bad}}}"#);
        assert_eq!(
            err(frame.as_bytes()),
            wrong_type("restored_ids", "an array of strings"),
            "{frame}"
        );
    }
    // The same keys mean nothing in other frames.
    assert_eq!(
        parse(br#"{"type":"ping","message":1,"sid":5,"restored":"x"}"#),
        ServerFrame::Ping {
            unix_seconds: Some(1)
        }
    );
}

#[test]
fn pings() {
    assert_eq!(
        parse(br#"{"type":"ping"}"#),
        ServerFrame::Ping { unix_seconds: None }
    );
    assert_eq!(
        parse(br#"{"type":"ping","message":null}"#),
        ServerFrame::Ping { unix_seconds: None }
    );
    assert_eq!(
        parse(br#"{"type":"ping","message":18446744073709551615}"#),
        ServerFrame::Ping {
            unix_seconds: Some(u64::MAX)
        }
    );
    for bad in [
        "-1",
        "1.5",
        "1e9",
        "18446744073709551616",
        r#""1700000000""#,
        "[1]",
        "true",
    ] {
        let frame = format!(r#"{{"type":"ping","message":{bad}}}"#);
        assert_eq!(
            err(frame.as_bytes()),
            wrong_type("message", "a non-negative integer"),
            "{frame}"
        );
    }
}

#[test]
fn disconnects() {
    assert_eq!(
        parse(br#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#),
        ServerFrame::Disconnect {
            reason: Some(DisconnectReason::ServerRestart),
            reconnect: Some(true)
        }
    );
    // serverless-js: no reconnect; Rails' close(reason: nil): a null reason.
    assert_eq!(
        parse(br#"{"type":"disconnect","reason":"unauthorized"}"#),
        ServerFrame::Disconnect {
            reason: Some(DisconnectReason::Unauthorized),
            reconnect: None
        }
    );
    assert_eq!(
        parse(br#"{"type":"disconnect","reason":null,"reconnect":true}"#),
        ServerFrame::Disconnect {
            reason: None,
            reconnect: Some(true)
        }
    );
    assert_eq!(
        parse(br#"{"type":"disconnect","reconnect":null}"#),
        ServerFrame::Disconnect {
            reason: None,
            reconnect: None
        }
    );
    assert_eq!(
        parse(br#"{"reconnect":false,"reason":"idle_timeout","type":"disconnect"}"#),
        ServerFrame::Disconnect {
            reason: Some(DisconnectReason::Other("idle_timeout".into())),
            reconnect: Some(false)
        }
    );
    assert_eq!(
        parse(br#"{"type":"disconnect","reason":"a\u003cb"}"#),
        ServerFrame::Disconnect {
            reason: Some(DisconnectReason::Other("a<b".into())),
            reconnect: None
        }
    );
    assert_eq!(
        err(br#"{"type":"disconnect","reason":1}"#),
        wrong_type("reason", "a string")
    );
    assert_eq!(
        err(br#"{"type":"disconnect","reconnect":"false"}"#),
        wrong_type("reconnect", "a boolean")
    );
    assert_eq!(
        err(br#"{"type":"disconnect","reconnect":0}"#),
        wrong_type("reconnect", "a boolean")
    );
}

#[test]
fn unknown_types_are_surfaced() {
    assert_eq!(
        parse(br#"{"type":"confirm_history","identifier":"{\"channel\":\"C\"}"}"#),
        ServerFrame::Unknown(UnknownFrame {
            kind: "confirm_history".into(),
            identifier: Some(r#"{"channel":"C"}"#.into()),
            message: None,
            extra: vec![],
        })
    );
    assert_eq!(
        parse(br#"{"type":"pong"}"#),
        ServerFrame::Unknown(UnknownFrame {
            kind: "pong".into(),
            identifier: None,
            message: None,
            extra: vec![]
        })
    );
    let frame =
        br#"{"type":"presence","identifier":"x","message":{"type":"join","id":"1"},"reason":5}"#;
    let parsed = parse(frame);
    assert_eq!(parsed.identifier(), Some("x"));
    assert_eq!(
        parsed,
        ServerFrame::Unknown(UnknownFrame {
            kind: "presence".into(),
            identifier: Some("x".into()),
            message: Some(r#"{"type":"join","id":"1"}"#.into()),
            extra: vec![("reason".into(), "5".into())],
        })
    );
    // Nothing about an unknown frame's keys is required.
    assert_eq!(
        parse(br#"{"type":"","identifier":7}"#),
        ServerFrame::Unknown(UnknownFrame {
            kind: "".into(),
            identifier: None,
            message: None,
            extra: vec![]
        })
    );
    // Types are case-sensitive, as in the JS client.
    assert!(matches!(
        parse(br#"{"type":"Welcome"}"#),
        ServerFrame::Unknown(_)
    ));
}

#[test]
fn type_rules() {
    // A null type is no type: a message, as the JS client has it.
    assert_eq!(
        parse(br#"{"type":null,"identifier":"x","message":1}"#),
        ServerFrame::Message {
            identifier: "x".into(),
            message: "1".into()
        }
    );
    for bad in ["1", "true", "[]", r#"{"a":1}"#] {
        let frame = format!(r#"{{"type":{bad},"identifier":"x","message":1}}"#);
        assert_eq!(
            err(frame.as_bytes()),
            wrong_type("type", "a string"),
            "{frame}"
        );
    }
    // A type is a type even next to a message.
    assert_eq!(
        parse(br#"{"identifier":"x","message":1,"type":"confirm_subscription"}"#),
        ServerFrame::Confirm {
            identifier: "x".into()
        }
    );
}

#[test]
fn required_keys() {
    use ServerFrameError::MissingField;
    assert_eq!(err(b"{}"), MissingField("identifier"));
    assert_eq!(err(br#"{"message":1}"#), MissingField("identifier"));
    assert_eq!(
        err(br#"{"identifier":null,"message":1}"#),
        MissingField("identifier")
    );
    assert_eq!(err(br#"{"identifier":"x"}"#), MissingField("message"));
    assert_eq!(
        err(br#"{"type":"confirm_subscription"}"#),
        MissingField("identifier")
    );
    assert_eq!(
        err(br#"{"type":"reject_subscription","identifier":null}"#),
        MissingField("identifier")
    );
    assert_eq!(
        err(br#"{"type":"confirm_subscription","identifier":{"channel":"C"}}"#),
        wrong_type("identifier", "a string")
    );
    assert_eq!(
        err(br#"{"identifier":1,"message":1}"#),
        wrong_type("identifier", "a string")
    );
    // An empty identifier is a string like any other: it is not checked
    // to be JSON, it is the key the client subscribed with.
    assert_eq!(
        parse(br#"{"identifier":"","message":1}"#),
        ServerFrame::Message {
            identifier: "".into(),
            message: "1".into()
        }
    );
}

#[test]
fn last_duplicate_wins_other_keys_are_all_kept() {
    assert_eq!(
        parse(
            br#"{"type":"ping","type":"confirm_subscription","identifier":"a","identifier":"b"}"#
        ),
        ServerFrame::Confirm {
            identifier: "b".into()
        }
    );
    assert_eq!(
        parse(br#"{"identifier":"a","message":1,"message":{"x":2}}"#),
        ServerFrame::Message {
            identifier: "a".into(),
            message: r#"{"x":2}"#.into()
        }
    );
    assert_eq!(
        parse(br#"{"type":"disconnect","reconnect":true,"reason":"remote","reconnect":false}"#),
        ServerFrame::Disconnect {
            reason: Some(DisconnectReason::Remote),
            reconnect: Some(false)
        }
    );
    // The last `sid` wins even when an earlier one is of the wrong type.
    assert_eq!(
        parse(br#"{"type":"welcome","sid":5,"x":1,"sid":"b","x":2}"#),
        ServerFrame::Welcome(Welcome {
            sid: Some("b".into()),
            extra: vec![("x".into(), "1".into()), ("x".into(), "2".into())],
            ..Welcome::default()
        })
    );
}

#[test]
fn keys_are_compared_unescaped() {
    assert_eq!(
        parse(br#"{"\u0074ype":"confirm_subscription","identif\u0069er":"x"}"#),
        ServerFrame::Confirm {
            identifier: "x".into()
        }
    );
    assert_eq!(
        parse(br#"{"type":"welcome","s\u0069d":"a","\u00e9":1}"#),
        ServerFrame::Welcome(Welcome {
            sid: Some("a".into()),
            extra: vec![("é".into(), "1".into())],
            ..Welcome::default()
        })
    );
}

#[test]
fn bad_frames() {
    use ServerFrameError::*;
    assert_eq!(err(b""), EmptyFrame);
    for frame in [
        &b"{nope"[..],
        b"{\"type\":\"welcome\"} x",
        b"{\"type\":\"welcome\"}{}",
        b"[1",
        b"{\"type\":\"welcome\"",
        b" ",
        b"nul",
        b"{\"a\":01}",
        b"{\"a\":'x'}",
        b"{\"a\":1,}",
    ] {
        assert!(
            matches!(err(frame), InvalidJson(_)),
            "{}",
            String::from_utf8_lossy(frame)
        );
    }
    assert!(matches!(err(b"{\"a\":1} x"), InvalidJson(e) if e.kind == JsonErrorKind::Syntax));
    assert!(matches!(err(b"{\"a\":"), InvalidJson(e) if e.kind == JsonErrorKind::Eof));
    for frame in [&b"[1]"[..], b"\"welcome\"", b"1", b"null", b" true "] {
        assert_eq!(
            err(frame),
            NotAnObject,
            "{}",
            String::from_utf8_lossy(frame)
        );
    }
}

#[test]
fn positions_of_errors() {
    // Not UTF-8: the position of the first bad byte.
    assert_eq!(
        err(b"{\"type\":\n \"w\xffelcome\"}"),
        ServerFrameError::InvalidJson(InvalidJson {
            kind: JsonErrorKind::Syntax,
            line: 2,
            column: 4
        })
    );
    // A lone surrogate is JSON's grammar, so a raw message keeps it...
    assert_eq!(
        parse(br#"{"identifier":"x","message":"\ud800"}"#),
        ServerFrame::Message {
            identifier: "x".into(),
            message: r#""\ud800""#.into()
        }
    );
    // ...but a string the parser decodes cannot hold it.
    assert!(matches!(
        err(br#"{"identifier":"\ud800","message":1}"#),
        ServerFrameError::InvalidJson(e) if e.kind == JsonErrorKind::Syntax
    ));
    assert_eq!(
        err(b"{\"type\":\"welcome\",\n\"sid\": \"\\udc00\"}"),
        ServerFrameError::InvalidJson(InvalidJson {
            kind: JsonErrorKind::Syntax,
            line: 2,
            column: 8
        })
    );
    assert!(matches!(
        err(br#"{"type":"welcome","restored_ids":["\ud800"]}"#),
        ServerFrameError::InvalidJson(e) if e.kind == JsonErrorKind::Syntax
    ));
}

#[test]
fn deep_messages_have_no_nesting_limit() {
    let depth = 10_000;
    let value = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let frame = format!(r#"{{"identifier":"x","message":{value},"extra":{value}}}"#);
    assert_eq!(
        parse(frame.as_bytes()),
        ServerFrame::Message {
            identifier: "x".into(),
            message: value.as_str().into()
        }
    );
    let unbalanced = format!(r#"{{"identifier":"x","message":{}}}"#, "[".repeat(depth));
    assert!(matches!(
        err(unbalanced.as_bytes()),
        ServerFrameError::InvalidJson(_)
    ));
}

#[test]
fn into_owned_keeps_the_frame() {
    let frames: [&[u8]; 4] = [
        br#"{"type":"welcome","sid":"s","restored":true,"restored_ids":["a"],"x":1}"#,
        br#"{"identifier":"a","message":[1]}"#,
        br#"{"type":"presence","identifier":"a","message":2,"y":3}"#,
        br#"{"type":"disconnect","reason":"other"}"#,
    ];
    for frame in frames {
        let parsed = parse(frame);
        assert_eq!(parsed.clone().into_owned(), parsed);
    }
}

#[test]
fn disconnect_reasons_round_trip() {
    use DisconnectReason::*;
    // No wildcard: a new variant must be added here, and to `parse`.
    fn known(reason: &DisconnectReason) -> bool {
        match reason {
            Unauthorized | InvalidRequest | ServerRestart | Remote | TooSlow | TokenExpired => true,
            Other(_) => false,
        }
    }
    let all = [
        Unauthorized,
        InvalidRequest,
        ServerRestart,
        Remote,
        TooSlow,
        TokenExpired,
    ];
    for reason in &all {
        assert!(known(reason));
        assert_eq!(&DisconnectReason::parse(reason.as_str()), reason);
        assert_eq!(
            reason.as_str().parse::<DisconnectReason>().as_ref(),
            Ok(reason)
        );
    }
    for other in [
        "",
        "idle_timeout",
        "no_pong",
        "Unauthorized",
        "unauthorized ",
        "é<",
    ] {
        let reason = DisconnectReason::parse(other);
        assert_eq!(reason, Other(other.to_owned().into()));
        assert_eq!(reason.as_str(), other);
    }
}

#[test]
fn builders_parse_back() {
    let chat = Identifier::parse(CHAT, usize::MAX).unwrap();
    assert_eq!(parse(&welcome()), ServerFrame::Welcome(Welcome::default()));
    assert_eq!(
        parse(&ping(0)),
        ServerFrame::Ping {
            unix_seconds: Some(0)
        }
    );
    assert_eq!(
        parse(&ping(u64::MAX)),
        ServerFrame::Ping {
            unix_seconds: Some(u64::MAX)
        }
    );
    assert_eq!(
        parse(&confirm(&chat)),
        ServerFrame::Confirm {
            identifier: CHAT.into()
        }
    );
    assert_eq!(
        parse(&reject(&chat)),
        ServerFrame::Reject {
            identifier: CHAT.into()
        }
    );
    assert_eq!(
        parse(&message_string(&chat, "<b>\u{2028}")),
        ServerFrame::Message {
            identifier: CHAT.into(),
            message: r#""\u003cb\u003e\u2028""#.into()
        }
    );
    for reason in [
        DisconnectReason::Unauthorized,
        DisconnectReason::InvalidRequest,
        DisconnectReason::ServerRestart,
        DisconnectReason::Remote,
        DisconnectReason::TooSlow,
        DisconnectReason::TokenExpired,
        DisconnectReason::Other("a<b\"\n".into()),
    ] {
        for reconnect in [false, true] {
            assert_eq!(
                parse(&disconnect(&reason, reconnect)),
                ServerFrame::Disconnect {
                    reason: Some(reason.clone()),
                    reconnect: Some(reconnect)
                }
            );
        }
    }
}

/// Arbitrary JSON values, strings with every kind of character.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Whole floats: serde_json's default float parsing may be off by an ulp
        // on others.
        any::<i32>().prop_map(|n| Value::from(f64::from(n))),
        any::<String>().prop_map(Value::String),
        "[<>&\u{2028}\"\\\\/\u{0}-\u{1f}a]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn message_frames_round_trip(
        identifier in prop_oneof![any::<String>(), "[<>&\u{2028}\"\\\\/\u{0}-\u{1f}a-c]{0,12}"],
        value in json_value(),
    ) {
        let mut literal = Vec::new();
        write_rails_string(&mut literal, &identifier);
        let payload = crate::json::to_rails_json(&value).unwrap();
        let frame = message_from_literal(&literal, payload.as_bytes());
        let ServerFrame::Message { identifier: parsed_id, message } = parse(&frame) else {
            panic!("not a message: {frame:?}");
        };
        prop_assert_eq!(&parsed_id, &identifier);
        // Borrowed exactly when the literal is the string between quotes.
        prop_assert_eq!(
            matches!(parsed_id, Cow::Borrowed(_)),
            literal[1..literal.len() - 1] == *identifier.as_bytes()
        );
        prop_assert!(matches!(message, Cow::Borrowed(_)));
        prop_assert_eq!(&*message, payload.as_str());
        prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&message).unwrap(), value);
    }

    #[test]
    fn identifier_frames_round_trip(room in any::<String>(), kind in 0..2u8) {
        let raw = serde_json::json!({"channel": "ChatChannel", "room": room}).to_string();
        let id = Identifier::parse(&raw, usize::MAX).unwrap();
        let (frame, expected) = if kind == 0 {
            (confirm(&id), ServerFrame::Confirm { identifier: raw.as_str().into() })
        } else {
            (reject(&id), ServerFrame::Reject { identifier: raw.as_str().into() })
        };
        prop_assert_eq!(parse(&frame), expected);
    }

    #[test]
    fn disconnect_frames_round_trip(reason in any::<String>(), reconnect in any::<bool>()) {
        let reason = DisconnectReason::parse(&reason);
        let frame = disconnect(&reason, reconnect);
        prop_assert_eq!(
            parse(&frame),
            ServerFrame::Disconnect { reason: Some(reason), reconnect: Some(reconnect) }
        );
    }

    #[test]
    fn ping_frames_round_trip(unix_seconds in any::<u64>()) {
        let frame = ping(unix_seconds);
        prop_assert_eq!(parse(&frame), ServerFrame::Ping { unix_seconds: Some(unix_seconds) });
    }
}
