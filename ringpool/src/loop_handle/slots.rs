//! The in-flight table: which slot holds which job, the free list, and the
//! completions ready for the user.

use super::completions::{Completion, JobId};
use crate::handoff::dispatch::Sink;
use crate::pool::job::{Header, JobRef, CANCELLED, DONE};
use crate::sync::Ordering::Acquire;
use std::collections::VecDeque;
use std::ptr::NonNull;

/// One in-flight job: where its cell is, and its id.
struct Slot {
    /// The job's cell (in the loop's slab). The loop does not touch it while
    /// the job is in flight, except to read `state` (with `Acquire`).
    cell: Option<NonNull<Header>>,
    id: u64,
}

pub(crate) struct Slots<R> {
    table: Vec<Slot>,
    free: Vec<u32>,
    ready: VecDeque<Completion<R>>,
    next_id: u64,
    /// Completions produced so far.
    pub(crate) completed: u64,
    /// Announcements that named no job of this table in a final state.
    pub(crate) ignored: u64,
}

impl<R> Slots<R> {
    pub(crate) fn new(capacity: usize) -> Slots<R> {
        Slots {
            table: (0..capacity).map(|_| Slot { cell: None, id: 0 }).collect(),
            free: (0..capacity as u32).rev().collect(),
            ready: VecDeque::new(),
            next_id: 0,
            completed: 0,
            ignored: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.table.len() - self.free.len()
    }

    pub(crate) fn ready(&self) -> usize {
        self.ready.len()
    }

    pub(crate) fn pop_ready(&mut self) -> Option<Completion<R>> {
        self.ready.pop_front()
    }

    pub(crate) fn take_ready(&mut self) -> Vec<Completion<R>> {
        self.ready.drain(..).collect()
    }

    /// Takes a free slot for a new job, or `None` if every slot is in flight.
    pub(crate) fn reserve(&mut self) -> Option<(u32, JobId)> {
        let slot = self.free.pop()?;
        let id = self.next_id;
        self.next_id += 1;
        self.table[slot as usize].id = id;
        Some((slot, JobId::new(id)))
    }

    /// Records the cell of the job just created for `slot`.
    pub(crate) fn occupy(&mut self, slot: u32, job: &JobRef) {
        self.table[slot as usize].cell = Some(job.as_ptr());
    }

    /// A job handed back by a worker; its header names its slot.
    pub(crate) fn complete(&mut self, job: JobRef) {
        let slot = job.header().slot;
        self.complete_at(slot, job);
    }

    fn complete_at(&mut self, slot: u32, job: JobRef) {
        let s = &mut self.table[slot as usize];
        debug_assert_eq!(s.cell, Some(job.as_ptr()));
        s.cell = None;
        let id = JobId::new(s.id);
        self.free.push(slot);
        let mut out = None;
        // SAFETY: the worker published the final state before handing the
        // ref back (queue push, pipe write or message), this loop filled the
        // cell with result type `R`, and the cell is of this loop's slab.
        unsafe { job.finish::<R>(&mut out) };
        let result = out.expect("finish writes the outcome");
        self.completed += 1;
        self.ready.push_back(Completion { id, result });
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
