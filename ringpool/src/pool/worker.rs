//! The worker thread: take a job, run it, deliver the result, sleep when idle.

use super::job::JobRef;
use super::loop_shared::LoopShared;
use super::park::{self, Prepared, SLEEPING};
use super::{Announce, PoolShared};
use crate::handoff::Handoff;
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sys::{self, fault::Site};
use crate::tag::{self, Kind};
use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// `user_data` of a worker's own MSG_RING sends (only failures post a CQE).
const OWN_SEND: u64 = 1;

/// Per-thread worker state that never leaves the thread.
pub(crate) struct WorkerCtx {
    pub(crate) idx: usize,
    /// The worker's own ring (msg-ring backend only). Created on this thread,
    /// so this thread is its `SINGLE_ISSUER` owner; dropped when it exits.
    pub(crate) ring: Option<IoUring>,
}

impl WorkerCtx {
    /// Builds the worker's ring: `SINGLE_ISSUER | DEFER_TASKRUN`, sharing the
    /// io-wq backend of the pool's control ring (`ATTACH_WQ`).
    pub(crate) fn ring_for(wq_fd: RawFd) -> io::Result<IoUring> {
        IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_attach_wq(wq_fd)
            .setup_cqsize(64)
            .build(16)
    }

    /// Sends one MSG_RING data message from this worker's ring.
    fn send_msg(&mut self, target: RawFd, user_data: u64, res: i32) -> io::Result<()> {
        sys::fault::check(Site::WorkerEnter)?;
        let ring = self.ring.as_mut().expect("msg-ring worker has a ring");
        let sqe = opcode::MsgRingData::new(types::Fd(target), res, user_data, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(OWN_SEND);
        // SAFETY: a MSG_RING data SQE references no user memory; the target
        // fd is kept open by its LoopShared while we are a sender.
        while unsafe { ring.submission().push(&sqe) }.is_err() {
            ring.submit()?;
        }
        ring.submit()?;
        // A failed MSG_RING posts its CQE inline, during the submit above.
        let mut err = None;
        for cqe in ring.completion() {
            if cqe.user_data() == OWN_SEND && cqe.result() < 0 {
                err = Some(io::Error::from_raw_os_error(-cqe.result()));
            }
        }
        err.map_or(Ok(()), Err)
    }

    /// Blocks until something may have changed `me` (a wake, a signal, or a
    /// spurious return); the caller re-checks.
    fn wait(&mut self, me: &crate::sync::AtomicU32, pool: &PoolShared) {
        let r = match self.ring.as_mut() {
            Some(ring) => sys::fault::check(Site::WorkerEnter)
                .and_then(|()| ring.submit_and_wait(1).map(drop))
                .map(|()| ring.completion().for_each(drop)),
            None => sys::futex::wait(me, SLEEPING),
        };
        if r.is_err() {
            // EINTR and injected faults: count it and back off briefly; the
            // caller re-checks the state word, so nothing is lost.
            pool.workers[self.idx]
                .stats
                .wait_errors
                .fetch_add(1, Relaxed);
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// The main loop of a worker of a queue-based backend (everything but `pipe`).
pub(crate) fn run(pool: &PoolShared, ctx: &mut WorkerCtx) {
    let me = &*pool.workers[ctx.idx].state;
    loop {
        if let Some(job) = pool.jobs.pop() {
            deliver(pool, ctx, job);
            continue;
        }
        if spin_for_work(pool) {
            continue;
        }
        if pool.handoff == Handoff::Spin {
            if pool.exit.load(Acquire) && pool.jobs.is_empty() {
                return;
            }
            std::thread::yield_now();
            continue;
        }
        if pool.handoff == Handoff::Condvar {
            match pool.jobs.wait_locked(&pool.exit) {
                Some(job) => deliver(pool, ctx, job),
                None => return,
            }
            continue;
        }
        let stats = &pool.workers[ctx.idx].stats;
        match pool
            .sleepers
            .prepare(me, || !pool.jobs.is_empty() || pool.exit.load(Acquire))
        {
            Prepared::Abort { .. } => {}
            Prepared::Sleep => {
                bump(&stats.parks);
                while park::still_sleeping(me) {
                    ctx.wait(me, pool);
                }
                park::wake_up(me);
            }
        }
        if pool.exit.load(Acquire) && pool.jobs.is_empty() {
            return;
        }
    }
}

/// Spins on the job queue for the configured budget; `true` if work appeared.
fn spin_for_work(pool: &PoolShared) -> bool {
    let seen = || !pool.jobs.is_empty();
    if pool.handoff == Handoff::Spin {
        // Spin workers never sleep; the caller yields between rounds.
        return (0..256).any(|_| {
            std::hint::spin_loop();
            seen()
        });
    }
    if pool.worker_spin.is_zero() {
        return false;
    }
    let deadline = Instant::now() + pool.worker_spin;
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

/// The main loop of a `pipe` worker: block in read(2) on the job pipe.
pub(crate) fn run_pipe(pool: &PoolShared, ctx: &mut WorkerCtx) {
    let Some(rx) = pool.jobs.pipe_reader() else {
        return;
    };
    loop {
        match sys::pipe::read_u64(rx) {
            // Every message in the job pipe is a `JobRef::into_raw`
            // written by a loop, each read by exactly one worker (8-byte reads
            // of 8-byte writes are atomic), so ownership arrives exactly once.
            Ok(Some(raw)) => {
                // SAFETY: see above.
                let job = unsafe { JobRef::from_raw(raw) };
                job.acquire();
                deliver(pool, ctx, job);
            }
            Ok(None) => return, // every write end closed: the pool is gone
            Err(_) => {
                pool.workers[ctx.idx]
                    .stats
                    .wait_errors
                    .fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// Runs (or cancels) one job and hands its result back to its loop.
fn deliver(pool: &PoolShared, ctx: &mut WorkerCtx, job: JobRef) {
    let h = job.header();
    let slot = h.slot;
    // SAFETY: `home` stays valid while this job is in flight, and from the
    // `senders` increment below until the matching decrement (LoopShared's
    // lifetime contract): the loop waits for both before freeing it.
    let home: &LoopShared = unsafe { h.home.as_ref() };
    home.senders.fetch_add(1, Relaxed);
    let stats = &pool.workers[ctx.idx].stats;
    let cancel = pool.cancel_queued && home.closing.load(Acquire);
    if cancel {
        job.cancel();
        bump(&stats.cancelled);
    } else {
        job.execute();
        bump(&stats.jobs);
    }
    // From here on the cell belongs to the loop; only `home` may be touched.
    match (pool.handoff, pool.announce) {
        (_, Announce::PerJob) => {
            let ud = tag::encode(Kind::Result, home.reg, slot);
            // The job's final state is published; the loop polls it when it
            // is closing, so no message is needed then.
            if !home.closing.load(Acquire) {
                send_with_retry(pool, ctx, home, ud);
            }
        }
        (Handoff::Pipe, _) => {
            let fd = home
                .result_pipe
                .as_ref()
                .expect("pipe loop has a result pipe");
            let raw = job.into_raw();
            let mut backoff = Backoff::new();
            while let Err(_e) = sys::pipe::write_u64(fd, raw) {
                bump(&stats.send_errors);
                backoff.snooze();
            }
        }
        (Handoff::Condvar | Handoff::Spin, _) => home.results.push(job),
        _ => {
            home.results.push(job);
            if !home.closing.load(Acquire) && home.doorbell.should_ring() {
                let ud = tag::encode(Kind::Doorbell, home.reg, 0);
                bump(&stats.doorbells);
                if !send_with_retry(pool, ctx, home, ud) {
                    home.doorbell.unring();
                }
            } else {
                bump(&stats.doorbells_skipped);
            }
        }
    }
    home.senders.fetch_sub(1, Release);
}

/// Announces to `home` with `user_data` over the pool's mechanism, retrying
/// failures (EINTR, ENOMEM, injected faults) with backoff until one succeeds
/// or the loop starts closing (its `close` collects results itself). Returns
/// `false` only in the latter case.
fn send_with_retry(pool: &PoolShared, ctx: &mut WorkerCtx, home: &LoopShared, ud: u64) -> bool {
    let mut backoff = Backoff::new();
    loop {
        if home.closing.load(Acquire) {
            return false;
        }
        let r = match pool.handoff {
            Handoff::MsgRing => {
                let fd = home.ring_fd.as_ref().expect("loop ring fd").as_raw_fd();
                ctx.send_msg(fd, ud, 0)
            }
            Handoff::MsgRingSync => {
                let fd = home.ring_fd.as_ref().expect("loop ring fd").as_raw_fd();
                sys::msg_ring::send(fd, ud, 0)
            }
            Handoff::EventFd => sys::eventfd::notify(home.eventfd.as_ref().expect("eventfd")),
            Handoff::Futex => sys::futex::wake(home.doorbell.word(), 1).map(drop),
            _ => Ok(()),
        };
        match r {
            Ok(()) => return true,
            Err(_) => {
                bump(&pool.workers[ctx.idx].stats.send_errors);
                backoff.snooze();
            }
        }
    }
}

/// Adds one to a counter that only this worker writes: a plain load and
/// store, no locked instruction on the job path.
#[inline]
fn bump(c: &crate::sync::AtomicU64) {
    c.store(c.load(Relaxed) + 1, Relaxed);
}

/// Exponential backoff: spin, then yield, then sleep up to 16 ms.
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(0)
    }

    pub(crate) fn snooze(&mut self) {
        match self.0 {
            0..=5 => (0..1u32 << self.0).for_each(|_| std::hint::spin_loop()),
            6..=9 => std::thread::yield_now(),
            n => std::thread::sleep(Duration::from_micros(1 << (n - 6).min(14))),
        }
        self.0 = self.0.saturating_add(1);
    }
}
