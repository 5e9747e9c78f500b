//! `futex`: the loop waits with `IORING_OP_FUTEX_WAIT` on its doorbell word,
//! which workers wake with futex(2); the loop wakes sleeping workers with
//! `IORING_OP_FUTEX_WAKE` SQEs batched into its next `io_uring_enter`.
//!
//! Needs `IORING_OP_FUTEX_WAIT`/`IORING_OP_FUTEX_WAKE` (Linux 6.7) and
//! `IOSQE_CQE_SKIP_SUCCESS` (5.17). On 6.16+ a private io_uring futex waiter
//! armed while the process is single-threaded can be stranded; a loop side
//! exists only after its pool has spawned its workers, so the loop's wait is
//! never armed single-threaded.

use super::caps::Capabilities;
use super::common::{self, FutexWorker, QueueMechanism, QueuePool, ResultQueue};
use super::dispatch::{
    BackendConfig, LoopSideOps, MailboxOps, PoolCqe, PoolSideOps, Sink,
};
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{WorkerStats, Workers};
use crate::stats::LoopStats;
use crate::sys::{self, futex};
use crate::tag::{self, Kind};
use io_uring::{opcode, squeue, IoUring};
use std::io;
use std::os::fd::RawFd;

/// The mechanism, as its pool side and workers see it.
pub(crate) struct Futex;

impl QueueMechanism for Futex {
    fn unsupported(caps: &Capabilities) -> Option<String> {
        if !caps.futex {
            return Some(caps.missing("IORING_OP_FUTEX_WAIT/IORING_OP_FUTEX_WAKE", "6.7"));
        }
        if !caps.cqe_skip {
            return Some(caps.missing("IOSQE_CQE_SKIP_SUCCESS", "5.17"));
        }
        None
    }
}

pub(crate) type PoolSide = QueuePool<Futex>;
pub(crate) type Worker = FutexWorker<Futex>;

pub(crate) struct Mailbox {
    results: ResultQueue,
}

impl MailboxOps for Mailbox {
    type Worker = Worker;

    #[inline]
    fn deliver(&self, home: &LoopShared, _: &mut Worker, jobs: &mut Vec<JobRef>, stats: &WorkerStats) {
        common::deliver_batched(&self.results, home, jobs, stats, |_| {
            futex::wake(home.doorbell.word(), 1).map(drop)
        })
    }

    #[inline]
    fn pop(&self) -> Option<JobRef> {
        self.results.pop()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    fn results(&self) -> Option<&ResultQueue> {
        Some(&self.results)
    }
}

pub(crate) struct LoopSide {
    /// The `FUTEX_WAIT` on the doorbell word is armed.
    armed: bool,
}

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(_pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let results = ResultQueue::new(cfg.max_in_flight);
        Ok((LoopSide { armed: false }, Mailbox { results }))
    }

    fn wake(
        &mut self,
        ring: &mut IoUring,
        _pool: &PoolSide,
        workers: &Workers,
        idx: usize,
        reg: u16,
        stats: &mut LoopStats,
    ) -> io::Result<bool> {
        let word = &workers.slots[idx].state;
        let sqe = opcode::FutexWake::new(
            word.as_ptr().cast_const(),
            1,
            futex::MATCH_ANY,
            futex::FUTEX2_SIZE_U32 | futex::FUTEX2_PRIVATE,
        )
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(tag::encode(Kind::FutexWake, reg, idx as u32));
        // SAFETY: the worker's state word lives in the pool's `Workers`,
        // which the loop handle keeps alive (its `PoolOwner`) until it is
        // gone, and whose share it leaks if it is dropped without its ring
        // while this SQE may still be unsubmitted.
        unsafe { common::push_sqe(ring, &sqe, stats)? };
        Ok(true)
    }

    fn arm(
        &mut self,
        ring: &mut IoUring,
        home: &LoopShared,
        reg: u16,
        stats: &mut LoopStats,
    ) -> io::Result<bool> {
        if self.armed {
            return Ok(false);
        }
        let sqe = opcode::FutexWait::new(
            home.doorbell.word().as_ptr().cast_const(),
            0,
            futex::MATCH_ANY,
            futex::FUTEX2_SIZE_U32 | futex::FUTEX2_PRIVATE,
        )
        .build()
        .user_data(tag::encode(Kind::FutexWait, reg, 0));
        // SAFETY: the futex word lives in `home` (the loop's `LoopShared`),
        // which outlives the request: `close` cancels and reaps it, and a
        // handle dropped without its ring cancels it synchronously or, if
        // it cannot, leaks `home` (see `release`).
        unsafe { common::push_sqe(ring, &sqe, stats)? };
        self.armed = true;
        Ok(true)
    }

    fn on_cqe(
        &mut self,
        cqe: PoolCqe,
        pool: &PoolSide,
        workers: &Workers,
        _sink: &mut impl Sink,
        stats: &mut LoopStats,
    ) -> bool {
        match cqe.kind {
            Kind::FutexWait => {
                self.armed = false;
                // 0: woken; -EAGAIN: the word was already 1 when armed. Both
                // mean "look". Anything else is counted and looked at anyway.
                if cqe.res < 0 && cqe.res != -libc::EAGAIN && cqe.res != -libc::ECANCELED {
                    stats.errors += 1;
                }
                true
            }
            Kind::FutexWake => {
                // A batched wake failed (success CQEs are skipped): wake the
                // worker directly, so its job is not stranded.
                stats.errors += 1;
                if let Some(idx) = common::worker_index(workers, cqe.payload) {
                    pool.wake(workers, idx);
                }
                false
            }
            _ => false,
        }
    }

    fn cancelled(&mut self, what: Kind) {
        if what == Kind::FutexWait {
            self.armed = false;
        }
    }

    fn armed(&self, reg: u16) -> Vec<u64> {
        self.armed
            .then(|| tag::encode(Kind::FutexWait, reg, 0))
            .into_iter()
            .collect()
    }

    fn busy(&self) -> bool {
        self.armed
    }

    /// The wait references the doorbell word in the loop's shared part. If
    /// it cannot be cancelled for certain (an older kernel, or it may still
    /// sit unsubmitted in the SQ), that part is leaked rather than freed
    /// under the kernel.
    fn release(&mut self, ring_fd: RawFd, reg: u16, unsubmitted: bool) -> bool {
        let ud = tag::encode(Kind::FutexWait, reg, 0);
        self.armed && (unsubmitted || sys::cancel::sync_cancel(ring_fd, ud).is_err())
    }
}
