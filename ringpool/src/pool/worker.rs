//! The worker thread: take a job, run it, hand its result back, and wait
//! when there is nothing to do (how it waits is the mechanism's).

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
    while let Some(job) = worker.next_job(&pool.backend, &pool.workers, idx) {
        run(&pool, &mut worker, idx, job);
    }
    worker.retire(&pool.backend, idx);
    drop(worker); // closes the worker's own kernel objects, on its thread
}

/// Runs (or cancels) one job and hands its result back to its loop.
fn run(pool: &PoolShared, worker: &mut Worker, idx: usize, job: JobRef) {
    let h = job.header();
    let slot = h.slot;
    // SAFETY: `home` stays valid while this job is in flight, and from the
    // `senders` increment below until the matching decrement (LoopShared's
    // lifetime contract): the loop waits for both before freeing it.
    let home: &LoopShared = unsafe { h.home.as_ref() };
    home.senders.fetch_add(1, Relaxed);
    let stats = &pool.workers.slots[idx].stats;
    if pool.cancel_queued && home.closing.load(Acquire) {
        job.cancel();
        bump(&stats.cancelled);
    } else {
        job.execute();
        bump(&stats.jobs);
    }
    // From here on the cell belongs to the loop; only `home` may be touched.
    home.mailbox.deliver(home, worker, job, slot, stats);
    home.senders.fetch_sub(1, Release);
}
