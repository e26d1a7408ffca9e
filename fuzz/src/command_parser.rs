//! Target `command_parser`: [`cable_proto::command::parse`] on arbitrary bytes.
//!
//! Invariants beyond "no panic":
//! - a command parses only from a JSON object whose `command` is a known
//!   command name and whose `identifier` (and `data`, for `message`) are
//!   strings, the last occurrence of a duplicated key winning;
//! - what parses re-encodes (`Command::encode`, as `@rails/actioncable`
//!   sends it) to a frame that parses to the same command;
//! - a subscribe identifier that [`Identifier::parse`] accepts has a JSON
//!   literal that decodes back to it byte for byte;
//! - error messages stay short (they quote at most a bounded prefix).
//!
//! Compiled also by `cable-proto/tests/fuzz_corpus.rs`: `std`, `cable_proto`,
//! `serde_json` and `bytes` only.

use cable_proto::command::{parse, Command};
use cable_proto::Identifier;
use serde_json::Value;

/// Runs one input.
pub fn run(data: &[u8]) {
    match parse(data) {
        Ok(command) => check_command(data, &command),
        Err(error) => {
            let shown = error.to_string();
            assert!(
                shown.len() <= 1024,
                "error message grows with the input: {} bytes",
                shown.len()
            );
        }
    }
}

fn check_command(data: &[u8], command: &Command<'_>) {
    // The input is one JSON object. serde_json's `Value` keeps the last of
    // duplicated keys, as the parser promises.
    let value: Value = match serde_json::from_slice(data) {
        Ok(value) => value,
        Err(e) => {
            // `Value` refuses lone surrogate escapes that skipped fields may
            // hold; the text must still be JSON.
            serde_json::from_slice::<serde::de::IgnoredAny>(data)
                .unwrap_or_else(|_| panic!("parsed a command from invalid JSON ({e}): {data:?}"));
            return check_round_trip(command);
        }
    };
    let Value::Object(map) = &value else {
        panic!("parsed a command from a non-object: {data:?}");
    };
    let field = |key: &str| map.get(key).and_then(Value::as_str);
    let (name, data_field) = match command {
        Command::Subscribe { .. } => ("subscribe", None),
        Command::Unsubscribe { .. } => ("unsubscribe", None),
        Command::Message { data, .. } => ("message", Some(&**data)),
        other => panic!("unexpected command variant {other:?}"),
    };
    assert_eq!(field("command"), Some(name), "command name");
    assert_eq!(
        field("identifier"),
        Some(command.identifier()),
        "identifier"
    );
    if let Some(data) = data_field {
        assert_eq!(field("data"), Some(data), "data");
    }
    check_round_trip(command);
}

fn check_round_trip(command: &Command<'_>) {
    // Re-encoding round-trips.
    let encoded = command.encode();
    let again = parse(encoded.as_bytes())
        .unwrap_or_else(|e| panic!("re-encoded command does not parse ({e}): {encoded}"));
    assert_eq!(&again, command, "re-encoded command differs: {encoded}");
    assert_eq!(command.clone().into_owned(), *command, "into_owned");

    if let Command::Subscribe { identifier } = command {
        if let Ok(parsed) = Identifier::parse(identifier, usize::MAX) {
            assert_eq!(parsed.as_str(), &**identifier);
            let literal = std::str::from_utf8(parsed.json_literal()).expect("literal is UTF-8");
            let decoded: String = serde_json::from_str(literal).unwrap_or_else(|e| {
                panic!("identifier literal is not a JSON string ({e}): {literal}")
            });
            assert_eq!(decoded, &**identifier, "identifier literal round trip");
            assert!(
                parsed.params().get("channel").is_some_and(Value::is_string),
                "accepted identifier without a string channel"
            );
            assert_eq!(
                Some(parsed.channel()),
                parsed.param("channel").and_then(Value::as_str)
            );
        }
    }
}
