//! The answer's design, faithfully, with the io-uring crate (the C demo in
//! `/work/shared/origin/question.md`, translated):
//!
//! * the loop's ring: `SINGLE_ISSUER | COOP_TASKRUN | DEFER_TASKRUN | SUBMIT_ALL`;
//! * one ring per worker: `SINGLE_ISSUER | COOP_TASKRUN | DEFER_TASKRUN |
//!   ATTACH_WQ` (attached to the loop's ring), created on the worker, which
//!   first sends its ring fd to the loop with a MSG_RING;
//! * one `IORING_OP_MSG_RING` per job in each direction, each with
//!   `IOSQE_CQE_SKIP_SUCCESS`, the job's pointer in `user_data`; jobs go to
//!   the workers round-robin;
//! * a worker waits for a CQE (`io_uring_wait_cqe`: peek, else enter with
//!   GETEVENTS), runs the job, queues the reply and submits it at once: no
//!   batching and no spinning on the worker side. `user_data == 0` stops it.
//!
//! Two sizes differ from the demo, so that no scenario overflows a CQ (which
//! the demo never had to consider with 32 jobs): the loop's ring has
//! [`LOOP_SQ`](super::engine::LOOP_SQ) SQ /
//! [`LOOP_CQ`](super::engine::LOOP_CQ) CQ entries, and each worker's CQ has room
//! for the deepest scenario.
//!
//! The loop side, like the demo, queues as many job SQEs as it has and
//! submits them with one `io_uring_enter`, which also waits for the next CQE.

use super::engine::{
    idle_timeout_sqe, join_workers, spawn_worker, Counters, Engine, EngineCfg, Job, LoopRing,
    IDLE_TIMEOUT,
};
use super::work::burn;
use io_uring::{opcode, squeue, types, IoUring};
use std::os::fd::{AsRawFd, RawFd};
use std::thread::JoinHandle;
use std::time::Duration;

/// The demo's `TQSIZE`: SQ entries of a worker's ring.
const TQSIZE: u32 = 32;
/// CQ entries of a worker's ring: every job of the deepest scenario (256)
/// may wait in one worker's CQ.
const WORKER_CQ: u32 = 512;

/// The demo's `job_unit`: it travels to a worker and back by pointer.
struct JobUnit {
    input: Job,
    output: u64,
    done: bool,
}

/// The loop side of the answer's design.
pub struct AnswerEngine {
    ring: IoUring,
    work_fds: Vec<RawFd>,
    threads: Vec<JoinHandle<()>>,
    work_fd_num: usize,
    /// `io_uring_enter` calls made by the loop.
    enters: u64,
    /// MSG_RINGs sent to workers (one per job).
    sent: u64,
    /// MSG_RINGs received from workers (one per job).
    received: u64,
    idle_ts: Box<types::Timespec>,
}

fn msg(fd: RawFd, user_data: u64) -> squeue::Entry {
    opcode::MsgRingData::new(types::Fd(fd), 0, user_data, None)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
}

impl AnswerEngine {
    /// Builds the loop's ring, starts `cfg.workers` workers (pinned like
    /// every contender's) and collects their ring fds, as the demo does.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        // The answer's loop flags, whatever `--loop-ring` says for ringpool.
        let mut ring = LoopRing::Answer
            .build()
            .map_err(|e| format!("answer: loop ring: {e}"))?;
        let root_fd = ring.as_raw_fd();
        let mut threads = Vec::new();
        for i in 0..cfg.workers {
            let t = spawn_worker(cfg, i, format!("answer-worker-{i}"), move || work(root_fd))
                .map_err(|e| format!("answer: {e}"))?;
            threads.push(t);
        }
        // Fill out the table of work-thread ring fds.
        let mut work_fds = Vec::new();
        let mut enters = 0;
        while work_fds.len() < cfg.workers {
            enters += 1;
            ring.submit_and_wait(1)
                .map_err(|e| format!("answer: waiting for worker fds: {e}"))?;
            for cqe in ring.completion() {
                if cqe.result() < 0 {
                    return Err(format!("answer: worker start: errno {}", -cqe.result()));
                }
                work_fds.push(cqe.user_data() as RawFd);
            }
        }
        Ok(AnswerEngine {
            ring,
            work_fds,
            threads,
            work_fd_num: 0,
            enters,
            sent: 0,
            received: 0,
            idle_ts: Box::new(types::Timespec::new()),
        })
    }

    fn enter(&mut self, want: usize) -> Result<(), String> {
        loop {
            self.enters += 1;
            match self.ring.submit_and_wait(want) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(format!("answer: io_uring_enter: {e}")),
            }
        }
    }

    fn push(&mut self, sqe: &squeue::Entry) -> Result<(), String> {
        loop {
            // SAFETY: a MSG_RING data SQE and a TIMEOUT whose timespec is
            // boxed in `self.idle_ts` (see `idle`) reference no other memory;
            // the target rings stay open until their workers get the stop
            // message in `drop`.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.enter(0)?;
        }
    }
}

/// The demo's `work()`: a worker with its own ring.
fn work(root_fd: RawFd) {
    let ring: std::io::Result<IoUring> = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_defer_taskrun()
        .setup_attach_wq(root_fd)
        .setup_cqsize(WORKER_CQ)
        .build(TQSIZE);
    let mut ring = match ring {
        Ok(r) => r,
        Err(e) => {
            eprintln!("answer: worker ring: {e}");
            return;
        }
    };
    // Tell the loop's ring about this one by sending its fd.
    let hello = msg(root_fd, ring.as_raw_fd() as u64);
    // SAFETY: a MSG_RING data SQE references no memory.
    if unsafe { ring.submission().push(&hello) }.is_err() || ring.submit().is_err() {
        eprintln!("answer: worker could not announce its ring");
        return;
    }
    loop {
        // io_uring_wait_cqe: take a CQE if one is visible, else enter and wait.
        let next = ring.completion().next();
        let Some(cqe) = next else {
            if let Err(e) = ring.submit_and_wait(1) {
                if e.raw_os_error() != Some(libc::EINTR) {
                    eprintln!("answer: worker wait: {e}");
                    return;
                }
            }
            continue;
        };
        // Stop signal: terminate the thread.
        if cqe.user_data() == 0 {
            break;
        }
        let ptr = cqe.user_data() as *mut JobUnit;
        // SAFETY: every non-zero message the loop sends is a
        // `Box::into_raw(JobUnit)` that it does not touch again until this
        // worker sends the same pointer back; the MSG_RING posting (a locked
        // CQ write in the kernel) orders the loop's writes before our reads.
        let job = unsafe { &mut *ptr };
        job.output = burn(job.input.iters) ^ job.input.token;
        job.done = true;
        // Send the pointer back, one message per job, submitted at once.
        let back = msg(root_fd, ptr as u64);
        // SAFETY: a MSG_RING data SQE references no memory.
        while unsafe { ring.submission().push(&back) }.is_err() {
            let _ = ring.submit();
        }
        let _ = ring.submit();
    }
}

impl Engine for AnswerEngine {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        self.work_fd_num = (self.work_fd_num + 1) % self.work_fds.len();
        let fd = self.work_fds[self.work_fd_num];
        let unit = Box::into_raw(Box::new(JobUnit {
            input: job,
            output: 0,
            done: false,
        }));
        self.sent += 1;
        self.push(&msg(fd, unit as u64))
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        let start = done.len();
        loop {
            for cqe in self.ring.completion() {
                let ud = cqe.user_data();
                if cqe.result() < 0 {
                    return Err(format!("answer: MSG_RING failed: errno {}", -cqe.result()));
                }
                if ud == IDLE_TIMEOUT || ud == 0 {
                    continue;
                }
                // SAFETY: the worker sends back exactly the pointer it got,
                // once, after its last access to the job.
                let job = unsafe { Box::from_raw(ud as *mut JobUnit) };
                debug_assert!(job.done);
                let _ = job.output;
                self.received += 1;
                done.push(job.input.token);
            }
            if done.len() > start {
                // Like the demo, job SQEs queued by the caller go out with
                // the next enter; none is needed now.
                return Ok(());
            }
            self.enter(1)?;
        }
    }

    fn idle(&mut self, d: Duration) -> Result<(), String> {
        let sqe = idle_timeout_sqe(&mut self.idle_ts, d);
        self.push(&sqe)?;
        loop {
            self.enter(1)?;
            let mut fired = false;
            for cqe in self.ring.completion() {
                fired |= cqe.user_data() == IDLE_TIMEOUT;
            }
            if fired {
                return Ok(());
            }
        }
    }

    fn counters(&self) -> Counters {
        Counters {
            enters: Some(self.enters),
            wakes_sent: Some(self.sent),
            doorbells_sent: Some(self.received),
            doorbells_skipped: Some(0),
            parks: None,
        }
    }
}

impl Drop for AnswerEngine {
    fn drop(&mut self) {
        // Broadcast shutdown to the workers, then join them.
        for i in 0..self.work_fds.len() {
            let stop = msg(self.work_fds[i], 0);
            let _ = self.push(&stop);
        }
        let _ = self.enter(0);
        join_workers(self.threads.drain(..));
    }
}
