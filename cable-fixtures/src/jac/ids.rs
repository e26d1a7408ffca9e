//! Ids compared by shape and consistency: a recorded id stands for one live id throughout a
//! transcript, and the reverse.

use std::collections::HashMap;

use serde_json::Value;

/// The first line of a Python traceback.
const TRACEBACK: &str = "Traceback (most recent call last):\n";

/// A piece of a string: literal text or an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text compared as is.
    Lit(&'a str),
    /// A client id or generated channel id (`<digits>:<32 hex>`).
    Generated(&'a str),
    /// A root's ObjectId (24 hex).
    Object(&'a str),
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn hex_run(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        .count()
}

/// Splits `s` into literal text and ids.
pub fn pieces(s: &str) -> Vec<Piece<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut lit) = (0, 0);
    while i < b.len() {
        if i == 0 || !is_alnum(b[i - 1]) {
            let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            let end = i + digits + 33;
            let generated = digits > 0
                && b.get(i + digits) == Some(&b':')
                && b.len() >= end
                && hex_run(b, i + digits + 1) == 32
                && b.get(end).is_none_or(|c| !is_alnum(*c));
            let object = hex_run(b, i) == 24 && b.get(i + 24).is_none_or(|c| !is_alnum(*c));
            let len = if generated {
                digits + 33
            } else if object {
                24
            } else {
                0
            };
            if len > 0 {
                if lit < i {
                    out.push(Piece::Lit(&s[lit..i]));
                }
                let id = &s[i..i + len];
                out.push(if generated {
                    Piece::Generated(id)
                } else {
                    Piece::Object(id)
                });
                i += len;
                lit = i;
                continue;
            }
        }
        i += 1;
    }
    if lit < b.len() {
        out.push(Piece::Lit(&s[lit..]));
    }
    out
}

/// The recorded-to-live correspondence of ids and tokens.
#[derive(Debug, Default, Clone)]
pub struct IdMap {
    forward: HashMap<String, String>,
    backward: HashMap<String, String>,
    tokens: Vec<(String, String)>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorded token and its live replacement.
    pub fn token(&mut self, recorded: &str, live: &str) {
        self.tokens.push((recorded.to_owned(), live.to_owned()));
    }

    /// Binds `recorded` to `live`; false if either is bound to something else.
    pub fn bind(&mut self, recorded: &str, live: &str) -> bool {
        match (self.forward.get(recorded), self.backward.get(live)) {
            (Some(l), _) if l != live => false,
            (_, Some(r)) if r != recorded => false,
            _ => {
                self.forward.insert(recorded.to_owned(), live.to_owned());
                self.backward.insert(live.to_owned(), recorded.to_owned());
                true
            }
        }
    }

    /// A recorded text with every known token and id replaced by its live one (an unknown id
    /// stands for itself from now on).
    pub fn substitute(&mut self, recorded: &str) -> String {
        let mut text = recorded.to_owned();
        for (r, l) in &self.tokens {
            text = text.replace(r.as_str(), l);
        }
        let mut out = String::with_capacity(text.len());
        for piece in pieces(&text) {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Generated(id) | Piece::Object(id) => {
                    if !self.forward.contains_key(id) {
                        self.bind(id, id);
                    }
                    out.push_str(self.forward.get(id).map_or(id, String::as_str));
                }
            }
        }
        out
    }

    /// Whether live string `live` matches recorded `recorded`: the same text around ids of the
    /// same shapes, each consistent with the map (new ones are bound).
    pub fn strings_match(&mut self, recorded: &str, live: &str) -> bool {
        let (r, l) = (pieces(recorded), pieces(live));
        r.len() == l.len()
            && r.iter().zip(&l).all(|(r, l)| match (r, l) {
                (Piece::Lit(a), Piece::Lit(b)) => a == b,
                (Piece::Generated(a), Piece::Generated(b))
                | (Piece::Object(a), Piece::Object(b)) => self.bind(a, b),
                _ => false,
            })
    }

    /// Compares a live JSON value with the recorded one; the error says where they differ.
    pub fn values_match(&mut self, recorded: &Value, live: &Value, at: &str) -> Result<(), String> {
        let differ = || Err(format!("at {at}: recorded {recorded}, got {live}"));
        match (recorded, live) {
            (Value::String(r), Value::String(l)) => {
                if self.strings_match(r, l) {
                    Ok(())
                } else {
                    differ()
                }
            }
            (Value::Array(r), Value::Array(l)) if is_traceback(r) => {
                if is_traceback(l) && exception_type(r) == exception_type(l) {
                    Ok(())
                } else {
                    differ()
                }
            }
            (Value::Array(r), Value::Array(l)) => {
                if r.len() != l.len() {
                    return differ();
                }
                for (i, (r, l)) in r.iter().zip(l).enumerate() {
                    self.values_match(r, l, &format!("{at}[{i}]"))?;
                }
                Ok(())
            }
            (Value::Object(r), Value::Object(l)) => {
                if !r.keys().eq(l.keys()) {
                    return differ();
                }
                for ((k, r), l) in r.iter().zip(l.values()) {
                    self.values_match(r, l, &format!("{at}.{k}"))?;
                }
                Ok(())
            }
            (r, l) if r == l => Ok(()),
            _ => differ(),
        }
    }
}

fn is_traceback(lines: &[Value]) -> bool {
    lines.first().and_then(Value::as_str) == Some(TRACEBACK) && lines.iter().all(Value::is_string)
}

/// The exception type of a traceback's last line (`ValueError`, `json.decoder.JSONDecodeError`).
fn exception_type(lines: &[Value]) -> Option<&str> {
    let last = lines.last()?.as_str()?;
    Some(last.split(':').next().unwrap_or(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_by_shape_and_consistency() {
        let p = pieces(
            r#"n::6b028e084b49d9ccc6934a7d and 1795329544:c4184da5fc344eff8ae4e0b3b9bf6213!"#,
        );
        assert_eq!(
            p,
            vec![
                Piece::Lit("n::"),
                Piece::Object("6b028e084b49d9ccc6934a7d"),
                Piece::Lit(" and "),
                Piece::Generated("1795329544:c4184da5fc344eff8ae4e0b3b9bf6213"),
                Piece::Lit("!"),
            ]
        );
        let mut map = IdMap::new();
        assert!(map.strings_match(
            "1795329544:c4184da5fc344eff8ae4e0b3b9bf6213",
            "1800000000:00000000000000000000000000000001"
        ));
        // The same recorded id must stay the same live id, and the reverse.
        assert!(!map.strings_match(
            "1795329544:c4184da5fc344eff8ae4e0b3b9bf6213",
            "1800000000:00000000000000000000000000000002"
        ));
        assert!(!map.strings_match(
            "1795329544:d1dea263a528460eb938df3a783d57ed",
            "1800000000:00000000000000000000000000000001"
        ));
        assert!(!map.strings_match("room1", "room2"));
        assert!(!map.strings_match("n::6b028e084b49d9ccc6934a7d", "room2"));
        assert_eq!(
            map.substitute(r#"{"client_ids":["1795329544:c4184da5fc344eff8ae4e0b3b9bf6213"]}"#),
            r#"{"client_ids":["1800000000:00000000000000000000000000000001"]}"#
        );
        let tb = |last: &str| serde_json::json!({"error": [TRACEBACK, "  File x\n", last]});
        assert!(map
            .values_match(
                &tb("ValueError: [garbage] is not a valid reference!\n"),
                &serde_json::json!({"error": [TRACEBACK, "ValueError: other\n"]}),
                "$"
            )
            .is_ok());
        assert!(map
            .values_match(&tb("ValueError: x\n"), &tb("KeyError: 'text'\n"), "$")
            .is_err());
    }
}
