//! Deterministic, seeded hashing for the core's indices.
//!
//! The core may not draw randomness, yet its maps are keyed by strings a peer
//! chooses (identifiers, stream names). A fixed hash would let a peer craft
//! colliding keys; a seed chosen by the host (from the OS, say) and fed to
//! SipHash ahead of every key keeps lookups O(1) while the core itself stays
//! deterministic: the same seed and the same inputs give the same state.

use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasher, Hasher};

/// A [`BuildHasher`] that feeds a host-chosen seed to SipHash before each key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeededState {
    seed: u64,
}

impl SeededState {
    /// A hasher factory for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }
}

impl BuildHasher for SeededState {
    type Hasher = DefaultHasher;

    fn build_hasher(&self) -> DefaultHasher {
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(self.seed);
        hasher
    }
}

/// A hash map with the core's seeded hasher.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, SeededState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_changes_hash_and_is_deterministic() {
        let a = SeededState::new(1).hash_one("chat_lobby");
        let b = SeededState::new(2).hash_one("chat_lobby");
        assert_ne!(a, b);
        assert_eq!(a, SeededState::new(1).hash_one("chat_lobby"));
    }
}
