//! The worker thread: claim a batch of jobs, run them, hand their results
//! back together, and wait when there is nothing to do (how it waits is the
//! mechanism's).

use super::job::JobRef;
use super::loop_shared::LoopShared;
use super::shared::PoolShared;
use super::workers::bump;
use crate::handoff::Worker;
use crate::sync::Arc;
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sys;
use std::io;
use std::sync::mpsc::Sender;

/// A worker thread's body. Reports start-up (pinning, the mechanism's
/// per-thread setup) on `ready`, then serves jobs until the pool exits.
pub(crate) fn main(
    pool: Arc<PoolShared>,
    idx: usize,
    cpu: Option<usize>,
    nice: Option<i32>,
    ready: Sender<io::Result<()>>,
) {
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
    let mut batch = Vec::with_capacity(crate::protocol::rings::CLAIM_MAX);
    while worker.next_batch(&pool.backend, &pool.workers, idx, &mut batch) {
        run(&pool, &mut worker, idx, &mut batch);
    }
    worker.retire(&pool.backend, idx);
    drop(worker); // closes the worker's own kernel objects, on its thread
}

/// Runs (or cancels) a batch of jobs, all of one loop, and hands their
/// results back to it together (emptying `batch`).
fn run(pool: &PoolShared, worker: &mut Worker, idx: usize, batch: &mut Vec<JobRef>) {
    let Some(first) = batch.first() else {
        return;
    };
    // SAFETY: `home` stays valid while any job of the batch is in flight,
    // and from the `senders` increment below until the matching decrement
    // (LoopShared's lifetime contract): the loop waits for both before
    // freeing it. Every job of a batch has the same home (one lane's).
    let home: &LoopShared = unsafe { first.header().home.as_ref() };
    home.senders.fetch_add(1, Relaxed);
    let stats = &pool.workers.slots[idx].stats;
    for job in batch.iter() {
        debug_assert!(std::ptr::eq(job.header().home.as_ptr(), home));
        if pool.cancel_queued && home.closing.load(Acquire) {
            job.cancel();
            bump(&stats.cancelled);
        } else {
            job.execute();
            bump(&stats.jobs);
        }
    }
    // From here on the cells belong to the loop; only `home` may be touched.
    home.mailbox.deliver(home, worker, batch, stats);
    batch.clear();
    home.senders.fetch_sub(1, Release);
}
