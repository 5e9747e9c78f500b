//! loom models of ringpool's user-space sleep/wake protocols, run on the
//! real code (`src/protocol/park.rs`, `src/protocol/doorbell.rs`) compiled against
//! loom's atomics through the `cfg(loom)` shim in `src/sync.rs`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test --release -p ringpool --test loom
//! ```
//!
//! (`bash ci/loom.sh` does this.) The kernel's part of each hand-off is
//! modelled as a synchronisation edge: a futex is a loom `Mutex` + `Condvar`
//! whose waiter checks the word under the lock (as the kernel checks it under
//! the hash-bucket lock), and a MSG_RING/eventfd CQE is a counter under a
//! `Mutex` with a `Condvar`. A lost wakeup leaves a thread blocked for ever,
//! which loom reports as a deadlock; a result read before it was published
//! is a causality violation on a loom `UnsafeCell`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize};
use loom::sync::{Arc, Condvar, Mutex, Notify};
use loom::thread;
use ringpool::__loom::{next_job, Doorbell, Lane, Prepared, Queue, ResultRing, Sleepers};
use ringpool::__loom::{AWAKE, SLEEPING};
use std::sync::atomic::Ordering::{Acquire, Release, SeqCst};

/// Explores every interleaving (within `LOOM_MAX_PREEMPTIONS`) of `f`.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// [`model`] for models whose threads spin (`yield_now`) while they wait
/// for each other, which makes each interleaving's path long.
fn model_spinning(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.max_branches = 100_000;
    b.check(f);
}

// ---------------------------------------------------------------------------
// Kernel stand-ins
// ---------------------------------------------------------------------------

/// futex(2) on a word: `wait` sleeps only if the word still holds `expected`
/// when checked under the lock; `wake` takes the lock, so a wake either finds
/// the waiter queued or happens before its check. No spurious wakeups (the
/// protocol would tolerate them; leaving them out keeps the model small).
struct Futex {
    m: Mutex<()>,
    cv: Condvar,
}

impl Futex {
    fn new() -> Futex {
        Futex {
            m: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    fn wait(&self, word: &AtomicU32, expected: u32) {
        let g = self.m.lock().unwrap();
        if word.load(SeqCst) == expected {
            drop(self.cv.wait(g).unwrap());
        }
    }

    fn wake(&self) {
        let _g = self.m.lock().unwrap();
        self.cv.notify_all();
    }
}

/// A ring's completion queue: `post` adds a CQE (MSG_RING, an eventfd poll
/// firing), `wait` blocks until at least one is there and consumes them all
/// (the waiter reaps everything it finds). Unlike a futex wake, a CQE posted
/// to nobody stays there: a stale wake returns the next wait at once.
struct Cq {
    pending: Mutex<usize>,
    cv: Condvar,
}

impl Cq {
    fn new() -> Cq {
        Cq {
            pending: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    fn post(&self) {
        *self.pending.lock().unwrap() += 1;
        self.cv.notify_all();
    }

    /// Waits for a CQE; returns how many were reaped.
    fn wait(&self) -> usize {
        let mut g = self.pending.lock().unwrap();
        while *g == 0 {
            g = self.cv.wait(g).unwrap();
        }
        std::mem::take(&mut *g)
    }
}

/// How a sleeping worker is woken.
#[derive(Copy, Clone, Debug)]
enum WorkerKernel {
    /// futex(2) on the worker's state word (futex, msg-ring-sync, eventfd).
    Futex,
    /// A MSG_RING into the worker's own ring (msg-ring).
    Ring,
}

// ---------------------------------------------------------------------------
// park.rs: the worker's Dekker handshake
// ---------------------------------------------------------------------------

/// The pool side of the park model: a job queue (a counter, with the
/// `SeqCst` emptiness check of the real queue's lanes, each a
/// `rings::Lane`; [`Lanes`] models the table of real lanes), per-worker
/// state words, the sleeper count, the exit flag and the wake channels.
struct Pool {
    jobs: AtomicUsize,
    ran: AtomicUsize,
    exit: AtomicBool,
    exited: AtomicUsize,
    states: Vec<AtomicU32>,
    sleepers: Sleepers,
    kernel: WorkerKernel,
    futexes: Vec<Futex>,
    rings: Vec<Cq>,
}

impl Pool {
    fn new(workers: usize, kernel: WorkerKernel) -> Pool {
        Pool {
            jobs: AtomicUsize::new(0),
            ran: AtomicUsize::new(0),
            exit: AtomicBool::new(false),
            exited: AtomicUsize::new(0),
            states: (0..workers).map(|_| AtomicU32::new(AWAKE)).collect(),
            sleepers: Sleepers::new(),
            kernel,
            futexes: (0..workers).map(|_| Futex::new()).collect(),
            rings: (0..workers).map(|_| Cq::new()).collect(),
        }
    }

    /// The queue's emptiness check, as the worker's re-check after
    /// announcing its sleep reads it (a `SeqCst` load in the real queue).
    ///
    /// The `fence(SeqCst)` stands in for C++'s single total order of
    /// `SeqCst` operations, which orders the worker's `SeqCst` RMW on the
    /// sleeper count before this `SeqCst` load. loom does not model that
    /// order (it treats `SeqCst` accesses as `AcqRel` and lets a `SeqCst`
    /// load read an atomic's non-`SeqCst` initial value after a newer
    /// `SeqCst` store; loom README, "Unsupported features", issue #180), so
    /// without the fence loom reports a lost wakeup that the C++ model and
    /// the hardware (a locked RMW is a full barrier on x86) rule out. It
    /// supports `fence(SeqCst)` exactly, and a fence between two `SeqCst`
    /// operations of one thread adds no ordering they do not already have.
    fn has_job(&self) -> bool {
        fence(SeqCst);
        self.jobs.load(SeqCst) > 0
    }

    fn try_pop(&self) -> bool {
        loop {
            let n = self.jobs.load(SeqCst);
            if n == 0 {
                return false;
            }
            if self.jobs.compare_exchange(n, n - 1, SeqCst, SeqCst).is_ok() {
                return true;
            }
        }
    }

    /// The loop: push `n` jobs, then claim and wake up to `n` sleepers (what
    /// `LoopHandle::try_submit` + `flush` do).
    fn submit(&self, n: usize) {
        self.jobs.fetch_add(n, SeqCst);
        self.sleepers
            .claim(self.states.iter(), n, |i| self.deliver_wake(i));
    }

    /// Shutdown as `PoolOwner::stop` does it: set `exit`, then wake every
    /// sleeper, round after round, until every worker has exited.
    fn stop(&self) {
        self.exit.store(true, SeqCst);
        while self.exited.load(SeqCst) < self.states.len() {
            self.stop_round();
            thread::yield_now();
        }
    }

    /// One round of [`Pool::stop`].
    fn stop_round(&self) {
        self.sleepers
            .claim(self.states.iter(), usize::MAX, |i| self.deliver_wake(i));
    }

    fn deliver_wake(&self, i: usize) {
        match self.kernel {
            WorkerKernel::Futex => self.futexes[i].wake(),
            WorkerKernel::Ring => self.rings[i].post(),
        }
    }

    /// The worker's main loop: the real one (`park::next_job`, which every
    /// parking backend runs), without spinning, on this model's queue and
    /// kernel stand-ins.
    fn worker(&self, idx: usize) {
        let me = &self.states[idx];
        let block = || match self.kernel {
            WorkerKernel::Futex => self.futexes[idx].wait(me, SLEEPING),
            WorkerKernel::Ring => {
                self.rings[idx].wait();
            }
        };
        while next_job(self, &self.sleepers, me, &self.exit, || false, block, || {}).is_some() {
            self.ran.fetch_add(1, SeqCst);
        }
        self.exited.fetch_add(1, SeqCst);
    }
}

/// The model's job queue: a counter, with the `SeqCst` emptiness check
/// a lane of the real queue (`rings::Lane::is_empty`) uses.
impl Queue for Pool {
    type Job = ();

    fn pop(&self) -> Option<()> {
        self.try_pop().then_some(())
    }

    fn is_empty(&self) -> bool {
        !self.has_job()
    }
}

/// One worker, two jobs submitted one after the other, then shutdown: every
/// job runs and the worker exits (no lost wakeup, including after a stale
/// wake from an aborted sleep).
fn park_one_worker(kernel: WorkerKernel) {
    model(move || {
        let pool = Arc::new(Pool::new(1, kernel));
        let w = {
            let pool = pool.clone();
            thread::spawn(move || pool.worker(0))
        };
        pool.submit(1);
        pool.submit(1);
        pool.stop();
        w.join().unwrap();
        assert_eq!(pool.ran.load(SeqCst), 2);
        assert_eq!(pool.sleepers.count(), 0);
    });
}

#[test]
fn park_one_worker_futex() {
    park_one_worker(WorkerKernel::Futex);
}

#[test]
fn park_one_worker_ring() {
    park_one_worker(WorkerKernel::Ring);
}

/// Two workers, one batch of two jobs with one claim round, then shutdown.
fn park_two_workers(kernel: WorkerKernel) {
    model(move || {
        let pool = Arc::new(Pool::new(2, kernel));
        let ws: Vec<_> = (0..2)
            .map(|i| {
                let pool = pool.clone();
                thread::spawn(move || pool.worker(i))
            })
            .collect();
        pool.submit(2);
        pool.stop();
        for w in ws {
            w.join().unwrap();
        }
        assert_eq!(pool.ran.load(SeqCst), 2);
    });
}

#[test]
fn park_two_workers_futex() {
    park_two_workers(WorkerKernel::Futex);
}

#[test]
fn park_two_workers_ring() {
    park_two_workers(WorkerKernel::Ring);
}

/// A stop that makes a single wake round must wake every sleeper: the
/// sleeper count never under-counts claimable workers, because `prepare`
/// counts itself before it stores `SLEEPING`.
#[test]
fn park_single_stop_round_wakes_everyone() {
    model(|| {
        let pool = Arc::new(Pool::new(2, WorkerKernel::Futex));
        let ws: Vec<_> = (0..2)
            .map(|i| {
                let pool = pool.clone();
                thread::spawn(move || pool.worker(i))
            })
            .collect();
        pool.submit(2);
        pool.exit.store(true, SeqCst);
        pool.stop_round();
        for w in ws {
            w.join().unwrap();
        }
    });
}

/// The Dekker core in isolation: a worker that checks once and sleeps, and
/// a loop that pushes one job and claims once. Whatever the interleaving,
/// either the worker aborts its sleep (it saw the job) or the loop claims
/// it (it saw the sleeper): never neither.
#[test]
fn park_either_sees_the_other() {
    model(|| {
        let pool = Arc::new(Pool::new(1, WorkerKernel::Futex));
        let claimed = Arc::new(AtomicBool::new(false));
        let w = {
            let pool = pool.clone();
            thread::spawn(move || {
                let me = &pool.states[0];
                pool.sleepers
                    .prepare(me, || pool.has_job() || pool.exit.load(SeqCst))
            })
        };
        pool.jobs.fetch_add(1, SeqCst);
        let n = pool.sleepers.claim(pool.states.iter(), 1, |_| {
            claimed.store(true, SeqCst);
        });
        let prepared = w.join().unwrap();
        let saw_job = matches!(prepared, Prepared::Abort { .. });
        assert!(
            saw_job || n == 1,
            "lost wakeup: the worker sleeps and the loop claimed nobody; state {} count {} jobs {}",
            pool.states[0].load(SeqCst),
            pool.sleepers.count(),
            pool.jobs.load(SeqCst)
        );
        assert_eq!(claimed.load(SeqCst), n == 1);
    });
}

/// Co-located wakes (`Sleepers::claim_skipping`, as `LoopHandle::send_work`
/// uses it): the loop passes over a sleeper that shares its CPU while it
/// sees another worker spinning. That worker ends its spin (its last look
/// at the queue, then the flag cleared) and parks with the usual re-check.
/// Whatever the interleaving, the spinner sees the job or a worker is
/// claimed. (Skipping every sleeper instead loses the job: checked by
/// mutation.)
#[test]
fn skipping_a_colocated_sleeper_loses_no_job() {
    model(|| {
        let pool = Arc::new(Pool::new(2, WorkerKernel::Futex));
        let spinning = Arc::new(AtomicBool::new(true));
        // Worker 1, the co-located one, is asleep already.
        assert!(matches!(
            pool.sleepers.prepare(&pool.states[1], || false),
            Prepared::Sleep
        ));
        let w = {
            let (pool, spinning) = (pool.clone(), spinning.clone());
            thread::spawn(move || {
                if pool.has_job() {
                    return true; // the spin saw it
                }
                spinning.store(false, SeqCst);
                let me = &pool.states[0];
                matches!(
                    pool.sleepers
                        .prepare(me, || pool.has_job() || pool.exit.load(SeqCst)),
                    Prepared::Abort { .. }
                )
            })
        };
        pool.jobs.fetch_add(1, SeqCst);
        let n = pool.sleepers.claim_skipping(
            pool.states.iter(),
            1,
            |i| i == 1 && spinning.load(SeqCst),
            |_| {},
        );
        let saw = w.join().unwrap();
        assert!(
            saw || n == 1,
            "lost job: the spinner sleeps without it and nobody was claimed"
        );
    });
}

/// The job queue as `handoff::common::JobQueue` builds it: one lane per
/// loop, in a table the workers scan up to `len`. Lane 0 exists (another
/// loop's); a new loop publishes lane 1 (`len = 2`, SeqCst, at `register`)
/// and only then pushes on it and publishes its batch (the real
/// `rings::Lane`, whose publish is a `Release` store). No `fence` is added here: the real queue's
/// re-check has none of its own, and relies on the fences of `prepare` and
/// `claim` (whichever comes first in their total order, the worker's loads
/// after its fence see the loop's stores before its fence, or the loop's
/// count read sees the worker's increment).
struct Lanes {
    len: AtomicUsize,
    lanes: [Lane; 2],
    ran: AtomicUsize,
    exit: AtomicBool,
    exited: AtomicUsize,
    states: Vec<AtomicU32>,
    sleepers: Sleepers,
    futexes: Vec<Futex>,
}

impl Queue for Lanes {
    type Job = ();

    fn pop(&self) -> Option<()> {
        let n = self.len.load(SeqCst);
        self.lanes[..n]
            .iter()
            .any(|lane| lane.claim(32, 1, |_| {}) > 0)
            .then_some(())
    }

    fn is_empty(&self) -> bool {
        let n = self.len.load(SeqCst);
        self.lanes[..n].iter().all(|l| l.is_empty())
    }
}

impl Lanes {
    fn worker(&self, idx: usize) {
        let me = &self.states[idx];
        let block = || self.futexes[idx].wait(me, SLEEPING);
        while next_job(self, &self.sleepers, me, &self.exit, || false, block, || {}).is_some() {
            self.ran.fetch_add(1, SeqCst);
        }
        self.exited.fetch_add(1, SeqCst);
    }

    fn stop(&self) {
        self.exit.store(true, SeqCst);
        while self.exited.load(SeqCst) < self.states.len() {
            self.sleepers
                .claim(self.states.iter(), usize::MAX, |i| self.futexes[i].wake());
            thread::yield_now();
        }
    }
}

/// A worker parks while a new loop registers its lane and pushes a job on
/// it: the worker's re-check sees the new lane's job, or the loop sees the
/// sleeper and wakes it. Either way the job runs and the worker exits.
#[test]
fn park_sees_a_new_lane() {
    model(|| {
        let pool = Arc::new(Lanes {
            len: AtomicUsize::new(1),
            lanes: [Lane::new(1), Lane::new(1)],
            ran: AtomicUsize::new(0),
            exit: AtomicBool::new(false),
            exited: AtomicUsize::new(0),
            states: vec![AtomicU32::new(AWAKE)],
            sleepers: Sleepers::new(),
            futexes: vec![Futex::new()],
        });
        let w = {
            let pool = pool.clone();
            thread::spawn(move || pool.worker(0))
        };
        // register: publish the lane; try_submit: push on it; flush:
        // publish the lane's batch (a Release store), then claim.
        pool.len.store(2, SeqCst);
        pool.lanes[1].push(1);
        pool.lanes[1].publish();
        pool.sleepers
            .claim(pool.states.iter(), 1, |i| pool.futexes[i].wake());
        pool.stop();
        w.join().unwrap();
        assert_eq!(pool.ran.load(SeqCst), 1);
    });
}

// ---------------------------------------------------------------------------
// doorbell.rs: workers announcing results to the loop
// ---------------------------------------------------------------------------

/// The loop side of the doorbell model: per-worker result slots (payload in
/// an `UnsafeCell`, published with a release store as the result queue does,
/// taken with an acquire load), the doorbell, and the loop's CQ or futex.
struct Loop {
    payload: Vec<UnsafeCell<u32>>,
    ready: Vec<AtomicBool>,
    doorbell: Doorbell,
    /// MSG_RING / eventfd: doorbell CQEs on the loop's ring.
    cq: Cq,
    /// futex backend: the loop's FUTEX_WAIT on the doorbell word.
    futex: Futex,
    /// Announcements sent (at most one outstanding).
    rung: AtomicUsize,
}

/// How the announcement reaches the loop.
#[derive(Copy, Clone, Debug)]
enum LoopKernel {
    /// A CQE posted on the loop's ring (msg-ring, msg-ring-sync, eventfd).
    Cqe,
    /// futex(2) wake of the loop's `IORING_OP_FUTEX_WAIT` on the word.
    Futex,
}

impl Loop {
    fn new(workers: usize) -> Loop {
        Loop {
            payload: (0..workers).map(|_| UnsafeCell::new(0)).collect(),
            ready: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            doorbell: Doorbell::new(),
            cq: Cq::new(),
            futex: Futex::new(),
            rung: AtomicUsize::new(0),
        }
    }

    /// A worker delivering its result (`worker::deliver`): write, publish,
    /// then announce only if the doorbell was down.
    fn deliver(&self, idx: usize, value: u32, kernel: LoopKernel) {
        self.payload[idx].with_mut(|p| {
            // SAFETY: only worker `idx` writes its slot, once, before
            // publishing `ready`; loom checks that no read races with it.
            unsafe { *p = value }
        });
        self.ready[idx].store(true, Release);
        if self.doorbell.should_ring() {
            self.rung.fetch_add(1, SeqCst);
            match kernel {
                LoopKernel::Cqe => self.cq.post(),
                LoopKernel::Futex => self.futex.wake(),
            }
        }
    }

    /// Takes every published result; returns their sum and count.
    fn drain(&self, taken: &mut [bool]) -> (u32, usize) {
        let (mut sum, mut n) = (0, 0);
        for (i, t) in taken.iter_mut().enumerate() {
            if !*t && self.ready[i].load(Acquire) {
                sum += self.payload[i].with(|p| {
                    // SAFETY: `ready` was published (release) after the
                    // write and read here with acquire; loom checks it.
                    unsafe { *p }
                });
                *t = true;
                n += 1;
            }
        }
        (sum, n)
    }

    fn any_ready(&self, taken: &[bool]) -> bool {
        taken
            .iter()
            .enumerate()
            .any(|(i, t)| !*t && self.ready[i].load(Acquire))
    }

    /// The loop collecting `n` results (`submit_and_wait` + `handle_cqe` +
    /// `drain_results`). With `spin`, it first holds the doorbell while it
    /// looks (suppressing announcements), releases it, and sleeps only if
    /// nothing is there.
    fn collect(&self, n: usize, kernel: LoopKernel, spin: bool) -> u32 {
        let mut taken = vec![false; n];
        let (mut sum, mut got) = (0, 0);
        loop {
            let (s, k) = self.drain(&mut taken);
            sum += s;
            got += k;
            if got == n {
                return sum;
            }
            if spin {
                if self.doorbell.claim() {
                    // One look while holding the doorbell stands for the spin.
                    let _ = self.any_ready(&taken);
                    self.doorbell.release();
                }
                if self.any_ready(&taken) {
                    continue; // `has_results`: return without sleeping
                }
            }
            match kernel {
                LoopKernel::Cqe => {
                    self.cq.wait();
                }
                // Arming FUTEX_WAIT with expected 0: returns at once
                // (-EAGAIN) if the word is already 1.
                LoopKernel::Futex => self.futex.wait(self.doorbell.word(), 0),
            }
            self.doorbell.ack();
        }
    }
}

impl Loop {
    /// [`Loop::collect`] the way the loop waits since it keeps the doorbell
    /// across a hit (`LoopHandle::wait_core`): a spin that finds results
    /// keeps holding it while the loop works through them and comes back;
    /// only a miss gives it back, drains what was pushed unannounced, and
    /// sleeps if that found nothing. `flush` and `close` give it back the
    /// same way (release, then drain) before a wait of the caller's.
    fn collect_holding(&self, n: usize, kernel: LoopKernel) -> u32 {
        let mut taken = vec![false; n];
        let (mut sum, mut got) = (0, 0);
        let mut holding = false;
        loop {
            let (s, k) = self.drain(&mut taken);
            sum += s;
            got += k;
            if got == n {
                if holding {
                    self.doorbell.release();
                }
                return sum;
            }
            if holding || self.doorbell.claim() {
                holding = true;
                if self.any_ready(&taken) {
                    continue; // a hit: drain, still holding
                }
                // A miss: give it back, then drain before sleeping.
                self.doorbell.release();
                holding = false;
                if self.any_ready(&taken) {
                    continue;
                }
            }
            match kernel {
                LoopKernel::Cqe => {
                    self.cq.wait();
                }
                LoopKernel::Futex => self.futex.wait(self.doorbell.word(), 0),
            }
            self.doorbell.ack();
        }
    }
}

/// The loop keeps its doorbell across hits: no result waits unannounced
/// while it sleeps.
#[test]
fn doorbell_cqe_held_across_hits() {
    doorbell(LoopKernel::Cqe, Collect::Holding);
}

#[test]
fn doorbell_futex_held_across_hits() {
    doorbell(LoopKernel::Futex, Collect::Holding);
}

/// How the loop waits for results in [`doorbell`].
#[derive(Copy, Clone)]
enum Collect {
    /// Sleeps until announced.
    Sleep,
    /// Holds the doorbell for one look, gives it back, sleeps if empty.
    Spin,
    /// Keeps the doorbell across hits (`Loop::collect_holding`).
    Holding,
}

/// Two workers deliver one result each; the loop must get both (no lost
/// announcement), see each payload (publication is ordered before the drain)
/// and never have more than one announcement outstanding.
fn doorbell(kernel: LoopKernel, collect: Collect) {
    model(move || {
        let lp = Arc::new(Loop::new(2));
        let ws: Vec<_> = (0..2)
            .map(|i| {
                let lp = lp.clone();
                thread::spawn(move || lp.deliver(i, 10 + i as u32, kernel))
            })
            .collect();
        let sum = match collect {
            Collect::Sleep => lp.collect(2, kernel, false),
            Collect::Spin => lp.collect(2, kernel, true),
            Collect::Holding => lp.collect_holding(2, kernel),
        };
        assert_eq!(sum, 21);
        for w in ws {
            w.join().unwrap();
        }
        let rung = lp.rung.load(SeqCst);
        let spun = !matches!(collect, Collect::Sleep);
        assert!(
            (1..=2).contains(&rung) || spun && rung == 0,
            "{rung} announcements"
        );
    });
}

#[test]
fn doorbell_cqe() {
    doorbell(LoopKernel::Cqe, Collect::Sleep);
}

#[test]
fn doorbell_cqe_with_loop_spin() {
    doorbell(LoopKernel::Cqe, Collect::Spin);
}

#[test]
fn doorbell_futex() {
    doorbell(LoopKernel::Futex, Collect::Sleep);
}

#[test]
fn doorbell_futex_with_loop_spin() {
    doorbell(LoopKernel::Futex, Collect::Spin);
}

/// At most one announcement is outstanding: between two acks, only one
/// worker's `should_ring` returns true, however many results are pushed.
#[test]
fn doorbell_one_announcement_outstanding() {
    model(|| {
        let db = Arc::new(Doorbell::new());
        let ws: Vec<_> = (0..3)
            .map(|_| {
                let db = db.clone();
                thread::spawn(move || db.should_ring())
            })
            .collect();
        let rang = ws
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|&r| r)
            .count();
        assert_eq!(rang, 1);
        db.ack();
        assert!(db.should_ring(), "the doorbell re-arms after an ack");
    });
}

// ---------------------------------------------------------------------------
// The runtime's remote wakes: `protocol::remote` (a task's scheduled flag,
// the wake list and the loop's doorbell), with the signal to the ring (a
// ringless MSG_RING or an eventfd) as a CQE.
// ---------------------------------------------------------------------------

use ringpool::__loom::{RemoteWakes, Scheduled};

struct Rt {
    wakes: RemoteWakes,
    scheduled: [Scheduled; 2],
    signal: Cq,
    /// What each waker hands its task before waking it (read Relaxed: only
    /// the protocol's edges make it visible).
    inputs: [AtomicBool; 2],
}

fn remote_wake(same_task: bool) {
    model(move || {
        let rt = Arc::new(Rt {
            wakes: RemoteWakes::new(),
            scheduled: [Scheduled::new(), Scheduled::new()],
            signal: Cq::new(),
            inputs: [AtomicBool::new(false), AtomicBool::new(false)],
        });
        let task_of = move |i: usize| if same_task { 0 } else { i };
        let wakers: Vec<_> = (0..2)
            .map(|i| {
                let rt = rt.clone();
                thread::spawn(move || {
                    rt.inputs[i].store(true, std::sync::atomic::Ordering::Relaxed);
                    let t = task_of(i);
                    if rt.scheduled[t].schedule() && rt.wakes.push(t) {
                        rt.signal.post();
                    }
                })
            })
            .collect();
        // The loop: a task polled after its wake must see its input; the
        // loop ends only when both inputs were seen by a poll (a lost
        // wakeup blocks it in `signal.wait` for ever: a deadlock).
        let mut seen = [false; 2];
        loop {
            rt.wakes.awake();
            let mut polled = Vec::new();
            rt.wakes.drain(|t| polled.push(t));
            for t in polled {
                rt.scheduled[t].unschedule();
                for (i, s) in seen.iter_mut().enumerate() {
                    if task_of(i) == t && rt.inputs[i].load(std::sync::atomic::Ordering::Relaxed) {
                        *s = true;
                    }
                }
            }
            if seen == [true, true] {
                break;
            }
            if rt.wakes.may_sleep() {
                rt.signal.wait();
            }
        }
        for w in wakers {
            w.join().unwrap();
        }
    });
}

#[test]
fn remote_wake_two_tasks() {
    remote_wake(false);
}

#[test]
fn remote_wake_one_task_twice() {
    remote_wake(true);
}

// ---------------------------------------------------------------------------
// rings.rs: the job lane and the result ring
// ---------------------------------------------------------------------------

/// The loop pushes two jobs through a lane of room 1, publishing after
/// each, so the second push laps the first and must wait for a claim. One
/// claimer takes jobs until it has seen both or the other claimer took one;
/// the other makes a single claim, which may read the entry before its CAS
/// and race with the loop's overwrite: such a claim must fail its CAS, never
/// hand the entry out. Every job is claimed exactly once, with its payload
/// visible.
#[test]
fn lane_two_claimers_take_each_once() {
    model_spinning(|| {
        struct S {
            lane: Lane,
            payload: [UnsafeCell<usize>; 3],
            taken: [AtomicUsize; 3],
        }
        impl S {
            fn claim(&self) -> usize {
                self.lane.claim(32, 1, |v| {
                    // SAFETY (model): the claim owns `v`'s payload.
                    let p = self.payload[v].with(|p| unsafe { *p });
                    assert_eq!(p, v * 10, "payload of job {v}");
                    self.taken[v].fetch_add(1, SeqCst);
                })
            }
            fn total(&self) -> usize {
                self.taken.iter().map(|t| t.load(SeqCst)).sum()
            }
        }
        let s = Arc::new(S {
            lane: Lane::new(1),
            payload: std::array::from_fn(|_| UnsafeCell::new(0)),
            taken: std::array::from_fn(|_| AtomicUsize::new(0)),
        });
        let once = {
            let s = s.clone();
            thread::spawn(move || {
                s.claim();
            })
        };
        let looping = {
            let s = s.clone();
            thread::spawn(move || {
                // Until the lane's first job is gone, so that the loop's
                // second push can go in; then whatever is left.
                while s.total() == 0 {
                    if s.claim() == 0 {
                        thread::yield_now();
                    }
                }
            })
        };
        for v in 1..=2 {
            // SAFETY (model): the payload is the loop's until pushed.
            s.payload[v].with_mut(|p| unsafe { *p = v * 10 });
            s.lane.push(v);
            s.lane.publish();
        }
        once.join().unwrap();
        looping.join().unwrap();
        while s.total() < 2 {
            assert_eq!(s.claim(), 1, "the rest is still in the lane");
        }
        assert_eq!(s.taken[1].load(SeqCst), 1, "job 1 claimed once");
        assert_eq!(s.taken[2].load(SeqCst), 1, "job 2 claimed once");
        assert!(s.lane.is_empty());
    });
}

/// A ring of room 1 (a loop with one slot): worker A's result, then worker
/// B's for the job the loop submitted in the same slot after it took A's.
/// B's entry laps A's with no room check. The loop gets both, with their
/// payloads visible. The waits are loom `Notify`s (the doorbell, and the
/// job's hand-off), so that the model stays small.
#[test]
fn result_ring_laps_behind_the_loop() {
    model(|| {
        struct S {
            ring: ResultRing,
            payload: [UnsafeCell<usize>; 3],
            doorbell: Notify,
            submitted_b: AtomicBool,
            submit_b: Notify,
        }
        let s = Arc::new(S {
            ring: ResultRing::new(1),
            payload: std::array::from_fn(|_| UnsafeCell::new(0)),
            doorbell: Notify::new(),
            submitted_b: AtomicBool::new(false),
            submit_b: Notify::new(),
        });
        let worker = |v: usize, wait: bool| {
            let s = s.clone();
            thread::spawn(move || {
                // (A `Notify` may wake spuriously: the flag says.)
                while wait && !s.submitted_b.load(Acquire) {
                    s.submit_b.wait();
                }
                // SAFETY (model): the job is this worker's until pushed.
                s.payload[v].with_mut(|p| unsafe { *p = v * 10 + 1 });
                s.ring.push_all(&[v]);
                s.doorbell.notify();
            })
        };
        let a = worker(1, false);
        let b = worker(2, true);
        for want in 1..=2 {
            let v = loop {
                match s.ring.pop() {
                    Some(v) => break v,
                    None => s.doorbell.wait(),
                }
            };
            assert_eq!(v, want, "results in order");
            // SAFETY (model): the popped result is the loop's.
            let p = s.payload[v].with(|p| unsafe { *p });
            assert_eq!(p, v * 10 + 1, "payload of result {v}");
            if want == 1 {
                // The slot is free: its next job goes to worker B.
                s.submitted_b.store(true, Release);
                s.submit_b.notify();
            }
        }
        a.join().unwrap();
        b.join().unwrap();
        assert!(s.ring.is_empty());
    });
}
