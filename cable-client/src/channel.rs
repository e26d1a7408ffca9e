//! Typed channels: an identifier and how to decode what the channel sends,
//! from cable-channels' vocabularies.

use cable_channels::circle::{CircleIdentifier, CircleMessage};
use cable_channels::{ChannelIdentifier, DecodeError};

/// A channel a [`TypedSubscription`](crate::TypedSubscription) is made for.
pub trait Channel: Send + 'static {
    /// What the channel sends, decoded.
    type Message: Send + 'static;

    /// The identifier string (`JSON.stringify(params)`).
    fn identifier(&self) -> String;

    /// Decodes one `message` value's JSON text.
    fn decode(&self, message: &str) -> Result<Self::Message, DecodeError>;
}

/// Circle's channels: [`CircleMessage`]s (an event name and its typed data),
/// checked against the events the channel may carry.
impl Channel for CircleIdentifier {
    type Message = CircleMessage;

    fn identifier(&self) -> String {
        ChannelIdentifier::identifier(self)
    }

    fn decode(&self, message: &str) -> Result<CircleMessage, DecodeError> {
        CircleMessage::decode_for(self.kind, message)
    }
}

/// A public stream of AnyCable's `$pubsub` channel (cable-server's default
/// app): `{"channel":"$pubsub","stream_name":S}`, messages as JSON values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubStream(pub String);

impl Channel for PubSubStream {
    type Message = serde_json::Value;

    fn identifier(&self) -> String {
        serde_json::json!({"channel": "$pubsub", "stream_name": self.0}).to_string()
    }

    fn decode(&self, message: &str) -> Result<serde_json::Value, DecodeError> {
        serde_json::from_str(message).map_err(|e| DecodeError::Syntax {
            message: e.to_string(),
        })
    }
}
