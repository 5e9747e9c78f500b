//! The in-flight table: which slot holds which job, the free list, and the
//! completions ready for the user.
//!
//! A slot's job belongs either to the table ([`Owner::Queue`]: its outcome
//! goes to the ready list, for [`LoopHandle::completions`](super::LoopHandle::completions))
//! or to a task ([`Owner::Task`]: the runtime's `offload` future, which takes
//! its outcome itself and is woken when it is there). A task's slot stays
//! taken from its job's end until the task takes the outcome or gives the
//! slot up ([`Owner::Abandoned`]: the outcome is dropped on arrival).
//!
//! A queue job's outcome also stays in its cell once the job is done: the
//! slot goes on the `done` list, and the outcome is moved out only when
//! [`Slots::pop_ready`] hands it to the user (or when a slot is needed, or
//! the handle closes). So taking a result off the pool touches only the
//! loop's own table, and the cell is read when the user asks for it, by
//! which time the prefetch that `drain_results` started has brought it over
//! from the worker's core.

use super::completions::{Completion, JobId};
use super::slot_lists::{SlotQueue, SlotStack};
use crate::handoff::dispatch::Sink;
use crate::pool::job::{Header, JobRef, CANCELLED, DONE};
use crate::sync::Ordering::Acquire;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::task::Waker;

/// How a finished job wakes the task that awaits it.
pub(crate) enum Wake {
    /// Nobody to wake (yet, or any more).
    None,
    /// A waker of any kind, woken on the loop's thread.
    Waker(Waker),
    /// The runtime's own task, named by a token of the runtime's: no waker
    /// is cloned or woken; the token goes on [`Slots::local_wakes`], which
    /// the runtime takes after every wait.
    Local(u64),
}

/// How a task that polls its job asks to be woken: [`Wake`], borrowed.
#[derive(Clone, Copy)]
pub(crate) enum Waking<'a> {
    /// By this waker (cloned if it is not the one kept already).
    Waker(&'a Waker),
    /// By this token on [`Slots::local_wakes`].
    Local(u64),
}

impl From<Waking<'_>> for Wake {
    #[inline]
    fn from(by: Waking<'_>) -> Wake {
        match by {
            Waking::Waker(w) => Wake::Waker(w.clone()),
            Waking::Local(t) => Wake::Local(t),
        }
    }
}

impl Wake {
    /// Keeps `by`, unless what is kept already wakes the same task.
    fn keep(&mut self, by: Waking<'_>) {
        match (&*self, by) {
            (Wake::Waker(w), Waking::Waker(by)) if w.will_wake(by) => {}
            (Wake::Local(t), Waking::Local(by)) if *t == by => {}
            _ => *self = Wake::from(by),
        }
    }
}

/// Who takes a slot's outcome.
pub(crate) enum Owner {
    /// The ready list.
    Queue,
    /// A task: `done` once the job's final state is seen (its outcome is
    /// still in the cell, `Slot::held`); `wake` is done then.
    Task { wake: Wake, done: bool },
    /// A task that gave up its job: the outcome is dropped when it arrives.
    Abandoned,
}

/// One in-flight job: where its cell is, and its id.
struct Slot {
    /// The job's cell (in the loop's slab) while the job is out. The loop
    /// does not touch it then, except to read `state` (with `Acquire`).
    cell: Option<NonNull<Header>>,
    /// A finished job whose outcome waits in its cell: for its task, or
    /// (a queue job) on the `done` list for `completions`.
    held: Option<NonNull<Header>>,
    id: u64,
    owner: Owner,
}

pub(crate) struct Slots<R> {
    table: Vec<Slot>,
    free: SlotStack,
    /// Jobs out (submitted, final state not yet seen).
    out: usize,
    /// Completions moved out of their cells, oldest first; all older than
    /// those on `done`.
    ready: VecDeque<Completion<R>>,
    /// Slots of finished queue jobs whose outcome waits in the cell
    /// (`Slot::held`), oldest first.
    done: SlotQueue,
    next_id: u64,
    /// Completions produced so far.
    pub(crate) completed: u64,
    /// Announcements that named no job of this table in a final state.
    pub(crate) ignored: u64,
    /// Tokens of tasks whose jobs finished ([`Wake::Local`]), for the
    /// runtime to take (capacity for every slot, made once).
    local_wakes: Vec<u64>,
}

impl<R> Slots<R> {
    pub(crate) fn new(capacity: usize) -> Slots<R> {
        Slots {
            table: (0..capacity)
                .map(|_| Slot {
                    cell: None,
                    held: None,
                    id: 0,
                    owner: Owner::Queue,
                })
                .collect(),
            free: SlotStack::full(capacity),
            out: 0,
            ready: VecDeque::new(),
            done: SlotQueue::with_capacity(capacity),
            next_id: 0,
            completed: 0,
            ignored: 0,
            local_wakes: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.table.len()
    }

    /// Jobs out: submitted, and their final state not yet seen.
    pub(crate) fn in_flight(&self) -> usize {
        self.out
    }

    /// `true` if a slot is free for a new job (or can be freed: a finished
    /// job's outcome moved out of its cell).
    pub(crate) fn has_room(&self) -> bool {
        !self.free.is_empty() || !self.done.is_empty()
    }

    pub(crate) fn ready(&self) -> usize {
        self.ready.len() + self.done.len()
    }

    /// `true` if finished jobs named tasks that the runtime has not taken.
    pub(crate) fn has_local_wakes(&self) -> bool {
        !self.local_wakes.is_empty()
    }

    /// Swaps the tokens of [`Wake::Local`] woken so far into `tokens`
    /// (empty), whose room takes their place.
    pub(crate) fn swap_local_wakes(&mut self, tokens: &mut Vec<u64>) {
        debug_assert!(tokens.is_empty());
        std::mem::swap(&mut self.local_wakes, tokens);
    }

    #[inline]
    pub(crate) fn pop_ready(&mut self) -> Option<Completion<R>> {
        if let Some(c) = self.ready.pop_front() {
            return Some(c);
        }
        let slot = self.done.pop_front()?;
        Some(self.finish_done(slot))
    }

    pub(crate) fn take_ready(&mut self) -> Vec<Completion<R>> {
        self.move_out_done();
        self.ready.drain(..).collect()
    }

    /// Moves the outcome of every finished queue job out of its cell, onto
    /// `ready` (in order), freeing the slots.
    pub(crate) fn move_out_done(&mut self) {
        while let Some(slot) = self.done.pop_front() {
            let c = self.finish_done(slot);
            self.ready.push_back(c);
        }
    }

    /// The completion of the finished queue job in `slot` (taken off
    /// `done`): its outcome moved out of the cell, the slot free again.
    #[inline]
    fn finish_done(&mut self, slot: u32) -> Completion<R> {
        let s = &mut self.table[slot as usize];
        let cell = s.held.take().expect("a done queue slot holds its cell");
        let id = JobId::new(s.id);
        self.free.push(slot);
        // SAFETY: the final state was published and seen before the slot
        // went on `done` (`complete_at`), so the worker no longer touches
        // the cell; the slot held it, and gives it up exactly once (`held`
        // cleared above).
        let job = unsafe { JobRef::from_raw(cell.as_ptr() as usize as u64) };
        // SAFETY: as above, the final state is published and seen; this
        // loop filled the cell with result type `R` (a queue job's, through
        // `try_submit`), and the cell is of this loop's slab.
        let result = unsafe { job.finish::<R>() };
        Completion { id, result }
    }

    /// Every slot is out or holds an outcome: moves the oldest outcome out
    /// (it stays first in line) and takes its slot; `None` if every slot is
    /// out.
    #[cold]
    #[inline(never)]
    fn free_oldest_done(&mut self) -> Option<u32> {
        let done = self.done.pop_front()?;
        let c = self.finish_done(done);
        self.ready.push_back(c);
        self.free.pop()
    }

    /// Takes a free slot for a new job, or `None` if every slot is in flight.
    #[inline]
    pub(crate) fn reserve(&mut self) -> Option<(u32, JobId)> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => self.free_oldest_done()?,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.table[slot as usize].id = id;
        Some((slot, JobId::new(id)))
    }

    /// Records the cell of the job just created for `slot`, and who takes
    /// its outcome.
    #[inline]
    pub(crate) fn occupy(&mut self, slot: u32, job: &JobRef, owner: Owner) {
        let s = &mut self.table[slot as usize];
        s.cell = Some(job.as_ptr());
        // A free slot's owner is `Queue` (every path that frees a slot sets
        // it so): a queue job leaves it as it is.
        debug_assert!(matches!(s.owner, Owner::Queue));
        if !matches!(owner, Owner::Queue) {
            s.owner = owner;
        }
        self.out += 1;
    }

    /// The id of the job in `slot` (to check that a task's slot is still its own).
    pub(crate) fn id_of(&self, slot: u32) -> u64 {
        self.table[slot as usize].id
    }

    /// A task's job: `Some(job)` (the slot is free again) if its outcome is
    /// there, else `None`, with `by` kept to wake the task when it is.
    #[inline(always)]
    pub(crate) fn take_task(&mut self, slot: u32, id: u64, by: Waking<'_>) -> Option<JobRef> {
        let s = &mut self.table[slot as usize];
        assert_eq!(s.id, id, "a task polled a slot that is not its own");
        match &mut s.owner {
            Owner::Task { done: true, .. } => {
                let cell = s.held.take().expect("a done task slot holds its cell");
                s.owner = Owner::Queue;
                self.free.push(slot);
                // SAFETY: the final state was published and seen (`done`),
                // the worker no longer touches the cell, and the slot held
                // it for its task: ownership comes back exactly once, as
                // `held` is cleared above.
                Some(unsafe { JobRef::from_raw(cell.as_ptr() as usize as u64) })
            }
            Owner::Task { wake, .. } => {
                wake.keep(by);
                None
            }
            _ => unreachable!("a task polled a slot it gave up"),
        }
    }

    /// A task gives its job up: its outcome is dropped now if it is there,
    /// or when it arrives.
    pub(crate) fn abandon_task(&mut self, slot: u32, id: u64) {
        let s = &mut self.table[slot as usize];
        if s.id != id || !matches!(s.owner, Owner::Task { .. }) {
            return;
        }
        match s.held.take() {
            Some(cell) => {
                s.owner = Owner::Queue;
                self.free.push(slot);
                // SAFETY: the final state was published and seen (the job
                // is done), and the slot held the cell for its task, which
                // gives it up: taken back exactly once (`held` cleared).
                let job = unsafe { JobRef::from_raw(cell.as_ptr() as usize as u64) };
                // SAFETY: the cell's final state was published and seen
                // (the slot held it as done), so the worker is done with it;
                // this is the loop that owns the slab.
                unsafe { job.discard() };
            }
            None => s.owner = Owner::Abandoned,
        }
    }

    /// Drops the outcomes that tasks never took (the handle is going away),
    /// and moves those of queue jobs out of their cells (dropped with the
    /// ready list, or taken by `close`).
    pub(crate) fn discard_held(&mut self) {
        self.move_out_done();
        for slot in 0..self.table.len() as u32 {
            if self.table[slot as usize].held.is_some() {
                let id = self.table[slot as usize].id;
                self.abandon_task(slot, id);
            }
        }
    }

    /// A job handed back by a worker; its header names its slot.
    #[inline(always)]
    pub(crate) fn complete(&mut self, job: JobRef) {
        let slot = job.header().slot;
        self.complete_at(slot, job);
    }

    /// A job handed back by a worker, in `slot` (which the caller found
    /// from the cell's address: [`Slab::slot_of`](crate::pool::job::Slab::slot_of)).
    #[inline(always)]
    pub(crate) fn complete_at(&mut self, slot: u32, job: JobRef) {
        let s = &mut self.table[slot as usize];
        debug_assert_eq!(s.cell, Some(job.as_ptr()));
        s.cell = None;
        self.out -= 1;
        self.completed += 1;
        match &mut s.owner {
            Owner::Queue => {
                // The outcome stays in the cell until the user takes it.
                s.held = Some(job.as_ptr());
                self.done.push_back(slot);
            }
            Owner::Task { wake, done } => {
                // The outcome stays in the cell for the task to take.
                *done = true;
                // The ref's ownership passes to `held` (a JobRef is a plain
                // pointer: nothing to forget).
                s.held = Some(job.as_ptr());
                match std::mem::replace(wake, Wake::None) {
                    Wake::None => {}
                    Wake::Waker(w) => w.wake(),
                    Wake::Local(t) => self.local_wakes.push(t),
                }
            }
            Owner::Abandoned => {
                s.owner = Owner::Queue;
                self.free.push(slot);
                // SAFETY: the worker published the final state before
                // handing the ref back, and the cell is of this loop's slab.
                unsafe { job.discard() };
            }
        }
    }

    /// Collects every in-flight job whose final state is published (`close`,
    /// when results may never be announced).
    pub(crate) fn poll(&mut self) {
        for slot in 0..self.table.len() {
            let Some(cell) = self.table[slot].cell else {
                continue;
            };
            // SAFETY: a slot's cell lives in the loop's slab, which outlives
            // this table; it holds this slot's job until `complete_at`
            // clears the slot.
            let state = unsafe { cell.as_ref() }.state.load(Acquire);
            if state == DONE || state == CANCELLED {
                // SAFETY: the final state is published (Acquire above), so
                // the worker no longer touches the cell, and the slot owns it.
                let job = unsafe { JobRef::from_raw(cell.as_ptr() as usize as u64) };
                self.complete_at(slot as u32, job);
            }
        }
    }
}

impl<R> Sink for Slots<R> {
    fn finished(&mut self, job: JobRef) {
        self.complete(job);
    }

    /// A worker's word that slot `slot` is done (a per-job CQE, a message in
    /// the result pipe). It is not trusted: a CQE can be repeated or forged
    /// through `handle_cqe`, and a late one can name a slot whose job was
    /// collected already (and whose slot may hold a new job). So the job is
    /// completed only if the slot holds one whose final state is published.
    fn slot(&mut self, slot: u32) {
        let cell = self.table.get(slot as usize).and_then(|s| s.cell);
        let Some(cell) = cell else {
            self.ignored += 1;
            return;
        };
        // SAFETY: a slot's cell lives in the loop's slab, which outlives
        // this table; it holds this slot's job until `complete_at` clears
        // the slot.
        let state = unsafe { cell.as_ref() }.state.load(Acquire);
        if state != DONE && state != CANCELLED {
            self.ignored += 1;
            return;
        }
        // SAFETY: the final state is published (Acquire above), so the worker
        // no longer touches the cell, and the slot owns it: ownership comes
        // back here exactly once, as the slot is cleared in `complete_at`.
        let job = unsafe { JobRef::from_raw(cell.as_ptr() as usize as u64) };
        self.complete_at(slot, job);
    }

    fn ignored(&mut self) {
        self.ignored += 1;
    }
}
