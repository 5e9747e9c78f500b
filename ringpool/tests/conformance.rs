//! One behavioural suite, run against every handoff mechanism.
//!
//! `conformance!` expands every scenario below once per [`Handoff`]. A
//! mechanism this kernel lacks (or the caller's `RINGPOOL_HANDOFF` /
//! `RINGPOOL_UNSUPPORTED` excludes) is skipped through [`util::skip`], which
//! counts and prints it; skipping a supported mechanism fails. Scenarios:
//! many trivial jobs with correct results; several workers really running at
//! once; jobs interleaved with real I/O on the same ring (a DEFER_TASKRUN
//! ring), with the order of events checked; panicking jobs; closing and
//! dropping with jobs in flight, flushed or never flushed (drop counters
//! prove every captured state is dropped exactly once); a tiny CQ under a flood; and the per-job announce
//! mode where it exists. `auto` fallback through the environment overrides
//! is tested in child processes with a clean environment.

// The public API is compiled out under `--cfg loom` (only the models' shim is
// there): this suite runs without it (`tests/loom.rs` is the one that runs with it).
#![cfg(not(loom))]

mod util;

use io_uring::{opcode, types, IoUring};
use ringpool::{Announce, Handoff, JobError, LoopHandle, LoopWait, Pool, Shutdown, TrySubmitError};
use std::collections::HashSet;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Builds a pool for `h` (`workers` workers, then `tweak`), or skips `h`
/// through [`util::build_or_skip`].
fn pool(
    test: &str,
    h: Handoff,
    workers: usize,
    tweak: impl FnOnce(ringpool::PoolBuilder) -> ringpool::PoolBuilder,
) -> Option<Pool> {
    util::build_or_skip(test, tweak(Pool::builder().workers(workers)), h)
}

/// A ring as a modern loop would build it.
fn defer_ring(entries: u32) -> IoUring {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .setup_submit_all()
        .build(entries)
        .expect("DEFER_TASKRUN ring")
}

/// Runs the loop until `done` says so, failing loudly (instead of hanging)
/// if nothing at all happens for 60 s.
fn drive<R: Send + 'static>(
    lp: &mut LoopHandle<R>,
    ring: &mut IoUring,
    mut on_io: impl FnMut(io_uring::cqueue::Entry),
    mut done: impl FnMut(&mut LoopHandle<R>) -> bool,
) {
    let mut last = (lp.stats().completed, Instant::now());
    while !done(lp) {
        // Wait only when a result is owed: with nothing in flight, `done`
        // must submit more (condvar and spin have no CQE to end a wait).
        if lp.in_flight() > 0 {
            lp.submit_and_wait(ring, 1).expect("submit_and_wait");
        }
        lp.reap(ring, &mut on_io);
        let c = lp.stats().completed;
        if c != last.0 {
            last = (c, Instant::now());
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(60),
            "{}: no progress for 60 s with {} in flight: {:?}",
            lp.handoff(),
            lp.in_flight(),
            lp.stats()
        );
    }
}

/// Submits one job and drives the loop until its value comes back.
fn run_one<R: Send + 'static>(
    lp: &mut LoopHandle<R>,
    ring: &mut IoUring,
    job: impl FnOnce() -> R + Send + 'static,
) -> R {
    let id = lp.try_submit(job).unwrap();
    let mut v = None;
    drive(
        lp,
        ring,
        |_| {},
        |lp| {
            for c in lp.completions() {
                assert_eq!(c.id, id);
                v = Some(c.result.unwrap());
            }
            v.is_some()
        },
    );
    v.unwrap()
}

fn many_jobs(h: Handoff, announce: Announce) {
    let n: u64 = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let Some(pool) = pool("many_jobs", h, 2, |b| {
        b.announce(announce).max_in_flight(256)
    }) else {
        return;
    };
    let mut ring = IoUring::new(256).unwrap();
    let mut lp = pool.register::<u64>(&mut ring).unwrap();
    let mut seen = vec![false; n as usize];
    let (mut next, mut got) = (0u64, 0u64);
    drive(
        &mut lp,
        &mut ring,
        |c| panic!("foreign CQE {c:?}"),
        |lp| {
            while next < n {
                let i = next;
                match lp.try_submit(move || i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 7) {
                    Ok(id) => assert_eq!(id.get(), i, "ids are sequential"),
                    Err(TrySubmitError::Full(_)) => break,
                    Err(TrySubmitError::Closed(_)) => panic!("closed"),
                }
                next += 1;
            }
            for c in lp.completions() {
                let i = c.id.get();
                assert!(
                    !std::mem::replace(&mut seen[i as usize], true),
                    "job {i} completed twice"
                );
                assert_eq!(c.result.unwrap(), i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 7);
                got += 1;
            }
            got == n
        },
    );
    assert!(seen.iter().all(|&s| s));
    assert_eq!(lp.in_flight(), 0);
    let s = lp.stats();
    assert_eq!((s.submitted, s.completed), (n, n));
    drop(lp);
    assert_eq!(pool.stats().jobs_run, n);
    println!(
        "{h} ({announce:?}): {n} jobs, loop {:?}, pool {:?}",
        s,
        pool.stats()
    );
}

/// Two jobs that can only finish if two workers run them at the same time.
fn several_workers(h: Handoff) {
    let Some(pool) = pool("several_workers", h, 4, |b| b) else {
        return;
    };
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<String>(&mut ring).unwrap();
    let barrier = Arc::new(Barrier::new(2));
    for _ in 0..2 {
        let b = barrier.clone();
        lp.try_submit(move || {
            b.wait();
            std::thread::current().name().unwrap_or("?").to_owned()
        })
        .unwrap();
    }
    let mut names = HashSet::new();
    drive(
        &mut lp,
        &mut ring,
        |_| {},
        |lp| {
            for c in lp.completions() {
                names.insert(c.result.unwrap());
            }
            names.len() == 2
        },
    );
    assert!(
        names.iter().all(|n| n.starts_with("ringpool-worker-")),
        "{names:?}"
    );
}

/// One event of [`interleaved_with_io`]'s loop, in the order the loop saw it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Ev {
    /// `submit_and_wait` returned: a new loop turn begins. `sq_left` is what
    /// it left in the SQ (unsubmitted).
    Wait { sq_left: usize },
    /// The read SQE for message `k` was queued.
    ArmRead(usize),
    /// The read CQE of message `k` was reaped.
    Read(usize),
    /// The job for message `k` was submitted.
    Job(usize),
    /// The result of message `k`'s job was taken.
    Result(usize),
    /// The timeout SQE was queued.
    ArmTick,
    /// The timeout CQE was reaped.
    Tick,
}

/// Checks what [`interleaved_with_io`]'s doc comment promises against the
/// recorded `events` of `msgs` messages: each message is read through the
/// ring and becomes a job at once; the next read is queued right behind the
/// result that triggers it, in the same loop turn (before the next wait),
/// goes out with the next `io_uring_enter`, and its CQE arrives in a later
/// turn; the timeout repeats alongside the I/O.
fn check_io_order(events: &[Ev], msgs: usize) -> Result<(), String> {
    let mut turn = Vec::with_capacity(events.len());
    let mut t = 0usize;
    for e in events {
        if matches!(e, Ev::Wait { .. }) {
            t += 1;
        }
        turn.push(t);
    }
    let find_one = |want: Ev| -> Result<usize, String> {
        let mut at = events.iter().enumerate().filter(|(_, e)| **e == want);
        match (at.next(), at.next()) {
            (Some((i, _)), None) => Ok(i),
            (None, _) => Err(format!("{want:?} never happened")),
            (Some((i, _)), Some((j, _))) => Err(format!("{want:?} twice, at {i} and {j}")),
        }
    };
    let first_wait_after = |i: usize| {
        events[i..]
            .iter()
            .position(|e| matches!(e, Ev::Wait { .. }))
            .map(|p| i + p)
    };
    for k in 0..msgs {
        let arm = find_one(Ev::ArmRead(k))?;
        let read = find_one(Ev::Read(k))?;
        let job = find_one(Ev::Job(k))?;
        let result = find_one(Ev::Result(k))?;
        // The next read right behind this result, in the same turn.
        if k == 0 {
            if arm != 0 {
                return Err(format!("read 0 was queued at event {arm}, not first"));
            }
        } else {
            let prev = find_one(Ev::Result(k - 1))?;
            if arm != prev + 1 || turn[arm] != turn[prev] {
                return Err(format!(
                    "read {k} was queued at event {arm} (turn {}), not right behind result {} \
                     at event {prev} (turn {}): {:?}",
                    turn[arm],
                    k - 1,
                    turn[prev],
                    &events[prev..(prev + 4).min(events.len())]
                ));
            }
        }
        // The read went out with the next enter, and its CQE came later.
        let Some(w) = first_wait_after(arm) else {
            return Err(format!(
                "read {k} was queued (event {arm}) but the loop never waited"
            ));
        };
        if events[w] != (Ev::Wait { sq_left: 0 }) {
            return Err(format!(
                "the wait after queueing read {k} left SQEs unsubmitted: {:?}",
                events[w]
            ));
        }
        if read < w || turn[read] <= turn[arm] {
            return Err(format!(
                "read {k}'s CQE (event {read}, turn {}) did not come after its SQE went out \
                 (queued at event {arm}, turn {})",
                turn[read], turn[arm]
            ));
        }
        // Each message becomes a job at once.
        if job != read + 1 {
            return Err(format!(
                "message {k} was read at event {read} but its job was submitted at event {job}"
            ));
        }
        if result < job {
            return Err(format!(
                "job {k}'s result (event {result}) came before its submission"
            ));
        }
    }
    if events
        .iter()
        .any(|e| matches!(e, Ev::ArmRead(k) if *k >= msgs))
    {
        return Err("a read was queued past the last message".into());
    }
    // The timeout repeats, each re-armed right behind the tick before it,
    // and fires while messages are still flowing.
    let ticks: Vec<usize> = (0..events.len())
        .filter(|&i| events[i] == Ev::Tick)
        .collect();
    let arms: Vec<usize> = (0..events.len())
        .filter(|&i| events[i] == Ev::ArmTick)
        .collect();
    if ticks.len() < 2 {
        return Err(format!(
            "the timeout fired {} time(s), not repeatedly",
            ticks.len()
        ));
    }
    if arms.len() != ticks.len() {
        return Err(format!(
            "{} timeouts armed, {} fired",
            arms.len(),
            ticks.len()
        ));
    }
    for (n, (&a, &f)) in arms.iter().zip(&ticks).enumerate() {
        if turn[f] <= turn[a] {
            return Err(format!(
                "tick {n} fired (event {f}) before it was armed (event {a})"
            ));
        }
        if n > 0 && a != ticks[n - 1] + 1 {
            return Err(format!(
                "tick {n} was not re-armed right behind tick {}",
                n - 1
            ));
        }
    }
    let last_read = find_one(Ev::Read(msgs - 1))?;
    if ticks[0] > last_read {
        return Err("no tick fired while messages were still being read".into());
    }
    Ok(())
}

/// The loop reads messages from a socket through its ring; each message
/// becomes a job; each job's completion queues the next read right after
/// (the question's pattern). A repeating timeout runs alongside. Uses a
/// SINGLE_ISSUER | DEFER_TASKRUN ring. [`check_io_order`] asserts all of
/// this from the recorded events.
fn interleaved_with_io(h: Handoff) {
    const MSGS: usize = 200;
    let Some(pool) = pool("interleaved_with_io", h, 2, |b| b) else {
        return;
    };
    let mut ring = defer_ring(64);
    assert!(ring.params().is_setup_single_issuer());
    let mut lp = pool.register::<(usize, u64)>(&mut ring).unwrap();
    let (mut tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
    // The writer holds back the second half of the messages until the loop
    // has seen a tick: so a tick always falls among the reads.
    let (ticked_tx, ticked) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        for i in 0..MSGS {
            if i == MSGS / 2 {
                ticked
                    .recv_timeout(Duration::from_secs(60))
                    .expect("the loop saw no tick in 60 s");
            }
            tx.write_all(&(i as u64).to_le_bytes()).unwrap();
            if i % 16 == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        tx
    });
    const READ: u64 = 1;
    const TICK: u64 = 2;
    let mut buf = [0u8; 8];
    let ts = types::Timespec::new().nsec(500_000);
    let arm_read = |ring: &mut IoUring, buf: &mut [u8; 8]| {
        let sqe = opcode::Read::new(types::Fd(rx.as_raw_fd()), buf.as_mut_ptr(), 8)
            .build()
            .user_data(READ);
        // SAFETY: `buf` outlives the read: we wait for its CQE before rearming or returning.
        unsafe { ring.submission().push(&sqe).unwrap() };
    };
    let arm_tick = |ring: &mut IoUring| {
        let sqe = opcode::Timeout::new(&ts).build().user_data(TICK);
        // SAFETY: `ts` lives until the end of the function, after the last tick is reaped.
        unsafe { ring.submission().push(&sqe).unwrap() };
    };
    let mut events = Vec::new();
    arm_read(&mut ring, &mut buf);
    events.push(Ev::ArmRead(0));
    arm_tick(&mut ring);
    events.push(Ev::ArmTick);
    let (mut reads, mut results, mut read_pending, mut tick_pending) = (0, 0, true, true);
    let mut ticked_tx = Some(ticked_tx);
    let started = Instant::now();
    while results < MSGS || read_pending || tick_pending {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{h}: stuck after {reads} reads and {results} results: {:?}",
            lp.stats()
        );
        lp.submit_and_wait(&mut ring, 1).unwrap();
        events.push(Ev::Wait {
            sq_left: ring.submission().len(),
        });
        let mut io = Vec::new();
        lp.reap(&mut ring, |c| io.push(c));
        for c in io {
            match c.user_data() {
                READ => {
                    read_pending = false;
                    assert_eq!(c.result(), 8, "short read");
                    let v = u64::from_le_bytes(buf);
                    assert_eq!(v, reads as u64, "messages in order");
                    events.push(Ev::Read(reads));
                    reads += 1;
                    lp.try_submit(move || (v as usize, v * v)).unwrap();
                    events.push(Ev::Job(v as usize));
                }
                TICK => {
                    tick_pending = false;
                    assert_eq!(c.result(), -libc::ETIME, "a timeout fires with ETIME");
                    events.push(Ev::Tick);
                    if let Some(t) = ticked_tx.take() {
                        t.send(()).unwrap();
                    }
                    if results < MSGS {
                        arm_tick(&mut ring);
                        events.push(Ev::ArmTick);
                        tick_pending = true;
                    }
                }
                other => panic!("unexpected CQE {other:#x}"),
            }
        }
        for c in lp.completions() {
            let (i, sq) = c.result.unwrap();
            assert_eq!(sq, (i * i) as u64);
            assert_eq!(c.id.get(), i as u64, "one job per message, in order");
            results += 1;
            events.push(Ev::Result(i));
            // The next I/O goes out right behind the result.
            if reads < MSGS && !read_pending {
                arm_read(&mut ring, &mut buf);
                events.push(Ev::ArmRead(reads));
                read_pending = true;
            }
        }
    }
    drop(writer.join().unwrap());
    assert_eq!((reads, results), (MSGS, MSGS));
    if let Err(e) = check_io_order(&events, MSGS) {
        panic!("{h}: {e}\nevents: {events:?}");
    }
    assert!(lp
        .close(&mut ring, |c| panic!("foreign CQE {c:?}"))
        .is_empty());
}

/// [`check_io_order`] can fail: a loop that queues the next read one turn
/// late (after the next wait), or leaves it unsubmitted, or never re-arms
/// the timeout, is caught.
#[test]
fn io_order_check_catches_a_late_read() {
    use Ev::*;
    // Two messages, done right.
    let good = vec![
        ArmRead(0),
        ArmTick,
        Wait { sq_left: 0 },
        Read(0),
        Job(0),
        Tick,
        ArmTick,
        Wait { sq_left: 0 },
        Result(0),
        ArmRead(1),
        Wait { sq_left: 0 },
        Read(1),
        Job(1),
        Wait { sq_left: 0 },
        Result(1),
        Wait { sq_left: 0 },
        Tick,
    ];
    assert_eq!(check_io_order(&good, 2), Ok(()));
    // Read 1 queued in the turn after result 0 (after the next wait).
    let late = vec![
        ArmRead(0),
        ArmTick,
        Wait { sq_left: 0 },
        Read(0),
        Job(0),
        Tick,
        ArmTick,
        Wait { sq_left: 0 },
        Result(0),
        Wait { sq_left: 0 },
        ArmRead(1),
        Wait { sq_left: 0 },
        Read(1),
        Job(1),
        Wait { sq_left: 0 },
        Result(1),
        Wait { sq_left: 0 },
        Tick,
    ];
    let e = check_io_order(&late, 2).unwrap_err();
    assert!(e.contains("not right behind result 0"), "{e}");
    // Read 1 queued right behind result 0, but left in the SQ by the wait.
    let mut stuck = good.clone();
    stuck[10] = Wait { sq_left: 1 };
    let e = check_io_order(&stuck, 2).unwrap_err();
    assert!(e.contains("left SQEs unsubmitted"), "{e}");
    // The timeout fired once and was not re-armed.
    let once: Vec<Ev> = good
        .iter()
        .copied()
        .filter(|e| *e != Tick && *e != ArmTick)
        .collect();
    let e = check_io_order(&once, 2).unwrap_err();
    assert!(e.contains("not repeatedly"), "{e}");
}

fn panics_become_errors(h: Handoff) {
    let Some(pool) = pool("panics_become_errors", h, 2, |b| b) else {
        return;
    };
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    let mut ids = HashSet::new();
    for round in 0..3u32 {
        for i in 0..50u32 {
            let id = lp
                .try_submit(move || {
                    if i % 5 == 0 {
                        panic!("job {i} of round {round} fails");
                    }
                    i
                })
                .unwrap();
            ids.insert(id);
        }
    }
    let (mut ok, mut panicked) = (0, 0);
    drive(
        &mut lp,
        &mut ring,
        |_| {},
        |lp| {
            for c in lp.completions() {
                assert!(ids.remove(&c.id));
                match c.result {
                    Ok(v) => {
                        assert_ne!(v % 5, 0);
                        ok += 1
                    }
                    Err(e) => {
                        let msg = e.panic_message().expect("string payload").to_owned();
                        assert!(msg.contains("fails"), "{msg}");
                        assert!(matches!(e, JobError::Panicked(_)));
                        panicked += 1
                    }
                }
            }
            ids.is_empty()
        },
    );
    assert_eq!((ok, panicked), (120, 30));
    // The workers survived: the pool still runs jobs.
    assert_eq!(run_one(&mut lp, &mut ring, || 99), 99);
}

/// Counts drops of what a job captured.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Close (with the ring) and drop (without) while jobs are queued and
/// running: every job ends exactly once, every capture is dropped once.
fn shutdown_with_jobs_in_flight(h: Handoff, policy: Shutdown, with_ring: bool) {
    shutdown_with_jobs(h, policy, with_ring, true)
}

/// The same, but nothing was ever flushed: the jobs were queued and never
/// published to the workers (lanes publish at the flush), or (`pipe`) never
/// written. `close` and `Drop` must still run or cancel every one of them.
fn shutdown_with_unflushed_jobs(h: Handoff, policy: Shutdown, with_ring: bool) {
    shutdown_with_jobs(h, policy, with_ring, false)
}

fn shutdown_with_jobs(h: Handoff, policy: Shutdown, with_ring: bool, flush_first: bool) {
    const N: usize = 200;
    let Some(pool) = pool("shutdown_with_jobs_in_flight", h, 2, |b| b.shutdown(policy)) else {
        return;
    };
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<usize>(&mut ring).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..N {
        let c = Counted(drops.clone());
        let ran = ran.clone();
        lp.try_submit(move || {
            let _keep = &c;
            std::thread::sleep(Duration::from_micros(200));
            ran.fetch_add(1, Ordering::SeqCst);
            i
        })
        .unwrap();
    }
    if flush_first {
        // Let the workers start some of them.
        lp.flush(&mut ring).unwrap();
        ring.submit().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    if with_ring {
        let rest = lp.close(&mut ring, |c| panic!("foreign CQE {c:?}"));
        let (mut done, mut cancelled) = (0, 0);
        let mut tasks = Vec::new();
        for c in rest {
            match c.result {
                Ok(i) => {
                    assert!(i < N);
                    done += 1
                }
                Err(JobError::Cancelled(t)) => {
                    cancelled += 1;
                    tasks.push(t)
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(done + cancelled, N, "every job ends exactly once");
        if policy == Shutdown::Drain {
            assert_eq!(cancelled, 0);
        }
        assert_eq!(ran.load(Ordering::SeqCst), done);
        // A cancelled job is handed back intact: it can still run.
        if let Some(t) = tasks.pop() {
            assert!(t.run() < N);
        }
        drop(tasks);
    } else {
        drop(lp);
        if policy == Shutdown::Drain {
            assert_eq!(ran.load(Ordering::SeqCst), N);
        }
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        N,
        "each capture dropped exactly once"
    );
    drop(pool);
    assert_eq!(drops.load(Ordering::SeqCst), N);
}

/// Closures and results that fit a job cell's inline room and ones that do
/// not (too big, or over-aligned), run, panicking and cancelled: each comes
/// back intact, and each capture is dropped exactly once.
fn payload_sizes(h: Handoff) {
    #[repr(align(64))]
    struct Aligned(u64);
    let Some(pool) = pool("payload_sizes", h, 1, |b| b.shutdown(Shutdown::Cancel)) else {
        return;
    };
    let mut ring = IoUring::new(64).unwrap();
    {
        // A small result (inline), big and over-aligned captures (boxed).
        let mut lp = pool.register::<u64>(&mut ring).unwrap();
        let big = [7u8; 300];
        let sum = move || big.iter().map(|&b| u64::from(b)).sum::<u64>();
        assert_eq!(run_one(&mut lp, &mut ring, sum), 2100);
        let al = Aligned(5);
        assert_eq!(run_one(&mut lp, &mut ring, move || al.0 * 2), 10);
        assert_eq!(run_one(&mut lp, &mut ring, || 3), 3);
        let big = [1u8; 200];
        let id = lp
            .try_submit(move || panic!("boxed closure {}", big[0]))
            .unwrap();
        let mut got = None;
        drive(
            &mut lp,
            &mut ring,
            |_| {},
            |lp| {
                if let Some(c) = lp.completions().next() {
                    assert_eq!(c.id, id);
                    got = Some(c.result);
                }
                got.is_some()
            },
        );
        match got.unwrap() {
            Err(e @ JobError::Panicked(_)) => {
                assert_eq!(e.panic_message(), Some("boxed closure 1"))
            }
            _ => panic!("expected a panic"),
        }
        assert!(lp
            .close(&mut ring, |c| panic!("foreign CQE {c:?}"))
            .is_empty());
    }
    {
        // A big result (boxed).
        let mut lp = pool.register::<[u64; 40]>(&mut ring).unwrap();
        assert_eq!(run_one(&mut lp, &mut ring, || [9u64; 40]), [9; 40]);
        let big = [1u64; 40];
        assert_eq!(run_one(&mut lp, &mut ring, move || big), [1; 40]);
        assert!(lp
            .close(&mut ring, |c| panic!("foreign CQE {c:?}"))
            .is_empty());
    }
    {
        // Cancelled jobs with big captures come back as tasks that still run.
        const N: usize = 10;
        let mut lp = pool.register::<usize>(&mut ring).unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        lp.try_submit(move || {
            started_tx.send(()).unwrap();
            let _ = go_rx.recv();
            N
        })
        .unwrap();
        lp.flush(&mut ring).unwrap();
        ring.submit().unwrap();
        started_rx.recv().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        for i in 0..N {
            let c = Counted(drops.clone());
            let big = [i as u8; 200];
            lp.try_submit(move || {
                let _keep = &c;
                usize::from(big[199])
            })
            .unwrap();
        }
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            go_tx.send(()).unwrap();
        });
        let rest = lp.close(&mut ring, |c| panic!("foreign CQE {c:?}"));
        release.join().unwrap();
        assert_eq!(rest.len(), N + 1);
        let mut values = Vec::new();
        for c in rest {
            match c.result {
                Ok(v) => values.push(v),
                Err(JobError::Cancelled(t)) => values.push(t.run()),
                Err(e) => panic!("{e}"),
            }
        }
        values.sort();
        assert_eq!(values, (0..=N).collect::<Vec<_>>());
        assert_eq!(drops.load(Ordering::SeqCst), N, "each capture dropped once");
    }
}

/// Loops on several threads register and close over and over while others
/// have jobs queued (each closing with jobs still queued, under
/// `Shutdown::Cancel`): every job of a loop comes back to that loop, run or
/// cancelled, exactly once, whatever the pool reuses between loops.
fn loops_come_and_go(h: Handoff) {
    const N: u64 = 300;
    let Some(pool) = pool("loops_come_and_go", h, 2, |b| b.shutdown(Shutdown::Cancel)) else {
        return;
    };
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut ring = IoUring::new(64).unwrap();
                for round in 0..6u64 {
                    let tag = (t * 100 + round) * 1_000_000;
                    let mut lp = pool.register::<u64>(&mut ring).unwrap();
                    let (mut next, mut got) = (0u64, 0u64);
                    let mut seen = HashSet::new();
                    let take = |v: u64, seen: &mut HashSet<u64>| {
                        assert_eq!(
                            v / 1_000_000 * 1_000_000,
                            tag,
                            "a result reached the wrong loop"
                        );
                        assert!(seen.insert(v), "a job came back twice");
                    };
                    drive(
                        &mut lp,
                        &mut ring,
                        |_| {},
                        |lp| {
                            while next < N && lp.try_submit(move || tag + next).is_ok() {
                                next += 1;
                            }
                            for c in lp.completions() {
                                take(c.result.unwrap(), &mut seen);
                                got += 1;
                            }
                            got >= N / 2
                        },
                    );
                    for c in lp.close(&mut ring, |c| panic!("foreign CQE {c:?}")) {
                        match c.result {
                            Ok(v) => take(v, &mut seen),
                            Err(JobError::Cancelled(task)) => take(task.run(), &mut seen),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    assert_eq!(seen.len() as u64, next, "every job came back once");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A 4-entry CQ and far more jobs than that: no loss, no overflow.
fn tiny_cq(h: Handoff, announce: Announce) {
    const N: u64 = 20_000;
    let (cq, max) = match announce {
        Announce::PerJob => (8, 4),
        _ => (4, 64),
    };
    let Some(pool) = pool("tiny_cq", h, 2, |b| b.announce(announce).max_in_flight(max)) else {
        return;
    };
    let mut ring: IoUring = IoUring::builder().setup_cqsize(cq).build(2).unwrap();
    assert_eq!(ring.params().cq_entries(), cq);
    let mut lp = pool.register::<u64>(&mut ring).unwrap();
    let (mut next, mut sum, mut got) = (0u64, 0u64, 0u64);
    drive(
        &mut lp,
        &mut ring,
        |c| panic!("foreign CQE {c:?}"),
        |lp| {
            while next < N && lp.try_submit(move || next).is_ok() {
                next += 1;
            }
            for c in lp.completions() {
                sum += c.result.unwrap();
                got += 1;
            }
            got == N
        },
    );
    assert!(!ring.submission().cq_overflow(), "{h}: the CQ overflowed");
    assert_eq!(sum, N * (N - 1) / 2);
}

fn blocking_submit_waits_by_reaping(h: Handoff) {
    let Some(pool) = pool("blocking_submit", h, 1, |b| b.max_in_flight(2)) else {
        return;
    };
    let mut ring = IoUring::new(8).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    for i in 0..20 {
        lp.submit(&mut ring, move || i, |c| panic!("foreign CQE {c:?}"))
            .unwrap();
        assert!(lp.in_flight() <= 2);
    }
    let mut got: Vec<u32> = lp.completions().map(|c| c.result.unwrap()).collect();
    drive(
        &mut lp,
        &mut ring,
        |_| {},
        |lp| {
            got.extend(lp.completions().map(|c| c.result.unwrap()));
            got.len() == 20
        },
    );
    got.sort();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert!(lp.try_submit(|| 1).is_ok());
    pool.shutdown();
    assert!(matches!(
        lp.try_submit(|| 2),
        Err(TrySubmitError::Closed(_))
    ));
}

/// A result with a value that counts its drops.
struct Numbered(u32, Arc<AtomicUsize>);

impl Drop for Numbered {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// Completions nobody has taken yet never cost a slot or a result: with
/// every slot's job finished and its completion untaken, a submission
/// still finds room, completions come back in submission order, and the
/// ones never taken are dropped (by `close`'s return value or the handle's
/// drop), each once.
fn untaken_completions_leave_room(h: Handoff, announce: Announce) {
    let Some(pool) = pool("untaken_completions", h, 1, |b| {
        b.max_in_flight(4).announce(announce)
    }) else {
        return;
    };
    let drops = Arc::new(AtomicUsize::new(0));
    for close in [true, false] {
        drops.store(0, Ordering::SeqCst);
        let mut ring = defer_ring(16);
        let mut lp = pool.register::<Numbered>(&mut ring).unwrap();
        let mut ids = Vec::new();
        for i in 0..4 {
            let d = drops.clone();
            ids.push(lp.try_submit(move || Numbered(i, d)).unwrap());
        }
        drive(&mut lp, &mut ring, |_| {}, |lp| lp.ready() == 4);
        assert_eq!(lp.in_flight(), 0, "{h}");
        let d = drops.clone();
        let fifth = lp
            .try_submit(move || Numbered(4, d))
            .unwrap_or_else(|_| panic!("{h}: no room with every completion untaken"));
        ids.push(fifth);
        drive(&mut lp, &mut ring, |_| {}, |lp| lp.ready() == 5);
        let first = lp.completions().next().expect("a completion");
        assert_eq!(first.id, ids[0], "{h}: completions out of order");
        assert_eq!(first.result.as_ref().map(|c| c.0).ok(), Some(0));
        drop(first);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{h}");
        if close {
            let rest = lp.close(&mut ring, |_| {});
            let got: Vec<_> = rest.iter().map(|c| c.id).collect();
            assert_eq!(got, ids[1..], "{h}: close returns the rest in order");
            for (c, want) in rest.iter().zip(1..) {
                assert_eq!(c.result.as_ref().map(|c| c.0).ok(), Some(want));
            }
            assert_eq!(
                drops.load(Ordering::SeqCst),
                1,
                "{h}: close dropped a result"
            );
            drop(rest);
        } else {
            drop(lp);
        }
        assert_eq!(
            drops.load(Ordering::SeqCst),
            5,
            "{h}: a result leaked or dropped twice"
        );
    }
}

/// Long jobs go back one by one: with one worker, a job that takes a while
/// is followed by one that waits until the loop has seen the first one's
/// result. A worker that held results until its whole batch was done would
/// never hand the first back, and the second would give up waiting (30 s).
/// (Pacing: a worker claims one job at a time once its jobs are slow; the
/// warm-up jobs make them so.)
fn long_jobs_go_back_one_by_one(h: Handoff) {
    let Some(pool) = pool("long_jobs_go_back_one_by_one", h, 1, |b| b) else {
        return;
    };
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<bool>(&mut ring).unwrap();
    for _ in 0..4 {
        run_one(&mut lp, &mut ring, || {
            std::thread::sleep(Duration::from_millis(2));
            true
        });
    }
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let first = lp
        .try_submit(|| {
            std::thread::sleep(Duration::from_millis(5));
            true
        })
        .unwrap();
    let second = lp
        .try_submit(move || gate.recv_timeout(Duration::from_secs(30)).is_ok())
        .unwrap();
    let mut release = Some(release);
    let mut second_ok = None;
    drive(
        &mut lp,
        &mut ring,
        |_| {},
        |lp| {
            for c in lp.completions() {
                if c.id == first {
                    // The first is back while the second still runs: let it end.
                    let _ = release.take().expect("one first result").send(());
                } else {
                    assert_eq!(c.id, second);
                    second_ok = Some(c.result.expect("no panic"));
                }
            }
            second_ok.is_some()
        },
    );
    assert!(release.is_none(), "the first job's result came back");
    assert_eq!(
        second_ok,
        Some(true),
        "the second job was released by the first one's result, not by its 30 s timeout"
    );
}

/// Thread-per-core sharing one pool: the loop thread pinned to the CPU of
/// one of two pinned workers (which then does not spin, and is woken only
/// when the other is not spinning). Every job comes back, short and long.
fn a_loop_on_a_workers_cpu_loses_no_job(h: Handoff) {
    let cpus = ringpool::affinity::current_thread_cpus().unwrap_or_default();
    if cpus.len() < 2 {
        eprintln!("a_loop_on_a_workers_cpu_loses_no_job: skipped, needs 2 CPUs");
        return;
    }
    let (mine, other) = (cpus[0], cpus[1]);
    let Some(pool) = pool("a_loop_on_a_workers_cpu_loses_no_job", h, 2, |b| {
        b.pin_to(&[other, mine])
    }) else {
        return;
    };
    std::thread::spawn(move || {
        ringpool::affinity::pin_current_thread(mine).expect("pin the loop");
        let mut ring = IoUring::new(256).unwrap();
        let mut lp = pool.register::<u64>(&mut ring).unwrap();
        let total = 20_000u64;
        let (mut next, mut got, mut sum) = (0u64, 0u64, 0u64);
        drive(
            &mut lp,
            &mut ring,
            |_| {},
            |lp| {
                for c in lp.completions() {
                    sum += c.result.expect("no panic");
                    got += 1;
                }
                while next < total && lp.in_flight() < 64 {
                    let i = next;
                    let job = move || {
                        if i % 1000 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        i
                    };
                    if lp.try_submit(job).is_err() {
                        break;
                    }
                    next += 1;
                }
                got == total
            },
        );
        assert_eq!(sum, total * (total - 1) / 2);
    })
    .join()
    .unwrap();
}

/// A loop that waits through `submit_and_wait` (whose spin may leave it
/// holding its doorbell while it works through what it found) and then,
/// after `flush`, in a wait of its own (a blocking `io_uring_enter`, as
/// `wait_policy` says for `Block`), still hears of the next result: `flush`
/// gives the doorbell back, so the result is announced.
fn own_wait_after_flush_hears_the_result(h: Handoff) {
    let test = "own_wait_after_flush_hears_the_result";
    let Some(pool) = pool(test, h, 1, |b| b) else {
        return;
    };
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    if lp.wait_policy() != LoopWait::Block {
        return; // the caller's own wait spins or polls: nothing to announce
    }
    for round in 0..50u32 {
        // Trivial jobs, waited for by `submit_and_wait`: its spin finds them.
        for _ in 0..4 {
            lp.try_submit(move || round).unwrap();
        }
        let mut got = 0;
        util::drain(&mut lp, &mut ring, |c| {
            assert_eq!(c.result.unwrap(), round, "[{h}]");
            got += 1;
        });
        assert_eq!(got, 4, "[{h}]");
        // One slower job, waited for by a wait of the caller's own.
        lp.try_submit(move || {
            std::thread::sleep(Duration::from_millis(1));
            round + 1000
        })
        .unwrap();
        let result = loop {
            lp.flush(&mut ring).unwrap();
            if let Some(c) = lp.completions().next() {
                break c.result;
            }
            let ts = types::Timespec::from(Duration::from_secs(5));
            let args = types::SubmitArgs::new().timespec(&ts);
            match ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => panic!(
                    "[{h}] round {round}: the caller's own wait heard nothing for 5 s \
                     (the result was not announced); {:?}",
                    lp.stats()
                ),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => panic!("[{h}] io_uring_enter: {e}"),
            }
            lp.reap(&mut ring, |c| panic!("[{h}] foreign CQE {c:?}"));
            if let Some(c) = lp.completions().next() {
                break c.result;
            }
        };
        assert_eq!(result.unwrap(), round + 1000, "[{h}]");
    }
    assert!(lp
        .close(&mut ring, |c| panic!("[{h}] foreign CQE {c:?}"))
        .is_empty());
}

macro_rules! conformance {
    ($($m:ident => $h:expr),* $(,)?) => {$(
        mod $m {
            use super::*;
            #[test] fn many_jobs_batch() { super::many_jobs($h, Announce::Batch) }
            #[test] fn several_workers() { super::several_workers($h) }
            #[test] fn interleaved_with_io() { super::interleaved_with_io($h) }
            #[test] fn panics_become_errors() { super::panics_become_errors($h) }
            #[test] fn close_cancel() { super::shutdown_with_jobs_in_flight($h, Shutdown::Cancel, true) }
            #[test] fn close_drain() { super::shutdown_with_jobs_in_flight($h, Shutdown::Drain, true) }
            #[test] fn drop_cancel() { super::shutdown_with_jobs_in_flight($h, Shutdown::Cancel, false) }
            #[test] fn drop_drain() { super::shutdown_with_jobs_in_flight($h, Shutdown::Drain, false) }
            #[test] fn close_unflushed_cancel() { super::shutdown_with_unflushed_jobs($h, Shutdown::Cancel, true) }
            #[test] fn close_unflushed_drain() { super::shutdown_with_unflushed_jobs($h, Shutdown::Drain, true) }
            #[test] fn drop_unflushed_cancel() { super::shutdown_with_unflushed_jobs($h, Shutdown::Cancel, false) }
            #[test] fn drop_unflushed_drain() { super::shutdown_with_unflushed_jobs($h, Shutdown::Drain, false) }
            #[test] fn tiny_cq() { super::tiny_cq($h, Announce::Batch) }
            #[test] fn blocking_submit() { super::blocking_submit_waits_by_reaping($h) }
            #[test] fn payload_sizes() { super::payload_sizes($h) }
            #[test] fn loops_come_and_go() { super::loops_come_and_go($h) }
            #[test] fn long_jobs_go_back_one_by_one() { super::long_jobs_go_back_one_by_one($h) }
            #[test] fn a_loop_on_a_workers_cpu_loses_no_job() { super::a_loop_on_a_workers_cpu_loses_no_job($h) }
            #[test] fn own_wait_after_flush_hears_the_result() { super::own_wait_after_flush_hears_the_result($h) }
            #[test] fn untaken_completions_leave_room() { super::untaken_completions_leave_room($h, Announce::Batch) }
        }
    )*};
}

conformance! {
    msg_ring => Handoff::MsgRing,
    msg_ring_sync => Handoff::MsgRingSync,
    eventfd => Handoff::EventFd,
    futex => Handoff::Futex,
    pipe => Handoff::Pipe,
    condvar => Handoff::Condvar,
    spin => Handoff::Spin,
    auto => Handoff::Auto,
}

mod per_job {
    use super::*;
    #[test]
    fn msg_ring_many() {
        many_jobs(Handoff::MsgRing, Announce::PerJob)
    }
    #[test]
    fn msg_ring_sync_many() {
        many_jobs(Handoff::MsgRingSync, Announce::PerJob)
    }
    #[test]
    fn msg_ring_untaken_completions_leave_room() {
        untaken_completions_leave_room(Handoff::MsgRing, Announce::PerJob)
    }
    #[test]
    fn msg_ring_sync_untaken_completions_leave_room() {
        untaken_completions_leave_room(Handoff::MsgRingSync, Announce::PerJob)
    }
    #[test]
    fn msg_ring_tiny_cq() {
        tiny_cq(Handoff::MsgRing, Announce::PerJob)
    }
    #[test]
    fn msg_ring_sync_tiny_cq() {
        tiny_cq(Handoff::MsgRingSync, Announce::PerJob)
    }
    #[test]
    fn msg_ring_sync_close() {
        shutdown_with_jobs_in_flight(Handoff::MsgRingSync, Shutdown::Cancel, true);
        shutdown_with_jobs_in_flight(Handoff::MsgRingSync, Shutdown::Cancel, false);
    }
    /// `Announce::PerJob` on msg-ring and msg-ring-sync: an in-flight limit
    /// that does not fit in the loop's CQ is a typed error at `register`,
    /// one that fits registers. Every other mechanism refuses `PerJob` at
    /// `build`.
    #[test]
    fn per_job_must_fit_in_the_cq() {
        for h in Handoff::ALL {
            let b = Pool::builder()
                .workers(1)
                .announce(Announce::PerJob)
                .max_in_flight(64);
            if !matches!(h, Handoff::MsgRing | Handoff::MsgRingSync) {
                if util::skip_if_untestable("per_job_must_fit_in_the_cq", h) {
                    continue;
                }
                let e = b.handoff(h).build().unwrap_err();
                assert_eq!(e.kind(), ringpool::ErrorKind::InvalidConfig, "{h}: {e}");
                assert!(e.to_string().contains("PerJob"), "{h}: {e}");
                continue;
            }
            let Some(pool) = util::build_or_skip("per_job_must_fit_in_the_cq", b, h) else {
                continue;
            };
            let mut ring: IoUring = IoUring::builder().setup_cqsize(16).build(8).unwrap();
            let e = pool.register::<()>(&mut ring).unwrap_err();
            assert_eq!(e.kind(), ringpool::ErrorKind::InvalidConfig, "{h}: {e}");
            assert!(e.to_string().contains("max_in_flight"), "{h}: {e}");
            let cq = (64 + ringpool::POOL_CQ_RESERVE) as u32;
            let mut ring: IoUring = IoUring::builder().setup_cqsize(cq).build(8).unwrap();
            let mut lp = pool.register::<u32>(&mut ring).expect("a CQ that fits");
            assert_eq!(run_one(&mut lp, &mut ring, || 5), 5);
        }
    }
}

/// Set (to a role name) in the child processes that [`child`] starts.
const CHILD: &str = "RINGPOOL_CONFORMANCE_CHILD";

/// The role this process was started in by [`child`], or `None` in the
/// parent test run.
fn child_role() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// Runs the test `test` of this binary again, alone, in a child process
/// whose environment has no `RINGPOOL_HANDOFF` or `RINGPOOL_UNSUPPORTED`
/// of the caller's, only `env`, and [`CHILD`]`=role`. The test, seeing
/// its role, runs the child's half and prints `CHILD-OK <role>` at its end;
/// this fails unless the child passed and printed that.
fn child(test: &str, role: &str, env: &[(&str, &str)]) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env_remove("RINGPOOL_HANDOFF")
        .env_remove("RINGPOOL_UNSUPPORTED")
        .env(CHILD, role)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {test} ({role}) with {env:?} failed:\n{text}"
    );
    assert!(
        text.contains("1 passed") && text.contains(&format!("CHILD-OK {role}\n")),
        "child {test} ({role}) did not run its half:\n{text}"
    );
}

/// Forces each fallback of `Auto` with `RINGPOOL_UNSUPPORTED`, in child
/// processes (the environment is process-global): with the first `k`
/// mechanisms of [`Handoff::AUTO_ORDER`] masked, `auto` takes the first
/// unmasked one this kernel supports, reports every one it passed over with
/// the right reason, refuses the masked ones by name, and runs jobs; with
/// all masked, it is `Unsupported(Auto)`.
#[test]
fn auto_falls_back_through_every_mechanism() {
    if let Some(role) = child_role() {
        return fallback_child(&role);
    }
    let order = Handoff::AUTO_ORDER;
    let caps = ringpool::Capabilities::get();
    for k in 0..=order.len() {
        let mask: Vec<&str> = order[..k].iter().map(|h| h.name()).collect();
        let expect = order[k..]
            .iter()
            .find(|h| h.unsupported_reason(caps).is_none())
            .map_or("none", |h| h.name());
        if k < order.len() {
            assert_ne!(expect, "none", "condvar is always supported");
        }
        child(
            "auto_falls_back_through_every_mechanism",
            "fallback",
            &[
                ("RINGPOOL_UNSUPPORTED", &mask.join(",")),
                ("EXPECT", expect),
            ],
        );
        println!("RINGPOOL_UNSUPPORTED={:?} -> {expect}", mask.join(","));
    }
}

/// The child's half of [`auto_falls_back_through_every_mechanism`].
fn fallback_child(role: &str) {
    assert_eq!(role, "fallback");
    let caps = ringpool::Capabilities::get();
    let expect = std::env::var("EXPECT").unwrap();
    let mask: Vec<Handoff> = std::env::var("RINGPOOL_UNSUPPORTED")
        .unwrap()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("mechanism name"))
        .collect();
    // Asking for a masked mechanism by name is a typed error.
    for &h in &mask {
        let e = Pool::builder().workers(1).handoff(h).build().unwrap_err();
        assert_eq!(e.kind(), ringpool::ErrorKind::Unsupported(h), "{e}");
    }
    if expect == "none" {
        let e = Pool::builder().workers(1).build().unwrap_err();
        assert_eq!(
            e.kind(),
            ringpool::ErrorKind::Unsupported(Handoff::Auto),
            "{e}"
        );
        println!("CHILD-OK {role}");
        return;
    }
    let expect: Handoff = expect.parse().unwrap();
    let pool = Pool::builder().workers(1).build().unwrap();
    let sel = pool.selection();
    println!("{sel}");
    assert_eq!(
        (sel.requested, sel.source),
        (Handoff::Auto, "builder"),
        "{sel}"
    );
    assert_eq!(sel.chosen, expect, "{sel}");
    assert_eq!(pool.handoff(), expect);
    // Every mechanism before the chosen one was passed over, for its reason.
    let before: Vec<Handoff> = Handoff::AUTO_ORDER
        .iter()
        .copied()
        .take_while(|&h| h != expect)
        .collect();
    let passed: Vec<Handoff> = sel.skipped.iter().map(|(h, _)| *h).collect();
    assert_eq!(passed, before, "{sel}");
    for (h, why) in &sel.skipped {
        if mask.contains(h) {
            assert!(why.contains("RINGPOOL_UNSUPPORTED"), "{h}: {why}");
        } else {
            assert_eq!(Some(why.clone()), h.unsupported_reason(caps), "{h}");
        }
    }
    // And it works.
    let mut ring = IoUring::new(16).unwrap();
    let mut lp = pool.register::<u64>(&mut ring).unwrap();
    for i in 0..100u64 {
        assert_eq!(run_one(&mut lp, &mut ring, move || i * 3), i * 3);
    }
    assert!(lp
        .close(&mut ring, |c| panic!("foreign CQE {c:?}"))
        .is_empty());
    println!("CHILD-OK {role}");
}

/// `RINGPOOL_HANDOFF` naming a masked mechanism, or no mechanism at all, is
/// a typed error; in child processes.
#[test]
fn explicit_request_for_a_missing_feature_is_a_typed_error() {
    const NAME: &str = "explicit_request_for_a_missing_feature_is_a_typed_error";
    match child_role().as_deref() {
        None => {
            child(
                NAME,
                "missing",
                &[
                    ("RINGPOOL_UNSUPPORTED", "futex"),
                    ("RINGPOOL_HANDOFF", "futex"),
                ],
            );
            child(NAME, "bogus", &[("RINGPOOL_HANDOFF", "carrier-pigeon")]);
        }
        Some("missing") => {
            // The override wins over the builder's pipe, and is masked.
            let e = Pool::builder()
                .workers(1)
                .handoff(Handoff::Pipe)
                .build()
                .unwrap_err();
            assert_eq!(e.kind(), ringpool::ErrorKind::Unsupported(Handoff::Futex));
            assert!(e.to_string().contains("futex"), "{e}");
            println!("CHILD-OK missing");
        }
        Some("bogus") => {
            let e = Pool::new().unwrap_err();
            assert_eq!(e.kind(), ringpool::ErrorKind::InvalidConfig);
            assert!(e.to_string().contains("carrier-pigeon"), "{e}");
            println!("CHILD-OK bogus");
        }
        Some(other) => panic!("unknown child role {other:?}"),
    }
}

/// The skip helper itself: skipping a mechanism that this kernel supports
/// (and no override excludes) fails, and is not counted; a mechanism that an
/// override excludes is skipped and counted. In child processes, so that the
/// caller's environment cannot change the answer.
#[test]
fn skipping_a_supported_mechanism_fails() {
    const NAME: &str = "skipping_a_supported_mechanism_fails";
    match child_role().as_deref() {
        None => {
            child(NAME, "clean", &[]);
            child(NAME, "masked", &[("RINGPOOL_UNSUPPORTED", "condvar")]);
            child(NAME, "forced", &[("RINGPOOL_HANDOFF", "condvar")]);
        }
        Some("clean") => {
            // Condvar needs nothing from the kernel.
            assert_eq!(util::untestable(Handoff::Condvar), None);
            assert!(!util::skip_if_untestable(NAME, Handoff::Condvar));
            let r = std::panic::catch_unwind(|| util::skip(NAME, Handoff::Condvar, "pretend"));
            let msg = r.expect_err("skipping a supported mechanism must fail");
            let msg = msg.downcast_ref::<String>().expect("a formatted panic");
            assert!(msg.contains("must be tested, not skipped"), "{msg}");
            assert_eq!(util::skip_counts(), (0, 0));
            println!("CHILD-OK clean");
        }
        Some("masked") => {
            assert!(matches!(
                util::untestable(Handoff::Condvar),
                Some(util::Untestable::Env(_))
            ));
            assert!(util::skip_if_untestable(NAME, Handoff::Condvar));
            // Auto still has every other mechanism.
            assert_eq!(util::untestable(Handoff::Auto), None);
            assert_eq!(util::skip_counts(), (0, 1));
            println!("CHILD-OK masked");
        }
        Some("forced") => {
            // RINGPOOL_HANDOFF=condvar: every other request becomes condvar.
            assert_eq!(util::untestable(Handoff::Condvar), None);
            for h in std::iter::once(Handoff::Auto).chain(Handoff::ALL) {
                if h != Handoff::Condvar {
                    assert!(util::skip_if_untestable(NAME, h), "{h}");
                }
            }
            // Auto and the six other concrete mechanisms.
            let (kernel, env) = util::skip_counts();
            assert_eq!(kernel + env, Handoff::ALL.len());
            println!("CHILD-OK forced");
        }
        Some(other) => panic!("unknown child role {other:?}"),
    }
}

#[test]
fn handle_rejects_another_ring() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let mut a = IoUring::new(8).unwrap();
    let mut b = IoUring::new(8).unwrap();
    let mut lp = pool.register::<()>(&mut a).unwrap();
    let e = lp.flush(&mut b).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!ringpool::is_pool_user_data(7));
}

#[test]
fn several_loops_share_one_pool() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut ring = defer_ring(32);
                let mut lp = pool.register::<u64>(&mut ring).unwrap();
                let (mut next, mut sum, mut got) = (0u64, 0u64, 0);
                drive(
                    &mut lp,
                    &mut ring,
                    |_| {},
                    |lp| {
                        while next < 5_000 && lp.try_submit(move || t * 1_000_000 + next).is_ok() {
                            next += 1;
                        }
                        for c in lp.completions() {
                            let v = c.result.unwrap();
                            assert_eq!(v / 1_000_000, t, "a result reached the wrong loop");
                            sum += v % 1_000_000;
                            got += 1;
                        }
                        got == 5_000
                    },
                );
                sum
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 5_000 * 4_999 / 2);
    }
}

/// Regression (found by the fuzzer): with the pipe backend, a loop that
/// waits while completions sit untaken in its handle, and a blocking
/// `submit` in that state, must still arm its read and see new results; and
/// `close` must collect everything. Two loops share the pool.
#[test]
fn regression_pipe_waits_with_untaken_completions() {
    let Some(pool) = pool(
        "regression_pipe_waits_with_untaken_completions",
        Handoff::Pipe,
        2,
        |b| {
            b.max_in_flight(8)
                .spin(Duration::from_micros(5))
                .loop_spin(Duration::from_micros(5))
        },
    ) else {
        return;
    };
    let mut r0 = IoUring::new(8).unwrap();
    let mut l0 = pool.register::<u64>(&mut r0).unwrap();
    for i in 0..4u64 {
        l0.try_submit(move || i).unwrap();
    }
    let mut r1 = IoUring::new(8).unwrap();
    let mut l1 = pool.register::<u64>(&mut r1).unwrap();
    let wait = |l: &mut LoopHandle<u64>, r: &mut IoUring| {
        if l.in_flight() > 0 {
            l.submit_and_wait(r, 1).unwrap();
        }
        l.reap(r, |c| panic!("{c:?}"));
    };
    wait(&mut l0, &mut r0);
    l1.submit(&mut r1, || 100, |_| {}).unwrap();
    wait(&mut l0, &mut r0);
    for v in 5..40 {
        l0.submit(&mut r0, move || v, |_| {}).unwrap();
        wait(&mut l0, &mut r0);
    }
    let got = l0.close(&mut r0, |_| {});
    assert_eq!(got.len(), 4 + 35, "every l0 job ends exactly once");
    let got = l1.close(&mut r1, |_| {});
    assert_eq!(got.len(), 1);
}
