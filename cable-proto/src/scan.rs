//! The fast path of command handling: a strict scanner for flat JSON objects
//! whose values are strings or scalars, finding the string literals of a few
//! keys without decoding them (but for the one asked to be decoded as it is
//! scanned: a message's `data`, which the application gets as a string).
//!
//! It accepts a subset of JSON and says `None` for anything else (nested
//! values, escapes in keys, lone surrogates, an empty object, any doubt): the
//! caller then takes the full path ([`crate::command::parse`] and friends),
//! whose answers, errors included, are the reference. Whatever the scanner
//! does accept, the full path accepts with the same meaning (the
//! `fast_path_agrees_with_the_full_parser` property and the fuzz corpus
//! replay check it).

use std::borrow::Cow;

/// A JSON string literal as it stands in the text, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Literal<'a> {
    /// The literal, quotes included (UTF-8: the scanner checked).
    quoted: &'a [u8],
    /// No escapes at all.
    unescaped: bool,
    /// No escapes but `\"` and `\\`.
    quote_escapes_only: bool,
    /// Written exactly as Rails would write its decoded text: only `\"` and
    /// `\\` escapes, and none of the characters Rails escapes (`<`, `>`,
    /// `&`, U+2028, U+2029) raw.
    rails_form: bool,
}

impl<'a> Literal<'a> {
    /// The literal, quotes included.
    pub(crate) fn quoted(&self) -> &'a [u8] {
        self.quoted
    }

    /// The text between the quotes, still escaped.
    pub(crate) fn inner(&self) -> &'a [u8] {
        self.quoted
            .get(1..self.quoted.len().saturating_sub(1))
            .unwrap_or_default()
    }

    /// Whether [`quoted`](Self::quoted) is byte for byte what
    /// [`crate::json::write_rails_string`] writes for [`decode`](Self::decode).
    pub(crate) fn is_rails_form(&self) -> bool {
        self.rails_form
    }

    /// The decoded string (borrowed when there is nothing to decode).
    pub(crate) fn decode(&self) -> Cow<'a, str> {
        let inner = self.inner();
        if self.unescaped {
            // UTF-8 (the scanner checked): lossless.
            return String::from_utf8_lossy(inner);
        }
        if self.quote_escapes_only {
            // Drop each escaping backslash, keep what it escapes.
            let mut out = inner.to_vec();
            let mut escaped = false;
            out.retain(|&b| {
                let keep = escaped || b != b'\\';
                escaped = !escaped && b == b'\\';
                keep
            });
            // Only ASCII backslashes were taken out of UTF-8.
            return Cow::Owned(String::from_utf8(out).unwrap_or_default());
        }
        let mut out = Vec::with_capacity(inner.len());
        let mut bytes = inner.iter().copied();
        while let Some(b) = bytes.next() {
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let decoded = match bytes.next() {
                // `\"`, `\\`, `\/`: the character itself.
                Some(c @ (b'"' | b'\\' | b'/')) => {
                    out.push(c);
                    continue;
                }
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    // The scanner admitted only four hex digits of a scalar value.
                    let mut code = 0;
                    for _ in 0..4 {
                        let digit = bytes.next().map(char::from).and_then(|h| h.to_digit(16));
                        code = code * 16 + digit.unwrap_or(0);
                    }
                    char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
                Some(c) => char::from(c),
                None => break,
            };
            let mut utf8 = [0; 4];
            out.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
        }
        // Unescaped UTF-8 with escapes replaced by whole characters.
        let out = String::from_utf8(out).unwrap_or_default();
        Cow::Owned(out)
    }
}

/// The classes of bytes inside a string literal.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const BACKSLASH: u8 = 2;
const CONTROL: u8 = 3;
/// `<`, `>`, `&` and the first byte of U+2028 and U+2029 (and of other
/// characters: a conservative answer).
const RAILS_ESCAPES: u8 = 4;
/// Other bytes of non-ASCII characters.
const NON_ASCII: u8 = 5;

static CLASS: [u8; 256] = {
    let mut class = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        class[b] = CONTROL;
        b += 1;
    }
    class[b'"' as usize] = QUOTE;
    class[b'\\' as usize] = BACKSLASH;
    class[b'<' as usize] = RAILS_ESCAPES;
    class[b'>' as usize] = RAILS_ESCAPES;
    class[b'&' as usize] = RAILS_ESCAPES;
    while b < 0x100 {
        if b >= 0x80 {
            class[b] = NON_ASCII;
        }
        b += 1;
    }
    class[0xe2] = RAILS_ESCAPES;
    class
};

/// The high bit of each byte of `word` (little-endian) that is not
/// [`PLAIN`], exact up to the lowest one (above it, a plain byte may be
/// flagged too: the byte loop decides).
fn special_bytes<const RAILS: bool>(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let structural = zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
        // Control characters (below 0x20).
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
        // Non-ASCII (to be checked as UTF-8; U+2028 and U+2029 among them).
        | (word & HIGH);
    if !RAILS {
        return structural;
    }
    structural
        // `<` (0x3c) and `>` (0x3e) at once.
        | zero((word | (ONES * 2)) ^ (ONES * u64::from(b'>')))
        | zero(word ^ (ONES * u64::from(b'&')))
}

/// What a flat value turned out to be.
enum Value<'a> {
    Str(Literal<'a>),
    Scalar,
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
    /// A byte of a non-ASCII character was seen: the text is to be checked
    /// as UTF-8.
    non_ascii: bool,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.bump()? == expected).then_some(())
    }

    /// JSON's whitespace, as serde_json skips it.
    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string literal starting at the cursor; whether it is in Rails' form
    /// is found out only if `RAILS` (or else it is said not to be); if
    /// `DECODE`, its decoded bytes are written to `out`, which is cleared
    /// first.
    fn string<const RAILS: bool, const DECODE: bool>(
        &mut self,
        out: &mut Vec<u8>,
    ) -> Option<Literal<'a>> {
        let start = self.at;
        let bytes = self.text;
        if bytes.get(start) != Some(&b'"') {
            return None;
        }
        let mut at = start + 1;
        // The start of the bytes not yet copied to `out`.
        let mut run = at;
        if DECODE {
            out.clear();
            out.reserve(bytes.len() - at);
        }
        let mut unescaped = true;
        let mut quote_escapes_only = true;
        let mut rails_form = true;
        loop {
            // Eight bytes at a time up to the first one that may need a look.
            while let Some(block) = bytes.get(at..at + 8) {
                let mut word = [0; 8];
                word.copy_from_slice(block);
                let mask = special_bytes::<RAILS>(u64::from_le_bytes(word));
                if mask != 0 {
                    at += (mask.trailing_zeros() / 8) as usize;
                    break;
                }
                at += 8;
            }
            let b = *bytes.get(at)?;
            let class = CLASS[usize::from(b)];
            if class == PLAIN {
                at += 1;
                continue;
            }
            if class == QUOTE {
                break;
            }
            if class == BACKSLASH {
                unescaped = false;
                if DECODE {
                    out.extend_from_slice(bytes.get(run..at)?);
                }
                let escape = *bytes.get(at + 1)?;
                at += 2;
                if escape == b'"' || escape == b'\\' {
                    if DECODE {
                        out.push(escape);
                        run = at;
                    }
                    continue;
                }
                quote_escapes_only = false;
                rails_form = false;
                let decoded = match escape {
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let hex = bytes.get(at..at + 4)?;
                        let mut code = 0;
                        for &h in hex {
                            code = code * 16 + char::from(h).to_digit(16)?;
                        }
                        at += 4;
                        // Surrogates are not characters: the full path's business.
                        char::from_u32(code)?
                    }
                    _ => return None,
                };
                if DECODE {
                    let mut utf8 = [0; 4];
                    out.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
                    run = at;
                }
                continue;
            }
            if class == CONTROL {
                return None;
            }
            if class != NON_ASCII {
                // One of the characters Rails escapes, or might.
                rails_form = false;
            }
            self.non_ascii |= b >= 0x80;
            at += 1;
        }
        if DECODE {
            out.extend_from_slice(bytes.get(run..at)?);
        }
        self.at = at + 1;
        Some(Literal {
            quoted: self.text.get(start..self.at)?,
            unescaped,
            quote_escapes_only,
            rails_form: RAILS && rails_form,
        })
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.bump()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digit()?;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digit()?;
            self.digits();
        }
        Some(())
    }

    fn digit(&mut self) -> Option<()> {
        self.bump()?.is_ascii_digit().then_some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then_some(())?;
        self.at = end;
        Some(())
    }

    /// A string, number, `true`, `false` or `null`.
    fn value<const RAILS: bool, const DECODE: bool>(
        &mut self,
        out: &mut Vec<u8>,
    ) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => return self.string::<RAILS, DECODE>(out).map(Value::Str),
            b't' => self.word(b"true")?,
            b'f' => self.word(b"false")?,
            b'n' => self.word(b"null")?,
            _ => self.number()?,
        }
        Some(Value::Scalar)
    }
}

/// The string literals of `keys` in the flat JSON object `text` (the last
/// occurrence of a duplicated key, as serde_json's visitors keep it), or
/// `None` if `text` is not a non-empty flat object the scanner is sure of, or
/// a key of `keys` holds anything but a string. Only the literal of
/// `keys[rails_key]` is checked for [`Literal::is_rails_form`]; the (last)
/// string of `keys[decode_key]` is decoded into `out`. Text that is not
/// UTF-8 is refused (checked only if a byte is not ASCII).
pub(crate) fn flat_object<'a, const N: usize>(
    text: &'a [u8],
    keys: [&str; N],
    rails_key: Option<usize>,
    decode_key: Option<usize>,
    out: &mut Vec<u8>,
) -> Option<[Option<Literal<'a>>; N]> {
    let mut found = [None; N];
    let mut s = Scanner {
        text,
        at: 0,
        non_ascii: false,
    };
    s.whitespace();
    s.eat(b'{')?;
    s.whitespace();
    loop {
        let key = s.string::<false, false>(out)?;
        if !key.unescaped {
            return None;
        }
        s.whitespace();
        s.eat(b':')?;
        s.whitespace();
        let slot = keys.iter().position(|&k| k.as_bytes() == key.inner());
        let value = match slot {
            Some(_) if slot == rails_key => s.value::<true, false>(out)?,
            Some(_) if slot == decode_key => s.value::<false, true>(out)?,
            _ => s.value::<false, false>(out)?,
        };
        if let Some(slot) = slot {
            match value {
                Value::Str(literal) => found[slot] = Some(literal),
                Value::Scalar => return None,
            }
        }
        s.whitespace();
        match s.bump()? {
            b',' => s.whitespace(),
            b'}' => break,
            _ => return None,
        }
    }
    s.whitespace();
    if s.at != text.len() || (s.non_ascii && std::str::from_utf8(text).is_err()) {
        return None;
    }
    Some(found)
}

/// A command the fast path recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScannedCommand<'a> {
    Subscribe(Literal<'a>),
    Unsubscribe(Literal<'a>),
    Message {
        identifier: Literal<'a>,
        /// The decoded `data`.
        data: String,
    },
}

/// The commonest commands, recognised without decoding (but for a message's
/// `data`, decoded as it is scanned); `None` sends the frame down the full
/// path ([`crate::command::parse`]).
pub(crate) fn command(frame: &[u8]) -> Option<ScannedCommand<'_>> {
    if let Some(command) = client_layout(frame) {
        return Some(command);
    }
    let mut data = Vec::new();
    let [command, identifier, literal] = flat_object(
        frame,
        ["command", "identifier", "data"],
        Some(1),
        Some(2),
        &mut data,
    )?;
    let identifier = identifier?;
    match command?.quoted() {
        br#""subscribe""# => Some(ScannedCommand::Subscribe(identifier)),
        br#""unsubscribe""# => Some(ScannedCommand::Unsubscribe(identifier)),
        br#""message""# => {
            literal?;
            // UTF-8 with escapes replaced by whole characters.
            let data = String::from_utf8(data).ok()?;
            Some(ScannedCommand::Message { identifier, data })
        }
        _ => None,
    }
}

/// The layout `@rails/actioncable` writes (`JSON.stringify` of
/// `{command, identifier[, data]}`: that key order, no whitespace), read
/// with no more than its two or three strings scanned.
fn client_layout(frame: &[u8]) -> Option<ScannedCommand<'_>> {
    const SUBSCRIBE: &[u8] = br#"{"command":"subscribe","identifier":"#;
    const UNSUBSCRIBE: &[u8] = br#"{"command":"unsubscribe","identifier":"#;
    const MESSAGE: &[u8] = br#"{"command":"message","identifier":"#;
    const DATA: &[u8] = br#","data":"#;
    let start = [SUBSCRIBE, UNSUBSCRIBE, MESSAGE]
        .into_iter()
        .find(|prefix| frame.starts_with(prefix))?;
    let mut s = Scanner {
        text: frame,
        at: start.len(),
        non_ascii: false,
    };
    let mut data = Vec::new();
    let identifier = s.string::<true, false>(&mut data)?;
    let message = start == MESSAGE;
    if message {
        if !frame.get(s.at..)?.starts_with(DATA) {
            return None;
        }
        s.at += DATA.len();
        s.string::<false, true>(&mut data)?;
    }
    if frame.get(s.at..)? != b"}" || (s.non_ascii && std::str::from_utf8(frame).is_err()) {
        return None;
    }
    Some(if message {
        // UTF-8 with escapes replaced by whole characters.
        let data = String::from_utf8(data).ok()?;
        ScannedCommand::Message { identifier, data }
    } else if start == SUBSCRIBE {
        ScannedCommand::Subscribe(identifier)
    } else {
        ScannedCommand::Unsubscribe(identifier)
    })
}

/// The `action` of a message's (decoded) data as
/// [`crate::command::data_action`] finds it, when the fast path is sure:
/// `Some(None)` for no action (dispatched to `receive`).
pub(crate) fn action(data: &str) -> Option<Option<Cow<'_, str>>> {
    let [action] = flat_object(data.as_bytes(), ["action"], None, None, &mut Vec::new())?;
    Some(action.map(|a| a.decode()).filter(|a| !a.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{data_action, parse, Command};

    fn quoted(frame: &str) -> Option<[Option<&str>; 2]> {
        let found = flat_object(frame.as_bytes(), ["a", "b"], None, None, &mut Vec::new())?;
        Some(found.map(|l| l.map(|l| std::str::from_utf8(l.quoted()).unwrap())))
    }

    #[test]
    fn finds_the_literals_of_the_keys() {
        assert_eq!(
            quoted(r#" { "a" : "x\"y" , "c":-1.5e+3,"d":true,"e":null,"b":"z" } "#),
            Some([Some(r#""x\"y""#), Some(r#""z""#)])
        );
        assert_eq!(quoted(r#"{"a":"1","a":"2"}"#), Some([Some(r#""2""#), None]));
        assert_eq!(quoted(r#"{"c":0}"#), Some([None, None]));
        assert_eq!(
            quoted(r#"{"a":"café ☕ \u2028"}"#),
            Some([Some(r#""café ☕ \u2028""#), None])
        );
    }

    #[test]
    fn says_none_when_unsure() {
        for frame in [
            "",
            "{}",
            "[1]",
            r#"{"a":1}"#,
            r#"{"a":{}}"#,
            r#"{"c":[1]}"#,
            r#"{"c":01}"#,
            r#"{"c":1.}"#,
            r#"{"c":tru}"#,
            r#"{"\u0061":"x"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":"x"} x"#,
            r#"{"a":"x",}"#,
            r#"{"a":"x""#,
        ] {
            assert_eq!(quoted(frame), None, "{frame}");
        }
        // Not UTF-8, in a string of no interest.
        let mut frame = br#"{"c":"0123456789"}"#.to_vec();
        frame[8] = 0xff;
        assert!(flat_object(&frame, ["a"], None, None, &mut Vec::new()).is_none());
    }

    #[test]
    fn decodes_and_knows_the_rails_form() {
        let text = r#"{"a":"{\"c\":\"\\ \u00e9\/\n\"}","b":"<&>"}"#;
        let mut out = Vec::new();
        let [Some(a), Some(b)] =
            flat_object(text.as_bytes(), ["a", "b"], Some(1), Some(0), &mut out).unwrap()
        else {
            panic!("both found")
        };
        assert_eq!(a.decode(), "{\"c\":\"\\ é/\n\"}");
        assert_eq!(out, a.decode().as_bytes());
        assert!(!a.is_rails_form() && !b.is_rails_form());
        let text = r#"{"c":"{\"k\":\"\\\\ é\"}"}"#;
        let [Some(c)] = flat_object(text.as_bytes(), ["c"], Some(0), None, &mut out).unwrap()
        else {
            panic!("found")
        };
        assert!(c.is_rails_form());
        let mut rails = Vec::new();
        crate::json::write_rails_string(&mut rails, &c.decode());
        assert_eq!(rails, c.quoted());
    }

    /// Whatever the fast path recognises, the full parser reads the same.
    fn agrees(frame: &[u8]) -> bool {
        let Some(fast) = command(frame) else {
            return true;
        };
        let Ok(full) = parse(frame) else {
            return false;
        };
        match (fast, full) {
            (ScannedCommand::Subscribe(i), Command::Subscribe { identifier })
            | (ScannedCommand::Unsubscribe(i), Command::Unsubscribe { identifier }) => {
                i.decode() == identifier && rails_form_is_right(&i)
            }
            (
                ScannedCommand::Message {
                    identifier: i,
                    data: d,
                },
                Command::Message { identifier, data },
            ) => i.decode() == identifier && d == data && rails_form_is_right(&i),
            _ => false,
        }
    }

    fn rails_form_is_right(literal: &Literal<'_>) -> bool {
        let mut rails = Vec::new();
        crate::json::write_rails_string(&mut rails, &literal.decode());
        !literal.is_rails_form() || rails == literal.quoted()
    }

    #[test]
    fn commands_agree_with_the_full_parser() {
        for frame in [
            r#"{"command":"subscribe","identifier":"{\"channel\":\"C\"}"}"#,
            r#"{"identifier":"x","command":"unsubscribe","n":1}"#,
            r#"{"command":"message","identifier":"i","data":"{\"action\":\"go\"}"}"#,
            r#"{"command":"message","identifier":"i","data":"{\"t\":\"\u00e9\\n\"}"}"#,
        ] {
            assert!(command(frame.as_bytes()).is_some(), "{frame}");
            assert!(agrees(frame.as_bytes()), "{frame}");
        }
        for frame in [
            r#"{"command":"subscribe"}"#,
            r#"{"command":"message","identifier":"i"}"#,
            r#"{"command":"Subscribe","identifier":"i"}"#,
            r#"{"command":"subscribe","identifier":null}"#,
        ] {
            assert_eq!(command(frame.as_bytes()), None, "{frame}");
        }
    }

    #[test]
    fn actions_agree_with_the_full_path() {
        for data in [
            r#"{"text":"hi","action":"speak"}"#,
            r#"{"text":"hi"}"#,
            r#"{"action":""}"#,
            r#"{"action":"sp\u0065ak"}"#,
        ] {
            assert_eq!(action(data), Some(data_action(data).unwrap()), "{data}");
        }
        assert_eq!(action(r#"{"action":null}"#), None);
        assert_eq!(action(r#"{"action":5}"#), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Strings made of the characters that matter to the scanner.
        fn text() -> impl Strategy<Value = String> {
            proptest::string::string_regex(r#"[a-z"\\/<>&é\u{2028}\u{1}\u{7f} ]{0,12}"#)
                .expect("a valid regex")
        }

        fn literal(s: &str) -> String {
            serde_json::to_string(s).unwrap()
        }

        proptest! {
            #[test]
            fn fast_path_agrees_with_the_full_parser(
                command in prop_oneof!["subscribe", "unsubscribe", "message", "x"],
                identifier in text(),
                data in text(),
                extra in text(),
                escape_u in any::<bool>(),
            ) {
                let mut identifier = literal(&identifier);
                if escape_u {
                    // The JS client escapes nothing but what JSON requires;
                    // other clients may write \u escapes.
                    identifier = identifier.replace('a', "\\u0061").replace('é', "\\u00e9");
                }
                let frame = format!(
                    r#"{{"command":"{command}","identifier":{identifier},"data":{},"x":{}}}"#,
                    literal(&data),
                    literal(&extra),
                );
                prop_assert!(agrees(frame.as_bytes()), "{}", frame);
            }

            #[test]
            fn the_js_clients_frames_take_the_fast_path(
                identifier in text(),
                data in text(),
                which in 0..3u8,
            ) {
                let command = match which {
                    0 => Command::Subscribe { identifier: identifier.into() },
                    1 => Command::Unsubscribe { identifier: identifier.into() },
                    _ => Command::Message { identifier: identifier.into(), data: data.into() },
                };
                let frame = command.encode();
                prop_assert!(client_layout(frame.as_bytes()).is_some(), "{}", frame);
                prop_assert!(agrees(frame.as_bytes()), "{}", frame);
            }

            #[test]
            fn fast_path_agrees_on_any_bytes(frame in proptest::collection::vec(any::<u8>(), 0..64)) {
                prop_assert!(agrees(&frame));
            }

            #[test]
            fn actions_agree_on_flat_objects(value in text(), other in text()) {
                let data = format!(r#"{{"x":{},"action":{}}}"#, literal(&other), literal(&value));
                if let Some(fast) = action(&data) {
                    prop_assert_eq!(Some(fast), data_action(&data).ok());
                }
            }
        }
    }
}
