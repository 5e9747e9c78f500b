//! The part of a registered loop that workers can see.

use super::doorbell::Doorbell;
use super::job::JobRef;
use crate::sync::{lock, AtomicBool, AtomicU32, Mutex, Ordering};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;

/// Results waiting for the loop.
// One per loop/pool, and the big variant is the hot one: boxing it would add
// a pointer chase to every push and pop.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Results {
    /// Bounded lock-free MPSC use of an MPMC array queue. Its capacity is the
    /// loop's in-flight limit, so a push can never find it full.
    LockFree(ArrayQueue<JobRef>),
    /// The naive baseline (`condvar` backend).
    Locked(Mutex<VecDeque<JobRef>>),
}

impl Results {
    pub(crate) fn push(&self, job: JobRef) {
        match self {
            Results::LockFree(q) => {
                if let Err(job) = q.push(job) {
                    // Unreachable: pushes are bounded by the loop's slots. Keep
                    // the job rather than leak it, by spinning until there is room.
                    let mut job = job;
                    loop {
                        std::thread::yield_now();
                        match q.push(job) {
                            Ok(()) => break,
                            Err(j) => job = j,
                        }
                    }
                }
            }
            Results::Locked(q) => lock(q).push_back(job),
        }
    }

    pub(crate) fn pop(&self) -> Option<JobRef> {
        match self {
            Results::LockFree(q) => q.pop(),
            Results::Locked(q) => lock(q).pop_front(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Results::LockFree(q) => q.is_empty(),
            Results::Locked(q) => lock(q).is_empty(),
        }
    }
}

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
    /// Results waiting to be drained (unused with `Announce::PerJob` and `pipe`).
    pub(crate) results: Results,
    /// The registration id carried in the loop's `user_data` tags.
    pub(crate) reg: u8,
    /// A duplicate of the loop's ring fd (msg-ring, msg-ring-sync): it keeps
    /// the ring alive and the number unreused while workers may target it.
    pub(crate) ring_fd: Option<OwnedFd>,
    /// The eventfd the loop polls (eventfd backend).
    pub(crate) eventfd: Option<OwnedFd>,
    /// The write end of the loop's result pipe (pipe backend).
    pub(crate) result_pipe: Option<OwnedFd>,
}

impl LoopShared {
    /// `true` when no worker is delivering to this loop.
    pub(crate) fn quiet(&self) -> bool {
        self.senders.load(Ordering::Acquire) == 0
    }
}

// LoopShared is Sync: every field is either immutable after construction
// (fds, reg) or an atomic / lock-protected queue.
const _: () = {
    const fn assert_sync<T: Sync + Send>() {}
    assert_sync::<LoopShared>();
};
