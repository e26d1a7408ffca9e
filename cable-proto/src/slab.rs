//! A generational slab: stable `u32` indices, O(1) insert and remove, and a
//! generation per slot so that stale handles are detected instead of aliasing
//! a newer occupant.
//!
//! The slots are one vector (one indirection on the fan-out path), grown by
//! an eighth at a time rather than doubled: a slab of a million connections
//! then carries at most an eighth of slack instead of up to a half, and each
//! growth still moves it O(1) times per slot, amortised.

/// One slot of a [`Slab`].
#[derive(Debug, Clone)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A vector of slots with a free list.
#[derive(Debug, Clone)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
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
            let slot = &mut self.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.value = Some(value);
            (index, slot.generation)
        } else {
            // More than u32::MAX live entries cannot happen before memory runs out.
            let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
            if self.slots.len() == self.slots.capacity() {
                let extra = (self.slots.len() / 8).max(16);
                self.slots.reserve_exact(extra);
            }
            self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            });
            (index, 0)
        }
    }

    /// Removes the value at `index`, if any.
    pub(crate) fn remove(&mut self, index: u32) -> Option<T> {
        let slot = self.slots.get_mut(index as usize)?;
        let value = slot.value.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(value)
    }

    /// The value at `index`, whatever its generation.
    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        self.slots.get(index as usize)?.value.as_ref()
    }

    /// The value at `index`, whatever its generation.
    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.slots.get_mut(index as usize)?.value.as_mut()
    }

    /// The value at `index` if its generation is `generation`.
    pub(crate) fn get_checked(&self, index: u32, generation: u32) -> Option<&T> {
        let slot = self.slots.get(index as usize)?;
        if slot.generation == generation {
            slot.value.as_ref()
        } else {
            None
        }
    }

    /// The value at `index` if its generation is `generation`.
    pub(crate) fn get_checked_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        let slot = self.slots.get_mut(index as usize)?;
        if slot.generation == generation {
            slot.value.as_mut()
        } else {
            None
        }
    }

    /// The generation of the slot at `index` (meaningful only while occupied).
    pub(crate) fn generation(&self, index: u32) -> u32 {
        self.slots.get(index as usize).map_or(0, |s| s.generation)
    }

    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots ever allocated (live or free): the bound of valid indices.
    pub(crate) fn capacity_slots(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
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
            let (len, capacity) = (slab.slots.len(), slab.slots.capacity());
            assert!(
                capacity <= len + (len / 8).max(16),
                "{len} slots in {capacity}"
            );
        }
        assert!((0..100_000u32).all(|i| slab.get(i) == Some(&i)));
    }
}
