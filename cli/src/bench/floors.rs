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

/// A bounded single-producer single-consumer queue of `u64` pairs, with no
/// `unsafe`: slots are atomics written before the release of `tail`.
struct Spsc {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[[AtomicU64; 2]]>,
}

impl Spsc {
    fn new(cap: usize) -> Spsc {
        Spsc {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: (0..cap.next_power_of_two())
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
        }
    }

    /// Producer only. `false` if full.
    fn push(&self, v: [u64; 2]) -> bool {
        let t = self.tail.load(Ordering::Relaxed);
        if t.wrapping_sub(self.head.load(Ordering::Acquire)) == self.slots.len() {
            return false;
        }
        let slot = &self.slots[t & (self.slots.len() - 1)];
        slot[0].store(v[0], Ordering::Relaxed);
        slot[1].store(v[1], Ordering::Relaxed);
        self.tail.store(t.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer only.
    fn pop(&self) -> Option<[u64; 2]> {
        let h = self.head.load(Ordering::Relaxed);
        if h == self.tail.load(Ordering::Acquire) {
            return None;
        }
        let slot = &self.slots[h & (self.slots.len() - 1)];
        let v = [
            slot[0].load(Ordering::Relaxed),
            slot[1].load(Ordering::Relaxed),
        ];
        self.head.store(h.wrapping_add(1), Ordering::Release);
        Some(v)
    }
}

/// Floor: a raw SPSC queue each way; the worker and the waiting loop
/// busy-spin (no yield, no sleep, ever).
pub struct SpscSpin {
    jobs: Arc<Spsc>,
    results: Arc<Spsc>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SpscSpin {
    /// Starts the spinning worker.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        require_one_worker(cfg, "floor-spsc")?;
        let jobs = Arc::new(Spsc::new(1024));
        let results = Arc::new(Spsc::new(1024));
        let stop = Arc::new(AtomicBool::new(false));
        let (worker_jobs, worker_results, worker_stop) =
            (jobs.clone(), results.clone(), stop.clone());
        let thread = spawn_worker(cfg, 0, "spsc-worker".into(), move || {
            while !worker_stop.load(Ordering::Relaxed) {
                match worker_jobs.pop() {
                    Some([token, iters]) => {
                        burn(iters);
                        while !worker_results.push([token, 0]) {
                            std::hint::spin_loop();
                        }
                    }
                    None => std::hint::spin_loop(),
                }
            }
        })?;
        Ok(SpscSpin {
            jobs,
            results,
            stop,
            thread: Some(thread),
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
        let start = done.len();
        loop {
            while let Some([token, _]) = self.results.pop() {
                done.push(token);
            }
            if done.len() > start {
                return Ok(());
            }
            std::hint::spin_loop();
        }
    }
}

impl Drop for SpscSpin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        join_workers(self.thread.take());
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
