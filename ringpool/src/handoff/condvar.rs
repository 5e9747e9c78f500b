//! `condvar`: mutex + condvar queues, the question's first idea, kept as the
//! naive baseline.
//!
//! Needs nothing from the kernel. The loop cannot sleep on a condvar and on
//! its ring at once, so results arrive without a CQE and the loop waits on
//! its ring for at most the pool's poll interval at a time
//! ([`LoopWait::Poll`]).

use super::caps::Capabilities;
use super::common::spin_for;
use super::dispatch::{
    BackendConfig, LoopSideOps, LoopWait, MailboxOps, PoolSideOps, WorkerOps,
};
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{WorkerStats, Workers};
use crate::sync::{lock, Condvar, Mutex};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;

pub(crate) struct PoolSide {
    jobs: Mutex<VecDeque<JobRef>>,
    /// Signalled on every push; broadcast at shutdown.
    ready: Condvar,
}

impl PoolSide {
    /// Takes the oldest queued job, if any.
    #[inline]
    fn pop(&self) -> Option<JobRef> {
        lock(&self.jobs).pop_front()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        lock(&self.jobs).is_empty()
    }
}

impl PoolSideOps for PoolSide {
    fn unsupported(_caps: &Capabilities) -> Option<String> {
        None
    }

    fn new(_cfg: &BackendConfig) -> Result<Self, Error> {
        Ok(PoolSide {
            jobs: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        })
    }

    fn push(&self, job: JobRef, _lane: Option<u32>) {
        lock(&self.jobs).push_back(job);
        self.ready.notify_one();
    }

    /// Under the lock, so that other loops' jobs never leave the queue.
    fn take_jobs_of(&self, home: &LoopShared, _lane: Option<u32>) -> Vec<JobRef> {
        let mut jobs = lock(&self.jobs);
        let (mine, others): (VecDeque<JobRef>, VecDeque<JobRef>) = jobs
            .drain(..)
            .partition(|job| std::ptr::eq(job.header().home.as_ptr(), home));
        *jobs = others;
        mine.into()
    }

    fn wake(&self, _workers: &Workers, _idx: usize) {
        self.ready.notify_all();
    }

    /// Condvar workers do not park through the sleeper count: broadcast.
    fn wake_sleepers(&self, _workers: &Workers, _n: usize) -> usize {
        self.ready.notify_all();
        0
    }
}

pub(crate) struct Worker;

impl WorkerOps for Worker {
    type Pool = PoolSide;

    fn new(_pool: &PoolSide, _idx: usize) -> io::Result<Self> {
        Ok(Worker)
    }

    /// One job at a time, from the shared queue (the question's design).
    fn next_batch(
        &mut self,
        pool: &PoolSide,
        workers: &Workers,
        _idx: usize,
        _limit: usize,
        out: &mut Vec<JobRef>,
    ) -> bool {
        if let Some(job) = pool.pop() {
            out.push(job);
            return true;
        }
        spin_for(workers.spin, || !pool.is_empty());
        // Block until a job arrives, or the pool exits with the queue empty.
        let mut jobs = lock(&pool.jobs);
        loop {
            if let Some(job) = jobs.pop_front() {
                out.push(job);
                return true;
            }
            if workers.exiting() {
                return false;
            }
            jobs = match pool.ready.wait(jobs) {
                Ok(g) => g,
                Err(e) => e.into_inner(),
            };
        }
    }
}

pub(crate) struct Mailbox {
    results: Mutex<VecDeque<JobRef>>,
}

impl MailboxOps for Mailbox {
    type Worker = Worker;

    #[inline]
    fn deliver(&self, _: &LoopShared, _: &mut Worker, jobs: &mut Vec<JobRef>, _: &WorkerStats) {
        lock(&self.results).extend(jobs.drain(..))
    }

    #[inline]
    fn pop(&self) -> Option<JobRef> {
        lock(&self.results).pop_front()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        lock(&self.results).is_empty()
    }
}

pub(crate) struct LoopSide {
    poll_interval: Duration,
}

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(_pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let side = LoopSide {
            poll_interval: cfg.poll_interval,
        };
        let results = Mutex::new(VecDeque::new());
        Ok((side, Mailbox { results }))
    }

    fn wait_policy(&self) -> LoopWait {
        LoopWait::Poll(self.poll_interval)
    }

    /// No lane: jobs go to the condvar's queue.
    const LANE_WAKES: Option<bool> = None;

    /// The push signals the condvar itself.
    #[inline]
    fn enqueue(&mut self, pool: &PoolSide, job: JobRef, lane: Option<u32>) -> bool {
        pool.push(job, lane);
        false
    }
}
