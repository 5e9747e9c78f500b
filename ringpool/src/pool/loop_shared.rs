//! The part of a registered loop that workers can see.

use super::job::Slab;
use crate::handoff::Mailbox;
use crate::protocol::doorbell::Doorbell;
use crate::sync::{AtomicBool, AtomicU32, Ordering};
use crossbeam_utils::CachePadded;
use std::os::fd::OwnedFd;

/// Shared between a `LoopHandle` and the workers running its jobs.
///
/// Lifetime: owned by the handle (in an `Arc`). Workers reach it through
/// `Header::home` only while they hold one of its jobs or are delivering one
/// (`senders > 0`); the handle frees it only after every in-flight job is back
/// and `senders` is zero.
pub(crate) struct LoopShared {
    /// The announcement word (also the futex for the `futex` backend).
    pub(crate) doorbell: CachePadded<Doorbell>,
    /// Workers currently delivering a result to this loop.
    pub(crate) senders: CachePadded<AtomicU32>,
    /// The loop is closing: cancel its queued jobs if the pool says so, and
    /// send no more announcements.
    pub(crate) closing: AtomicBool,
    /// The registration id carried in the loop's `user_data` tags.
    pub(crate) reg: u16,
    /// A duplicate of the loop's ring fd. It keeps the ring alive and its
    /// number unreused while workers may target it (the MSG_RING backends),
    /// and lets a handle dropped without its ring still submit and cancel.
    pub(crate) ring: OwnedFd,
    /// Where results go and how the loop is told: the mechanism's part.
    pub(crate) mailbox: Mailbox,
    /// The loop's job cells, one per slot (`max_in_flight`), allocated once
    /// at `register`; workers reach them through their `JobRef`s.
    pub(crate) cells: Slab,
}

impl LoopShared {
    /// `true` when no worker is delivering to this loop.
    pub(crate) fn quiet(&self) -> bool {
        self.senders.load(Ordering::Acquire) == 0
    }
}

// LoopShared is Sync: every field is either immutable after construction
// (fds, reg), an atomic / lock-protected queue, or the slab (whose cells are
// handed over with release/acquire edges; see `pool::job`).
const _: () = {
    const fn assert_sync<T: Sync + Send>() {}
    assert_sync::<LoopShared>();
};
