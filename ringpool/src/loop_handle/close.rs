//! Closing a loop: with its ring ([`LoopHandle::close`]) or without it
//! (`Drop`).

use super::completions::Completion;
use super::LoopHandle;
use crate::backoff::Backoff;
use crate::config::Announce;
use crate::handoff::dispatch::Sink;
use crate::pool::job::JobRef;
use crate::sync::Ordering::SeqCst;
use crate::sys;
use crate::tag::{self, Kind};
use io_uring::{cqueue, opcode, types, IoUring};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

impl<R> LoopHandle<R> {
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
        self.close_with(Some(ring), &mut on_io);
        self.slots.take_ready()
    }

    /// Both ways of closing. Without the ring, the pool's SQEs are submitted
    /// and cancelled through the handle's duplicate of the ring fd.
    pub(super) fn close_with(
        &mut self,
        mut ring: Option<&mut IoUring>,
        on_io: &mut dyn FnMut(cqueue::Entry),
    ) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.slots.closing = true;
        self.shared.closing.store(true, SeqCst);
        // Jobs the loop still holds never reached a worker: cancel them here.
        for raw in self.side.take_unsent(ring.is_some()) {
            // SAFETY: never handed to the kernel or a worker, so the loop
            // still owns the cell, and each pointer is taken once.
            let job = unsafe { JobRef::from_raw(raw) };
            job.cancel();
            self.slots.finished(job);
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
                self.owner.shared.wake_sleepers(self.slots.in_flight());
            }
        }
        // Kernel-delivered results (per-job messages, pipe pointers) may be
        // skipped or unreachable now: collect those jobs by polling states.
        let poll = self.owner.shared.announce == Announce::PerJob
            || self.side.polls_on_close(ring.is_some());
        let flush = self.side.flushes_on_close();
        let mut backoff = Backoff::new();
        let mut last_wake = Instant::now();
        while self.slots.in_flight() > 0 {
            let before = self.slots.in_flight();
            if let Some(r) = ring.as_deref_mut() {
                self.reap(r, &mut *on_io);
                if flush {
                    let _ = self.flush(r);
                }
            }
            self.drain_results();
            if poll {
                self.slots.poll();
            }
            if self.slots.in_flight() == before {
                match ring.as_deref_mut() {
                    Some(r) => self.wait_briefly(r),
                    None => backoff.snooze(),
                }
                if last_wake.elapsed() > Duration::from_millis(10) {
                    // Belt and braces: a worker asleep with our job queued.
                    self.owner.shared.wake_sleepers(self.slots.in_flight());
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

    /// Cancels the pool's armed SQE and reaps until the kernel is done with
    /// every buffer it was given.
    fn disarm(&mut self, ring: &mut IoUring, on_io: &mut dyn FnMut(cqueue::Entry)) {
        let reg = self.shared.reg;
        if let Some(ud) = self.side.armed(reg) {
            let sqe =
                opcode::AsyncCancel::new(ud)
                    .build()
                    .user_data(tag::encode(Kind::Cancel, reg, 0));
            // SAFETY: ASYNC_CANCEL references no memory.
            let _ = unsafe { crate::handoff::common::push_sqe(ring, &sqe, &mut self.stats) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.side.busy() {
            if Instant::now() >= deadline {
                // The kernel did not give the buffers back in time: cancel
                // synchronously, or leak them rather than risk a write into
                // freed memory.
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
        let fd = self.shared.ring.as_raw_fd();
        if self.side.release(fd, self.shared.reg) {
            // The kernel may still read the loop's shared part (a futex word).
            std::mem::forget(self.shared.clone());
        }
    }

    /// Submits SQEs already queued on the ring (our wakes among them) through
    /// the duplicated fd, so none can reach the kernel after the pool is gone.
    fn submit_queued_sqes(&mut self) {
        if self.side.queues_sqes_for_workers() {
            self.stats.enters += 1;
            let _ = sys::enter_submit(self.shared.ring.as_raw_fd(), self.sq_entries);
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
        self.close_with(None, &mut |_| {});
    }
}
