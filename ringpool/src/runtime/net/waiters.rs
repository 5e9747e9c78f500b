//! The tasks waiting on one socket's queue (a stream's inbox, a listener's
//! accepted connections, a UDP socket's saved datagrams).
//!
//! Any number of tasks may wait on one socket at once (two reads of one
//! stream, two accepts on one listener), so a change wakes every one of
//! them and each looks again: keeping only the last waker would strand the
//! others, even at the end of the stream.

use std::task::Waker;

/// Wakers kept at most, beyond which a registration first wakes (and
/// forgets) all of them: a task that gave up waiting leaves its waker here
/// until the next wake, and many such tasks must not pile up on an idle
/// socket. The live ones register again when polled.
const MAX_KEPT: usize = 16;

#[derive(Default)]
pub(crate) struct Waiters(Vec<Waker>);

impl Waiters {
    /// Keeps `waker` to be woken by the next [`wake_all`](Self::wake_all)
    /// (once, however often the same task registers).
    pub(crate) fn register(&mut self, waker: &Waker) {
        if self.0.iter().any(|w| w.will_wake(waker)) {
            return;
        }
        if self.0.len() >= MAX_KEPT {
            self.wake_all();
        }
        self.0.push(waker.clone());
    }

    /// Wakes every waiting task.
    pub(crate) fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_wakers::Count;

    #[test]
    fn every_waiter_is_woken_once_and_the_list_stays_bounded() {
        let (a, wa) = Count::waker();
        let (b, wb) = Count::waker();
        let mut w = Waiters::default();
        w.register(&wa);
        w.register(&wb);
        w.register(&wa); // the same task again: kept once
        w.wake_all();
        assert_eq!((a.get(), b.get()), (1, 1));
        w.wake_all(); // nobody registered since: nobody woken
        assert_eq!((a.get(), b.get()), (1, 1));
        // Many tasks that gave up: the list never holds more than MAX_KEPT;
        // the overflow wakes those kept so far (spurious, harmless).
        let gone: Vec<_> = (0..3 * MAX_KEPT).map(|_| Count::waker()).collect();
        for (_, waker) in &gone {
            w.register(waker);
            assert!(w.0.len() <= MAX_KEPT);
        }
        w.wake_all();
        assert!(gone.iter().all(|(g, _)| g.get() == 1));
    }
}
