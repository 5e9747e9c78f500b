//! `msg-ring`: the answer's design, batched. Each worker owns a ring
//! (`SINGLE_ISSUER | DEFER_TASKRUN`, sharing the io-wq of the pool's control
//! ring with `ATTACH_WQ`) and sleeps in it; the loop wakes a sleeping worker
//! with an `IORING_OP_MSG_RING` SQE on its own ring, and workers announce
//! results with a MSG_RING from theirs.
//!
//! Needs `IORING_OP_MSG_RING` (Linux 5.18), `IORING_SETUP_DEFER_TASKRUN`
//! (6.1) and `IOSQE_CQE_SKIP_SUCCESS` (5.17). Wakes target a duplicate of
//! each worker's ring fd that the pool keeps until it is freed, so a wake
//! SQE that sits in a loop's SQ longer than the worker lives (a handle
//! dropped without its ring leaks its share of the pool for exactly this)
//! still names that ring, never a reused fd number; a message to a
//! DEFER_TASKRUN ring whose owner exited just vanishes.

use super::caps::Capabilities;
use super::common::{self, JobQueue, MsgMailbox, MsgSender};
use super::dispatch::{
    BackendConfig, LoopSideOps, PoolCqe, PoolSideOps, Sink, WorkerOps,
};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::workers::Workers;
use crate::stats::LoopStats;
use crate::sync::Ordering::{Acquire, Release};
use crate::sync::{lock, Mutex};
use crate::sys::{self, fault::Site};
use crate::tag::{self, Kind};
use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicI32;
use std::sync::OnceLock;

/// `user_data` of wake messages on a worker's ring.
const WORKER_WAKE: u64 = 2;
/// `user_data` of a worker's own MSG_RING sends (only failures post a CQE).
const OWN_SEND: u64 = 1;

pub(crate) struct PoolSide {
    jobs: JobQueue,
    /// A ring any thread may use, under the lock, to wake workers on cold
    /// paths; also the io-wq the worker rings attach to.
    control: Mutex<IoUring>,
    /// Each worker's ring, as the fd number of `dups[i]`, or -1 while the
    /// worker has none (before it starts, after it exits).
    rings: Box<[AtomicI32]>,
    /// A duplicate of each worker's ring fd, kept as long as the pool's
    /// shared state lives.
    dups: Box<[OnceLock<OwnedFd>]>,
}

impl PoolSideOps for PoolSide {
    const PER_JOB: bool = true;

    fn unsupported(caps: &Capabilities) -> Option<String> {
        if !caps.msg_ring {
            return Some(caps.missing("IORING_OP_MSG_RING", "5.18"));
        }
        if !caps.defer_taskrun {
            return Some(caps.missing("IORING_SETUP_DEFER_TASKRUN for worker rings", "6.1"));
        }
        if !caps.cqe_skip {
            return Some(caps.missing("IOSQE_CQE_SKIP_SUCCESS", "5.17"));
        }
        None
    }

    fn new(cfg: &BackendConfig) -> Result<Self, Error> {
        let control =
            IoUring::new(64).map_err(|e| Error::io("cannot create the control ring", e))?;
        Ok(PoolSide {
            jobs: JobQueue::new(cfg.max_in_flight),
            control: Mutex::new(control),
            rings: (0..cfg.workers).map(|_| AtomicI32::new(-1)).collect(),
            dups: (0..cfg.workers).map(|_| OnceLock::new()).collect(),
        })
    }

    fn push(&self, job: JobRef, lane: Option<u32>) {
        self.jobs.push(job, lane)
    }

    fn job_queue(&self) -> Option<&JobQueue> {
        Some(&self.jobs)
    }

    /// A MSG_RING from the control ring, under its lock.
    fn wake(&self, _workers: &Workers, idx: usize) {
        let mut ring = lock(&self.control);
        let fd = self.rings[idx].load(Acquire);
        if fd < 0 {
            return;
        }
        let sqe = opcode::MsgRingData::new(types::Fd(fd), 0, WORKER_WAKE, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS);
        // The worker is claimed and sleeps until this lands: retry until the
        // send succeeds (a failure posts a CQE, success none).
        let mut backoff = Backoff::new();
        loop {
            // SAFETY: a MSG_RING data SQE references no memory. The target
            // fd is `dups[idx]`, open as long as `self` lives.
            let pushed = unsafe { ring.submission().push(&sqe) }.is_ok();
            let sent = pushed && ring.submit().is_ok();
            // Reap every CQE (not just up to the first failure).
            let mut failed = false;
            for c in ring.completion() {
                failed |= c.result() < 0;
            }
            if sent && !failed {
                break;
            }
            backoff.snooze();
        }
    }
}

pub(crate) struct Worker {
    /// Created on the worker's thread, so that thread is its
    /// `SINGLE_ISSUER` owner; dropped when the worker exits.
    ring: IoUring,
    /// The worker's scan position in the job queue's lanes.
    cursor: usize,
}

impl MsgSender for Worker {
    /// Sends one MSG_RING data message from this worker's ring.
    fn send_msg(&mut self, target: RawFd, user_data: u64) -> io::Result<()> {
        sys::fault::check(Site::WorkerEnter)?;
        let ring = &mut self.ring;
        let sqe = opcode::MsgRingData::new(types::Fd(target), 0, user_data, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(OWN_SEND);
        // SAFETY: a MSG_RING data SQE references no user memory; the target
        // fd is the loop's ring dup, kept open by its `LoopShared` while we
        // are one of its senders.
        while unsafe { ring.submission().push(&sqe) }.is_err() {
            ring.submit()?;
        }
        ring.submit()?;
        // A failed MSG_RING posts its CQE inline, during the submit above.
        let mut err = None;
        for cqe in ring.completion() {
            if cqe.user_data() == OWN_SEND && cqe.result() < 0 {
                err = Some(io::Error::from_raw_os_error(-cqe.result()));
            }
        }
        err.map_or(Ok(()), Err)
    }
}

impl WorkerOps for Worker {
    type Pool = PoolSide;

    fn new(pool: &PoolSide, idx: usize) -> io::Result<Self> {
        let wq = lock(&pool.control).as_raw_fd();
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_attach_wq(wq)
            .setup_cqsize(64)
            .build(16)?;
        let dup = sys::dup_cloexec(ring.as_raw_fd())?;
        let fd = dup.as_raw_fd();
        if pool.dups[idx].set(dup).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "worker index reused",
            ));
        }
        pool.rings[idx].store(fd, Release);
        Ok(Worker { ring, cursor: 0 })
    }

    fn next_batch(
        &mut self,
        pool: &PoolSide,
        workers: &Workers,
        idx: usize,
        limit: usize,
        out: &mut Vec<JobRef>,
    ) -> bool {
        let ring = &mut self.ring;
        common::next_batch_parked(&pool.jobs, &mut self.cursor, workers, idx, limit, out, |_| {
            sys::fault::check(Site::WorkerEnter)?;
            ring.submit_and_wait(1)?;
            ring.completion().for_each(drop);
            Ok(())
        })
    }

    /// Stops cold-path wakes to this worker's ring (under the control-ring
    /// lock, which `wake` holds from reading the fd to sending). Loops cannot
    /// target it either: they are all gone before the pool tells workers to
    /// exit.
    fn retire(&mut self, pool: &PoolSide, idx: usize) {
        let _guard = lock(&pool.control);
        pool.rings[idx].store(-1, Release);
    }
}

pub(crate) type Mailbox = MsgMailbox<Worker>;

pub(crate) struct LoopSide {
    /// `Announce::PerJob`: results come as one CQE per job (see
    /// [`common::on_msg_cqe`]).
    per_job: bool,
}

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(_pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let mailbox = Mailbox::new(cfg);
        Ok((LoopSide { per_job: mailbox.per_job() }, mailbox))
    }

    fn wake(
        &mut self,
        ring: &mut IoUring,
        pool: &PoolSide,
        _workers: &Workers,
        idx: usize,
        reg: u16,
        stats: &mut LoopStats,
    ) -> io::Result<bool> {
        let fd = pool.rings[idx].load(Acquire);
        let sqe = opcode::MsgRingData::new(types::Fd(fd), 0, WORKER_WAKE, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(tag::encode(Kind::WakeMsg, reg, idx as u32));
        // SAFETY: a MSG_RING data SQE references no memory. The target fd
        // is the pool's duplicate of the worker's ring fd, open while the
        // pool's shared state lives: this loop's handle keeps it alive, and
        // leaks its share if it is dropped without its ring while this SQE
        // may still be unsubmitted.
        unsafe { common::push_sqe(ring, &sqe, stats)? };
        Ok(true)
    }

    fn on_cqe(
        &mut self,
        cqe: PoolCqe,
        pool: &PoolSide,
        workers: &Workers,
        sink: &mut impl Sink,
        stats: &mut LoopStats,
    ) -> bool {
        if let Some(look) = common::on_msg_cqe(self.per_job, cqe, sink) {
            return look;
        }
        match cqe.kind {
            Kind::WakeMsg => {
                // A batched wake failed (success CQEs are skipped): wake the
                // worker from the control ring instead, so its job is not
                // stranded.
                stats.errors += 1;
                if let Some(idx) = common::worker_index(workers, cqe.payload) {
                    pool.wake(workers, idx);
                }
                false
            }
            _ => false,
        }
    }
}
