//! What the workers and loops of one pool share, and stopping it.

use super::worker::Pacing;
use super::workers::Workers;
use crate::config::Announce;
use crate::handoff::PoolSide;
use crate::handoff::Selection;
use crate::protocol::park;
use crate::sync::Ordering::{Acquire, SeqCst};
use crate::sync::{lock, Arc, AtomicBool, AtomicU64, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the workers share.
pub(crate) struct PoolShared {
    /// The mechanism's pool side: the job queue, how workers are woken.
    pub(crate) backend: PoolSide,
    pub(crate) workers: Workers,
    /// How workers size their claims and hand-backs.
    pub(crate) pacing: Pacing,
    pub(crate) announce: Announce,
    /// The pool is shut down: no new jobs are accepted.
    pub(crate) shut_down: AtomicBool,
    /// `Shutdown::Cancel`: a closing loop's queued jobs are cancelled.
    pub(crate) cancel_queued: bool,
    /// Jobs that closing loops cancelled themselves (workers count theirs).
    pub(crate) cancelled_by_loops: AtomicU64,
}

impl PoolShared {
    /// Wakes worker `idx` (claimed by the caller) from any thread, without a
    /// loop ring. Used on cold paths: shutdown, a loop dropped without its
    /// ring, a failed batched wake.
    pub(crate) fn wake(&self, idx: usize) {
        self.backend.wake(&self.workers, idx)
    }

    /// Claims and wakes up to `n` sleeping workers through [`Self::wake`].
    pub(crate) fn wake_sleepers(&self, n: usize) -> usize {
        self.backend.wake_sleepers(&self.workers, n)
    }

    /// Wakes every worker that a waker claimed (NOTIFIED) but whose wake may
    /// never land: an SQE on a ring nobody submits, a loop that went away
    /// mid-flush. A worker that was woken already takes it as spurious.
    pub(crate) fn wake_claimed(&self) {
        for (i, w) in self.workers.slots.iter().enumerate() {
            if w.state.load(Acquire) == park::NOTIFIED {
                self.wake(i);
            }
        }
    }
}

/// What a loop handle takes from its pool's configuration.
#[derive(Clone, Debug)]
pub(crate) struct LoopConfig {
    pub(crate) max_in_flight: usize,
    pub(crate) loop_spin: Duration,
    pub(crate) poll_interval: Duration,
}

/// Owns the threads; dropping the last reference makes them exit and joins them.
pub(crate) struct PoolOwner {
    pub(crate) shared: Arc<PoolShared>,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) selection: Selection,
    pub(crate) config: LoopConfig,
}

impl PoolOwner {
    /// Tells every worker to exit, wakes them until they have, and joins
    /// them. Called when no loop is left.
    pub(crate) fn exit_workers(&mut self) {
        let s = &self.shared;
        s.shut_down.store(true, SeqCst);
        s.workers.exit.store(true, SeqCst);
        s.backend.release_workers();
        let threads = std::mem::take(&mut *lock(&self.threads));
        // Keep waking until everyone is out: a worker that was between its
        // last check and its sleep is caught by the next round.
        while threads.iter().any(|t| !t.is_finished()) {
            s.wake_sleepers(usize::MAX);
            s.wake_claimed();
            std::thread::sleep(Duration::from_micros(200));
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for PoolOwner {
    fn drop(&mut self) {
        self.exit_workers();
    }
}
