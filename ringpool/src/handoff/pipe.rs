//! `pipe`: the question's design. Job pointers go out through one pipe that
//! every worker blocks on in read(2); each loop has a result pipe, on which
//! workers write the slot of each finished job, and the loop learns of
//! results through a `POLL_ADD` CQE on its own ring. No spinning, no
//! skipped wakes.
//!
//! Needs `IORING_OP_POLL_ADD` (Linux 5.1). Every message is 8 bytes, below
//! `PIPE_BUF`, so writes never interleave and a read of a multiple of 8
//! bytes returns whole messages.
//!
//! The loop moves the messages itself, with non-blocking read(2) and
//! write(2), instead of `IORING_OP_READ`/`IORING_OP_WRITE`: those lend the
//! kernel a buffer that may be reused only once its CQE arrives, and a CQE
//! can be repeated or forged in safe code (`LoopHandle::handle_cqe` takes any
//! entry), so trusting one could free a buffer the kernel still reads, or
//! parse one it is still writing. A poll lends nothing: whatever CQE
//! arrives, the loop only reads what the pipe holds. Results name slots,
//! not pointers, so the loop dereferences only cells of its own table.

use super::caps::Capabilities;
use super::common;
use super::dispatch::{
    BackendConfig, LoopSideOps, MailboxOps, PoolCqe, PoolSideOps, Sink, WorkerOps,
};
use crate::backoff::Backoff;
use crate::error::{Error, ErrorKind};
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{bump, WorkerStats, Workers};
use crate::stats::LoopStats;
use crate::sync::{lock, Mutex};
use crate::sys;
use crate::tag::{self, Kind};
use io_uring::{opcode, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Messages one read(2) or write(2) moves: 4 KiB = `PIPE_BUF`, so a write
/// of a full batch is atomic.
const BATCH: usize = 512;

pub(crate) struct PoolSide {
    /// The read end every worker blocks on.
    rx: OwnedFd,
    /// The write end the loops write to (non-blocking); closed when the
    /// workers exit, so that every blocked worker reads end-of-file.
    tx: Mutex<Option<OwnedFd>>,
}

impl PoolSideOps for PoolSide {
    fn unsupported(caps: &Capabilities) -> Option<String> {
        if !caps.poll {
            return Some(caps.missing("IORING_OP_POLL_ADD", "5.1"));
        }
        None
    }

    fn new(cfg: &BackendConfig) -> Result<Self, Error> {
        let (rx, tx) = sys::pipe::new().map_err(|e| Error::io("cannot create the job pipe", e))?;
        // Room for a full loop's worth of pointers; best effort.
        let _ = sys::pipe::set_size(&tx, (cfg.max_in_flight * 8).max(4096));
        // The loops write without blocking; workers read blocking.
        sys::pipe::set_nonblocking(&tx).map_err(|e| Error::io("cannot set up the job pipe", e))?;
        Ok(PoolSide {
            rx,
            tx: Mutex::new(Some(tx)),
        })
    }

    fn push(&self, _job: JobRef, _lane: Option<u32>) {
        unreachable!("pipe jobs travel through the loop's writes")
    }

    /// Pipe workers block in read(2), not through the sleeper count.
    fn wake_sleepers(&self, _workers: &Workers, _n: usize) -> usize {
        0
    }

    fn release_workers(&self) {
        drop(lock(&self.tx).take()); // EOF for every worker blocked in read(2)
    }
}

pub(crate) struct Worker;

impl WorkerOps for Worker {
    type Pool = PoolSide;

    fn new(_pool: &PoolSide, _idx: usize) -> io::Result<Self> {
        Ok(Worker)
    }

    /// One job per 8-byte message, one message per read (the question's
    /// design).
    fn next_batch(
        &mut self,
        pool: &PoolSide,
        workers: &Workers,
        idx: usize,
        _limit: usize,
        out: &mut Vec<JobRef>,
    ) -> bool {
        loop {
            match sys::pipe::read_u64(&pool.rx) {
                Ok(Some(raw)) => {
                    // SAFETY: every message in the job pipe is a
                    // `JobRef::into_raw` written once by a loop, and each is
                    // read by exactly one worker (8-byte reads of 8-byte
                    // writes are atomic), so ownership arrives exactly once.
                    // (The pipe orders the hand-off, and ThreadSanitizer sees
                    // it: it models a pipe's write and read as release and
                    // acquire.)
                    out.push(unsafe { JobRef::from_raw(raw) });
                    return true;
                }
                Ok(None) => return false, // every write end closed: the pool is gone
                Err(_) => {
                    bump(&workers.slots[idx].stats.wait_errors);
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
    }
}

pub(crate) struct Mailbox {
    /// The write end of the loop's result pipe (blocking: it has room for
    /// every in-flight job of the loop).
    tx: OwnedFd,
}

impl MailboxOps for Mailbox {
    type Worker = Worker;

    fn deliver(&self, _: &LoopShared, _: &mut Worker, jobs: &mut Vec<JobRef>, stats: &WorkerStats) {
        for job in jobs.drain(..) {
            // The job's final state is published; the loop finds the cell
            // through the slot the message names (fixed, so readable even
            // if the loop reused the cell already).
            let slot = job.header().slot;
            let mut backoff = Backoff::new();
            while sys::pipe::write_u64(&self.tx, u64::from(slot)).is_err() {
                bump(&stats.send_errors);
                backoff.snooze();
            }
        }
    }

    #[inline]
    fn pop(&self) -> Option<JobRef> {
        None
    }

    #[inline]
    fn is_empty(&self) -> bool {
        true
    }
}

pub(crate) struct LoopSide {
    /// Read end of this loop's result pipe (non-blocking).
    rx: OwnedFd,
    /// Write end of the pool's job pipe (non-blocking; kept open by the pool
    /// while any loop exists).
    job_pipe: RawFd,
    /// Job pointers not yet written.
    unsent: Vec<u64>,
    /// Where read(2) puts result messages; the loop's alone.
    buf: Box<[u64; BATCH]>,
    /// A `POLLIN` poll on the result pipe is armed.
    reading: bool,
    /// A `POLLOUT` poll on the full job pipe is armed.
    writing: bool,
}

impl LoopSide {
    /// Reads every result message the pipe holds.
    fn drain(&mut self, sink: &mut impl Sink, stats: &mut LoopStats) {
        loop {
            match sys::pipe::read_words(self.rx.as_raw_fd(), &mut self.buf[..]) {
                Ok(0) => return,
                Ok(n) => {
                    for &word in &self.buf[..n] {
                        match u32::try_from(word) {
                            Ok(slot) => sink.slot(slot),
                            Err(_) => sink.ignored(),
                        }
                    }
                    if n < BATCH {
                        return;
                    }
                }
                Err(_) => {
                    // Counted; the poll is re-armed and the read retried.
                    stats.errors += 1;
                    return;
                }
            }
        }
    }
}

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let job_pipe = lock(&pool.tx)
            .as_ref()
            .map(|f| f.as_raw_fd())
            .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "the pool is shutting down"))?;
        let (rx, tx) = sys::pipe::new().map_err(|e| Error::io("cannot create a result pipe", e))?;
        let _ = sys::pipe::set_size(&tx, (cfg.max_in_flight * 8).max(4096));
        sys::pipe::set_nonblocking(&rx).map_err(|e| Error::io("cannot set up a result pipe", e))?;
        let side = LoopSide {
            rx,
            job_pipe,
            unsent: Vec::new(),
            buf: Box::new([0; BATCH]),
            reading: false,
            writing: false,
        };
        Ok((side, Mailbox { tx }))
    }

    /// Results need the loop's own read: spinning on a mailbox finds nothing.
    fn spins_on_results(&self) -> bool {
        false
    }

    /// Jobs leave through the pipe, not a lane.
    const LANE_WAKES: Option<bool> = None;

    #[inline]
    fn enqueue(&mut self, _pool: &PoolSide, job: JobRef, _lane: Option<u32>) -> bool {
        self.unsent.push(job.into_raw());
        false
    }

    /// Writes the unsent job pointers, a batch per write(2). What a full
    /// pipe refuses waits for the `POLLOUT` poll that `arm` queues.
    fn send_jobs(&mut self, stats: &mut LoopStats) {
        let mut sent = 0;
        while sent < self.unsent.len() {
            let end = (sent + BATCH).min(self.unsent.len());
            match sys::pipe::write_words(self.job_pipe, &self.unsent[sent..end]) {
                Ok(true) => sent = end,
                Ok(false) => break,
                Err(_) => {
                    stats.errors += 1;
                    break;
                }
            }
        }
        self.unsent.drain(..sent);
    }

    fn arm(
        &mut self,
        ring: &mut IoUring,
        _home: &LoopShared,
        reg: u16,
        stats: &mut LoopStats,
    ) -> io::Result<bool> {
        let mut queued = false;
        if !self.reading {
            let sqe = opcode::PollAdd::new(types::Fd(self.rx.as_raw_fd()), libc::POLLIN as u32)
                .build()
                .user_data(tag::encode(Kind::PipeRead, reg, 0));
            // SAFETY: POLL_ADD references no user memory: only the result
            // pipe, of which the request holds its own reference.
            unsafe { common::push_sqe(ring, &sqe, stats)? };
            self.reading = true;
            queued = true;
        }
        if !self.unsent.is_empty() && !self.writing {
            let sqe = opcode::PollAdd::new(types::Fd(self.job_pipe), libc::POLLOUT as u32)
                .build()
                .user_data(tag::encode(Kind::PipeWrite, reg, 0));
            // SAFETY: POLL_ADD references no user memory: only the job pipe,
            // of which the request holds its own reference.
            unsafe { common::push_sqe(ring, &sqe, stats)? };
            self.writing = true;
            queued = true;
        }
        Ok(queued)
    }

    fn on_cqe(
        &mut self,
        cqe: PoolCqe,
        _pool: &PoolSide,
        _workers: &Workers,
        sink: &mut impl Sink,
        stats: &mut LoopStats,
    ) -> bool {
        if cqe.res < 0 && cqe.res != -libc::ECANCELED {
            stats.errors += 1;
        }
        match cqe.kind {
            // Whatever the CQE says, only what the pipe holds is read.
            Kind::PipeRead => {
                self.reading = false;
                self.drain(sink, stats);
            }
            // The job pipe has room again: the next flush writes.
            Kind::PipeWrite => self.writing = false,
            _ => sink.ignored(),
        }
        false
    }

    /// Jobs still unsent never left: `close` cancels them.
    fn take_unsent(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.unsent)
    }

    /// Reads the result pipe directly. (Writes need no ring either:
    /// `send_jobs` keeps them going out while closing.)
    fn collect(&mut self, sink: &mut impl Sink, stats: &mut LoopStats) {
        self.drain(sink, stats);
    }

    /// Results come only through the poll the loop re-arms.
    fn flushes_on_close(&self) -> bool {
        true
    }

    fn cancelled(&mut self, what: Kind) {
        match what {
            Kind::PipeRead => self.reading = false,
            Kind::PipeWrite => self.writing = false,
            _ => {}
        }
    }

    fn armed(&self, reg: u16) -> Vec<u64> {
        let mut v = Vec::new();
        if self.reading {
            v.push(tag::encode(Kind::PipeRead, reg, 0));
        }
        if self.writing {
            v.push(tag::encode(Kind::PipeWrite, reg, 0));
        }
        v
    }

    fn busy(&self) -> bool {
        self.reading || self.writing
    }
}
