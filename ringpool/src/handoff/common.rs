//! Pieces several backends share: the lock-free job and result queues, the
//! worker's spin-then-park loop, futex wakes, and result delivery with a
//! doorbell.

use super::caps::Capabilities;
use super::dispatch::{BackendConfig, PoolSideOps, WorkerOps};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{bump, WorkerStats, Workers};
use crate::protocol::park;
use crate::stats::LoopStats;
use crate::sync::AtomicU32;
use crate::sync::Ordering::Acquire;
use crate::sys;
use crate::tag::{self, Kind};
use crossbeam_queue::{ArrayQueue, SegQueue};
use io_uring::{squeue, IoUring};
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// The pool's job queue for every backend but `pipe` and `condvar`: a
/// lock-free MPMC queue (several loops push, several workers pop).
pub(crate) struct JobQueue(SegQueue<JobRef>);

impl JobQueue {
    pub(crate) fn new() -> JobQueue {
        JobQueue(SegQueue::new())
    }

    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.0.push(job)
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<JobRef> {
        self.0.pop()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A loop's result queue: a bounded lock-free queue used MPSC. Its capacity
/// is the loop's in-flight limit, so a push can never find it full.
pub(crate) struct ResultQueue(ArrayQueue<JobRef>);

impl ResultQueue {
    pub(crate) fn new(capacity: usize) -> ResultQueue {
        ResultQueue(ArrayQueue::new(capacity.max(1)))
    }

    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        if let Err(job) = self.0.push(job) {
            // Unreachable: pushes are bounded by the loop's slots. Keep the
            // job rather than lose it, by waiting until there is room.
            let mut job = job;
            loop {
                std::thread::yield_now();
                match self.0.push(job) {
                    Ok(()) => break,
                    Err(j) => job = j,
                }
            }
        }
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<JobRef> {
        self.0.pop()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Spins until `seen()` or `budget` runs out; `true` if `seen()` did.
pub(crate) fn spin_for(budget: Duration, seen: impl Fn() -> bool) -> bool {
    if budget.is_zero() {
        return false;
    }
    let deadline = Instant::now() + budget;
    loop {
        for _ in 0..64 {
            if seen() {
                return true;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

impl park::Queue for JobQueue {
    type Job = JobRef;

    fn pop(&self) -> Option<JobRef> {
        JobQueue::pop(self)
    }

    fn is_empty(&self) -> bool {
        JobQueue::is_empty(self)
    }
}

/// A worker's wait for its next job, for the backends whose workers park
/// (`msg-ring`, `msg-ring-sync`, `eventfd`, `futex`): the park protocol's
/// loop ([`park::next_job`]), spinning for the pool's budget first, with
/// `wait` as the primitive that blocks until the state word may have
/// changed. `None` once the pool exits with the queue empty.
pub(crate) fn next_job_parked(
    jobs: &JobQueue,
    workers: &Workers,
    idx: usize,
    mut wait: impl FnMut(&AtomicU32) -> io::Result<()>,
) -> Option<JobRef> {
    let me = &*workers.slots[idx].state;
    let stats = &workers.slots[idx].stats;
    park::next_job(
        jobs,
        &workers.sleepers,
        me,
        &workers.exit,
        || spin_for(workers.spin, || !jobs.is_empty()),
        || {
            if wait(me).is_err() {
                // EINTR and injected faults: count it and back off briefly;
                // the state word is re-checked, so nothing is lost.
                bump(&stats.wait_errors);
                std::thread::sleep(Duration::from_micros(50));
            }
        },
        || bump(&stats.parks),
    )
}

/// Sleeps on the worker's own state word with futex(2).
pub(crate) fn futex_wait(me: &AtomicU32) -> io::Result<()> {
    sys::futex::wait(me, park::SLEEPING)
}

/// Wakes worker `idx` with futex(2). The worker was claimed (NOTIFIED) and
/// sleeps until this wake lands, so a failed wake is retried, not dropped.
pub(crate) fn wake_futex(workers: &Workers, idx: usize) {
    let mut backoff = Backoff::new();
    while sys::futex::wake(&workers.slots[idx].state, 1).is_err() {
        backoff.snooze();
    }
}

/// Worker side, batched announcements: queue the result, then announce with
/// `send` only if this worker flipped the doorbell (at most one announcement
/// in flight per loop; see `protocol::doorbell`).
#[inline]
pub(crate) fn deliver_batched(
    results: &ResultQueue,
    home: &LoopShared,
    job: JobRef,
    stats: &WorkerStats,
    mut send: impl FnMut(u64) -> io::Result<()>,
) {
    results.push(job);
    if !home.closing.load(Acquire) && home.doorbell.should_ring() {
        let ud = tag::encode(Kind::Doorbell, home.reg, 0);
        bump(&stats.doorbells);
        if !send_with_retry(home, stats, || send(ud)) {
            home.doorbell.unring();
        }
    } else {
        bump(&stats.doorbells_skipped);
    }
}

/// Worker side, `Announce::PerJob`: one CQE naming the job's slot. The job's
/// final state is already published; a closing loop polls it, so no message
/// is sent then.
pub(crate) fn deliver_per_job(
    home: &LoopShared,
    slot: u32,
    stats: &WorkerStats,
    mut send: impl FnMut(u64) -> io::Result<()>,
) {
    let ud = tag::encode(Kind::Result, home.reg, slot);
    if !home.closing.load(Acquire) {
        send_with_retry(home, stats, || send(ud));
    }
}

/// Retries `send` with backoff (EINTR, ENOMEM, injected faults) until it
/// succeeds or `home` starts closing (its `close` collects results itself).
/// Returns `false` only in the latter case.
fn send_with_retry(
    home: &LoopShared,
    stats: &WorkerStats,
    mut send: impl FnMut() -> io::Result<()>,
) -> bool {
    let mut backoff = Backoff::new();
    loop {
        if home.closing.load(Acquire) {
            return false;
        }
        match send() {
            Ok(()) => return true,
            Err(_) => {
                bump(&stats.send_errors);
                backoff.snooze();
            }
        }
    }
}

/// Pushes `sqe` onto `ring`, submitting to make room if the SQ is full.
///
/// # Safety
///
/// Whatever memory `sqe` references must stay valid until its CQE is reaped.
pub(crate) unsafe fn push_sqe(
    ring: &mut IoUring,
    sqe: &squeue::Entry,
    stats: &mut LoopStats,
) -> io::Result<()> {
    loop {
        // SAFETY: the memory `sqe` references outlives its CQE: our
        // caller's obligation, forwarded.
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            return Ok(());
        }
        stats.enters += 1;
        ring.submit()?;
    }
}

/// The worker a wake CQE's payload names, if it names one.
pub(crate) fn worker_index(workers: &Workers, payload: u32) -> Option<usize> {
    let idx = payload as usize;
    (idx < workers.slots.len()).then_some(idx)
}

/// What a mechanism whose pool side is only the lock-free job queue says
/// about itself (`eventfd`, `futex`, `msg-ring-sync`, `spin`).
pub(crate) trait QueueMechanism {
    /// `Announce::PerJob` works with this mechanism.
    const PER_JOB: bool = false;
    /// Its workers park (on a futex) when idle; `spin`'s never do.
    const PARKS: bool = true;

    /// Why this kernel cannot run it, or `None`.
    fn unsupported(caps: &Capabilities) -> Option<String>;
}

/// The pool side of a [`QueueMechanism`]: the job queue, and futex wakes.
pub(crate) struct QueuePool<M> {
    jobs: JobQueue,
    _mechanism: PhantomData<M>,
}

impl<M> QueuePool<M> {
    pub(crate) fn jobs(&self) -> &JobQueue {
        &self.jobs
    }
}

impl<M: QueueMechanism> PoolSideOps for QueuePool<M> {
    const PER_JOB: bool = M::PER_JOB;

    fn unsupported(caps: &Capabilities) -> Option<String> {
        M::unsupported(caps)
    }

    fn new(_cfg: &BackendConfig) -> Result<Self, Error> {
        Ok(QueuePool {
            jobs: JobQueue::new(),
            _mechanism: PhantomData,
        })
    }

    fn push(&self, job: JobRef) {
        self.jobs.push(job)
    }

    fn pop(&self) -> Option<JobRef> {
        self.jobs.pop()
    }

    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    fn wake_sleepers(&self, workers: &Workers, n: usize) -> usize {
        if !M::PARKS {
            return 0; // nobody sleeps, nobody to wake
        }
        workers
            .sleepers
            .claim(workers.states(), n, |i| self.wake(workers, i))
    }
}

/// A worker that spins for the pool's budget, then parks on its futex
/// (`eventfd`, `futex`, `msg-ring-sync`).
pub(crate) struct FutexWorker<M>(PhantomData<M>);

impl<M: QueueMechanism> WorkerOps for FutexWorker<M> {
    type Pool = QueuePool<M>;

    fn new(_pool: &QueuePool<M>, _idx: usize) -> io::Result<Self> {
        Ok(FutexWorker(PhantomData))
    }

    fn next_job(&mut self, pool: &QueuePool<M>, workers: &Workers, idx: usize) -> Option<JobRef> {
        next_job_parked(&pool.jobs, workers, idx, futex_wait)
    }
}
