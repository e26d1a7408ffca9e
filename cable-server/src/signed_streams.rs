//! Signed streams served without the application, as AnyCable does:
//! `{"channel":"$pubsub","signed_stream_name":…}` and Hotwire's
//! `Turbo::StreamsChannel`, whose names are signed by Rails'
//! `ActiveSupport::MessageVerifier` with Turbo's settings (SHA256 digest,
//! JSON serializer): `"<Base64(JSON(name))>--<hex HMAC-SHA256(secret, Base64 part)>"`.
//! Standard and URL-safe Base64, padded or not, are both accepted.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use cable_proto::Identifier;

use crate::app::PUBSUB_CHANNEL;

/// Turbo's channel.
pub const TURBO_STREAMS_CHANNEL: &str = "Turbo::StreamsChannel";

/// Why a signed stream name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedStreamError {
    /// No `--` between the data and the digest.
    #[error("not a signed message (no `--`)")]
    Malformed,
    /// The digest is not the HMAC of the data under the secret.
    #[error("bad signature")]
    BadSignature,
    /// The data is not Base64 of JSON.
    #[error("the signed data is not Base64-encoded JSON")]
    BadData,
    /// The JSON is not a string.
    #[error("the signed value is not a string")]
    NotAString,
}

/// A Rails `MessageVerifier` (SHA256, JSON) for one secret.
#[derive(Clone)]
pub struct MessageVerifier {
    secret: Vec<u8>,
}

impl std::fmt::Debug for MessageVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageVerifier(..)")
    }
}

impl MessageVerifier {
    /// A verifier for `secret`.
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.as_bytes().to_vec(),
        }
    }

    /// The stream name `signed` carries, if its signature is good.
    pub fn verify(&self, signed: &str) -> Result<String, SignedStreamError> {
        let (data, digest) = signed
            .rsplit_once("--")
            .ok_or(SignedStreamError::Malformed)?;
        let digest = decode_hex(digest).ok_or(SignedStreamError::BadSignature)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .map_err(|_| SignedStreamError::BadSignature)?;
        mac.update(data.as_bytes());
        mac.verify_slice(&digest)
            .map_err(|_| SignedStreamError::BadSignature)?;
        let json = decode_base64(data).ok_or(SignedStreamError::BadData)?;
        let value: serde_json::Value =
            serde_json::from_slice(&json).map_err(|_| SignedStreamError::BadData)?;
        match value {
            serde_json::Value::String(name) => Ok(name),
            _ => Err(SignedStreamError::NotAString),
        }
    }

    /// Signs `name` as Rails does (for tests and tools).
    pub fn generate(&self, name: &str) -> String {
        let json = serde_json::to_string(name).unwrap_or_default();
        let data = base64::engine::general_purpose::STANDARD.encode(json);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(data.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{data}--{hex}")
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let unpadded = text.trim_end_matches('=');
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded))
        .ok()
}

/// The secrets of signed `$pubsub` streams and Turbo streams.
#[derive(Debug, Clone, Default)]
pub struct SignedStreams {
    /// `--streams-secret`: `$pubsub` `signed_stream_name`s (and Turbo's
    /// when it has no secret of its own).
    pub streams: Option<MessageVerifier>,
    /// `--turbo-streams-secret`: `Turbo::StreamsChannel`.
    pub turbo: Option<MessageVerifier>,
}

/// What an identifier asks of the server's own streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    /// Not a stream the server serves itself.
    NotOurs,
    /// A public stream (`stream_name`): whisper and presence allowed.
    Public(String),
    /// A verified signed stream.
    Signed(String),
    /// Refused (a bad signature, no secret, a missing name).
    Refused,
}

impl SignedStreams {
    /// What `identifier` asks for.
    pub fn resolve(&self, identifier: &Identifier) -> StreamRequest {
        let signed = identifier
            .param("signed_stream_name")
            .and_then(|v| v.as_str());
        let verifier = match identifier.channel() {
            PUBSUB_CHANNEL => {
                if let Some(name) = identifier.param("stream_name").and_then(|v| v.as_str()) {
                    return if name.is_empty() {
                        StreamRequest::Refused
                    } else {
                        StreamRequest::Public(name.to_owned())
                    };
                }
                self.streams.as_ref()
            }
            TURBO_STREAMS_CHANNEL => match self.turbo.as_ref().or(self.streams.as_ref()) {
                Some(verifier) => Some(verifier),
                None => return StreamRequest::NotOurs,
            },
            _ => return StreamRequest::NotOurs,
        };
        let (Some(verifier), Some(signed)) = (verifier, signed) else {
            return StreamRequest::Refused;
        };
        match verifier.verify(signed) {
            Ok(name) if !name.is_empty() => StreamRequest::Signed(name),
            Ok(_) => StreamRequest::Refused,
            Err(error) => {
                tracing::info!(%error, channel = identifier.channel(), "signed stream refused");
                StreamRequest::Refused
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated by Ruby's ActiveSupport 6.1 `MessageVerifier.new("s3cret",
    /// digest: "SHA256", serializer: JSON).generate("chat/1")`.
    const RAILS_SIGNED: &str =
        "ImNoYXQvMSI=--7e59ca06d6e53f272b50bc22ab3f3f4dbe2202f59c26ba92a1c6921ccf3ba591";

    #[test]
    fn verifies_what_rails_signs() {
        let verifier = MessageVerifier::new("s3cret");
        assert_eq!(verifier.verify(RAILS_SIGNED).unwrap(), "chat/1");
        assert_eq!(verifier.generate("chat/1"), RAILS_SIGNED);
        assert_eq!(
            MessageVerifier::new("other").verify(RAILS_SIGNED),
            Err(SignedStreamError::BadSignature)
        );
        let tampered = RAILS_SIGNED.replace("ImNoYXQvMSI", "ImNoYXQvMiI");
        assert_eq!(
            verifier.verify(&tampered),
            Err(SignedStreamError::BadSignature)
        );
        assert_eq!(
            verifier.verify("no-separator"),
            Err(SignedStreamError::Malformed)
        );
    }
}
