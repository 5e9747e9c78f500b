//! A type-erased job: one heap cell that carries the closure out to a worker
//! and the result back to the loop.
//!
//! # Contract
//!
//! A [`JobRef`] is a unique owner of its cell while it travels. The cell is
//! created by the loop ([`JobRef::new`]), executed or cancelled exactly once
//! by exactly one worker ([`JobRef::execute`]/[`JobRef::cancel`]), then handed
//! back and consumed exactly once by the loop ([`JobRef::finish`]). Between
//! those steps the pointer crosses threads through a queue, a pipe or a
//! MSG_RING CQE; every crossing carries a release/acquire edge on
//! [`Header::state`], so the hand-off is visible to ThreadSanitizer even where
//! the kernel provides the ordering (see `docs/design/handoff.md`).

use super::loop_shared::LoopShared;
use crate::error::{JobError, Task};
use crate::sync::{AtomicU32, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// The job is queued and has not been picked up.
pub(crate) const QUEUED: u32 = 0;
/// The job ran (its output, or its panic, is stored).
pub(crate) const DONE: u32 = 1;
/// The job was not run; the closure is still in the cell to be handed back.
pub(crate) const CANCELLED: u32 = 2;

/// The untyped front of every cell; a `JobRef` points here.
#[repr(C)]
pub(crate) struct Header {
    /// `QUEUED` → `DONE` | `CANCELLED`. The worker stores the final state
    /// with `Release` after it is done with the cell; the loop loads it with
    /// `Acquire` before it touches the cell again.
    pub(crate) state: AtomicU32,
    /// Index of the loop's slot that owns this cell.
    pub(crate) slot: u32,
    /// The loop the result goes back to. Valid while the job is in flight:
    /// the loop does not free its `LoopShared` before every in-flight job is
    /// back and no worker is delivering (`LoopShared::senders`).
    pub(crate) home: NonNull<LoopShared>,
    vtable: &'static VTable,
}

struct VTable {
    execute: unsafe fn(NonNull<Header>),
    finish: unsafe fn(NonNull<Header>, *mut ()),
}

struct VTableFor<F, R>(std::marker::PhantomData<(F, R)>);

impl<F, R> VTableFor<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    const VTABLE: VTable = VTable {
        execute: execute::<F, R>,
        finish: finish::<F, R>,
    };
}

#[repr(C)]
struct Cell<F, R> {
    header: Header,
    func: Option<F>,
    out: Option<std::thread::Result<R>>,
}

/// A pointer to a job cell, owning it while it is in transit.
#[derive(Debug)]
pub(crate) struct JobRef(NonNull<Header>);

// SAFETY: a JobRef is the unique owner of its cell (see the module contract);
// the cell holds an `F: Send` and an `R: Send`, and `home` is only used to
// reach `LoopShared`, which is Sync. Sending the ref moves that ownership.
unsafe impl Send for JobRef {}

impl JobRef {
    /// Allocates a cell for `f`, owned by `home`'s slot `slot`.
    pub(crate) fn new<F, R>(f: F, home: NonNull<LoopShared>, slot: u32) -> JobRef
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let cell = Box::new(Cell::<F, R> {
            header: Header {
                state: AtomicU32::new(QUEUED),
                slot,
                home,
                vtable: &VTableFor::<F, R>::VTABLE,
            },
            func: Some(f),
            out: None,
        });
        JobRef(NonNull::from(Box::leak(cell)).cast())
    }

    /// The raw pointer, for carrying in a pipe message.
    pub(crate) fn into_raw(self) -> u64 {
        self.0.as_ptr() as usize as u64
    }

    /// Rebuilds a ref from [`JobRef::into_raw`].
    ///
    /// # Safety
    ///
    /// `raw` must come from `into_raw` of a ref that has not been rebuilt
    /// since (ownership is transferred back exactly once).
    pub(crate) unsafe fn from_raw(raw: u64) -> JobRef {
        // SAFETY: `into_raw` produced a non-null pointer (caller's obligation).
        JobRef(unsafe { NonNull::new_unchecked(raw as usize as *mut Header) })
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the cell is live while a JobRef to it exists (contract).
        unsafe { self.0.as_ref() }
    }

    /// Runs the job on this thread, catching a panic, and publishes `DONE`.
    ///
    /// After this returns, the cell may be freed by the loop at any moment if
    /// the caller keeps no other claim: callers read what they need from the
    /// header *before* calling this (see `worker::deliver`).
    pub(crate) fn execute(&self) {
        let h = self.0;
        // SAFETY: we own the cell (contract) and it has not run: it is QUEUED.
        unsafe { (self.header().vtable.execute)(h) };
        self.header().state.store(DONE, Ordering::Release);
    }

    /// Loop side, before the pointer leaves through the kernel (a pipe
    /// write): a release store that [`JobRef::acquire`] pairs with.
    ///
    /// The kernel already orders the hand-off (the pipe's lock), but
    /// ThreadSanitizer cannot see inside a syscall; this edge is what makes
    /// the hand-off visible to it. `--cfg ringpool_no_bridge` removes it, so
    /// that the TSan stage can prove it would report the race without it.
    #[inline]
    pub(crate) fn publish(&self) {
        #[cfg(not(ringpool_no_bridge))]
        self.header().state.store(QUEUED, Ordering::Release);
    }

    /// Worker side, after receiving the pointer from the kernel: pairs with
    /// [`JobRef::publish`].
    #[inline]
    pub(crate) fn acquire(&self) {
        #[cfg(not(ringpool_no_bridge))]
        let _ = self.header().state.load(Ordering::Acquire);
    }

    /// Marks the job cancelled (the closure stays in the cell).
    pub(crate) fn cancel(&self) {
        self.header().state.store(CANCELLED, Ordering::Release);
    }

    /// Consumes the cell on the loop: frees it and writes the outcome into
    /// `out`.
    ///
    /// # Safety
    ///
    /// * The cell's final state must have been published (the worker is done
    ///   with it); this loads it with `Acquire`.
    /// * `R` must be the result type the cell was created with.
    pub(crate) unsafe fn finish<R>(self, out: &mut Option<Result<R, JobError<R>>>) {
        let finish = self.header().vtable.finish;
        // SAFETY: the caller guarantees `R` matches the cell's `R`, which is
        // what `finish::<F, R>` writes through the pointer; the cell is ours.
        unsafe { finish(self.0, (out as *mut Option<Result<R, JobError<R>>>).cast()) }
    }
}

/// # Safety
/// `h` points to a live `Cell<F, R>` owned by the caller, in state QUEUED.
unsafe fn execute<F: FnOnce() -> R, R>(h: NonNull<Header>) {
    let cell = h.cast::<Cell<F, R>>().as_ptr();
    // SAFETY: the caller owns the cell exclusively, so forming `&mut` is fine.
    let cell = unsafe { &mut *cell };
    if let Some(f) = cell.func.take() {
        cell.out = Some(catch_unwind(AssertUnwindSafe(f)));
    }
}

/// # Safety
/// `h` points to a live `Cell<F, R>` whose worker is done; `out` points to an
/// `Option<Result<R, JobError<R>>>`.
unsafe fn finish<F, R>(h: NonNull<Header>, out: *mut ())
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    // SAFETY: the cell was leaked from a Box in `JobRef::new` and ownership
    // came back to us exactly once (contract), so rebuilding the Box is sound.
    let cell = unsafe { Box::from_raw(h.cast::<Cell<F, R>>().as_ptr()) };
    let state = cell.header.state.load(Ordering::Acquire);
    let Cell {
        func, out: result, ..
    } = *cell;
    let outcome = match (state, result, func) {
        (DONE, Some(Ok(v)), _) => Ok(v),
        (DONE, Some(Err(p)), _) => Err(JobError::Panicked(p)),
        (_, _, Some(f)) => Err(JobError::Cancelled(Task::new(f))),
        // Unreachable by the contract (a DONE cell has an output, a cancelled
        // one its closure); report it as a panic rather than invent a value.
        _ => Err(JobError::Panicked(Box::new(
            "ringpool: job cell in an impossible state",
        ))),
    };
    // SAFETY: `out` points to the caller's slot of the right type.
    unsafe { *out.cast::<Option<Result<R, JobError<R>>>>() = Some(outcome) };
}
