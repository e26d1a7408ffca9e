//! Structured input from fuzzer bytes: a tiny, dependency-free reader in the
//! spirit of `arbitrary::Unstructured`.
//!
//! Kept free of dependencies on purpose: `cable-proto/tests/fuzz_corpus.rs`
//! compiles this module (and the other cable-proto targets) with `#[path]`,
//! so the committed corpus replays in the root workspace's `cargo test`
//! without the fuzz crate. Modules it includes may use only `std`,
//! `cable_proto`, `serde_json` and `bytes`.
//!
//! Every read is total: past the end of the data, numbers read as zero and
//! byte strings as empty, so any input decodes to some operation sequence.

/// A cursor over the fuzzer's bytes.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (zero past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A boolean (the low bit of a byte).
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number in `0..n` (`0` when `n` is zero); one byte for `n <= 256`,
    /// two otherwise.
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 => 0,
            1..=256 => usize::from(self.byte()) % n,
            _ => usize::from(self.u16()) % n,
        }
    }

    /// One element of `items` (which must not be empty).
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// A byte string of at most `max` bytes, preceded by its one-byte length.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = usize::from(self.byte()).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    /// A byte string of at most `max` bytes, preceded by its two-byte length.
    pub fn long_bytes(&mut self, max: usize) -> &'a [u8] {
        let len = usize::from(self.u16()).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    /// [`bytes`](Self::bytes) as text (invalid UTF-8 replaced).
    pub fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_total() {
        let mut input = Input::new(&[3, b'a', b'b']);
        assert_eq!(input.bytes(10), b"ab");
        assert!(input.is_empty());
        assert_eq!(input.byte(), 0);
        assert_eq!(input.below(7), 0);
        assert_eq!(input.bytes(10), b"");
        assert_eq!(*input.pick(&[1, 2]), 1);
    }
}
