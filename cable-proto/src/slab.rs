//! A generational slab: stable `u32` indices, O(1) insert and remove, and a
//! generation per slot so that stale handles are detected instead of aliasing
//! a newer occupant.
//!
//! The values are one vector (one indirection on the fan-out path), grown by
//! an eighth at a time rather than doubled: a slab of a million connections
//! then carries at most an eighth of slack instead of up to a half, and each
//! growth still moves it O(1) times per slot, amortised. The generations are
//! a vector of their own: beside an 8-aligned value a `u32` would take eight
//! bytes, and only the checked lookups read it.

/// A vector of slots with a free list.
#[derive(Debug, Clone)]
pub(crate) struct Slab<T> {
    values: Vec<Option<T>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Inserts a value and returns its `(index, generation)`.
    pub(crate) fn insert(&mut self, value: T) -> (u32, u32) {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let at = index as usize;
            if let (Some(slot), Some(generation)) =
                (self.values.get_mut(at), self.generations.get_mut(at))
            {
                *generation = generation.wrapping_add(1);
                *slot = Some(value);
                return (index, *generation);
            }
            return (index, 0); // cannot happen: free indices are in range
        }
        // More than u32::MAX live entries cannot happen before memory runs out.
        let index = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        if self.values.len() == self.values.capacity() {
            let extra = (self.values.len() / 8).max(16);
            self.values.reserve_exact(extra);
            self.generations.reserve_exact(extra);
        }
        self.values.push(Some(value));
        self.generations.push(0);
        (index, 0)
    }

    /// Removes the value at `index`, if any.
    pub(crate) fn remove(&mut self, index: u32) -> Option<T> {
        let value = self.values.get_mut(index as usize)?.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(value)
    }

    /// The value at `index`, whatever its generation.
    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        self.values.get(index as usize)?.as_ref()
    }

    /// The value at `index`, whatever its generation.
    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.values.get_mut(index as usize)?.as_mut()
    }

    /// The value at `index` if its generation is `generation`.
    pub(crate) fn get_checked(&self, index: u32, generation: u32) -> Option<&T> {
        if self.generation(index) != generation {
            return None;
        }
        self.get(index)
    }

    /// The value at `index` if its generation is `generation`.
    pub(crate) fn get_checked_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        if self.generation(index) != generation {
            return None;
        }
        self.get_mut(index)
    }

    /// The generation of the slot at `index` (meaningful only while occupied).
    pub(crate) fn generation(&self, index: u32) -> u32 {
        self.generations.get(index as usize).copied().unwrap_or(0)
    }

    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots ever allocated (live or free): the bound of valid indices.
    pub(crate) fn capacity_slots(&self) -> u32 {
        u32::try_from(self.values.len()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_bumps_generation() {
        let mut slab = Slab::default();
        let (a, ga) = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let (b, gb) = slab.insert("b");
        assert_eq!(a, b);
        assert_ne!(ga, gb);
        assert!(slab.get_checked(a, ga).is_none());
        assert_eq!(slab.get_checked(b, gb), Some(&"b"));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.remove(a), Some("b"));
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn growth_leaves_at_most_an_eighth_of_slack() {
        let mut slab = Slab::default();
        for i in 0..100_000u32 {
            assert_eq!(slab.insert(i), (i, 0));
            let (len, capacity) = (slab.values.len(), slab.values.capacity());
            assert!(
                capacity <= len + (len / 8).max(16),
                "{len} slots in {capacity}"
            );
        }
        assert!((0..100_000u32).all(|i| slab.get(i) == Some(&i)));
    }
}
