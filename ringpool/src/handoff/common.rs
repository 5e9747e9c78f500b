//! Pieces several backends share: the lock-free job lanes and result queues, the
//! worker's spin-then-park loop, futex wakes, and result delivery with a
//! doorbell. Jobs move in batches: a loop publishes its lane once per flush,
//! a worker claims several jobs with one CAS and hands all their results
//! back with one reservation and one doorbell check.

use super::caps::Capabilities;
use super::dispatch::{BackendConfig, MailboxOps, PoolCqe, PoolSideOps, Sink, WorkerOps};
use crate::backoff::Backoff;
use crate::config::Announce;
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{bump, WorkerStats, Workers};
use crate::protocol::{park, rings};
use crate::stats::LoopStats;
use crate::sync::Ordering::{Acquire, Relaxed, Release, SeqCst};
use crate::sync::{lock, AtomicPtr, AtomicU32, AtomicUsize, Mutex};
use crate::sys;
use crate::tag::{self, Kind};
use io_uring::{squeue, IoUring};
use std::cell::{Cell, RefCell};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// The pool's job queue for every backend but `pipe` and `condvar`: one
/// bounded lock-free *lane* per registered loop (a single-producer,
/// multi-consumer [`rings::Lane`] with room for `max_in_flight` jobs, which
/// a loop's pushes can never fill), in a table the workers scan. The loop
/// pushes jobs unpublished and publishes them once per batch
/// ([`JobQueue::publish`], at its flush); a worker claims up to its share
/// of a lane's jobs with one CAS ([`JobQueue::claim`]). Nothing is
/// allocated per job: a lane is made when a loop registers and no free lane
/// is left, and kept (for the next loop) when its loop closes.
///
/// # Lifetimes
///
/// Lanes belong to the pool, not to loops: once made, a lane lives until the
/// `JobQueue` is dropped (with the pool's shared part, after every worker
/// has exited). So a worker may look at any lane below [`JobQueue::len`] at
/// any time, and never touches a loop's shared part through the table.
/// A lane is handed to a new loop only once it is empty: its old loop
/// detaches it after every one of its jobs is back (`close`'s quiescence),
/// and every job leaves its lane before it runs or is cancelled. A worker
/// that scans a lane while it changes hands just finds the new loop's jobs,
/// each a valid `JobRef`.
///
/// # The park protocol
///
/// The worker's re-check (`is_empty`) runs after its sleeper-count
/// increment and the `fence(SeqCst)` of `Sleepers::prepare`, and loads
/// `len` and then each lane's head and tail. A loop's lane was published by
/// a `SeqCst` store of `len` at `register` (on the loop's thread), before
/// any of its publishes (a `Release` store of the lane's tail), which
/// precede the `fence(SeqCst)` of `Sleepers::claim` and its read of the
/// count. The two
/// fences are totally ordered: if the worker's is first, the loop's count
/// read sees the worker's increment (it wakes the sleeper); if the loop's is
/// first, the worker's loads see the new `len` and the pushed tail (it does
/// not sleep). `tests/loom.rs` (`park_sees_a_new_lane`) checks this on the
/// real `park::next_job`.
pub(crate) struct JobQueue {
    /// Chunk `k` holds lanes `2^k - 1 .. 2^(k+1) - 1`: a leaked
    /// `Box<[AtomicPtr<Lane>]>` of `2^k` pointers, null until made.
    chunks: [AtomicPtr<AtomicPtr<Lane>>; CHUNKS],
    /// Lanes `0..len` exist (their pointers are set before `len` covers
    /// them).
    len: AtomicUsize,
    /// Lanes made but attached to no loop; making lanes. Taken at `register`
    /// and `close` only.
    free: Mutex<Vec<u32>>,
    /// Each lane's capacity: the loops' in-flight limit.
    capacity: usize,
}

/// One loop's queued jobs: job pointers ([`JobRef::into_addr`]).
type Lane = rings::Lane;

/// Chunks of lanes: room for `2^CHUNKS - 1` lanes, more than the 65536
/// loop handles a process can have.
const CHUNKS: usize = 17;

/// The chunk and index in it of lane `i`.
#[inline]
fn locate(i: usize) -> (usize, usize) {
    let k = (i + 1).ilog2() as usize;
    (k, i + 1 - (1 << k))
}

impl JobQueue {
    /// An empty table; each lane made later holds `capacity` jobs.
    pub(crate) fn new(capacity: usize) -> JobQueue {
        JobQueue {
            chunks: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            len: AtomicUsize::new(0),
            free: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }

    /// Lanes that exist.
    #[inline]
    fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    /// Lane `i`, which must be below [`JobQueue::len`].
    #[inline]
    fn lane(&self, i: usize) -> &Lane {
        let (k, j) = locate(i);
        let chunk = self.chunks[k].load(Acquire);
        // SAFETY: `i < len`, and lane `i`'s chunk and lane pointers were
        // stored before `len` was raised past it (SeqCst store, which our
        // SeqCst or Acquire load of `len` synchronizes with), so both are
        // set; `j < 2^k`, the chunk's length. Chunks and lanes are freed
        // only when the queue is dropped, which outlives every `&self`.
        unsafe {
            let lane = (*chunk.add(j)).load(Acquire);
            &*lane
        }
    }

    /// Lane `lane`, as [`JobQueue::attach`] gave it out.
    ///
    /// # Panics
    ///
    /// If no such lane was ever made.
    pub(crate) fn lane_of(&self, lane: u32) -> &Lane {
        assert!((lane as usize) < self.len(), "lane {lane} was never made");
        self.lane(lane as usize)
    }

    /// `register`: a lane for a new loop: a free one (empty), or a new one.
    pub(crate) fn attach(&self) -> u32 {
        let mut free = lock(&self.free);
        if let Some(lane) = free.pop() {
            return lane;
        }
        let i = self.len.load(Relaxed); // only changed under `free`'s lock
        let (k, j) = locate(i);
        assert!(k < CHUNKS, "ringpool: too many loops");
        let mut chunk = self.chunks[k].load(Acquire);
        if chunk.is_null() {
            let fresh: Box<[AtomicPtr<Lane>]> = (0..1usize << k)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect();
            chunk = Box::leak(fresh).as_mut_ptr();
            self.chunks[k].store(chunk, Release);
        }
        let lane = Box::into_raw(Box::new(Lane::new(self.capacity)));
        // SAFETY: `j < 2^k`, the chunk's length; the chunk lives until drop.
        unsafe { (*chunk.add(j)).store(lane, Release) };
        // Publishes the lane to the workers (see "The park protocol").
        self.len.store(i + 1, SeqCst);
        u32::try_from(i).expect("fewer than 2^CHUNKS lanes")
    }

    /// `close`, once every job of the lane's loop is back (so the lane is
    /// empty): the lane may serve another loop.
    pub(crate) fn detach(&self, lane: u32) {
        debug_assert!(self.lane(lane as usize).is_empty());
        lock(&self.free).push(lane);
    }

    /// Queues `job` on `lane` (its loop's), unpublished until the loop's
    /// next [`JobQueue::publish`] (its flush).
    #[inline]
    pub(crate) fn push(&self, job: JobRef, lane: Option<u32>) {
        let lane = lane.expect("an open loop of a lane mechanism has a lane");
        // The lane's only producer is its loop, on this thread.
        self.lane(lane as usize).push(job.into_addr());
    }

    /// Makes every job pushed on `lane` visible to the workers: one
    /// `Release` store. The loop calls it before it decides which sleeping
    /// workers to wake (the park protocol's order).
    #[inline]
    pub(crate) fn publish(&self, lane: u32) {
        self.lane(lane as usize).publish();
    }

    /// Claims up to `limit` (capped at [`rings::CLAIM_MAX`]) published jobs
    /// of one lane, and at most a `1/share` part of what it holds (so that a
    /// burst spreads over `share` workers), scanning from lane `*cursor` and
    /// leaving `*cursor` just past the lane it took from (round robin, so
    /// that no loop's jobs wait behind another's). The jobs go to `out`, all
    /// of one loop. Returns `false` if no lane had a job.
    #[inline]
    pub(crate) fn claim(
        &self,
        cursor: &mut usize,
        limit: usize,
        share: usize,
        out: &mut Vec<JobRef>,
    ) -> bool {
        let n = self.len();
        let mut i = if *cursor < n { *cursor } else { 0 };
        for _ in 0..n {
            let lane = self.lane(i);
            i += 1;
            if i == n {
                i = 0;
            }
            let took = lane.claim(limit.min(rings::CLAIM_MAX), share, |a| {
                // SAFETY: every entry of a lane is a `JobRef::into_addr`
                // pushed once by its loop, and a successful claim hands
                // each entry to exactly one claimer: ownership arrives
                // exactly once.
                out.push(unsafe { JobRef::from_addr(a) })
            });
            if took > 0 {
                *cursor = i;
                return true;
            }
        }
        false
    }

    /// No lane holds a published job (`SeqCst` loads throughout: the park
    /// protocol's re-check).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        (0..self.len()).all(|i| self.lane(i).is_empty())
    }

    /// Takes every job pushed on `lane`, published or not (a closing loop's
    /// own: only its loop pushes there, and this is its thread).
    pub(crate) fn take_lane(&self, lane: u32) -> Vec<JobRef> {
        let lane = self.lane(lane as usize);
        lane.publish();
        let mut jobs = Vec::new();
        while lane.claim(usize::MAX, 1, |a| {
            // SAFETY: each entry is a `JobRef::into_addr` its loop pushed
            // once, and the claim hands it to this caller alone.
            jobs.push(unsafe { JobRef::from_addr(a) })
        }) > 0
        {}
        jobs
    }
}

impl Drop for JobQueue {
    fn drop(&mut self) {
        let n = *self.len.get_mut();
        for i in 0..n {
            let (k, j) = locate(i);
            let chunk = *self.chunks[k].get_mut();
            // SAFETY: lanes below `len` were made by `attach` with
            // `Box::into_raw`, and are freed once, here; nothing else can
            // reach them now (`&mut self`). Their jobs, if any (none: every
            // loop is gone), are plain pointers with nothing to drop.
            unsafe { drop(Box::from_raw((*chunk.add(j)).load(Relaxed))) };
        }
        for (k, c) in self.chunks.iter_mut().enumerate() {
            let chunk = *c.get_mut();
            if !chunk.is_null() {
                let fresh = std::ptr::slice_from_raw_parts_mut(chunk, 1usize << k);
                // SAFETY: leaked by `attach` from a `Box<[_]>` of `2^k`
                // pointers; freed once, here.
                unsafe { drop(Box::from_raw(fresh)) };
            }
        }
    }
}

/// A worker's view of the job queue for [`park::next_job`]: its scan
/// cursor, its share of a burst, and where its claims go.
struct Scan<'a> {
    jobs: &'a JobQueue,
    cursor: Cell<usize>,
    limit: usize,
    share: usize,
    out: RefCell<&'a mut Vec<JobRef>>,
}

impl park::Queue for Scan<'_> {
    /// A claim put jobs into the worker's batch.
    type Job = ();

    fn pop(&self) -> Option<()> {
        let mut c = self.cursor.get();
        let took = self
            .jobs
            .claim(&mut c, self.limit, self.share, &mut self.out.borrow_mut());
        self.cursor.set(c);
        took.then_some(())
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// A loop's result queue: a [`rings::ResultRing`] (multi-producer: the
/// workers; single consumer: the loop) with room for the loop's in-flight
/// limit, so a push never finds it full. A worker pushes a whole batch with
/// one reservation.
pub(crate) struct ResultQueue(rings::ResultRing);

impl ResultQueue {
    pub(crate) fn new(capacity: usize) -> ResultQueue {
        ResultQueue(rings::ResultRing::new(capacity))
    }

    /// Worker side: queues every job of `jobs` (all of this queue's loop,
    /// their final states published) and empties `jobs`.
    #[inline]
    pub(crate) fn push_all(&self, jobs: &mut Vec<JobRef>) {
        let mut addrs = [0usize; rings::CLAIM_MAX];
        for chunk in jobs.chunks(rings::CLAIM_MAX) {
            for (a, job) in addrs.iter_mut().zip(chunk) {
                *a = job.addr();
            }
            self.0.push_all(&addrs[..chunk.len()]);
        }
        // The refs moved into the ring (a `JobRef` has nothing to drop).
        jobs.clear();
    }

    /// Loop side: asks the CPU to start loading the cell of the result
    /// `ahead` places after the next one, if it is there: called once per
    /// result taken, it keeps that many cells' transfers from the workers'
    /// cores in flight ahead of the loop. A hint: the cell is not touched.
    #[inline]
    pub(crate) fn prefetch(&self, ahead: usize) {
        if let Some(addr) = self.0.peek(ahead) {
            crate::pool::job::prefetch_cell(addr);
        }
    }

    /// Loop side: [`pop`](Self::pop), then [`prefetch`](Self::prefetch)
    /// `ahead` places after the result taken (with one read of the head).
    #[inline]
    pub(crate) fn pop_prefetching(&self, ahead: usize) -> Option<JobRef> {
        let (v, next) = self.0.pop_peeking(ahead)?;
        if let Some(addr) = next {
            crate::pool::job::prefetch_cell(addr);
        }
        // SAFETY: every entry is a `JobRef` a worker moved in with
        // `push_all`, and the ring hands each entry out once, to the loop.
        Some(unsafe { JobRef::from_addr(v) })
    }

    /// Loop side: the next result, if it is there.
    #[inline]
    pub(crate) fn pop(&self) -> Option<JobRef> {
        // SAFETY: every entry is a `JobRef` a worker moved in with
        // `push_all`, and the ring hands each entry out once, to the loop.
        self.0.pop().map(|a| unsafe { JobRef::from_addr(a) })
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Spins until `seen()` or `budget` runs out; `true` if `seen()` did.
pub(crate) fn spin_for(budget: Duration, seen: impl Fn() -> bool) -> bool {
    if budget.is_zero() {
        return false;
    }
    let deadline = Instant::now() + budget;
    loop {
        for _ in 0..64 {
            if seen() {
                return true;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// A worker's wait for its next jobs, for the backends whose workers park
/// (`msg-ring`, `msg-ring-sync`, `eventfd`, `futex`): the park protocol's
/// loop ([`park::next_job`]), spinning for the pool's budget first, with
/// `wait` as the primitive that blocks until the state word may have
/// changed. `cursor` is the worker's own scan position in the queue's lanes.
/// The claimed jobs (at most `limit`, all of one loop) go to `out`; `false`
/// once the pool exits with the queue empty.
pub(crate) fn next_batch_parked(
    jobs: &JobQueue,
    cursor: &mut usize,
    workers: &Workers,
    idx: usize,
    limit: usize,
    out: &mut Vec<JobRef>,
    mut wait: impl FnMut(&AtomicU32) -> io::Result<()>,
) -> bool {
    let me = &*workers.slots[idx].state;
    let stats = &workers.slots[idx].stats;
    let scan = Scan {
        jobs,
        cursor: Cell::new(*cursor),
        limit,
        share: workers.slots.len(),
        out: RefCell::new(out),
    };
    let got = park::next_job(
        &scan,
        &workers.sleepers,
        me,
        &workers.exit,
        || {
            let budget = workers.spin_of(idx);
            if budget.is_zero() {
                return false;
            }
            let spinning = &workers.slots[idx].spinning;
            spinning.store(true, SeqCst);
            let seen = spin_for(budget, || !jobs.is_empty());
            spinning.store(false, SeqCst);
            seen
        },
        || {
            if wait(me).is_err() {
                // EINTR and injected faults: count it and back off briefly;
                // the state word is re-checked, so nothing is lost.
                bump(&stats.wait_errors);
                std::thread::sleep(Duration::from_micros(50));
            }
        },
        || bump(&stats.parks),
    );
    *cursor = scan.cursor.get();
    got.is_some()
}

/// Sleeps on the worker's own state word with futex(2).
pub(crate) fn futex_wait(me: &AtomicU32) -> io::Result<()> {
    sys::futex::wait(me, park::SLEEPING)
}

/// Wakes worker `idx` with futex(2). The worker was claimed (NOTIFIED) and
/// sleeps until this wake lands, so a failed wake is retried, not dropped.
pub(crate) fn wake_futex(workers: &Workers, idx: usize) {
    let mut backoff = Backoff::new();
    while sys::futex::wake(&workers.slots[idx].state, 1).is_err() {
        backoff.snooze();
    }
}

/// Worker side, batched announcements: queue the results (all of `home`'s),
/// then announce with `send` only if this worker flipped the doorbell (at
/// most one announcement in flight per loop; see `protocol::doorbell`): one
/// reservation and one doorbell check per batch.
#[inline]
pub(crate) fn deliver_batched(
    results: &ResultQueue,
    home: &LoopShared,
    jobs: &mut Vec<JobRef>,
    stats: &WorkerStats,
    mut send: impl FnMut(u64) -> io::Result<()>,
) {
    results.push_all(jobs);
    if !home.closing.load(Acquire) && home.doorbell.should_ring() {
        let ud = tag::encode(Kind::Doorbell, home.reg, 0);
        bump(&stats.doorbells);
        if !send_with_retry(home, stats, || send(ud)) {
            home.doorbell.unring();
        }
    } else {
        bump(&stats.doorbells_skipped);
    }
}

/// Worker side, `Announce::PerJob`: one CQE per job naming its slot. The
/// jobs' final states are already published; a closing loop polls them, so
/// no message is sent then.
pub(crate) fn deliver_per_job(
    home: &LoopShared,
    jobs: &mut Vec<JobRef>,
    stats: &WorkerStats,
    mut send: impl FnMut(u64) -> io::Result<()>,
) {
    for job in jobs.drain(..) {
        // `slot` never changes, and the slab is alive while this worker
        // delivers (`senders`), even if the loop already reused the cell.
        let ud = tag::encode(Kind::Result, home.reg, job.header().slot);
        if !home.closing.load(Acquire) {
            send_with_retry(home, stats, || send(ud));
        }
    }
}

/// Retries `send` with backoff (EINTR, ENOMEM, injected faults) until it
/// succeeds or `home` starts closing (its `close` collects results itself).
/// Returns `false` only in the latter case.
fn send_with_retry(
    home: &LoopShared,
    stats: &WorkerStats,
    mut send: impl FnMut() -> io::Result<()>,
) -> bool {
    let mut backoff = Backoff::new();
    loop {
        if home.closing.load(Acquire) {
            return false;
        }
        match send() {
            Ok(()) => return true,
            Err(_) => {
                bump(&stats.send_errors);
                backoff.snooze();
            }
        }
    }
}

/// Pushes `sqe` onto `ring`, submitting to make room if the SQ is full.
///
/// # Safety
///
/// Whatever memory `sqe` references must stay valid until its CQE is reaped.
pub(crate) unsafe fn push_sqe(
    ring: &mut IoUring,
    sqe: &squeue::Entry,
    stats: &mut LoopStats,
) -> io::Result<()> {
    loop {
        // SAFETY: the memory `sqe` references outlives its CQE: our
        // caller's obligation, forwarded.
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            return Ok(());
        }
        stats.enters += 1;
        ring.submit()?;
    }
}

/// The worker a wake CQE's payload names, if it names one.
pub(crate) fn worker_index(workers: &Workers, payload: u32) -> Option<usize> {
    let idx = payload as usize;
    (idx < workers.slots.len()).then_some(idx)
}

/// What a mechanism whose pool side is only the lock-free job queue says
/// about itself (`eventfd`, `futex`, `msg-ring-sync`, `spin`).
pub(crate) trait QueueMechanism {
    /// `Announce::PerJob` works with this mechanism.
    const PER_JOB: bool = false;
    /// Its workers park (on a futex) when idle; `spin`'s never do.
    const PARKS: bool = true;

    /// Why this kernel cannot run it, or `None`.
    fn unsupported(caps: &Capabilities) -> Option<String>;
}

/// The pool side of a [`QueueMechanism`]: the job queue, and futex wakes.
pub(crate) struct QueuePool<M> {
    jobs: JobQueue,
    _mechanism: PhantomData<M>,
}

impl<M> QueuePool<M> {
    pub(crate) fn jobs(&self) -> &JobQueue {
        &self.jobs
    }
}

impl<M: QueueMechanism> PoolSideOps for QueuePool<M> {
    const PER_JOB: bool = M::PER_JOB;

    fn unsupported(caps: &Capabilities) -> Option<String> {
        M::unsupported(caps)
    }

    fn new(cfg: &BackendConfig) -> Result<Self, Error> {
        Ok(QueuePool {
            jobs: JobQueue::new(cfg.max_in_flight),
            _mechanism: PhantomData,
        })
    }

    fn push(&self, job: JobRef, lane: Option<u32>) {
        self.jobs.push(job, lane)
    }

    fn job_queue(&self) -> Option<&JobQueue> {
        Some(&self.jobs)
    }

    fn wake_sleepers(&self, workers: &Workers, n: usize) -> usize {
        if !M::PARKS {
            return 0; // nobody sleeps, nobody to wake
        }
        workers
            .sleepers
            .claim(workers.states(), n, |i| self.wake(workers, i))
    }
}

/// A worker that spins for the pool's budget, then parks on its futex
/// (`eventfd`, `futex`, `msg-ring-sync`); it keeps its scan position in the
/// job queue's lanes.
pub(crate) struct FutexWorker<M> {
    cursor: usize,
    _mechanism: PhantomData<M>,
}

impl<M: QueueMechanism> WorkerOps for FutexWorker<M> {
    type Pool = QueuePool<M>;

    fn new(_pool: &QueuePool<M>, _idx: usize) -> io::Result<Self> {
        Ok(FutexWorker {
            cursor: 0,
            _mechanism: PhantomData,
        })
    }

    fn next_batch(
        &mut self,
        pool: &QueuePool<M>,
        workers: &Workers,
        idx: usize,
        limit: usize,
        out: &mut Vec<JobRef>,
    ) -> bool {
        next_batch_parked(
            &pool.jobs,
            &mut self.cursor,
            workers,
            idx,
            limit,
            out,
            futex_wait,
        )
    }
}

/// A worker that announces results with a MSG_RING to the loop's ring
/// (`msg-ring` from its own ring, `msg-ring-sync` ringless).
pub(crate) trait MsgSender: WorkerOps {
    /// Posts `{user_data, res 0}` as a CQE on the ring `target`.
    fn send_msg(&mut self, target: RawFd, user_data: u64) -> io::Result<()>;
}

/// The mailbox of the MSG_RING mechanisms: batched results behind the
/// doorbell, or, with `Announce::PerJob`, one message per job naming its
/// slot.
pub(crate) struct MsgMailbox<W> {
    /// Batched results (unused with `Announce::PerJob`).
    results: ResultQueue,
    per_job: bool,
    _worker: PhantomData<fn(&mut W)>,
}

impl<W> MsgMailbox<W> {
    pub(crate) fn new(cfg: &BackendConfig) -> MsgMailbox<W> {
        let per_job = cfg.announce == Announce::PerJob;
        MsgMailbox {
            results: ResultQueue::new(if per_job { 1 } else { cfg.max_in_flight }),
            per_job,
            _worker: PhantomData,
        }
    }

    pub(crate) fn per_job(&self) -> bool {
        self.per_job
    }
}

impl<W: MsgSender> MailboxOps for MsgMailbox<W> {
    type Worker = W;

    #[inline]
    fn deliver(
        &self,
        home: &LoopShared,
        worker: &mut W,
        jobs: &mut Vec<JobRef>,
        stats: &WorkerStats,
    ) {
        let ring = home.ring.as_raw_fd();
        let send = |ud| worker.send_msg(ring, ud);
        if self.per_job {
            // The jobs' final states are published; the loop finds each
            // cell through the slot its message names.
            deliver_per_job(home, jobs, stats, send)
        } else {
            deliver_batched(&self.results, home, jobs, stats, send)
        }
    }

    #[inline]
    fn pop(&self) -> Option<JobRef> {
        self.results.pop()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    fn results(&self) -> Option<&ResultQueue> {
        Some(&self.results)
    }
}

/// The loop side's reaction to the CQEs of a [`MsgMailbox`]: `Some(look)`
/// for a doorbell or (with `per_job`) a result, `None` for any other kind.
/// Without `per_job` a `Result` CQE is not the pool's doing: the job it
/// names may sit in the mailbox too, and would be completed twice.
pub(crate) fn on_msg_cqe(per_job: bool, cqe: PoolCqe, sink: &mut impl Sink) -> Option<bool> {
    match cqe.kind {
        Kind::Doorbell => Some(true),
        Kind::Result if per_job => {
            sink.slot(cqe.payload);
            Some(false)
        }
        _ => None,
    }
}
