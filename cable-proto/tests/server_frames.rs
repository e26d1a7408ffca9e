//! The parser of server frames against what servers really send: every frame
//! of the recorded Rails 6.1 transcripts, the core's own frame builders, and
//! a naive model of the parsing rules over generated frames.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cable_proto::command::{self, Command};
use cable_proto::frame::{
    self, parse_server_frame, ServerFrame, ServerFrameError, UnknownFrame, Welcome,
};
use cable_proto::{DisconnectReason, Identifier};
use proptest::prelude::*;
use serde_json::Value;

fn transcripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cable-fixtures/transcripts/rails-6.1");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    paths.sort();
    paths
}

/// What one recorded client has seen so far.
#[derive(Default)]
struct Client {
    /// `subscribe` commands sent, per identifier.
    subscribes: HashMap<String, usize>,
    /// Confirmations and rejections received, per identifier.
    answers: HashMap<String, usize>,
    frames: usize,
    last_ping: Option<u64>,
    /// The frames received, in order.
    seen: Vec<ServerFrame<'static>>,
}

fn variant(frame: &ServerFrame<'_>) -> &'static str {
    match frame {
        ServerFrame::Welcome(_) => "welcome",
        ServerFrame::Ping { .. } => "ping",
        ServerFrame::Confirm { .. } => "confirm",
        ServerFrame::Reject { .. } => "reject",
        ServerFrame::Message { .. } => "message",
        ServerFrame::Disconnect { .. } => "disconnect",
        ServerFrame::Unknown(_) => "unknown",
        _ => "new variant",
    }
}

#[test]
fn every_server_frame_of_the_rails_transcripts_parses() {
    let paths = transcripts();
    assert!(paths.len() >= 25, "only {} transcripts", paths.len());
    let mut totals: HashMap<&'static str, usize> = HashMap::new();
    for path in &paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let mut clients: HashMap<String, Client> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{name}:{}", n + 1);
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: {e}"));
            let who = event["client"].as_str().expect("a client").to_owned();
            let client = clients.entry(who).or_default();
            match event["dir"].as_str() {
                Some("out") => {
                    if let Some(Ok(Command::Subscribe { identifier })) = event["frame"]
                        .as_str()
                        .map(|f| command::parse(f.as_bytes()))
                    {
                        *client
                            .subscribes
                            .entry(identifier.into_owned())
                            .or_default() += 1;
                    }
                }
                Some("in") => {
                    assert!(
                        event.get("binary").is_none(),
                        "{at}: Rails sent a binary frame"
                    );
                    let raw = event["frame"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{at}: no frame text"));
                    let parsed = parse_server_frame(raw.as_bytes())
                        .unwrap_or_else(|e| panic!("{at}: {raw} does not parse: {e}"));
                    check_frame(&at, raw, &parsed, client);
                    client.frames += 1;
                    client.seen.push(parsed.clone().into_owned());
                    *totals.entry(variant(&parsed)).or_default() += 1;
                }
                _ => {}
            }
        }
        check_scenario(&name, &clients);
    }
    // Every kind of frame Rails 6.1 sends is in the corpus, and nothing else.
    for kind in [
        "welcome",
        "ping",
        "confirm",
        "reject",
        "message",
        "disconnect",
    ] {
        assert!(
            totals.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} frame: {totals:?}"
        );
    }
    assert_eq!(totals.get("unknown"), None);
    assert!(totals.values().sum::<usize>() >= 150, "{totals:?}");
}

/// Checks one frame against the JSON it came from and the client's history.
fn check_frame(at: &str, raw: &str, parsed: &ServerFrame<'_>, client: &mut Client) {
    let json: Value = serde_json::from_str(raw).unwrap();
    let kind = json.get("type").and_then(Value::as_str);
    let json_identifier = json.get("identifier").and_then(Value::as_str);
    if client.frames == 0 {
        assert!(
            matches!(
                parsed,
                ServerFrame::Welcome(_)
                    | ServerFrame::Disconnect {
                        reason: Some(DisconnectReason::Unauthorized),
                        reconnect: Some(false)
                    }
            ),
            "{at}: first frame is {parsed:?}"
        );
    }
    match parsed {
        ServerFrame::Welcome(welcome) => {
            assert_eq!(kind, Some("welcome"), "{at}");
            // Rails sends a bare welcome.
            assert_eq!(welcome, &Welcome::default(), "{at}");
        }
        ServerFrame::Ping { unix_seconds } => {
            assert_eq!(kind, Some("ping"), "{at}");
            let seconds = unix_seconds.unwrap_or_else(|| panic!("{at}: a ping without time"));
            assert_eq!(Some(seconds), json["message"].as_u64(), "{at}");
            assert!(seconds > 1_600_000_000, "{at}: {seconds}");
            if let Some(last) = client.last_ping {
                assert!(seconds > last, "{at}: ping {seconds} after {last}");
            }
            client.last_ping = Some(seconds);
        }
        ServerFrame::Confirm { identifier } | ServerFrame::Reject { identifier } => {
            let expected = if matches!(parsed, ServerFrame::Confirm { .. }) {
                "confirm_subscription"
            } else {
                "reject_subscription"
            };
            assert_eq!(kind, Some(expected), "{at}");
            assert_eq!(Some(&**identifier), json_identifier, "{at}");
            let answers = client.answers.entry(identifier.to_string()).or_default();
            *answers += 1;
            // Answers only what the client asked, at most once per subscribe.
            let asked = client.subscribes.get(&**identifier).copied().unwrap_or(0);
            assert!(
                *answers <= asked,
                "{at}: answer {answers} to {asked} subscribes of {identifier}"
            );
        }
        ServerFrame::Message {
            identifier,
            message,
        } => {
            assert_eq!(kind, None, "{at}");
            assert_eq!(Some(&**identifier), json_identifier, "{at}");
            assert!(
                client.subscribes.contains_key(&**identifier),
                "{at}: a message for {identifier}, never subscribed"
            );
            // The message is a slice of the frame, and it is the whole value.
            let Cow::Borrowed(slice) = message else {
                panic!("{at}: the message is not borrowed");
            };
            let start = slice.as_ptr() as usize - raw.as_ptr() as usize;
            assert!(start + slice.len() < raw.len(), "{at}");
            assert_eq!(
                serde_json::from_str::<Value>(slice).unwrap(),
                json["message"],
                "{at}"
            );
        }
        ServerFrame::Disconnect { reason, reconnect } => {
            assert_eq!(kind, Some("disconnect"), "{at}");
            let reason = reason.as_ref().unwrap_or_else(|| panic!("{at}: no reason"));
            assert_eq!(Some(reason.as_str()), json["reason"].as_str(), "{at}");
            assert!(
                !matches!(reason, DisconnectReason::Other(_)),
                "{at}: Rails 6.1 sends only known reasons"
            );
            // Rails 6.0+ always sends the flag.
            assert_eq!(*reconnect, json["reconnect"].as_bool(), "{at}");
            assert!(reconnect.is_some(), "{at}");
        }
        other => panic!("{at}: {raw} parses to {other:?}"),
    }
}

/// What particular scenarios must have shown.
fn check_scenario(name: &str, clients: &HashMap<String, Client>) {
    let kinds = |who: &str| -> Vec<&'static str> {
        clients[who]
            .seen
            .iter()
            .map(variant)
            .filter(|&kind| kind != "ping")
            .collect()
    };
    let restart = ServerFrame::Disconnect {
        reason: Some(DisconnectReason::ServerRestart),
        reconnect: Some(true),
    };
    let unauthorized = ServerFrame::Disconnect {
        reason: Some(DisconnectReason::Unauthorized),
        reconnect: Some(false),
    };
    match name {
        "subscribe_reject" => assert_eq!(kinds("A"), ["welcome", "reject", "reject"], "{name}"),
        "subscribe_confirm" => assert_eq!(kinds("A"), ["welcome", "confirm", "message"], "{name}"),
        "welcome_and_pings" => {
            let pings = clients["A"].seen.iter().filter(|f| variant(f) == "ping");
            assert!(pings.count() >= 2, "{name}");
        }
        "unauthorized_query_token" => assert_eq!(clients["A"].seen, [unauthorized], "{name}"),
        "server_restart" => {
            for who in ["A", "B"] {
                assert_eq!(clients[who].seen.last(), Some(&restart), "{name} {who}");
            }
            assert!(!clients["C"].seen.contains(&restart), "{name}");
        }
        // Rails transmits from `subscribed` before it confirms.
        "transmit_in_subscribed" => {
            assert_eq!(kinds("A")[..3], ["welcome", "message", "confirm"], "{name}")
        }
        // A second subscribe to the same identifier gets no second confirmation.
        "duplicate_subscribe" => {
            assert!(clients["A"].subscribes.values().any(|&n| n >= 2), "{name}");
            assert_eq!(
                kinds("A").iter().filter(|&&k| k == "confirm").count(),
                1,
                "{name}"
            );
        }
        _ => {}
    }
}

#[test]
fn frames_built_by_the_core_parse_back() {
    let id = |raw: &str| Identifier::parse(raw, usize::MAX).unwrap();
    let chat = id(r#"{"channel":"ChatChannel","room":"<&>/\u2028é\"\\"}"#);
    let p = |bytes: &bytes::Bytes| parse_server_frame(bytes).unwrap().into_owned();
    assert_eq!(
        p(&frame::welcome()),
        ServerFrame::Welcome(Welcome::default())
    );
    assert_eq!(
        p(&frame::ping(1_700_000_000)),
        ServerFrame::Ping {
            unix_seconds: Some(1_700_000_000)
        }
    );
    assert_eq!(
        p(&frame::confirm(&chat)),
        ServerFrame::Confirm {
            identifier: chat.as_str().to_owned().into()
        }
    );
    assert_eq!(
        p(&frame::reject(&chat)),
        ServerFrame::Reject {
            identifier: chat.as_str().to_owned().into()
        }
    );
    assert_eq!(
        p(&frame::message(&chat, r#" {"a" : [1, "<"]} "#)),
        ServerFrame::Message {
            identifier: chat.as_str().to_owned().into(),
            message: r#"{"a" : [1, "<"]}"#.into()
        }
    );
    assert_eq!(
        p(&frame::message_string(&chat, "<b>")),
        ServerFrame::Message {
            identifier: chat.as_str().to_owned().into(),
            message: r#""\u003cb\u003e""#.into()
        }
    );
    assert_eq!(
        p(&frame::disconnect(&DisconnectReason::Remote, false)),
        ServerFrame::Disconnect {
            reason: Some(DisconnectReason::Remote),
            reconnect: Some(false)
        }
    );
}

/// JSON strings with the characters escaping is about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[<>&/\u{2028}\u{2029}\"\\\\\u{0}-\u{1f}é😀a-c]{0,16}"
    ]
}

proptest! {
    #[test]
    fn built_frames_round_trip(
        params in proptest::collection::vec((text(), text()), 0..4),
        payload in text(),
        reason in text(),
        reconnect in any::<bool>(),
        seconds in any::<u64>(),
    ) {
        let mut object = serde_json::Map::new();
        object.insert("channel".into(), Value::String("C".into()));
        for (k, v) in params {
            object.insert(k, Value::String(v));
        }
        let raw = Value::Object(object).to_string();
        let id = Identifier::parse(&raw, usize::MAX).unwrap();
        let payload_json = serde_json::to_string(&serde_json::json!({"p": payload})).unwrap();
        let cases = [
            (frame::confirm(&id), ServerFrame::Confirm { identifier: raw.as_str().into() }),
            (frame::reject(&id), ServerFrame::Reject { identifier: raw.as_str().into() }),
            (
                frame::message(&id, &payload_json),
                ServerFrame::Message { identifier: raw.as_str().into(), message: payload_json.as_str().into() },
            ),
            (
                frame::message_string(&id, &payload),
                ServerFrame::Message {
                    identifier: raw.as_str().into(),
                    message: cable_proto::JsonText::string(&payload).as_str().to_owned().into(),
                },
            ),
            (
                frame::disconnect(&DisconnectReason::parse(&reason), reconnect),
                ServerFrame::Disconnect { reason: Some(DisconnectReason::parse(&reason)), reconnect: Some(reconnect) },
            ),
            (frame::ping(seconds), ServerFrame::Ping { unix_seconds: Some(seconds) }),
        ];
        for (bytes, expected) in cases {
            prop_assert_eq!(parse_server_frame(&bytes).unwrap(), expected);
        }
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let result = parse_server_frame(&bytes);
        // Whatever is not JSON is refused as such.
        if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
            prop_assert!(matches!(
                result,
                Err(ServerFrameError::EmptyFrame | ServerFrameError::InvalidJson(_))
            ));
        }
    }

    #[test]
    fn parsing_damaged_frames_never_panics(
        frame in frame_text(),
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = frame.into_bytes();
        let _ = parse_server_frame(&bytes);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = parse_server_frame(&bytes);
        bytes.truncate(cut.index(bytes.len()));
        let _ = parse_server_frame(&bytes);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn parsing_agrees_with_a_naive_model(pairs in pairs()) {
        let text = format!(
            "{{{}}}",
            pairs.iter().map(|(k, v)| format!("{} : {v}", k.literal)).collect::<Vec<_>>().join(" ,")
        );
        let parsed = parse_server_frame(text.as_bytes()).map(ServerFrame::into_owned);
        prop_assert_eq!(parsed, model(&pairs), "{}", text);
    }
}

/// A key as written, and what it says.
#[derive(Debug, Clone)]
struct Key {
    literal: &'static str,
    name: &'static str,
}

const KEYS: [Key; 11] = [
    Key {
        literal: r#""type""#,
        name: "type",
    },
    Key {
        literal: r#""t\u0079pe""#,
        name: "type",
    },
    Key {
        literal: r#""identifier""#,
        name: "identifier",
    },
    Key {
        literal: r#""message""#,
        name: "message",
    },
    Key {
        literal: r#""reason""#,
        name: "reason",
    },
    Key {
        literal: r#""reconnect""#,
        name: "reconnect",
    },
    Key {
        literal: r#""sid""#,
        name: "sid",
    },
    Key {
        literal: r#""restored""#,
        name: "restored",
    },
    Key {
        literal: r#""restored_ids""#,
        name: "restored_ids",
    },
    Key {
        literal: r#""x""#,
        name: "x",
    },
    Key {
        literal: r#""é""#,
        name: "é",
    },
];

const VALUES: [&str; 26] = [
    "null",
    "true",
    "false",
    "0",
    "17",
    "-1",
    "1.5",
    "18446744073709551616",
    r#""welcome""#,
    r#""ping""#,
    r#""confirm_subscription""#,
    r#""reject_subscription""#,
    r#""disconnect""#,
    r#""presence""#,
    r#""unauthorized""#,
    r#""remote""#,
    r#""s""#,
    r#""{\"channel\":\"C\"}""#,
    r#""\u003c""#,
    "[]",
    r#"["a"]"#,
    r#"["a","\"b"]"#,
    r#"["a",1]"#,
    "{}",
    r#"{"type":"ping"}"#,
    r#"[{"a":[null]}]"#,
];

/// Values that make sense for a key, so that generated frames reach every
/// variant and not only errors.
fn likely_values(name: &str) -> &'static [&'static str] {
    match name {
        "type" => &[
            r#""welcome""#,
            r#""ping""#,
            r#""confirm_subscription""#,
            r#""reject_subscription""#,
            r#""disconnect""#,
            r#""presence""#,
            "null",
        ],
        "identifier" => &[r#""s""#, r#""{\"channel\":\"C\"}""#, r#""\u003c""#],
        "reason" => &[
            r#""unauthorized""#,
            r#""remote""#,
            r#""idle_timeout""#,
            "null",
        ],
        "reconnect" | "restored" => &["true", "false", "null"],
        "sid" => &[r#""s""#, r#""\u003c""#, "null"],
        "restored_ids" => &["[]", r#"["a"]"#, r#"["a","\"b"]"#, "null"],
        "message" => &["17", "0", "null", r#"{"a":[1]}"#, r#""tock""#],
        _ => &VALUES,
    }
}

fn pair() -> impl Strategy<Value = (Key, &'static str)> {
    prop::sample::select(&KEYS[..]).prop_flat_map(|key| {
        let value = prop_oneof![
            3 => prop::sample::select(likely_values(key.name)),
            1 => prop::sample::select(&VALUES[..]),
        ];
        (Just(key), value)
    })
}

fn pairs() -> impl Strategy<Value = Vec<(Key, &'static str)>> {
    proptest::collection::vec(pair(), 0..7)
}

fn frame_text() -> impl Strategy<Value = String> {
    pairs().prop_map(|pairs| {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{v}", k.literal))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

/// The parsing rules, from the documentation, over a list of keys and JSON
/// values decoded by `serde_json::Value`.
fn model(pairs: &[(Key, &'static str)]) -> Result<ServerFrame<'static>, ServerFrameError> {
    use ServerFrameError::{MissingField, WrongType};
    let last = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| serde_json::from_str::<Value>(v).unwrap())
    };
    let raw_last = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| *v)
    };
    fn wrong<T>(field: &'static str, expected: &'static str) -> Result<T, ServerFrameError> {
        Err(WrongType { field, expected })
    }
    let string = |v: Value| Cow::Owned(v.as_str().unwrap().to_owned());
    let identifier = || match last("identifier") {
        None | Some(Value::Null) => Err(MissingField("identifier")),
        Some(Value::String(s)) => Ok(Cow::Owned(s)),
        Some(_) => wrong("identifier", "a string"),
    };
    let extra = |skip: &[&str]| -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
        pairs
            .iter()
            .filter(|(k, _)| {
                !["type", "identifier", "message"].contains(&k.name) && !skip.contains(&k.name)
            })
            .map(|(k, v)| (Cow::Borrowed(k.name), Cow::Borrowed(*v)))
            .collect()
    };
    let kind = match last("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return wrong("type", "a string"),
    };
    let Some(kind) = kind else {
        let identifier = identifier()?;
        let message = raw_last("message").ok_or(MissingField("message"))?;
        return Ok(ServerFrame::Message {
            identifier,
            message: message.into(),
        });
    };
    Ok(match kind.as_str() {
        "welcome" => ServerFrame::Welcome(Welcome {
            sid: match last("sid") {
                None | Some(Value::Null) => None,
                Some(v @ Value::String(_)) => Some(string(v)),
                Some(_) => return wrong("sid", "a string"),
            },
            restored: match last("restored") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => b,
                Some(_) => return wrong("restored", "a boolean"),
            },
            restored_ids: match last("restored_ids") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                    items.into_iter().map(string).collect()
                }
                Some(_) => return wrong("restored_ids", "an array of strings"),
            },
            extra: extra(&["sid", "restored", "restored_ids"]),
        }),
        "ping" => ServerFrame::Ping {
            unix_seconds: match last("message") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .map_or_else(|| wrong("message", "a non-negative integer"), Ok)?,
                ),
            },
        },
        "confirm_subscription" => ServerFrame::Confirm {
            identifier: identifier()?,
        },
        "reject_subscription" => ServerFrame::Reject {
            identifier: identifier()?,
        },
        "disconnect" => ServerFrame::Disconnect {
            reason: match last("reason") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(DisconnectReason::parse(&s)),
                Some(_) => return wrong("reason", "a string"),
            },
            reconnect: match last("reconnect") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(b),
                Some(_) => return wrong("reconnect", "a boolean"),
            },
        },
        _ => ServerFrame::Unknown(UnknownFrame {
            kind: kind.into(),
            identifier: last("identifier")
                .and_then(|v| v.as_str().map(|s| Cow::Owned(s.to_owned()))),
            message: raw_last("message").map(Cow::Borrowed),
            extra: extra(&[]),
        }),
    })
}
