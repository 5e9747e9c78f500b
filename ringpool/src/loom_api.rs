//! The sleep/wake protocols, exposed for the loom model checker only
//! (`RUSTFLAGS="--cfg loom" cargo test --test loom`). Thin public wrappers
//! around the crate-private code in `protocol::park` and `protocol::doorbell`, which
//! is compiled unchanged against loom's atomics (`crate::sync`).

use crate::protocol::{doorbell, park, remote, rings};
use crate::sync::{AtomicBool, AtomicU32};

/// [`park::AWAKE`].
pub const AWAKE: u32 = park::AWAKE;
/// [`park::SLEEPING`].
pub const SLEEPING: u32 = park::SLEEPING;
/// [`park::NOTIFIED`].
pub const NOTIFIED: u32 = park::NOTIFIED;

/// What [`Sleepers::prepare`] decided (mirrors `park::Prepared`).
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// Sleep, looping on [`still_sleeping`] around the wait.
    Sleep,
    /// Do not sleep; `stale_wake` if a waker had already claimed us.
    Abort {
        /// A wake may still arrive for this (aborted) sleep.
        stale_wake: bool,
    },
}

/// The pool-wide sleeper count (`park::Sleepers`).
pub struct Sleepers(park::Sleepers);

impl Sleepers {
    /// A count of zero.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Sleepers {
        Sleepers(park::Sleepers::new())
    }

    /// Worker side: `park::Sleepers::prepare`.
    pub fn prepare(&self, me: &AtomicU32, has_work: impl FnOnce() -> bool) -> Prepared {
        match self.0.prepare(me, has_work) {
            park::Prepared::Sleep => Prepared::Sleep,
            park::Prepared::Abort { stale_wake } => Prepared::Abort { stale_wake },
        }
    }

    /// Waker side: `park::Sleepers::claim`.
    pub fn claim<'a>(
        &self,
        states: impl IntoIterator<Item = &'a AtomicU32>,
        want: usize,
        wake: impl FnMut(usize),
    ) -> usize {
        self.0.claim(states, want, wake)
    }

    /// Waker side: `park::Sleepers::claim_skipping`.
    pub fn claim_skipping<'a>(
        &self,
        states: impl IntoIterator<Item = &'a AtomicU32>,
        want: usize,
        skip: impl Fn(usize) -> bool,
        wake: impl FnMut(usize),
    ) -> usize {
        self.0.claim_skipping(states, want, skip, wake)
    }

    /// `park::Sleepers::count`.
    pub fn count(&self) -> usize {
        self.0.count()
    }
}

/// The queue the worker's wait loop reads (`park::Queue`).
pub use crate::protocol::park::Queue;

/// The worker's real wait loop: `park::next_job`.
pub fn next_job<Q: Queue>(
    queue: &Q,
    sleepers: &Sleepers,
    me: &AtomicU32,
    exit: &AtomicBool,
    spin: impl FnMut() -> bool,
    block: impl FnMut(),
    parked: impl FnMut(),
) -> Option<Q::Job> {
    park::next_job(queue, &sleepers.0, me, exit, spin, block, parked)
}

/// `park::still_sleeping`.
pub fn still_sleeping(me: &AtomicU32) -> bool {
    park::still_sleeping(me)
}

/// `park::wake_up`.
pub fn wake_up(me: &AtomicU32) {
    park::wake_up(me)
}

/// The loop's doorbell word (`doorbell::Doorbell`).
pub struct Doorbell(doorbell::Doorbell);

impl Doorbell {
    /// A doorbell at `0`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Doorbell {
        Doorbell(doorbell::Doorbell::new())
    }

    /// Worker side: `Doorbell::should_ring`.
    pub fn should_ring(&self) -> bool {
        self.0.should_ring()
    }

    /// Worker side: `Doorbell::unring`.
    pub fn unring(&self) {
        self.0.unring()
    }

    /// Loop side: `Doorbell::ack`.
    pub fn ack(&self) {
        self.0.ack()
    }

    /// Loop side: `Doorbell::claim`.
    pub fn claim(&self) -> bool {
        self.0.claim()
    }

    /// Loop side: `Doorbell::release`.
    pub fn release(&self) {
        self.0.release()
    }

    /// The word itself (the futex the `futex` backend's loop waits on).
    pub fn word(&self) -> &AtomicU32 {
        self.0.word()
    }
}

/// A task's scheduled flag (`remote::Scheduled`).
pub struct Scheduled(remote::Scheduled);

impl Scheduled {
    /// Not scheduled.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Scheduled {
        Scheduled(remote::Scheduled::new())
    }

    /// Waker side: `true` if the caller must queue the task.
    pub fn schedule(&self) -> bool {
        self.0.schedule()
    }

    /// Runtime side, before polling the task.
    pub fn unschedule(&self) {
        self.0.unschedule()
    }
}

/// The runtime's remote wake list (`remote::RemoteWakes`).
pub struct RemoteWakes(remote::RemoteWakes<usize>);

impl RemoteWakes {
    /// Empty, loop asleep.
    #[allow(clippy::new_without_default)]
    pub fn new() -> RemoteWakes {
        RemoteWakes(remote::RemoteWakes::new())
    }

    /// Waker side: `true` if the caller must signal the loop.
    pub fn push(&self, task: usize) -> bool {
        self.0.push(task)
    }

    /// Loop side, at the start of a turn.
    pub fn awake(&self) {
        self.0.awake()
    }

    /// Loop side, before blocking: `true` if it may block.
    pub fn may_sleep(&self) -> bool {
        self.0.may_sleep()
    }

    /// Loop side: the queued tasks.
    pub fn drain(&self, f: impl FnMut(usize)) {
        self.0.drain(f)
    }
}

/// A loop's job lane (`rings::Lane`): one producer, many claimers.
pub struct Lane(rings::Lane);

impl Lane {
    /// Empty, with room for at least `capacity` entries.
    pub fn new(capacity: usize) -> Lane {
        Lane(rings::Lane::new(capacity))
    }

    /// Producer side: `Lane::push` (unpublished).
    pub fn push(&self, v: usize) {
        self.0.push(v)
    }

    /// Producer side: `Lane::publish`.
    pub fn publish(&self) {
        self.0.publish()
    }

    /// Claimer side: `Lane::claim`.
    pub fn claim(&self, max: usize, share: usize, take: impl FnMut(usize)) -> usize {
        self.0.claim(max, share, take)
    }

    /// `Lane::is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A loop's result ring (`rings::ResultRing`): many producers, one consumer.
pub struct ResultRing(rings::ResultRing);

impl ResultRing {
    /// Empty, for at most `capacity` outstanding entries.
    pub fn new(capacity: usize) -> ResultRing {
        ResultRing(rings::ResultRing::new(capacity))
    }

    /// Producer side: `ResultRing::push_all`.
    pub fn push_all(&self, vals: &[usize]) {
        self.0.push_all(vals)
    }

    /// Consumer side: `ResultRing::pop`.
    pub fn pop(&self) -> Option<usize> {
        self.0.pop()
    }

    /// Consumer side: `ResultRing::is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
