//! The one place that matches on the mechanism.
//!
//! Every backend file defines the same four types, each implementing the
//! trait of its role:
//!
//! | type | trait | lives in | what it does |
//! |---|---|---|---|
//! | `PoolSide` | [`PoolSideOps`] | the pool | the job queue; how sleeping workers are woken |
//! | `Worker` | [`WorkerOps`] | each worker thread | how a worker waits for its next job |
//! | `Mailbox` | [`MailboxOps`] | each loop, seen by workers | where results go and how the loop is told |
//! | `LoopSide` | [`LoopSideOps`] | each loop, private | what the loop arms, how it reacts to its CQEs, how it must wait |
//!
//! `backends!` wraps each role in an enum with one variant per mechanism
//! and forwards every method: static dispatch, one branch on a discriminant,
//! no `dyn` and no generic parameter on the pool or the loop handle. Adding a
//! mechanism is its file, one line in the `backends!` call in
//! `handoff/mod.rs`, and its name in [`Handoff`](crate::Handoff).

use super::caps::Capabilities;
use super::common::{JobQueue, ResultQueue};
use crate::config::Announce;
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{WorkerStats, Workers};
use crate::stats::LoopStats;
use crate::tag::Kind;
use io_uring::IoUring;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// How an event loop must wait so that this mechanism's results reach it.
///
/// [`LoopHandle::submit_and_wait`](crate::LoopHandle::submit_and_wait)
/// honours it; a loop that makes its own `io_uring_enter` (an async runtime,
/// say) asks [`LoopHandle::wait_policy`](crate::LoopHandle::wait_policy) and
/// does the same.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoopWait {
    /// Block in `io_uring_enter` as long as you like: results are announced
    /// by a CQE on the ring (after [`flush`](crate::LoopHandle::flush)).
    Block,
    /// Results arrive without a CQE: never block longer than this, and look
    /// at [`completions`](crate::LoopHandle::completions) between waits
    /// (`condvar`).
    Poll(Duration),
    /// Results arrive without a CQE and workers never sleep: do not block at
    /// all; poll the completions and the CQ (`spin`).
    Spin,
}

/// What a backend is built from.
#[derive(Clone, Debug)]
pub(crate) struct BackendConfig {
    pub(crate) workers: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) announce: Announce,
    pub(crate) poll_interval: Duration,
}

/// A pool CQE, decoded: its kind, payload, result and flags.
#[derive(Copy, Clone, Debug)]
pub(crate) struct PoolCqe {
    pub(crate) kind: Kind,
    pub(crate) payload: u32,
    pub(crate) res: i32,
    pub(crate) flags: u32,
}

/// Where a loop side puts the jobs its CQEs hand back.
pub(crate) trait Sink {
    /// A job whose final state its worker has published.
    fn finished(&mut self, job: JobRef);
    /// A worker's word, through the kernel, that the job in slot `slot` is
    /// done (a per-job CQE, a result-pipe message). Checked, never trusted.
    fn slot(&mut self, slot: u32);
    /// A pool CQE that matched nothing the loop side waits for.
    fn ignored(&mut self);
}

/// The pool side of a mechanism.
pub(crate) trait PoolSideOps: Sized {
    /// `Announce::PerJob` works with this mechanism.
    const PER_JOB: bool = false;

    /// Why this kernel cannot run the mechanism, or `None` if it can
    /// (io_uring itself is checked by the caller).
    fn unsupported(caps: &Capabilities) -> Option<String>;

    fn new(cfg: &BackendConfig) -> Result<Self, Error>;

    /// Queues a job for the workers (every mechanism but `pipe`, whose jobs
    /// travel through the loop's own SQEs); `lane` is the loop handle's (for
    /// the mechanisms with a `common::JobQueue`).
    fn push(&self, job: JobRef, lane: Option<u32>);

    /// The pool's lane-based job queue, for the mechanisms that use one
    /// (`common::JobQueue`): each loop gets a lane of it at `register`.
    fn job_queue(&self) -> Option<&JobQueue> {
        None
    }

    /// Makes the jobs a loop queued on `lane` since its last call visible
    /// to the workers (a lane's batch publish); the loop calls it at every
    /// flush, before it decides which sleeping workers to wake. `lane` is
    /// the loop handle's own, `None` once `close` gave it back: a lane that
    /// may be another loop's now must never be published by this one.
    /// Mechanisms that queue each job at once have nothing to do.
    fn publish(&self, lane: Option<u32>) {
        if let (Some(q), Some(lane)) = (self.job_queue(), lane) {
            q.publish(lane);
        }
    }

    /// Takes every queued job whose loop is `home` (a loop closing under
    /// `Shutdown::Cancel` cancels them itself): with a lane per loop
    /// (`common::JobQueue`), what its lane holds; other loops' jobs are not
    /// touched. `lane` is the loop handle's own, `None` once `close` gave
    /// it back (a close finished after an unwind must not take what may be
    /// another loop's lane by then). A mechanism whose jobs leave through
    /// the kernel at once (`pipe`) has none to take.
    fn take_jobs_of(&self, _home: &LoopShared, lane: Option<u32>) -> Vec<JobRef> {
        match (self.job_queue(), lane) {
            (Some(q), Some(lane)) => q.take_lane(lane),
            _ => Vec::new(),
        }
    }

    /// Wakes worker `idx`, claimed by the caller, from any thread without a
    /// loop ring. Retries until the wake is sent: a claimed worker sleeps
    /// until it lands.
    fn wake(&self, workers: &Workers, idx: usize) {
        super::common::wake_futex(workers, idx);
    }

    /// Claims and wakes up to `n` sleeping workers through [`Self::wake`];
    /// returns how many.
    fn wake_sleepers(&self, workers: &Workers, n: usize) -> usize {
        workers
            .sleepers
            .claim(workers.states(), n, |i| self.wake(workers, i))
    }

    /// Workers are told to exit: release what keeps them blocked outside
    /// the park protocol (the pipe's read end).
    fn release_workers(&self) {}
}

/// A worker thread's own state for a mechanism.
pub(crate) trait WorkerOps: Sized {
    type Pool: PoolSideOps;

    /// Runs on the worker's thread before its first job.
    fn new(pool: &Self::Pool, idx: usize) -> io::Result<Self>;

    /// Blocks until there are jobs for this worker, and moves at most
    /// `limit` (at least one) of them into `out` (empty on entry; every job
    /// in it of one loop): `true`; or the pool exits with nothing left for
    /// it: `false`.
    fn next_batch(
        &mut self,
        pool: &Self::Pool,
        workers: &Workers,
        idx: usize,
        limit: usize,
        out: &mut Vec<JobRef>,
    ) -> bool;

    /// Runs on the worker's thread after its last job.
    fn retire(&mut self, _pool: &Self::Pool, _idx: usize) {}
}

/// What workers see of one loop: where results go, how the loop is told.
pub(crate) trait MailboxOps {
    type Worker: WorkerOps;

    /// Hands finished (or cancelled) jobs back to `home`'s loop, emptying
    /// `jobs` (every one of `home`'s, its final state published: each cell
    /// may be the loop's again already, so only its fixed `slot` may be
    /// read).
    fn deliver(
        &self,
        home: &LoopShared,
        worker: &mut Self::Worker,
        jobs: &mut Vec<JobRef>,
        stats: &WorkerStats,
    );

    /// Loop side: takes one result the workers queued (none for `pipe`).
    fn pop(&self) -> Option<JobRef>;

    /// The result queue that [`pop`](Self::pop) and
    /// [`is_empty`](Self::is_empty) read and nothing else, if there is one:
    /// the loop then takes results off it directly, with a rolling
    /// prefetch of their cells.
    fn results(&self) -> Option<&ResultQueue> {
        None
    }

    /// Loop side: no result is queued.
    fn is_empty(&self) -> bool;
}

/// The loop's private side of a mechanism.
pub(crate) trait LoopSideOps: Sized {
    type Pool: PoolSideOps;
    type Mailbox: MailboxOps;

    /// Builds the loop's two halves at `register`.
    fn register(pool: &Self::Pool, cfg: &BackendConfig) -> Result<(Self, Self::Mailbox), Error>;

    /// How the loop must wait for this mechanism.
    fn wait_policy(&self) -> LoopWait {
        LoopWait::Block
    }

    /// Results land in the mailbox, so the loop may spin on it before it
    /// sleeps (not `pipe`, whose results need the loop's own read).
    fn spins_on_results(&self) -> bool {
        true
    }

    /// `Some(wakes)` if [`enqueue`](Self::enqueue) is a push onto the
    /// loop's lane that returns `wakes` and does nothing else, as the
    /// default one does: the loop handle then pushes onto its lane itself,
    /// with no dispatch per job. `None` for a mechanism with an `enqueue`
    /// of its own, or no lanes (`pipe`, `condvar`).
    const LANE_WAKES: Option<bool> = Some(true);

    /// Queues `job` (on `lane`, the loop handle's, where the mechanism has
    /// lanes); `true` if a sleeping worker may need a wake for it.
    fn enqueue(&mut self, pool: &Self::Pool, job: JobRef, lane: Option<u32>) -> bool {
        pool.push(job, lane);
        Self::LANE_WAKES.unwrap_or(true)
    }

    /// Sends the jobs the loop side holds back until a flush (`pipe`).
    fn send_jobs(&mut self, _stats: &mut LoopStats) {}

    /// Wakes worker `idx`, claimed by the caller: an SQE on `ring` (returns
    /// `true`: the worker waits for it to be submitted) or a syscall.
    fn wake(
        &mut self,
        _ring: &mut IoUring,
        pool: &Self::Pool,
        workers: &Workers,
        idx: usize,
        _reg: u16,
        _stats: &mut LoopStats,
    ) -> io::Result<bool> {
        pool.wake(workers, idx);
        Ok(false)
    }

    /// Queues the SQE the loop must have armed before it sleeps, if any;
    /// `true` if it queued one.
    fn arm(
        &mut self,
        _ring: &mut IoUring,
        _home: &LoopShared,
        _reg: u16,
        _stats: &mut LoopStats,
    ) -> io::Result<bool> {
        Ok(false)
    }

    /// Reacts to one of this loop's pool CQEs; `true` if results may wait in
    /// the mailbox (the loop acknowledges the doorbell and drains).
    ///
    /// The default is for a mechanism that posts nothing on the loop's ring
    /// (`condvar`, `spin`): there is nothing to react to.
    fn on_cqe(
        &mut self,
        _cqe: PoolCqe,
        _pool: &Self::Pool,
        _workers: &Workers,
        _sink: &mut impl Sink,
        _stats: &mut LoopStats,
    ) -> bool {
        false
    }

    /// `close` under `Shutdown::Cancel`: job pointers the loop still holds,
    /// which never reached a worker.
    fn take_unsent(&mut self) -> Vec<u64> {
        Vec::new()
    }

    /// `close`: collects results without a CQE (the ring may be gone, or
    /// broken: a disabled ring, an SQ nobody submits).
    fn collect(&mut self, _sink: &mut impl Sink, _stats: &mut LoopStats) {}

    /// `close` keeps flushing while it waits (jobs leave through the loop's
    /// SQEs, results through a read the loop re-arms).
    fn flushes_on_close(&self) -> bool {
        false
    }

    /// `close`'s cancel of the armed requests of kind `what` completed:
    /// none of them is armed any more.
    fn cancelled(&mut self, _what: Kind) {}

    /// The `user_data`s of the armed SQEs to cancel at `close`.
    fn armed(&self, _reg: u16) -> Vec<u64> {
        Vec::new()
    }

    /// The kernel still holds memory of this loop side (armed SQEs,
    /// writes in flight): `close` reaps until this is false.
    fn busy(&self) -> bool {
        false
    }

    /// Without the ring: cancels the armed SQEs synchronously through
    /// `ring_fd`. `unsubmitted`: an SQE the loop queued may still sit in the
    /// SQ, where no cancel reaches it. Returns `true` if the kernel may
    /// still read the loop's shared part, which must then be leaked.
    fn release(&mut self, _ring_fd: RawFd, _reg: u16, _unsubmitted: bool) -> bool {
        false
    }
}

/// Declares the mechanism modules, defines the four role enums (one variant
/// per mechanism) and forwards every method to the variant's backend.
/// Invoked once, in `handoff/mod.rs`: the one dispatch place.
macro_rules! backends {
    ($($variant:ident => $module:ident),* $(,)?) => {
        $(mod $module;)*

        mod roles {
            use super::caps::Capabilities;
            use super::dispatch::{
                BackendConfig, LoopSideOps, LoopWait, MailboxOps, PoolCqe, PoolSideOps, Sink,
                WorkerOps,
            };
            use super::names::Handoff;
            use crate::error::Error;
            use crate::pool::job::JobRef;
            use crate::pool::loop_shared::LoopShared;
            use crate::pool::workers::{WorkerStats, Workers};
            use crate::stats::LoopStats;
            use crate::tag::Kind;
            use io_uring::IoUring;
            use std::io;
            use std::os::fd::RawFd;

        /// The pool side of the chosen mechanism.
        // One per pool, and the big variants are hot ones: boxing them
        // would add a pointer chase to every job.
        #[allow(clippy::large_enum_variant)]
        pub(crate) enum PoolSide { $($variant(super::$module::PoolSide)),* }
        /// A worker thread's state for the chosen mechanism.
        // One per worker thread, on its stack.
        #[allow(clippy::large_enum_variant)]
        pub(crate) enum Worker { $($variant(super::$module::Worker)),* }
        /// What workers see of one loop, for the chosen mechanism.
        pub(crate) enum Mailbox { $($variant(super::$module::Mailbox)),* }
        /// A loop's private state for the chosen mechanism.
        pub(crate) enum LoopSide { $($variant(super::$module::LoopSide)),* }

        impl Handoff {
            /// Why this kernel cannot run this mechanism, or `None` if it can.
            pub fn unsupported_reason(self, caps: &Capabilities) -> Option<String> {
                if !caps.io_uring && !matches!(self, Handoff::Condvar | Handoff::Spin | Handoff::Auto) {
                    return Some(format!(
                        "io_uring is unavailable: {}",
                        caps.io_uring_error.as_deref().unwrap_or("io_uring_setup failed")
                    ));
                }
                match self {
                    Handoff::Auto => None,
                    $(Handoff::$variant => <super::$module::PoolSide as PoolSideOps>::unsupported(caps),)*
                }
            }

            /// `Announce::PerJob` works with this mechanism.
            pub(crate) fn supports_per_job(self) -> bool {
                match self {
                    Handoff::Auto => false,
                    $(Handoff::$variant => <super::$module::PoolSide as PoolSideOps>::PER_JOB,)*
                }
            }
        }

        impl PoolSide {
            pub(crate) fn new(h: Handoff, cfg: &BackendConfig) -> Result<PoolSide, Error> {
                Ok(match h {
                    Handoff::Auto => unreachable!("select resolves Auto"),
                    $(Handoff::$variant => PoolSide::$variant(PoolSideOps::new(cfg)?),)*
                })
            }

            pub(crate) fn handoff(&self) -> Handoff {
                match self { $(PoolSide::$variant(_) => Handoff::$variant),* }
            }

            pub(crate) fn wake(&self, workers: &Workers, idx: usize) {
                match self { $(PoolSide::$variant(p) => p.wake(workers, idx)),* }
            }

            pub(crate) fn wake_sleepers(&self, workers: &Workers, n: usize) -> usize {
                match self { $(PoolSide::$variant(p) => p.wake_sleepers(workers, n)),* }
            }

            /// `register`: the new loop's lane in the pool's job queue, if
            /// the mechanism has one.
            pub(crate) fn attach_lane(&self) -> Option<u32> {
                match self { $(PoolSide::$variant(p) => p.job_queue().map(|q| q.attach())),* }
            }

            /// Lane `lane` of the pool's job queue, if the mechanism has one.
            pub(crate) fn lane(&self, lane: u32) -> Option<&crate::protocol::rings::Lane> {
                match self { $(PoolSide::$variant(p) => p.job_queue().map(|q| q.lane_of(lane))),* }
            }

            /// `close`, once every job of the loop is back: its lane may
            /// serve another loop.
            pub(crate) fn detach_lane(&self, lane: u32) {
                match self { $(PoolSide::$variant(p) => if let Some(q) = p.job_queue() { q.detach(lane) }),* }
            }

            #[inline]
            pub(crate) fn publish(&self, lane: Option<u32>) {
                match self { $(PoolSide::$variant(p) => p.publish(lane)),* }
            }

            pub(crate) fn take_jobs_of(&self, home: &LoopShared, lane: Option<u32>) -> Vec<JobRef> {
                match self { $(PoolSide::$variant(p) => p.take_jobs_of(home, lane)),* }
            }

            pub(crate) fn release_workers(&self) {
                match self { $(PoolSide::$variant(p) => p.release_workers()),* }
            }
        }

        impl Worker {
            pub(crate) fn new(pool: &PoolSide, idx: usize) -> io::Result<Worker> {
                Ok(match pool { $(PoolSide::$variant(p) => Worker::$variant(WorkerOps::new(p, idx)?)),* })
            }

            #[inline]
            pub(crate) fn next_batch(&mut self, pool: &PoolSide, workers: &Workers, idx: usize, limit: usize, out: &mut Vec<JobRef>) -> bool {
                match (self, pool) {
                    $((Worker::$variant(w), PoolSide::$variant(p)) => w.next_batch(p, workers, idx, limit, out),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("a worker runs its own pool's mechanism"),
                }
            }

            pub(crate) fn retire(&mut self, pool: &PoolSide, idx: usize) {
                match (self, pool) {
                    $((Worker::$variant(w), PoolSide::$variant(p)) => w.retire(p, idx),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("a worker runs its own pool's mechanism"),
                }
            }
        }

        impl Mailbox {
            #[inline]
            pub(crate) fn deliver(&self, home: &LoopShared, worker: &mut Worker, jobs: &mut Vec<JobRef>, stats: &WorkerStats) {
                match (self, worker) {
                    $((Mailbox::$variant(m), Worker::$variant(w)) => m.deliver(home, w, jobs, stats),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("a loop registers with its own pool's mechanism"),
                }
            }

            #[inline]
            pub(crate) fn pop(&self) -> Option<JobRef> {
                match self { $(Mailbox::$variant(m) => m.pop()),* }
            }

            #[inline]
            pub(crate) fn is_empty(&self) -> bool {
                match self { $(Mailbox::$variant(m) => m.is_empty()),* }
            }

            /// [`MailboxOps::results`] of the mechanism.
            #[inline]
            pub(crate) fn results(&self) -> Option<&super::common::ResultQueue> {
                match self { $(Mailbox::$variant(m) => m.results()),* }
            }
        }

        impl LoopSide {
            pub(crate) fn register(pool: &PoolSide, cfg: &BackendConfig) -> Result<(LoopSide, Mailbox), Error> {
                Ok(match pool {
                    $(PoolSide::$variant(p) => {
                        let (l, m) = LoopSideOps::register(p, cfg)?;
                        (LoopSide::$variant(l), Mailbox::$variant(m))
                    })*
                })
            }

            pub(crate) fn wait_policy(&self) -> LoopWait {
                match self { $(LoopSide::$variant(l) => l.wait_policy()),* }
            }

            pub(crate) fn spins_on_results(&self) -> bool {
                match self { $(LoopSide::$variant(l) => l.spins_on_results()),* }
            }

            /// [`LoopSideOps::LANE_WAKES`] of the mechanism.
            pub(crate) fn lane_wakes(&self) -> Option<bool> {
                match self { $(LoopSide::$variant(_) => <super::$module::LoopSide as LoopSideOps>::LANE_WAKES),* }
            }

            #[inline]
            pub(crate) fn enqueue(&mut self, pool: &PoolSide, job: JobRef, lane: Option<u32>) -> bool {
                match (self, pool) {
                    $((LoopSide::$variant(l), PoolSide::$variant(p)) => l.enqueue(p, job, lane),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("a loop registers with its own pool's mechanism"),
                }
            }

            pub(crate) fn send_jobs(&mut self, stats: &mut LoopStats) {
                match self { $(LoopSide::$variant(l) => l.send_jobs(stats)),* }
            }

            pub(crate) fn wake(
                &mut self,
                ring: &mut IoUring,
                pool: &PoolSide,
                workers: &Workers,
                idx: usize,
                reg: u16,
                stats: &mut LoopStats,
            ) -> io::Result<bool> {
                match (self, pool) {
                    $((LoopSide::$variant(l), PoolSide::$variant(p)) => l.wake(ring, p, workers, idx, reg, stats),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("a loop registers with its own pool's mechanism"),
                }
            }

            pub(crate) fn arm(&mut self, ring: &mut IoUring, home: &LoopShared, reg: u16, stats: &mut LoopStats) -> io::Result<bool> {
                match self { $(LoopSide::$variant(l) => l.arm(ring, home, reg, stats)),* }
            }

            pub(crate) fn on_cqe(
                &mut self,
                cqe: PoolCqe,
                pool: &PoolSide,
                workers: &Workers,
                sink: &mut impl Sink,
                stats: &mut LoopStats,
            ) -> bool {
                match (self, pool) {
                    $((LoopSide::$variant(l), PoolSide::$variant(p)) => l.on_cqe(cqe, p, workers, sink, stats),)*
                    #[allow(unreachable_patterns)]
                    _ => unreachable!("a loop registers with its own pool's mechanism"),
                }
            }

            pub(crate) fn take_unsent(&mut self) -> Vec<u64> {
                match self { $(LoopSide::$variant(l) => l.take_unsent()),* }
            }

            pub(crate) fn collect(&mut self, sink: &mut impl Sink, stats: &mut LoopStats) {
                match self { $(LoopSide::$variant(l) => l.collect(sink, stats)),* }
            }

            pub(crate) fn flushes_on_close(&self) -> bool {
                match self { $(LoopSide::$variant(l) => l.flushes_on_close()),* }
            }

            pub(crate) fn cancelled(&mut self, what: Kind) {
                match self { $(LoopSide::$variant(l) => l.cancelled(what)),* }
            }

            pub(crate) fn armed(&self, reg: u16) -> Vec<u64> {
                match self { $(LoopSide::$variant(l) => l.armed(reg)),* }
            }

            pub(crate) fn busy(&self) -> bool {
                match self { $(LoopSide::$variant(l) => l.busy()),* }
            }

            pub(crate) fn release(&mut self, ring_fd: RawFd, reg: u16, unsubmitted: bool) -> bool {
                match self { $(LoopSide::$variant(l) => l.release(ring_fd, reg, unsubmitted)),* }
            }
        }
            }

        pub(crate) use roles::{LoopSide, Mailbox, PoolSide, Worker};
    };
}
