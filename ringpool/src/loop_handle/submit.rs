//! Handing jobs to the pool, and flushing what workers wait for.

use super::completions::JobId;
use super::slots::Owner;
use super::LoopHandle;
use crate::error::{SubmitError, TrySubmitError};
use crate::pool::job::JobRef;
use crate::sync::Ordering::Acquire;
use io_uring::{cqueue, IoUring};
use std::io;

impl<R: Send + 'static> LoopHandle<R> {
    /// Hands `job` to the pool without blocking.
    ///
    /// The job is queued at once and published to the workers in a batch
    /// with the others at the next [`flush`](LoopHandle::flush) (which
    /// `submit_and_wait` does), [`reap`](LoopHandle::reap) or
    /// [`completions`](LoopHandle::completions); a sleeping worker is woken
    /// at the next flush, so that several submissions share one publish and
    /// one wake.
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
        self.submit_as(job, Owner::Queue, false).map(|(_, id)| id)
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
            match self.wait(ring, 1, self.slots.ready()) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(SubmitError::Io(e, job)),
            }
            self.reap(ring, &mut on_io);
        }
    }
}

impl<R> LoopHandle<R> {
    /// Puts the staged task jobs into the pool's queue, and publishes every
    /// job queued since the last publish (a lane's one store per batch).
    pub(super) fn publish_staged(&mut self) {
        let mut staged = std::mem::take(&mut self.staged);
        for job in staged.drain(..) {
            self.enqueue(job);
        }
        self.staged = staged;
        self.publish();
    }

    /// Queues `job` on the loop's lane (or however the mechanism queues);
    /// it is published at the next [`publish`](Self::publish).
    #[inline(always)]
    fn enqueue(&mut self, job: JobRef) {
        let wakes = match self.direct {
            Some(d) => {
                // SAFETY: a `DirectLane` points into the pool's job queue,
                // which `self.owner` keeps alive, and lanes are freed only
                // with it; the lane is this loop's (`close` clears `direct`
                // before it gives the lane back), and this is its only
                // producer, the loop's thread (the handle is not Send).
                unsafe { d.lane.as_ref() }.push(job.into_addr());
                d.wakes
            }
            None => self
                .side
                .enqueue(&self.owner.shared.backend, job, self.lane),
        };
        if wakes {
            self.pending_wake += 1;
        }
    }

    /// Makes every job queued on the loop's lane visible to the workers.
    #[inline]
    pub(super) fn publish(&self) {
        match self.direct {
            // SAFETY: as in `enqueue`: the lane outlives the handle's
            // `owner`, and is this loop's while `direct` is set.
            Some(d) => unsafe { d.lane.as_ref() }.publish(),
            None => self.owner.shared.backend.publish(self.lane),
        }
    }

    /// Queues `job` (of any result type `T`) for the pool in a free slot
    /// whose outcome goes to `owner`; returns the slot and the job's id.
    /// With `stage`, the job waits in the handle until the next flush.
    #[inline(always)]
    pub(super) fn submit_as<F, T>(
        &mut self,
        job: F,
        owner: Owner,
        stage: bool,
    ) -> Result<(u32, JobId), TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.state != super::close::State::Open || self.owner.shared.shut_down.load(Acquire) {
            return Err(TrySubmitError::Closed(job));
        }
        let Some((slot, id)) = self.slots.reserve() else {
            return Err(TrySubmitError::Full(job));
        };
        let cell = self.shared.cells.cell(slot);
        // SAFETY: the cell is of this loop's slab, which `self.shared` keeps
        // alive until every in-flight job is back (close waits for them);
        // `reserve` just gave us its slot, so it is free (a slot's cell is
        // emptied by `finish` or `discard` before the slot goes back on the
        // free list), and this is the loop's thread (the handle is not Send).
        let job = unsafe { JobRef::new_in(cell, job) };
        self.slots.occupy(slot, &job, owner);
        self.stats.submitted += 1;
        if stage {
            self.staged.push(job);
        } else {
            self.enqueue(job);
        }
        Ok((slot, id))
    }

    /// Prepares the loop to sleep on `ring`: drains results the workers have
    /// published, sends the wakes that new jobs need (sleeping workers) and
    /// (pipe) writes out queued job pointers, and queues the doorbell's
    /// (re-)arm SQE. Returns the number of completions ready: if it is not
    /// zero, take them before you block.
    ///
    /// [`submit_and_wait`](LoopHandle::submit_and_wait) does all of this for
    /// you; call `flush` yourself only when you enter the kernel yourself
    /// (and then wait as [`wait_policy`](LoopHandle::wait_policy) says).
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
        // The caller's own wait follows: results must be announced again.
        // (The release drains; the drain below then only publishes.)
        self.release_doorbell();
        self.prepare(ring)
    }

    /// [`flush`](LoopHandle::flush) for a loop that will not sleep before
    /// its next wait through this handle (the runtime's busy turn): a
    /// doorbell the loop holds stays held, so results need no announcement
    /// in the meantime; the next wait drains them, and gives the doorbell
    /// back before it sleeps.
    pub(crate) fn flush_awake(&mut self, ring: &mut IoUring) -> io::Result<usize> {
        self.check_ring(ring)?;
        self.prepare(ring)
    }

    /// What both flushes do once `ring` is checked: drain, send, arm.
    fn prepare(&mut self, ring: &mut IoUring) -> io::Result<usize> {
        self.drain_results();
        self.send_work(ring)?;
        self.arm(ring)?;
        Ok(self.slots.ready())
    }

    /// Queues the doorbell's arm SQE if the mechanism has one and it is not
    /// armed.
    pub(super) fn arm(&mut self, ring: &mut IoUring) -> io::Result<()> {
        if self
            .side
            .arm(ring, &self.shared, self.shared.reg, &mut self.stats)?
        {
            self.unsubmitted_arm = true;
        }
        Ok(())
    }

    /// This handle's own `io_uring_enter` submitted everything queued.
    pub(super) fn submitted(&mut self) {
        self.unsubmitted_wakes = false;
        self.unsubmitted_arm = false;
    }

    /// Sends what workers are waiting for: the SQEs that carry jobs
    /// (`pipe`), and a wake for each sleeping worker that new jobs need
    /// (SQEs, marked urgent, or syscalls).
    pub(super) fn send_work(&mut self, ring: &mut IoUring) -> io::Result<()> {
        self.publish_staged();
        let reg = self.shared.reg;
        self.side.send_jobs(&mut self.stats);
        if self.pending_wake == 0 {
            return Ok(());
        }
        let want = std::mem::take(&mut self.pending_wake);
        let pool = &*self.owner.shared;
        let mut claimed = std::mem::take(&mut self.claimed);
        claimed.clear();
        let (workers, colocated) = (&pool.workers, &self.colocated);
        workers.sleepers.claim_skipping(
            workers.states(),
            want,
            |i| colocated.contains(&i) && workers.other_spinning(colocated),
            |i| claimed.push(i),
        );
        let mut result = Ok(());
        for (n, &i) in claimed.iter().enumerate() {
            self.stats.wakes_sent += 1;
            match self
                .side
                .wake(ring, &pool.backend, &pool.workers, i, reg, &mut self.stats)
            {
                Ok(queued) => {
                    self.urgent |= queued;
                    self.unsubmitted_wakes |= queued;
                }
                Err(e) => {
                    // The SQ is full and cannot be flushed: the claimed
                    // workers left would sleep for ever. Wake them directly.
                    for &j in &claimed[n..] {
                        pool.wake(j);
                    }
                    result = Err(e);
                    break;
                }
            }
        }
        self.claimed = claimed;
        result
    }
}
