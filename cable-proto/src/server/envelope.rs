//! How a broadcast is wrapped for a member that joined a stream without an
//! Action Cable subscription.

use bytes::{BufMut, Bytes};

use crate::json::write_rails_string;
use crate::types::StreamMode;

/// How a broadcast's payload becomes a frame for the members of a stream
/// that joined it with [`Server::join`](super::Server::join): the frame is
/// `prefix`, the payload (as given, or as a JSON string in
/// [`StreamMode::RawString`]), then `suffix`.
///
/// Members of one stream with equal envelopes form one group: a broadcast
/// builds their frame once and every one of them gets the same bytes.
///
/// ```
/// use cable_proto::server::Envelope;
/// use cable_proto::StreamMode;
/// // BuddyBoss-style: {"type":"new_message","data":<payload>}
/// let envelope = Envelope::new(r#"{"type":"new_message","data":"#, "}", StreamMode::Json);
/// assert_eq!(&envelope.encode(br#"{"text":"hi"}"#)[..], br#"{"type":"new_message","data":{"text":"hi"}}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Envelope {
    prefix: Bytes,
    suffix: Bytes,
    mode: StreamMode,
}

impl Envelope {
    /// An envelope of `prefix` and `suffix` around the payload.
    pub fn new(prefix: impl Into<Bytes>, suffix: impl Into<Bytes>, mode: StreamMode) -> Self {
        Self {
            prefix: prefix.into(),
            suffix: suffix.into(),
            mode,
        }
    }

    /// The payload as it is: the broadcast is the whole frame.
    pub fn verbatim() -> Self {
        Self::new(Bytes::new(), Bytes::new(), StreamMode::Json)
    }

    /// The text before the payload.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The text after the payload.
    pub fn suffix(&self) -> &[u8] {
        &self.suffix
    }

    /// How the payload is spliced.
    pub fn mode(&self) -> StreamMode {
        self.mode
    }

    /// The frame for `payload`, spliced as given (the mode is applied by the
    /// hub, which encodes a raw payload once for every group).
    pub fn encode(&self, payload: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(self.prefix.len() + payload.len() + self.suffix.len());
        out.put_slice(&self.prefix);
        out.put_slice(payload);
        out.put_slice(&self.suffix);
        Bytes::from(out)
    }

    /// The frame for `text` sent as a JSON string.
    pub fn encode_string(&self, text: &str) -> Bytes {
        let mut literal = Vec::with_capacity(text.len() + 2);
        write_rails_string(&mut literal, text);
        self.encode(&literal)
    }
}
