//! The worker thread: claim a batch of jobs, run them, hand their results
//! back together, and wait when there is nothing to do (how it waits is the
//! mechanism's).
//!
//! # Pacing
//!
//! A batch's results go back together at its end: one reservation on the
//! loop's result ring and one doorbell check for many jobs, and, when the
//! loop sleeps, one wake for many results. That pays only while jobs are
//! short: a batch's results wait for its last job, and jobs claimed by one
//! busy worker cannot go to an idle one. So claims are paced: a worker
//! claims one job at first and doubles its claim after each batch whose
//! jobs took under [`SHORT_JOB`] each on average, up to [`CLAIM_MAX`]; one
//! slower batch drops it back to one (and long jobs then go back one by
//! one, as soon as each is done). Within a batch the worker reads the clock
//! every [`CHECK_EVERY`] jobs, and once the batch has run for
//! [`HAND_BACK_AFTER`] it hands back what is done before it goes on. What
//! pacing cannot see coming is one long job after a run of short ones: the
//! results before it in its batch (fewer than `CLAIM_MAX`) wait for it.
//!
//! When the workers and the loops cannot each have a CPU (the builder's
//! `shared_cpus`), a result handed back to a sleeping loop wakes it onto the
//! CPU the worker runs on: the loop then takes that CPU from the worker (or
//! waits for it) just to take one result. There, [`Pacing::SHARED`] lets
//! claims grow for jobs of up to [`SHARED_SHORT_JOB`] and hands back only
//! every [`SHARED_HAND_BACK_AFTER`]: fewer, larger hand-backs, so fewer
//! wakes and context switches per job, for at most that much more latency
//! per result.

use super::job::JobRef;
use super::loop_shared::LoopShared;
use super::shared::PoolShared;
use super::workers::bump;
use crate::handoff::Worker;
use crate::protocol::rings::CLAIM_MAX;
use crate::sync::Arc;
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sys;
use std::io;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// A batch whose jobs took less than this each, on average, lets the next
/// claim double.
const SHORT_JOB: Duration = Duration::from_micros(1);
/// Within a batch, the clock is read after every this many jobs...
const CHECK_EVERY: usize = 8;
/// ... and once the batch has run this long, the results so far go back.
const HAND_BACK_AFTER: Duration = Duration::from_micros(20);
/// [`SHORT_JOB`] when workers and loops share CPUs.
const SHARED_SHORT_JOB: Duration = Duration::from_micros(50);
/// [`HAND_BACK_AFTER`] when workers and loops share CPUs.
const SHARED_HAND_BACK_AFTER: Duration = Duration::from_micros(250);

/// How a pool's workers pace their claims (see "Pacing").
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pacing {
    /// A batch whose jobs averaged under this lets the next claim double.
    short_job: Duration,
    /// A batch that has run this long hands back what is done.
    hand_back_after: Duration,
}

impl Pacing {
    /// Each worker and each loop has a CPU of its own.
    pub(crate) const OWN_CPUS: Pacing = Pacing {
        short_job: SHORT_JOB,
        hand_back_after: HAND_BACK_AFTER,
    };
    /// Workers and loops share CPUs.
    pub(crate) const SHARED: Pacing = Pacing {
        short_job: SHARED_SHORT_JOB,
        hand_back_after: SHARED_HAND_BACK_AFTER,
    };
}

#[cfg(not(loom))]
std::thread_local! {
    /// The pool whose worker this thread is (its `PoolShared`'s address),
    /// or 0.
    static WORKER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `true` if this thread is one of `pool`'s workers.
#[cfg(not(loom))]
pub(crate) fn is_worker_of(pool: &PoolShared) -> bool {
    WORKER_OF.with(|w| w.get() == pool as *const PoolShared as usize)
}

/// A worker thread's body. Reports start-up (pinning, the mechanism's
/// per-thread setup) on `ready`, then serves jobs until the pool exits.
pub(crate) fn main(
    pool: Arc<PoolShared>,
    idx: usize,
    cpu: Option<usize>,
    nice: Option<i32>,
    ready: Sender<io::Result<()>>,
) {
    #[cfg(not(loom))]
    WORKER_OF.with(|w| w.set(Arc::as_ptr(&pool) as usize));
    let setup = (|| {
        if let Some(cpu) = cpu {
            sys::thread::pin_current(cpu)?;
        }
        if let Some(n) = nice {
            sys::thread::set_nice(n)?;
        }
        Worker::new(&pool.backend, idx)
    })();
    let mut worker = match setup {
        Ok(w) => w,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    // Allocated once: a claim takes at most `CLAIM_MAX` jobs.
    let mut batch = Batch {
        claimed: Vec::with_capacity(CLAIM_MAX),
        done: Vec::with_capacity(CLAIM_MAX),
        limit: 1,
    };
    while worker.next_batch(
        &pool.backend,
        &pool.workers,
        idx,
        batch.limit,
        &mut batch.claimed,
    ) {
        run(&pool, &mut worker, idx, &mut batch);
    }
    worker.retire(&pool.backend, idx);
    drop(worker); // closes the worker's own kernel objects, on its thread
    #[cfg(not(loom))]
    WORKER_OF.with(|w| w.set(0));
}

/// A worker's batch buffers (allocated once) and its claim limit.
struct Batch {
    /// Claimed and not yet run, in claim order.
    claimed: Vec<JobRef>,
    /// Run (or cancelled) and not yet handed back.
    done: Vec<JobRef>,
    /// How many jobs the next claim may take (see "Pacing").
    limit: usize,
}

/// Runs (or cancels) the claimed jobs, all of one loop, and hands their
/// results back (at the end, or in parts once the batch has run for the
/// pool's `hand_back_after`); sets the next claim's limit.
fn run(pool: &PoolShared, worker: &mut Worker, idx: usize, batch: &mut Batch) {
    let Some(first) = batch.claimed.first() else {
        return;
    };
    // SAFETY: `home` stays valid while any job of the batch is in flight,
    // and from the `senders` increment below until the matching decrement
    // (LoopShared's lifetime contract): the loop waits for both before
    // freeing it. Every job of a claim has the same home (one lane's).
    let home: &LoopShared = unsafe { first.header().home.as_ref() };
    home.senders.fetch_add(1, Relaxed);
    let stats = &pool.workers.slots[idx].stats;
    let pacing = pool.pacing;
    let n = batch.claimed.len();
    let start = Instant::now();
    let mut slow = false;
    // Start every cell's transfer from the loop's core at once.
    batch.claimed.iter().for_each(JobRef::prefetch);
    // Popped from the back: reverse first to run them in claim order.
    batch.claimed.reverse();
    while let Some(job) = batch.claimed.pop() {
        debug_assert!(std::ptr::eq(job.header().home.as_ptr(), home));
        if pool.cancel_queued && home.closing.load(Acquire) {
            job.cancel();
            bump(&stats.cancelled);
        } else {
            job.execute();
            bump(&stats.jobs);
        }
        // From here on the job's cell belongs to the loop.
        batch.done.push(job);
        if batch.done.len() % CHECK_EVERY == 0
            && !batch.claimed.is_empty()
            && start.elapsed() >= pacing.hand_back_after
        {
            slow = true;
            home.mailbox.deliver(home, worker, &mut batch.done, stats);
        }
    }
    // The jobs' time, not the hand-back's (a doorbell may be a system call:
    // counting it would make a batch of short jobs look slow).
    let ran = start.elapsed();
    home.mailbox.deliver(home, worker, &mut batch.done, stats);
    home.senders.fetch_sub(1, Release);
    // Only `home`'s shared part was touched after the deliveries.
    batch.limit = if slow || ran >= pacing.short_job * n as u32 {
        1
    } else {
        (batch.limit * 2).min(CLAIM_MAX)
    };
}
