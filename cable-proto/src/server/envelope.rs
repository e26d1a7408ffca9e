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
    typed_verbatim: bool,
}

impl Envelope {
    /// An envelope of `prefix` and `suffix` around the payload.
    pub fn new(prefix: impl Into<Bytes>, suffix: impl Into<Bytes>, mode: StreamMode) -> Self {
        Self {
            prefix: prefix.into(),
            suffix: suffix.into(),
            mode,
            typed_verbatim: false,
        }
    }

    /// An envelope of a dialect whose frames are JSON objects tagged by
    /// `type` (BuddyBoss): a broadcast whose payload is itself such an
    /// object goes out verbatim, as the dialect's own frame; any other
    /// payload is wrapped in `prefix` and `suffix`. The hub decides once
    /// per broadcast, so the group's frame is still built once.
    pub fn typed_or_wrapped(prefix: impl Into<Bytes>, suffix: impl Into<Bytes>) -> Self {
        Self {
            typed_verbatim: true,
            ..Self::new(prefix, suffix, StreamMode::Json)
        }
    }

    /// Whether a payload that is a JSON object with a `type` member goes
    /// out verbatim ([`typed_or_wrapped`](Self::typed_or_wrapped)).
    pub fn typed_verbatim(&self) -> bool {
        self.typed_verbatim
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

/// Whether `payload` (valid JSON) is an object with a `type` member.
pub(super) fn is_typed_object(payload: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        tag: Option<serde::de::IgnoredAny>,
    }
    payload.trim_start().starts_with('{')
        && serde_json::from_str::<Typed>(payload).is_ok_and(|t| t.tag.is_some())
}
