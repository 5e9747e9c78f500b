//! Waking a runtime's loop from other threads: a list of what was woken,
//! and one state word, so that a loop that is awake is never sent a signal
//! and a loop about to sleep never misses one.
//!
//! The word has three bits: `AWAKE` (the loop runs and will look at the list
//! before it sleeps), `QUEUED` (the list may hold tasks) and `SIGNALLED` (a
//! signal is on its way to the ring). Every change is a read-modify-write of
//! this one word, so all of them are totally ordered:
//!
//! * waker (any thread): push onto the list, then set `QUEUED`, and also
//!   `SIGNALLED` if neither `AWAKE` nor `SIGNALLED` was set; only then does
//!   it send the signal (a ringless MSG_RING or an eventfd write: the
//!   caller's business).
//! * loop, at the start of a turn ([`RemoteWakes::awake`]): set `AWAKE`,
//!   clear `SIGNALLED` (it is awake: any signal in flight is stale).
//! * loop, before it blocks ([`RemoteWakes::may_sleep`]): if `QUEUED` is
//!   set, it does not block; else it clears `AWAKE` and blocks. A waker
//!   ordered before that change left `QUEUED` for the loop to see; one
//!   ordered after it finds `AWAKE` clear and signals.
//! * loop, draining ([`RemoteWakes::drain`]): clear `QUEUED`, then take the
//!   list (a push that lands after the take sets `QUEUED` again).
//!
//! So at most one signal is outstanding per sleep, however many wakes.

use crate::sync::{
    lock, AtomicBool, AtomicU32, Mutex, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
};

/// A task's "on a ready queue" flag: a task is queued at most once however
/// often it is woken.
///
/// * waker: [`schedule`](Scheduled::schedule) (a swap to `true`); only the
///   waker that finds it `false` queues the task.
/// * runtime, right before polling it: [`unschedule`](Scheduled::unschedule)
///   (a swap to `false`). A wake that found `true` was ordered before this
///   swap in the flag's modification order, so the poll sees what that
///   waker wrote; a wake after it queues the task again.
pub(crate) struct Scheduled(AtomicBool);

impl Scheduled {
    pub(crate) fn new() -> Scheduled {
        Scheduled(AtomicBool::new(false))
    }

    /// `true` if the caller must queue the task.
    pub(crate) fn schedule(&self) -> bool {
        !self.0.swap(true, AcqRel)
    }

    /// `true` if it is queued already (a hint: a waker that sees it may
    /// skip the wake).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn is_scheduled(&self) -> bool {
        self.0.load(Acquire)
    }

    /// The task is about to be polled.
    pub(crate) fn unschedule(&self) {
        self.0.swap(false, AcqRel);
    }
}

const AWAKE: u32 = 1;
const QUEUED: u32 = 2;
const SIGNALLED: u32 = 4;

/// What other threads woke, and the state word that tells the loop.
pub(crate) struct RemoteWakes<T> {
    state: AtomicU32,
    list: Mutex<Vec<T>>,
}

impl<T> RemoteWakes<T> {
    /// Empty; the loop counts as awake until its first `may_sleep`.
    pub(crate) fn new() -> RemoteWakes<T> {
        RemoteWakes {
            state: AtomicU32::new(AWAKE),
            list: Mutex::new(Vec::new()),
        }
    }

    /// Waker side: queues `t`; `true` if the caller must signal the loop.
    pub(crate) fn push(&self, t: T) -> bool {
        lock(&self.list).push(t);
        let mut cur = self.state.load(Relaxed);
        loop {
            let signal = cur & (AWAKE | SIGNALLED) == 0;
            let new = cur | QUEUED | if signal { SIGNALLED } else { 0 };
            match self.state.compare_exchange_weak(cur, new, AcqRel, Relaxed) {
                Ok(_) => return signal,
                Err(now) => cur = now,
            }
        }
    }

    /// Waker side: the signal could not be sent; let the next push try.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn unring(&self) {
        self.state.fetch_and(!SIGNALLED, AcqRel);
    }

    /// Loop side, at the start of a turn: wakers need not signal.
    pub(crate) fn awake(&self) {
        let _ = self
            .state
            .fetch_update(AcqRel, Relaxed, |s| Some((s | AWAKE) & !SIGNALLED));
    }

    /// Loop side, before blocking: `true` if it may block (nothing is
    /// queued, and any later push signals it).
    pub(crate) fn may_sleep(&self) -> bool {
        self.state
            .fetch_update(AcqRel, Acquire, |s| (s & QUEUED == 0).then_some(s & !AWAKE))
            .is_ok()
    }

    /// `true` if something may be queued (no lock: a hint).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn pending(&self) -> bool {
        self.state.load(Relaxed) & QUEUED != 0
    }

    /// Loop side: hands everything queued to `f`, in push order.
    pub(crate) fn drain(&self, mut f: impl FnMut(T)) {
        if self.state.fetch_and(!QUEUED, AcqRel) & QUEUED == 0 {
            return;
        }
        let list = std::mem::take(&mut *lock(&self.list));
        for t in list {
            f(t);
        }
    }
}
