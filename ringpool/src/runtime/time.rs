//! Time: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! Timers cost no SQE at all. They sit in a heap on the runtime's thread,
//! and the loop passes the soonest deadline to the kernel as the timeout of
//! its one blocking `io_uring_enter` (`IORING_FEAT_EXT_ARG`, 5.11): 10,000
//! pending timers arm exactly one kernel timer, the wait's own.

use super::context;
use super::core::Core;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// One registered timer.
struct Entry {
    waker: Option<Waker>,
    generation: u64,
}

/// The runtime's timers: a heap of deadlines over a table of entries.
/// Cancelled timers leave stale heap items that are skipped (and compacted
/// away when they outnumber the live ones).
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u64)>>,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    next_generation: u64,
    live: usize,
}

/// Heap room made at the start: compaction keeps the heap under
/// `max(64, 4 * live) + 1` items, so with up to 64 live timers (a few
/// connections' timeouts) it never grows after start-up, and a request's
/// timeout allocates nothing however its stale items fall.
const HEAP_ROOM: usize = 256;

impl Timers {
    /// No timers, with [`HEAP_ROOM`] made.
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::with_capacity(HEAP_ROOM),
            ..Timers::default()
        }
    }

    fn insert(&mut self, deadline: Instant, waker: Waker) -> (u32, u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(None);
                (self.entries.len() - 1) as u32
            }
        };
        self.entries[index as usize] = Some(Entry {
            waker: Some(waker),
            generation,
        });
        self.heap.push(Reverse((deadline, index, generation)));
        self.live += 1;
        (index, generation)
    }

    fn entry(&mut self, index: u32, generation: u64) -> Option<&mut Entry> {
        self.entries
            .get_mut(index as usize)?
            .as_mut()
            .filter(|e| e.generation == generation)
    }

    fn remove(&mut self, index: u32, generation: u64) {
        if self.entry(index, generation).is_some() {
            self.entries[index as usize] = None;
            self.free.push(index);
            self.live -= 1;
            if self.heap.len() > 64 && self.heap.len() > 4 * self.live {
                self.compact();
            }
        }
    }

    fn compact(&mut self) {
        let entries = &self.entries;
        self.heap.retain(|Reverse((_, i, g))| {
            entries[*i as usize]
                .as_ref()
                .is_some_and(|e| e.generation == *g && e.waker.is_some())
        });
    }

    /// The soonest deadline of a live, unfired timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((d, i, g))) = self.heap.peek().copied() {
            if self.entry(i, g).is_some_and(|e| e.waker.is_some()) {
                return Some(d);
            }
            self.heap.pop();
        }
        None
    }

    /// Wakes every timer due at `now`.
    pub(crate) fn fire(&mut self, now: Instant) {
        while let Some(Reverse((d, i, g))) = self.heap.peek().copied() {
            if d > now {
                break;
            }
            self.heap.pop();
            if let Some(w) = self.entry(i, g).and_then(|e| e.waker.take()) {
                w.wake();
            }
        }
    }

    /// Timers registered and not yet dropped.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn clear(&mut self) {
        *self = Timers::default();
    }
}

/// About 30 years from `now`: the deadline of a duration too long for
/// `Instant` (`Duration::MAX`, say), which then never fires in practice.
fn far_future(now: Instant) -> Instant {
    const THIRTY_YEARS: Duration = Duration::from_secs(30 * 365 * 86_400);
    now.checked_add(THIRTY_YEARS).unwrap_or(now)
}

/// `now + d`, or [`far_future`] if that does not fit in an `Instant`.
fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| far_future(now))
}

/// Waits until `duration` has elapsed. A duration too long to represent
/// (`Duration::MAX`) waits about 30 years.
///
/// # Panics
///
/// When polled on a thread with no ringpool [`Runtime`](super::Runtime)
/// running.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(deadline_after(Instant::now(), duration))
}

/// Waits until `deadline`.
///
/// # Panics
///
/// When polled on a thread with no ringpool [`Runtime`](super::Runtime)
/// running.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`].
pub struct Sleep {
    deadline: Instant,
    /// The runtime and the timer's (index, generation), once registered.
    registered: Option<(Rc<Core>, u32, u64)>,
}

impl Sleep {
    /// When it fires.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (a fresh timer is registered at the next poll).
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        if let Some((core, i, g)) = self.registered.take() {
            core.timers.borrow_mut().remove(i, g);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        if self
            .registered
            .as_ref()
            .is_some_and(|(core, _, _)| !context::is_current(core))
        {
            // Moved to another runtime (or out of any): its timer there
            // would fire only when that runtime turns. Register anew in the
            // one polling it now.
            self.unregister();
        }
        match &self.registered {
            Some((core, i, g)) => {
                let mut timers = core.timers.borrow_mut();
                match timers.entry(*i, *g) {
                    Some(e) => match &e.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => e.waker = Some(cx.waker().clone()),
                    },
                    None => {
                        // The runtime cleared its timers (shut down).
                        drop(timers);
                        self.registered = None;
                        return Poll::Pending;
                    }
                }
            }
            None => {
                let core =
                    context::current().expect("ringpool: sleep polled outside a ringpool runtime");
                let (i, g) = core
                    .timers
                    .borrow_mut()
                    .insert(deadline, cx.waker().clone());
                self.registered = Some((core, i, g));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// [`timeout`]'s error: the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `future` for at most `duration`: its output, or [`Elapsed`] (and
/// `future` is dropped, which cancels what it was doing).
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// The future of [`timeout`].
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: never moved out of the
        // pinned `Timeout`; `sleep` is Unpin.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `this.future` lives inside the pinned `Timeout` and is never
        // moved out of it.
        let fut = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks every `period`, the first tick at once; see [`Interval::tick`].
///
/// # Panics
///
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    assert!(!period.is_zero(), "ringpool: interval with a zero period");
    Interval {
        period,
        sleep: sleep_until(Instant::now()),
    }
}

/// The stream of [`interval`]. Missed ticks are skipped, not bunched: the
/// next tick is the first multiple of `period` after now.
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick; returns its scheduled time.
    pub async fn tick(&mut self) -> Instant {
        (&mut self.sleep).await;
        let at = self.sleep.deadline();
        let now = Instant::now();
        let mut next = deadline_after(at, self.period);
        if next <= now {
            // Behind by more than a period: the first multiple of `period`
            // after `now` (nanoseconds: a period is non-zero, and what is
            // left of it fits in a u64 whenever `next` fit in an Instant).
            let period = self.period.as_nanos();
            let left = period - (now - at).as_nanos() % period;
            next = deadline_after(now, Duration::from_nanos(left as u64));
        }
        self.sleep.reset(next);
        at
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }
}
