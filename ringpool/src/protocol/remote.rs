//! Waking a runtime's loop from other threads: a list of what was woken,
//! and the loop's doorbell, so that a loop that is awake is never sent a
//! signal and a loop about to sleep never misses one.
//!
//! * waker (any thread): push onto the list, set `queued`, then
//!   [`Doorbell::should_ring`] (a SeqCst fence, then the word): only the
//!   waker that turns the word from `0` to `1` sends the signal (a ringless
//!   MSG_RING or an eventfd write; the caller's business).
//! * loop, while it runs: [`RemoteWakes::awake`] holds the word at `1`, so
//!   wakers push without a syscall.
//! * loop, before it blocks: [`RemoteWakes::may_sleep`] puts the word back
//!   to `0` (a SeqCst fence after) and reads `queued`. It is a Dekker pair
//!   with the waker's: either the loop sees `queued` and does not block, or
//!   the waker sees `0` and sends the signal, which ends the wait.
//!
//! The word is the same [`Doorbell`] the pool's workers ring (one per
//! runtime here, separate from the pool's), and it keeps the same bound: one
//! signal outstanding per `0 -> 1` turn, so at most one per sleep.

use super::doorbell::Doorbell;
use crate::sync::{lock, AtomicBool, Mutex, Ordering::Acquire, Ordering::Relaxed};

/// What other threads woke, and the doorbell that tells the loop.
pub(crate) struct RemoteWakes<T> {
    doorbell: Doorbell,
    list: Mutex<Vec<T>>,
    /// `list` may be non-empty (a hint the loop reads without the lock).
    queued: AtomicBool,
}

impl<T> RemoteWakes<T> {
    pub(crate) fn new() -> RemoteWakes<T> {
        RemoteWakes {
            doorbell: Doorbell::new(),
            list: Mutex::new(Vec::new()),
            queued: AtomicBool::new(false),
        }
    }

    /// Waker side: queues `t`; `true` if the caller must signal the loop.
    pub(crate) fn push(&self, t: T) -> bool {
        lock(&self.list).push(t);
        // Relaxed: `should_ring`'s SeqCst fence orders it before the read of
        // the word; the list's contents travel under the lock.
        self.queued.store(true, Relaxed);
        self.doorbell.should_ring()
    }

    /// Waker side: the signal could not be sent; let the next push try.
    pub(crate) fn unring(&self) {
        self.doorbell.unring();
    }

    /// Loop side, at the start of a turn: wakers need not signal.
    pub(crate) fn awake(&self) {
        self.doorbell.claim();
    }

    /// Loop side, before blocking: `true` if it may block (nothing is
    /// queued, and any later push signals it).
    pub(crate) fn may_sleep(&self) -> bool {
        self.doorbell.release();
        !self.queued.load(Relaxed)
    }

    /// `true` if something may be queued (no lock, no fence: a hint).
    pub(crate) fn pending(&self) -> bool {
        self.queued.load(Relaxed)
    }

    /// Loop side: hands everything queued to `f`, in push order.
    pub(crate) fn drain(&self, mut f: impl FnMut(T)) {
        if !self.queued.swap(false, Acquire) {
            return;
        }
        let list = std::mem::take(&mut *lock(&self.list));
        for t in list {
            f(t);
        }
    }
}
