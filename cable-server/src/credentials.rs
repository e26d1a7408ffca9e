//! Connection credentials, shared by every app: static tokens (`--token`)
//! and HS256 JWTs (`--jwt-secret`), presented as `Authorization: Bearer` or
//! `?token=`.
//!
//! A JWT's `sub` is the connection's identity and its `exp`, when present,
//! is honoured twice: at the handshake (an expired token is refused) and on
//! the live connection, as a core deadline at the instant of `exp` (no
//! leeway): the connection then gets
//! `{"type":"disconnect","reason":"token_expired","reconnect":false}` and a
//! close, as AnyCable does.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cable_proto::server::ConnectionAccept;
use cable_proto::Identity;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::app::RequestInfo;

/// Why a credential was refused. The client is told only `unauthorized`;
/// the log says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No token in the request.
    #[error("no token (Authorization: Bearer or ?token=)")]
    Missing,
    /// A token that is neither a listed static token nor a JWT.
    #[error("unknown token")]
    UnknownToken,
    /// A JWT that does not decode (not three parts, not base64, not JSON).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A JWT signed with another secret or algorithm.
    #[error("token signature does not verify")]
    BadSignature,
    /// A JWT whose `exp` has passed.
    #[error("token expired")]
    Expired,
    /// A JWT without a usable `sub` (a string or a number).
    #[error("token has no subject")]
    NoSubject,
}

/// `--jwt-secret ""`: an HMAC key cannot be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret is empty")]
pub struct EmptySecret;

/// What a verified credential gives a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The identity: the static token itself, or the JWT's `sub`.
    pub identity: Identity,
    /// When the credential expires, as Unix time (a JWT's `exp`).
    pub expires_at_unix: Option<u64>,
}

impl Verified {
    /// The accept for this credential, its expiry turned into the core's
    /// clock: `now` and `unix_now` read together.
    pub fn accept(&self, now: Instant, unix_now: Duration) -> ConnectionAccept {
        let accept = ConnectionAccept::new(self.identity.clone());
        match self.expires_at_unix {
            Some(exp) => {
                let left = Duration::from_secs(exp).saturating_sub(unix_now);
                accept.expires_at(now + left)
            }
            None => accept,
        }
    }
}

/// The claims of the JWTs cable-server reads and mints.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

/// The credentials a deployment accepts.
#[derive(Clone, Default)]
pub struct Credentials {
    tokens: Vec<String>,
    jwt: Option<(DecodingKey, EncodingKey)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tokens", &self.tokens.len())
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

impl Credentials {
    /// Static tokens and, with `jwt_secret`, HS256 JWTs signed with it.
    pub fn new(tokens: Vec<String>, jwt_secret: Option<&str>) -> Result<Self, EmptySecret> {
        let jwt = match jwt_secret {
            None => None,
            Some(secret) => {
                let decoding = DecodingKey::from_secret(secret.as_bytes());
                let encoding = EncodingKey::from_secret(secret.as_bytes());
                match (decoding, encoding) {
                    (Ok(decoding), Ok(encoding)) => Some((decoding, encoding)),
                    _ => return Err(EmptySecret),
                }
            }
        };
        Ok(Self { tokens, jwt })
    }

    /// Whether nothing is configured (an open server: any connection).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.jwt.is_none()
    }

    /// Verifies the request's token at `unix_now`.
    pub fn verify(
        &self,
        request: &RequestInfo,
        unix_now: Duration,
    ) -> Result<Verified, CredentialError> {
        let token = request.token().ok_or(CredentialError::Missing)?;
        self.verify_token(&token, unix_now)
    }

    /// Verifies one token (a static `--token`, or a JWT signed with
    /// `--jwt-secret`) at `unix_now`: the check of a dialect's per-message
    /// token (BuddyBoss' `send_message`).
    pub fn verify_token(
        &self,
        token: &str,
        unix_now: Duration,
    ) -> Result<Verified, CredentialError> {
        let token = token.to_owned();
        if self.tokens.contains(&token) {
            return Ok(Verified {
                identity: Identity::new(token),
                expires_at_unix: None,
            });
        }
        let Some((key, _)) = &self.jwt else {
            return Err(CredentialError::UnknownToken);
        };
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked here, at our clock and without leeway; it is
        // optional (a token without one never expires).
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token.as_bytes(), key, &validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                match error.kind() {
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        CredentialError::BadSignature
                    }
                    _ if self.tokens.is_empty() || token.contains('.') => {
                        CredentialError::Malformed(error.to_string())
                    }
                    _ => CredentialError::UnknownToken,
                }
            })?
            .claims;
        if let Some(exp) = claims.exp {
            if Duration::from_secs(exp) <= unix_now {
                return Err(CredentialError::Expired);
            }
        }
        let identity = match claims.sub {
            Some(serde_json::Value::String(sub)) if !sub.is_empty() => sub,
            Some(serde_json::Value::Number(sub)) => sub.to_string(),
            _ => return Err(CredentialError::NoSubject),
        };
        Ok(Verified {
            identity: Identity::new(identity),
            expires_at_unix: claims.exp,
        })
    }

    /// Mints a JWT for `subject` expiring `ttl` after `unix_now` (for
    /// tests and for `--mint-token`); `None` without a JWT secret.
    pub fn mint(&self, subject: &str, unix_now: Duration, ttl: Duration) -> Option<String> {
        let (_, key) = self.jwt.as_ref()?;
        let claims = Claims {
            sub: Some(serde_json::Value::String(subject.to_owned())),
            exp: Some((unix_now + ttl).as_secs()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).ok()
    }
}

/// The time since the Unix epoch, from the host's clock.
pub(crate) fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> RequestInfo {
        RequestInfo {
            path_and_query: "/cable".to_owned(),
            headers: vec![("authorization".to_owned(), format!("Bearer {token}"))],
            remote_addr: None,
        }
    }

    const NOW: Duration = Duration::from_secs(1_800_000_000);

    #[test]
    fn jwts_are_verified_with_their_expiry() {
        let credentials = Credentials::new(vec![], Some("s3cret")).unwrap();
        let token = credentials
            .mint("42", NOW, Duration::from_secs(3600))
            .unwrap();
        let verified = credentials.verify(&bearer(&token), NOW).unwrap();
        assert_eq!(verified.identity.as_str(), "42");
        assert_eq!(verified.expires_at_unix, Some(1_800_003_600));
        // At the instant of exp it is expired; a second before it is not.
        let at_exp = NOW + Duration::from_secs(3600);
        assert_eq!(
            credentials.verify(&bearer(&token), at_exp),
            Err(CredentialError::Expired)
        );
        assert!(credentials
            .verify(&bearer(&token), at_exp - Duration::from_secs(1))
            .is_ok());
        // The live deadline is the instant of exp on the core's clock.
        let now = Instant::now();
        let accept = verified.accept(now, NOW + Duration::from_millis(500));
        let _ = accept; // the instant is checked end to end (tests/circle.rs)
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert_eq!(Credentials::new(vec![], Some("")).err(), Some(EmptySecret));
    }

    #[test]
    fn wrong_secret_malformed_missing_and_static_tokens() {
        let ours = Credentials::new(vec!["static-1".to_owned()], Some("s3cret")).unwrap();
        let theirs = Credentials::new(vec![], Some("other")).unwrap();
        let foreign = theirs.mint("42", NOW, Duration::from_secs(60)).unwrap();
        assert_eq!(
            ours.verify(&bearer(&foreign), NOW),
            Err(CredentialError::BadSignature)
        );
        assert!(matches!(
            ours.verify(&bearer("a.b.c"), NOW),
            Err(CredentialError::Malformed(_))
        ));
        assert_eq!(
            ours.verify(&bearer("nope"), NOW),
            Err(CredentialError::UnknownToken)
        );
        assert_eq!(
            ours.verify(&RequestInfo::default(), NOW),
            Err(CredentialError::Missing)
        );
        let verified = ours.verify(&bearer("static-1"), NOW).unwrap();
        assert_eq!(verified.identity.as_str(), "static-1");
        assert_eq!(verified.expires_at_unix, None);
    }
}
