//! The loop's side: submit jobs, recognise the pool's CQEs, collect results.

use super::job::{Header, JobRef, CANCELLED, DONE};
use super::loop_shared::{LoopShared, Results};
use super::worker::Backoff;
use super::{Announce, PoolOwner, WORKER_WAKE};
use crate::error::{Error, ErrorKind, JobError, SubmitError, TrySubmitError};
use crate::handoff::Handoff;
use crate::sync::Ordering::{Acquire, Relaxed, SeqCst};
use crate::sync::{AtomicBool, AtomicU32, Mutex};
use crate::sys::{self, futex};
use crate::tag::{self, Kind};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Identifies a submitted job; unique within its [`LoopHandle`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(u64);

impl JobId {
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

/// Loop-side counters of one [`LoopHandle`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Jobs accepted by `try_submit`/`submit`.
    pub submitted: u64,
    /// Completions produced (values, panics and cancellations).
    pub completed: u64,
    /// `io_uring_enter` calls made by this handle (`submit_and_wait`,
    /// `flush` when the SQ was full, `close`).
    pub enters: u64,
    /// Of those, the ones that could sleep.
    pub waits: u64,
    /// Worker wakes sent (SQEs or syscalls, one per sleeping worker claimed).
    pub wakes_sent: u64,
    /// Pool CQEs handled (announcements, per-job results, pipe reads).
    pub pool_cqes: u64,
    /// `submit_and_wait` calls satisfied by spinning, without sleeping.
    pub spin_hits: u64,
    /// Kernel-side errors seen on the pool's own SQEs (each handled).
    pub errors: u64,
}

struct Slot {
    ptr: Option<NonNull<Header>>,
    id: u64,
}

/// Loop-side state of the backends whose doorbell needs an armed SQE.
enum Arm {
    /// msg-ring, msg-ring-sync, condvar, spin: nothing to arm.
    None,
    /// A multishot `POLL_ADD` on the eventfd.
    EventFd {
        armed: bool,
    },
    /// An `IORING_OP_FUTEX_WAIT` on the doorbell word.
    Futex {
        armed: bool,
    },
    Pipe(Box<PipeLoop>),
}

/// `IORING_ENTER_GETEVENTS` from `include/uapi/linux/io_uring.h` (v5.1).
const IORING_ENTER_GETEVENTS: u32 = 1;

/// Words of result pointers one read can take.
const PIPE_READ_WORDS: usize = 512;

struct PipeLoop {
    /// Read end of this loop's result pipe.
    rx: OwnedFd,
    /// Destination of the armed `IORING_OP_READ`; written by the kernel.
    /// Invariant: while `armed`, nothing else touches it, and it is freed
    /// only once the read is reaped or cancelled (leaked if it cannot be).
    buf: Box<[u64; PIPE_READ_WORDS]>,
    armed: bool,
    /// Write end of the pool's job pipe (kept open by `PoolOwner`).
    job_fd: RawFd,
    /// Job pointers not yet written.
    batch: Vec<u64>,
    /// Buffers of submitted `IORING_OP_WRITE`s, indexed by the payload of
    /// their `user_data`. Invariant: a buffer stays here, unmoved (it is a
    /// boxed slice), until its CQE is reaped.
    writes: Vec<Option<PendingWrite>>,
    /// Writes that came back short or failed, to be resubmitted.
    retry: Vec<u32>,
}

struct PendingWrite {
    buf: Box<[u64]>,
    /// Bytes already written.
    done: usize,
    /// Failed attempts so far.
    failures: u32,
}

/// Tells apart several registrations on one ring.
static NEXT_REG: AtomicU8 = AtomicU8::new(0);

/// Shorthand: the cell of a pointer kept in a slot.
fn header<'a>(p: NonNull<Header>) -> &'a Header {
    // SAFETY: slot pointers refer to live cells: only this handle frees
    // them, and it clears the slot when it does.
    unsafe { p.as_ref() }
}

/// The loop's handle on a [`Pool`](crate::Pool): submits jobs and turns the
/// pool's completions on the loop's ring back into results.
///
/// It is not `Send`: it belongs to the thread that owns the ring.
///
/// # The loop contract
///
/// 1. Wait through [`submit_and_wait`](LoopHandle::submit_and_wait), or call
///    [`flush`](LoopHandle::flush) right before entering the kernel yourself:
///    that is where wakes for new jobs and the doorbell's SQE go out.
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
    handoff: Handoff,
    announce: Announce,
    ring_fd: RawFd,
    sq_entries: u32,
    arm: Arm,
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: VecDeque<Completion<R>>,
    next_id: u64,
    /// Jobs pushed since the last wake round.
    pending_wake: usize,
    /// SQEs queued that workers are waiting for (wakes, job writes): submit
    /// them before spinning.
    urgent: bool,
    scratch: Vec<usize>,
    loop_spin: Duration,
    /// The current spin budget, adapted between `loop_spin / 16` and `loop_spin`.
    spin_budget: Duration,
    poll_interval: Duration,
    stats: LoopStats,
    closed: bool,
    _not_send: PhantomData<*const ()>,
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
        let (sq_entries, cq_entries) = (p.sq_entries(), p.cq_entries() as usize);
        let handoff = owner.shared.handoff;
        let announce = owner.shared.announce;
        let max = owner.config.max_in_flight;
        if announce == Announce::PerJob && max + POOL_CQ_RESERVE > cq_entries {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "Announce::PerJob needs max_in_flight + {POOL_CQ_RESERVE} <= the ring's CQ \
                     entries, but max_in_flight is {max} and the CQ has {cq_entries}; lower \
                     max_in_flight or build the ring with a larger CQ (setup_cqsize)"
                ),
            ));
        }
        let ring_fd = ring.as_raw_fd();
        let dup = sys::dup_cloexec(ring_fd).map_err(|e| Error::io("cannot dup the ring fd", e))?;
        let eventfd = match handoff {
            Handoff::EventFd => {
                Some(sys::eventfd::new().map_err(|e| Error::io("cannot create an eventfd", e))?)
            }
            _ => None,
        };
        let (result_rx, result_tx) = match handoff {
            Handoff::Pipe => {
                let (r, w) =
                    sys::pipe::new().map_err(|e| Error::io("cannot create a result pipe", e))?;
                let _ = sys::pipe::set_size(&w, (max * 8).max(4096));
                (Some(r), Some(w))
            }
            _ => (None, None),
        };
        let results = match handoff {
            Handoff::Condvar => Results::Locked(Mutex::new(VecDeque::new())),
            Handoff::Pipe => Results::LockFree(ArrayQueue::new(1)),
            _ if announce == Announce::PerJob => Results::LockFree(ArrayQueue::new(1)),
            _ => Results::LockFree(ArrayQueue::new(max)),
        };
        let shared = Arc::new(LoopShared {
            doorbell: CachePadded::new(super::doorbell::Doorbell::new()),
            senders: CachePadded::new(AtomicU32::new(0)),
            closing: AtomicBool::new(false),
            results,
            reg: NEXT_REG.fetch_add(1, Relaxed),
            ring_fd: Some(dup),
            eventfd,
            result_pipe: result_tx,
        });
        let arm = match handoff {
            Handoff::EventFd => Arm::EventFd { armed: false },
            Handoff::Futex => Arm::Futex { armed: false },
            Handoff::Pipe => Arm::Pipe(Box::new(PipeLoop {
                rx: result_rx.expect("pipe loop"),
                buf: Box::new([0; PIPE_READ_WORDS]),
                armed: false,
                job_fd: owner.shared.jobs.pipe_writer_fd().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidConfig, "the pool is shutting down")
                })?,
                batch: Vec::new(),
                writes: Vec::new(),
                retry: Vec::new(),
            })),
            _ => Arm::None,
        };
        Ok(LoopHandle {
            handoff,
            announce,
            loop_spin: owner.config.loop_spin,
            spin_budget: owner.config.loop_spin,
            poll_interval: owner.config.poll_interval,
            owner,
            shared,
            ring_fd,
            sq_entries,
            arm,
            slots: (0..max).map(|_| Slot { ptr: None, id: 0 }).collect(),
            free: (0..max as u32).rev().collect(),
            ready: VecDeque::new(),
            next_id: 0,
            pending_wake: 0,
            urgent: false,
            scratch: Vec::new(),
            stats: LoopStats::default(),
            closed: false,
            _not_send: PhantomData,
        })
    }

    /// Hands `job` to the pool without blocking.
    ///
    /// The job is queued at once; a sleeping worker is woken at the next
    /// [`flush`](LoopHandle::flush) (which `submit_and_wait` does), so that
    /// several submissions share one wake.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] when `max_in_flight` jobs are out (reap
    /// completions and retry), [`TrySubmitError::Closed`] after
    /// [`Pool::shutdown`](crate::Pool::shutdown). The job comes back unchanged.
    pub fn try_submit<F>(&mut self, job: F) -> Result<JobId, TrySubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        if self.closed || self.owner.shared.closed.load(Acquire) {
            return Err(TrySubmitError::Closed(job));
        }
        let Some(slot) = self.free.pop() else {
            return Err(TrySubmitError::Full(job));
        };
        let id = self.next_id;
        self.next_id += 1;
        let home = NonNull::from(&*self.shared);
        let job = JobRef::new(job, home, slot);
        let s = &mut self.slots[slot as usize];
        s.ptr = Some(NonNull::from(job.header()));
        s.id = id;
        self.stats.submitted += 1;
        match &mut self.arm {
            Arm::Pipe(p) => {
                job.publish();
                p.batch.push(job.into_raw());
            }
            _ => {
                self.owner.shared.jobs.push(job);
                self.pending_wake += 1;
            }
        }
        Ok(JobId(id))
    }

    /// Hands `job` to the pool, waiting for room if `max_in_flight` jobs are
    /// out. While it waits it reaps the ring: the pool's CQEs are handled,
    /// and every other CQE is passed to `on_io`, in order.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] after shutdown; [`SubmitError::Io`] if waiting
    /// on the ring fails (other than `EINTR`, which is retried). The job
    /// comes back unchanged.
    pub fn submit<F>(
        &mut self,
        ring: &mut IoUring,
        job: F,
        mut on_io: impl FnMut(cqueue::Entry),
    ) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        let mut job = job;
        loop {
            match self.try_submit(job) {
                Ok(id) => return Ok(id),
                Err(TrySubmitError::Closed(j)) => return Err(SubmitError::Closed(j)),
                Err(TrySubmitError::Full(j)) => job = j,
            }
            match self.wait(ring, 1, self.ready.len()) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(SubmitError::Io(e, job)),
            }
            self.reap(ring, &mut on_io);
        }
    }
}

impl<R> LoopHandle<R> {
    /// The mechanism in use.
    pub fn handoff(&self) -> Handoff {
        self.handoff
    }

    /// Jobs submitted whose completion has not yet been produced.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The in-flight limit.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Completions waiting in [`completions`](LoopHandle::completions).
    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    /// This handle's counters.
    pub fn stats(&self) -> LoopStats {
        self.stats.clone()
    }

    fn check_ring(&self, ring: &IoUring) -> io::Result<()> {
        if ring.as_raw_fd() != self.ring_fd {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ringpool: this LoopHandle was registered with a different ring",
            ));
        }
        Ok(())
    }

    /// Prepares the loop to sleep on `ring`: drains results the workers have
    /// published, sends the wakes that new jobs need (sleeping workers) and
    /// (pipe) writes out queued job pointers, and queues the doorbell's
    /// (re-)arm SQE. Returns the number of completions ready: if it is not
    /// zero, take them before you block.
    ///
    /// [`submit_and_wait`](LoopHandle::submit_and_wait) does all of this for
    /// you; call `flush` yourself only when you enter the kernel yourself.
    /// Everything it queues goes out with the next `io_uring_enter`, however
    /// it is made.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `ring` is not the ring this handle was registered
    /// with; the errno of `io_uring_enter` if the SQ was full and flushing
    /// it failed.
    pub fn flush(&mut self, ring: &mut IoUring) -> io::Result<usize> {
        self.check_ring(ring)?;
        self.drain_results();
        self.send_work(ring)?;
        self.arm(ring)?;
        Ok(self.ready.len())
    }

    /// Queues the doorbell's arm SQE if it is not armed (eventfd, futex, pipe).
    fn arm(&mut self, ring: &mut IoUring) -> io::Result<()> {
        let reg = self.shared.reg;
        match &mut self.arm {
            Arm::None => {}
            Arm::EventFd { armed } => {
                if !*armed {
                    let fd = self.shared.eventfd.as_ref().expect("eventfd").as_raw_fd();
                    let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                        .multi(true)
                        .build()
                        .user_data(tag::encode(Kind::Poll, reg, 0));
                    // SAFETY: POLL_ADD references only the eventfd, which the
                    // request holds a reference to in the kernel.
                    unsafe { push(ring, &sqe, &mut self.stats)? };
                    *armed = true;
                }
            }
            Arm::Futex { armed } => {
                if !*armed {
                    let word = self.shared.doorbell.word();
                    let sqe = opcode::FutexWait::new(
                        word.as_ptr().cast_const(),
                        0,
                        futex::MATCH_ANY,
                        futex::FUTEX2_SIZE_U32 | futex::FUTEX2_PRIVATE,
                    )
                    .build()
                    .user_data(tag::encode(Kind::FutexWait, reg, 0));
                    // SAFETY: the futex word lives in `self.shared`, which
                    // outlives the request: `close` cancels and reaps it, and
                    // Drop cancels it synchronously (or leaks `shared` if it cannot).
                    //
                    // The 6.16+ private-hash stranding bug (reference §2.3)
                    // needs a waiter armed while the process is single-
                    // threaded; a LoopHandle exists only after its pool has
                    // spawned at least one worker, so this arm never is.
                    unsafe { push(ring, &sqe, &mut self.stats)? };
                    *armed = true;
                }
            }
            Arm::Pipe(p) => {
                if !p.armed {
                    let sqe = opcode::Read::new(
                        types::Fd(p.rx.as_raw_fd()),
                        p.buf.as_mut_ptr().cast(),
                        (PIPE_READ_WORDS * 8) as u32,
                    )
                    .build()
                    .user_data(tag::encode(Kind::PipeRead, reg, 0));
                    // SAFETY: `p.buf` is a boxed array that is neither moved,
                    // read nor freed while `armed` (PipeLoop invariant).
                    unsafe { push(ring, &sqe, &mut self.stats)? };
                    p.armed = true;
                }
            }
        }
        Ok(())
    }

    /// Sends what workers are waiting for: wakes for sleeping workers (SQEs
    /// marked urgent, or syscalls) and, for `pipe`, the job pointer writes.
    fn send_work(&mut self, ring: &mut IoUring) -> io::Result<()> {
        let reg = self.shared.reg;
        if let Arm::Pipe(p) = &mut self.arm {
            let mut retry = std::mem::take(&mut p.retry);
            for idx in retry.drain(..) {
                submit_write(ring, p, idx, reg, &mut self.stats)?;
                self.urgent = true;
            }
            p.retry = retry;
            while !p.batch.is_empty() {
                let n = p.batch.len().min(PIPE_READ_WORDS); // 4 KiB = PIPE_BUF: atomic
                let buf: Box<[u64]> = p.batch.drain(..n).collect();
                let pw = PendingWrite {
                    buf,
                    done: 0,
                    failures: 0,
                };
                let idx = match p.writes.iter().position(Option::is_none) {
                    Some(i) => {
                        p.writes[i] = Some(pw);
                        i
                    }
                    None => {
                        p.writes.push(Some(pw));
                        p.writes.len() - 1
                    }
                } as u32;
                submit_write(ring, p, idx, reg, &mut self.stats)?;
                self.urgent = true;
            }
        }
        if self.pending_wake > 0 {
            let want = std::mem::take(&mut self.pending_wake);
            let pool = &*self.owner.shared;
            let mut woken = std::mem::take(&mut self.scratch);
            woken.clear();
            match self.handoff {
                Handoff::Futex | Handoff::MsgRing | Handoff::MsgRingSync | Handoff::EventFd => {
                    pool.sleepers
                        .claim(pool.worker_states(), want, |i| woken.push(i));
                }
                _ => {}
            }
            for &i in &woken {
                let w = &pool.workers[i];
                self.stats.wakes_sent += 1;
                match self.handoff {
                    Handoff::Futex => {
                        let sqe = opcode::FutexWake::new(
                            w.state.as_ptr().cast_const(),
                            1,
                            futex::MATCH_ANY,
                            futex::FUTEX2_SIZE_U32 | futex::FUTEX2_PRIVATE,
                        )
                        .build()
                        .flags(squeue::Flags::SKIP_SUCCESS)
                        .user_data(tag::encode(
                            Kind::FutexWake,
                            reg,
                            i as u32,
                        ));
                        // SAFETY: the worker's state word lives in PoolShared,
                        // kept alive by `self.owner` until this handle is gone,
                        // and Drop submits queued SQEs before releasing it.
                        unsafe { push(ring, &sqe, &mut self.stats)? };
                        self.urgent = true;
                    }
                    Handoff::MsgRing => {
                        let fd = w.ring_fd.load(Acquire);
                        let sqe = opcode::MsgRingData::new(types::Fd(fd), 0, WORKER_WAKE, None)
                            .build()
                            .flags(squeue::Flags::SKIP_SUCCESS)
                            .user_data(tag::encode(Kind::WakeMsg, reg, i as u32));
                        // SAFETY: a MSG_RING data SQE references no memory; the
                        // worker's ring lives while the pool does, which this
                        // handle keeps alive, and Drop submits queued SQEs.
                        unsafe { push(ring, &sqe, &mut self.stats)? };
                        self.urgent = true;
                    }
                    // futex(2) wake; a failure is retried (the worker is
                    // claimed and would otherwise sleep for ever).
                    _ => pool.wake_direct(i),
                }
            }
            self.scratch = woken;
        }
        Ok(())
    }

    /// Flushes (see [`flush`](LoopHandle::flush)), then waits on `ring` for
    /// `want` CQEs, unless results are already waiting. Before sleeping it
    /// spins for the pool's `loop_spin` budget on the result queue, with
    /// announcements suppressed, so that a busy loop makes no syscall per
    /// batch.
    ///
    /// Returns what `io_uring_enter` returned (SQEs submitted), or 0 if it
    /// did not need to enter.
    ///
    /// # Errors
    ///
    /// As [`IoUring::submit_and_wait`] (including `EINTR`), and as [`flush`](LoopHandle::flush).
    pub fn submit_and_wait(&mut self, ring: &mut IoUring, want: usize) -> io::Result<usize> {
        self.wait(ring, want, 0)
    }

    /// `submit_and_wait`, returning early only once more than `seen`
    /// completions are ready (the blocking `submit` waits for fresh ones).
    fn wait(&mut self, ring: &mut IoUring, want: usize, seen: usize) -> io::Result<usize> {
        self.check_ring(ring)?;
        self.drain_results();
        self.send_work(ring)?;
        if self.ready.len() > seen {
            return self.enter_nowait(ring);
        }
        match self.handoff {
            Handoff::Spin => return self.spin_wait(ring, want, seen),
            Handoff::Condvar => return self.poll_wait(ring, want, seen),
            _ => {}
        }
        if self.urgent {
            // Workers are waiting for these wakes / writes: send them before spinning.
            self.urgent = false;
            self.stats.enters += 1;
            ring.submit()?;
        }
        let can_spin = !self.loop_spin.is_zero()
            && self.in_flight() > 0
            && self.announce == Announce::Batch
            && self.handoff != Handoff::Pipe;
        if can_spin && self.shared.doorbell.claim() {
            let deadline = Instant::now() + self.spin_budget;
            'spin: loop {
                for _ in 0..32 {
                    if !self.shared.results.is_empty() || ring.completion().len() >= want {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            // Results pushed while we held the doorbell sent no CQE: the
            // release is followed by a drain, which sees all of them.
            self.shared.doorbell.release();
            self.drain_results();
            if self.ready.len() > seen {
                // Adaptive: a hit restores the budget, a miss halves it (down
                // to 1/16), so long jobs do not keep a core busy spinning
                // next to the worker that runs them.
                self.stats.spin_hits += 1;
                self.spin_budget = (self.spin_budget * 2).min(self.loop_spin);
                return self.enter_nowait(ring);
            }
            self.spin_budget = (self.spin_budget / 2).max(self.loop_spin / 16);
        }
        // About to sleep: the doorbell must be armed.
        self.arm(ring)?;
        if want > 0 && ring.submission().is_empty() && ring.completion().len() >= want {
            return Ok(0); // the CQEs are already there: no need to enter
        }
        self.stats.enters += 1;
        self.stats.waits += 1;
        ring.submit_and_wait(want)
    }

    /// More than `seen` completions are ready, or results wait to be drained.
    fn has_new(&self, seen: usize) -> bool {
        self.ready.len() > seen || !self.shared.results.is_empty()
    }

    fn enter_nowait(&mut self, ring: &mut IoUring) -> io::Result<usize> {
        self.urgent = false;
        if ring.submission().is_empty() {
            return Ok(0);
        }
        self.stats.enters += 1;
        ring.submit()
    }

    /// `spin` backend: busy-poll the result queue and the CQ.
    fn spin_wait(&mut self, ring: &mut IoUring, want: usize, seen: usize) -> io::Result<usize> {
        let submitted = self.enter_nowait(ring)?;
        let mut n = 0u32;
        while !self.has_new(seen) && ring.completion().len() < want {
            std::hint::spin_loop();
            n = n.wrapping_add(1);
            if n % 4096 == 0 {
                // Run deferred task work (DEFER_TASKRUN rings) without sleeping.
                self.stats.enters += 1;
                // SAFETY: no argument pointer is passed (None, size 0).
                unsafe {
                    ring.submitter()
                        .enter::<libc::sigset_t>(0, 0, IORING_ENTER_GETEVENTS, None)?
                };
            }
        }
        Ok(submitted)
    }

    /// `condvar` backend: the loop cannot sleep on a condvar and its ring at
    /// once, so it waits on the ring for at most `poll_interval` at a time
    /// and polls the result queue in between.
    fn poll_wait(&mut self, ring: &mut IoUring, want: usize, seen: usize) -> io::Result<usize> {
        let ts = types::Timespec::from(self.poll_interval);
        let args = types::SubmitArgs::new().timespec(&ts);
        loop {
            self.stats.enters += 1;
            self.stats.waits += 1;
            match ring.submitter().submit_with_args(want, &args) {
                Ok(n) => return Ok(n),
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) => return Err(e),
            }
            if self.has_new(seen) {
                return Ok(0);
            }
        }
    }

    /// Reaps every CQE on `ring`: the pool's are handled, the others are
    /// passed to `on_io` in order. Returns the number of completions ready.
    pub fn reap(&mut self, ring: &mut IoUring, mut on_io: impl FnMut(cqueue::Entry)) -> usize {
        for cqe in ring.completion() {
            if !self.handle_cqe(&cqe) {
                on_io(cqe);
            }
        }
        self.drain_results();
        self.ready.len()
    }

    /// Handles `cqe` if it is the pool's, returning `true`; returns `false`
    /// (and does nothing) for any other CQE.
    ///
    /// Results it announces become available from [`completions`](LoopHandle::completions).
    pub fn handle_cqe(&mut self, cqe: &cqueue::Entry) -> bool {
        let Some((kind, reg, payload)) = tag::decode(cqe.user_data()) else {
            return false;
        };
        if reg != self.shared.reg {
            return false;
        }
        self.stats.pool_cqes += 1;
        let res = cqe.result();
        match kind {
            Kind::Doorbell => self.on_doorbell(),
            Kind::Result => self.complete_slot(payload),
            Kind::Poll => {
                if !cqueue::more(cqe.flags()) {
                    if let Arm::EventFd { armed } = &mut self.arm {
                        *armed = false;
                    }
                }
                if res < 0 && res != -libc::ECANCELED {
                    self.stats.errors += 1;
                }
                self.on_doorbell();
            }
            Kind::FutexWait => {
                if let Arm::Futex { armed } = &mut self.arm {
                    *armed = false;
                }
                // 0: woken; -EAGAIN: the word was already 1 when armed. Both
                // mean "look". Anything else is counted and looked at anyway.
                if res < 0 && res != -libc::EAGAIN && res != -libc::ECANCELED {
                    self.stats.errors += 1;
                }
                self.on_doorbell();
            }
            Kind::PipeRead => self.on_pipe_read(res),
            Kind::PipeWrite => self.on_pipe_write(payload, res),
            Kind::FutexWake | Kind::WakeMsg => {
                // A batched wake failed (success CQEs are skipped): wake the
                // worker directly instead, so the job is not stranded.
                self.stats.errors += 1;
                self.owner.shared.wake_direct(payload as usize);
            }
            Kind::Cancel => {}
        }
        true
    }

    /// Takes the completions that are ready, draining results the workers
    /// have published (no syscall).
    pub fn completions(&mut self) -> Completions<'_, R> {
        self.drain_results();
        Completions { lp: self }
    }

    fn on_doorbell(&mut self) {
        self.shared.doorbell.ack();
        self.drain_results();
    }

    fn drain_results(&mut self) {
        while let Some(job) = self.shared.results.pop() {
            self.complete(job);
        }
    }

    fn complete(&mut self, job: JobRef) {
        let slot = job.header().slot;
        self.complete_at(slot, job);
    }

    fn complete_at(&mut self, slot: u32, job: JobRef) {
        let s = &mut self.slots[slot as usize];
        debug_assert_eq!(s.ptr, Some(NonNull::from(job.header())));
        s.ptr = None;
        let id = JobId(s.id);
        self.free.push(slot);
        let mut out = None;
        // SAFETY: the worker published the final state before handing the
        // ref back (queue push, pipe write or message), and this handle
        // created the cell with result type `R`.
        unsafe { job.finish::<R>(&mut out) };
        let result = out.expect("finish writes the outcome");
        self.stats.completed += 1;
        self.ready.push_back(Completion { id, result });
    }

    /// `Announce::PerJob`: the CQE named `slot`.
    fn complete_slot(&mut self, slot: u32) {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        // A message for an empty slot is a late duplicate of a job that
        // `close` already collected by polling: ignore it.
        let Some(p) = s.ptr else { return };
        // SAFETY: the pointer came from this slot, whose cell is live; the
        // message is sent only after the worker published its final state.
        let job = unsafe { JobRef::from_raw(p.as_ptr() as usize as u64) };
        self.complete_at(slot, job);
    }

    /// Completes the job at raw pointer `raw` if a slot still holds it.
    /// During `close`, pointers may arrive for jobs already collected by
    /// polling, so they are matched without being dereferenced.
    fn complete_raw(&mut self, raw: u64) {
        let slot = if self.shared.closing.load(Relaxed) {
            self.slots
                .iter()
                .position(|s| s.ptr.map(|p| p.as_ptr() as usize as u64) == Some(raw))
        } else {
            // SAFETY: outside `close`, every pointer read from the result pipe
            // is a live in-flight cell of this loop (each written once).
            Some(unsafe { JobRef::from_raw(raw) }.header().slot as usize)
        };
        if let Some(slot) = slot {
            // SAFETY: as above: the slot holds this live cell.
            self.complete_at(slot as u32, unsafe { JobRef::from_raw(raw) });
        }
    }

    fn on_pipe_read(&mut self, res: i32) {
        let Arm::Pipe(p) = &mut self.arm else { return };
        p.armed = false;
        if res <= 0 {
            if res < 0 && res != -libc::ECANCELED {
                self.stats.errors += 1;
            }
            return;
        }
        // Every writer writes exactly 8 bytes (atomic, <= PIPE_BUF) and we
        // read a multiple of 8, so reads are whole messages.
        let n = res as usize / 8;
        let words: Vec<u64> = p.buf[..n].to_vec();
        for raw in words {
            self.complete_raw(raw);
        }
    }

    fn on_pipe_write(&mut self, idx: u32, res: i32) {
        let Arm::Pipe(p) = &mut self.arm else { return };
        let Some(Some(w)) = p.writes.get_mut(idx as usize) else {
            return;
        };
        if res < 0 {
            self.stats.errors += 1;
            w.failures += 1;
            if w.failures > 16 {
                // The job pipe is broken for good: the jobs in this buffer
                // never reached a worker. Cancel them so their owner hears.
                let w = p.writes[idx as usize].take().expect("checked above");
                for &raw in &w.buf[w.done / 8..] {
                    // SAFETY: these pointers were never delivered, so we
                    // still own their cells; cancelling publishes the state.
                    let job = unsafe { JobRef::from_raw(raw) };
                    job.cancel();
                    self.complete(job);
                }
                return;
            }
            p.retry.push(idx);
            return;
        }
        w.done += res as usize;
        if w.done < w.buf.len() * 8 {
            p.retry.push(idx); // short write: send the rest
        } else {
            p.writes[idx as usize] = None;
        }
    }

    /// Closes this loop: no more submissions; queued jobs are cancelled or
    /// run (per [`Shutdown`](crate::Shutdown)); waits for every in-flight job, disarms
    /// the pool's SQEs, and returns the completions not yet taken. CQEs that
    /// are not the pool's are passed to `on_io`.
    ///
    /// This is the clean way to end a loop. Dropping the handle does the
    /// same without the ring: it cancels the pool's armed SQEs synchronously
    /// (Linux 6.0), and leaks the few KiB they reference if it cannot.
    pub fn close(
        mut self,
        ring: &mut IoUring,
        mut on_io: impl FnMut(cqueue::Entry),
    ) -> Vec<Completion<R>> {
        self.shut(Some(ring), &mut on_io);
        self.ready.drain(..).collect()
    }

    fn poll_slots(&mut self) {
        for slot in 0..self.slots.len() {
            if let Some(p) = self.slots[slot].ptr {
                let st = header(p).state.load(Acquire);
                if st == DONE || st == CANCELLED {
                    // SAFETY: the final state is published (Acquire above) and
                    // the worker no longer touches the cell; the slot owns it.
                    let job = unsafe { JobRef::from_raw(p.as_ptr() as usize as u64) };
                    self.complete_at(slot as u32, job);
                }
            }
        }
    }

    fn shut(&mut self, mut ring: Option<&mut IoUring>, on_io: &mut dyn FnMut(cqueue::Entry)) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.shared.closing.store(true, SeqCst);
        // Jobs still in the pipe batch never left: cancel them here. Without
        // the ring, writes waiting to be retried cannot be resubmitted
        // either; a failed write of at most PIPE_BUF bytes wrote nothing, so
        // the jobs after its `done` mark never left: cancel those too.
        if let Arm::Pipe(p) = &mut self.arm {
            let mut never_sent = std::mem::take(&mut p.batch);
            if ring.is_none() {
                for idx in std::mem::take(&mut p.retry) {
                    if let Some(w) = p.writes[idx as usize].take() {
                        never_sent.extend_from_slice(&w.buf[w.done / 8..]);
                    }
                }
            }
            for raw in never_sent {
                // SAFETY: never written to the job pipe, so still ours.
                let job = unsafe { JobRef::from_raw(raw) };
                job.cancel();
                self.complete(job);
            }
        }
        // Get queued jobs to a worker (to run or cancel them).
        match ring.as_deref_mut() {
            Some(r) => {
                if self.flush(r).is_ok() {
                    self.stats.enters += 1;
                    let _ = r.submit();
                }
            }
            None => {
                self.submit_queued_sqes();
                self.owner.shared.wake_sleepers_direct(self.in_flight());
            }
        }
        // Kernel-delivered results (per-job messages, pipe pointers) may be
        // skipped or unreachable now: collect those jobs by polling states.
        let poll =
            self.announce == Announce::PerJob || (self.handoff == Handoff::Pipe && ring.is_none());
        let mut backoff = Backoff::new();
        let mut last_wake = Instant::now();
        while self.in_flight() > 0 {
            let before = self.in_flight();
            if let Some(r) = ring.as_deref_mut() {
                self.reap(r, &mut *on_io);
                if self.handoff == Handoff::Pipe {
                    let _ = self.flush(r);
                }
            }
            self.drain_results();
            if poll {
                self.poll_slots();
            }
            if self.in_flight() == before {
                match ring.as_deref_mut() {
                    Some(r) => self.wait_briefly(r),
                    None => backoff.snooze(),
                }
                if last_wake.elapsed() > Duration::from_millis(10) {
                    // Belt and braces: a worker asleep with our job queued.
                    self.owner.shared.wake_sleepers_direct(self.in_flight());
                    last_wake = Instant::now();
                }
            }
        }
        while !self.shared.quiet() {
            std::thread::yield_now();
        }
        match ring {
            Some(r) => self.disarm(r, on_io),
            None => self.release_armed(),
        }
    }

    /// Submits and waits for one CQE, for at most 1 ms (the close path's
    /// bounded wait: results may arrive without an announcement then).
    fn wait_briefly(&mut self, ring: &mut IoUring) {
        let ts = types::Timespec::new().nsec(1_000_000);
        let args = types::SubmitArgs::new().timespec(&ts);
        self.stats.enters += 1;
        let _ = ring.submitter().submit_with_args(1, &args);
    }

    /// Cancels the pool's armed SQEs and reaps until the kernel is done with
    /// every buffer it was given.
    fn disarm(&mut self, ring: &mut IoUring, on_io: &mut dyn FnMut(cqueue::Entry)) {
        let reg = self.shared.reg;
        let target = match &self.arm {
            Arm::EventFd { armed: true } => Some(tag::encode(Kind::Poll, reg, 0)),
            Arm::Futex { armed: true } => Some(tag::encode(Kind::FutexWait, reg, 0)),
            Arm::Pipe(p) if p.armed => Some(tag::encode(Kind::PipeRead, reg, 0)),
            _ => None,
        };
        if let Some(ud) = target {
            let sqe =
                opcode::AsyncCancel::new(ud)
                    .build()
                    .user_data(tag::encode(Kind::Cancel, reg, 0));
            // SAFETY: ASYNC_CANCEL references no memory.
            let _ = unsafe { push(ring, &sqe, &mut self.stats) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let busy = match &self.arm {
                Arm::EventFd { armed } | Arm::Futex { armed } => *armed,
                Arm::Pipe(p) => p.armed || p.writes.iter().any(Option::is_some),
                Arm::None => false,
            };
            if !busy {
                return;
            }
            if Instant::now() >= deadline {
                // The kernel did not give the buffers back in time: cancel
                // synchronously, or leak them
                // rather than risk a write into freed memory.
                self.release_armed();
                return;
            }
            self.wait_briefly(ring);
            for cqe in ring.completion() {
                if !self.handle_cqe(&cqe) {
                    on_io(cqe);
                }
            }
        }
    }

    /// Without the ring, the pool's armed SQEs (a pipe read and pipe writes,
    /// a futex wait) are cancelled synchronously through the duplicated ring
    /// fd (`IORING_REGISTER_SYNC_CANCEL`, 6.0); once that returns, the kernel
    /// no longer references their memory, which is then freed. If a cancel
    /// fails (an older kernel), that memory is leaked instead: a few KiB,
    /// never a write into freed memory.
    fn release_armed(&mut self) {
        let reg = self.shared.reg;
        let fd = self.shared.ring_fd.as_ref().map(|f| f.as_raw_fd());
        let cancelled = |ud: u64| fd.is_some_and(|fd| sys::cancel::sync_cancel(fd, ud).is_ok());
        let keep_shared = matches!(self.arm, Arm::Futex { armed: true })
            && !cancelled(tag::encode(Kind::FutexWait, reg, 0));
        if let Arm::Pipe(p) = std::mem::replace(&mut self.arm, Arm::None) {
            let PipeLoop {
                rx,
                buf,
                armed,
                writes,
                ..
            } = *p;
            if armed && !cancelled(tag::encode(Kind::PipeRead, reg, 0)) {
                std::mem::forget(buf);
            }
            for (i, w) in writes.into_iter().enumerate() {
                if let Some(w) = w {
                    if !cancelled(tag::encode(Kind::PipeWrite, reg, i as u32)) {
                        std::mem::forget(w.buf);
                    }
                }
            }
            drop(rx);
        }
        if keep_shared {
            std::mem::forget(self.shared.clone());
        }
    }

    /// Submits SQEs already queued on the ring (our wakes among them) through
    /// the duplicated fd, so none can reach the kernel after the pool is gone.
    fn submit_queued_sqes(&mut self) {
        if matches!(
            self.handoff,
            Handoff::Futex | Handoff::MsgRing | Handoff::Pipe
        ) {
            if let Some(fd) = self.shared.ring_fd.as_ref() {
                self.stats.enters += 1;
                let _ = sys::enter_submit(fd.as_raw_fd(), self.sq_entries);
            }
        }
    }
}

impl<R> Drop for LoopHandle<R> {
    /// Closes the loop without its ring; see [`LoopHandle::close`].
    ///
    /// Blocks until every in-flight job has finished or been cancelled, and
    /// drops their results. SQEs already queued on the ring are submitted.
    /// The pool's armed SQEs are cancelled with `IORING_REGISTER_SYNC_CANCEL`
    /// (Linux 6.0); on older kernels the memory they reference (a few KiB)
    /// is leaked rather than freed under the kernel.
    fn drop(&mut self) {
        self.shut(None, &mut |_| {});
    }
}

/// CQ entries the pool may occupy on a loop's ring at once, beyond per-job
/// results: one announcement or armed doorbell SQE, a cancel, and error
/// CQEs of skipped-on-success SQEs.
pub const POOL_CQ_RESERVE: usize = 4;

/// Pushes `sqe` onto `ring`, submitting to make room if the SQ is full.
///
/// # Safety
///
/// Whatever memory `sqe` references must stay valid until its CQE is reaped.
unsafe fn push(ring: &mut IoUring, sqe: &squeue::Entry, stats: &mut LoopStats) -> io::Result<()> {
    loop {
        // SAFETY: forwarded to our caller.
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            return Ok(());
        }
        stats.enters += 1;
        ring.submit()?;
    }
}

fn submit_write(
    ring: &mut IoUring,
    p: &mut PipeLoop,
    idx: u32,
    reg: u8,
    stats: &mut LoopStats,
) -> io::Result<()> {
    let w = p.writes[idx as usize].as_ref().expect("pending write");
    let bytes = w.buf.len() * 8;
    // SAFETY: `done <= bytes`, so the pointer stays inside the buffer.
    let ptr = unsafe { w.buf.as_ptr().cast::<u8>().add(w.done) };
    let sqe = opcode::Write::new(types::Fd(p.job_fd), ptr, (bytes - w.done) as u32)
        .build()
        .user_data(tag::encode(Kind::PipeWrite, reg, idx));
    // SAFETY: the buffer stays in `p.writes[idx]`, unmoved, until this
    // write's CQE is reaped (PipeLoop invariant), and is leaked if the handle
    // is dropped before that.
    unsafe { push(ring, &sqe, stats) }
}

/// Iterator over ready completions; see [`LoopHandle::completions`].
pub struct Completions<'a, R> {
    lp: &'a mut LoopHandle<R>,
}

impl<R> Iterator for Completions<'_, R> {
    type Item = Completion<R>;

    fn next(&mut self) -> Option<Completion<R>> {
        self.lp.ready.pop_front()
    }
}

impl<R> std::fmt::Debug for LoopHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopHandle")
            .field("handoff", &self.handoff)
            .field("in_flight", &self.in_flight())
            .field("ready", &self.ready.len())
            .finish()
    }
}
