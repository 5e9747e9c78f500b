//! The interface every contender is driven through ([`Engine`]) and what the
//! engines share: the job, the loop-side counters, how an engine is built
//! ([`EngineCfg`]) and the loop ring the ring-based engines use.
//!
//! The engines (`ringpool_engine`, `answer`, `peers`, `floors`) depend on
//! this module and on `work` only; `contenders` depends on the engines.

use super::work::burn;
use io_uring::{opcode, squeue, types, IoUring};
use std::thread::JoinHandle;
use std::time::Duration;

/// One job: burn `iters` rounds of [`burn`], then hand `token` back.
#[derive(Copy, Clone, Debug)]
pub struct Job {
    /// Returned by the job, so the loop knows which one finished.
    pub token: u64,
    /// Rounds of CPU work.
    pub iters: u64,
}

impl Job {
    /// Runs the job on the calling thread: burns its rounds, returns its token.
    pub fn run(self) -> u64 {
        burn(self.iters);
        self.token
    }
}

/// Loop-side counters a contender can report (cumulative; `None` when the
/// contender has no such counter).
#[derive(Copy, Clone, Debug, Default, serde::Serialize)]
pub struct Counters {
    /// `io_uring_enter` calls made by the loop (ringpool: `LoopStats.enters`;
    /// the answer's design: counted by the harness).
    pub enters: Option<u64>,
    /// Worker wakes the loop sent (ringpool: `LoopStats.wakes_sent`; the
    /// answer: one MSG_RING per job).
    pub wakes_sent: Option<u64>,
    /// Announcements workers sent to the loop (`PoolStats.doorbells_sent`;
    /// the answer: one MSG_RING per job).
    pub doorbells_sent: Option<u64>,
    /// Results delivered without an announcement (`PoolStats.doorbells_skipped`).
    pub doorbells_skipped: Option<u64>,
    /// Times a worker went to sleep (`PoolStats.parks`).
    pub parks: Option<u64>,
}

impl Counters {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Counters) -> Counters {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b.unwrap_or(0)));
        Counters {
            enters: d(self.enters, earlier.enters),
            wakes_sent: d(self.wakes_sent, earlier.wakes_sent),
            doorbells_sent: d(self.doorbells_sent, earlier.doorbells_sent),
            doorbells_skipped: d(self.doorbells_skipped, earlier.doorbells_skipped),
            parks: d(self.parks, earlier.parks),
        }
    }
}

/// The loop side of a contender, as the scenarios drive it. Built and used
/// on one loop thread; dropping it stops and joins its workers.
pub trait Engine {
    /// Hands `job` to the workers. The scenarios never have more jobs in
    /// flight than the depth the engine was built for.
    fn submit(&mut self, job: Job) -> Result<(), String>;
    /// Blocks (the contender's own way) until at least one job finished, and
    /// appends the tokens of every finished job to `done`.
    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String>;
    /// Sits idle for `d` the way this contender's loop would: in its ring
    /// (a timeout SQE), in its runtime (a timer), or, by default, in `sleep`.
    fn idle(&mut self, d: std::time::Duration) -> Result<(), String> {
        std::thread::sleep(d);
        Ok(())
    }
    /// Cumulative loop-side counters.
    fn counters(&self) -> Counters {
        Counters::default()
    }
}

/// How the bench builds the loop's ring for ringpool contenders.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LoopRing {
    /// The answer's loop flags: SINGLE_ISSUER | COOP_TASKRUN | DEFER_TASKRUN
    /// | SUBMIT_ALL (so ringpool and the answer share the same loop ring).
    #[default]
    Answer,
    /// SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG.
    Defer,
    /// No setup flags.
    Plain,
}

/// SQ entries of every loop ring the bench builds.
pub const LOOP_SQ: u32 = 256;
/// CQ entries of every loop ring the bench builds: room for the deepest
/// scenario (256) with per-job announcements, plus headroom.
pub const LOOP_CQ: u32 = 1024;

impl LoopRing {
    /// The flags, as written in reports.
    pub fn describe(self) -> &'static str {
        match self {
            LoopRing::Answer => "SINGLE_ISSUER|COOP_TASKRUN|DEFER_TASKRUN|SUBMIT_ALL",
            LoopRing::Defer => "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG",
            LoopRing::Plain => "no setup flags",
        }
    }

    /// Builds the loop's ring (call on the loop thread: SINGLE_ISSUER makes
    /// the creating thread the ring's only submitter).
    pub fn build(self) -> std::io::Result<IoUring> {
        let mut b = IoUring::builder();
        match self {
            LoopRing::Answer => {
                b.setup_single_issuer()
                    .setup_coop_taskrun()
                    .setup_defer_taskrun()
                    .setup_submit_all();
            }
            LoopRing::Defer => {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag();
            }
            LoopRing::Plain => {}
        }
        b.setup_cqsize(LOOP_CQ).build(LOOP_SQ)
    }
}

/// `user_data` of the timeout SQE a ring-based engine idles on. 1 is never
/// a pool tag (those carry `0x5250` in their top 16 bits), never one of the
/// answer's job pointers (non-null and 8-byte aligned) and never its stop
/// message (0).
pub const IDLE_TIMEOUT: u64 = 1;

/// The timeout SQE a ring-based engine idles on for `d`, tagged
/// [`IDLE_TIMEOUT`]. It stores `d` in `ts` and points at it: the caller keeps
/// `ts` in place and unchanged until the timeout's CQE has been reaped.
pub fn idle_timeout_sqe(ts: &mut types::Timespec, d: Duration) -> squeue::Entry {
    *ts = types::Timespec::from(d);
    opcode::Timeout::new(ts).build().user_data(IDLE_TIMEOUT)
}

/// How to build an engine.
#[derive(Clone, Debug)]
pub struct EngineCfg {
    /// Worker threads.
    pub workers: usize,
    /// CPU for worker `i` is `worker_cpus[i % len]`; empty: not pinned.
    pub worker_cpus: Vec<usize>,
    /// The loop ring's flags (ringpool contenders).
    pub loop_ring: LoopRing,
}

impl EngineCfg {
    /// The CPU worker `i` is pinned to, if pinning.
    pub fn cpu_for(&self, i: usize) -> Option<usize> {
        (!self.worker_cpus.is_empty()).then(|| self.worker_cpus[i % self.worker_cpus.len()])
    }

    /// Pins the calling (worker) thread as worker `i`; errors are ignored
    /// (an unpinned worker still measures, just noisier).
    pub fn pin_worker(&self, i: usize) {
        if let Some(cpu) = self.cpu_for(i) {
            let _ = ringpool::affinity::pin_current_thread(cpu);
        }
    }
}

/// Starts worker `i`'s thread, named `name`: it pins itself as `cfg` says
/// ([`EngineCfg::pin_worker`]), then runs `body`.
pub fn spawn_worker(
    cfg: &EngineCfg,
    i: usize,
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    let cfg = cfg.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            cfg.pin_worker(i);
            body()
        })
        .map_err(|e| format!("spawn: {e}"))
}

/// Joins every worker thread of `threads` (an engine's drop, after it told
/// them to stop). A worker that panicked has already printed its panic; the
/// engine's drop does not raise it again.
pub fn join_workers(threads: impl IntoIterator<Item = JoinHandle<()>>) {
    for t in threads {
        let _ = t.join();
    }
}

/// Runs `f` on a new thread named `bench-loop`, pinned to `cpu` if given
/// (the loop's thread of every contender and section), and returns what it
/// returns; a thread that cannot start or panics is an error naming `what`.
///
/// # Errors
///
/// The thread cannot start or panicked (as text), or `f`'s error.
pub fn on_pinned_loop_thread<T: Send + 'static>(
    cpu: Option<usize>,
    what: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    on_pinned_thread("bench-loop", &format!("{what}the loop thread"), cpu, f)
}

/// Runs `f` on a new thread named `name`, pinned to `cpu` if given, and
/// returns what it returns; `who` names the thread in the errors.
///
/// # Errors
///
/// "spawn {who}: .." if the thread cannot start, "{who} panicked", or `f`'s
/// error.
pub fn on_pinned_thread<T: Send + 'static>(
    name: &str,
    who: &str,
    cpu: Option<usize>,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Some(cpu) = cpu {
                let _ = ringpool::affinity::pin_current_thread(cpu);
            }
            f()
        })
        .map_err(|e| format!("spawn {who}: {e}"))?
        .join()
        .map_err(|_| format!("{who} panicked"))?
}
