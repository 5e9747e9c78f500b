//! Fault injection (feature `fault-injection`): a loop CQ of the minimum
//! size under a flood, system calls failing at every [`Site`] with EAGAIN,
//! ENOMEM, EBADF and EINTR, and worker spawns that fail. (Forced `auto`
//! fallbacks through `RINGPOOL_UNSUPPORTED` are tested once, in
//! `tests/conformance.rs`, which needs no feature.)
//!
//! ```text
//! cargo test --release --features fault-injection --test fault
//! ```
//!
//! The injection table is process-global, so every test holds [`SERIAL`].
//! A lost job or a hang is caught by a no-progress limit
//! (`RINGPOOL_FAULT_STALL_SECS`, default 30 s) and reported with its
//! scenario instead of hanging CI.

mod util;

use io_uring::{opcode, IoUring};
use ringpool::fault::{self, Site};
use ringpool::{Announce, Capabilities, ErrorKind, Handoff, LoopHandle, Pool};
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

fn available(h: Handoff) -> bool {
    h.unsupported_reason(Capabilities::get()).is_none()
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

/// Combinations known to strand a job. Empty: the loop now retries a failed
/// direct wake of a claimed worker (`PoolShared::wake_direct`), and
/// `PoolOwner::stop` wakes workers left `NOTIFIED`. Kept so that a future
/// regression can be parked here with a reason while it is fixed.
const KNOWN_BUGS: &[(Site, Handoff)] = &[];

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
/// bumped per completion.
fn run_jobs(
    lp: &mut LoopHandle<u64>,
    ring: &mut IoUring,
    jobs: u64,
    limit: Duration,
    progress: &dyn Fn(),
) -> Outcome {
    let mut seen = HashSet::new();
    let mut next = 0u64;
    let mut done = 0u64;
    let burst_max = lp.capacity().min(8);
    while done < jobs {
        // Alternate single round trips and bursts.
        let burst = if (next / 8) % 2 == 0 { 1 } else { burst_max };
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
    let outcome = run_jobs(&mut lp, &mut ring, jobs, stall_limit(), &|| dog.bump());
    let left = fault::remaining(site);
    fault::clear();
    match outcome {
        Outcome::Ok => {
            drop(lp.close(&mut ring, |_| {}));
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
/// `count` consecutive failures; returns the failures found.
fn matrix(count: u64, jobs: u64) -> Vec<String> {
    let mut failures = Vec::new();
    for (site, mechs) in SITES {
        for &h in mechs {
            if !available(h) {
                println!(
                    "skip {h}: {}",
                    h.unsupported_reason(Capabilities::get()).unwrap()
                );
                continue;
            }
            if KNOWN_BUGS.contains(&(site, h))
                && std::env::var_os("RINGPOOL_FAULT_KNOWN_BUGS").is_none()
            {
                println!("KNOWN BUG, skipped: {h}, {site:?} (set RINGPOOL_FAULT_KNOWN_BUGS=1)");
                continue;
            }
            for (errno, name) in ERRNOS {
                let what = format!("{h}, {site:?} failing {count}x with {name}");
                let dog = Watchdog::start(format!("fault matrix: {what}"), stall_limit() * 3, None);
                let (outcome, hit) = scenario(h, site, errno, count, jobs, &dog);
                match outcome {
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
    let failures = matrix(3, 40);
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
    let failures = matrix(200, 10);
    assert!(
        failures.is_empty(),
        "jobs lost or stranded:\n  {}",
        failures.join("\n  ")
    );
}

/// A worker that cannot be spawned: `build` fails with `ErrorKind::Spawn`
/// and no worker thread is left behind, whether the first spawn fails or a
/// later one (after some workers started).
#[test]
fn spawn_failure_leaks_no_thread() {
    let _g = serial();
    let prefix = "rpspawn";
    for h in Handoff::ALL.into_iter().filter(|&h| available(h)) {
        // The first spawn fails.
        fault::inject(Site::Spawn, libc::EAGAIN, 1);
        let e = Pool::builder()
            .workers(4)
            .handoff(h)
            .thread_name(prefix)
            .build()
            .expect_err("spawn was made to fail");
        assert_eq!(e.kind(), ErrorKind::Spawn, "{h}: {e}");
        assert!(
            util::threads_named(prefix).is_empty(),
            "{h}: threads leaked"
        );
        fault::clear();
    }
    // A later spawn fails: arm the fault from another thread as soon as the
    // first worker shows up. The window is racy, so try a few times.
    let mut partial = 0;
    for _ in 0..20 {
        let arm = std::thread::spawn(move || {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if !util::threads_named(prefix).is_empty() {
                    fault::inject(Site::Spawn, libc::EAGAIN, 1);
                    return;
                }
                std::hint::spin_loop();
            }
        });
        let r = Pool::builder()
            .workers(256)
            .handoff(Handoff::Condvar)
            .thread_name(prefix)
            .build();
        arm.join().unwrap();
        match r {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Spawn, "{e}");
                partial += 1;
            }
            Ok(p) => drop(p),
        }
        assert!(util::threads_named(prefix).is_empty(), "threads leaked");
        fault::clear();
    }
    println!("spawn failed after some workers had started in {partial} of 20 tries");
    // And the pool builds normally afterwards.
    let p = Pool::builder().workers(2).build().expect("build");
    drop(p);
}

/// A loop ring with the smallest CQ the kernel allows, flooded with jobs and
/// the loop's own NOPs: nothing is lost (NODROP) and nothing hangs.
#[test]
fn minimum_cq_under_flood() {
    let _g = serial();
    let limit = stall_limit();
    for h in Handoff::ALL.into_iter().filter(|&h| available(h)) {
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
        drop(lp.close(&mut ring, |_| nops_in += 1));
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
        if !available(h) {
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
            run_jobs(&mut lp, &mut ring, 5_000, stall_limit(), &|| {}).to_ok(),
            Ok(())
        );
        drop(lp.close(&mut ring, |_| {}));
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
