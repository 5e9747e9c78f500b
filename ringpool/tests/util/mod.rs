//! Helpers shared by the integration tests (`tests/conformance.rs`,
//! `tests/stress.rs`, `tests/fault.rs`): the one mechanism-skip helper
//! ([`skip`], counted), a deterministic PRNG, a no-progress watchdog, random
//! delays, a drive-until-done loop, thread counting, and the stress scale.
//!
//! Not every test binary uses every helper.
#![allow(dead_code)]

use io_uring::IoUring;
use ringpool::{Capabilities, Completion, Handoff, LoopHandle, Pool, PoolBuilder};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How big the stress runs are: `RINGPOOL_STRESS=smoke|short|long`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scale {
    /// A few hundred operations per test: for sanitizer builds.
    Smoke,
    /// The CI default: a minute or two in total on 2 cores (release build).
    Short,
    /// By hand: millions of ping-pongs per mechanism, many minutes.
    Long,
}

impl Scale {
    /// Reads `RINGPOOL_STRESS` (default `short`).
    pub fn get() -> Scale {
        match std::env::var("RINGPOOL_STRESS").as_deref() {
            Ok("smoke") => Scale::Smoke,
            Ok("long") => Scale::Long,
            Ok("short") | Ok("") | Err(_) => Scale::Short,
            Ok(other) => panic!("RINGPOOL_STRESS={other:?}: expected smoke, short or long"),
        }
    }

    /// Picks the figure for this scale.
    pub fn pick(self, smoke: u64, short: u64, long: u64) -> u64 {
        match self {
            Scale::Smoke => smoke,
            Scale::Short => short,
            Scale::Long => long,
        }
    }
}

/// xorshift64*: small, fast, deterministic from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Seed from `RINGPOOL_SEED`, else from the clock; printed so that a
    /// failure can be replayed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("RINGPOOL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("{test}: RINGPOOL_SEED={seed}");
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `true` with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A short random pause, as a plain value so it can travel into a job.
#[derive(Copy, Clone, Debug)]
pub enum Delay {
    /// No pause.
    None,
    /// `n` spin-loop hints.
    Spin(u32),
    /// `thread::yield_now`.
    Yield,
    /// `thread::sleep` for this many microseconds.
    Sleep(u32),
}

impl Delay {
    /// Mostly nothing, sometimes a spin, a yield or a short sleep: enough to
    /// move every race window around without making runs slow.
    pub fn random(rng: &mut Rng) -> Delay {
        match rng.below(16) {
            0..=8 => Delay::None,
            9..=11 => Delay::Spin(rng.below(2000) as u32),
            12..=13 => Delay::Yield,
            14 => Delay::Sleep(rng.below(60) as u32),
            _ => Delay::Sleep(rng.below(400) as u32),
        }
    }

    /// Performs the pause.
    pub fn run(self) {
        match self {
            Delay::None => {}
            Delay::Spin(n) => (0..n).for_each(|_| std::hint::spin_loop()),
            Delay::Yield => std::thread::yield_now(),
            Delay::Sleep(us) => std::thread::sleep(Duration::from_micros(us as u64)),
        }
    }
}

/// Fails the test process, with a clear message, when the watched work makes
/// no progress for `limit`: a lost wakeup shows up as a report instead of a
/// hung CI job.
///
/// The message goes straight to stderr (not through the test harness's
/// capture, which would be lost on exit), then the process exits with 101.
pub struct Watchdog {
    progress: Arc<AtomicU64>,
    status: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching. `what` names the test and scenario; `pool`, if
    /// given, has its stats printed on failure.
    pub fn start(what: impl Into<String>, limit: Duration, pool: Option<Pool>) -> Watchdog {
        let what = what.into();
        let progress = Arc::new(AtomicU64::new(0));
        let status = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (progress, status, stop) = (progress.clone(), status.clone(), stop.clone());
            std::thread::Builder::new()
                .name("watchdog".into())
                .spawn(move || {
                    let mut last = progress.load(Ordering::Relaxed);
                    let mut since = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(Duration::from_millis(100));
                        let now = progress.load(Ordering::Relaxed);
                        if now != last {
                            last = now;
                            since = Instant::now();
                            continue;
                        }
                        if since.elapsed() < limit {
                            continue;
                        }
                        let status = status.lock().map(|s| s.clone()).unwrap_or_default();
                        let pool = pool.as_ref().map_or_else(String::new, |p| {
                            format!(
                                "\n  pool: handoff {} ({}), {} workers, {} asleep\n  pool stats: {:?}",
                                p.handoff(),
                                p.selection(),
                                p.workers(),
                                p.sleeping_workers(),
                                p.stats()
                            )
                        });
                        let _ = writeln!(
                            std::io::stderr(),
                            "\n*** WATCHDOG: {what}: no progress for {:?} (lost wakeup or hang)\n  \
                             progress counter: {now}\n  status: {status}{pool}\n",
                            limit
                        );
                        std::process::exit(101);
                    }
                })
                .expect("spawn the watchdog")
        };
        Watchdog {
            progress,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// Records progress (the counter is printed on failure).
    pub fn tick(&self, n: u64) {
        self.progress.store(n, Ordering::Relaxed);
    }

    /// Adds one to the progress counter.
    pub fn bump(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// A shareable progress counter, for work spread over several threads.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }

    /// Replaces the status line printed on failure.
    pub fn status(&self, s: impl Into<String>) {
        if let Ok(mut g) = self.status.lock() {
            *g = s.into();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Waits on `ring` until `lp` has produced a completion, and returns the
/// first one. Panics on any CQE that is not the pool's.
pub fn wait_one<R: Send + 'static>(lp: &mut LoopHandle<R>, ring: &mut IoUring) -> Completion<R> {
    loop {
        if let Some(c) = lp.completions().next() {
            return c;
        }
        match lp.submit_and_wait(ring, 1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => panic!("submit_and_wait: {e}"),
        }
        lp.reap(ring, |cqe| panic!("unexpected CQE {cqe:?}"));
    }
}

/// Drives `lp` until no job is in flight, passing each completion to `f`.
pub fn drain<R: Send + 'static>(
    lp: &mut LoopHandle<R>,
    ring: &mut IoUring,
    mut f: impl FnMut(Completion<R>),
) {
    loop {
        for c in lp.completions() {
            f(c);
        }
        if lp.in_flight() == 0 && lp.ready() == 0 {
            return;
        }
        match lp.submit_and_wait(ring, 1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => panic!("submit_and_wait: {e}"),
        }
        lp.reap(ring, |cqe| panic!("unexpected CQE {cqe:?}"));
    }
}

/// Threads of this process right now (from `/proc/self/task`).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Names of this process's threads whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| s.starts_with(prefix))
        .collect()
}

/// Installs (once) a panic hook that keeps the deliberate panics of test
/// jobs (messages starting with `deliberate`) out of the output, and
/// forwards every other panic to the default hook.
pub fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(|s| s.as_str()));
            if msg.is_some_and(|m| m.starts_with("deliberate")) {
                return;
            }
            default(info);
        }));
    });
}

// --- Mechanism skips ----------------------------------------------------------

/// Why a mechanism cannot be tested in this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untestable {
    /// [`Handoff::unsupported_reason`] says this kernel cannot run it.
    Kernel(String),
    /// The caller's `RINGPOOL_HANDOFF` or `RINGPOOL_UNSUPPORTED` excludes it:
    /// a build for it would run another mechanism, or fail by request.
    Env(String),
}

impl std::fmt::Display for Untestable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untestable::Kernel(why) => write!(f, "not supported by this kernel: {why}"),
            Untestable::Env(why) => write!(f, "excluded by the environment: {why}"),
        }
    }
}

/// Why `h` cannot be tested in this process, or `None` if it can (and so
/// must be).
///
/// The kernel's answer is [`Handoff::unsupported_reason`]. The environment
/// overrides are read as the library reads them: a non-empty
/// `RINGPOOL_HANDOFF` replaces whatever the builder asks for (so a test of
/// any other mechanism would silently test that one), and the mechanisms
/// named in `RINGPOOL_UNSUPPORTED` fail to build (`auto` only when it masks
/// every mechanism `auto` could choose). An unparsable `RINGPOOL_HANDOFF`
/// panics: every build would fail.
pub fn untestable(h: Handoff) -> Option<Untestable> {
    let caps = Capabilities::get();
    if let Some(why) = h.unsupported_reason(caps) {
        return Some(Untestable::Kernel(why));
    }
    if let Ok(v) = std::env::var("RINGPOOL_HANDOFF") {
        if !v.trim().is_empty() {
            let forced: Handoff = v
                .parse()
                .unwrap_or_else(|e| panic!("RINGPOOL_HANDOFF={v:?} is invalid: {e}"));
            if forced != h {
                return Some(Untestable::Env(format!(
                    "RINGPOOL_HANDOFF={v} replaces the {h} a test asks for"
                )));
            }
        }
    }
    let v = std::env::var("RINGPOOL_UNSUPPORTED").unwrap_or_default();
    let masked: Vec<Handoff> = v
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    let excluded = match h {
        Handoff::Auto => Handoff::AUTO_ORDER
            .iter()
            .all(|a| masked.contains(a) || a.unsupported_reason(caps).is_some()),
        _ => masked.contains(&h),
    };
    if excluded {
        return Some(Untestable::Env(format!(
            "RINGPOOL_UNSUPPORTED={v} masks {h}"
        )));
    }
    None
}

static SKIPS_KERNEL: AtomicUsize = AtomicUsize::new(0);
static SKIPS_ENV: AtomicUsize = AtomicUsize::new(0);

/// Mechanism skips recorded so far in this test binary: `(kernel, env)`.
pub fn skip_counts() -> (usize, usize) {
    (
        SKIPS_KERNEL.load(Ordering::SeqCst),
        SKIPS_ENV.load(Ordering::SeqCst),
    )
}

/// Prints the skip total when the test binary exits (registered on first use
/// of [`skip`] or [`skip_if_untestable`]).
fn print_skip_summary_at_exit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn summary() {
        let (kernel, env) = skip_counts();
        let _ = writeln!(
            std::io::stderr(),
            "ringpool tests: {} mechanism skip(s) in this test binary \
             ({kernel} not supported by this kernel, {env} excluded by \
             RINGPOOL_HANDOFF/RINGPOOL_UNSUPPORTED)",
            kernel + env
        );
    }
    ONCE.call_once(|| {
        // SAFETY: `summary` is a plain `extern "C" fn` that only formats two
        // atomics onto stderr; it stays valid for the life of the process.
        let rc = unsafe { libc::atexit(summary) };
        assert_eq!(rc, 0, "atexit failed");
    });
}

/// The one way a test skips a mechanism. Every suite goes through it.
///
/// * A skip is legitimate only if [`untestable`] says so: the kernel lacks
///   the mechanism ([`Handoff::unsupported_reason`] is `Some`), or the
///   caller's `RINGPOOL_HANDOFF`/`RINGPOOL_UNSUPPORTED` excludes it. Then it
///   is counted and one line goes to stderr (past the harness's output
///   capture, so it shows in every run): the test, the mechanism, the reason
///   and the running total, `skipped N so far in this binary`.
/// * Skipping a mechanism this kernel supports, with no override that
///   excludes it, is a failure: this panics, naming the test and what it
///   gave as `why`.
///
/// The total for the whole test binary is printed when it exits (an
/// `atexit` hook, registered on first use). libtest has no end-of-run hook
/// and runs tests in no fixed order, so a "summary test" could run before
/// other tests skip; the exit hook always runs last, in the main thread,
/// after the harness's own summary.
///
/// Tests normally call [`skip_if_untestable`] (or [`build_or_skip`]),
/// which ask [`untestable`] first; `skip` itself is for a test that finds
/// out at run time that it cannot go on with `h`.
pub fn skip(test: &str, h: Handoff, why: &str) {
    print_skip_summary_at_exit();
    let Some(reason) = untestable(h) else {
        panic!(
            "{test}: skipped {h} ({why}), but this kernel supports {h} \
             (Handoff::unsupported_reason is None) and neither RINGPOOL_HANDOFF \
             nor RINGPOOL_UNSUPPORTED excludes it: a supported mechanism must be \
             tested, not skipped"
        );
    };
    let counter = match reason {
        Untestable::Kernel(_) => &SKIPS_KERNEL,
        Untestable::Env(_) => &SKIPS_ENV,
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let (kernel, env) = skip_counts();
    let reason = reason.to_string();
    let detail = if why == reason {
        reason
    } else {
        format!("{reason} ({why})")
    };
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {test}: {h}: {detail} (skipped {} so far in this binary)",
        kernel + env
    );
}

/// `true` (after counting and printing the skip through [`skip`]) if `test`
/// cannot test `h` here; `false` if it can, and so must.
pub fn skip_if_untestable(test: &str, h: Handoff) -> bool {
    print_skip_summary_at_exit();
    match untestable(h) {
        Some(reason) => {
            skip(test, h, &reason.to_string());
            true
        }
        None => false,
    }
}

/// Builds `b` for `h`, or skips `h` (see [`skip`]) and returns `None`.
///
/// A mechanism that [`untestable`] accepted must build, as itself: a build
/// error (even `Unsupported`) or another mechanism fails the test.
pub fn build_or_skip(test: &str, b: PoolBuilder, h: Handoff) -> Option<Pool> {
    if skip_if_untestable(test, h) {
        return None;
    }
    let pool = match b.handoff(h).build() {
        Ok(p) => p,
        Err(e) if matches!(e.kind(), ringpool::ErrorKind::Unsupported(_)) => {
            skip(test, h, &e.to_string()); // panics: `h` is supported here
            unreachable!("skip returned for a supported mechanism");
        }
        Err(e) => panic!("{test}: building a {h} pool: {e}"),
    };
    if h != Handoff::Auto {
        assert_eq!(
            pool.handoff(),
            h,
            "{test}: asked for {h}: {}",
            pool.selection()
        );
    }
    Some(pool)
}

/// Waits (polling, up to `limit`) until no thread of this process has a name
/// starting with `prefix`; returns the names still there at the deadline.
///
/// A joined thread can linger in `/proc/self/task` for a moment after
/// `join` returns (the kernel reaps it after it wakes the joiner), and the
/// machine may be busy: hence a generous bounded wait, not one look.
pub fn wait_until_no_thread_named(prefix: &str, limit: Duration) -> Vec<String> {
    let t = Instant::now();
    loop {
        let left = threads_named(prefix);
        if left.is_empty() || t.elapsed() >= limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
