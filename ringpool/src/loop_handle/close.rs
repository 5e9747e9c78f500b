//! Closing a loop: with its ring ([`LoopHandle::close`]) or without it
//! (`Drop`).

use super::completions::Completion;
use super::LoopHandle;
use crate::backoff::Backoff;
use crate::config::Announce;
use crate::handoff::dispatch::Sink;
use crate::handoff::Capabilities;
use crate::pool::job::JobRef;
use crate::sync::Ordering::{Relaxed, SeqCst};
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

    /// Both ways of closing. Without the ring (or with a ring that is not
    /// this handle's), nothing is submitted: the pool's armed SQEs are
    /// cancelled through the handle's duplicate of the ring fd, and workers
    /// claimed for a wake are woken directly.
    ///
    /// Panic-safe: a callback that panics part-way leaves the state
    /// `Closing`, and the handle's `Drop` finishes the close without the
    /// ring, so no worker is left holding a job whose loop is gone.
    pub(super) fn close_with(
        &mut self,
        mut ring: Option<&mut IoUring>,
        on_io: &mut dyn FnMut(cqueue::Entry),
    ) {
        match self.state {
            State::Closed => return,
            // An earlier close unwound (a callback panicked): finish it
            // without trusting the ring again.
            State::Closing => ring = None,
            State::Open => {}
        }
        if let Some(r) = ring.as_deref() {
            if self.check_ring_identity(r).is_err() {
                ring = None;
            }
        }
        self.state = State::Closing;
        // From here on the close waits on its own terms: results must be
        // announced again.
        self.release_doorbell();
        self.shared.closing.store(true, SeqCst);
        // The ASan stage's expected failure: without the waits below, the
        // loop's shared part is freed under running workers.
        #[cfg(ringpool_no_quiesce)]
        {
            self.state = State::Closed;
            return;
        }
        let owner = self.owner.clone();
        let pool = &*owner.shared;
        // Under `Shutdown::Cancel`, the loop's queued jobs are cancelled by
        // the loop, at once, not when a busy worker gets to them: those it
        // holds back itself, and those in the pool's queue. (Under `Drain`
        // they go out with the flushes below.)
        if pool.cancel_queued {
            let mut cancelled = 0;
            for job in std::mem::take(&mut self.staged) {
                // Never handed to a worker: the loop still owns the cell.
                job.cancel();
                self.slots.finished(job);
                cancelled += 1;
            }
            for raw in self.side.take_unsent() {
                // SAFETY: never handed to the kernel or a worker, so the
                // loop still owns the cell, and each pointer is taken once.
                let job = unsafe { JobRef::from_raw(raw) };
                job.cancel();
                self.slots.finished(job);
                cancelled += 1;
            }
            for job in pool.backend.take_jobs_of(&self.shared, self.lane) {
                job.cancel();
                self.slots.finished(job);
                cancelled += 1;
            }
            pool.cancelled_by_loops.fetch_add(cancelled, Relaxed);
        }
        // Staged jobs go to the queue like the others (under `Drain`).
        self.publish_staged();
        // Get the remaining queued jobs to a worker (to run, or cancel).
        match ring.as_deref_mut() {
            Some(r) => {
                if self.flush(r).is_ok() {
                    self.stats.enters += 1;
                    if r.submit().is_ok() {
                        self.submitted();
                    }
                }
            }
            None => {
                pool.wake_sleepers(self.slots.in_flight());
                pool.wake_claimed();
            }
        }
        // Kernel-delivered results (per-job messages, pipe messages) may be
        // skipped or unreachable now: collect those jobs by polling states.
        let poll = pool.announce == Announce::PerJob;
        let flush = self.side.flushes_on_close();
        let mut backoff = Backoff::new();
        let mut last_wake = Instant::now();
        while self.slots.in_flight() > 0 {
            let before = self.slots.in_flight();
            match ring.as_deref_mut() {
                Some(r) => {
                    self.reap(r, &mut *on_io);
                    if flush {
                        let _ = self.flush(r);
                    }
                }
                None if flush => self.side.send_jobs(&mut self.stats),
                None => {}
            }
            self.drain_results();
            self.side.collect(&mut self.slots, &mut self.stats);
            if poll {
                self.slots.poll();
            }
            if self.slots.in_flight() == before {
                let waited = match ring.as_deref_mut() {
                    Some(r) => self.wait_briefly(r),
                    None => false,
                };
                if !waited {
                    backoff.snooze();
                }
                if last_wake.elapsed() > Duration::from_millis(10) {
                    // A worker asleep with our job queued, or claimed for a
                    // wake that never went out (an SQPOLL thread asleep, a
                    // disabled ring, an SQ nobody submits): wake it directly.
                    pool.wake_sleepers(self.slots.in_flight());
                    pool.wake_claimed();
                    last_wake = Instant::now();
                }
            }
        }
        while !self.shared.quiet() {
            std::thread::yield_now();
        }
        // Every job is back, so the loop's lane is empty: another loop may
        // have it. (Once: a close that unwinds after this does not repeat it.)
        self.direct = None;
        if let Some(lane) = self.lane.take() {
            pool.backend.detach_lane(lane);
        }
        match ring {
            Some(r) => self.disarm(r, on_io),
            None => self.release_armed(),
        }
        self.state = State::Closed;
    }

    /// Submits and waits for one CQE, for at most 1 ms (the close path's
    /// bounded wait: results may arrive without an announcement then).
    /// `false` if the ring refused (a disabled ring): the caller backs off.
    fn wait_briefly(&mut self, ring: &mut IoUring) -> bool {
        self.stats.enters += 1;
        let deadline = Instant::now() + Duration::from_millis(1);
        match super::submit_until(ring, 1, Some(deadline)) {
            Ok(_) => {
                self.submitted();
                true
            }
            Err(_) => false,
        }
    }

    /// Cancels the pool's armed SQE and reaps until the kernel is done with
    /// every buffer it was given.
    fn disarm(&mut self, ring: &mut IoUring, on_io: &mut dyn FnMut(cqueue::Entry)) {
        let reg = self.shared.reg;
        let cancel_all = Capabilities::get().version >= Some((5, 19));
        for ud in self.side.armed(reg) {
            // Every request with this tag (a repeated or forged CQE may have
            // made the loop arm twice), where the kernel can (5.19).
            let sqe = if cancel_all {
                opcode::AsyncCancel2::new(types::CancelBuilder::user_data(ud).all()).build()
            } else {
                opcode::AsyncCancel::new(ud).build()
            };
            let what = tag::decode(ud).map_or(0, |(kind, _, _)| kind as u32);
            let sqe = sqe.user_data(tag::encode(Kind::Cancel, reg, what));
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
            if !self.wait_briefly(ring) {
                // The ring refuses to enter (a disabled ring): nothing armed
                // on it will complete. Cancel synchronously, or leak.
                self.release_armed();
                return;
            }
            for cqe in ring.completion() {
                if !self.handle_cqe(&cqe) {
                    on_io(cqe);
                }
            }
        }
    }

    /// Without the ring, the pool's armed SQEs (a futex wait; polls) are
    /// cancelled synchronously through the duplicated ring fd
    /// (`IORING_REGISTER_SYNC_CANCEL`, 6.0). What the kernel may still read
    /// afterwards is leaked instead of freed: the loop's shared part if its
    /// futex wait could not be cancelled for certain, and, if SQEs this
    /// handle queued may still sit unsubmitted in the SQ (wakes naming
    /// workers' futex words or ring fds), the pool's shared state.
    fn release_armed(&mut self) {
        let fd = self.shared.ring.as_raw_fd();
        if self.side.release(fd, self.shared.reg, self.unsubmitted_arm) {
            std::mem::forget(self.shared.clone());
        }
        if self.unsubmitted_wakes {
            std::mem::forget(self.owner.shared.clone());
        }
    }
}

impl<R> Drop for LoopHandle<R> {
    /// Closes the loop without its ring; see [`LoopHandle::close`].
    ///
    /// Blocks until every in-flight job has finished or been cancelled, and
    /// drops their results. Nothing is submitted on the ring: the handle
    /// never submits SQEs that are not its own. The pool's armed SQEs are
    /// cancelled with `IORING_REGISTER_SYNC_CANCEL` (Linux 6.0); where that
    /// cannot be done for certain, the little memory they reference is
    /// leaked rather than freed under the kernel.
    fn drop(&mut self) {
        self.close_with(None, &mut |_| {});
        // Outcomes held for tasks that never took them are dropped here,
        // on the loop, before the slab goes.
        self.slots.discard_held();
        tag::registry::give_back(self.shared.reg);
    }
}

/// Where a handle is on its way to closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum State {
    Open,
    /// `close_with` started (and may have unwound part-way).
    Closing,
    Closed,
}
