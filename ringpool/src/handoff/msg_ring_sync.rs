//! `msg-ring-sync`: workers own no ring; they post the loop's doorbell (or,
//! with `Announce::PerJob`, each result) straight into its CQ with the
//! ringless `IORING_REGISTER_SEND_MSG_RING`, and sleep on a futex when idle.
//!
//! Needs `IORING_REGISTER_SEND_MSG_RING` (Linux 6.13), probed by sending a
//! real message: one syscall per batch on the worker side, no ring per
//! worker, nothing for the loop to arm.

use super::caps::Capabilities;
use super::common::{self, FutexWorker, QueueMechanism, QueuePool, ResultQueue};
use super::dispatch::{
    BackendConfig, LoopSideOps, MailboxOps, PoolCqe, Sink,
};
use crate::config::Announce;
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{WorkerStats, Workers};
use crate::stats::LoopStats;
use crate::sys;
use crate::tag::Kind;
use std::os::fd::AsRawFd;

/// The mechanism, as its pool side and workers see it.
pub(crate) struct MsgRingSync;

impl QueueMechanism for MsgRingSync {
    const PER_JOB: bool = true;

    fn unsupported(caps: &Capabilities) -> Option<String> {
        if !caps.sync_msg_ring {
            return Some(caps.missing("IORING_REGISTER_SEND_MSG_RING (ringless MSG_RING)", "6.13"));
        }
        None
    }
}

pub(crate) type PoolSide = QueuePool<MsgRingSync>;
pub(crate) type Worker = FutexWorker<MsgRingSync>;

pub(crate) struct Mailbox {
    /// Batched results (unused with `Announce::PerJob`).
    results: ResultQueue,
    per_job: bool,
}

impl MailboxOps for Mailbox {
    type Worker = Worker;

    fn deliver(
        &self,
        home: &LoopShared,
        _: &mut Worker,
        job: JobRef,
        slot: u32,
        stats: &WorkerStats,
    ) {
        let ring = home.ring.as_raw_fd();
        let send = |ud| sys::msg_ring::send(ring, ud, 0);
        if self.per_job {
            // The job's final state is published; the loop finds the cell
            // through the slot the message names.
            let _ = job;
            common::deliver_per_job(home, slot, stats, send)
        } else {
            common::deliver_batched(&self.results, home, job, stats, send)
        }
    }

    fn pop(&self) -> Option<JobRef> {
        self.results.pop()
    }

    fn is_empty(&self) -> bool {
        self.results.is_empty()
    }
}

pub(crate) struct LoopSide {
    /// `Announce::PerJob`: results come as one CQE per job. Otherwise a
    /// `Result` CQE is not the pool's doing and must be ignored: the job it
    /// names may sit in the mailbox too, and would be completed twice.
    per_job: bool,
}

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(_pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let per_job = cfg.announce == Announce::PerJob;
        let results = ResultQueue::new(if per_job { 1 } else { cfg.max_in_flight });
        Ok((LoopSide { per_job }, Mailbox { results, per_job }))
    }

    fn on_cqe(
        &mut self,
        cqe: PoolCqe,
        _pool: &PoolSide,
        _workers: &Workers,
        sink: &mut impl Sink,
        _stats: &mut LoopStats,
    ) -> bool {
        match cqe.kind {
            Kind::Doorbell => true,
            Kind::Result if self.per_job => {
                sink.slot(cqe.payload);
                false
            }
            _ => false,
        }
    }
}
