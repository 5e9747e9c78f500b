//! The `offload` futures waiting for a free slot in the loop handle (all
//! `max_in_flight` jobs are out).
//!
//! Each waiting future holds a [`RoomKey`] to its entry: polled again while
//! it waits, it replaces its waker in place instead of adding one (a task
//! in a `select` loop may poll a waiting offload every turn), and dropped,
//! it takes its entry out. So the list holds at most one waker per live
//! waiting future, however often they are polled or recreated.

use std::num::NonZeroU64;
use std::task::Waker;

/// A future's entry in [`RoomWaiters`], valid until the next
/// [`take_all`](RoomWaiters::take_all) (its `round`).
/// (`round` is never zero, so an `Option<RoomKey>` takes 16 bytes, not 24:
/// every `Offload` future carries one.)
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoomKey {
    round: NonZeroU64,
    index: usize,
}

pub(crate) struct RoomWaiters {
    wakers: Vec<Option<Waker>>,
    /// Entries of `wakers` taken out since the last `take_all`.
    free: Vec<usize>,
    /// One more than the `take_all`s so far: a key of an earlier round is
    /// stale.
    round: NonZeroU64,
    /// Entries holding a waker.
    live: usize,
}

impl Default for RoomWaiters {
    fn default() -> RoomWaiters {
        RoomWaiters {
            wakers: Vec::new(),
            free: Vec::new(),
            round: NonZeroU64::MIN,
            live: 0,
        }
    }
}

impl RoomWaiters {
    /// `true` if no future waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Keeps `waker` for the next [`take_all`](Self::take_all): in the
    /// entry `key` names if it is of this round (replaced only if it would
    /// not wake the same task), else in a new entry, whose key goes into
    /// `key`.
    pub(crate) fn register(&mut self, key: &mut Option<RoomKey>, waker: &Waker) {
        if let Some(k) = *key {
            if k.round == self.round {
                let entry = &mut self.wakers[k.index];
                if !entry.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *entry = Some(waker.clone());
                }
                return;
            }
        }
        let index = match self.free.pop() {
            Some(i) => {
                self.wakers[i] = Some(waker.clone());
                i
            }
            None => {
                self.wakers.push(Some(waker.clone()));
                self.wakers.len() - 1
            }
        };
        self.live += 1;
        *key = Some(RoomKey {
            round: self.round,
            index,
        });
    }

    /// Takes out the entry `key` names (a future that stops waiting), if it
    /// is of this round.
    pub(crate) fn remove(&mut self, key: RoomKey) {
        if key.round != self.round {
            return;
        }
        if self.wakers[key.index].take().is_some() {
            self.live -= 1;
            self.free.push(key.index);
        }
    }

    /// Every waker kept, for the caller to wake (outside any borrow of
    /// this list: a waker may run code that registers again). Every key
    /// handed out so far is stale from now on.
    pub(crate) fn take_all(&mut self) -> Vec<Option<Waker>> {
        self.round = self.round.checked_add(1).expect("2^64 rounds");
        self.free.clear();
        self.live = 0;
        std::mem::take(&mut self.wakers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_wakers::Count;

    fn wake_all(room: &mut RoomWaiters) {
        for w in room.take_all().into_iter().flatten() {
            w.wake();
        }
    }

    #[test]
    fn one_entry_per_waiting_future_however_often_it_is_polled() {
        let (a, wa) = Count::waker();
        let (b, wb) = Count::waker();
        let mut room = RoomWaiters::default();
        let (mut ka, mut kb) = (None, None);
        for _ in 0..1000 {
            room.register(&mut ka, &wa);
            room.register(&mut kb, &wb);
        }
        assert_eq!((room.wakers.len(), room.live), (2, 2));
        // A future polled with another waker keeps only the new one.
        room.register(&mut ka, &wb);
        wake_all(&mut room);
        assert_eq!((a.get(), b.get()), (0, 2));
        assert!(room.is_empty());
        // Keys of the last round are stale: a new entry, and removing by
        // the old key touches nothing.
        let old = ka.expect("registered");
        room.register(&mut ka, &wa);
        room.remove(old);
        assert_eq!(room.live, 1);
        wake_all(&mut room);
        assert_eq!(a.get(), 1);
    }

    #[test]
    fn dropped_futures_leave_nothing_behind() {
        let (a, wa) = Count::waker();
        let mut room = RoomWaiters::default();
        // A future recreated and dropped over and over while the pool
        // stays full: the list does not grow.
        for _ in 0..1000 {
            let mut key = None;
            room.register(&mut key, &wa);
            room.remove(key.expect("registered"));
        }
        assert!(room.is_empty());
        assert_eq!(room.wakers.len(), 1);
        wake_all(&mut room);
        assert_eq!(a.get(), 0);
    }
}
