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
    /// The job's cell. The loop owns its memory but does not touch it while
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
    /// The loop is closing: pointers read back from the kernel may name jobs
    /// already collected by polling, so they are matched, not dereferenced.
    pub(crate) closing: bool,
}

impl<R> Slots<R> {
    pub(crate) fn new(capacity: usize) -> Slots<R> {
        Slots {
            table: (0..capacity).map(|_| Slot { cell: None, id: 0 }).collect(),
            free: (0..capacity as u32).rev().collect(),
            ready: VecDeque::new(),
            next_id: 0,
            completed: 0,
            closing: false,
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
        self.table[slot as usize].cell = Some(NonNull::from(job.header()));
    }

    /// A job handed back by a worker; its header names its slot.
    pub(crate) fn complete(&mut self, job: JobRef) {
        let slot = job.header().slot;
        self.complete_at(slot, job);
    }

    fn complete_at(&mut self, slot: u32, job: JobRef) {
        let s = &mut self.table[slot as usize];
        debug_assert_eq!(s.cell, Some(NonNull::from(job.header())));
        s.cell = None;
        let id = JobId::new(s.id);
        self.free.push(slot);
        let mut out = None;
        // SAFETY: the worker published the final state before handing the
        // ref back (queue push, pipe write or message), and this loop created
        // the cell with result type `R`.
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
            // SAFETY: a slot's cell is live until this table frees it, which
            // only `complete_at` does, clearing the slot.
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

    /// `Announce::PerJob`: the CQE named `slot`.
    fn slot(&mut self, slot: u32) {
        let Some(s) = self.table.get(slot as usize) else {
            return;
        };
        // A message for an empty slot is a late duplicate of a job that
        // `close` already collected by polling: ignore it.
        let Some(cell) = s.cell else { return };
        // SAFETY: the pointer came from this slot, whose cell is live; the
        // message is sent only after the worker published its final state.
        let job = unsafe { JobRef::from_raw(cell.as_ptr() as usize as u64) };
        self.complete_at(slot, job);
    }

    /// A pointer read from the result pipe: completes its job if a slot
    /// still holds it.
    fn pointer(&mut self, raw: u64) {
        if !self.closing {
            // SAFETY: outside `close`, every pointer read from the result
            // pipe is a live in-flight cell of this loop, written once by the
            // worker that published its final state.
            self.complete(unsafe { JobRef::from_raw(raw) });
            return;
        }
        // Pointers may arrive for jobs already collected by polling: match
        // them against the table without dereferencing.
        let held = self
            .table
            .iter()
            .position(|s| s.cell.map(|p| p.as_ptr() as usize as u64) == Some(raw));
        if let Some(slot) = held {
            // SAFETY: the slot holds this live cell, whose worker published
            // its final state before writing the pointer.
            self.complete_at(slot as u32, unsafe { JobRef::from_raw(raw) });
        }
    }
}
