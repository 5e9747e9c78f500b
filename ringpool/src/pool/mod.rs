//! The offload pool: workers, the job queue, and building and shutting down.

mod doorbell;
pub(crate) mod job;
mod loop_handle;
pub(crate) mod loop_shared;
pub(crate) mod park;
mod worker;

pub use loop_handle::{Completion, Completions, JobId, LoopHandle, LoopStats, POOL_CQ_RESERVE};

use crate::caps::Capabilities;
use crate::error::{Error, ErrorKind};
use crate::handoff::{self, Handoff, Selection};
use crate::sync::Ordering::{Acquire, Relaxed, Release, SeqCst};
use crate::sync::{lock, Arc, AtomicBool, AtomicU32, AtomicU64, Condvar, Mutex};
use crate::sys;
use crossbeam_queue::SegQueue;
use crossbeam_utils::CachePadded;
use io_uring::{opcode, squeue, types, IoUring};
use job::JobRef;
use park::Sleepers;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicI32;
use std::thread::JoinHandle;
use std::time::Duration;

/// How results are announced on the loop's ring.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Announce {
    /// One CQE announces every result that is ready (at most one
    /// announcement is outstanding per loop). The default.
    #[default]
    Batch,
    /// One CQE per job, carrying the job's slot: the answer's
    /// one-message-per-job form. Only `msg-ring` and `msg-ring-sync` can do
    /// it, and the loop's in-flight limit must then fit in its CQ.
    PerJob,
}

/// What happens to queued jobs when their loop closes (or the pool is
/// dropped while a loop still has jobs queued).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shutdown {
    /// Jobs not yet started are handed back as [`JobError::Cancelled`](crate::JobError::Cancelled); running
    /// ones finish. The default.
    #[default]
    Cancel,
    /// Every queued job still runs; closing waits for all of them.
    Drain,
}

/// Builds a [`Pool`].
///
/// # Examples
///
/// ```
/// use ringpool::{Handoff, Pool};
/// use std::time::Duration;
///
/// let pool = Pool::builder()
///     .workers(2)
///     .handoff(Handoff::Auto)
///     .spin(Duration::from_micros(20))
///     .build()?;
/// println!("running on {}", pool.selection());
/// # Ok::<(), ringpool::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    workers: Option<usize>,
    handoff: Handoff,
    announce: Announce,
    spin: Duration,
    loop_spin: Duration,
    poll_interval: Duration,
    pin: Option<Vec<usize>>,
    max_in_flight: usize,
    shutdown: Shutdown,
    name: String,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            workers: None,
            handoff: Handoff::Auto,
            announce: Announce::Batch,
            spin: Duration::from_micros(50),
            loop_spin: Duration::from_micros(20),
            poll_interval: Duration::from_micros(100),
            pin: None,
            max_in_flight: 1024,
            shutdown: Shutdown::Cancel,
            name: "ringpool-worker".into(),
        }
    }
}

impl PoolBuilder {
    /// Number of worker threads. Default: `std::thread::available_parallelism()`.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// The handoff mechanism (default [`Handoff::Auto`]). The environment
    /// variable `RINGPOOL_HANDOFF` overrides it.
    pub fn handoff(mut self, h: Handoff) -> Self {
        self.handoff = h;
        self
    }

    /// How results are announced (default [`Announce::Batch`]).
    pub fn announce(mut self, a: Announce) -> Self {
        self.announce = a;
        self
    }

    /// How long an idle worker spins on the job queue before it sleeps
    /// (default 50 µs; zero sleeps at once).
    pub fn spin(mut self, d: Duration) -> Self {
        self.spin = d;
        self
    }

    /// How long [`LoopHandle::submit_and_wait`] spins on the result queue,
    /// with announcements suppressed, before it enters the kernel (default
    /// 20 µs; zero never spins).
    pub fn loop_spin(mut self, d: Duration) -> Self {
        self.loop_spin = d;
        self
    }

    /// `condvar` backend only: the loop's bounded wait between polls of the
    /// result queue (default 100 µs).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Pins worker `i` to CPU `i % ncpu`.
    pub fn pin_workers(mut self, yes: bool) -> Self {
        self.pin = if yes {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            Some((0..n).collect())
        } else {
            None
        };
        self
    }

    /// Pins worker `i` to `cpus[i % cpus.len()]`.
    pub fn pin_to(mut self, cpus: &[usize]) -> Self {
        self.pin = Some(cpus.to_vec());
        self
    }

    /// Jobs one loop may have out at once (default 1024). A full loop's
    /// `try_submit` hands the job back.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// What happens to queued jobs when their loop closes (default [`Shutdown::Cancel`]).
    pub fn shutdown(mut self, s: Shutdown) -> Self {
        self.shutdown = s;
        self
    }

    /// Worker thread name prefix (default `ringpool-worker`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Probes the kernel, chooses the handoff, and starts the workers.
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::InvalidConfig`]: zero workers, a zero or huge in-flight
    ///   limit, an empty pin list, `Announce::PerJob` with a backend that
    ///   cannot do it, or an unparsable `RINGPOOL_HANDOFF`.
    /// * [`ErrorKind::Unsupported`]: the handoff asked for needs a kernel
    ///   feature this kernel lacks (with `Auto`, only if nothing at all works).
    /// * [`ErrorKind::Io`]: a ring, pipe or eventfd could not be created.
    /// * [`ErrorKind::Spawn`]: a worker thread could not be spawned (the
    ///   workers already started are stopped and joined first).
    pub fn build(self) -> Result<Pool, Error> {
        let workers = match self.workers {
            Some(0) => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "workers must be at least 1",
                ))
            }
            Some(n) if n > 4096 => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "workers must be at most 4096",
                ))
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.max_in_flight == 0 || self.max_in_flight > 1 << 20 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "max_in_flight must be in 1..=1048576, got {}",
                    self.max_in_flight
                ),
            ));
        }
        if self.pin.as_ref().is_some_and(|p| p.is_empty()) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "pin_to needs at least one CPU",
            ));
        }
        let selection = handoff::select(self.handoff, Capabilities::get())?;
        let h = selection.chosen;
        if self.announce == Announce::PerJob
            && !matches!(h, Handoff::MsgRing | Handoff::MsgRingSync)
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("Announce::PerJob needs msg-ring or msg-ring-sync, not {h}"),
            ));
        }
        let control = if h == Handoff::MsgRing {
            let ring =
                IoUring::new(64).map_err(|e| Error::io("cannot create the control ring", e))?;
            Some(Mutex::new(ring))
        } else {
            None
        };
        let jobs = match h {
            Handoff::Pipe => {
                let (r, w) =
                    sys::pipe::new().map_err(|e| Error::io("cannot create the job pipe", e))?;
                // Room for a full loop's worth of pointers; best effort.
                let _ = sys::pipe::set_size(&w, (self.max_in_flight * 8).max(4096));
                Jobs::Pipe {
                    rx: r,
                    tx: Mutex::new(Some(w)),
                }
            }
            Handoff::Condvar => Jobs::Locked {
                q: Mutex::new(VecDeque::new()),
                cv: Condvar::new(),
            },
            _ => Jobs::LockFree(SegQueue::new()),
        };
        let shared = Arc::new(PoolShared {
            handoff: h,
            announce: self.announce,
            jobs,
            sleepers: Sleepers::new(),
            workers: (0..workers).map(|_| WorkerSlot::default()).collect(),
            closed: AtomicBool::new(false),
            exit: AtomicBool::new(false),
            cancel_queued: self.shutdown == Shutdown::Cancel,
            worker_spin: self.spin,
            control,
        });
        let mut owner = PoolOwner {
            shared: shared.clone(),
            threads: Mutex::new(Vec::with_capacity(workers)),
            selection,
            config: LoopConfig {
                max_in_flight: self.max_in_flight,
                loop_spin: self.loop_spin,
                poll_interval: self.poll_interval,
            },
        };
        let (tx, rx) = std::sync::mpsc::channel::<Result<RawFd, std::io::Error>>();
        for idx in 0..workers {
            let shared = shared.clone();
            let tx = tx.clone();
            let cpu = self.pin.as_ref().map(|p| p[idx % p.len()]);
            let wq_fd = shared.control.as_ref().map(|c| lock(c).as_raw_fd());
            let spawned = sys::fault::check(sys::fault::Site::Spawn).and_then(|()| {
                std::thread::Builder::new()
                    .name(format!("{}-{idx}", self.name))
                    .spawn(move || worker_main(shared, idx, cpu, wq_fd, tx))
            });
            match spawned {
                Ok(t) => lock(&owner.threads).push(t),
                Err(e) => {
                    owner.stop();
                    return Err(Error::spawn(e));
                }
            }
        }
        drop(tx);
        for _ in 0..workers {
            match rx.recv() {
                Ok(Ok(fd)) => {
                    let _ = fd;
                }
                Ok(Err(e)) => {
                    owner.stop();
                    return Err(Error::io("a worker failed to start", e));
                }
                Err(_) => {
                    owner.stop();
                    return Err(Error::new(
                        ErrorKind::Spawn,
                        "a worker exited during start-up",
                    ));
                }
            }
        }
        Ok(Pool {
            owner: Arc::new(owner),
        })
    }
}

fn worker_main(
    pool: Arc<PoolShared>,
    idx: usize,
    cpu: Option<usize>,
    wq_fd: Option<RawFd>,
    ready: std::sync::mpsc::Sender<Result<RawFd, std::io::Error>>,
) {
    let setup = (|| {
        if let Some(cpu) = cpu {
            sys::thread::pin_current(cpu)?;
        }
        let ring = match wq_fd {
            Some(fd) => Some(worker::WorkerCtx::ring_for(fd)?),
            None => None,
        };
        Ok(ring)
    })();
    let ring = match setup {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let fd = ring.as_ref().map_or(-1, |r| r.as_raw_fd());
    pool.workers[idx].ring_fd.store(fd, Release);
    let _ = ready.send(Ok(fd));
    drop(ready);
    let mut ctx = worker::WorkerCtx { idx, ring };
    if pool.handoff == Handoff::Pipe {
        worker::run_pipe(&pool, &mut ctx);
    } else {
        worker::run(&pool, &mut ctx);
    }
    // Retire our ring fd under the control-ring lock, which `wake_direct`
    // holds from reading the fd to sending: no wake can then reach a ring
    // whose owner is gone (or a reused fd number). Loops cannot target it
    // either: they are all gone before `exit` is set.
    match &pool.control {
        Some(control) => {
            let _guard = lock(control);
            pool.workers[idx].ring_fd.store(-1, Release);
        }
        None => pool.workers[idx].ring_fd.store(-1, Release),
    }
    drop(ctx); // closes our ring, on its owner thread
}

/// The job queue, per backend family.
// One per loop/pool, and the big variant is the hot one: boxing it would add
// a pointer chase to every push and pop.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Jobs {
    LockFree(SegQueue<JobRef>),
    Locked {
        q: Mutex<VecDeque<JobRef>>,
        cv: Condvar,
    },
    Pipe {
        rx: OwnedFd,
        tx: Mutex<Option<OwnedFd>>,
    },
}

impl Jobs {
    pub(crate) fn push(&self, job: JobRef) {
        match self {
            Jobs::LockFree(q) => q.push(job),
            Jobs::Locked { q, cv } => {
                lock(q).push_back(job);
                cv.notify_one();
            }
            Jobs::Pipe { .. } => unreachable!("pipe jobs travel through the pipe"),
        }
    }

    pub(crate) fn pop(&self) -> Option<JobRef> {
        match self {
            Jobs::LockFree(q) => q.pop(),
            Jobs::Locked { q, .. } => lock(q).pop_front(),
            Jobs::Pipe { .. } => None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Jobs::LockFree(q) => q.is_empty(),
            Jobs::Locked { q, .. } => lock(q).is_empty(),
            Jobs::Pipe { .. } => true,
        }
    }

    /// Condvar backend: block until a job arrives (`Some`) or the pool exits
    /// with the queue empty (`None`).
    fn wait_locked(&self, exit: &AtomicBool) -> Option<JobRef> {
        let Jobs::Locked { q, cv } = self else {
            return None;
        };
        let mut g = lock(q);
        loop {
            if let Some(j) = g.pop_front() {
                return Some(j);
            }
            if exit.load(Acquire) {
                return None;
            }
            g = match cv.wait(g) {
                Ok(g) => g,
                Err(e) => e.into_inner(),
            };
        }
    }

    fn pipe_reader(&self) -> Option<&OwnedFd> {
        match self {
            Jobs::Pipe { rx, .. } => Some(rx),
            _ => None,
        }
    }

    /// The raw write end of the job pipe, for the loop's `IORING_OP_WRITE`s.
    pub(crate) fn pipe_writer_fd(&self) -> Option<RawFd> {
        match self {
            Jobs::Pipe { tx, .. } => lock(tx).as_ref().map(|f| f.as_raw_fd()),
            _ => None,
        }
    }
}

/// Per-worker counters (written by the worker only).
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

pub(crate) struct WorkerSlot {
    /// The park state word (`park::AWAKE`/`SLEEPING`/`NOTIFIED`), also the
    /// worker's futex.
    pub(crate) state: CachePadded<AtomicU32>,
    /// The worker's ring fd (msg-ring), or -1.
    pub(crate) ring_fd: AtomicI32,
    pub(crate) stats: WorkerStats,
}

impl Default for WorkerSlot {
    fn default() -> Self {
        WorkerSlot {
            state: CachePadded::new(AtomicU32::new(park::AWAKE)),
            ring_fd: AtomicI32::new(-1),
            stats: WorkerStats::default(),
        }
    }
}

/// What the workers share.
pub(crate) struct PoolShared {
    pub(crate) handoff: Handoff,
    pub(crate) announce: Announce,
    pub(crate) jobs: Jobs,
    pub(crate) sleepers: Sleepers,
    pub(crate) workers: Box<[WorkerSlot]>,
    /// No new jobs are accepted.
    pub(crate) closed: AtomicBool,
    /// Workers exit once the queue is empty (set only when no loop is left).
    pub(crate) exit: AtomicBool,
    pub(crate) cancel_queued: bool,
    pub(crate) worker_spin: Duration,
    /// msg-ring: a ring any thread may use (under the lock) to wake workers
    /// on cold paths; also the io-wq anchor the worker rings attach to.
    pub(crate) control: Option<Mutex<IoUring>>,
}

impl PoolShared {
    /// Wakes worker `idx` from any thread, without a loop ring: futex(2), or
    /// a MSG_RING from the control ring. Used on cold paths (shutdown, a
    /// loop dropped without its ring, a failed batched wake).
    pub(crate) fn wake_direct(&self, idx: usize) {
        let w = &self.workers[idx];
        match (&self.control, self.handoff) {
            (Some(control), Handoff::MsgRing) => {
                let mut ring = lock(control);
                let fd = w.ring_fd.load(Acquire);
                if fd < 0 {
                    return;
                }
                let sqe = opcode::MsgRingData::new(types::Fd(fd), 0, WORKER_WAKE, None)
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS);
                // SAFETY: a MSG_RING data SQE references no memory. The target
                // ring is open and its owner alive: a worker clears `ring_fd`
                // under this same lock before it closes its ring.
                // The worker is claimed and sleeps until this lands: retry
                // until the send succeeds (a failure posts a CQE, success none).
                let mut backoff = worker::Backoff::new();
                loop {
                    // SAFETY: as above.
                    let pushed = unsafe { ring.submission().push(&sqe) }.is_ok();
                    let sent = pushed && ring.submit().is_ok();
                    // Reap every CQE (not just up to the first failure).
                    let mut failed = false;
                    for c in ring.completion() {
                        failed |= c.result() < 0;
                    }
                    if sent && !failed {
                        break;
                    }
                    backoff.snooze();
                }
            }
            _ => {
                // The worker was claimed (NOTIFIED) and will sleep until this
                // wake lands: a failed wake must be retried, not dropped.
                let mut backoff = worker::Backoff::new();
                while sys::futex::wake(&w.state, 1).is_err() {
                    backoff.snooze();
                }
            }
        }
    }

    /// Claims and wakes up to `n` sleeping workers through [`Self::wake_direct`].
    pub(crate) fn wake_sleepers_direct(&self, n: usize) -> usize {
        if self.handoff == Handoff::Condvar {
            if let Jobs::Locked { cv, .. } = &self.jobs {
                cv.notify_all();
            }
            return 0;
        }
        self.sleepers
            .claim(self.workers.iter().map(|w| &*w.state), n, |i| {
                self.wake_direct(i)
            })
    }

    pub(crate) fn worker_states(&self) -> impl Iterator<Item = &AtomicU32> {
        self.workers.iter().map(|w| &*w.state)
    }
}

/// `user_data` of wake messages on a worker's ring.
pub(crate) const WORKER_WAKE: u64 = 2;

#[derive(Clone, Debug)]
pub(crate) struct LoopConfig {
    pub(crate) max_in_flight: usize,
    pub(crate) loop_spin: Duration,
    pub(crate) poll_interval: Duration,
}

/// Owns the threads; dropping the last reference stops and joins them.
pub(crate) struct PoolOwner {
    pub(crate) shared: Arc<PoolShared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) selection: Selection,
    pub(crate) config: LoopConfig,
}

impl PoolOwner {
    /// Stops and joins every worker. Called when no loop is left.
    fn stop(&mut self) {
        let s = &self.shared;
        s.closed.store(true, SeqCst);
        s.exit.store(true, SeqCst);
        if let Jobs::Pipe { tx, .. } = &s.jobs {
            drop(lock(tx).take()); // EOF for every worker blocked in read(2)
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        // Keep waking until everyone is out: a worker that was between its
        // last check and its sleep is caught by the next round.
        while threads.iter().any(|t| !t.is_finished()) {
            s.wake_sleepers_direct(usize::MAX);
            // A worker left NOTIFIED by a wake that never landed (a loop that
            // went away mid-flush) would sleep for ever: wake those too.
            for (i, w) in s.workers.iter().enumerate() {
                if w.state.load(Acquire) == park::NOTIFIED {
                    s.wake_direct(i);
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for PoolOwner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pool-wide counters, summed over the workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Jobs run (including ones that panicked).
    pub jobs_run: u64,
    /// Jobs cancelled at close without running.
    pub jobs_cancelled: u64,
    /// Times a worker went to sleep.
    pub parks: u64,
    /// Announcements sent to loops (one syscall each).
    pub doorbells_sent: u64,
    /// Results delivered without an announcement (the loop was already
    /// going to look).
    pub doorbells_skipped: u64,
    /// Failed sends (each retried).
    pub send_errors: u64,
    /// Failed or interrupted waits (each retried).
    pub wait_errors: u64,
}

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
        self.owner.shared.handoff
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
        self.owner.shared.workers.len()
    }

    /// Workers asleep right now (a snapshot).
    pub fn sleeping_workers(&self) -> usize {
        self.owner.shared.sleepers.count()
    }

    /// Stops accepting jobs: every `try_submit` from now on returns
    /// `Closed`. Jobs already submitted still complete (or are cancelled, per
    /// [`Shutdown`], when their loop closes); workers exit once the last loop
    /// and pool handle are dropped.
    pub fn shutdown(&self) {
        self.owner.shared.closed.store(true, SeqCst);
    }

    /// `true` after [`Pool::shutdown`].
    pub fn is_shut_down(&self) -> bool {
        self.owner.shared.closed.load(Acquire)
    }

    /// Counters summed over the workers.
    pub fn stats(&self) -> PoolStats {
        let mut s = PoolStats::default();
        for w in self.owner.shared.workers.iter() {
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

    /// Registers the event loop that owns `ring`; jobs it submits through
    /// the returned handle come back as completions on `ring`.
    ///
    /// Call it on the loop's thread (the handle is not `Send`). The ring may
    /// be built with any flags, including `SINGLE_ISSUER | DEFER_TASKRUN`; it
    /// must have `IORING_FEAT_NODROP` (5.5). The pool reserves `user_data`
    /// values whose top 16 bits are `0x5250` ([`is_pool_user_data`](crate::is_pool_user_data)).
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::InvalidConfig`]: the ring lacks NODROP, or with
    ///   `Announce::PerJob` the in-flight limit does not fit in its CQ.
    /// * [`ErrorKind::Io`]: the fd duplicate, eventfd or pipe could not be made.
    pub fn register<R: Send + 'static>(&self, ring: &mut IoUring) -> Result<LoopHandle<R>, Error> {
        LoopHandle::new(self.owner.clone(), ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        if std::env::var("RINGPOOL_HANDOFF").is_err() {
            let e = Pool::builder()
                .workers(1)
                .handoff(Handoff::Pipe)
                .announce(Announce::PerJob)
                .build()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
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
    }
}
