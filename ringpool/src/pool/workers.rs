//! What every backend knows about the workers: their park state words, the
//! sleeper count, their counters, and the exit flag.

use crate::protocol::park::{self, Sleepers};
use crate::stats::PoolStats;
use crate::sync::Ordering::{Acquire, Relaxed, SeqCst};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// Per-worker counters. Each is written by its worker only.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) jobs: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) doorbells: AtomicU64,
    pub(crate) doorbells_skipped: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) wait_errors: AtomicU64,
}

/// Adds one to a counter that only this worker writes: a plain load and
/// store, no locked instruction on the job path.
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Relaxed);
}

/// One worker as the others see it.
pub(crate) struct WorkerSlot {
    /// The park state word (`park::AWAKE`/`SLEEPING`/`NOTIFIED`), also the
    /// worker's futex.
    pub(crate) state: CachePadded<AtomicU32>,
    pub(crate) stats: WorkerStats,
    /// The CPU the worker is pinned to, if it is.
    pub(crate) cpu: Option<usize>,
    /// A loop thread registered while pinned to this worker's CPU alone:
    /// the worker does not spin (it would spin against that loop), and
    /// that loop wakes it only when no other worker is spinning.
    pub(crate) shares_loop_cpu: AtomicBool,
    /// Spinning on the job queue, idle (a hint for co-located loops; see
    /// `park::Sleepers::claim_skipping`). Written with `SeqCst` by the
    /// worker only around its spin.
    pub(crate) spinning: CachePadded<AtomicBool>,
}

/// The workers of one pool.
pub(crate) struct Workers {
    pub(crate) slots: Box<[WorkerSlot]>,
    /// How many workers are asleep (or about to be).
    pub(crate) sleepers: Sleepers,
    /// Workers exit once the job queue is empty (set only when no loop is left).
    pub(crate) exit: AtomicBool,
    /// How long an idle worker spins on the job queue before it sleeps.
    pub(crate) spin: Duration,
}

impl Workers {
    /// `n` workers, worker `i` pinned to `cpu(i)`.
    pub(crate) fn new(n: usize, spin: Duration, cpu: impl Fn(usize) -> Option<usize>) -> Workers {
        Workers {
            slots: (0..n)
                .map(|i| WorkerSlot {
                    state: CachePadded::new(AtomicU32::new(park::AWAKE)),
                    stats: WorkerStats::default(),
                    cpu: cpu(i),
                    shares_loop_cpu: AtomicBool::new(false),
                    spinning: CachePadded::new(AtomicBool::new(false)),
                })
                .collect(),
            sleepers: Sleepers::new(),
            exit: AtomicBool::new(false),
            spin,
        }
    }

    /// Marks the workers pinned to `cpu` as sharing it with a loop thread
    /// (for good: a later loop elsewhere does not undo it); returns their
    /// indices.
    pub(crate) fn colocate(&self, cpu: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, w) in self.slots.iter().enumerate() {
            if w.cpu == Some(cpu) {
                w.shares_loop_cpu.store(true, Relaxed);
                out.push(i);
            }
        }
        out
    }

    /// How long worker `idx` spins before it sleeps: not at all if it
    /// shares its CPU with a loop.
    pub(crate) fn spin_of(&self, idx: usize) -> Duration {
        if self.slots[idx].shares_loop_cpu.load(Relaxed) {
            Duration::ZERO
        } else {
            self.spin
        }
    }

    /// `true` if a worker not in `besides` is spinning on the job queue
    /// (`SeqCst` loads: see `park::Sleepers::claim_skipping`).
    pub(crate) fn other_spinning(&self, besides: &[usize]) -> bool {
        self.slots
            .iter()
            .enumerate()
            .any(|(i, w)| !besides.contains(&i) && w.spinning.load(SeqCst))
    }

    /// Every worker's park state word, in index order.
    pub(crate) fn states(&self) -> impl Iterator<Item = &AtomicU32> {
        self.slots.iter().map(|w| &*w.state)
    }

    /// `true` once the pool told its workers to exit.
    #[inline]
    pub(crate) fn exiting(&self) -> bool {
        self.exit.load(Acquire)
    }

    /// The counters, summed.
    pub(crate) fn stats(&self) -> PoolStats {
        let mut s = PoolStats::default();
        for w in self.slots.iter() {
            let w = &w.stats;
            s.jobs_run += w.jobs.load(Relaxed);
            s.jobs_cancelled += w.cancelled.load(Relaxed);
            s.parks += w.parks.load(Relaxed);
            s.doorbells_sent += w.doorbells.load(Relaxed);
            s.doorbells_skipped += w.doorbells_skipped.load(Relaxed);
            s.send_errors += w.send_errors.load(Relaxed);
            s.wait_errors += w.wait_errors.load(Relaxed);
        }
        s
    }
}
