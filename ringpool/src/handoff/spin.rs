//! `spin`: lock-free queues busy-polled on both sides. The latency floor, at
//! the price of every worker's core, and the loop's while it waits.
//!
//! Needs nothing from the kernel. Workers never sleep, so nothing wakes
//! them; results arrive without a CQE, so the loop must not block
//! ([`LoopWait::Spin`]).

use super::caps::Capabilities;
use super::common::{QueueMechanism, QueuePool, ResultQueue};
use super::dispatch::{
    BackendConfig, LoopSideOps, LoopWait, MailboxOps, WorkerOps,
};
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{WorkerStats, Workers};
use std::io;

/// The mechanism, as its pool side sees it.
pub(crate) struct Spin;

impl QueueMechanism for Spin {
    const PARKS: bool = false;

    fn unsupported(_caps: &Capabilities) -> Option<String> {
        None
    }
}

pub(crate) type PoolSide = QueuePool<Spin>;

/// The worker's scan position in the job queue's lanes.
pub(crate) struct Worker {
    cursor: usize,
}

impl WorkerOps for Worker {
    type Pool = PoolSide;

    fn new(_pool: &PoolSide, _idx: usize) -> io::Result<Self> {
        Ok(Worker { cursor: 0 })
    }

    fn next_batch(
        &mut self,
        pool: &PoolSide,
        workers: &Workers,
        _idx: usize,
        limit: usize,
        out: &mut Vec<JobRef>,
    ) -> bool {
        let share = workers.slots.len();
        loop {
            let jobs = pool.jobs();
            if jobs.claim(&mut self.cursor, limit, share, out) {
                return true;
            }
            let seen = (0..256).any(|_| {
                std::hint::spin_loop();
                !jobs.is_empty()
            });
            if seen {
                continue;
            }
            if workers.exiting() && jobs.is_empty() {
                return false;
            }
            std::thread::yield_now();
        }
    }
}

pub(crate) struct Mailbox {
    results: ResultQueue,
}

impl MailboxOps for Mailbox {
    type Worker = Worker;

    #[inline]
    fn deliver(&self, _: &LoopShared, _: &mut Worker, jobs: &mut Vec<JobRef>, _: &WorkerStats) {
        self.results.push_all(jobs)
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

pub(crate) struct LoopSide;

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(_pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let results = ResultQueue::new(cfg.max_in_flight);
        Ok((LoopSide, Mailbox { results }))
    }

    fn wait_policy(&self) -> LoopWait {
        LoopWait::Spin
    }

    /// No worker ever sleeps, so no job needs a wake.
    const LANE_WAKES: Option<bool> = Some(false);
}
