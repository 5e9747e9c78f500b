//! A hostile caller in safe Rust, against every mechanism: panicking
//! callbacks, repeated and forged CQEs, handles that outlive their ring,
//! rings with unusual flags, hundreds of handles on one ring. Nothing here
//! may cause a use-after-free (the AddressSanitizer stage runs this file),
//! a hang (each scenario runs under a watchdog) or a lost job.

// The public API is compiled out under `--cfg loom` (only the models' shim is
// there): this suite runs without it (`tests/loom.rs` is the one that runs with it).
#![cfg(not(loom))]

mod util;

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use ringpool::{Handoff, JobError, LoopHandle, Pool, Shutdown};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use util::{build_or_skip, quiet_deliberate_panics, Watchdog};

/// Counts drops of what a job captured or returned.
#[derive(Debug)]
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn watchdog(test: &str, h: Handoff, pool: &Pool) -> Watchdog {
    Watchdog::start(
        format!("{test} [{h}]"),
        Duration::from_secs(60),
        Some(pool.clone()),
    )
}

fn pool(test: &str, h: Handoff) -> Option<Pool> {
    build_or_skip(test, Pool::builder().workers(2), h)
}

/// A user SQE on `ring`: a NOP with `user_data`, pushed, not submitted.
fn push_nop(ring: &mut IoUring, user_data: u64) {
    let sqe = opcode::Nop::new().build().user_data(user_data);
    // SAFETY: a NOP references no memory.
    unsafe { ring.submission().push(&sqe).expect("SQ has room") };
}

/// (1) A CQE callback that panics during `close` unwinds through the handle:
/// the handle's drop must still wait for every in-flight job, and drop
/// every result exactly once (AddressSanitizer sees any write into a freed
/// loop).
fn panicking_callback_during_close(h: Handoff) {
    let test = "panicking_callback_during_close";
    let Some(pool) = pool(test, h) else { return };
    let _w = watchdog(test, h, &pool);
    quiet_deliberate_panics();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    const N: usize = 6;
    let (started_tx, started_rx) = mpsc::channel::<()>();
    for i in 0..N as u32 {
        // Dropped once whether the job runs (after the call) or is
        // cancelled (with the handed-back closure).
        let capture = Tracked(drops.clone());
        let started = started_tx.clone();
        lp.try_submit(move || {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(20));
            let _capture = capture;
            i
        })
        .unwrap();
    }
    // Jobs are running (so close has to wait, and reap while it does).
    lp.flush(&mut ring).unwrap();
    ring.submit().unwrap();
    started_rx.recv().unwrap();
    push_nop(&mut ring, 1);
    let r = catch_unwind(AssertUnwindSafe(|| {
        lp.close(&mut ring, |_| panic!("deliberate panic in on_io"))
    }));
    assert!(r.is_err(), "on_io should have panicked");
    // Every job ran or was cancelled, and what each captured is gone, once:
    // the handle's drop finished the close the panic interrupted.
    assert_eq!(drops.load(SeqCst), N, "[{h}] captures dropped");
}

/// (2) Every pool CQE handed in twice, and forged pool CQEs of every kind,
/// with payloads naming every slot and worker and beyond: each job still
/// completes exactly once, with its own value, and never before it ran.
fn repeated_and_forged_cqes(h: Handoff) {
    let test = "repeated_and_forged_cqes";
    let Some(pool) = pool(test, h) else { return };
    let w = watchdog(test, h, &pool);
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<u64>(&mut ring).unwrap();
    const N: u64 = 200;
    let mut submitted = 0;
    let mut seen = vec![false; N as usize];
    let mut our_tag = None;
    let mut template: Option<cqueue::Entry> = None;
    let mut rounds = 0u64;
    while submitted < N || lp.in_flight() > 0 {
        while submitted < N {
            let i = submitted;
            match lp.try_submit(move || {
                if i % 7 == 0 {
                    std::thread::sleep(Duration::from_micros(300));
                }
                i * 3
            }) {
                Ok(_) => submitted += 1,
                Err(e) if e.is_full() => break,
                Err(e) => panic!("{e}"),
            }
        }
        push_nop(&mut ring, 42);
        lp.submit_and_wait(&mut ring, 1).unwrap();
        let cqes: Vec<cqueue::Entry> = ring.completion().collect();
        for cqe in &cqes {
            if ringpool::is_pool_user_data(cqe.user_data()) {
                our_tag.get_or_insert(cqe.user_data());
                assert!(lp.handle_cqe(cqe));
                assert!(
                    lp.handle_cqe(cqe),
                    "a repeated pool CQE is still the pool's"
                );
            } else {
                template = Some(cqe.clone());
            }
        }
        // Forge: every kind, this handle's registration id, many payloads.
        if let (Some(tag), Some(t)) = (our_tag, &template) {
            let reg = tag & (0xffff << 24);
            for kind in 0..=12u64 {
                for payload in [0u64, 1, 2, 3, 63, 64, 1023, 0xff_ffff, rounds % 64] {
                    let mut f = t.clone();
                    f.set_user_data(0x5250 << 48 | kind << 40 | reg | payload);
                    lp.handle_cqe(&f);
                }
            }
        }
        rounds += 1;
        for c in lp.completions() {
            let v = c.result.unwrap_or_else(|e| panic!("[{h}] {e}"));
            assert_eq!(v % 3, 0);
            let i = (v / 3) as usize;
            assert!(!seen[i], "[{h}] job {i} completed twice");
            seen[i] = true;
            w.bump();
        }
    }
    assert!(seen.iter().all(|&s| s), "[{h}] a job never completed");
    assert_eq!(lp.stats().completed, N);
    drop(lp.close(&mut ring, |_| {}));
}

/// (4) A handle dropped after its ring must not submit the user's queued,
/// never-submitted SQEs: here a READ from a pipe into a buffer that is gone
/// by then. If it were submitted, it would consume the pipe's bytes.
fn drop_after_ring_submits_nothing(h: Handoff) {
    let test = "drop_after_ring_submits_nothing";
    let Some(pool) = pool(test, h) else { return };
    let _w = watchdog(test, h, &pool);
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) };
    assert_eq!(r, 0);
    // SAFETY: both fds were just created and are owned by nobody else.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    for i in 0..8 {
        lp.try_submit(move || i).unwrap();
    }
    lp.flush(&mut ring).unwrap(); // the pool's own SQEs, queued, unsubmitted
    let mut buf = vec![0u8; 64];
    let sqe = opcode::Read::new(types::Fd(rx.as_raw_fd()), buf.as_mut_ptr(), 64)
        .build()
        .user_data(7);
    // SAFETY: the buffer outlives the ring's use of it unless the pool
    // submits this SQE, which is what the test checks it never does.
    unsafe { ring.submission().push(&sqe).unwrap() };
    drop(ring);
    drop(lp); // waits for its jobs; must not submit the READ
    drop(buf);
    // SAFETY: writes 4 bytes from a live array to a pipe we own.
    let r = unsafe { libc::write(tx.as_raw_fd(), b"ping".as_ptr().cast(), 4) };
    assert_eq!(r, 4);
    let mut got = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live local array.
    let n = unsafe { libc::read(rx.as_raw_fd(), got.as_mut_ptr().cast(), 8) };
    assert_eq!(
        n, 4,
        "[{h}] the user's READ was submitted by the dropped handle"
    );
}

/// (5) Claimed workers whose wake SQE never goes out (an SQPOLL ring's idle
/// thread, a disabled ring) are woken directly on close and on drop.
fn close_when_wakes_never_go_out(h: Handoff, sqpoll: bool, close: bool) {
    let test = "close_when_wakes_never_go_out";
    // No worker spin: workers are asleep when the jobs arrive, so they must
    // be woken.
    let Some(pool) = build_or_skip(test, Pool::builder().workers(2).spin(Duration::ZERO), h) else {
        return;
    };
    let _w = watchdog(test, h, &pool);
    let mut ring = if sqpoll {
        IoUring::builder().setup_sqpoll(1).build(64).unwrap()
    } else {
        IoUring::builder().setup_r_disabled().build(64).unwrap()
    };
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    std::thread::sleep(Duration::from_millis(5)); // let the workers park
    for i in 0..4 {
        lp.try_submit(move || i).unwrap();
    }
    if sqpoll {
        let _ = lp.flush(&mut ring);
    } else {
        // A disabled ring refuses every enter (EBADFD); the wait may also
        // be satisfied by spinning, without entering.
        let _ = lp.submit_and_wait(&mut ring, 1);
    }
    if close {
        let done = lp.close(&mut ring, |_| {});
        assert!(done.len() <= 4);
    } else {
        drop(lp);
    }
}

/// (6) A handle whose ring is gone refuses a new ring with the old fd
/// number, instead of waiting for ever on it.
fn new_ring_with_the_old_fd_number(h: Handoff) {
    let test = "new_ring_with_the_old_fd_number";
    let Some(pool) = pool(test, h) else { return };
    let _w = watchdog(test, h, &pool);
    let ring = IoUring::new(16).unwrap();
    let old = ring.as_raw_fd();
    let mut ring = ring;
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    // A new ring under the old one's fd number. (A safe caller gets there by
    // luck: drop the ring, build another. The test forces it, so that no
    // concurrent test can take the number first.)
    let new = IoUring::new(16).unwrap();
    let params = new.params().clone();
    // SAFETY: dup2 atomically makes `old` refer to the new ring's file; the
    // old ring stays alive through the handle's duplicate. The old `IoUring`
    // must never be used or dropped again (its fd number is the new ring's
    // now), hence the forget.
    assert_eq!(unsafe { libc::dup2(new.as_raw_fd(), old) }, old);
    std::mem::forget(ring);
    // SAFETY: `old` is now a ring fd created with `params`, which nothing
    // else closes (`new` owns its own number).
    let mut other = unsafe { IoUring::from_fd(old, params) }.unwrap();
    // A wait that results satisfy without blocking may return; every wait
    // that would block (here, once the job is back) checks the ring itself.
    lp.try_submit(|| 5).unwrap();
    let mut refused = None;
    for _ in 0..10_000 {
        match lp.submit_and_wait(&mut other, 1) {
            Ok(_) => drop(lp.completions().count()),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.unwrap_or_else(|| panic!("[{h}] the impostor ring was never refused"));
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "[{h}] {e}");
    // close with the impostor closes without it.
    let done = lp.close(&mut other, |_| panic!("[{h}] a CQE of another ring"));
    assert!(done.len() <= 1);
}

/// (7) An IOPOLL ring: every mechanism delivers (nothing comes back
/// `Cancelled`) or is refused at registration with a typed error.
fn iopoll_ring(h: Handoff) {
    let test = "iopoll_ring";
    let Some(pool) = pool(test, h) else { return };
    let _w = watchdog(test, h, &pool);
    let mut ring = IoUring::builder().setup_iopoll().build(16).unwrap();
    let mut lp = match pool.register::<u32>(&mut ring) {
        Ok(lp) => lp,
        Err(e) => {
            assert_eq!(e.kind(), ringpool::ErrorKind::InvalidConfig, "[{h}] {e}");
            return;
        }
    };
    for i in 0..16 {
        lp.try_submit(move || i).unwrap();
    }
    let mut sum = 0;
    util::drain(&mut lp, &mut ring, |c| {
        sum += c.result.unwrap_or_else(|e| panic!("[{h}] {e}"))
    });
    assert_eq!(sum, (0..16).sum::<u32>());
}

/// (8) `submit_and_wait(ring, want)` with `want` larger than what the pool
/// will ever post returns once results are there.
fn wait_for_more_than_the_pool_posts(h: Handoff) {
    let test = "wait_for_more_than_the_pool_posts";
    let Some(pool) = pool(test, h) else { return };
    let _w = watchdog(test, h, &pool);
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    for i in 0..3 {
        lp.try_submit(move || i).unwrap();
    }
    let mut got = 0;
    while got < 3 {
        lp.submit_and_wait(&mut ring, 5).unwrap();
        lp.reap(&mut ring, |c| panic!("[{h}] unexpected {c:?}"));
        got += lp.completions().count();
    }
}

/// (9) `Shutdown::Cancel` is local: a loop closing with one queued job does
/// not wait for a worker that is busy with another loop's jobs.
fn cancel_is_local(h: Handoff) {
    let test = "cancel_is_local";
    let b = Pool::builder().workers(1).shutdown(Shutdown::Cancel);
    let Some(pool) = build_or_skip(test, b, h) else {
        return;
    };
    let _w = watchdog(test, h, &pool);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    // Loop A keeps the only worker busy until released.
    let a = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let mut ring = IoUring::new(16).unwrap();
            let mut lp = pool.register::<u32>(&mut ring).unwrap();
            lp.try_submit(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                1
            })
            .unwrap();
            lp.flush(&mut ring).unwrap();
            ring.submit().unwrap();
            let c = util::wait_one(&mut lp, &mut ring);
            assert_eq!(c.result.unwrap(), 1);
        })
    };
    started_rx.recv().unwrap();
    let mut ring = IoUring::new(16).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    lp.try_submit(|| 2).unwrap();
    lp.flush(&mut ring).unwrap();
    ring.submit().unwrap();
    // The worker is still blocked in A's job: B's close must not wait for it.
    let done = lp.close(&mut ring, |_| {});
    assert_eq!(done.len(), 1);
    assert!(
        matches!(done[0].result, Err(JobError::Cancelled(_))),
        "[{h}] {:?}",
        done[0].result
    );
    release_tx.send(()).unwrap();
    a.join().unwrap();
}

/// Several hundred live handles on one ring: their tags never collide, so
/// every CQE finds its one owner.
fn hundreds_of_handles_on_one_ring(h: Handoff) {
    let test = "hundreds_of_handles_on_one_ring";
    let Some(pool) = pool(test, h) else { return };
    let w = watchdog(test, h, &pool);
    raise_fd_limit();
    let mut ring = IoUring::builder().setup_cqsize(4096).build(512).unwrap();
    // More than 256: an 8-bit registration id would wrap.
    const N: usize = 260;
    let mut lps: Vec<LoopHandle<usize>> =
        (0..N).map(|_| pool.register(&mut ring).unwrap()).collect();
    for (i, lp) in lps.iter_mut().enumerate() {
        lp.try_submit(move || i).unwrap();
        lp.flush(&mut ring).unwrap();
    }
    let mut done = vec![false; N];
    let mut left = N;
    let policy = lps[0].wait_policy();
    while left > 0 {
        wait_as_told(&mut ring, policy);
        let cqes: Vec<_> = ring.completion().collect();
        for cqe in cqes {
            let owners = lps
                .iter_mut()
                .filter_map(|lp| lp.handle_cqe(&cqe).then_some(()))
                .count();
            assert_eq!(owners, 1, "[{h}] a CQE with {} owners", owners);
        }
        for (i, lp) in lps.iter_mut().enumerate() {
            for c in lp.completions() {
                assert_eq!(
                    c.result.unwrap(),
                    i,
                    "[{h}] a result reached the wrong handle"
                );
                assert!(!done[i]);
                done[i] = true;
                left -= 1;
                w.bump();
            }
            lp.flush(&mut ring).unwrap();
        }
    }
    for lp in lps {
        drop(lp.close(&mut ring, |_| {}));
    }
}

/// Waits on `ring` the way `policy` says (what a driver that makes its own
/// `io_uring_enter` does).
fn wait_as_told(ring: &mut IoUring, policy: ringpool::LoopWait) {
    match policy {
        ringpool::LoopWait::Block => {
            ring.submit_and_wait(1).unwrap();
        }
        ringpool::LoopWait::Poll(d) => {
            let ts = types::Timespec::from(d);
            let args = types::SubmitArgs::new().timespec(&ts);
            match ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) => panic!("{e}"),
            }
        }
        _ => {
            ring.submit().unwrap();
            std::hint::spin_loop();
        }
    }
}

/// Lifts the soft fd limit to the hard one (a handle holds a few fds).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit for the calls to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A job whose result panics when dropped, dropped by `close`'s caller and
/// by a handle's drop: the pool keeps working.
fn results_that_panic_on_drop(h: Handoff) {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("deliberate panic in a result's drop");
        }
    }
    let test = "results_that_panic_on_drop";
    let Some(pool) = pool(test, h) else { return };
    let _w = watchdog(test, h, &pool);
    quiet_deliberate_panics();
    let mut ring = IoUring::new(16).unwrap();
    let mut lp = pool.register::<Bomb>(&mut ring).unwrap();
    lp.try_submit(|| Bomb).unwrap();
    let c = util::wait_one(&mut lp, &mut ring);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(c))).is_err());
    lp.try_submit(|| Bomb).unwrap();
    // Dropped with a result ready and not taken: the handle's drop panics
    // while dropping it, after the close is complete.
    while lp.ready() == 0 {
        lp.submit_and_wait(&mut ring, 1).unwrap();
        lp.reap(&mut ring, |_| {});
    }
    assert!(catch_unwind(AssertUnwindSafe(|| drop(lp))).is_err());
    // The pool still works.
    let mut ring = IoUring::new(16).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    lp.try_submit(|| 9).unwrap();
    assert_eq!(util::wait_one(&mut lp, &mut ring).result.unwrap(), 9);
}

/// Results of a handle used with a ring that has SQEs of its own in
/// flight, closed while they are: the user's CQEs all reach `on_io`.
fn close_passes_every_user_cqe(h: Handoff) {
    let test = "close_passes_every_user_cqe";
    let Some(pool) = pool(test, h) else { return };
    let _w = watchdog(test, h, &pool);
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool.register::<u32>(&mut ring).unwrap();
    let ts = types::Timespec::new().nsec(2_000_000);
    for i in 0..8 {
        lp.try_submit(move || i).unwrap();
        let sqe = opcode::Timeout::new(&ts)
            .build()
            .flags(squeue::Flags::empty())
            .user_data(100 + i as u64);
        // SAFETY: `ts` outlives the ring's use of it: close reaps these.
        unsafe { ring.submission().push(&sqe).unwrap() };
    }
    let mut mine = 0;
    let done = lp.close(&mut ring, |c| {
        assert!(!ringpool::is_pool_user_data(c.user_data()));
        mine += 1;
    });
    // Timeouts not yet expired when close returned are still to come (and
    // the pool's last CQEs, a cancel's, may trail: the documented way to
    // tell them apart is `is_pool_user_data`).
    while mine < 8 {
        ring.submit_and_wait(1).unwrap();
        mine += ring
            .completion()
            .filter(|c| !ringpool::is_pool_user_data(c.user_data()))
            .count();
    }
    assert_eq!(mine, 8, "[{h}]");
    assert!(done.len() <= 8);
}

/// The AddressSanitizer stage's probe (`ci/asan.sh`): a handle dropped
/// while a worker runs its job. The drop waits for the job, so the worker's
/// delivery writes into live memory; built with `--cfg ringpool_no_quiesce`
/// (the close skips that wait) it writes into freed memory, which ASan must
/// report.
/// A loop registered from inside a job, on the worker that runs it, would
/// wait for that worker to run its own jobs: with one worker, for ever. It
/// is refused with `OnOwnWorker`; the same job can register with another
/// pool and get its results, and the outer loop goes on.
fn loop_on_its_own_pools_worker(h: Handoff) {
    let test = "loop_on_its_own_pools_worker";
    let Some(pool) = build_or_skip(test, Pool::builder().workers(1), h) else {
        return;
    };
    let _w = watchdog(test, h, &pool);
    let other = Pool::builder().workers(1).build().unwrap();
    let mut ring = IoUring::new(64).unwrap();
    let mut lp = pool
        .register::<(ringpool::ErrorKind, u32)>(&mut ring)
        .unwrap();
    let inner = pool.clone();
    lp.try_submit(move || {
        let mut ring = IoUring::new(16).unwrap();
        let kind = inner
            .register::<u32>(&mut ring)
            .map(drop)
            .unwrap_err()
            .kind();
        // Another pool's workers are not this thread: that works.
        let mut lp = other.register::<u32>(&mut ring).unwrap();
        lp.try_submit(|| 7).unwrap();
        (kind, util::wait_one(&mut lp, &mut ring).result.unwrap())
    })
    .unwrap();
    let (kind, got) = util::wait_one(&mut lp, &mut ring).result.unwrap();
    assert_eq!(kind, ringpool::ErrorKind::OnOwnWorker, "[{h}]");
    assert_eq!(got, 7, "[{h}]");
}

#[test]
fn asan_probe() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let mut ring = IoUring::new(16).unwrap();
    let mut lp = pool.register::<Vec<u8>>(&mut ring).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    lp.try_submit(move || {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        vec![1; 64]
    })
    .unwrap();
    lp.flush(&mut ring).unwrap();
    ring.submit().unwrap();
    started_rx.recv().unwrap();
    drop(lp);
    std::thread::sleep(Duration::from_millis(200));
    drop(pool);
}

macro_rules! hostile {
    ($($m:ident => $h:expr),* $(,)?) => {$(
        mod $m {
            use super::*;
            #[test] fn panicking_callback_during_close() { super::panicking_callback_during_close($h) }
            #[test] fn repeated_and_forged_cqes() { super::repeated_and_forged_cqes($h) }
            #[test] fn drop_after_ring_submits_nothing() { super::drop_after_ring_submits_nothing($h) }
            #[test] fn close_on_sqpoll_ring() { super::close_when_wakes_never_go_out($h, true, true) }
            #[test] fn drop_on_sqpoll_ring() { super::close_when_wakes_never_go_out($h, true, false) }
            #[test] fn close_on_disabled_ring() { super::close_when_wakes_never_go_out($h, false, true) }
            #[test] fn drop_on_disabled_ring() { super::close_when_wakes_never_go_out($h, false, false) }
            #[test] fn new_ring_with_the_old_fd_number() { super::new_ring_with_the_old_fd_number($h) }
            #[test] fn iopoll_ring() { super::iopoll_ring($h) }
            #[test] fn wait_for_more_than_the_pool_posts() { super::wait_for_more_than_the_pool_posts($h) }
            #[test] fn hundreds_of_handles_on_one_ring() { super::hundreds_of_handles_on_one_ring($h) }
            #[test] fn results_that_panic_on_drop() { super::results_that_panic_on_drop($h) }
            #[test] fn close_passes_every_user_cqe() { super::close_passes_every_user_cqe($h) }
            #[test] fn loop_on_its_own_pools_worker() { super::loop_on_its_own_pools_worker($h) }
        }
    )*};
}

hostile! {
    msg_ring => Handoff::MsgRing,
    msg_ring_sync => Handoff::MsgRingSync,
    eventfd => Handoff::EventFd,
    futex => Handoff::Futex,
    pipe => Handoff::Pipe,
    condvar => Handoff::Condvar,
    spin => Handoff::Spin,
    auto => Handoff::Auto,
}

/// (9), for every mechanism but `pipe`: there, a job written into the job
/// pipe can only be taken out by the worker that reads it, which cancels it
/// then (the loop is closing).
mod cancel_is_local {
    use super::*;
    #[test]
    fn msg_ring() {
        cancel_is_local(Handoff::MsgRing)
    }
    #[test]
    fn msg_ring_sync() {
        cancel_is_local(Handoff::MsgRingSync)
    }
    #[test]
    fn eventfd() {
        cancel_is_local(Handoff::EventFd)
    }
    #[test]
    fn futex() {
        cancel_is_local(Handoff::Futex)
    }
    #[test]
    fn condvar() {
        cancel_is_local(Handoff::Condvar)
    }
    #[test]
    fn spin() {
        cancel_is_local(Handoff::Spin)
    }
    #[test]
    fn auto() {
        cancel_is_local(Handoff::Auto)
    }
}
