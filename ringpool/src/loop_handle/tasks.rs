//! Jobs owned by a task instead of the ready list: the runtime's
//! `offload(..).await`, whose result wakes its task directly, with no
//! channel between.

use super::slots::{Owner, Wake, Waking};
use super::LoopHandle;
use crate::error::{JobError, TrySubmitError};
use std::task::Poll;

/// A task's claim on one slot's job; see [`LoopHandle::submit_task`].
#[derive(Debug)]
pub(crate) struct TaskJob {
    slot: u32,
    id: u64,
}

impl<R> LoopHandle<R> {
    /// Queues `job` like [`try_submit`](LoopHandle::try_submit) (it reaches
    /// the pool with the next flush, together with the other jobs of this
    /// turn), but its outcome (of its own type `T`) is kept for the caller, who takes it
    /// with [`poll_task`](LoopHandle::poll_task) or gives it up with
    /// [`abandon_task`](LoopHandle::abandon_task); `by` wakes the task when
    /// it is there. It never appears in [`completions`](LoopHandle::completions).
    ///
    /// Inlined into `Offload::poll` (with `poll_task` and `take_task`): as
    /// calls, their prologues and argument moves cost the runtime about 55
    /// of its 563 loop-thread instructions per offload (callgrind).
    #[inline(always)]
    pub(crate) fn submit_task<F, T>(
        &mut self,
        job: F,
        by: Waking<'_>,
    ) -> Result<TaskJob, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let owner = Owner::Task {
            wake: Wake::from(by),
            done: false,
        };
        // On a direct lane a push is a plain store that no worker sees
        // before the flush's publish: the job goes there at once. Other
        // mechanisms' enqueues may touch what workers read, so the job
        // waits in the handle until the flush.
        let stage = self.direct.is_none();
        let (slot, id) = self.submit_as(job, owner, stage)?;
        Ok(TaskJob { slot, id: id.get() })
    }

    /// `true` if a slot is free, so that `submit_task` would not say `Full`.
    pub(crate) fn has_room(&self) -> bool {
        self.slots.has_room()
    }

    /// The outcome of `task`'s job if it is there (the claim is then used
    /// up: do not poll or abandon it again); otherwise keeps `by` to wake
    /// the task when it is.
    ///
    /// # Safety
    ///
    /// `T` is the result type of the job that `submit_task` queued for
    /// `task` on this handle.
    #[inline(always)]
    pub(crate) unsafe fn poll_task<T>(
        &mut self,
        task: &TaskJob,
        by: Waking<'_>,
    ) -> Poll<Result<T, JobError<T>>> {
        // No drain of the mailbox here: the loop drains it once per turn
        // (`park`, `flush`), and touching the queue the workers push to on
        // every poll would cost a cache miss per job.
        debug_assert_eq!(self.slots.id_of(task.slot), task.id);
        match self.slots.take_task(task.slot, task.id, by) {
            None => Poll::Pending,
            Some(job) => {
                // SAFETY: `take_task` returns the job only once its final
                // state is published and seen, and takes it out of the
                // table (so once); `T` is the job's result type (caller's
                // obligation); this is the loop that owns the slab.
                Poll::Ready(unsafe { job.finish::<T>() })
            }
        }
    }

    /// Swaps the tokens of the [`Waking::Local`] tasks whose jobs finished
    /// since the last swap (oldest first, one per job) into `tokens`, which
    /// must be empty; what was in `tokens` (its room) takes their place.
    pub(crate) fn swap_local_wakes(&mut self, tokens: &mut Vec<u64>) {
        self.slots.swap_local_wakes(tokens);
    }

    /// `true` if jobs of [`Waking::Local`] tasks finished since the last
    /// [`swap_local_wakes`](Self::swap_local_wakes).
    pub(crate) fn has_local_wakes(&self) -> bool {
        self.slots.has_local_wakes()
    }

    /// Gives up `task`'s job: its outcome is dropped on this thread when it
    /// is there (at once if it is already).
    pub(crate) fn abandon_task(&mut self, task: &TaskJob) {
        self.slots.abandon_task(task.slot, task.id);
    }
}
