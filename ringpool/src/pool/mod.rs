//! The pool: its public handle, and (in submodules) its builder, the state
//! its threads share, and the worker thread.

mod builder;
pub(crate) mod job;
pub(crate) mod loop_shared;
pub(crate) mod shared;
pub(crate) mod worker;
pub(crate) mod workers;

pub use builder::PoolBuilder;

use crate::config::Announce;
use crate::error::Error;
use crate::handoff::{Handoff, Selection};
use crate::loop_handle::LoopHandle;
use crate::stats::PoolStats;
use crate::sync::Arc;
use crate::sync::Ordering::{Acquire, Relaxed, SeqCst};
use io_uring::IoUring;
use shared::PoolOwner;

/// A pool of worker threads for CPU-bound jobs whose results come back
/// through the submitting loop's io_uring.
///
/// Cheap to clone (all clones share the workers). Register each event loop
/// with [`Pool::register`]; the workers stop once the last `Pool` clone and
/// the last [`LoopHandle`] are gone.
///
/// # Examples
///
/// ```
/// use io_uring::IoUring;
/// use ringpool::Pool;
///
/// let pool = Pool::builder().workers(2).build()?;
/// let mut ring = IoUring::new(64)?;
/// let mut lp = pool.register::<u64>(&mut ring)?;
/// let id = lp.try_submit(|| (1..=20u64).product()).unwrap();
/// let done = loop {
///     lp.submit_and_wait(&mut ring, 1)?;
///     lp.reap(&mut ring, |_io_cqe| {});
///     if let Some(c) = lp.completions().next() {
///         break c;
///     }
/// };
/// assert_eq!(done.id, id);
/// assert_eq!(done.result.unwrap(), 2432902008176640000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Pool {
    pub(crate) owner: Arc<PoolOwner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("handoff", &self.handoff())
            .field("workers", &self.workers())
            .finish()
    }
}

impl Pool {
    /// A pool with every default: one worker per core, `Handoff::Auto`.
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    pub fn new() -> Result<Pool, Error> {
        PoolBuilder::default().build()
    }

    /// Starts configuring a pool.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The mechanism in use.
    pub fn handoff(&self) -> Handoff {
        self.owner.shared.backend.handoff()
    }

    /// How the mechanism was chosen, and what `Auto` passed over and why.
    pub fn selection(&self) -> &Selection {
        &self.owner.selection
    }

    /// How results are announced.
    pub fn announce(&self) -> Announce {
        self.owner.shared.announce
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.owner.shared.workers.slots.len()
    }

    /// Workers asleep right now (a snapshot).
    pub fn sleeping_workers(&self) -> usize {
        self.owner.shared.workers.sleepers.count()
    }

    /// Stops accepting jobs: every `try_submit` from now on returns
    /// `Closed`. Jobs already submitted still complete (or are cancelled, per
    /// [`Shutdown`](crate::Shutdown), when their loop closes); workers exit once the last loop
    /// and pool handle are dropped.
    pub fn shutdown(&self) {
        self.owner.shared.shut_down.store(true, SeqCst);
    }

    /// `true` after [`Pool::shutdown`].
    pub fn is_shut_down(&self) -> bool {
        self.owner.shared.shut_down.load(Acquire)
    }

    /// Counters summed over the workers.
    pub fn stats(&self) -> PoolStats {
        let shared = &self.owner.shared;
        let mut s = shared.workers.stats();
        s.jobs_cancelled += shared.cancelled_by_loops.load(Relaxed);
        s
    }

    /// Registers the event loop that owns `ring`; jobs it submits through
    /// the returned handle come back as completions on `ring`. Any number of
    /// handles may share one ring (their `user_data` tags never collide).
    ///
    /// Call it on the loop's thread (the handle is not `Send`). The ring may
    /// be built with any flags, including `SINGLE_ISSUER | DEFER_TASKRUN`; it
    /// must have `IORING_FEAT_NODROP` (5.5) and `IORING_FEAT_EXT_ARG` (5.11).
    /// The pool reserves `user_data`
    /// values whose top 16 bits are `0x5250` ([`is_pool_user_data`](crate::is_pool_user_data)).
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig): the ring lacks NODROP or EXT_ARG; with
    ///   `Announce::PerJob` the in-flight limit does not fit in its CQ; 65536
    ///   handles are live already.
    /// * [`ErrorKind::OnOwnWorker`](crate::ErrorKind::OnOwnWorker): called from a job, on one of
    ///   this pool's own workers (the loop would wait for the thread it runs on).
    /// * [`ErrorKind::Io`](crate::ErrorKind::Io): the fd duplicate, eventfd or pipe could not be made.
    pub fn register<R: Send + 'static>(&self, ring: &mut IoUring) -> Result<LoopHandle<R>, Error> {
        LoopHandle::new(self.owner.clone(), ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn bad_configs_are_typed_errors() {
        let e = Pool::builder().workers(0).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let e = Pool::builder()
            .workers(1)
            .max_in_flight(0)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let e = Pool::builder().workers(1).pin_to(&[]).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let e = Pool::builder()
            .workers(1)
            .stack_size(4096)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("stack_size"), "{e}");
        // Per-job announcements: only the MSG_RING mechanisms can do them.
        for h in Handoff::ALL {
            let expected = matches!(h, Handoff::MsgRing | Handoff::MsgRingSync);
            assert_eq!(h.supports_per_job(), expected, "{h}");
        }
        // RINGPOOL_HANDOFF may force another mechanism; either way the
        // outcome is checked.
        match Pool::builder()
            .workers(1)
            .handoff(Handoff::Pipe)
            .announce(Announce::PerJob)
            .build()
        {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidConfig);
                assert!(e.to_string().contains("PerJob"), "{e}");
            }
            Ok(pool) => assert!(pool.handoff().supports_per_job(), "{}", pool.handoff()),
        }
    }

    #[test]
    fn pinning_to_a_missing_cpu_fails_cleanly() {
        let e = Pool::builder()
            .workers(2)
            .pin_to(&[100_000])
            .build()
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Io), "{e}");
        assert!(e.to_string().contains("CPU 100000"), "{e}");
    }
}
