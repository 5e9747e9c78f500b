//! Fault injection (feature `fault-injection`): a loop CQ of the minimum
//! size under a flood, system calls failing at every [`Site`] with EAGAIN,
//! ENOMEM, EBADF and EINTR, and worker and `per_core` thread spawns that
//! fail. (Forced `auto` fallbacks through `RINGPOOL_UNSUPPORTED` are tested once, in
//! `tests/conformance.rs`, which needs no feature.)
//!
//! ```text
//! cargo test --release --features fault-injection --test fault
//! ```
//!
//! A mechanism this kernel lacks is skipped through [`util::skip`] (counted;
//! skipping a supported one fails). The injection table is process-global,
//! so every test holds [`SERIAL`].
//! A lost job or a hang is caught by a no-progress limit
//! (`RINGPOOL_FAULT_STALL_SECS`, default 30 s) and reported with its
//! scenario instead of hanging CI.

// The public API is compiled out under `--cfg loom` (only the models' shim is
// there): this suite runs without it (`tests/loom.rs` is the one that runs with it).
#![cfg(not(loom))]

mod util;

use io_uring::{opcode, IoUring};
use ringpool::fault::{self, Site};
use ringpool::{Announce, ErrorKind, Handoff, LoopHandle, Pool, PoolBuilder};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use util::Watchdog;

/// Serialises the tests: the injection table is global.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fault::clear();
    g
}

/// How long a scenario may go without progress before it counts as hung.
fn stall_limit() -> Duration {
    let secs = std::env::var("RINGPOOL_FAULT_STALL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// Every site, with the mechanisms whose code paths make that call.
const SITES: [(Site, &[Handoff]); 7] = [
    (
        Site::FutexWake,
        &[Handoff::Futex, Handoff::MsgRingSync, Handoff::EventFd],
    ),
    (
        Site::FutexWait,
        &[Handoff::Futex, Handoff::MsgRingSync, Handoff::EventFd],
    ),
    (Site::EventfdWrite, &[Handoff::EventFd]),
    (Site::SyncMsg, &[Handoff::MsgRingSync]),
    (Site::WorkerEnter, &[Handoff::MsgRing]),
    (Site::PipeWrite, &[Handoff::Pipe]),
    (Site::PipeRead, &[Handoff::Pipe]),
];

const ERRNOS: [(i32, &str); 4] = [
    (libc::EAGAIN, "EAGAIN"),
    (libc::ENOMEM, "ENOMEM"),
    (libc::EBADF, "EBADF"),
    (libc::EINTR, "EINTR"),
];

/// What a scenario ended with.
#[derive(Debug)]
enum Outcome {
    /// Every job completed exactly once.
    Ok,
    /// No progress for the stall limit; the description says where.
    Stalled(String),
}

/// Runs `jobs` jobs (one at a time, then in bursts) through `lp`, waiting in
/// the kernel without the library's help so that a lost announcement shows
/// up as a stall: the loop flushes, then blocks in `io_uring_enter` for a
/// CQE with a long timeout, as a real loop would block without one. If that
/// wait times out while a trivial job is out, the announcement was lost or
/// the job is stranded, and the scenario reports which. `condvar` and
/// `spin` have no announcement and use `submit_and_wait`. `progress` is
/// bumped per completion. `pause` is slept before each submission, so that
/// an idle worker has parked by then whatever the scheduler does (on a busy
/// machine a woken loop can preempt the worker before it parks, every time).
fn run_jobs(
    lp: &mut LoopHandle<u64>,
    ring: &mut IoUring,
    jobs: u64,
    limit: Duration,
    pause: Duration,
    progress: &dyn Fn(),
) -> Outcome {
    let mut seen = HashSet::new();
    let mut next = 0u64;
    let mut done = 0u64;
    let burst_max = lp.capacity().min(8);
    while done < jobs {
        // Alternate single round trips and bursts.
        let burst = if (next / 8) % 2 == 0 { 1 } else { burst_max };
        if !pause.is_zero() && lp.in_flight() == 0 {
            std::thread::sleep(pause);
        }
        while lp.in_flight() < burst && next < jobs {
            let v = next;
            match lp.try_submit(move || v * 3) {
                Ok(_) => next += 1,
                Err(e) => return Outcome::Stalled(format!("try_submit refused: {e}")),
            }
        }
        let mut timed_out = false;
        loop {
            let mut got = false;
            for c in lp.completions() {
                let v = match c.result {
                    Ok(v) => v,
                    Err(e) => return Outcome::Stalled(format!("job {:?} failed: {e}", c.id)),
                };
                assert!(seen.insert(c.id), "completion {:?} seen twice", c.id);
                assert_eq!(v % 3, 0);
                done += 1;
                got = true;
                progress();
            }
            if timed_out {
                let what = if got {
                    "the result was in the loop's queue, but no announcement (CQE) came"
                } else {
                    "the job was not run: a worker wake was lost"
                };
                return Outcome::Stalled(format!(
                    "the loop slept {limit:?} with {} job(s) in flight after {done} of {jobs} \
                     completions: {what}; loop {:?}",
                    lp.in_flight() + usize::from(got),
                    lp.stats()
                ));
            }
            if got || lp.in_flight() == 0 {
                break;
            }
            match lp.handoff() {
                Handoff::Condvar | Handoff::Spin => {
                    lp.submit_and_wait(ring, 1).expect("submit_and_wait");
                }
                _ => {
                    lp.flush(ring).expect("flush");
                    let ts = io_uring::types::Timespec::from(limit);
                    let args = io_uring::types::SubmitArgs::new().timespec(&ts);
                    match ring.submitter().submit_with_args(1, &args) {
                        Ok(_) => {}
                        Err(e) if e.raw_os_error() == Some(libc::ETIME) => timed_out = true,
                        Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                        Err(e) => panic!("io_uring_enter: {e}"),
                    }
                }
            }
            lp.reap(ring, |cqe| panic!("unexpected CQE {cqe:?}"));
        }
    }
    Outcome::Ok
}

/// Injects `count` failures of `errno` at `site`, on a one-worker pool that
/// sleeps at once (so the wait and wake paths are taken), and runs jobs.
fn scenario(
    h: Handoff,
    site: Site,
    errno: i32,
    count: u64,
    jobs: u64,
    dog: &Watchdog,
) -> (Outcome, u64) {
    let pool = Pool::builder()
        .workers(1)
        .handoff(h)
        .spin(Duration::ZERO)
        .loop_spin(Duration::ZERO)
        .build()
        .unwrap_or_else(|e| panic!("building a {h} pool: {e}"));
    let mut ring = IoUring::new(32).expect("ring");
    let mut lp = pool.register::<u64>(&mut ring).expect("register");
    // Let the worker fall asleep before arming, so the first job needs a wake.
    std::thread::sleep(Duration::from_millis(2));
    fault::inject(site, errno, count);
    // The sites a worker reaches only while parking or parked need it parked.
    let pause = match site {
        Site::FutexWait | Site::WorkerEnter | Site::PipeRead => Duration::from_millis(1),
        _ => Duration::ZERO,
    };
    let outcome = run_jobs(&mut lp, &mut ring, jobs, stall_limit(), pause, &|| {
        dog.bump()
    });
    let left = fault::remaining(site);
    fault::clear();
    match outcome {
        Outcome::Ok => {
            assert!(
                lp.close(&mut ring, |cqe| panic!("unexpected CQE {cqe:?}"))
                    .is_empty(),
                "{h}, {site:?}: completions left after every job was taken"
            );
            drop(pool);
        }
        Outcome::Stalled(_) => {
            // A stranded worker would hang close and drop: leak this pool
            // (its threads stay asleep) and go on with the next scenario.
            std::mem::forget(lp);
            std::mem::forget(pool);
            std::mem::forget(ring);
        }
    }
    (outcome, count - left)
}

/// Runs every (site, errno) pair on every mechanism that makes the call, with
/// `count` consecutive failures; returns the failures found. A scenario in
/// which the injected fault never fired tested nothing, and is a failure
/// too. A mechanism that cannot be tested here is skipped through
/// [`util::skip`].
fn matrix(test: &str, count: u64, jobs: u64) -> Vec<String> {
    let mut failures = Vec::new();
    for (site, mechs) in SITES {
        for &h in mechs {
            if util::skip_if_untestable(test, h) {
                continue;
            }
            for (errno, name) in ERRNOS {
                let what = format!("{h}, {site:?} failing {count}x with {name}");
                let dog = Watchdog::start(format!("fault matrix: {what}"), stall_limit() * 3, None);
                let (outcome, hit) = scenario(h, site, errno, count, jobs, &dog);
                match outcome {
                    Outcome::Ok if hit == 0 => {
                        println!("FAIL {what}: the fault never fired");
                        failures.push(format!(
                            "{what}: the injected fault never fired in {jobs} jobs, so the \
                             scenario tested nothing"
                        ));
                    }
                    Outcome::Ok => println!("ok   {what}: {hit} injected failure(s) absorbed"),
                    Outcome::Stalled(why) => {
                        println!("FAIL {what}: {why}");
                        failures.push(format!("{what}: {why}"));
                    }
                }
            }
        }
    }
    failures
}

/// A few consecutive failures at each site: each one is retried (or turned
/// into a typed error) and every job's completion arrives.
#[test]
fn transient_failures_at_every_site() {
    let _g = serial();
    let failures = matrix("transient_failures_at_every_site", 3, 40);
    assert!(
        failures.is_empty(),
        "jobs lost or stranded:\n  {}",
        failures.join("\n  ")
    );
}

/// Failures that last long (200 in a row): the pool must still deliver every
/// result once the kernel recovers. Workers retry an announcement until it
/// succeeds or its loop closes.
#[test]
fn persistent_failures_at_every_site() {
    let _g = serial();
    let failures = matrix("persistent_failures_at_every_site", 200, 10);
    assert!(
        failures.is_empty(),
        "jobs lost or stranded:\n  {}",
        failures.join("\n  ")
    );
}

/// Builds `b` on another thread and waits for it at most `limit`: a build
/// that hangs (a worker that cannot be stopped) fails the test instead of
/// hanging it.
fn build_within(b: PoolBuilder, limit: Duration, what: &str) -> Result<Pool, ringpool::Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(b.build());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: build did not return within {limit:?}"))
}

/// `e` is the failure of the EAGAIN injected at `site` (a spawn).
fn assert_spawn_error(e: &ringpool::Error, site: Site, what: &str) {
    assert_eq!(e.kind(), ErrorKind::Spawn, "{what}: {e}");
    let errno = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(|s| s.raw_os_error());
    assert_eq!(errno, Some(libc::EAGAIN), "{what}: {e}");
    assert_eq!(
        fault::remaining(site),
        0,
        "{what}: the injected failure was not the one that failed the build"
    );
}

/// No thread named `prefix*` is left: the workers were stopped and joined.
/// A joined thread may linger in /proc for a moment, so this waits (bounded).
fn assert_no_worker_left(prefix: &str, what: &str) {
    let left = util::wait_until_no_thread_named(prefix, Duration::from_secs(30));
    assert!(
        left.is_empty(),
        "{what}: worker threads left behind: {left:?}"
    );
}

/// A worker that cannot be spawned: `build` fails with `ErrorKind::Spawn`
/// (the spawn's errno as its source), and every worker already started is
/// stopped and joined (no thread is left behind, nothing hangs). On every
/// mechanism, both when the first spawn fails and when a later one does
/// (after some workers started).
#[test]
fn spawn_failure_leaks_no_thread() {
    const TEST: &str = "spawn_failure_leaks_no_thread";
    let _g = serial();
    let prefix = "rpspawn";
    let limit = stall_limit() * 2;
    assert_no_worker_left(prefix, "before the test");
    for h in Handoff::ALL {
        if util::skip_if_untestable(TEST, h) {
            continue;
        }
        let builder = |workers| {
            Pool::builder()
                .workers(workers)
                .handoff(h)
                .spin(Duration::ZERO)
                .thread_name(prefix)
        };
        // The first spawn fails: no worker was ever started.
        fault::inject(Site::Spawn, libc::EAGAIN, 1);
        let what = format!("{h}, first spawn fails");
        let e = build_within(builder(4), limit, &what).expect_err("spawn was made to fail");
        assert_spawn_error(&e, Site::Spawn, &what);
        assert_no_worker_left(prefix, &what);
        fault::clear();

        // A later spawn fails: another thread arms the fault as soon as the
        // first worker shows up, while the builder is still spawning the
        // others. The window is racy (the build may finish first, then it
        // is simply tried again), but wide: 128 spawns.
        let what = format!("{h}, a later spawn fails");
        let mut attempts = 0;
        let started = loop {
            attempts += 1;
            assert!(
                attempts <= 100,
                "{what}: in 100 attempts the build always finished before the fault \
                 could be armed; the later-spawn case went untested"
            );
            let arm = std::thread::spawn(move || {
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(30) {
                    let n = util::threads_named(prefix).len();
                    if n > 0 {
                        fault::inject(Site::Spawn, libc::EAGAIN, 1);
                        return n;
                    }
                    std::hint::spin_loop();
                }
                0
            });
            let r = build_within(builder(128), limit, &what);
            let seen = arm.join().unwrap();
            match r {
                Err(e) => {
                    assert!(
                        seen > 0,
                        "{what}: the build failed before the fault was armed"
                    );
                    assert_spawn_error(&e, Site::Spawn, &what);
                    assert_no_worker_left(prefix, &what);
                    fault::clear();
                    break seen;
                }
                Ok(p) => {
                    // Too late: the fault went in after the last spawn.
                    assert_eq!(p.workers(), 128);
                    drop(p);
                    assert_no_worker_left(prefix, &format!("{what}: a pool that built"));
                    fault::clear();
                }
            }
        };
        println!(
            "{what}: Spawn error after {started}+ worker(s) had started \
             (attempt {attempts}); all stopped and joined"
        );
    }
    // And a pool builds normally afterwards.
    let p = build_within(Pool::builder().workers(2), limit, "after the faults").expect("build");
    assert_eq!(p.workers(), 2);
    drop(p);
}

/// `runtime::per_core` whose third thread cannot be spawned: it fails with
/// `ErrorKind::Spawn` (the errno as its source), and the two threads
/// already spawned never run `main` and are joined: no runtime thread is
/// left serving behind the error.
#[test]
fn per_core_spawn_failure_leaves_no_thread_running() {
    let _g = serial();
    let limit = stall_limit();
    let pool = Pool::builder().workers(1).build().expect("pool");
    assert_no_worker_left("ringpool-rt-", "before the test");
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    fault::inject_after(Site::RuntimeSpawn, libc::EAGAIN, 2, 1);
    let (tx, rx) = std::sync::mpsc::channel();
    let builder = ringpool::runtime::Runtime::builder().pool(pool);
    let counted = ran.clone();
    std::thread::spawn(move || {
        let r = ringpool::runtime::per_core(3, false, builder, move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // A server: it would run for ever.
            std::future::pending::<()>()
        });
        let _ = tx.send(r.map(|_| ()));
    });
    let r = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("per_core did not return within {limit:?}"));
    let e = r.expect_err("the third spawn was made to fail");
    assert_spawn_error(&e, Site::RuntimeSpawn, "per_core");
    assert!(e.to_string().contains("runtime thread"), "{e}");
    assert_no_worker_left("ringpool-rt-", "after the failed per_core");
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0, "main ran");
}

/// A loop ring with the smallest CQ the kernel allows, flooded with jobs and
/// the loop's own NOPs: nothing is lost (NODROP) and nothing hangs.
#[test]
fn minimum_cq_under_flood() {
    let _g = serial();
    let limit = stall_limit();
    for h in Handoff::ALL {
        if util::skip_if_untestable("minimum_cq_under_flood", h) {
            continue;
        }
        let pool = Pool::builder()
            .workers(2)
            .handoff(h)
            .max_in_flight(256)
            .build()
            .expect("build");
        let dog = Watchdog::start(format!("minimum CQ flood, {h}"), limit, Some(pool.clone()));
        let mut ring = IoUring::new(1).expect("ring"); // SQ 1, CQ 2
        let mut lp = pool.register::<u64>(&mut ring).expect("register");
        let n = 20_000u64;
        let (mut next, mut done, mut nops_out, mut nops_in) = (0u64, 0u64, 0u64, 0u64);
        let mut seen = HashSet::new();
        while done < n {
            while next < n && lp.try_submit(move || next).is_ok() {
                next += 1;
            }
            // Some I/O of the loop's own competes for the CQ.
            let nop = opcode::Nop::new().build().user_data(7);
            // SAFETY: a NOP references no memory.
            if unsafe { ring.submission().push(&nop) }.is_ok() {
                nops_out += 1;
            }
            lp.submit_and_wait(&mut ring, 1).expect("submit_and_wait");
            lp.reap(&mut ring, |cqe| {
                assert_eq!(cqe.user_data(), 7);
                nops_in += 1;
            });
            for c in lp.completions() {
                assert!(seen.insert(c.id));
                c.result.expect("value");
                done += 1;
            }
            dog.tick(done);
        }
        // Drain the remaining NOP completions.
        while nops_in < nops_out {
            ring.submit_and_wait(1).expect("wait");
            lp.reap(&mut ring, |_| nops_in += 1);
        }
        assert!(
            lp.close(&mut ring, |cqe| panic!("unexpected CQE {cqe:?}"))
                .is_empty(),
            "{h}: completions left after every job was taken"
        );
        assert_eq!(nops_in, nops_out, "{h}");
        println!(
            "{h}: {n} jobs and {nops_out} NOPs through a {}-entry CQ",
            ring.params().cq_entries()
        );
        drop(dog);
    }
}

/// `Announce::PerJob` with the smallest CQ that fits the in-flight limit.
#[test]
fn per_job_minimum_cq() {
    let _g = serial();
    for h in [Handoff::MsgRing, Handoff::MsgRingSync] {
        if util::skip_if_untestable("per_job_minimum_cq", h) {
            continue;
        }
        let pool = Pool::builder()
            .workers(2)
            .handoff(h)
            .announce(Announce::PerJob)
            .max_in_flight(4)
            .build()
            .expect("build");
        // Too small a CQ for the in-flight limit is a typed error.
        let mut small = IoUring::new(1).expect("ring");
        let e = pool.register::<u64>(&mut small).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        let mut ring = IoUring::builder().setup_cqsize(8).build(2).expect("ring");
        let mut lp = pool.register::<u64>(&mut ring).expect("register");
        assert_eq!(
            run_jobs(
                &mut lp,
                &mut ring,
                5_000,
                stall_limit(),
                Duration::ZERO,
                &|| {}
            )
            .to_ok(),
            Ok(())
        );
        assert!(
            lp.close(&mut ring, |cqe| panic!("unexpected CQE {cqe:?}"))
                .is_empty(),
            "{h}: completions left after every job was taken"
        );
    }
}

impl Outcome {
    fn to_ok(&self) -> Result<(), String> {
        match self {
            Outcome::Ok => Ok(()),
            Outcome::Stalled(s) => Err(s.clone()),
        }
    }
}
