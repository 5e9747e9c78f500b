//! The loop's side: submit jobs, recognise the pool's CQEs, collect results.
//!
//! [`LoopHandle`] is split by job: [`slots`] (the in-flight table),
//! [`submit`] (submitting and flushing), [`wait`] (waiting on the ring),
//! [`completions`] (the pool's CQEs and what they produce), [`close`].

mod close;
mod completions;
mod slot_lists;
mod slots;
mod submit;
mod tasks;
mod wait;

pub use completions::{Completion, Completions, JobId};
pub(crate) use slots::Waking;
pub(crate) use tasks::TaskJob;
pub(crate) use wait::submit_until;

use crate::config::Announce;
use crate::error::{Error, ErrorKind};
use crate::handoff::dispatch::BackendConfig;
use crate::handoff::Handoff;
use crate::handoff::LoopSide;
use crate::pool::job::Slab;
use crate::pool::loop_shared::LoopShared;
use crate::pool::shared::PoolOwner;
use crate::protocol::doorbell::Doorbell;
use crate::stats::LoopStats;
use crate::sync::{AtomicBool, AtomicU32};
use crate::sys;
use crate::tag;
use crossbeam_utils::CachePadded;
use io_uring::IoUring;
use slots::Slots;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// CQ entries the pool may occupy on a loop's ring at once, beyond per-job
/// results: one announcement or armed doorbell SQE, a cancel, and error
/// CQEs of skipped-on-success SQEs.
pub const POOL_CQ_RESERVE: usize = 4;

/// The loop's handle on a [`Pool`](crate::Pool): submits jobs and turns the
/// pool's completions on the loop's ring back into results.
///
/// It is not `Send`: it belongs to the thread that owns the ring.
///
/// # The loop contract
///
/// 1. Wait through [`submit_and_wait`](LoopHandle::submit_and_wait), or call
///    [`flush`](LoopHandle::flush) right before entering the kernel yourself:
///    that is where wakes for new jobs and the doorbell's SQE go out, and
///    where a loop that was awake asks to be told of results again (while
///    it works, workers push results without a CQE). A loop that enters
///    the kernel itself without `flush` may sleep through its results. It
///    waits as [`wait_policy`](LoopHandle::wait_policy) says.
/// 2. Give every CQE to [`handle_cqe`](LoopHandle::handle_cqe) (or reap with
///    [`reap`](LoopHandle::reap)); it returns `false` for your own CQEs.
/// 3. Take results with [`completions`](LoopHandle::completions).
///
/// # Examples
///
/// ```
/// use io_uring::{opcode, types, IoUring};
/// use ringpool::Pool;
///
/// let pool = Pool::builder().workers(2).build()?;
/// let mut ring = IoUring::new(64)?;
/// let mut lp = pool.register::<u32>(&mut ring)?;
/// for i in 0..8u32 {
///     lp.try_submit(move || i * 2).unwrap();
/// }
/// // Your own I/O shares the ring: a 1 ms timeout, say.
/// let ts = types::Timespec::new().nsec(1_000_000);
/// let sqe = opcode::Timeout::new(&ts).build().user_data(7);
/// unsafe { ring.submission().push(&sqe)? };
/// let (mut sum, mut io) = (0, 0);
/// while lp.in_flight() > 0 || io == 0 {
///     lp.submit_and_wait(&mut ring, 1)?;
///     lp.reap(&mut ring, |cqe| { assert_eq!(cqe.user_data(), 7); io += 1 });
///     for c in lp.completions() {
///         sum += c.result.unwrap();
///     }
/// }
/// assert_eq!(sum, 56);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LoopHandle<R> {
    owner: Arc<PoolOwner>,
    shared: Arc<LoopShared>,
    /// The mechanism's loop side: what it arms, how it reacts to its CQEs.
    side: LoopSide,
    ring_fd: RawFd,
    /// The ring's owner is the crate (the runtime's `Core`, which keeps the
    /// ring and this handle together for their whole lives): every ring
    /// passed in is the registered one, so the kcmp identity check (one
    /// system call before each blocking wait) is skipped.
    ring_owned: bool,
    slots: Slots<R>,
    /// Jobs queued since the last wake round.
    pending_wake: usize,
    /// The workers pinned to the one CPU this loop's thread was pinned to
    /// at `register` (empty if it may run on several): they are woken only
    /// when no other worker is spinning, to take this loop's CPU only when
    /// the others are busy.
    colocated: Vec<usize>,
    /// SQEs queued that workers are waiting for (wakes, job writes): submit
    /// them before spinning.
    urgent: bool,
    /// The workers claimed in the current wake round (kept to reuse its
    /// allocation).
    claimed: Vec<usize>,
    loop_spin: Duration,
    /// The current spin budget, adapted between `loop_spin / 16` and `loop_spin`.
    spin_budget: Duration,
    /// The loop holds its doorbell (set it with [`Doorbell::claim`]): it is
    /// awake, and workers push results without announcing them. Taken by a
    /// wait's spin and kept while the loop works through what it found, so
    /// that the next batch's results cost no announcement (a system call on
    /// the worker, a kernel entry on the loop); given back
    /// ([`LoopHandle::release_doorbell`]) before anything that may sleep:
    /// a wait's sleep, `flush` (the caller's own wait follows), `close`.
    holding_doorbell: bool,
    stats: LoopStats,
    /// This handle queued wake SQEs (naming workers' futex words or ring
    /// fds) that it has not itself submitted since; the user may have (the
    /// loop contract). Dropped without its ring, it must then keep alive what
    /// they reference.
    unsubmitted_wakes: bool,
    /// The same, for the SQE that arms the mechanism's doorbell.
    unsubmitted_arm: bool,
    state: close::State,
    /// The loop's lane in the pool's job queue, until `close` gives it back.
    lane: Option<u32>,
    /// The same lane, pushed onto without the mechanism's dispatch, where
    /// its enqueue is a plain push ([`DirectLane`]); `None` with `lane`.
    direct: Option<DirectLane>,
    /// Task jobs (the runtime's `offload`) not yet in the pool's queue,
    /// where there is no direct lane: they go out together at the next
    /// flush, so that the mechanism's enqueue runs in one burst instead of
    /// between task polls. (On a direct lane a task job is pushed at once,
    /// unpublished until the flush: 1.2x the offloads/s of staging it, in a
    /// slow phase of the VM.)
    staged: Vec<crate::pool::job::JobRef>,
    /// Results taken from the mailbox and not yet completed, in reverse
    /// order (`drain_results` works through a run of them at a time). Kept
    /// here, not on the stack, so that a completion that unwinds (a waker
    /// that panics) loses none: the next drain completes them first.
    draining: Vec<crate::pool::job::JobRef>,
    _not_send: PhantomData<*const ()>,
}

/// A loop's lane in the pool's job queue, for a mechanism whose enqueue is
/// a push onto it that does nothing else ([`LoopSideOps::LANE_WAKES`]):
/// the handle pushes and publishes there itself, with no dispatch on the
/// mechanism per job.
///
/// [`LoopSideOps::LANE_WAKES`]: crate::handoff::dispatch::LoopSideOps::LANE_WAKES
#[derive(Clone, Copy)]
struct DirectLane {
    /// Points into the pool's job queue. Lanes are freed only when the
    /// queue is, with the pool's shared part, which the handle's `owner`
    /// keeps alive; and only this loop pushes on it until `close` gives
    /// the lane back (clearing this first).
    lane: NonNull<crate::protocol::rings::Lane>,
    /// What the mechanism's enqueue returns: a push may need a wake.
    wakes: bool,
}

impl<R: Send + 'static> LoopHandle<R> {
    pub(crate) fn new(owner: Arc<PoolOwner>, ring: &mut IoUring) -> Result<Self, Error> {
        let p = ring.params();
        if !p.is_feature_nodrop() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "the ring lacks IORING_FEAT_NODROP (Linux 5.5): completions could be dropped",
            ));
        }
        let cq_entries = p.cq_entries() as usize;
        let pool = &owner.shared;
        #[cfg(not(loom))]
        if crate::pool::worker::is_worker_of(pool) {
            return Err(Error::new(
                ErrorKind::OnOwnWorker,
                "a loop cannot be registered on a worker thread of its own pool: its waits \
                 for its jobs would wait for the thread they run on; give it another pool, \
                 or run it on a thread of its own",
            ));
        }
        let max = owner.config.max_in_flight;
        if pool.announce == Announce::PerJob && max + POOL_CQ_RESERVE > cq_entries {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "Announce::PerJob needs max_in_flight + {POOL_CQ_RESERVE} <= the ring's CQ \
                     entries, but max_in_flight is {max} and the CQ has {cq_entries}; lower \
                     max_in_flight or build the ring with a larger CQ (setup_cqsize)"
                ),
            ));
        }
        if !p.is_feature_ext_arg() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "the ring lacks IORING_FEAT_EXT_ARG (Linux 5.11): the pool's bounded waits \
                 (condvar's polling, every close) need timeouts on io_uring_enter",
            ));
        }
        let colocated = match sys::thread::allowed_cpus() {
            Ok(cpus) if cpus.len() == 1 => pool.workers.colocate(cpus[0]),
            _ => Vec::new(),
        };
        let ring_fd = ring.as_raw_fd();
        let dup = sys::dup_cloexec(ring_fd).map_err(|e| Error::io("cannot dup the ring fd", e))?;
        let cfg = BackendConfig {
            workers: pool.workers.slots.len(),
            max_in_flight: max,
            announce: pool.announce,
            poll_interval: owner.config.poll_interval,
        };
        let (side, mailbox) = LoopSide::register(&pool.backend, &cfg)?;
        let reg = tag::registry::take().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "65536 loop handles are live in this process; close one first",
            )
        })?;
        // The last step that takes something of the pool's: `close` gives
        // the lane back once every job of the loop is back.
        let lane = pool.backend.attach_lane();
        let direct = lane.and_then(|l| {
            let wakes = side.lane_wakes()?;
            let lane = NonNull::from(pool.backend.lane(l)?);
            Some(DirectLane { lane, wakes })
        });
        // The slab's cells name their home, the `LoopShared` being built.
        let shared = Arc::new_cyclic(|me: &Weak<LoopShared>| {
            let home = NonNull::new(me.as_ptr().cast_mut()).expect("an Arc is never null");
            LoopShared {
                doorbell: CachePadded::new(Doorbell::new()),
                senders: CachePadded::new(AtomicU32::new(0)),
                closing: AtomicBool::new(false),
                reg,
                ring: dup,
                mailbox,
                cells: Slab::new(max, home),
            }
        });
        Ok(LoopHandle {
            loop_spin: owner.config.loop_spin,
            spin_budget: owner.config.loop_spin,
            holding_doorbell: false,
            owner,
            shared,
            side,
            ring_fd,
            ring_owned: false,
            slots: Slots::new(max),
            pending_wake: 0,
            colocated,
            urgent: false,
            claimed: Vec::new(),
            stats: LoopStats::default(),
            unsubmitted_wakes: false,
            unsubmitted_arm: false,
            state: close::State::Open,
            lane,
            direct,
            staged: Vec::new(),
            draining: Vec::with_capacity(crate::protocol::rings::CLAIM_MAX),
            _not_send: PhantomData,
        })
    }
}

impl<R> LoopHandle<R> {
    /// The mechanism in use.
    pub fn handoff(&self) -> Handoff {
        self.owner.shared.backend.handoff()
    }

    /// Jobs submitted whose completion has not yet been produced.
    pub fn in_flight(&self) -> usize {
        self.slots.in_flight()
    }

    /// The in-flight limit.
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Completions waiting in [`completions`](LoopHandle::completions).
    pub fn ready(&self) -> usize {
        self.slots.ready()
    }

    /// This handle's counters.
    pub fn stats(&self) -> LoopStats {
        LoopStats {
            completed: self.slots.completed,
            ignored_cqes: self.slots.ignored,
            ..self.stats.clone()
        }
    }

    /// Cheap check on every call: `ring` has the fd number of the ring this
    /// handle was registered with.
    fn check_ring(&self, ring: &IoUring) -> io::Result<()> {
        if ring.as_raw_fd() != self.ring_fd {
            return Err(wrong_ring());
        }
        Ok(())
    }

    /// For the runtime, which owns both the ring and this handle and only
    /// ever passes that ring: waits skip the kcmp identity check (the fd
    /// number is still checked). Crate-private: a caller that could pass
    /// another ring must not skip it.
    pub(crate) fn ring_is_owned(&mut self) {
        self.ring_owned = true;
    }

    /// The full check, before every wait that can block and in `close`:
    /// `ring` is the very ring this handle was registered with, not a new
    /// one that reuses its fd number (`kcmp(KCMP_FILE)` against the
    /// handle's duplicate of the ring fd; one syscall, about a microsecond).
    fn check_ring_identity(&self, ring: &IoUring) -> io::Result<()> {
        self.check_ring(ring)?;
        if self.ring_owned {
            return Ok(());
        }
        match sys::same_file(ring.as_raw_fd(), self.shared.ring.as_raw_fd()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(wrong_ring()),
            // No kcmp (a kernel without CONFIG_KCMP): the fd check stands.
            Err(_) => Ok(()),
        }
    }
}

fn wrong_ring() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "ringpool: this LoopHandle was registered with a different ring",
    )
}

impl<R> std::fmt::Debug for LoopHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopHandle")
            .field("handoff", &self.handoff())
            .field("in_flight", &self.in_flight())
            .field("ready", &self.ready())
            .finish()
    }
}
