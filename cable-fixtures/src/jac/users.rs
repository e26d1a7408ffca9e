//! The users a transcript's tokens name, made on a live deployment: each recorded token
//! (a Jac JWT) is decoded for its `email` and `root_id`; the user is registered (an existing
//! one answers an error, which is fine) and logged in on the deployment's HTTP side, and the
//! fresh token and root take the recorded ones' places.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::ids::IdMap;
use crate::Error;

/// The password of every user the replayer makes.
pub const PASSWORD: &str = "jacref-replay-password";

/// How long one HTTP call may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A recorded token's claims that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedToken {
    /// The JWT.
    pub token: String,
    /// The user's email.
    pub email: String,
    /// The user's root ObjectId.
    pub root: String,
}

/// Every distinct Jac JWT in `text`, decoded.
pub fn recorded_tokens(text: &str) -> Vec<RecordedToken> {
    let mut out: Vec<RecordedToken> = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("eyJ") {
        let start = i + at;
        let end = start
            + b[start..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
                .count();
        i = end.max(start + 3);
        let token = &text[start..end];
        if token.split('.').count() != 3 || out.iter().any(|t| t.token == token) {
            continue;
        }
        let Some(claims) = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        else {
            continue;
        };
        let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        if let (Some(email), Some(root)) = (s("email"), s("root_id")) {
            out.push(RecordedToken {
                token: token.to_owned(),
                email,
                root,
            });
        }
    }
    out
}

/// POSTs JSON to `url`; the status and body.
async fn post(url: &str, body: &Value) -> Result<(u16, Value), Error> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| Error::Usage(format!("{url}: {e}")))?;
    let call = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| Error::Live(format!("{url}: {e}")))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Live(format!("{url}: {e}")))?
            .to_bytes();
        Ok::<_, Error>((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    };
    tokio::time::timeout(HTTP_TIMEOUT, call)
        .await
        .map_err(|_| Error::Live(format!("{url}: no answer within {HTTP_TIMEOUT:?}")))?
}

/// Registers (an existing user answers an error, which is fine) and logs in `email` at the
/// deployment `http`: its token and root ObjectId.
pub async fn login(http: &str, email: &str, password: &str) -> Result<(String, String), Error> {
    let http = http.trim_end_matches('/');
    let body = serde_json::json!({"email": email, "password": password});
    post(&format!("{http}/user/register"), &body).await?;
    let (status, answer) = post(&format!("{http}/user/login"), &body).await?;
    let token = answer.get("token").and_then(Value::as_str);
    let root = answer
        .get("user")
        .and_then(|u| u.get("root_id"))
        .and_then(Value::as_str);
    match (token, root) {
        (Some(token), Some(root)) => Ok((token.to_owned(), root.to_owned())),
        _ => Err(Error::Live(format!(
            "login of {email} answered {status} {answer}"
        ))),
    }
}

/// Registers and logs in every user of `recorded` on the deployment at `http` (e.g.
/// `http://127.0.0.1:8000`), binding each recorded token and root to the live ones.
pub async fn make_users(
    http: &str,
    recorded: &[RecordedToken],
    map: &mut IdMap,
) -> Result<(), Error> {
    for user in recorded {
        let (token, root) = login(http, &user.email, PASSWORD).await?;
        map.token(&user.token, &token);
        if !map.bind(&user.root, &root) {
            return Err(Error::Live(format!(
                "{}: two roots for one user",
                user.email
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_recording() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/transcripts/jac/examples/user_event.jsonl"
        ))
        .unwrap();
        let tokens = recorded_tokens(&text);
        let emails: Vec<_> = tokens.iter().map(|t| t.email.as_str()).collect();
        assert_eq!(emails, ["alice@jacref.io", "bob@jacref.io"]);
        assert_eq!(tokens[0].root, "6b028e084b49d9ccc6934a7d");
    }
}
