//! A type-erased job: a cell of its loop's slab that carries the closure out
//! to a worker and the result back to the loop.
//!
//! # Contract
//!
//! Every registered loop owns a [`Slab`] of `max_in_flight` cells, allocated
//! once at `register` and kept in the loop's shared part (`LoopShared`),
//! which outlives every in-flight job (`LoopShared`'s lifetime contract).
//! Cell `i` belongs to the loop's slot `i`; a cell is *free* when its slot is
//! (its payload holds nothing) and *in use* from [`JobRef::new_in`] to
//! [`JobRef::finish`].
//!
//! A [`JobRef`] is a unique owner of its cell's contents while it travels.
//! The cell is filled by the loop ([`JobRef::new_in`]), executed or cancelled
//! exactly once by exactly one worker ([`JobRef::execute`]/[`JobRef::cancel`]),
//! then handed back and emptied exactly once by the loop ([`JobRef::finish`]),
//! which leaves it free for the slot's next job. Between those steps the
//! pointer crosses threads through a queue, a pipe or a MSG_RING CQE; every
//! crossing carries a release/acquire edge (the queue's, or one on
//! [`Header::state`]), so the hand-off is visible to ThreadSanitizer even
//! where the kernel provides the ordering (see `docs/design/handoff.md`).
//!
//! # The payload
//!
//! A cell stores its job's payload inline: first the closure `F`, then its
//! outcome, a `Result<R, JobError<R>>` (the value or the panic). A value that does not fit ([`INLINE`] bytes,
//! aligned to [`PAYLOAD_ALIGN`]) is boxed and the box stored inline instead;
//! which one is a compile-time fact of its type ([`fits`]), so the writer and
//! the reader always agree.

use super::loop_shared::LoopShared;
use crate::error::{JobError, Task};
use crate::sync::{AtomicU32, Ordering};
use std::cell::UnsafeCell;
use std::mem::{align_of, size_of, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// The job is queued and has not been picked up.
pub(crate) const QUEUED: u32 = 0;
/// The job ran (its output, or its panic, is stored).
pub(crate) const DONE: u32 = 1;
/// The job was not run; the closure is still in the cell to be handed back.
pub(crate) const CANCELLED: u32 = 2;
/// The cell is free: emptied by the loop (or never filled). Never a final
/// state, so a cell finished twice by mistake takes the vtable's path,
/// whose free-cell functions write nothing (`finish` then panics on the
/// missing outcome), and never reads its payload again.
const FREE: u32 = 3;

/// The ordering of the worker's final state store: `Release`, which the
/// loop's `Acquire` load pairs with before it touches the cell again. Where
/// the kernel alone carries the news (a per-job MSG_RING CQE), this edge is
/// the only one ThreadSanitizer can see; `--cfg ringpool_relaxed_done` makes
/// it `Relaxed`, so that the TSan stage can prove it would report the race.
#[cfg(not(ringpool_relaxed_done))]
const FINAL: Ordering = Ordering::Release;
#[cfg(ringpool_relaxed_done)]
const FINAL: Ordering = Ordering::Relaxed;

/// Payload bytes stored inline in a cell.
pub(crate) const INLINE: usize = 96;
/// The inline payload's alignment (the `align` of [`Payload`]).
pub(crate) const PAYLOAD_ALIGN: usize = 16;

/// `true` if a `T` is stored inline in a cell's payload; otherwise a
/// `Box<T>` is.
const fn fits<T>() -> bool {
    size_of::<T>() <= INLINE && align_of::<T>() <= PAYLOAD_ALIGN
}

/// The untyped front of every cell; a `JobRef` points here.
#[repr(C)]
pub(crate) struct Header {
    /// `QUEUED` → `DONE` | `CANCELLED`. The worker stores the final state
    /// with `Release` after it is done with the cell; the loop loads it with
    /// `Acquire` before it touches the cell again.
    pub(crate) state: AtomicU32,
    /// Index of the loop's slot that owns this cell (fixed: cell index ==
    /// slot index).
    pub(crate) slot: u32,
    /// The loop the result goes back to: the owner of this cell's slab
    /// (fixed). Valid while the job is in flight: the loop does not free its
    /// `LoopShared` before every in-flight job is back and no worker is
    /// delivering (`LoopShared::senders`).
    pub(crate) home: NonNull<LoopShared>,
    /// The current job's functions. Written by the loop in `new_in` (the
    /// cell is free, so nobody else looks), read by the cell's owner of the
    /// moment (see the module contract).
    vtable: UnsafeCell<&'static VTable>,
}

/// Room for one payload: a `T` when [`fits::<T>`], else a `Box<T>`.
#[repr(C, align(16))]
struct Payload([MaybeUninit<u8>; INLINE]);

const _: () = assert!(align_of::<Payload>() == PAYLOAD_ALIGN);
const _: () = assert!(size_of::<Payload>() == INLINE);
// A boxed payload is stored inline, so a box must always fit.
const _: () = assert!(fits::<Box<u128>>());

/// One cell: the header, then the payload. Aligned (so padded) to 128 bytes,
/// crossbeam's `CachePadded` for x86_64 (a line, and the adjacent-line
/// prefetcher's pair), so that two adjacent cells never share a cache line:
/// different workers run adjacent jobs.
#[repr(C, align(128))]
struct Cell {
    header: Header,
    payload: UnsafeCell<Payload>,
}

/// A loop's cells, one per slot; allocated once, at `register`.
pub(crate) struct Slab {
    cells: Box<[Cell]>,
}

// SAFETY: the cells' non-atomic parts (`vtable`, `payload`) are only touched
// by the owner of the cell's contents of the moment (the module contract:
// the loop while it is free or after `finish`'s `Acquire`, one worker between
// its pop and its final `Release` store), and every change of owner carries a
// release/acquire edge. The payloads are `F: Send` closures and `R: Send`
// results, and `home` is only used to reach `LoopShared`, which is Sync.
unsafe impl Sync for Slab {}
// SAFETY: moving the slab to another thread moves only `Send` payloads (the
// `F: Send` closures and `R: Send` results) and a pointer to its
// (Sync) owner.
unsafe impl Send for Slab {}

impl Slab {
    /// `n` free cells whose jobs go home to `home`, for slots `0..n`.
    ///
    /// `home` need not be valid yet (the slab is built inside the
    /// `LoopShared` it names); it is only dereferenced by workers holding a
    /// job of this slab.
    pub(crate) fn new(n: usize, home: NonNull<LoopShared>) -> Slab {
        let cells = (0..n)
            .map(|i| Cell {
                header: Header {
                    state: AtomicU32::new(FREE),
                    slot: u32::try_from(i).expect("max_in_flight fits in u32"),
                    home,
                    vtable: UnsafeCell::new(&EMPTY),
                },
                payload: UnsafeCell::new(Payload([MaybeUninit::uninit(); INLINE])),
            })
            .collect();
        Slab { cells }
    }

    /// The header of cell `slot`.
    ///
    /// # Panics
    ///
    /// If `slot` is not below the slab's length.
    #[inline]
    pub(crate) fn cell(&self, slot: u32) -> NonNull<Header> {
        // From a reference to the whole cell, so that the pointer may reach
        // the payload too; `Cell` is `repr(C)` with the header first.
        let cell: &Cell = &self.cells[slot as usize];
        NonNull::from(cell).cast()
    }
}

impl Slab {
    /// The slot of `job`, a cell of this slab, found from its address
    /// alone: the cell is not read (a worker may have just written it, and
    /// reading it would wait for its transfer).
    ///
    /// # Panics
    ///
    /// In debug builds, if `job` is not a cell of this slab (a bug); in
    /// release builds the result is then out of range, and indexing the
    /// slot table with it panics.
    #[inline]
    pub(crate) fn slot_of(&self, job: &JobRef) -> u32 {
        let base = self.cells.as_ptr() as usize;
        let i = job.addr().wrapping_sub(base) / size_of::<Cell>();
        debug_assert!(i < self.cells.len(), "a job of another slab");
        debug_assert_eq!(i as u32, job.header().slot);
        i as u32
    }
}

// A slab is dropped only when every cell is free (no payload to drop): the
// loop frees `LoopShared` after every in-flight job is back. A cell still in
// use (only if that contract was broken) leaks its payload.

struct VTable {
    execute: unsafe fn(NonNull<Header>),
    finish: unsafe fn(NonNull<Header>, *mut ()),
    discard: unsafe fn(NonNull<Header>),
}

/// The vtable of a free cell: never called by the contract.
static EMPTY: VTable = VTable {
    execute: empty_execute,
    finish: empty_finish,
    discard: empty_execute,
};

/// # Safety
/// No obligation: it touches nothing. Never called by the contract (a free
/// cell is never executed).
unsafe fn empty_execute(_: NonNull<Header>) {}

/// # Safety
/// No obligation: it writes nothing (so `finish`'s caller finds no
/// outcome). Never called by the contract (a free cell is never finished).
unsafe fn empty_finish(_: NonNull<Header>, _: *mut ()) {}

struct VTableFor<F, R>(std::marker::PhantomData<(F, R)>);

impl<F, R> VTableFor<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    const VTABLE: VTable = VTable {
        execute: execute::<F, R>,
        finish: finish::<F, R>,
        discard: discard::<F, R>,
    };
}

/// A pointer to a job cell, owning its contents while it is in transit.
#[derive(Debug)]
pub(crate) struct JobRef(NonNull<Header>);

// SAFETY: a JobRef is the unique owner of its cell's contents (see the module
// contract); the cell holds an `F: Send` or an `R: Send`, and `home` is only
// used to reach `LoopShared`, which is Sync. Sending the ref moves that
// ownership.
unsafe impl Send for JobRef {}

impl JobRef {
    /// Puts `f` into the free cell `cell` and returns its ref.
    ///
    /// # Safety
    ///
    /// * `cell` is a cell of a live [`Slab`] ([`Slab::cell`]) that stays
    ///   alive until the ref comes back to [`JobRef::finish`];
    /// * the cell is free: its slot holds no job (never filled, or emptied by
    ///   `finish`), so no worker touches it and its payload holds nothing;
    /// * the caller is the loop that owns the slab (the only thread that
    ///   fills or empties its cells).
    #[inline]
    pub(crate) unsafe fn new_in<F, R>(cell: NonNull<Header>, f: F) -> JobRef
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let p = payload(cell);
        // SAFETY: the cell is free and ours (caller's obligations): nobody
        // reads its payload or vtable until the ref is handed over, which
        // carries a release/acquire edge. The payload is empty, so writing
        // over it drops nothing. `payload` points into the live slab, to
        // room of `INLINE` bytes aligned to 16, which `put` checks the type
        // against.
        unsafe {
            put::<F>(p, f);
            *(*cell.as_ptr()).vtable.get() = &VTableFor::<F, R>::VTABLE;
        }
        // SAFETY: the slab is live (caller's obligation).
        let h = unsafe { cell.as_ref() };
        // Relaxed: the hand-off itself (a queue push, or a pipe write, which
        // ThreadSanitizer models as a release) carries the edge that makes
        // these writes visible.
        h.state.store(QUEUED, Ordering::Relaxed);
        JobRef(cell)
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

    /// The pointer as a non-zero address, for carrying in a lock-free ring
    /// (`protocol::rings`); ownership moves with it.
    #[inline]
    pub(crate) fn into_addr(self) -> usize {
        self.addr()
    }

    /// The pointer as an address, without giving up the ref (a ring push
    /// that moves a whole batch; the caller then forgets the refs).
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Rebuilds a ref from [`JobRef::into_addr`] or [`JobRef::addr`].
    ///
    /// # Safety
    ///
    /// `addr` must come from a ref whose ownership was given up with it and
    /// that has not been rebuilt since (ownership is transferred back
    /// exactly once); so it is not zero.
    #[inline]
    pub(crate) unsafe fn from_addr(addr: usize) -> JobRef {
        // SAFETY: a ref's address is never zero (caller's obligation).
        JobRef(unsafe { NonNull::new_unchecked(addr as *mut Header) })
    }

    /// The cell's pointer (with the provenance of the whole cell, unlike
    /// `NonNull::from(self.header())`).
    #[inline]
    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// Asks the CPU to start loading the cell's cache lines, which the
    /// other side wrote last: called on a whole batch before it is worked
    /// through, so the cross-core transfers overlap instead of each job
    /// waiting for its own. A hint only: see [`prefetch_cell`].
    #[inline]
    pub(crate) fn prefetch(&self) {
        prefetch_cell(self.addr());
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the cell's slab is live while a JobRef to it exists
        // (contract: `LoopShared` outlives its in-flight jobs).
        unsafe { self.0.as_ref() }
    }

    /// The current job's functions.
    #[inline]
    fn vtable(&self) -> &'static VTable {
        // SAFETY: the vtable is written only by `new_in`, before this ref
        // existed (and handed over with a release/acquire edge); whoever
        // holds the ref may read it.
        unsafe { *self.header().vtable.get() }
    }

    /// Runs the job on this thread, catching a panic, and publishes `DONE`.
    ///
    /// After this returns, the cell may be reused by the loop at any moment
    /// if the caller keeps no other claim: callers read what they need from
    /// the header *before* calling this (see `worker::run`).
    #[inline]
    pub(crate) fn execute(&self) {
        let h = self.0;
        let execute = self.vtable().execute;
        // SAFETY: we own the cell's contents (contract) and the job has not
        // run: it holds the `F` that `new_in` put there with this vtable.
        unsafe { execute(h) };
        self.header().state.store(DONE, FINAL);
    }

    /// Empties the cell on the loop and drops its outcome (the result, the
    /// panic, or the cancelled closure) there, whatever its type: for a job
    /// whose owner is gone (an `offload` future dropped before its result).
    ///
    /// # Safety
    ///
    /// * The cell's final state must have been published (the worker is done
    ///   with it); this loads it with `Acquire`.
    /// * The caller is the loop that owns the cell's slab.
    pub(crate) unsafe fn discard(self) {
        let discard = self.vtable().discard;
        // SAFETY: the final state is published and the cell's contents are
        // ours (caller's obligations); `discard` is the typed function of the
        // job `new_in` stored, with the vtable.
        unsafe { discard(self.0) };
        // SAFETY: this is the loop that owns the slab and the final state is
        // published (caller's obligations); `discard` moved the outcome out.
        unsafe { self.empty() };
    }

    /// Marks the job cancelled (the closure stays in the cell).
    #[inline]
    pub(crate) fn cancel(&self) {
        self.header().state.store(CANCELLED, FINAL);
    }

    /// Empties the cell on the loop: returns the outcome and leaves the
    /// cell free for its slot's next job.
    ///
    /// # Safety
    ///
    /// * The cell's final state must have been published (the worker is done
    ///   with it); this loads it with `Acquire`.
    /// * `R` must be the result type the cell was filled with.
    /// * The caller is the loop that owns the cell's slab.
    #[inline]
    pub(crate) unsafe fn finish<R>(self) -> Result<R, JobError<R>> {
        // SAFETY: the cell's slab is live while the ref exists.
        let state = unsafe { self.0.as_ref() }.state.load(Ordering::Acquire);
        let outcome = if state == DONE {
            // The common case, typed on `R` alone, so the outcome moves
            // straight from the cell to the caller (no vtable call, no
            // out-parameter).
            // SAFETY: a DONE cell holds the `Outcome<R>` that `execute`
            // stored at the payload's start (only `execute` stores DONE,
            // after its `put`), `R` is the cell's result type (caller's
            // obligation), the final state is published (Acquire above) and
            // the contents are ours; it is moved out once, as the cell is
            // emptied below.
            unsafe { take::<Outcome<R>>(payload(self.0)) }
        } else {
            // A cancelled job: the closure's type is needed, so the typed
            // function of the vtable (written by this thread in `new_in`)
            // takes it out.
            let finish = self.vtable().finish;
            let mut out = None;
            // SAFETY: the caller guarantees `R` matches the cell's `R`, which
            // is what `finish::<F, R>` writes through the pointer; the final
            // state is published (Acquire above) and the contents are ours.
            unsafe {
                finish(
                    self.0,
                    (&mut out as *mut Option<Result<R, JobError<R>>>).cast(),
                )
            };
            out.expect("finish writes the outcome")
        };
        // SAFETY: this is the loop that owns the slab and the final state is
        // published and seen (caller's obligations); the outcome was just
        // moved out.
        unsafe { self.empty() };
        outcome
    }

    /// Marks the cell free once its payload was moved out.
    ///
    /// The next `new_in` overwrites both anyway. Resetting them means a bug
    /// that finished or discarded a free cell finds no final state and
    /// reaches the [`EMPTY`] functions, which do nothing, instead of reading
    /// a moved-out payload.
    ///
    /// # Safety
    ///
    /// The caller is the loop that owns the cell's slab, the cell's final
    /// state was published and seen (no worker touches it any more), and
    /// its payload holds nothing.
    #[inline]
    unsafe fn empty(&self) {
        // Relaxed: the cell is the loop's; the next hand-off carries the
        // edge (as in `new_in`).
        self.header().state.store(FREE, Ordering::Relaxed);
        // SAFETY: the cell's contents are the loop's and no worker reads
        // them (caller's obligations), and no reference to the vtable is
        // held across this write.
        unsafe { *self.header().vtable.get() = &EMPTY };
    }
}

/// Asks the CPU to start loading both cache lines of the cell at `addr`
/// (a [`JobRef::addr`], or any address: a prefetch is a hint with no
/// architectural effect, which reads nothing into the program and cannot
/// fault, so it needs no ownership and no valid memory).
#[inline]
pub(crate) fn prefetch_cell(addr: usize) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = addr as *const i8;
        // SAFETY: a prefetch never faults and reads nothing into the
        // program, whatever the address; SSE (which provides it) is part of
        // the x86_64 baseline. `wrapping_add` makes no claim on the pointer.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = addr;
}

/// What a job that ran leaves in its cell: its value, or its panic
/// ([`JobError::Panicked`]).
type Outcome<R> = Result<R, JobError<R>>;

/// The payload room of the cell whose header is `h`.
fn payload(h: NonNull<Header>) -> *mut Payload {
    // `Cell` is `repr(C)` with the header first, so the header's address is
    // the cell's. No reference is formed: others may hold `&Header`.
    let cell = h.cast::<Cell>().as_ptr();
    // SAFETY: `h` points to the header of a `Cell` of a live slab (every
    // `NonNull<Header>` in the crate comes from `Slab::cell`, with the whole
    // cell's provenance), so the projection stays inside that cell.
    unsafe { UnsafeCell::raw_get(std::ptr::addr_of!((*cell).payload)) }
}

/// Stores `v` in the payload room `p`: inline if it fits, else boxed.
///
/// # Safety
///
/// `p` points to a live, empty payload room that the caller owns.
unsafe fn put<T>(p: *mut Payload, v: T) {
    if fits::<T>() {
        // SAFETY: `T` fits in `INLINE` bytes with alignment at most 16, the
        // room's size and alignment; the room is ours and empty.
        unsafe { p.cast::<T>().write(v) }
    } else {
        // SAFETY: a `Box<T>` fits in the room's size and alignment (the
        // compile-time assertion on `fits::<Box<u128>>`: every `Box<T>` of a
        // sized `T` is one pointer); the room is ours and empty.
        unsafe { p.cast::<Box<T>>().write(Box::new(v)) }
    }
}

/// Moves the `T` that [`put`] stored in `p` out, leaving the room empty.
///
/// # Safety
///
/// `p` points to a live payload room that the caller owns and that holds a
/// `T` stored by `put::<T>` (and not taken since).
unsafe fn take<T>(p: *mut Payload) -> T {
    if fits::<T>() {
        // SAFETY: `put::<T>` wrote a `T` inline (the same `fits` test), and
        // it is read out once (caller's obligation).
        unsafe { p.cast::<T>().read() }
    } else {
        // SAFETY: `put::<T>` wrote a `Box<T>` inline; read out once.
        *unsafe { p.cast::<Box<T>>().read() }
    }
}

/// # Safety
/// `h` is a cell of a live slab whose contents the caller owns exclusively,
/// in state QUEUED, holding the `F` that `new_in::<F, R>` stored.
unsafe fn execute<F: FnOnce() -> R, R>(h: NonNull<Header>) {
    let p = payload(h);
    // SAFETY: the payload holds the `F` (caller's obligation); it is taken
    // exactly once, here, and the room is then empty.
    let f = unsafe { take::<F>(p) };
    // Made here, on the worker, in the form the loop hands out: taking it
    // is then a move.
    let out: Outcome<R> = catch_unwind(AssertUnwindSafe(f)).map_err(JobError::Panicked);
    // SAFETY: the room is empty (the `F` was moved out) and ours.
    unsafe { put::<Outcome<R>>(p, out) };
}

/// # Safety
/// `h` is a cell of a live slab whose worker is done (its final state is
/// published and loaded with `Acquire` by the caller), whose contents the
/// caller owns, filled by `new_in::<F, R>`: a `DONE` cell holds the
/// [`Outcome<R>`] of `execute`, a `CANCELLED` one the `F`. `out`
/// points to an `Option<Result<R, JobError<R>>>`.
unsafe fn finish<F, R>(h: NonNull<Header>, out: *mut ())
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let p = payload(h);
    // SAFETY: the cell's slab is live (caller's obligation).
    let state = unsafe { h.as_ref() }.state.load(Ordering::Acquire);
    let outcome = if state == DONE {
        // SAFETY: a DONE cell holds the result `execute` stored (the
        // contract: only `execute` stores DONE, after `put`); moved out once.
        unsafe { take::<Outcome<R>>(p) }
    } else {
        // SAFETY: a cancelled cell still holds the `F` of `new_in` (only
        // `cancel` stores CANCELLED, and only instead of `execute`); moved
        // out once. The cold path: the `Task` boxes it.
        let f = unsafe { take::<F>(p) };
        Err(JobError::Cancelled(Task::new(f)))
    };
    // SAFETY: `out` points to the caller's slot of the right type.
    unsafe { *out.cast::<Option<Result<R, JobError<R>>>>() = Some(outcome) };
}

/// # Safety
/// As [`finish`], without the `out` pointer: the outcome is dropped here.
unsafe fn discard<F, R>(h: NonNull<Header>)
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let mut out: Option<Result<R, JobError<R>>> = None;
    // SAFETY: the caller's obligations are `finish`'s, and `out` has the
    // type `finish::<F, R>` writes.
    unsafe { finish::<F, R>(h, (&mut out as *mut Option<Result<R, JobError<R>>>).cast()) };
    // A panic payload's drop may itself panic; the cell is empty either way.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(out)));
}
