//! The two lists of slot numbers the in-flight table keeps: the free slots
//! (a stack) and the finished queue jobs (a FIFO). Each holds at most one
//! entry per slot, so both are made once at their full size and never grow:
//! a push is a store and an increment, with no capacity check or growth
//! path on the job path. A push beyond the size (a slot listed twice: a
//! bug) panics on the bounds check instead of corrupting anything.

/// A stack of slot numbers with room for `capacity` of them.
pub(crate) struct SlotStack {
    slots: Box<[u32]>,
    len: usize,
}

impl SlotStack {
    /// The slots `0..capacity`, to be popped in increasing order.
    pub(crate) fn full(capacity: usize) -> SlotStack {
        let slots: Box<[u32]> = (0..capacity as u32).rev().collect();
        SlotStack {
            len: slots.len(),
            slots,
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn push(&mut self, slot: u32) {
        self.slots[self.len] = slot;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<u32> {
        self.len = self.len.checked_sub(1)?;
        Some(self.slots[self.len])
    }
}

/// A FIFO of slot numbers with room for `capacity` of them.
pub(crate) struct SlotQueue {
    /// A power-of-two length, at least `capacity`.
    slots: Box<[u32]>,
    head: usize,
    len: usize,
}

impl SlotQueue {
    pub(crate) fn with_capacity(capacity: usize) -> SlotQueue {
        SlotQueue {
            slots: vec![0; capacity.max(1).next_power_of_two()].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn push_back(&mut self, slot: u32) {
        assert!(self.len < self.slots.len(), "a slot queued twice");
        let mask = self.slots.len() - 1;
        self.slots[(self.head + self.len) & mask] = slot;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let slot = self.slots[self.head];
        self.head = (self.head + 1) & (self.slots.len() - 1);
        self.len -= 1;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_pops_in_order_then_last_in_first_out() {
        let mut s = SlotStack::full(3);
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), Some(1));
        s.push(0);
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), Some(2));
        assert!(s.is_empty());
        assert_eq!(s.pop(), None);
    }

    #[test]
    #[should_panic]
    fn stack_refuses_more_than_its_slots() {
        let mut s = SlotStack::full(1);
        s.push(0);
    }

    #[test]
    fn queue_is_fifo_across_its_wrap() {
        let mut q = SlotQueue::with_capacity(3); // room for 4
        for round in 0..10u32 {
            for i in 0..3 {
                q.push_back(round * 3 + i);
            }
            assert_eq!(q.len(), 3);
            for i in 0..3 {
                assert_eq!(q.pop_front(), Some(round * 3 + i));
            }
            assert!(q.is_empty());
        }
        assert_eq!(q.pop_front(), None);
    }

    #[test]
    #[should_panic(expected = "a slot queued twice")]
    fn queue_refuses_more_than_its_room() {
        let mut q = SlotQueue::with_capacity(1);
        q.push_back(0);
        q.push_back(0);
    }
}
