//! Stress suite over the public API: ping-pongs on every mechanism with random
//! delays and spin budgets (no lost wakeup), shutdown racing with submission,
//! panic storms, several loops sharing one pool, and jobs of wildly mixed
//! cost.
//!
//! Scale: `RINGPOOL_STRESS=smoke|short|long` (default `short`, the CI stage,
//! a minute or two in release mode on 2 cores). The long run, by hand:
//!
//! ```text
//! RINGPOOL_STRESS=long cargo test --release --test stress -- --nocapture --test-threads=1
//! ```
//!
//! `RINGPOOL_SEED=<n>` replays a run (every test prints its seed). A lost
//! wakeup or hang fails the process through a watchdog (60 s without
//! progress) with the mechanism, the progress made and the pool's stats.

mod util;

use io_uring::IoUring;
use ringpool::{
    Capabilities, Handoff, JobError, LoopHandle, Pool, PoolBuilder, Shutdown, TrySubmitError,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use util::{Delay, Rng, Scale, Watchdog};

/// No progress for this long is a failure (generous: the machine may be busy).
const STALL: Duration = Duration::from_secs(60);

/// Why `h` cannot run here (kernel or `RINGPOOL_UNSUPPORTED`), or `None`.
fn skip_reason(h: Handoff) -> Option<String> {
    h.unsupported_reason(Capabilities::get())
}

/// Builds a pool for `h`, or prints why it is skipped.
fn build_or_skip(test: &str, b: PoolBuilder, h: Handoff) -> Option<Pool> {
    if let Some(why) = skip_reason(h) {
        println!("{test}: skipping {h}: {why}");
        return None;
    }
    match b.handoff(h).build() {
        Ok(p) => Some(p),
        Err(e) if matches!(e.kind(), ringpool::ErrorKind::Unsupported(_)) => {
            println!("{test}: skipping {h}: {e}");
            None
        }
        Err(e) => panic!("{test}: building a {h} pool: {e}"),
    }
}

fn random_spin(rng: &mut Rng) -> Duration {
    Duration::from_micros(rng.pick(&[0, 0, 1, 5, 20, 50, 200]))
}

fn random_loop_spin(rng: &mut Rng) -> Duration {
    Duration::from_micros(rng.pick(&[0, 0, 2, 10, 20, 100]))
}

/// One round trip at a time (sometimes a small burst), on a fresh pool with
/// new random spin budgets every `per_pool` round trips. Any lost wakeup on
/// either side stalls the round trip and trips the watchdog.
fn ping_pong(h: Handoff, rounds: u64, seed: u64) {
    let test = format!("ping_pong[{h}]");
    let mut rng = Rng::new(seed);
    let per_pool = 5_000.min(rounds.max(1));
    let mut done = 0u64;
    let started = Instant::now();
    let mut pools = 0;
    while done < rounds {
        let workers = 1 + rng.below(2) as usize;
        let spin = random_spin(&mut rng);
        let loop_spin = random_loop_spin(&mut rng);
        let b = Pool::builder()
            .workers(workers)
            .spin(spin)
            .loop_spin(loop_spin)
            .poll_interval(Duration::from_micros(rng.pick(&[20, 100, 500])))
            .max_in_flight(16);
        let Some(pool) = build_or_skip(&test, b, h) else {
            return;
        };
        pools += 1;
        let config = format!("{workers} worker(s), spin {spin:?}, loop_spin {loop_spin:?}");
        let dog = Watchdog::start(format!("{test} ({config})"), STALL, Some(pool.clone()));
        let mut ring = IoUring::new(32).expect("ring");
        let mut lp = pool.register::<u64>(&mut ring).expect("register");
        let end = (done + per_pool).min(rounds);
        while done < end {
            let burst = if rng.one_in(16) { 1 + rng.below(8) } else { 1 };
            let mut want = HashSet::new();
            for k in 0..burst {
                let d = Delay::random(&mut rng);
                let v = done * 16 + k;
                let id = lp
                    .try_submit(move || {
                        d.run();
                        v
                    })
                    .expect("room for a burst");
                want.insert((id, v));
            }
            Delay::random(&mut rng).run();
            while !want.is_empty() {
                let c = util::wait_one(&mut lp, &mut ring);
                let v = c.result.expect("no panic, no cancel");
                assert!(want.remove(&(c.id, v)), "{test}: unexpected completion {v}");
            }
            done += 1;
            dog.tick(done);
            if done % 1024 == 0 {
                dog.status(format!(
                    "round trip {done} of {rounds}; loop {:?}",
                    lp.stats()
                ));
            }
        }
        let left = lp.close(&mut ring, |cqe| panic!("unexpected CQE {cqe:?}"));
        assert!(left.is_empty(), "{test}: completions left at close");
        drop(pool);
        drop(dog);
    }
    let el = started.elapsed();
    println!(
        "{test}: {done} round trips, 0 lost wakeups, {pools} pool(s), {:.1} s ({:.1} µs/round trip)",
        el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / done.max(1) as f64
    );
}

/// Millions of round trips per mechanism in the long run.
#[test]
fn ping_pong_every_mechanism() {
    let scale = Scale::get();
    let rounds = std::env::var("RINGPOOL_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| scale.pick(300, 50_000, 2_000_000));
    let mut rng = Rng::from_env("ping_pong_every_mechanism");
    for h in Handoff::ALL {
        ping_pong(h, rounds, rng.next_u64());
    }
}

/// A small pipe-backend run: the target of `ci/tsan.sh`'s expected-failure
/// check (built with `--cfg ringpool_no_bridge`, TSan must report the race on
/// the job cell), and a plain pipe smoke test otherwise.
#[test]
fn tsan_probe_pipe_handoff() {
    let Some(pool) = build_or_skip(
        "tsan_probe_pipe_handoff",
        Pool::builder().workers(2).spin(Duration::ZERO),
        Handoff::Pipe,
    ) else {
        return;
    };
    let _dog = Watchdog::start("tsan_probe_pipe_handoff", STALL, Some(pool.clone()));
    let mut ring = IoUring::new(32).expect("ring");
    let mut lp = pool.register::<Vec<u64>>(&mut ring).expect("register");
    for i in 0..50u64 {
        // The closure captures heap data written on this thread, read on a
        // worker: without the bridge, TSan sees no edge for it.
        let data: Vec<u64> = std::iter::repeat_n(i, 8).collect();
        lp.try_submit(move || data.iter().map(|x| x + 1).collect())
            .unwrap();
        let c = util::wait_one(&mut lp, &mut ring);
        assert_eq!(c.result.unwrap(), vec![i + 1; 8]);
    }
    drop(lp.close(&mut ring, |_| {}));
}

/// Submitters race `Pool::shutdown`: every accepted job ends exactly once
/// (a value or, on close, `Cancelled`), every refused one comes back intact.
#[test]
fn shutdown_races_submission() {
    let scale = Scale::get();
    let iters = scale.pick(4, 60, 600);
    let mut rng = Rng::from_env("shutdown_races_submission");
    for h in Handoff::ALL {
        for it in 0..iters {
            let seed = rng.next_u64();
            let mut r = Rng::new(seed);
            let shutdown = if r.one_in(2) {
                Shutdown::Cancel
            } else {
                Shutdown::Drain
            };
            let b = Pool::builder()
                .workers(1 + r.below(2) as usize)
                .spin(random_spin(&mut r))
                .loop_spin(random_loop_spin(&mut r))
                .shutdown(shutdown)
                .max_in_flight(64);
            let Some(pool) = build_or_skip("shutdown_races_submission", b, h) else {
                break;
            };
            let test = format!("shutdown_races_submission[{h}, {shutdown:?}, iteration {it}]");
            let dog = Watchdog::start(test.clone(), STALL, Some(pool.clone()));
            let loops = 1 + r.below(2) as usize;
            let start = Arc::new(Barrier::new(loops + 1));
            let progress = dog.counter();
            let threads: Vec<_> = (0..loops)
                .map(|t| {
                    let pool = pool.clone();
                    let start = start.clone();
                    let progress = progress.clone();
                    let seed = seed ^ (t as u64 + 1);
                    let test = test.clone();
                    std::thread::spawn(move || {
                        shutdown_submitter(&test, pool, &start, &progress, seed)
                    })
                })
                .collect();
            start.wait();
            Delay::random(&mut r).run();
            if r.one_in(2) {
                std::thread::sleep(Duration::from_micros(r.below(2000)));
            }
            pool.shutdown();
            assert!(pool.is_shut_down());
            for t in threads {
                t.join().expect("submitter");
            }
            drop(pool);
            drop(dog);
        }
    }
}

/// One loop of [`shutdown_races_submission`].
fn shutdown_submitter(test: &str, pool: Pool, start: &Barrier, progress: &AtomicU64, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut ring = IoUring::new(64).expect("ring");
    let mut lp = pool.register::<u64>(&mut ring).expect("register");
    let ended = Arc::new(AtomicU64::new(0)); // drop counter of captured state
    let mut accepted = HashSet::new();
    let mut finished = 0u64;
    let mut refused = 0u64;
    start.wait();
    let mut i = 0u64;
    loop {
        let token = DropCount(ended.clone());
        let d = Delay::random(&mut rng);
        match lp.try_submit(move || {
            d.run();
            let _keep = &token;
            i
        }) {
            Ok(id) => {
                accepted.insert(id);
                i += 1;
            }
            Err(TrySubmitError::Full(job)) => {
                drop(job);
                refused += 1;
                let mut on = |c: ringpool::Completion<u64>| {
                    assert!(accepted.remove(&c.id), "{test}: completion seen twice");
                    finished += 1;
                };
                lp.submit_and_wait(&mut ring, 1).expect("wait");
                lp.reap(&mut ring, |cqe| panic!("unexpected CQE {cqe:?}"));
                lp.completions().for_each(&mut on);
            }
            Err(TrySubmitError::Closed(job)) => {
                drop(job);
                refused += 1;
                break;
            }
        }
        progress.fetch_add(1, Ordering::Relaxed);
        if rng.one_in(4) {
            for c in lp.completions() {
                assert!(accepted.remove(&c.id), "{test}: completion seen twice");
                finished += 1;
            }
        }
    }
    // Close (or drop) with jobs still queued: each ends exactly once.
    let submitted = i;
    if rng.one_in(3) {
        drop(lp);
        // Dropping discards results, but every captured value is dropped.
    } else {
        for c in lp.close(&mut ring, |cqe| panic!("unexpected CQE {cqe:?}")) {
            assert!(accepted.remove(&c.id), "{test}: completion seen twice");
            match c.result {
                Ok(_) => {}
                Err(JobError::Cancelled(task)) => drop(task),
                Err(e) => panic!("{test}: unexpected {e:?}"),
            }
            finished += 1;
        }
        assert!(
            accepted.is_empty(),
            "{test}: {} job(s) never completed",
            accepted.len()
        );
        assert_eq!(finished, submitted);
    }
    // Every closure (accepted or refused) was dropped exactly once: the
    // refused ones above, the accepted ones by running or by cancellation.
    assert_eq!(
        ended.load(Ordering::SeqCst),
        submitted + refused,
        "{test}: captured state dropped a wrong number of times"
    );
}

/// Counts drops of captured state.
struct DropCount(Arc<AtomicU64>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Half the jobs panic, on every mechanism: each panic comes back as
/// `Panicked` with its message, the other jobs' values are intact, and the
/// workers survive.
#[test]
fn panic_storm() {
    util::quiet_deliberate_panics();
    let scale = Scale::get();
    let jobs = scale.pick(200, 10_000, 500_000);
    let mut rng = Rng::from_env("panic_storm");
    for h in Handoff::ALL {
        let b = Pool::builder()
            .workers(2)
            .spin(random_spin(&mut rng))
            .loop_spin(random_loop_spin(&mut rng))
            .max_in_flight(128);
        let Some(pool) = build_or_skip("panic_storm", b, h) else {
            continue;
        };
        let test = format!("panic_storm[{h}]");
        let dog = Watchdog::start(test.clone(), STALL, Some(pool.clone()));
        let mut ring = IoUring::new(64).expect("ring");
        let mut lp = pool.register::<u64>(&mut ring).expect("register");
        let (mut sent, mut ok, mut panicked) = (0u64, 0u64, 0u64);
        let mut seen = HashSet::new();
        let mut on = |c: ringpool::Completion<u64>, ok: &mut u64, panicked: &mut u64| {
            assert!(seen.insert(c.id), "{test}: completion seen twice");
            match c.result {
                Ok(v) => {
                    assert_eq!(v % 2, 1, "{test}: a panicking job returned");
                    *ok += 1;
                }
                Err(e) => {
                    assert_eq!(e.panic_message(), Some("deliberate panic"), "{test}: {e:?}");
                    *panicked += 1;
                }
            }
        };
        while sent < jobs {
            let d = Delay::random(&mut rng);
            let v = sent;
            let r = lp.submit(
                &mut ring,
                move || {
                    d.run();
                    if v % 2 == 0 {
                        panic!("deliberate panic");
                    }
                    v
                },
                |cqe| panic!("unexpected CQE {cqe:?}"),
            );
            assert!(r.is_ok(), "{test}: submit refused");
            sent += 1;
            for c in lp.completions() {
                on(c, &mut ok, &mut panicked);
            }
            dog.tick(sent);
        }
        util::drain(&mut lp, &mut ring, |c| on(c, &mut ok, &mut panicked));
        assert_eq!(ok + panicked, jobs, "{test}");
        assert_eq!(panicked, jobs.div_ceil(2), "{test}");
        let stats = pool.stats();
        assert_eq!(stats.jobs_run, jobs, "{test}: {stats:?}");
        drop(lp.close(&mut ring, |_| {}));
        drop(dog);
    }
}

/// Several loops (threads, each with its own ring and handle) share one pool
/// and submit jobs of wildly mixed cost; every job comes back exactly once
/// to the loop that submitted it.
#[test]
fn many_loops_mixed_cost() {
    let scale = Scale::get();
    let per_loop = scale.pick(100, 4_000, 300_000);
    let mut rng = Rng::from_env("many_loops_mixed_cost");
    for h in Handoff::ALL {
        let b = Pool::builder()
            .workers(2)
            .spin(random_spin(&mut rng))
            .loop_spin(random_loop_spin(&mut rng))
            .max_in_flight(1 + rng.below(64) as usize);
        let Some(pool) = build_or_skip("many_loops_mixed_cost", b, h) else {
            continue;
        };
        let test = format!("many_loops_mixed_cost[{h}]");
        let dog = Watchdog::start(test.clone(), STALL, Some(pool.clone()));
        let loops = 3;
        let threads: Vec<_> = (0..loops)
            .map(|t| {
                let pool = pool.clone();
                let progress = dog.counter();
                let seed = rng.next_u64();
                let test = format!("{test} loop {t}");
                std::thread::spawn(move || mixed_loop(&test, &pool, per_loop, seed, &progress))
            })
            .collect();
        for t in threads {
            t.join().expect("loop thread");
        }
        drop(dog);
    }
}

/// A job cost: mostly trivial, sometimes microseconds, rarely milliseconds.
fn random_cost(rng: &mut Rng) -> Delay {
    match rng.below(100) {
        0..=59 => Delay::None,
        60..=84 => Delay::Spin(rng.below(20_000) as u32),
        85..=94 => Delay::Sleep(rng.below(100) as u32),
        95..=98 => Delay::Sleep(rng.below(2_000) as u32),
        _ => Delay::Sleep(5_000 + rng.below(5_000) as u32),
    }
}

fn mixed_loop(test: &str, pool: &Pool, jobs: u64, seed: u64, progress: &AtomicU64) {
    let mut rng = Rng::new(seed);
    let mut ring = IoUring::new(64).expect("ring");
    let mut lp: LoopHandle<(u64, u64)> = pool.register(&mut ring).expect("register");
    let me = seed;
    let mut expect = HashSet::new();
    let mut sent = 0;
    let check = |c: ringpool::Completion<(u64, u64)>, expect: &mut HashSet<u64>| {
        let (who, v) = c.result.expect("no panic");
        assert_eq!(who, me, "{test}: result delivered to the wrong loop");
        assert!(expect.remove(&v), "{test}: job {v} completed twice");
        progress.fetch_add(1, Ordering::Relaxed);
    };
    while sent < jobs {
        let d = random_cost(&mut rng);
        let v = sent;
        match lp.submit(
            &mut ring,
            move || {
                d.run();
                (me, v)
            },
            |cqe| panic!("unexpected CQE {cqe:?}"),
        ) {
            Ok(_) => {
                expect.insert(v);
                sent += 1;
            }
            Err(e) => panic!("{test}: submit: {e}"),
        }
        if rng.one_in(8) {
            Delay::random(&mut rng).run();
        }
        for c in lp.completions() {
            check(c, &mut expect);
        }
    }
    util::drain(&mut lp, &mut ring, |c| check(c, &mut expect));
    assert!(expect.is_empty(), "{test}: {} job(s) lost", expect.len());
    drop(lp.close(&mut ring, |_| {}));
}

/// Loops come and go while others keep submitting: registration, close and
/// drop racing with running jobs, on every mechanism.
#[test]
fn loops_come_and_go() {
    let scale = Scale::get();
    let rounds = scale.pick(6, 100, 3_000);
    let mut rng = Rng::from_env("loops_come_and_go");
    for h in Handoff::ALL {
        let b = Pool::builder()
            .workers(2)
            .spin(random_spin(&mut rng))
            .loop_spin(random_loop_spin(&mut rng));
        let Some(pool) = build_or_skip("loops_come_and_go", b, h) else {
            continue;
        };
        let test = format!("loops_come_and_go[{h}]");
        let dog = Watchdog::start(test.clone(), STALL, Some(pool.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        // A steady background loop.
        let bg = {
            let pool = pool.clone();
            let stop = stop.clone();
            let progress = dog.counter();
            std::thread::spawn(move || {
                let mut ring = IoUring::new(32).expect("ring");
                let mut lp = pool.register::<u32>(&mut ring).expect("register");
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    lp.try_submit(move || n).unwrap();
                    assert_eq!(util::wait_one(&mut lp, &mut ring).result.unwrap(), n);
                    n = n.wrapping_add(1);
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                drop(lp.close(&mut ring, |_| {}));
            })
        };
        for _ in 0..rounds {
            let mut ring = IoUring::new(16).expect("ring");
            let mut lp = pool.register::<u64>(&mut ring).expect("register");
            let n = 1 + rng.below(8);
            for i in 0..n {
                let d = random_cost(&mut rng);
                lp.try_submit(move || {
                    d.run();
                    i
                })
                .unwrap();
            }
            match rng.below(3) {
                0 => drop(lp),
                1 => {
                    let got = lp.close(&mut ring, |_| {});
                    assert!(got.len() as u64 <= n);
                }
                _ => {
                    let mut got = 0;
                    util::drain(&mut lp, &mut ring, |c| {
                        assert!(c.result.is_ok());
                        got += 1;
                    });
                    assert_eq!(got, n, "{test}");
                    drop(lp.close(&mut ring, |_| {}));
                }
            }
            dog.bump();
        }
        stop.store(true, Ordering::Relaxed);
        bg.join().expect("background loop");
        drop(dog);
    }
}
