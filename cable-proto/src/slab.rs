//! A generational slab: stable `u32` indices, O(1) insert and remove, and a
//! generation per slot so that stale handles are detected instead of aliasing
//! a newer occupant.
//!
//! Slots live in pages of [`PAGE`] slots. The first page grows by doubling
//! (a small server stays small); every later page is allocated once, full
//! size, and never moves. So a slab of a million connections neither wastes
//! up to half its capacity to doubling nor copies itself whole when it
//! grows: at most one page is partly empty.

/// Slots per page (after the first, which grows up to it).
const PAGE_BITS: u32 = 10;
const PAGE: usize = 1 << PAGE_BITS;
const PAGE_MASK: u32 = (1 << PAGE_BITS) - 1;

/// One slot of a [`Slab`].
#[derive(Debug, Clone)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Pages of slots with a free list.
#[derive(Debug, Clone)]
pub(crate) struct Slab<T> {
    pages: Vec<Vec<Slot<T>>>,
    /// Slots ever allocated (the next fresh index).
    slots: u32,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            pages: Vec::new(),
            slots: 0,
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    fn slot(&self, index: u32) -> Option<&Slot<T>> {
        self.pages
            .get((index >> PAGE_BITS) as usize)?
            .get((index & PAGE_MASK) as usize)
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<T>> {
        self.pages
            .get_mut((index >> PAGE_BITS) as usize)?
            .get_mut((index & PAGE_MASK) as usize)
    }

    /// Inserts a value and returns its `(index, generation)`.
    pub(crate) fn insert(&mut self, value: T) -> (u32, u32) {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slot_mut(index) {
                slot.generation = slot.generation.wrapping_add(1);
                slot.value = Some(value);
                return (index, slot.generation);
            }
        }
        let index = self.slots;
        // More than u32::MAX live entries cannot happen before memory runs out.
        self.slots = self.slots.saturating_add(1);
        let page = (index >> PAGE_BITS) as usize;
        if page == self.pages.len() {
            // The first page starts small and doubles; later ones are whole.
            let capacity = if page == 0 { 4 } else { PAGE };
            self.pages.push(Vec::with_capacity(capacity));
        }
        let slots = &mut self.pages[page];
        if slots.len() == slots.capacity() && page == 0 {
            slots.reserve_exact(slots.capacity().min(PAGE - slots.len()));
        }
        slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        (index, 0)
    }

    /// Removes the value at `index`, if any.
    pub(crate) fn remove(&mut self, index: u32) -> Option<T> {
        let value = self.slot_mut(index)?.value.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(value)
    }

    /// The value at `index`, whatever its generation.
    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        self.slot(index)?.value.as_ref()
    }

    /// The value at `index`, whatever its generation.
    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.slot_mut(index)?.value.as_mut()
    }

    /// The value at `index` if its generation is `generation`.
    pub(crate) fn get_checked(&self, index: u32, generation: u32) -> Option<&T> {
        let slot = self.slot(index)?;
        if slot.generation == generation {
            slot.value.as_ref()
        } else {
            None
        }
    }

    /// The value at `index` if its generation is `generation`.
    pub(crate) fn get_checked_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        let slot = self.slot_mut(index)?;
        if slot.generation == generation {
            slot.value.as_mut()
        } else {
            None
        }
    }

    /// The generation of the slot at `index` (meaningful only while occupied).
    pub(crate) fn generation(&self, index: u32) -> u32 {
        self.slot(index).map_or(0, |s| s.generation)
    }

    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots ever allocated (live or free): the bound of valid indices.
    pub(crate) fn capacity_slots(&self) -> u32 {
        self.slots
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
    fn pages_hold_many_and_never_move() {
        let mut slab = Slab::default();
        let n = 3 * PAGE + 7;
        for i in 0..n {
            assert_eq!(slab.insert(i), (i as u32, 0));
        }
        assert_eq!(slab.pages.len(), 4);
        assert_eq!(slab.pages[0].capacity(), PAGE);
        assert!(slab.pages[1..].iter().all(|p| p.capacity() == PAGE));
        let second_page = slab.pages[1].as_ptr();
        for i in 0..n {
            assert_eq!(slab.get(i as u32), Some(&i));
        }
        assert_eq!(slab.get(n as u32), None);
        assert_eq!(slab.capacity_slots(), n as u32);
        // Freed slots are reused before new ones; pages stay put.
        assert_eq!(slab.remove(PAGE as u32 + 1), Some(PAGE + 1));
        assert_eq!(slab.insert(999_999), (PAGE as u32 + 1, 1));
        assert_eq!(slab.insert(5), (n as u32, 0));
        assert_eq!(slab.pages[1].as_ptr(), second_page);
        assert_eq!(slab.len(), n + 1);
    }
}
