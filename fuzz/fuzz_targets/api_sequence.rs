//! Drives ringpool's public API with an arbitrary sequence of operations and
//! checks that every job ends exactly once.
//!
//! The input is a byte program. The first byte picks the mechanism and
//! whether to use a pool shared by all inputs (fast: one small pool per
//! mechanism per process) or a fresh one whose shutdown and drop may be
//! part of the sequence. Then each byte is an operation on one of up to
//! three loops (each its own `IoUring` + `LoopHandle` on this thread):
//! submit a value / panicking / slow job (`try_submit` or `submit`), wait
//! (`submit_and_wait`), `reap`, take `completions`, `close` or drop a loop
//! with jobs queued, register a loop, `Pool::shutdown`, drop the pool handle.
//!
//! Checked: every accepted job's completion is seen at most once, with the
//! right value or error; `close` returns every job still out; every closure
//! (accepted, refused, cancelled, run) is dropped exactly once.
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run api_sequence -- -max_total_time=30
//! ```
#![no_main]

use io_uring::IoUring;
use libfuzzer_sys::fuzz_target;
use ringpool::{Completion, Handoff, JobError, LoopHandle, Pool, Shutdown, TrySubmitError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Drop counts of captured job state, by token.
type Drops = Arc<Mutex<HashMap<u64, u32>>>;

/// Captured by every job: records its drop.
struct Token {
    id: u64,
    drops: Drops,
}

impl Drop for Token {
    fn drop(&mut self) {
        *self.drops.lock().unwrap().entry(self.id).or_insert(0) += 1;
    }
}

/// What a job does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Value,
    Panic,
    Slow,
}

/// One small pool per mechanism, shared by every input of this process.
fn shared_pool(h: Handoff) -> Option<Pool> {
    static POOLS: OnceLock<Vec<(Handoff, Option<Pool>)>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        Handoff::ALL
            .iter()
            .map(|&h| {
                let p = Pool::builder()
                    .workers(1 + (h as usize) % 2)
                    .handoff(h)
                    .max_in_flight(8)
                    .spin(Duration::from_micros(5))
                    .loop_spin(Duration::from_micros(5))
                    .build()
                    .ok();
                (h, p)
            })
            .collect()
    });
    pools
        .iter()
        .find(|(x, _)| *x == h)
        .and_then(|(_, p)| p.clone())
}

/// Keeps the deliberate panics of test jobs from reaching libFuzzer's hook
/// (which aborts on any panic); every other panic still aborts.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() == Some(&"deliberate panic") {
                return;
            }
            fuzzer_hook(info);
        }));
    });
}

/// A loop under test and what it still owes.
struct Lp {
    ring: IoUring,
    lp: LoopHandle<u64>,
    /// Accepted jobs not yet completed: id -> (token, kind).
    out: HashMap<u64, (u64, Kind)>,
}

struct World {
    pool: Option<Pool>,
    loops: Vec<Lp>,
    drops: Drops,
    next_token: u64,
    /// Tokens whose closure must be dropped exactly once by the end.
    made: Vec<u64>,
}

impl World {
    fn check(&self, c: Completion<u64>, lp_out: &mut HashMap<u64, (u64, Kind)>) {
        let (token, kind) = lp_out
            .remove(&c.id.get())
            .unwrap_or_else(|| panic!("completion for unknown or finished job {:?}", c.id));
        match c.result {
            Ok(v) => {
                assert_ne!(kind, Kind::Panic, "a panicking job returned");
                assert_eq!(v, token, "wrong value");
            }
            Err(JobError::Panicked(p)) => {
                assert_eq!(kind, Kind::Panic, "a job panicked unexpectedly");
                assert_eq!(p.downcast_ref::<&str>(), Some(&"deliberate panic"));
            }
            Err(JobError::Cancelled(task)) => {
                // Half the time run it here: it must still be intact.
                if token % 2 == 0 && kind != Kind::Panic {
                    assert_eq!(task.run(), token);
                } else {
                    drop(task);
                }
            }
        }
    }

    fn job(&mut self, kind: Kind) -> (u64, impl FnOnce() -> u64 + Send + 'static) {
        let token = self.next_token;
        self.next_token += 1;
        self.made.push(token);
        let t = Token {
            id: token,
            drops: self.drops.clone(),
        };
        let f = move || {
            let t = t;
            match kind {
                Kind::Value => {}
                Kind::Panic => panic!("deliberate panic"),
                Kind::Slow => (0..2000).for_each(|_| std::hint::spin_loop()),
            }
            t.id
        };
        (token, f)
    }

    fn submit(&mut self, k: usize, kind: Kind, blocking: bool) {
        if self.loops.is_empty() {
            return;
        }
        let k = k % self.loops.len();
        let (token, f) = self.job(kind);
        let l = &mut self.loops[k];
        let r = if blocking {
            l.lp.submit(&mut l.ring, f, |cqe| panic!("foreign CQE {cqe:?}"))
                .map_err(|e| e.into_inner())
        } else {
            l.lp.try_submit(f).map_err(|e| match e {
                TrySubmitError::Full(f) | TrySubmitError::Closed(f) => f,
            })
        };
        match r {
            Ok(id) => {
                assert!(l.out.insert(id.get(), (token, kind)).is_none(), "id reused");
            }
            Err(f) => drop(f),
        }
    }

    fn take(&mut self, k: usize) {
        if self.loops.is_empty() {
            return;
        }
        let k = k % self.loops.len();
        let mut l = self.loops.swap_remove(k);
        for c in l.lp.completions() {
            self.check(c, &mut l.out);
        }
        self.loops.push(l);
    }

    fn wait(&mut self, k: usize) {
        if self.loops.is_empty() {
            return;
        }
        let k = k % self.loops.len();
        let l = &mut self.loops[k];
        // Waiting with nothing out would block for ever.
        if l.lp.in_flight() > 0 {
            // A signal (libFuzzer's own timers send some) ends the wait
            // with EINTR, as documented: wait again.
            loop {
                match l.lp.submit_and_wait(&mut l.ring, 1) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => {
                        r.expect("submit_and_wait");
                        break;
                    }
                }
            }
        }
        l.lp.reap(&mut l.ring, |cqe| panic!("foreign CQE {cqe:?}"));
    }

    fn close(&mut self, k: usize, drop_it: bool) {
        if self.loops.is_empty() {
            return;
        }
        let mut l = self.loops.swap_remove(k % self.loops.len());
        if drop_it {
            // Results are discarded; the drop counters still see each job.
            drop(l.lp);
            return;
        }
        let lp = l.lp;
        for c in lp.close(&mut l.ring, |cqe| panic!("foreign CQE {cqe:?}")) {
            self.check(c, &mut l.out);
        }
        assert!(l.out.is_empty(), "close lost {} job(s)", l.out.len());
    }

    fn register(&mut self) {
        if self.loops.len() >= 3 {
            return;
        }
        let Some(pool) = &self.pool else { return };
        let ring = IoUring::new(8).expect("ring");
        let mut ring = ring;
        match pool.register::<u64>(&mut ring) {
            Ok(lp) => self.loops.push(Lp {
                ring,
                lp,
                out: HashMap::new(),
            }),
            // A pipe pool that is shutting down refuses new loops.
            Err(_) => assert!(pool.is_shut_down()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    let Some((&first, prog)) = data.split_first() else {
        return;
    };
    let h = Handoff::ALL[(first as usize) % Handoff::ALL.len()];
    let fresh = first >= 0xE0;
    let pool = if fresh {
        let shutdown = if first & 1 == 0 {
            Shutdown::Cancel
        } else {
            Shutdown::Drain
        };
        Pool::builder()
            .workers(1)
            .handoff(h)
            .max_in_flight(4)
            .shutdown(shutdown)
            .build()
            .ok()
    } else {
        shared_pool(h)
    };
    let Some(pool) = pool else { return };
    let mut w = World {
        pool: Some(pool),
        loops: Vec::new(),
        drops: Arc::new(Mutex::new(HashMap::new())),
        next_token: 0,
        made: Vec::new(),
    };
    w.register();
    for &b in prog.iter().take(256) {
        let k = (b >> 4) as usize;
        match b % 13 {
            0 | 1 => w.submit(k, Kind::Value, false),
            2 => w.submit(k, Kind::Panic, false),
            3 => w.submit(k, Kind::Slow, false),
            4 => w.submit(k, Kind::Value, true),
            5 | 6 => w.wait(k),
            7 => w.take(k),
            8 => w.close(k, false),
            9 => w.close(k, true),
            10 => w.register(),
            11 if fresh => {
                if let Some(p) = &w.pool {
                    p.shutdown();
                }
            }
            12 if fresh => w.pool = None,
            _ => w.take(k),
        }
    }
    // End: close every loop (all jobs come back), then drop the pool.
    while !w.loops.is_empty() {
        w.close(0, false);
    }
    drop(w.pool.take());
    let drops = w.drops.lock().unwrap();
    for t in &w.made {
        assert_eq!(
            drops.get(t).copied().unwrap_or(0),
            1,
            "job {t}'s captured state was dropped a wrong number of times"
        );
    }
    assert_eq!(drops.len(), w.made.len());
});
