//! The answer's design: the one an answer to ringpool's motivating question
//! proposed as a C demo (`docs/answers.md` weighs it against ringpool),
//! rebuilt step for step with the io-uring crate:
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
//! Two sizes differ from the demo, so that no scenario overflows a CQ (the
//! demo ran 32 jobs; the deepest scenario keeps 256 in flight): the loop's ring has
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

/// SQ entries of a worker's ring (the demo's `TQSIZE`).
const WORKER_SQ: u32 = 32;
/// CQ entries of a worker's ring: every job of the deepest scenario (256)
/// may wait in one worker's CQ.
const WORKER_CQ: u32 = 512;

/// One job as it travels to a worker and back, by pointer (the demo's
/// `job_unit`): the worker fills in `output` and sets `done`.
struct JobUnit {
    input: Job,
    output: u64,
    done: bool,
}

/// The loop side of the answer's design.
pub struct AnswerEngine {
    ring: IoUring,
    /// Each worker's ring, as the worker announced it; jobs go round-robin.
    worker_ring_fds: Vec<RawFd>,
    threads: Vec<JoinHandle<()>>,
    /// Index into `worker_ring_fds` of the worker that got the last job.
    last_worker: usize,
    /// `io_uring_enter` calls made by the loop.
    enters: u64,
    /// MSG_RINGs sent to workers (one per job).
    sent: u64,
    /// MSG_RINGs received from workers (one per job).
    received: u64,
    /// The idle timeout's timespec; boxed and dropped after the ring, so it
    /// outlives any timeout SQE that references it.
    idle_ts: Box<types::Timespec>,
}

/// A MSG_RING SQE that posts a CQE with `user_data` on the ring `fd`; the
/// sender gets no CQE of its own unless the message fails.
fn msg_ring_sqe(fd: RawFd, user_data: u64) -> squeue::Entry {
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
        let loop_ring_fd = ring.as_raw_fd();
        let mut threads = Vec::new();
        for i in 0..cfg.workers {
            let thread = spawn_worker(cfg, i, format!("answer-worker-{i}"), move || {
                worker(loop_ring_fd)
            })
            .map_err(|e| format!("answer: {e}"))?;
            threads.push(thread);
        }
        // Collect each worker's ring fd, in the order they announce them.
        let mut worker_ring_fds = Vec::new();
        let mut enters = 0;
        while worker_ring_fds.len() < cfg.workers {
            enters += 1;
            ring.submit_and_wait(1)
                .map_err(|e| format!("answer: waiting for worker fds: {e}"))?;
            for cqe in ring.completion() {
                if cqe.result() < 0 {
                    return Err(format!("answer: worker start: errno {}", -cqe.result()));
                }
                worker_ring_fds.push(cqe.user_data() as RawFd);
            }
        }
        Ok(AnswerEngine {
            ring,
            worker_ring_fds,
            threads,
            last_worker: 0,
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
            // SAFETY: `push` is given two kinds of SQE only:
            // * MSG_RING data SQEs (`msg_ring_sqe`), which carry a ring fd
            //   and two integers and point at no memory;
            // * the idle timeout (`idle`), whose one pointer is to the
            //   timespec in `self.idle_ts`: boxed (it does not move), dropped
            //   after the ring (fields drop in declaration order), and
            //   rewritten only by `idle`, which returns Ok only once that
            //   timeout's CQE has been reaped (after an error the scenario
            //   drops the engine without idling again).
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.enter(0)?;
        }
    }
}

/// One worker (the demo's `work()`): builds its own ring attached to the
/// loop's, announces it, then runs every job it is sent until the stop
/// message (`user_data == 0`).
fn worker(loop_ring_fd: RawFd) {
    let ring: std::io::Result<IoUring> = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_defer_taskrun()
        .setup_attach_wq(loop_ring_fd)
        .setup_cqsize(WORKER_CQ)
        .build(WORKER_SQ);
    let mut ring = match ring {
        Ok(r) => r,
        Err(e) => {
            eprintln!("answer: worker ring: {e}");
            return;
        }
    };
    // Tell the loop's ring about this one by sending its fd.
    let hello = msg_ring_sqe(loop_ring_fd, ring.as_raw_fd() as u64);
    // SAFETY: a MSG_RING data SQE carries a ring fd and two integers and
    // points at no memory.
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
        // SAFETY: the only messages the loop sends a worker are 0 (the stop,
        // which broke out of the loop just before) and job pointers, so
        // `ptr` is:
        // * from `Box::into_raw` in `submit`: non-null, aligned, a live
        //   JobUnit;
        // * this worker's alone: the loop does not touch the JobUnit again
        //   until this worker sends the same pointer back, and it sends
        //   each pointer to one worker once;
        // * fully written: the loop wrote the JobUnit before submitting the
        //   MSG_RING, and the kernel's posting of the CQE, read here through
        //   the ring's acquire load of the CQ tail, orders those writes
        //   before these reads.
        let job = unsafe { &mut *ptr };
        job.output = burn(job.input.iters) ^ job.input.token;
        job.done = true;
        // Send the pointer back, one message per job, submitted at once.
        let back = msg_ring_sqe(loop_ring_fd, ptr as u64);
        // SAFETY: a MSG_RING data SQE carries a ring fd and two integers and
        // points at no memory (the pointer travels as an integer).
        while unsafe { ring.submission().push(&back) }.is_err() {
            let _ = ring.submit();
        }
        let _ = ring.submit();
    }
}

impl Engine for AnswerEngine {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        self.last_worker = (self.last_worker + 1) % self.worker_ring_fds.len();
        let fd = self.worker_ring_fds[self.last_worker];
        let unit = Box::into_raw(Box::new(JobUnit {
            input: job,
            output: 0,
            done: false,
        }));
        self.sent += 1;
        self.push(&msg_ring_sqe(fd, unit as u64))
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        let start = done.len();
        loop {
            for cqe in self.ring.completion() {
                let user_data = cqe.user_data();
                if cqe.result() < 0 {
                    return Err(format!("answer: MSG_RING failed: errno {}", -cqe.result()));
                }
                if user_data == IDLE_TIMEOUT || user_data == 0 {
                    continue;
                }
                // SAFETY: once the constructor has collected the worker
                // fds, a CQE on the loop ring is a failed SQE of the loop's
                // (result < 0: this function has returned an error), the
                // idle timeout or a 0 (both skipped by `continue`), or a
                // worker's reply. A reply carries a
                // pointer from `Box::into_raw` in `submit`, sent back once by
                // the one worker that got it, after its last access to the
                // JobUnit: this is its only owner again.
                let job = unsafe { Box::from_raw(user_data as *mut JobUnit) };
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
        for i in 0..self.worker_ring_fds.len() {
            let stop = msg_ring_sqe(self.worker_ring_fds[i], 0);
            let _ = self.push(&stop);
        }
        let _ = self.enter(0);
        join_workers(self.threads.drain(..));
    }
}
