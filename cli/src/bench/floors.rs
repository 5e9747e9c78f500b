//! The floors: what the hardware and the kernel cost with nothing on top.
//! One loop thread and one worker thread each (`workers == 1`).

use super::engine::{join_workers, spawn_worker, Engine, EngineCfg, Job};
use super::work::burn;
use crossbeam_utils::CachePadded;
use rustix::thread::futex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

fn require_one_worker(cfg: &EngineCfg, name: &str) -> Result<(), String> {
    if cfg.workers == 1 {
        Ok(())
    } else {
        Err(format!("{name} is a two-thread floor: workers must be 1"))
    }
}

/// The one job in flight of a ping-pong floor. The loop fills it in before
/// it publishes a new request number (a Release store); the worker reads it
/// after it saw that number (an Acquire load), and the loop reads the token
/// back after it saw the reply (Acquire). So plain Relaxed accesses suffice.
struct JobSlot {
    token: AtomicU64,
    iters: AtomicU64,
}

impl JobSlot {
    fn new() -> JobSlot {
        JobSlot {
            token: AtomicU64::new(0),
            iters: AtomicU64::new(0),
        }
    }

    /// Loop side, before publishing the request.
    fn put(&self, job: Job) {
        self.token.store(job.token, Ordering::Relaxed);
        self.iters.store(job.iters, Ordering::Relaxed);
    }

    /// Worker side, after seeing the request: runs the job (its output is
    /// kept from the optimiser, as in the answer's demo).
    fn run(&self) {
        let out = burn(self.iters.load(Ordering::Relaxed)) ^ self.token.load(Ordering::Relaxed);
        std::hint::black_box(out);
    }

    /// Loop side, after seeing the reply: the finished job's token.
    fn token(&self) -> u64 {
        self.token.load(Ordering::Relaxed)
    }
}

/// One cache line shared by the two threads.
#[repr(align(64))]
struct SharedLine {
    /// Request sequence number; `u64::MAX` stops the worker.
    req: AtomicU64,
    /// Reply: the request number the worker finished.
    resp: AtomicU64,
    job: JobSlot,
}

/// Floor: both threads busy-spin on one cache line. One job in flight.
pub struct SpinLine {
    line: Arc<SharedLine>,
    seq: u64,
    thread: Option<JoinHandle<()>>,
}

impl SpinLine {
    /// Starts the spinning worker.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        require_one_worker(cfg, "floor-spin-line")?;
        let line = Arc::new(SharedLine {
            req: AtomicU64::new(0),
            resp: AtomicU64::new(0),
            job: JobSlot::new(),
        });
        let worker_line = line.clone();
        let thread = spawn_worker(cfg, 0, "spin-line-worker".into(), move || {
            let mut seen = 0;
            loop {
                let req = worker_line.req.load(Ordering::Acquire);
                if req == u64::MAX {
                    return;
                }
                if req == seen {
                    std::hint::spin_loop();
                    continue;
                }
                seen = req;
                worker_line.job.run();
                worker_line.resp.store(req, Ordering::Release);
            }
        })?;
        Ok(SpinLine {
            line,
            seq: 0,
            thread: Some(thread),
        })
    }
}

impl Engine for SpinLine {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        self.line.job.put(job);
        self.seq += 1;
        self.line.req.store(self.seq, Ordering::Release);
        Ok(())
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        while self.line.resp.load(Ordering::Acquire) != self.seq {
            std::hint::spin_loop();
        }
        done.push(self.line.job.token());
        Ok(())
    }
}

impl Drop for SpinLine {
    fn drop(&mut self) {
        self.line.req.store(u64::MAX, Ordering::Release);
        join_workers(self.thread.take());
    }
}

/// The shared part of a bounded single-producer single-consumer ring of
/// `u64` pairs, with no `unsafe`: slots are atomics (Relaxed loads and
/// stores, plain moves on x86) written before the Release store of `tail`
/// that publishes them, and read after the Acquire load that saw it.
///
/// `tail` is written by the producer only, `head` by the consumer only; each
/// sits on a cache line of its own, apart from the slots, so the two sides
/// touch a shared index line only when they publish or refresh.
struct SpscRing {
    /// Items published so far (producer).
    tail: CachePadded<AtomicUsize>,
    /// Items consumed so far (consumer).
    head: CachePadded<AtomicUsize>,
    slots: Box<[[AtomicU64; 2]]>,
}

impl SpscRing {
    /// A ring of `cap` (rounded up to a power of two) slots and its two ends.
    fn split(cap: usize) -> (SpscProducer, SpscConsumer) {
        let ring = Arc::new(SpscRing {
            tail: CachePadded::new(AtomicUsize::new(0)),
            head: CachePadded::new(AtomicUsize::new(0)),
            slots: (0..cap.next_power_of_two())
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
        });
        (
            SpscProducer {
                ring: ring.clone(),
                tail: 0,
                published: 0,
                cached_head: 0,
            },
            SpscConsumer {
                ring,
                head: 0,
                cached_tail: 0,
            },
        )
    }

    fn slot(&self, i: usize) -> &[AtomicU64; 2] {
        &self.slots[i & (self.slots.len() - 1)]
    }
}

/// The producer's end: it writes slots ahead of the shared `tail` and
/// publishes them all with one store ([`publish`](Self::publish)); it
/// re-reads the consumer's `head` only when its cached copy says full.
struct SpscProducer {
    ring: Arc<SpscRing>,
    /// Next slot to write (not yet visible to the consumer past `published`).
    tail: usize,
    /// The last value stored to the shared `tail`.
    published: usize,
    /// The consumer's `head` as last read.
    cached_head: usize,
}

impl SpscProducer {
    /// Writes `v` into the next slot, unpublished. `false` if the ring is full.
    fn push(&mut self, v: [u64; 2]) -> bool {
        let cap = self.ring.slots.len();
        if self.tail.wrapping_sub(self.cached_head) == cap {
            self.cached_head = self.ring.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) == cap {
                return false;
            }
        }
        let slot = self.ring.slot(self.tail);
        slot[0].store(v[0], Ordering::Relaxed);
        slot[1].store(v[1], Ordering::Relaxed);
        self.tail = self.tail.wrapping_add(1);
        true
    }

    /// The worker's push: never full while at most [`SPSC_SLOTS`] jobs are
    /// in flight; if it were, publishing lets the loop free slots.
    fn push_spinning(&mut self, v: [u64; 2]) {
        while !self.push(v) {
            self.publish();
            std::hint::spin_loop();
        }
    }

    /// Makes every pushed slot visible to the consumer: one Release store
    /// per batch, none if nothing was pushed since the last one.
    fn publish(&mut self) {
        if self.published != self.tail {
            self.ring.tail.store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
    }
}

/// The consumer's end: it re-reads the producer's `tail` only when its
/// cached copy says empty, takes everything visible at once, and publishes
/// its `head` once per batch.
struct SpscConsumer {
    ring: Arc<SpscRing>,
    /// Next slot to read.
    head: usize,
    /// The producer's `tail` as last read.
    cached_tail: usize,
}

impl SpscConsumer {
    /// Calls `each` on every published item (oldest first), then frees their
    /// slots with one Release store of `head`. Returns how many it took.
    fn drain(&mut self, mut each: impl FnMut([u64; 2])) -> usize {
        if self.head == self.cached_tail {
            self.cached_tail = self.ring.tail.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return 0;
            }
        }
        let n = self.cached_tail.wrapping_sub(self.head);
        for i in 0..n {
            let slot = self.ring.slot(self.head.wrapping_add(i));
            each([
                slot[0].load(Ordering::Relaxed),
                slot[1].load(Ordering::Relaxed),
            ]);
        }
        self.head = self.cached_tail;
        self.ring.head.store(self.head, Ordering::Release);
        n
    }

    /// [`drain`](Self::drain), spinning until at least one item came.
    fn drain_spinning(&mut self, mut each: impl FnMut([u64; 2])) {
        while self.drain(&mut each) == 0 {
            std::hint::spin_loop();
        }
    }
}

/// The busy-spinning worker thread of an SPSC floor: told to stop and
/// joined on drop.
struct SpinningWorker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SpinningWorker {
    /// Starts `body`, which gets the stop flag to poll when it is idle.
    fn spawn(
        cfg: &EngineCfg,
        name: &str,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> Result<SpinningWorker, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = spawn_worker(cfg, 0, name.into(), move || body(flag))?;
        Ok(SpinningWorker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SpinningWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        join_workers(self.thread.take());
    }
}

/// Slots in each direction of the SPSC floor: more than the deepest
/// scenario keeps in flight (256), so neither side ever finds its ring full.
const SPSC_SLOTS: usize = 1024;

/// Floor: a batched SPSC ring each way, both sides busy-spinning (no yield,
/// no sleep, ever; the worker burns its core even when idle).
///
/// The loop's `submit` writes a slot and `wait` publishes every job written
/// since the last `wait` with one store, then spins on the result ring. The
/// worker takes every visible job at once, runs them, writes their results,
/// and publishes the results and frees the job slots with one store each per
/// batch. Each side re-reads the other's index only when its cached copy
/// says the ring is empty (consumer) or full (producer).
pub struct SpscSpin {
    jobs: SpscProducer,
    results: SpscConsumer,
    _worker: SpinningWorker,
}

impl SpscSpin {
    /// Starts the spinning worker.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        require_one_worker(cfg, "floor-spsc")?;
        let (jobs, mut worker_jobs) = SpscRing::split(SPSC_SLOTS);
        let (mut worker_results, results) = SpscRing::split(SPSC_SLOTS);
        let worker = SpinningWorker::spawn(cfg, "spsc-worker", move |stop| loop {
            let took = worker_jobs.drain(|[token, iters]| {
                burn(iters);
                worker_results.push_spinning([token, 0]);
            });
            if took > 0 {
                worker_results.publish();
            } else if stop.load(Ordering::Relaxed) {
                return;
            } else {
                std::hint::spin_loop();
            }
        })?;
        Ok(SpscSpin {
            jobs,
            results,
            _worker: worker,
        })
    }
}

impl Engine for SpscSpin {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        if self.jobs.push([job.token, job.iters]) {
            Ok(())
        } else {
            Err("floor-spsc: queue full".into())
        }
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        self.jobs.publish();
        self.results.drain_spinning(|[token, _]| done.push(token));
        Ok(())
    }
}

/// One job's cell in the cells floor: what a ringpool slab cell carries for a
/// trivial job (a state word, the closure's two words, the result), 128-byte
/// aligned as ringpool's are, so that two cells never share a line.
#[repr(C, align(128))]
struct FloorCell {
    state: AtomicU64,
    token: AtomicU64,
    iters: AtomicU64,
    out: AtomicU64,
}

/// The cell states of [`SpscCells`] (as ringpool's: queued, done, free).
const CELL_QUEUED: u64 = 0;
const CELL_DONE: u64 = 1;
const CELL_FREE: u64 = 3;

/// Asks the CPU to start fetching `cell`'s line (a hint: it reads nothing).
fn prefetch_cell(cell: &FloorCell) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect: it never faults and
    // reads nothing into the program; SSE, which provides it, is part of the
    // x86_64 baseline. The pointer comes from a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((cell as *const FloorCell).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cell;
}

/// Floor: ringpool's data movement with nothing on top. The batched SPSC
/// rings of [`SpscSpin`] carry cell indices instead of the jobs; each job
/// travels in a 128-byte cell, as in ringpool's slab: the loop writes the
/// job into a free cell (most recently freed first), the worker reads it,
/// runs it, writes the result and a `Release` state, and the loop reads the
/// result back (state with `Acquire`) and frees the cell. Both sides
/// prefetch a batch's cells first, as ringpool does. Against `floor-spsc`
/// it prices the cells' cache-line transfers; against `spin` everything
/// else ringpool does per job.
pub struct SpscCells {
    jobs: SpscProducer,
    results: SpscConsumer,
    cells: Arc<[FloorCell]>,
    /// Free cell indices; the top is the one freed last.
    free: Vec<usize>,
    /// The indices of the last drained results (reused).
    back: Vec<usize>,
    _worker: SpinningWorker,
}

impl SpscCells {
    /// Starts the spinning worker.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        require_one_worker(cfg, "floor-cells")?;
        let (jobs, mut worker_jobs) = SpscRing::split(SPSC_SLOTS);
        let (mut worker_results, results) = SpscRing::split(SPSC_SLOTS);
        let cells: Arc<[FloorCell]> = (0..SPSC_SLOTS)
            .map(|_| FloorCell {
                state: AtomicU64::new(CELL_FREE),
                token: AtomicU64::new(0),
                iters: AtomicU64::new(0),
                out: AtomicU64::new(0),
            })
            .collect();
        let worker_cells = cells.clone();
        let worker = SpinningWorker::spawn(cfg, "cells-worker", move |stop| {
            let mut batch = Vec::with_capacity(SPSC_SLOTS);
            loop {
                batch.clear();
                let took = worker_jobs.drain(|[i, _]| batch.push(i as usize));
                if took == 0 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::hint::spin_loop();
                    continue;
                }
                for &i in &batch {
                    prefetch_cell(&worker_cells[i]);
                }
                for &i in &batch {
                    let cell = &worker_cells[i];
                    let token = cell.token.load(Ordering::Relaxed);
                    burn(cell.iters.load(Ordering::Relaxed));
                    cell.out.store(token, Ordering::Relaxed);
                    cell.state.store(CELL_DONE, Ordering::Release);
                    worker_results.push_spinning([i as u64, 0]);
                }
                worker_results.publish();
            }
        })?;
        Ok(SpscCells {
            jobs,
            results,
            cells,
            free: (0..SPSC_SLOTS).rev().collect(),
            back: Vec::with_capacity(SPSC_SLOTS),
            _worker: worker,
        })
    }
}

impl Engine for SpscCells {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        let Some(i) = self.free.pop() else {
            return Err("floor-cells: every cell in flight".into());
        };
        let cell = &self.cells[i];
        cell.token.store(job.token, Ordering::Relaxed);
        cell.iters.store(job.iters, Ordering::Relaxed);
        cell.state.store(CELL_QUEUED, Ordering::Relaxed);
        // The ring's Release publish carries these stores to the worker.
        if self.jobs.push([i as u64, 0]) {
            Ok(())
        } else {
            self.free.push(i);
            Err("floor-cells: queue full".into())
        }
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        self.jobs.publish();
        let back = &mut self.back;
        back.clear();
        self.results.drain_spinning(|[i, _]| back.push(i as usize));
        for &i in back.iter() {
            prefetch_cell(&self.cells[i]);
        }
        for &i in back.iter() {
            let cell = &self.cells[i];
            let state = cell.state.load(Ordering::Acquire);
            debug_assert_eq!(state, CELL_DONE);
            done.push(cell.out.load(Ordering::Relaxed));
            cell.state.store(CELL_FREE, Ordering::Relaxed);
            self.free.push(i);
        }
        Ok(())
    }
}

/// Stores `v` into `word`, then always wakes one waiter (the floor does not
/// track whether anyone sleeps: it pays the wake every time).
fn post(word: &AtomicU32, v: u32) {
    word.store(v, Ordering::Release);
    // A wake can fail only for a bad address, which a reference is not.
    let _ = futex::wake(word, futex::Flags::PRIVATE, 1);
}

/// Sleeps until `word` is no longer `old`; returns the new value.
fn wait_change(word: &AtomicU32, old: u32) -> u32 {
    loop {
        let v = word.load(Ordering::Acquire);
        if v != old {
            return v;
        }
        // EAGAIN (the word already changed) and EINTR just loop.
        let _ = futex::wait(word, futex::Flags::PRIVATE, old, None);
    }
}

/// What the futex floor's two threads share, the two futex words on cache
/// lines of their own.
struct FutexWords {
    /// Request sequence number; the worker sleeps on it.
    req: CachePadded<AtomicU32>,
    /// Reply: the request number the worker finished; the loop sleeps on it.
    resp: CachePadded<AtomicU32>,
    job: JobSlot,
    /// Set before the last request: the worker returns instead of running it.
    stop: AtomicBool,
}

/// Floor: raw futex(2) ping-pong, both sides sleep (one job in flight).
pub struct FutexPingPong {
    words: Arc<FutexWords>,
    seq: u32,
    thread: Option<JoinHandle<()>>,
}

impl FutexPingPong {
    /// Starts the sleeping worker.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        require_one_worker(cfg, "floor-futex")?;
        let words = Arc::new(FutexWords {
            req: CachePadded::new(AtomicU32::new(0)),
            resp: CachePadded::new(AtomicU32::new(0)),
            job: JobSlot::new(),
            stop: AtomicBool::new(false),
        });
        let worker_words = words.clone();
        let thread = spawn_worker(cfg, 0, "futex-worker".into(), move || {
            let mut seen = 0;
            loop {
                seen = wait_change(&worker_words.req, seen);
                if worker_words.stop.load(Ordering::Acquire) {
                    return;
                }
                worker_words.job.run();
                post(&worker_words.resp, seen);
            }
        })?;
        Ok(FutexPingPong {
            words,
            seq: 0,
            thread: Some(thread),
        })
    }
}

impl Engine for FutexPingPong {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        self.words.job.put(job);
        self.seq = self.seq.wrapping_add(1).max(1);
        post(&self.words.req, self.seq);
        Ok(())
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        let mut v = self.words.resp.load(Ordering::Acquire);
        while v != self.seq {
            v = wait_change(&self.words.resp, v);
        }
        done.push(self.words.job.token());
        Ok(())
    }
}

impl Drop for FutexPingPong {
    fn drop(&mut self) {
        self.words.stop.store(true, Ordering::Release);
        post(&self.words.req, self.seq.wrapping_add(2).max(1));
        join_workers(self.thread.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::engine::LoopRing;

    /// Every job comes back exactly once, in batches and across wrap-around
    /// of both rings, with up to 256 in flight.
    #[test]
    fn spsc_floor_returns_every_token_once() {
        let cfg = EngineCfg {
            workers: 1,
            worker_cpus: vec![],
            loop_ring: LoopRing::Plain,
        };
        every_token_once(&mut SpscSpin::new(&cfg).unwrap());
    }

    /// The same for the cells floor.
    #[test]
    fn cells_floor_returns_every_token_once() {
        let cfg = EngineCfg {
            workers: 1,
            worker_cpus: vec![],
            loop_ring: LoopRing::Plain,
        };
        every_token_once(&mut SpscCells::new(&cfg).unwrap());
    }

    fn every_token_once(engine: &mut dyn Engine) {
        const JOBS: u64 = 200_000;
        let mut seen = vec![false; JOBS as usize];
        let (mut next, mut in_flight) = (0u64, 0usize);
        let mut done = Vec::new();
        while next < JOBS || in_flight > 0 {
            while next < JOBS && in_flight < 256 {
                engine
                    .submit(Job {
                        token: next,
                        iters: next % 3,
                    })
                    .unwrap();
                next += 1;
                in_flight += 1;
            }
            done.clear();
            engine.wait(&mut done).unwrap();
            for &t in &done {
                assert!(
                    !std::mem::replace(&mut seen[t as usize], true),
                    "token {t} twice"
                );
            }
            in_flight -= done.len();
        }
        assert!(seen.iter().all(|&s| s));
    }
}
