//! Waiting on the ring for I/O and results alike, the way the mechanism
//! needs ([`LoopWait`]).

use super::LoopHandle;
use crate::config::Announce;
use crate::handoff::LoopWait;
use io_uring::{types, IoUring};
use std::io;
use std::time::Instant;

/// `IORING_ENTER_GETEVENTS` from `include/uapi/linux/io_uring.h` (v5.1).
const IORING_ENTER_GETEVENTS: u32 = 1;

/// Submits and waits for `want` CQEs, or until `deadline` (passed to the
/// kernel as the wait's timeout, `IORING_FEAT_EXT_ARG`); a wait that times
/// out returns `Ok(0)`.
pub(crate) fn submit_until(
    ring: &mut IoUring,
    want: usize,
    deadline: Option<Instant>,
) -> io::Result<usize> {
    let Some(d) = deadline else {
        return ring.submit_and_wait(want);
    };
    let ts = types::Timespec::from(d.saturating_duration_since(Instant::now()));
    let args = types::SubmitArgs::new().timespec(&ts);
    match ring.submitter().submit_with_args(want, &args) {
        Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(0),
        r => r,
    }
}

impl<R> LoopHandle<R> {
    /// How a loop that makes its own `io_uring_enter` must wait for this
    /// pool's results; [`submit_and_wait`](LoopHandle::submit_and_wait)
    /// follows it.
    ///
    /// [`LoopWait::Block`] for every mechanism that announces results with a
    /// CQE; [`LoopWait::Poll`] for `condvar`; [`LoopWait::Spin`] for `spin`.
    pub fn wait_policy(&self) -> LoopWait {
        self.side.wait_policy()
    }

    /// Flushes (see [`flush`](LoopHandle::flush)), then waits on `ring` for
    /// `want` CQEs, unless results are already waiting. Before sleeping it
    /// spins for the pool's `loop_spin` budget on the result queue, with
    /// announcements suppressed, so that a busy loop makes no syscall per
    /// batch.
    ///
    /// `want` counts CQEs on the ring, the pool's and yours. The pool keeps
    /// at most one announcement outstanding however many results it
    /// carries, so while jobs are in flight the wait ends at the first CQE
    /// (at once if one is already waiting): the loop always gets to see its
    /// results. (With `want == 0` it only submits.)
    ///
    /// Returns what `io_uring_enter` returned (SQEs submitted), or 0 if it
    /// did not need to enter.
    ///
    /// # Errors
    ///
    /// As [`IoUring::submit_and_wait`] (including `EINTR`), and as
    /// [`flush`](LoopHandle::flush); `InvalidInput` if `ring` is not the
    /// ring this handle was registered with (checked before every wait that
    /// can block, also against a new ring that reuses the old one's fd
    /// number).
    pub fn submit_and_wait(&mut self, ring: &mut IoUring, want: usize) -> io::Result<usize> {
        self.wait(ring, want, 0)
    }

    /// `submit_and_wait`, returning early only once more than `seen`
    /// completions are ready (the blocking `submit` waits for fresh ones).
    pub(super) fn wait(
        &mut self,
        ring: &mut IoUring,
        want: usize,
        seen: usize,
    ) -> io::Result<usize> {
        self.wait_core(ring, want, seen, None, &|| false)
    }

    /// The runtime's wait: like `submit_and_wait(ring, 1)`, but it also ends
    /// (or does not start) when `woken()` says the runtime has work (a task
    /// woken by a result, or from another thread), and at `deadline` (its
    /// next timer), with the deadline passed to the kernel as the wait's
    /// timeout (`IORING_FEAT_EXT_ARG`): no timeout SQE is armed.
    pub(crate) fn park(
        &mut self,
        ring: &mut IoUring,
        deadline: Option<Instant>,
        woken: &dyn Fn() -> bool,
    ) -> io::Result<usize> {
        self.wait_core(ring, 1, self.slots.ready(), deadline, woken)
    }

    fn wait_core(
        &mut self,
        ring: &mut IoUring,
        want: usize,
        seen: usize,
        deadline: Option<Instant>,
        woken: &dyn Fn() -> bool,
    ) -> io::Result<usize> {
        self.check_ring(ring)?;
        self.drain_results();
        self.send_work(ring)?;
        if self.has_news(seen) || woken() || deadline.is_some_and(|d| d <= Instant::now()) {
            if !self.results_need_events() {
                return self.enter_nowait(ring);
            }
            // No wait, but results that come as CQEs (pipe's reads, per-job
            // messages) need the read armed, and are posted on a
            // DEFER_TASKRUN ring only when its thread enters for events:
            // arm, and enter without waiting, so that a loop that leaves
            // completions untaken still sees new ones come in.
            self.arm(ring)?;
            let n = self.enter_nowait(ring)?;
            self.stats.enters += 1;
            // SAFETY: no argument pointer is passed (None, size 0).
            unsafe {
                ring.submitter()
                    .enter::<libc::sigset_t>(0, 0, IORING_ENTER_GETEVENTS, None)?
            };
            return Ok(n);
        }
        match self.side.wait_policy() {
            LoopWait::Block => {}
            LoopWait::Spin => return self.spin_wait(ring, want, seen, deadline, woken),
            LoopWait::Poll(interval) => {
                return self.poll_wait(ring, want, seen, interval, deadline, woken)
            }
        }
        if self.urgent {
            // Workers are waiting for these wakes / writes: send them before spinning.
            self.urgent = false;
            self.stats.enters += 1;
            ring.submit()?;
            self.submitted();
        }
        let can_spin = !self.loop_spin.is_zero()
            && self.slots.in_flight() > 0
            && self.owner.shared.announce == Announce::Batch
            && self.side.spins_on_results();
        if can_spin && (self.holding_doorbell || self.shared.doorbell.claim()) {
            self.holding_doorbell = true;
            let mut end = Instant::now() + self.spin_budget;
            if let Some(d) = deadline {
                end = end.min(d);
            }
            'spin: loop {
                for _ in 0..32 {
                    if !self.shared.mailbox.is_empty() || ring.completion().len() >= want {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
                if woken() || Instant::now() >= end {
                    break;
                }
            }
            // A hit keeps the doorbell: the loop is about to work through
            // what it found, and results pushed meanwhile need no CQE (the
            // next wait drains them first).
            self.drain_results();
            if self.has_news(seen) || woken() {
                // Adaptive: a hit doubles the budget (up to `loop_spin`), a
                // miss halves it (down to 1/16), so long jobs do not keep a core busy spinning
                // next to the worker that runs them.
                self.stats.spin_hits += 1;
                self.spin_budget = (self.spin_budget * 2).min(self.loop_spin);
                return self.enter_nowait(ring);
            }
            self.spin_budget = (self.spin_budget / 2).max(self.loop_spin / 16);
        }
        // About to sleep: the doorbell must be given back (results pushed
        // while the loop held it sent no CQE: the release drains them) and
        // armed.
        if self.release_doorbell() && (self.has_news(seen) || woken()) {
            return self.enter_nowait(ring);
        }
        self.arm(ring)?;
        if want > 0 && ring.submission().is_empty() && ring.completion().len() >= want {
            return Ok(0); // the CQEs are already there: no need to enter
        }
        let want = if self.slots.in_flight() > 0 && want > 1 {
            if !ring.completion().is_empty() {
                // Any CQE already there may be the pool's: look first.
                return self.enter_nowait(ring);
            }
            1
        } else {
            want
        };
        if want > 0 {
            self.check_ring_identity(ring)?;
        }
        self.stats.enters += 1;
        self.stats.waits += 1;
        let n = submit_until(ring, want, deadline)?;
        self.submitted();
        Ok(n)
    }

    /// Gives the doorbell back if the loop holds it, then drains what
    /// workers pushed unannounced meanwhile; `true` if it was held. After
    /// this, a result pushed later is announced (the doorbell protocol's
    /// release: swap to 0, SeqCst fence, drain).
    pub(super) fn release_doorbell(&mut self) -> bool {
        if !std::mem::take(&mut self.holding_doorbell) {
            return false;
        }
        self.shared.doorbell.release();
        self.drain_results();
        true
    }

    /// More than `seen` completions are ready, or a task's job finished.
    fn has_news(&self, seen: usize) -> bool {
        self.slots.ready() > seen || self.slots.has_local_wakes()
    }

    /// Results reach this loop as CQEs, not through its mailbox: `pipe`'s
    /// reads, or the per-job announcements.
    fn results_need_events(&self) -> bool {
        !self.side.spins_on_results() || self.owner.shared.announce == Announce::PerJob
    }

    /// `has_news`, or results wait to be drained.
    fn has_new(&self, seen: usize) -> bool {
        self.has_news(seen) || !self.shared.mailbox.is_empty()
    }

    fn enter_nowait(&mut self, ring: &mut IoUring) -> io::Result<usize> {
        self.urgent = false;
        if ring.submission().is_empty() {
            return Ok(0);
        }
        self.stats.enters += 1;
        let n = ring.submit()?;
        self.submitted();
        Ok(n)
    }

    /// [`LoopWait::Spin`]: busy-poll the result queue and the CQ.
    fn spin_wait(
        &mut self,
        ring: &mut IoUring,
        want: usize,
        seen: usize,
        deadline: Option<Instant>,
        woken: &dyn Fn() -> bool,
    ) -> io::Result<usize> {
        if self.slots.in_flight() == 0 && want > 0 && deadline.is_none() {
            // Nothing but `ring` can end this wait: it must be ours.
            self.check_ring_identity(ring)?;
        }
        let submitted = self.enter_nowait(ring)?;
        let mut n = 0u32;
        while !self.has_new(seen) && ring.completion().len() < want {
            std::hint::spin_loop();
            n = n.wrapping_add(1);
            if n % 64 == 0 && (woken() || deadline.is_some_and(|d| d <= Instant::now())) {
                break;
            }
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

    /// [`LoopWait::Poll`]: the loop cannot sleep on the workers' condvar and
    /// on its ring at once, so it waits on the ring for at most `interval`
    /// at a time and polls the result queue in between.
    fn poll_wait(
        &mut self,
        ring: &mut IoUring,
        want: usize,
        seen: usize,
        interval: std::time::Duration,
        deadline: Option<Instant>,
        woken: &dyn Fn() -> bool,
    ) -> io::Result<usize> {
        self.check_ring_identity(ring)?;
        loop {
            let mut wait = interval;
            if let Some(d) = deadline {
                wait = wait.min(d.saturating_duration_since(Instant::now()));
            }
            let ts = types::Timespec::from(wait);
            let args = types::SubmitArgs::new().timespec(&ts);
            self.stats.enters += 1;
            self.stats.waits += 1;
            match ring.submitter().submit_with_args(want, &args) {
                Ok(n) => {
                    self.submitted();
                    return Ok(n);
                }
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => self.submitted(),
                Err(e) => return Err(e),
            }
            if self.has_new(seen) || woken() || deadline.is_some_and(|d| d <= Instant::now()) {
                return Ok(0);
            }
        }
    }
}
