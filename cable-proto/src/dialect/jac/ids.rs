//! Jac Cloud's ids: root references (`n:<name>:<24 hex>`) and the shapes
//! of client and channel ids.

/// The ObjectId of the public root, shared by every anonymous socket.
pub const PUBLIC_ROOT: &str = "000000000000000000000001";

/// A root's ObjectId (24 lower-case hex digits): a Jac user's identity in
/// the hub. Users are matched by ObjectId only (the name segment of a
/// reference does not count).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RootId(String);

impl RootId {
    /// The public root.
    pub fn public() -> Self {
        Self(PUBLIC_ROOT.to_owned())
    }

    /// A root from its ObjectId (24 hex digits, any case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(hex.to_ascii_lowercase()))
    }

    /// A root from a reference id `n:<name>:<hex>`; the error is the real
    /// server's exception line.
    pub fn parse_ref(reference: &str) -> Result<Self, String> {
        let invalid = || format!("ValueError: [{reference}] is not a valid reference!");
        let mut parts = reference.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("n"), Some(_), Some(hex)) => Self::from_hex(hex).ok_or_else(invalid),
            _ => Err(invalid()),
        }
    }

    /// The ObjectId (the hub identity).
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// Whether this is the public root.
    pub fn is_public(&self) -> bool {
        self.0 == PUBLIC_ROOT
    }

    /// The reference id the real server shows: `n::<hex>`.
    pub fn reference(&self) -> String {
        format!("n::{}", self.0)
    }
}

/// Whether `id` has the shape of the real server's client ids and random
/// channel ids: `<unix seconds>:<32 hex>`.
pub fn is_generated_id(id: &str) -> bool {
    match id.split_once(':') {
        Some((secs, hex)) => {
            !secs.is_empty()
                && secs.bytes().all(|b| b.is_ascii_digit())
                && hex.len() == 32
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        None => false,
    }
}

/// A generated id from the host's clock and 16 random bytes.
pub fn generated_id(unix_seconds: u64, random: [u8; 16]) -> String {
    let mut out = format!("{unix_seconds}:");
    for b in random {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The token in a credential string: the text after the first space, or
/// all of it (`"Bearer x"` and `"x"` alike).
pub fn token_of(credential: &str) -> &str {
    credential
        .split_once(' ')
        .map_or(credential, |(_, token)| token)
}

/// The credential a socket opens with: `?auth=` when given and not empty,
/// else an `Authorization` header starting with `bearer` (any case).
pub fn credential<'a>(auth_query: Option<&'a str>, header: Option<&'a str>) -> Option<&'a str> {
    match auth_query.filter(|a| !a.is_empty()) {
        Some(auth) => Some(auth),
        None => header.filter(|h| h.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("bearer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_shapes() {
        let r = RootId::parse_ref("n::6B028E084B49D9CCC6934A7F").unwrap();
        assert_eq!(r.reference(), "n::6b028e084b49d9ccc6934a7f");
        assert_eq!(
            RootId::parse_ref("n:Root:6b028e084b49d9ccc6934a7f").unwrap(),
            r
        );
        assert_eq!(
            RootId::parse_ref("garbage").unwrap_err(),
            "ValueError: [garbage] is not a valid reference!"
        );
        assert!(RootId::public().is_public());
        assert!(is_generated_id(
            "1795329544:c4184da5fc344eff8ae4e0b3b9bf6213"
        ));
        assert!(!is_generated_id("room1"));
        assert!(is_generated_id(&generated_id(17, [0xab; 16])));
        assert_eq!(token_of("Bearer abc"), "abc");
        assert_eq!(token_of("abc"), "abc");
        assert_eq!(credential(Some("x"), Some("Bearer y")), Some("x"));
        assert_eq!(credential(Some(""), Some("bearer y")), Some("bearer y"));
        assert_eq!(credential(None, Some("Token y")), None);
    }
}
