//! What the loop gets back: job ids, completions, and the handling of the
//! pool's CQEs that produce them.

use super::LoopHandle;
use crate::error::JobError;
use crate::handoff::dispatch::PoolCqe;
use crate::protocol::rings::CLAIM_MAX;
use crate::tag;
use io_uring::{cqueue, IoUring};

/// Identifies a submitted job; unique within its [`LoopHandle`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(u64);

impl JobId {
    pub(crate) fn new(id: u64) -> JobId {
        JobId(id)
    }

    /// The id as a number (0 for the first job of a handle, then 1, 2, ...).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A finished job: its id and its value (or why there is none).
#[derive(Debug)]
pub struct Completion<R> {
    /// What [`LoopHandle::try_submit`] returned for this job.
    pub id: JobId,
    /// The job's return value, or the panic / the cancelled job.
    pub result: Result<R, JobError<R>>,
}

/// Iterator over ready completions; see [`LoopHandle::completions`].
pub struct Completions<'a, R> {
    pub(super) lp: &'a mut LoopHandle<R>,
}

impl<R> Iterator for Completions<'_, R> {
    type Item = Completion<R>;

    fn next(&mut self) -> Option<Completion<R>> {
        self.lp.slots.pop_ready()
    }
}

impl<R> LoopHandle<R> {
    /// Reaps every CQE on `ring`: the pool's are handled, the others are
    /// passed to `on_io` in order. Returns the number of completions ready.
    pub fn reap(&mut self, ring: &mut IoUring, mut on_io: impl FnMut(cqueue::Entry)) -> usize {
        for cqe in ring.completion() {
            if !self.handle_cqe(&cqe) {
                on_io(cqe);
            }
        }
        self.drain_results();
        self.slots.ready()
    }

    /// Handles `cqe` if it is the pool's, returning `true`; returns `false`
    /// (and does nothing) for any other CQE.
    ///
    /// Results it announces become available from [`completions`](LoopHandle::completions).
    /// A CQE is never trusted: handed in twice, or forged with the pool's tag,
    /// it completes only jobs that are done (and counts in
    /// [`LoopStats::ignored_cqes`](crate::LoopStats::ignored_cqes) otherwise).
    pub fn handle_cqe(&mut self, cqe: &cqueue::Entry) -> bool {
        let Some((kind, reg, payload)) = tag::decode(cqe.user_data()) else {
            return false;
        };
        if reg != self.shared.reg {
            return false;
        }
        self.stats.pool_cqes += 1;
        let cqe = PoolCqe {
            kind,
            payload,
            res: cqe.result(),
            flags: cqe.flags(),
        };
        if kind == tag::Kind::Cancel {
            // `close`'s cancel of an armed request is done: once its CQE is
            // posted, no request it matched is armed any more (-ENOENT:
            // there was none, e.g. its CQE went to another handle's callback).
            if cqe.res >= 0 || cqe.res == -libc::ENOENT {
                if let Some(what) = tag::Kind::from_u8(payload as u8) {
                    self.side.cancelled(what);
                }
            }
            return true;
        }
        let pool = &self.owner.shared;
        let look = self.side.on_cqe(
            cqe,
            &pool.backend,
            &pool.workers,
            &mut self.slots,
            &mut self.stats,
        );
        if look {
            // A doorbell CQE (true or forged): the word is 0 after the ack,
            // so the loop no longer holds it.
            self.holding_doorbell = false;
            self.shared.doorbell.ack();
            self.drain_results();
        }
        true
    }

    /// Takes the completions that are ready, draining results the workers
    /// have published (no syscall).
    pub fn completions(&mut self) -> Completions<'_, R> {
        self.drain_results();
        Completions { lp: self }
    }

    /// Publishes the jobs queued since the last publish (see `try_submit`),
    /// and completes every result queued in the mailbox: a queue job's slot
    /// goes on the ready side (its outcome still in the cell), a task's
    /// job wakes the task.
    pub(super) fn drain_results(&mut self) {
        self.publish();
        // What a drain that unwound (a waker that panicked) had taken out.
        while let Some(job) = self.draining.pop() {
            self.slots.complete(job);
        }
        if let Some(results) = self.shared.mailbox.results() {
            // Taken one at a time, so a completion that unwinds leaves the
            // rest in the queue. Once there is one, the cells of the next
            // `PREFETCH_AHEAD` start coming from the workers' cores, and
            // each one taken then starts the transfer of the cell that far
            // behind it, so the loop rarely waits for a cell.
            let Some(mut job) = results.pop() else {
                return;
            };
            for ahead in 0..PREFETCH_AHEAD {
                results.prefetch(ahead);
            }
            loop {
                let slot = self.shared.cells.slot_of(&job);
                self.slots.complete_at(slot, job);
                match results.pop_prefetching(PREFETCH_AHEAD - 1) {
                    Some(next) => job = next,
                    None => return,
                }
            }
        }
        loop {
            if self.draining.is_empty() {
                // A run of up to a claim's size: start every cell's
                // transfer from the worker's core first, then complete
                // them in order.
                while self.draining.len() < CLAIM_MAX {
                    let Some(job) = self.shared.mailbox.pop() else {
                        break;
                    };
                    job.prefetch();
                    self.draining.push(job);
                }
                if self.draining.is_empty() {
                    return;
                }
                self.draining.reverse();
            }
            while let Some(job) = self.draining.pop() {
                self.slots.complete(job);
            }
        }
    }
}

/// How many results ahead of the one it completes the loop prefetches
/// cells. Short: with runs of 16 or 32 ahead the loop was 3-4% slower than
/// with 4 (in `spin`, a worker and the loop alternating 20 ms windows),
/// the far peeks reading result-ring lines that the worker is still
/// filling; with none at all it was 17% slower.
const PREFETCH_AHEAD: usize = 4;
