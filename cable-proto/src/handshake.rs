//! Handshake decisions: origin check and subprotocol negotiation.
//!
//! Both happen before the WebSocket upgrade. A refused request is answered
//! with HTTP 404 "Page not found" and never becomes a connection, as in Rails.

use std::fmt;
use std::sync::Arc;

/// What the core needs to know of an upgrade request.
#[derive(Debug, Clone, Copy, Default)]
pub struct HandshakeRequest<'a> {
    /// The `Host` header.
    pub host: Option<&'a str>,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// Whether the request came over TLS (the scheme of a same-origin check).
    pub secure: bool,
    /// Every `Sec-WebSocket-Protocol` header value, in order (each may hold
    /// several comma-separated protocols).
    pub protocols: &'a [&'a str],
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeRefusal {
    /// The `Origin` is not allowed (Rails logs "Request origin not allowed").
    #[error("request origin not allowed: {origin:?}")]
    OriginNotAllowed {
        /// The refused origin (`None` when the header was missing).
        origin: Option<Box<str>>,
    },
}

impl HandshakeRefusal {
    /// The HTTP status to answer with (Rails: 404).
    pub fn status(&self) -> u16 {
        404
    }

    /// The HTTP body to answer with (Rails: "Page not found", text/plain).
    pub fn body(&self) -> &'static str {
        "Page not found"
    }
}

/// One entry of the origin allow-list.
#[derive(Clone)]
#[non_exhaustive]
pub enum OriginPattern {
    /// This exact origin, e.g. `https://app.example.com`.
    Exact(String),
    /// `scheme://host` with any port or none, e.g. `http://localhost` matches
    /// `http://localhost` and `http://localhost:3000`.
    AnyPort {
        /// `http` or `https`.
        scheme: String,
        /// The host name.
        host: String,
    },
    /// Any origin the predicate accepts (a regular expression, say).
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl OriginPattern {
    /// Parses `text`: `scheme://host:*` means [`OriginPattern::AnyPort`],
    /// anything else [`OriginPattern::Exact`].
    pub fn parse(text: &str) -> Self {
        if let Some(prefix) = text.strip_suffix(":*") {
            if let Some((scheme, host)) = prefix.split_once("://") {
                return Self::AnyPort {
                    scheme: scheme.to_owned(),
                    host: host.to_owned(),
                };
            }
        }
        Self::Exact(text.to_owned())
    }

    /// Whether `origin` matches.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == origin,
            Self::AnyPort { scheme, host } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|rest| rest.strip_prefix("://"))
                .and_then(|rest| rest.strip_prefix(host.as_str()))
                .is_some_and(|port| {
                    port.is_empty()
                        || port.strip_prefix(':').is_some_and(|digits| {
                            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                        })
                }),
            Self::Predicate(predicate) => predicate(origin),
        }
    }
}

impl fmt::Debug for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(exact) => f.debug_tuple("Exact").field(exact).finish(),
            Self::AnyPort { scheme, host } => write!(f, "AnyPort({scheme}://{host}:*)"),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// Which origins may connect (Rails' request forgery protection).
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Accept every origin, or none at all (Rails'
    /// `disable_request_forgery_protection`).
    pub allow_any: bool,
    /// Accept `Origin == "<scheme>://<Host>"` (Rails' `allow_same_origin_as_host`,
    /// on by default).
    pub same_origin_as_host: bool,
    /// Accept origins matching any of these (Rails' `allowed_request_origins`).
    pub allowed: Vec<OriginPattern>,
}

impl Default for OriginPolicy {
    /// Rails' defaults: same origin as the host only.
    fn default() -> Self {
        Self {
            allow_any: false,
            same_origin_as_host: true,
            allowed: Vec::new(),
        }
    }
}

impl OriginPolicy {
    /// A policy that accepts every request.
    pub fn allow_any() -> Self {
        Self {
            allow_any: true,
            ..Self::default()
        }
    }

    /// Whether the request's origin passes, as Rails' `allow_request_origin?`
    /// decides (a missing `Origin` passes only with `allow_any`).
    pub fn allows(&self, request: &HandshakeRequest<'_>) -> bool {
        if self.allow_any {
            return true;
        }
        let Some(origin) = request.origin else {
            return false;
        };
        if self.same_origin_as_host {
            if let Some(host) = request.host {
                let scheme = if request.secure { "https" } else { "http" };
                if origin
                    .strip_prefix(scheme)
                    .and_then(|r| r.strip_prefix("://"))
                    == Some(host)
                {
                    return true;
                }
            }
        }
        self.allowed.iter().any(|pattern| pattern.matches(origin))
    }
}

/// Picks the first protocol the client offered that the server supports, as
/// Rails' websocket-driver does. `None`: answer without a
/// `Sec-WebSocket-Protocol` header (and still accept).
pub fn negotiate_subprotocol<'s>(offered: &[&str], supported: &'s [String]) -> Option<&'s str> {
    offered
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .find_map(|p| supported.iter().find(|s| s.as_str() == p))
        .map(String::as_str)
}

/// The query parameters of a request target (`/cable?token=a&x=1`), decoded
/// as Rack decodes them: `+` is a space, `%XX` a byte, an invalid escape is
/// kept as it is, invalid UTF-8 is replaced.
pub fn query_pairs(path_and_query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// The value of query parameter `name`; the last one wins when it repeats,
/// as in Rack's `request.params`.
///
/// ```
/// use cable_proto::handshake::query_param;
/// assert_eq!(query_param("/cable?token=a%20b+c&x=1", "token").as_deref(), Some("a b c"));
/// assert_eq!(query_param("/cable?token=x&token=y", "token").as_deref(), Some("y"));
/// assert_eq!(query_param("/cable", "token"), None);
/// ```
pub fn query_param(path_and_query: &str, name: &str) -> Option<String> {
    query_pairs(path_and_query)
        .filter(|(k, _)| k == name)
        .last()
        .map(|(_, v)| v)
}

/// An `Authorization` header's value without its `Bearer ` scheme (any
/// case, any run of whitespace), as Rails apps read it with
/// `auth.sub(/\ABearer\s+/i, "")`; any other value is returned whole.
///
/// ```
/// use cable_proto::handshake::bearer_token;
/// assert_eq!(bearer_token("Bearer abc"), "abc");
/// assert_eq!(bearer_token("bearer   abc"), "abc");
/// assert_eq!(bearer_token("Token abc"), "Token abc");
/// ```
pub fn bearer_token(authorization: &str) -> &str {
    match authorization.get(..6) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer") => {
            let rest = &authorization[6..];
            let token = rest.trim_start();
            if token.len() < rest.len() {
                token
            } else {
                authorization
            }
        }
        _ => authorization,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported() -> Vec<String> {
        vec![
            "actioncable-v1-json".to_owned(),
            "actioncable-unsupported".to_owned(),
        ]
    }

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41%42+%e2%80%a8"), "AB \u{2028}");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn client_order_wins() {
        let s = supported();
        assert_eq!(
            negotiate_subprotocol(&["actioncable-v1-json, actioncable-unsupported"], &s),
            Some("actioncable-v1-json")
        );
        assert_eq!(
            negotiate_subprotocol(&["actioncable-unsupported", "actioncable-v1-json"], &s),
            Some("actioncable-unsupported")
        );
        assert_eq!(
            negotiate_subprotocol(&["foo,actioncable-v1-json"], &s),
            Some("actioncable-v1-json")
        );
        assert_eq!(negotiate_subprotocol(&[], &s), None);
        assert_eq!(negotiate_subprotocol(&["graphql-ws"], &s), None);
    }

    #[test]
    fn origins_as_the_reference_app_configures_them() {
        let policy = OriginPolicy {
            allow_any: false,
            same_origin_as_host: true,
            allowed: vec![
                OriginPattern::parse("http://allowed.example"),
                OriginPattern::parse("http://localhost:*"),
            ],
        };
        let req = |origin| HandshakeRequest {
            host: Some("127.0.0.1:28080"),
            origin,
            secure: false,
            protocols: &[],
        };
        assert!(policy.allows(&req(Some("http://127.0.0.1:28080"))));
        assert!(policy.allows(&req(Some("http://allowed.example"))));
        assert!(policy.allows(&req(Some("http://localhost"))));
        assert!(policy.allows(&req(Some("http://localhost:3000"))));
        assert!(!policy.allows(&req(Some("http://localhost:"))));
        assert!(!policy.allows(&req(Some("http://localhost.evil"))));
        assert!(!policy.allows(&req(Some("https://127.0.0.1:28080"))));
        assert!(!policy.allows(&req(Some("http://evil.example"))));
        assert!(!policy.allows(&req(None)));
        assert!(OriginPolicy::allow_any().allows(&req(None)));
        let pred = OriginPattern::Predicate(Arc::new(|o: &str| o.ends_with(".example.org")));
        assert!(pred.matches("https://a.example.org"));
    }
}
