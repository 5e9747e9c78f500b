//! `offload(..).await`: a closure run on the pool, its result back on the
//! ring, waking the task that awaits it directly (no channel, no extra
//! wake: the job's slot in the loop handle holds the task's waker).

use super::context;
use super::core::Core;
use super::room::RoomKey;
use crate::error::{JobError, Task, TrySubmitError};
use crate::loop_handle::TaskJob;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Runs `job` on the current runtime's worker pool and resolves to its
/// result.
///
/// The job is queued at the first poll; if `max_in_flight` jobs are out,
/// the future waits for a slot. A panic in `job` resolves to
/// [`JobError::Panicked`]. Without a running runtime on this thread, or
/// after its pool shut down, it resolves to [`JobError::Cancelled`], which
/// hands the job back unrun.
///
/// Dropping the future before it resolves is safe: a job already queued
/// still runs (or is cancelled at shutdown), and its result is dropped on
/// the runtime's thread, never leaked.
///
/// ```
/// use ringpool::runtime::{offload, Runtime};
///
/// let rt = Runtime::new()?;
/// let n = rt.block_on(async { offload(|| (1..=10u64).sum::<u64>()).await })?;
/// assert_eq!(n, 55);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn offload<F, T>(job: F) -> Offload<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Offload {
        state: State::Idle(job, None),
        core: None,
        _result: PhantomData,
    }
}

enum State<F> {
    /// Not queued yet; with its entry among the runtime's futures waiting
    /// for a free slot if it found none. (The key lives here, not beside
    /// the state: `Idle` is then no bigger than `Queued`. Callgrind: 7 more
    /// loop-thread instructions per offload than with no key, 28 with it
    /// beside the state.)
    Idle(F, Option<RoomKey>),
    Queued(TaskJob),
    Done,
}

/// The future of [`offload`].
#[must_use = "futures do nothing unless awaited"]
pub struct Offload<F, T> {
    state: State<F>,
    core: Option<Rc<Core>>,
    _result: PhantomData<fn() -> T>,
}

// `F` is never pinned in place (it is moved into the pool).
impl<F, T> Unpin for Offload<F, T> {}

impl<F, T> Future for Offload<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = Result<T, JobError<T>>;

    // Inline: the output then goes straight into the awaiting state
    // machine, not through a stack copy (a store-forwarding stall per poll).
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // Bound to the runtime that polls it while the job is not queued
        // yet: first poll, or waiting for room (then moved to another
        // runtime, it queues there instead of on a ring nobody turns).
        if let State::Idle(_, room) = &mut this.state {
            if !this.core.as_deref().is_some_and(context::is_current) {
                if let (Some(_), Some(core)) = (*room, &this.core) {
                    leave_room(room, core);
                }
                this.core = context::current();
            }
        }
        let Some(core) = &this.core else {
            return match std::mem::replace(&mut this.state, State::Done) {
                State::Idle(f, _) => Poll::Ready(Err(JobError::Cancelled(Task::new(f)))),
                _ => panic!("ringpool: Offload polled after it resolved"),
            };
        };
        let mut lp = core.lp.borrow_mut();
        let Some(lp) = lp.as_mut() else {
            // The runtime shut down.
            return match std::mem::replace(&mut this.state, State::Done) {
                State::Idle(f, _) => Poll::Ready(Err(JobError::Cancelled(Task::new(f)))),
                _ => panic!("ringpool: Offload polled after its runtime shut down"),
            };
        };
        // The queued state is matched in place: a poll that finds its
        // job's outcome there (the usual case) moves nothing but the outcome.
        if let State::Queued(job) = &this.state {
            // SAFETY: `job` was queued by `submit_task` with an `F`
            // returning `T`, on this runtime's loop handle.
            return match unsafe { lp.poll_task::<T>(job, core.waking(cx.waker())) } {
                Poll::Ready(out) => {
                    this.state = State::Done;
                    Poll::Ready(out)
                }
                Poll::Pending => {
                    if !context::is_current(core) {
                        // Its result comes back only through this runtime's
                        // ring. The unwind releases the loop handle's
                        // borrow, then drops `self`, which gives the job up
                        // as any drop does.
                        core.polled_elsewhere("an offload");
                    }
                    Poll::Pending
                }
            };
        }
        match std::mem::replace(&mut this.state, State::Done) {
            State::Idle(f, mut room) => match lp.submit_task(f, core.waking(cx.waker())) {
                Ok(job) => {
                    this.state = State::Queued(job);
                    if room.is_some() {
                        leave_room(&mut room, core);
                    }
                    Poll::Pending
                }
                Err(TrySubmitError::Full(f)) => {
                    this.state = State::Idle(f, room);
                    if let State::Idle(_, room) = &mut this.state {
                        // Once per future, however often it is polled.
                        core.room_waiters.borrow_mut().register(room, cx.waker());
                    }
                    Poll::Pending
                }
                Err(TrySubmitError::Closed(f)) => {
                    if room.is_some() {
                        leave_room(&mut room, core);
                    }
                    Poll::Ready(Err(JobError::Cancelled(Task::new(f))))
                }
            },
            State::Queued(_) => unreachable!("matched above"),
            State::Done => panic!("ringpool: Offload polled after it resolved"),
        }
    }
}

/// Takes an offload's waker (`room`) out of `core`'s room waiters, if it is
/// there. (Should the list be borrowed, by a drop inside a waker's `clone`
/// that `register` called, the entry stays: one spurious wake.) Out of
/// line: only a future that once found no room has an entry.
#[cold]
#[inline(never)]
fn leave_room(room: &mut Option<RoomKey>, core: &Core) {
    if let Some(key) = room.take() {
        if let Ok(mut waiters) = core.room_waiters.try_borrow_mut() {
            waiters.remove(key);
        }
    }
}

impl<F, T> Drop for Offload<F, T> {
    fn drop(&mut self) {
        match &mut self.state {
            State::Queued(job) => {
                if let Some(core) = &self.core {
                    if let Some(lp) = core.lp.borrow_mut().as_mut() {
                        lp.abandon_task(job);
                    }
                }
            }
            State::Idle(_, room @ Some(_)) => {
                if let Some(core) = &self.core {
                    leave_room(room, core);
                }
            }
            _ => {}
        }
    }
}

impl<F, T> fmt::Debug for Offload<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle(..) => "idle",
            State::Queued(_) => "queued",
            State::Done => "done",
        };
        f.debug_struct("Offload").field("state", &state).finish()
    }
}
