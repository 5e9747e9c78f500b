//! The worker sleep/wake protocol, shared by every backend whose workers
//! can sleep (`futex`, `msg-ring`, `msg-ring-sync`, `eventfd`).
//!
//! Each worker has a state word (`AWAKE`, `SLEEPING`, `NOTIFIED`) that is
//! also its futex word, and the pool counts sleepers. It is a Dekker
//! handshake:
//!
//! * worker: `sleepers += 1; state = SLEEPING` (SeqCst, then a SeqCst
//!   fence), then re-check the job queue; sleep only if it is still empty.
//! * loop: push jobs, `fence(SeqCst)`, then read `sleepers`; for each job
//!   that needs a worker, claim one by `CAS(SLEEPING → NOTIFIED)` and wake it.
//!
//! Either the worker sees the job or the loop sees the sleeper, so a job is
//! never left with every worker asleep. Only the claimer of a worker sends it
//! a wake, so at most one wake is in flight per sleep, and a wake is skipped
//! entirely while workers are awake or spinning. `tests/loom.rs` checks this
//! code exhaustively under `--cfg loom`.

use crate::sync::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};

/// The worker is running or spinning.
pub(crate) const AWAKE: u32 = 0;
/// The worker is asleep (or about to be) and must be woken for new work.
pub(crate) const SLEEPING: u32 = 1;
/// A waker claimed the worker; the wake is on its way.
pub(crate) const NOTIFIED: u32 = 2;

/// What [`Sleepers::prepare`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Sleep, then loop on [`still_sleeping`] around the wait primitive.
    Sleep,
    /// Work (or shutdown) appeared: do not sleep. `stale_wake` is true when a
    /// waker had already claimed this worker, so one spurious wake may still
    /// arrive later.
    Abort { stale_wake: bool },
}

/// The pool-wide count of sleeping workers.
#[derive(Default)]
pub(crate) struct Sleepers {
    count: AtomicUsize,
}

impl Sleepers {
    pub(crate) fn new() -> Sleepers {
        Sleepers {
            count: AtomicUsize::new(0),
        }
    }

    /// Worker side: announce the intent to sleep, then re-check for work.
    pub(crate) fn prepare(&self, me: &AtomicU32, has_work: impl FnOnce() -> bool) -> Prepared {
        // Count first, then become claimable: a claimer can only take a
        // worker that is already counted, so the count never drops below the
        // number of claimable sleepers (nor wraps).
        self.count.fetch_add(1, SeqCst);
        me.store(SLEEPING, SeqCst);
        fence(SeqCst);
        if !has_work() {
            return Prepared::Sleep;
        }
        if me.compare_exchange(SLEEPING, AWAKE, SeqCst, SeqCst).is_ok() {
            self.count.fetch_sub(1, SeqCst);
            Prepared::Abort { stale_wake: false }
        } else {
            // A waker claimed us between our announcement and the re-check;
            // it already took us out of the count and its wake will come.
            me.store(AWAKE, SeqCst);
            Prepared::Abort { stale_wake: true }
        }
    }

    /// Loop side: after pushing work, claim up to `want` sleeping workers,
    /// calling `wake(index)` for each one claimed. Returns how many.
    pub(crate) fn claim<'a>(
        &self,
        states: impl IntoIterator<Item = &'a AtomicU32>,
        want: usize,
        wake: impl FnMut(usize),
    ) -> usize {
        self.claim_skipping(states, want, |_| false, wake)
    }

    /// [`claim`](Sleepers::claim), passing over the sleepers for which
    /// `skip(index)` (called after the fence, so its `SeqCst` loads are
    /// ordered after the push) is true. Sound only if a skipped sleeper's
    /// job is sure to be taken by another worker: one that `skip` saw
    /// spinning on the queue, which either takes the job while it spins or,
    /// once it stops, re-checks the queue after its own `SeqCst` store and
    /// fence in [`prepare`](Sleepers::prepare) (the loop saw it still
    /// spinning, so its fence comes after the loop's in their total order,
    /// and its re-check sees the push).
    pub(crate) fn claim_skipping<'a>(
        &self,
        states: impl IntoIterator<Item = &'a AtomicU32>,
        want: usize,
        skip: impl Fn(usize) -> bool,
        mut wake: impl FnMut(usize),
    ) -> usize {
        if want == 0 {
            return 0;
        }
        fence(SeqCst);
        if self.count.load(SeqCst) == 0 {
            return 0;
        }
        let mut claimed = 0;
        for (i, s) in states.into_iter().enumerate() {
            if s.load(SeqCst) == SLEEPING
                && !skip(i)
                && s.compare_exchange(SLEEPING, NOTIFIED, SeqCst, SeqCst)
                    .is_ok()
            {
                self.count.fetch_sub(1, SeqCst);
                wake(i);
                claimed += 1;
                if claimed == want {
                    break;
                }
            }
        }
        claimed
    }

    /// Current number of sleepers (a hint; for stats and tests).
    pub(crate) fn count(&self) -> usize {
        self.count.load(SeqCst)
    }
}

/// Worker side, after its wait primitive returned: keep waiting while this
/// is true (spurious and stale wakes leave the state `SLEEPING`).
#[inline]
pub(crate) fn still_sleeping(me: &AtomicU32) -> bool {
    me.load(SeqCst) == SLEEPING
}

/// Worker side, once woken: back to work.
#[inline]
pub(crate) fn wake_up(me: &AtomicU32) {
    me.store(AWAKE, SeqCst);
}

/// A job queue, as a parking worker sees it. (`pub` only so that the loom
/// API can re-export it; the module is private.)
pub trait Queue {
    /// What the queue holds.
    type Job;

    /// Takes a job, if any.
    fn pop(&self) -> Option<Self::Job>;

    /// The emptiness check of the worker's re-check (a `SeqCst` read in
    /// every queue the pool uses).
    fn is_empty(&self) -> bool;
}

/// A parking worker's wait for its next job: pop; `spin` (for the pool's
/// budget: `true` if a job appeared); then announce the sleep, re-check, and
/// `block` until claimed. `parked` runs once per sleep (counters). Returns
/// `None` once `exit` is set and the queue is empty.
///
/// `block` returns whenever the state word may have changed (a wake, a
/// signal, a spurious return, an error it handled); the loop re-checks.
pub(crate) fn next_job<Q: Queue>(
    queue: &Q,
    sleepers: &Sleepers,
    me: &AtomicU32,
    exit: &AtomicBool,
    mut spin: impl FnMut() -> bool,
    mut block: impl FnMut(),
    mut parked: impl FnMut(),
) -> Option<Q::Job> {
    loop {
        if let Some(job) = queue.pop() {
            return Some(job);
        }
        if spin() {
            continue;
        }
        match sleepers.prepare(me, || !queue.is_empty() || exit.load(SeqCst)) {
            Prepared::Abort { .. } => {}
            Prepared::Sleep => {
                parked();
                while still_sleeping(me) {
                    block();
                }
                wake_up(me);
            }
        }
        if exit.load(SeqCst) && queue.is_empty() {
            return None;
        }
    }
}
