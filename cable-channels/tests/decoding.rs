//! Tolerant and safe decoding: unknown fields and types are kept, nulls are `None`,
//! malformed input is a typed error; and `fuzz_decode_all` (the fuzz target's body)
//! run on pseudo-random and mutated golden inputs.

mod common;

use cable_channels::buddyboss::BuddyBossMessage;
use cable_channels::circle::{CircleEvent, CircleIdentifier, CircleMessage};
use cable_channels::jac::{JacClientEvent, JacServerFrame};
use cable_channels::platformos::ConversateIdentifier;
use cable_channels::{fuzz_decode_all, DecodeError, IdValue};

#[test]
fn unknown_fields_are_kept_in_order() {
    let text = r#"{"type":"join_thread","threadId":5,"z":1,"a":{"k":[true]}}"#;
    let msg = BuddyBossMessage::decode(text).unwrap();
    let BuddyBossMessage::JoinThread(j) = &msg else {
        panic!()
    };
    assert_eq!(j.thread_id, IdValue::Number(5));
    assert_eq!(j.extra.keys().collect::<Vec<_>>(), ["z", "a"]);
    assert_eq!(msg.encode(), text);

    let text = r#"{"type":"walker","walker":"w","future":"x"}"#;
    let ev = JacClientEvent::decode(text).unwrap();
    assert_eq!(ev.encode(), text);

    let id =
        CircleIdentifier::parse(r#"{"channel":"ChatRoomChannel","community_member_id":1,"v":2}"#)
            .unwrap();
    assert_eq!(id.extra.len(), 1);
    assert_eq!(
        cable_channels::ChannelIdentifier::identifier(&id),
        r#"{"channel":"ChatRoomChannel","community_member_id":1,"v":2}"#
    );
}

#[test]
fn unknown_types_keep_name_and_payload() {
    let ev = JacClientEvent::decode(r#"{"type":"xyz","a":1}"#).unwrap();
    assert_eq!(ev.type_name(), "xyz");
    assert_eq!(ev.encode(), r#"{"type":"xyz","a":1}"#);
    // Case-sensitive, as the real server.
    assert_eq!(
        JacClientEvent::decode(r#"{"type":"Walker"}"#)
            .unwrap()
            .type_name(),
        "Walker"
    );
    let msg = CircleMessage::decode(r#"{"event":"brandNew","data":{"x":[1,2]}}"#).unwrap();
    assert_eq!(msg.event.name(), "brandNew");
    assert!(matches!(msg.event, CircleEvent::Unknown { .. }));
}

#[test]
fn null_ids_are_none() {
    let text = r#"{"event":"newMessage","data":{"id":1,"chat_room_uuid":"u","chat_room_kind":"direct","chat_room_participant_id":null,"body":"b","rich_text_body":null,"sent_at":"s","created_at":"c","sender":{},"creation_uuid":null,"chat_thread_id":null,"parent_message_id":null,"lesson_id":null,"edited_at":null,"replies_count":0,"total_thread_participants_count":0,"thread_participants_preview":null,"chat_thread_replies_count":null}}"#;
    let msg = CircleMessage::decode(text).unwrap();
    let CircleEvent::NewMessage(m) = &msg.event else {
        panic!()
    };
    assert_eq!(
        (m.chat_thread_id, m.parent_message_id, m.lesson_id),
        (None, None, None)
    );
    assert_eq!(m.chat_room_participant_id, None);
    assert_eq!(msg.encode(), text);
    // Absent nullable fields decode as None too (and encode as null).
    let short = r#"{"event":"newMessage","data":{"id":1,"chat_room_uuid":"u","chat_room_kind":"k","body":"b","sent_at":"s","created_at":"c","replies_count":0,"total_thread_participants_count":0}}"#;
    assert!(CircleMessage::decode(short).is_ok());
}

#[test]
fn malformed_input_is_a_typed_error() {
    assert!(matches!(
        JacClientEvent::decode("this is not json"),
        Err(DecodeError::Syntax { .. })
    ));
    assert!(matches!(
        JacClientEvent::decode(""),
        Err(DecodeError::Syntax { .. })
    ));
    assert!(matches!(
        JacClientEvent::decode("[1,2]"),
        Err(DecodeError::NotAnObject { found: "an array" })
    ));
    assert_eq!(
        JacClientEvent::decode("{}"),
        Err(DecodeError::MissingField { field: "type" })
    );
    assert!(matches!(
        JacClientEvent::decode(r#"{"type":"channel","channel_ids":["a"],"data":"str"}"#),
        Err(DecodeError::InvalidPayload { ref name, .. }) if name == "channel"
    ));
    assert!(matches!(
        BuddyBossMessage::decode(r#"{"type":"typing"}"#),
        Err(DecodeError::InvalidPayload { .. })
    ));
    assert_eq!(
        CircleIdentifier::parse(r#"{"channel":"Nope","id":1}"#),
        Err(DecodeError::UnknownChannel("Nope".into()))
    );
    assert!(matches!(
        CircleIdentifier::parse(r#"{"channel":"ChatRoomChannel","community_member_id":-1}"#),
        Err(DecodeError::InvalidField {
            field: "community_member_id",
            ..
        })
    ));
    // Digits in a string are accepted (Rails params do not care).
    assert_eq!(
        CircleIdentifier::parse(r#"{"channel":"ChatRoomChannel","community_member_id":"12"}"#)
            .unwrap(),
        CircleIdentifier::chat_room(12)
    );
    assert_eq!(
        ConversateIdentifier::parse(r#"{"channel":"other","room_id":1}"#),
        Err(DecodeError::UnknownChannel("other".into()))
    );
    // Deep nesting hits the parser's depth limit instead of the stack.
    let deep = "[".repeat(100_000);
    assert!(matches!(
        JacServerFrame::decode(&deep),
        Err(DecodeError::Syntax { .. })
    ));
    assert!(matches!(
        "1:abc".parse::<cable_channels::jac::GeneratedId>(),
        Err(DecodeError::InvalidId { .. })
    ));
}

#[test]
fn identifiers_match_json_stringify_escaping() {
    // JSON.stringify escapes only `"`, `\` and control characters (short forms for
    // \b \f \n \r \t, lowercase \u00xx otherwise); `<>&/`, U+2028 and non-ASCII stay raw.
    let id = ConversateIdentifier::new("<a&b>/\"q\"\\\n\u{1}\u{7f}\u{2028}é😀");
    assert_eq!(
        cable_channels::ChannelIdentifier::identifier(&id),
        "{\"channel\":\"conversate\",\"room_id\":\"<a&b>/\\\"q\\\"\\\\\\n\\u0001\u{7f}\u{2028}é😀\"}"
    );
}

/// A small deterministic PRNG (xorshift64*), so the test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn golden_inputs() -> Vec<String> {
    let mut out = Vec::new();
    for file in [
        "docs.jsonl",
        "circle_events.jsonl",
        "jac_server_frames.jsonl",
        "change_user.jsonl",
        "channel_event.jsonl",
        "user_event.jsonl",
        "walker_response_true.jsonl",
    ] {
        for line in common::jsonl(file) {
            if let Some(frame) = line["frame"].as_str() {
                out.push(frame.to_owned());
                // Also the Circle envelope alone and the identifier string alone.
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(frame) {
                    if let Some(m) = v.get("message") {
                        out.push(m.to_string());
                    }
                    if let Some(i) = v.get("identifier").and_then(|i| i.as_str()) {
                        out.push(i.to_owned());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn fuzz_decode_all_on_golden_random_and_mutated_inputs() {
    let inputs = golden_inputs();
    assert!(inputs.len() > 150);
    for input in &inputs {
        fuzz_decode_all(input.as_bytes());
    }
    let alphabet: &[u8] = b"{}[]\":,0123456789-.eE+ \\ntrufalsenul\x00\xff\xc3\xa9abcxyz";
    let tokens = [
        "\"type\"",
        "\"event\"",
        "\"data\"",
        "\"walker\"",
        "\"channel\"",
        "\"identifier\"",
        "\"message\"",
        "\"error\"",
        "\"status\"",
        "\"reports\"",
        "null",
        "-0.0",
        "1e400",
        "18446744073709551616",
        "\"n::000000000000000000000001\"",
        "\"1795329544:c4184da5fc344eff8ae4e0b3b9bf6213\"",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0;
    // Pure noise.
    for _ in 0..200 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        fuzz_decode_all(&bytes);
        runs += 1;
    }
    // Mutated golden frames: flip, delete, insert bytes or splice tokens.
    for _ in 0..600 {
        let mut bytes = inputs[rng.below(inputs.len())].clone().into_bytes();
        for _ in 0..1 + rng.below(4) {
            let at = if bytes.is_empty() {
                0
            } else {
                rng.below(bytes.len())
            };
            match rng.below(4) {
                0 if !bytes.is_empty() => bytes[at] = alphabet[rng.below(alphabet.len())],
                1 if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => {
                    let t = tokens[rng.below(tokens.len())].as_bytes();
                    bytes.splice(at..at, t.iter().copied());
                }
            }
        }
        fuzz_decode_all(&bytes);
        runs += 1;
    }
    assert_eq!(runs, 800);
}
