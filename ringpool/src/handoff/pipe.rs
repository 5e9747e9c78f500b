//! `pipe`: the question's design. Job pointers go out through one pipe with
//! `IORING_OP_WRITE`s from the loop's ring; workers block in read(2) on it;
//! result pointers come back through a pipe per loop, which the loop reads
//! with `IORING_OP_READ`. No spinning, no skipped wakes.
//!
//! Needs `IORING_OP_READ`/`IORING_OP_WRITE` (Linux 5.6). Every message is
//! one 8-byte pointer, below `PIPE_BUF`, so writes never interleave and a
//! read of a multiple of 8 bytes returns whole messages. A buffer given to
//! an io_uring read or write lives until its CQE: writes stay in a table
//! until reaped, and the armed read is cancelled and reaped at `close`.

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

/// Words of result pointers one read can take (4 KiB = `PIPE_BUF`, so a
/// write of a full batch is atomic too).
const READ_WORDS: usize = 512;

/// Failed attempts after which a job write is given up and its jobs are
/// cancelled (the job pipe is broken for good).
const MAX_WRITE_FAILURES: u32 = 16;

pub(crate) struct PoolSide {
    /// The read end every worker blocks on.
    rx: OwnedFd,
    /// The write end the loops' writes target; closed at stop, so that
    /// every blocked worker reads end-of-file.
    tx: Mutex<Option<OwnedFd>>,
}

impl PoolSideOps for PoolSide {
    fn unsupported(caps: &Capabilities) -> Option<String> {
        if !caps.read_write {
            return Some(caps.missing("IORING_OP_READ/IORING_OP_WRITE", "5.6"));
        }
        None
    }

    fn new(cfg: &BackendConfig) -> Result<Self, Error> {
        let (rx, tx) = sys::pipe::new().map_err(|e| Error::io("cannot create the job pipe", e))?;
        // Room for a full loop's worth of pointers; best effort.
        let _ = sys::pipe::set_size(&tx, (cfg.max_in_flight * 8).max(4096));
        Ok(PoolSide {
            rx,
            tx: Mutex::new(Some(tx)),
        })
    }

    fn push(&self, _job: JobRef) {
        unreachable!("pipe jobs travel through the loop's writes")
    }

    fn pop(&self) -> Option<JobRef> {
        None
    }

    fn is_empty(&self) -> bool {
        true
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

    fn next_job(&mut self, pool: &PoolSide, workers: &Workers, idx: usize) -> Option<JobRef> {
        loop {
            match sys::pipe::read_u64(&pool.rx) {
                Ok(Some(raw)) => {
                    // SAFETY: every message in the job pipe is a
                    // `JobRef::into_raw` written once by a loop, and each is
                    // read by exactly one worker (8-byte reads of 8-byte
                    // writes are atomic), so ownership arrives exactly once.
                    let job = unsafe { JobRef::from_raw(raw) };
                    job.acquire();
                    return Some(job);
                }
                Ok(None) => return None, // every write end closed: the pool is gone
                Err(_) => {
                    bump(&workers.slots[idx].stats.wait_errors);
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
    }
}

pub(crate) struct Mailbox {
    /// The write end of the loop's result pipe.
    tx: OwnedFd,
}

impl MailboxOps for Mailbox {
    type Worker = Worker;

    fn deliver(&self, _: &LoopShared, _: &mut Worker, job: JobRef, _: u32, stats: &WorkerStats) {
        let raw = job.into_raw();
        let mut backoff = Backoff::new();
        while sys::pipe::write_u64(&self.tx, raw).is_err() {
            bump(&stats.send_errors);
            backoff.snooze();
        }
    }

    fn pop(&self) -> Option<JobRef> {
        None
    }

    fn is_empty(&self) -> bool {
        true
    }
}

/// A submitted `IORING_OP_WRITE` of job pointers.
struct JobWrite {
    /// The pointers. Invariant: stays in `LoopSide::writes`, unmoved (a boxed
    /// slice), until the write's CQE is reaped.
    buf: Box<[u64]>,
    /// Bytes already written.
    done: usize,
    /// Failed attempts so far.
    failures: u32,
}

pub(crate) struct LoopSide {
    /// Read end of this loop's result pipe.
    rx: OwnedFd,
    /// Destination of the armed `IORING_OP_READ`, written by the kernel.
    /// Invariant: while `reading`, nothing else touches it, and it is freed
    /// only once the read is reaped or cancelled (leaked if it cannot be).
    buf: Box<[u64; READ_WORDS]>,
    /// The read is armed.
    reading: bool,
    /// Write end of the pool's job pipe (kept open by the pool while any
    /// loop exists).
    job_pipe: RawFd,
    /// Job pointers not yet written.
    unsent: Vec<u64>,
    /// Submitted writes, indexed by the payload of their `user_data`.
    writes: Vec<Option<JobWrite>>,
    /// Writes that came back short or failed, to be resubmitted.
    retry: Vec<u32>,
}

impl LoopSide {
    fn submit_write(
        &mut self,
        ring: &mut IoUring,
        idx: u32,
        reg: u8,
        stats: &mut LoopStats,
    ) -> io::Result<()> {
        let Some(w) = self.writes[idx as usize].as_ref() else {
            return Ok(());
        };
        let bytes = w.buf.len() * 8;
        // SAFETY: `done <= bytes`, so the pointer stays inside the buffer.
        let ptr = unsafe { w.buf.as_ptr().cast::<u8>().add(w.done) };
        let sqe = opcode::Write::new(types::Fd(self.job_pipe), ptr, (bytes - w.done) as u32)
            .build()
            .user_data(tag::encode(Kind::PipeWrite, reg, idx));
        // SAFETY: the buffer stays in `self.writes[idx]`, unmoved, until this
        // write's CQE is reaped (the `JobWrite` invariant), and is leaked if
        // the loop goes away before that and the write cannot be cancelled.
        unsafe { common::push_sqe(ring, &sqe, stats) }
    }

    fn on_read(&mut self, res: i32, sink: &mut impl Sink, stats: &mut LoopStats) {
        self.reading = false;
        if res <= 0 {
            if res < 0 && res != -libc::ECANCELED {
                stats.errors += 1;
            }
            return;
        }
        // Every writer writes exactly 8 bytes (atomic, <= PIPE_BUF) and we
        // read a multiple of 8, so reads are whole messages.
        let n = (res as usize / 8).min(READ_WORDS);
        for &raw in &self.buf[..n] {
            sink.pointer(raw);
        }
    }

    fn on_write(&mut self, idx: u32, res: i32, sink: &mut impl Sink, stats: &mut LoopStats) {
        let Some(Some(w)) = self.writes.get_mut(idx as usize) else {
            return;
        };
        if res < 0 {
            stats.errors += 1;
            w.failures += 1;
            if w.failures > MAX_WRITE_FAILURES {
                // The job pipe is broken for good: the jobs in this buffer
                // never reached a worker. Cancel them so their owner hears.
                if let Some(w) = self.writes[idx as usize].take() {
                    for &raw in &w.buf[w.done / 8..] {
                        // SAFETY: these pointers were never delivered, so
                        // the loop still owns their cells, each once.
                        let job = unsafe { JobRef::from_raw(raw) };
                        job.cancel();
                        sink.finished(job);
                    }
                }
                return;
            }
            self.retry.push(idx);
            return;
        }
        w.done += res as usize;
        if w.done < w.buf.len() * 8 {
            self.retry.push(idx); // short write: send the rest
        } else {
            self.writes[idx as usize] = None;
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
        let side = LoopSide {
            rx,
            buf: Box::new([0; READ_WORDS]),
            reading: false,
            job_pipe,
            unsent: Vec::new(),
            writes: Vec::new(),
            retry: Vec::new(),
        };
        Ok((side, Mailbox { tx }))
    }

    /// Results need the loop's own read: spinning on a mailbox finds nothing.
    fn spins_on_results(&self) -> bool {
        false
    }

    fn enqueue(&mut self, _pool: &PoolSide, job: JobRef) -> bool {
        job.publish();
        self.unsent.push(job.into_raw());
        false
    }

    fn send_jobs(
        &mut self,
        ring: &mut IoUring,
        reg: u8,
        stats: &mut LoopStats,
    ) -> io::Result<bool> {
        let mut queued = false;
        let retry = std::mem::take(&mut self.retry);
        for (i, &idx) in retry.iter().enumerate() {
            if let Err(e) = self.submit_write(ring, idx, reg, stats) {
                self.retry.extend_from_slice(&retry[i..]); // not lost: tried again next flush
                return Err(e);
            }
            queued = true;
        }
        while !self.unsent.is_empty() {
            let n = self.unsent.len().min(READ_WORDS); // 4 KiB = PIPE_BUF: atomic
            let write = JobWrite {
                buf: self.unsent.drain(..n).collect(),
                done: 0,
                failures: 0,
            };
            let idx = match self.writes.iter().position(Option::is_none) {
                Some(i) => {
                    self.writes[i] = Some(write);
                    i
                }
                None => {
                    self.writes.push(Some(write));
                    self.writes.len() - 1
                }
            } as u32;
            if let Err(e) = self.submit_write(ring, idx, reg, stats) {
                self.retry.push(idx); // not lost: tried again next flush
                return Err(e);
            }
            queued = true;
        }
        Ok(queued)
    }

    fn arm(
        &mut self,
        ring: &mut IoUring,
        _home: &LoopShared,
        reg: u8,
        stats: &mut LoopStats,
    ) -> io::Result<()> {
        if self.reading {
            return Ok(());
        }
        let sqe = opcode::Read::new(
            types::Fd(self.rx.as_raw_fd()),
            self.buf.as_mut_ptr().cast(),
            (READ_WORDS * 8) as u32,
        )
        .build()
        .user_data(tag::encode(Kind::PipeRead, reg, 0));
        // SAFETY: `self.buf` is a boxed array that is neither moved, read
        // nor freed while `reading` (the `LoopSide::buf` invariant).
        unsafe { common::push_sqe(ring, &sqe, stats)? };
        self.reading = true;
        Ok(())
    }

    fn on_cqe(
        &mut self,
        cqe: PoolCqe,
        _pool: &PoolSide,
        _workers: &Workers,
        sink: &mut impl Sink,
        stats: &mut LoopStats,
    ) -> bool {
        match cqe.kind {
            Kind::PipeRead => self.on_read(cqe.res, sink, stats),
            Kind::PipeWrite => self.on_write(cqe.payload, cqe.res, sink, stats),
            _ => {}
        }
        false
    }

    /// Jobs still unsent never left. Without the ring, writes waiting to be
    /// retried cannot be resubmitted either; a failed write of at most
    /// `PIPE_BUF` bytes wrote nothing, so the jobs after its `done` mark
    /// never left: those are returned too.
    fn take_unsent(&mut self, with_ring: bool) -> Vec<u64> {
        let mut never_sent = std::mem::take(&mut self.unsent);
        if !with_ring {
            for idx in std::mem::take(&mut self.retry) {
                if let Some(w) = self.writes[idx as usize].take() {
                    never_sent.extend_from_slice(&w.buf[w.done / 8..]);
                }
            }
        }
        never_sent
    }

    /// Without the ring the result pipe cannot be read: collect by polling.
    fn polls_on_close(&self, with_ring: bool) -> bool {
        !with_ring
    }

    fn flushes_on_close(&self) -> bool {
        true
    }

    fn queues_sqes_for_workers(&self) -> bool {
        true
    }

    fn armed(&self, reg: u8) -> Option<u64> {
        self.reading.then(|| tag::encode(Kind::PipeRead, reg, 0))
    }

    fn busy(&self) -> bool {
        self.reading || self.writes.iter().any(Option::is_some)
    }

    /// Cancels the read and the writes synchronously; a buffer whose request
    /// cannot be cancelled is leaked rather than freed under the kernel.
    fn release(&mut self, ring_fd: RawFd, reg: u8) -> bool {
        let cancelled = |ud: u64| sys::cancel::sync_cancel(ring_fd, ud).is_ok();
        if self.reading && !cancelled(tag::encode(Kind::PipeRead, reg, 0)) {
            let buf = std::mem::replace(&mut self.buf, Box::new([0; READ_WORDS]));
            std::mem::forget(buf);
        }
        self.reading = false;
        for (i, w) in std::mem::take(&mut self.writes).into_iter().enumerate() {
            if let Some(w) = w {
                if !cancelled(tag::encode(Kind::PipeWrite, reg, i as u32)) {
                    std::mem::forget(w.buf);
                }
            }
        }
        false
    }
}
