//! Tasks: the futures a runtime runs, their wakers, and join handles.
//!
//! A task's future is `!Send` and lives in its runtime's table; what a
//! [`Waker`] holds is only the task's [`Header`], which is `Send + Sync`. A
//! wake on the runtime's own thread puts the task on the local ready queue;
//! a wake from any other thread goes through the runtime's
//! [`Remote`](super::remote::Remote) (a list and a state word, then a signal
//! on the ring only if the loop sleeps). The `scheduled` flag keeps a task on
//! the queues at most once, however often it is woken.

use super::context;
use super::remote::Remote;
use crate::protocol::remote::Scheduled;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The index of `block_on`'s own future (never a table index).
pub(crate) const MAIN: u32 = u32::MAX;

/// A task's name in its runtime's table: its index, and the generation the
/// index had when the task took it (a finished task's index is reused
/// under a new one, so a stale name finds nothing).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    pub(crate) index: u32,
    generation: u32,
}

impl TaskKey {
    /// `block_on`'s own future.
    pub(crate) const MAIN: TaskKey = TaskKey {
        index: MAIN,
        generation: 0,
    };

    /// The key as one word (for `loop_handle`'s `Waking::Local`).
    pub(crate) fn token(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The key that [`token`](TaskKey::token) made `t` from.
    pub(crate) fn from_token(t: u64) -> TaskKey {
        TaskKey {
            index: t as u32,
            generation: (t >> 32) as u32,
        }
    }
}

/// The part of a task that wakers hold.
pub(crate) struct Header {
    /// The task's name in its runtime's table ([`TaskKey::MAIN`] for
    /// `block_on`'s future).
    pub(crate) key: TaskKey,
    /// On a ready queue (local or remote) and not yet polled.
    scheduled: Scheduled,
    pub(crate) remote: Arc<Remote>,
}

impl Header {
    pub(crate) fn new(key: TaskKey, remote: Arc<Remote>) -> Arc<Header> {
        Arc::new(Header {
            key,
            scheduled: Scheduled::new(),
            remote,
        })
    }

    /// The runtime is about to poll the task: a wake from now on schedules
    /// it again (see `protocol::remote::Scheduled`).
    pub(crate) fn unschedule(&self) {
        self.scheduled.unschedule();
    }

    /// Marks the task scheduled; `false` if it already was.
    pub(crate) fn schedule(&self) -> bool {
        self.scheduled.schedule()
    }
}

impl Wake for Header {
    fn wake(self: Arc<Self>) {
        if !self.schedule() {
            return;
        }
        // On the runtime's own thread, inside it: the local queue.
        if let Err(me) = context::push_local(self) {
            let remote = me.remote.clone();
            remote.wake(me);
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.is_scheduled() {
            return;
        }
        self.clone().wake();
    }
}

/// A task's future, type-erased.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// One spawned task in the runtime's table.
pub(crate) struct Task {
    /// Its name (also in the header, which its waker holds: kept here so
    /// that a lookup compares it without reading the header's allocation).
    key: TaskKey,
    /// Its waker, made once; a poll borrows it through a cheap `Rc` clone
    /// instead of an atomic reference count per poll.
    pub(crate) waker: Rc<Waker>,
    /// `None` while it is being polled.
    pub(crate) future: Option<BoxFuture>,
    /// The [`Tasks::batch`] of its last poll: a batch's later tokens for
    /// it are then redundant.
    polled_in: u64,
}

/// The runtime's table of spawned tasks.
#[derive(Default)]
pub(crate) struct Tasks {
    slots: Vec<Option<Task>>,
    free: Vec<u32>,
    live: usize,
    /// The generation the next inserted task gets.
    next_generation: u32,
    /// Which batch of local wakes is being run ([`next_batch`](Tasks::next_batch));
    /// 64 bits, so that a stamp of an old batch can never come round again.
    batch: u64,
}

impl Tasks {
    pub(crate) fn insert(&mut self, remote: &Arc<Remote>, future: BoxFuture) -> Arc<Header> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 tasks")
            }
        };
        let key = TaskKey {
            index,
            generation: self.next_generation,
        };
        self.next_generation = self.next_generation.wrapping_add(1);
        let header = Header::new(key, remote.clone());
        self.slots[index as usize] = Some(Task {
            key,
            waker: Rc::new(Waker::from(header.clone())),
            future: Some(future),
            polled_in: self.batch,
        });
        self.live += 1;
        header
    }

    /// The task `key` names, if it is still there (a stale wake names a
    /// finished one).
    fn get_mut(&mut self, key: TaskKey) -> Option<&mut Task> {
        let task = self.slots.get_mut(key.index as usize)?.as_mut()?;
        (task.key == key).then_some(task)
    }

    /// Takes the future of the task `key` names out to be polled, if it is
    /// still that task (a stale wake names a finished one).
    ///
    /// With `local`, the wake is a token of the current batch of local
    /// wakes ([`next_batch`](Tasks::next_batch)), and the future is not
    /// taken if the task was polled already during this batch: every token
    /// of a batch was made before the batch began, so that poll came after
    /// the job the token names had finished, and saw its outcome. (A task
    /// awaiting several jobs that finish together is polled once.)
    #[inline]
    pub(crate) fn take_future(
        &mut self,
        key: TaskKey,
        local: bool,
    ) -> Option<(BoxFuture, Rc<Waker>)> {
        let batch = self.batch;
        let task = self.get_mut(key)?;
        if local && task.polled_in == batch {
            return None;
        }
        task.polled_in = batch;
        Some((task.future.take()?, task.waker.clone()))
    }

    /// Starts a new batch of local wakes (a list of tokens taken from the
    /// loop handle at once).
    pub(crate) fn next_batch(&mut self) {
        self.batch += 1;
    }

    /// Puts a pending task's future back.
    #[inline]
    pub(crate) fn put_back(&mut self, key: TaskKey, f: BoxFuture) {
        if let Some(task) = self.get_mut(key) {
            task.future = Some(f);
        }
    }

    /// Removes a finished task.
    pub(crate) fn remove(&mut self, key: TaskKey) {
        if self.get_mut(key).is_some() {
            self.slots[key.index as usize] = None;
            self.free.push(key.index);
            self.live -= 1;
        }
    }

    /// Tasks alive.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Takes every task's future out (shutdown), leaving the table empty.
    pub(crate) fn take_all(&mut self) -> Vec<BoxFuture> {
        let out = self
            .slots
            .iter_mut()
            .filter_map(|s| s.take().and_then(|t| t.future))
            .collect();
        self.free.clear();
        self.slots.clear();
        self.live = 0;
        out
    }
}

/// Why a task produced no output.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Panicked(Box<dyn Any + Send + 'static>),
    Aborted,
    RuntimeGone,
    /// Awaited while another runtime (or none) was running on the thread:
    /// the task cannot make progress until its own runtime turns.
    NotRunning,
}

impl JoinError {
    /// The task panicked; [`into_panic`](JoinError::into_panic) has the payload.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked(_))
    }

    /// The task was aborted ([`JoinHandle::abort`]), or its runtime shut
    /// down (or was never there) before it finished. Also `true` when the
    /// handle was awaited, unfinished, while its runtime was not the one
    /// running on the thread (inside another runtime's `block_on`, or
    /// outside any): the task keeps running when its runtime next turns,
    /// but nothing could have run it while the caller waited.
    pub fn is_cancelled(&self) -> bool {
        !self.is_panic()
    }

    /// The panic payload, to resume it (`std::panic::resume_unwind`).
    ///
    /// # Panics
    ///
    /// If the task did not panic.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.repr {
            Repr::Panicked(p) => p,
            _ => panic!("JoinError::into_panic on a task that did not panic"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panicked(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()));
                match msg {
                    Some(m) => write!(f, "task panicked: {m}"),
                    None => f.write_str("task panicked"),
                }
            }
            Repr::Aborted => f.write_str("task aborted"),
            Repr::RuntimeGone => {
                f.write_str("task cancelled: its runtime shut down or was never running")
            }
            Repr::NotRunning => f.write_str(
                "task not finished, and its runtime is not the one running on this thread \
                 (await the handle inside its own runtime's block_on)",
            ),
        }
    }
}

impl std::error::Error for JoinError {}

/// What a task and its join handle share.
struct Join<T> {
    /// Set by [`JoinHandle::abort`]; a plain cell, as every poll of the
    /// task reads it.
    aborted: Cell<bool>,
    state: RefCell<JoinState<T>>,
}

/// The part of [`Join`] that the task and the handle borrow in turn.
struct JoinState<T> {
    output: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
    /// The task's header, to schedule it when aborted.
    header: Option<Arc<Header>>,
}

impl<T> Join<T> {
    fn new(output: Option<Result<T, JoinError>>) -> Rc<Join<T>> {
        Rc::new(Join {
            aborted: Cell::new(false),
            state: RefCell::new(JoinState {
                output,
                waker: None,
                header: None,
            }),
        })
    }
}

/// An owned permission to await a spawned task's output.
///
/// Dropping it detaches the task (it keeps running). Awaiting it gives the
/// task's output, or a [`JoinError`] if the task panicked, was aborted, or
/// its runtime went away first.
pub struct JoinHandle<T> {
    join: Rc<Join<T>>,
}

impl<T> JoinHandle<T> {
    /// Cancels the task: it is dropped at its next scheduling point and the
    /// handle resolves to a cancelled [`JoinError`] (unless it had finished).
    pub fn abort(&self) {
        let j = self.join.state.borrow();
        if j.output.is_some() || self.join.aborted.get() {
            return;
        }
        self.join.aborted.set(true);
        if let Some(h) = j.header.clone() {
            drop(j);
            Waker::from(h).wake();
        }
    }

    /// `true` once the task has finished (output, panic or abort).
    pub fn is_finished(&self) -> bool {
        self.join.state.borrow().output.is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut j = self.join.state.borrow_mut();
        if let Some(out) = j.output.take() {
            return Poll::Ready(out);
        }
        if j.header
            .as_ref()
            .is_some_and(|h| !context::is_current_remote(&h.remote))
        {
            // Nobody would run the task while this poll's caller waits.
            return Poll::Ready(Err(JoinError {
                repr: Repr::NotRunning,
            }));
        }
        match &j.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => j.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The spawned future, wrapped: catches its panics and honours aborts.
struct Spawned<F: Future> {
    future: Option<F>,
    join: Rc<Join<F::Output>>,
}

impl<F: Future> Spawned<F> {
    /// Drops the future in place, catching a panic of its destructor (an
    /// aborted or cancelled task's locals run their `Drop` here): the
    /// payload, to report as the task's panic. The field is `None` after
    /// it either way (an assignment writes its new value even when the old
    /// one's drop unwinds).
    fn drop_future(&mut self) -> Option<Box<dyn Any + Send + 'static>> {
        catch_unwind(AssertUnwindSafe(|| self.future = None)).err()
    }

    fn finish(&mut self, mut out: Result<F::Output, JoinError>) {
        // Drop the future first (its destructor runs in the task), then
        // publish the output.
        if let Some(p) = self.drop_future() {
            if !matches!(&out, Err(e) if e.is_panic()) {
                out = Err(JoinError {
                    repr: Repr::Panicked(p),
                });
            }
        }
        let waker = {
            let mut j = self.join.state.borrow_mut();
            j.output = Some(out);
            j.header = None;
            j.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<F: Future> Future for Spawned<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `future` is never moved out while pinned: it is only
        // polled in place or dropped in place (set to `None`).
        let this = unsafe { self.get_unchecked_mut() };
        if this.join.aborted.get() {
            this.finish(Err(JoinError {
                repr: Repr::Aborted,
            }));
            return Poll::Ready(());
        }
        let Some(f) = this.future.as_mut() else {
            return Poll::Ready(());
        };
        // SAFETY: `f` lives inside the pinned `Spawned` and is not moved
        // until it is dropped (above).
        let f = unsafe { Pin::new_unchecked(f) };
        match catch_unwind(AssertUnwindSafe(|| f.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                this.finish(Ok(v));
                Poll::Ready(())
            }
            Err(p) => {
                this.finish(Err(JoinError {
                    repr: Repr::Panicked(p),
                }));
                Poll::Ready(())
            }
        }
    }
}

impl<F: Future> Drop for Spawned<F> {
    fn drop(&mut self) {
        // Dropped unfinished: the runtime shut down. A panic of the
        // future's destructor is the task's outcome, not the shutdown's:
        // the shutdown goes on to cancel and wait for every operation.
        // (No output is set while the future is there: `finish` drops it
        // first.)
        if self.future.is_some() {
            self.finish(Err(JoinError {
                repr: Repr::RuntimeGone,
            }));
        }
    }
}

/// Wraps `future` for the task table; returns it and its join handle. The
/// caller inserts it and then calls `set_header` with the task's header.
pub(crate) fn wrap<F>(future: F) -> (BoxFuture, JoinHandle<F::Output>)
where
    F: Future + 'static,
{
    let join = Join::new(None);
    let task = Spawned {
        future: Some(future),
        join: join.clone(),
    };
    (Box::pin(task), JoinHandle { join })
}

/// Records the task's header in its join handle (for `abort`).
pub(crate) fn set_header<T>(handle: &JoinHandle<T>, header: Arc<Header>) {
    handle.join.state.borrow_mut().header = Some(header);
}

/// A join handle already resolved: the runtime was not there to run it.
pub(crate) fn gone<T>() -> JoinHandle<T> {
    JoinHandle {
        join: Join::new(Some(Err(JoinError {
            repr: Repr::RuntimeGone,
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::remote::Signal;

    fn remote() -> Arc<Remote> {
        let fd = crate::sys::eventfd::new().expect("eventfd");
        Arc::new(Remote::new(Signal::EventFd(fd)))
    }

    fn table_with_one_task() -> (Tasks, TaskKey) {
        let mut tasks = Tasks::default();
        let key = tasks.insert(&remote(), Box::pin(async {})).key;
        (tasks, key)
    }

    /// Whether the runtime would poll `key` for this wake (the future is
    /// put back at once, as after a pending poll).
    fn polls(tasks: &mut Tasks, key: TaskKey, local: bool) -> bool {
        match tasks.take_future(key, local) {
            Some((f, _)) => {
                tasks.put_back(key, f);
                true
            }
            None => false,
        }
    }

    #[test]
    fn a_batch_of_local_wakes_polls_a_task_once() {
        let (mut tasks, key) = table_with_one_task();
        tasks.next_batch();
        // Two tokens of one batch (two jobs of the task that finished
        // together): one poll.
        assert!(polls(&mut tasks, key, true));
        assert!(!polls(&mut tasks, key, true));
        // A wake through its waker still polls it.
        assert!(polls(&mut tasks, key, false));
        // The next batch's token is a job that finished after that poll.
        tasks.next_batch();
        assert!(polls(&mut tasks, key, true));
        // Polled by its waker between batches, while a job was finishing:
        // that job's token is in the next batch, which polls it again.
        assert!(polls(&mut tasks, key, false));
        tasks.next_batch();
        assert!(polls(&mut tasks, key, true));
    }

    #[test]
    fn a_task_spawned_during_a_batch_is_polled_by_the_next() {
        let (mut tasks, first) = table_with_one_task();
        tasks.next_batch();
        assert!(polls(&mut tasks, first, true));
        let key = tasks.insert(&remote(), Box::pin(async {})).key;
        tasks.next_batch();
        assert!(polls(&mut tasks, key, true));
        // A stale key (another generation) finds nothing.
        tasks.remove(key);
        assert!(tasks.take_future(key, true).is_none());
        assert!(tasks.take_future(key, false).is_none());
    }
}
