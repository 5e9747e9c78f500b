//! The runtime's in-flight operations: a table from `user_data` to whoever
//! waits for the CQE, and the [`Op`] future that owns an operation's
//! resources (buffer, fd, address) until the kernel is done with them.
//!
//! # The ownership rule
//!
//! An SQE the runtime submits references only memory that its operation
//! owns (moved into the `Op`, heap-stable) or that lives as long as the
//! runtime (the provided-buffer ring). When an `Op` is dropped before its
//! CQE, its resources move into the table as an orphan, an
//! `IORING_OP_ASYNC_CANCEL` is queued, and they are released only when the
//! final CQE arrives (possibly saving what the operation brought in, see
//! [`Resources::orphaned`]). The fd is among them, so it is not closed,
//! and its number not reused, while the kernel may still use it.

use super::core::Core;
use io_uring::{opcode, squeue};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// `user_data` of the runtime's own cancels (their CQEs are ignored).
pub(crate) const CANCEL_USER_DATA: u64 = 1 << 47 | 2;

/// Generations are 15 bits, so that an operation's `user_data` never has
/// bit 47 set (the runtime's special values) nor the pool's magic.
const GEN_MASK: u32 = 0x7fff;

type Orphan = Box<dyn FnOnce(i32, u32)>;
/// A multishot request's CQE handler.
pub(crate) type Handler = Box<dyn FnMut(i32, u32)>;

enum Slot {
    Free,
    /// An `Op` future waits for this CQE.
    Waiting(Option<Waker>),
    /// The CQE came; the `Op` has not looked yet.
    Done(i32, u32),
    /// The `Op` was dropped; this runs on the final CQE and owns the
    /// resources.
    Orphan(Orphan),
    /// A multishot request's handler; it stays until a CQE without
    /// `IORING_CQE_F_MORE`. `None` while it runs.
    Multi(Option<Handler>),
}

/// What one CQE calls for, decided under the table's borrow and done after.
pub(crate) enum Action {
    None,
    Wake(Waker),
    Orphan(Orphan, i32, u32),
    Multi(Handler, i32, u32, bool),
}

/// The table of in-flight operations.
#[derive(Default)]
pub(crate) struct Ops {
    slots: Vec<(u32, Slot)>,
    free: Vec<u32>,
    live: usize,
}

impl Ops {
    fn insert(&mut self, slot: Slot) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, Slot::Free));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 operations")
            }
        };
        let e = &mut self.slots[index as usize];
        e.1 = slot;
        self.live += 1;
        (e.0 as u64) << 32 | index as u64
    }

    fn get(&mut self, user_data: u64) -> Option<&mut Slot> {
        let (gen, index) = ((user_data >> 32) as u32, user_data as u32);
        match self.slots.get_mut(index as usize) {
            Some((g, slot)) if *g == gen && !matches!(slot, Slot::Free) => Some(slot),
            _ => None,
        }
    }

    /// Frees the slot of `user_data`, returning what it held (to be
    /// dropped by the caller, outside the table's borrow).
    fn take(&mut self, user_data: u64) -> Option<Slot> {
        self.get(user_data)?;
        let index = user_data as u32;
        let (g, slot) = &mut self.slots[index as usize];
        let old = std::mem::replace(slot, Slot::Free);
        *g = (*g + 1) & GEN_MASK;
        self.free.push(index);
        self.live -= 1;
        Some(old)
    }

    fn remove(&mut self, user_data: u64) {
        drop(self.take(user_data));
    }

    /// Operations the kernel has not finished.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// The `user_data` of every operation still in the kernel (shutdown).
    pub(crate) fn in_kernel(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| !matches!(s, Slot::Free | Slot::Done(..)))
            .map(|(i, (g, _))| (*g as u64) << 32 | i as u64)
            .collect()
    }

    /// Registers a multishot handler; returns its `user_data`.
    pub(crate) fn insert_multi(&mut self, h: Handler) -> u64 {
        self.insert(Slot::Multi(Some(h)))
    }

    /// A CQE for `user_data`: what to do (unknown ones are ignored).
    pub(crate) fn on_cqe(&mut self, user_data: u64, res: i32, flags: u32) -> Action {
        let more = io_uring::cqueue::more(flags);
        let Some(slot) = self.get(user_data) else {
            return Action::None;
        };
        match slot {
            Slot::Waiting(w) => {
                let w = w.take();
                *slot = Slot::Done(res, flags);
                w.map_or(Action::None, Action::Wake)
            }
            Slot::Orphan(_) => match self.take(user_data) {
                Some(Slot::Orphan(f)) => Action::Orphan(f, res, flags),
                _ => unreachable!("the slot was just seen holding an orphan"),
            },
            Slot::Multi(h) => match h.take() {
                Some(h) => {
                    if !more {
                        self.remove(user_data);
                    }
                    Action::Multi(h, res, flags, more)
                }
                None => Action::None,
            },
            Slot::Done(..) | Slot::Free => Action::None,
        }
    }

    /// Removes a multishot handler whose SQE could not be queued; returns
    /// it, for the caller to drop outside the table's borrow.
    pub(crate) fn remove_multi(&mut self, user_data: u64) -> Option<Handler> {
        match self.take(user_data) {
            Some(Slot::Multi(h)) => h,
            _ => None,
        }
    }

    /// Puts a multishot handler back after it ran (if its request lives on).
    pub(crate) fn put_back(&mut self, user_data: u64, h: Handler) {
        if let Some(Slot::Multi(slot @ None)) = self.get(user_data) {
            *slot = Some(h);
        }
    }

    /// Drops every orphan and handler without running it, and forgets
    /// their resources (shutdown, when the kernel did not finish in time:
    /// leaking is the only safe choice).
    pub(crate) fn leak_all(&mut self) {
        for (_, s) in self.slots.drain(..) {
            std::mem::forget(s);
        }
        self.free.clear();
        self.live = 0;
    }
}

/// What an operation owns while the kernel works on it.
pub(crate) trait Resources: 'static {
    /// The operation's future was dropped before it looked at its CQE (the
    /// CQE may already be there): [`orphaned`](Resources::orphaned) follows,
    /// now or on the final CQE.
    fn abandoned(&self) {}

    /// The operation's future was dropped and its final CQE has now come:
    /// keep what it brought in (bytes read, an accepted fd) where the next
    /// caller finds it. The default drops everything.
    fn orphaned(self, res: i32, flags: u32)
    where
        Self: Sized,
    {
        let _ = (res, flags);
    }
}

/// A finished operation: its result and its resources, back.
pub(crate) struct Completed<T> {
    pub(crate) res: i32,
    #[allow(dead_code)]
    pub(crate) flags: u32,
    pub(crate) data: T,
}

impl<T> Completed<T> {
    /// `res` as an `io::Result` (negative values are errnos).
    pub(crate) fn result(&self) -> io::Result<u32> {
        if self.res < 0 {
            Err(io::Error::from_raw_os_error(-self.res))
        } else {
            Ok(self.res as u32)
        }
    }
}

/// One submitted operation; see the module docs.
pub(crate) struct Op<T: Resources> {
    core: Rc<Core>,
    user_data: u64,
    data: Option<T>,
}

impl<T: Resources> Op<T> {
    /// Submits `sqe` (its `user_data` is set here) as an operation owning
    /// `data`.
    ///
    /// # Safety
    ///
    /// Every pointer in `sqe` points into `data`'s heap allocations (which
    /// do not move when `data` does) or into memory that outlives the
    /// runtime's ring, and stays valid for as long as `data` is not
    /// dropped.
    /// On failure (the runtime shut down, the SQ cannot be flushed) the
    /// resources come back with the error.
    pub(crate) unsafe fn submit(
        core: &Rc<Core>,
        sqe: squeue::Entry,
        data: T,
    ) -> Result<Op<T>, (io::Error, T)> {
        if let Err(e) = core.check_open() {
            return Err((e, data));
        }
        let user_data = core.ops.borrow_mut().insert(Slot::Waiting(None));
        // SAFETY: `sqe` points into `data` (kept in the `Op`, or in the op
        // table once orphaned, until the final CQE) or into memory that
        // outlives the ring: this fn's obligation.
        if let Err(e) = unsafe { core.push(&sqe.user_data(user_data)) } {
            core.ops.borrow_mut().remove(user_data);
            return Err((e, data));
        }
        Ok(Op {
            core: core.clone(),
            user_data,
            data: Some(data),
        })
    }
}

// The resources are never pinned: they are moved out whole.
impl<T: Resources> Unpin for Op<T> {}

impl<T: Resources> Future for Op<T> {
    type Output = Completed<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completed<T>> {
        let mut ops = self.core.ops.borrow_mut();
        let Some(slot) = ops.get(self.user_data) else {
            drop(ops);
            panic!("ringpool: an operation polled after it completed");
        };
        match slot {
            Slot::Done(res, flags) => {
                let (res, flags) = (*res, *flags);
                ops.remove(self.user_data);
                drop(ops);
                let data = self.data.take().expect("an Op completes once");
                Poll::Ready(Completed { res, flags, data })
            }
            Slot::Waiting(_) if !super::context::is_current(&self.core) => {
                // Its CQE comes only when its own runtime turns, and its
                // resources cannot be handed back before that (an error
                // would need them).
                drop(ops);
                self.core.polled_elsewhere("an I/O operation")
            }
            Slot::Waiting(w) => {
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            _ => unreachable!("an Op's slot is Waiting or Done"),
        }
    }
}

impl<T: Resources> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        let mut ops = self.core.ops.borrow_mut();
        let Some(slot) = ops.get(self.user_data) else {
            return;
        };
        data.abandoned();
        match slot {
            Slot::Done(res, flags) => {
                // Done but never looked at: the resources get the result.
                let (res, flags) = (*res, *flags);
                ops.remove(self.user_data);
                drop(ops);
                data.orphaned(res, flags);
            }
            Slot::Waiting(_) => {
                *slot = Slot::Orphan(Box::new(move |res, flags| data.orphaned(res, flags)));
                drop(ops);
                self.core.cancel(self.user_data);
            }
            _ => {}
        }
    }
}

/// The SQE that cancels `user_data`.
pub(crate) fn cancel_sqe(user_data: u64) -> squeue::Entry {
    opcode::AsyncCancel::new(user_data)
        .build()
        .user_data(CANCEL_USER_DATA)
}
