//! Jac Cloud's tokens, verified as Jac Cloud verifies them: an HS256 JWT
//! signed with the deployment's `TOKEN_SECRET` (`--jac-token-secret`), its
//! `expiration` (Unix seconds) still ahead, and, where the deployment keeps
//! its token store in Redis (`--redis-url`), `"<user id>:<token>"` present in
//! the `token` hash (a logged-out or password-changed user's token is gone
//! from it). Without Redis the real server's store is in its own memory and
//! out of reach: the JWT alone decides.

use std::time::Duration;

use cable_proto::dialect::jac::{Credential, RootId};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

/// The Redis hash of Jac Cloud's token store.
pub const TOKEN_HASH: &str = "token";

#[derive(Debug, Deserialize)]
struct Claims {
    id: String,
    root_id: String,
    expiration: f64,
}

/// The verifier of one deployment's tokens.
pub struct JacTokens {
    key: DecodingKey,
    store: Option<redis::Client>,
    connection: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl std::fmt::Debug for JacTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JacTokens")
            .field("store", &self.store.is_some())
            .finish()
    }
}

impl JacTokens {
    /// Tokens signed with `secret`, checked against the token store in
    /// `store`'s Redis when given; `None` for an empty secret (an HMAC key
    /// cannot be empty).
    pub fn new(secret: &str, store: Option<redis::Client>) -> Option<Self> {
        Some(Self {
            key: DecodingKey::from_secret(secret.as_bytes()).ok()?,
            store,
            connection: Mutex::new(None),
        })
    }

    /// The JWT's user id and root, when it is signed with the secret and
    /// not expired at `unix_now`.
    pub fn decode(&self, token: &str, unix_now: Duration) -> Option<(String, RootId)> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Claims>(token.as_bytes(), &self.key, &validation)
            .ok()?
            .claims;
        if claims.expiration <= unix_now.as_secs_f64() {
            return None;
        }
        Some((claims.id, RootId::from_hex(&claims.root_id)?))
    }

    /// Whether tokens are also looked up in the token store (a decision
    /// that waits for Redis).
    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// The credential `token` stands for, from the JWT alone.
    pub fn verify_now(&self, token: &str, unix_now: Duration) -> Option<Credential> {
        let (_, root) = self.decode(token, unix_now)?;
        Some(Credential {
            root,
            token: token.to_owned(),
        })
    }

    /// The credential `token` stands for (`None`: the socket is public).
    pub async fn verify(&self, token: &str, unix_now: Duration) -> Option<Credential> {
        let (user, root) = self.decode(token, unix_now)?;
        if let Some(client) = &self.store {
            let field = format!("{user}:{token}");
            match self.in_store(client, &field).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    tracing::warn!(%error, "jac: token store unreachable: token refused");
                    return None;
                }
            }
        }
        Some(Credential {
            root,
            token: token.to_owned(),
        })
    }

    async fn in_store(&self, client: &redis::Client, field: &str) -> redis::RedisResult<bool> {
        let mut slot = self.connection.lock().await;
        let mut connection = match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = client.get_multiplexed_async_connection().await?;
                *slot = Some(c.clone());
                c
            }
        };
        drop(slot);
        let found: Option<String> = redis::cmd("HGET")
            .arg(TOKEN_HASH)
            .arg(field)
            .query_async(&mut connection)
            .await
            .inspect_err(|_| {
                if let Ok(mut slot) = self.connection.try_lock() {
                    *slot = None;
                }
            })?;
        Ok(found.is_some_and(|v| v != "false" && v != "null"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn token(secret: &str, expiration: u64) -> String {
        let claims = serde_json::json!({
            "id": "6b028e084b49d9ccc6934a7e",
            "email": "alice@jacref.io",
            "root_id": "6b028e084b49d9ccc6934a7d",
            "is_activated": true,
            "is_admin": false,
            "expiration": expiration,
            "state": "mEWhVmcw",
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn jwt_secret_and_expiration_decide() {
        let tokens = JacTokens::new("s3cret", None).unwrap();
        let now = Duration::from_secs(1_795_329_544);
        let (user, root) = tokens.decode(&token("s3cret", 1_795_372_744), now).unwrap();
        assert_eq!(user, "6b028e084b49d9ccc6934a7e");
        assert_eq!(root.reference(), "n::6b028e084b49d9ccc6934a7d");
        assert!(tokens.decode(&token("other", 1_795_372_744), now).is_none());
        assert!(tokens
            .decode(&token("s3cret", 1_795_329_544), now)
            .is_none());
        assert!(tokens.decode("not-a-valid-token", now).is_none());
    }

    /// A token recorded from the real server (jacref examples), signed with
    /// its secret: it decodes to the recorded root.
    #[test]
    fn a_recorded_token_decodes() {
        let recorded = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjZiMDI4ZTA4NGI0OWQ5Y2NjNjkzNGE3ZSIsImVtYWlsIjoiYWxpY2VAamFjcmVmLmlvIiwicm9vdF9pZCI6IjZiMDI4ZTA4NGI0OWQ5Y2NjNjkzNGE3ZCIsImlzX2FjdGl2YXRlZCI6dHJ1ZSwiaXNfYWRtaW4iOmZhbHNlLCJleHBpcmF0aW9uIjoxNzk1MzcyNzQ0LCJzdGF0ZSI6Im1FV2hWbWN3In0.mS0nJrSJ9eXUah0h3_atrz1XK1OEmJcLRddM1n1kCLo";
        let tokens = JacTokens::new("jacref-fixed-secret-for-transcripts", None).unwrap();
        let (_, root) = tokens
            .decode(recorded, Duration::from_secs(1_795_329_547))
            .unwrap();
        assert_eq!(root.reference(), "n::6b028e084b49d9ccc6934a7d");
    }
}
