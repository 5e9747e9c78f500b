//! The offload benchmark of issue 9: `offload(..).await` of trivial jobs
//! from 64 tasks on ringpool's runtime, against tokio `spawn_blocking` from
//! 64 tasks on a `current_thread` runtime (blocking threads capped to the
//! same worker count) and against ringpool's raw [`LoopHandle`] driven by
//! the bench's engine at depth 64 (the figure the runtime should come
//! within 1.5x of).
//!
//! The loop thread and the workers are pinned as in the rest of the bench
//! (loop on the first CPU, worker i on CPU `(1 + i) % cores`).
//!
//! Modules, one job each: [`ringpool_runtime`] (the slot for
//! `ringpool::runtime`), [`tokio_blocking`], [`loop_handle`].
//!
//! [`LoopHandle`]: ringpool::LoopHandle

pub mod loop_handle;
pub mod ringpool_runtime;
pub mod tokio_blocking;

use super::cpu::CpuSnap;
use super::engine::{on_pinned_loop_thread, EngineCfg};
use super::missing::{Missing, Skipped};
use super::results::Results;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Runs `measure` on a thread of its own named `bench-loop`, pinned to
/// `setup.loop_cpu` (the loop's CPU in every contender).
///
/// # Errors
///
/// The thread cannot start or panicked (as text), or `measure`'s error.
pub fn on_loop_thread<T: Send + 'static>(
    setup: &OffloadSetup,
    measure: impl FnOnce(&OffloadSetup) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let setup = setup.clone();
    on_pinned_loop_thread(setup.loop_cpu, "", move || measure(&setup))
}

/// The offload contenders.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OffloadImpl {
    /// `offload(..).await` on ringpool's runtime.
    RingpoolRuntime,
    /// tokio `current_thread` + `spawn_blocking(..).await`.
    TokioSpawnBlocking,
    /// ringpool's raw `LoopHandle` (no runtime, the bench's engine).
    RawLoopHandle,
}

impl OffloadImpl {
    /// Every contender, in report order.
    pub const ALL: [OffloadImpl; 3] = [
        OffloadImpl::RingpoolRuntime,
        OffloadImpl::TokioSpawnBlocking,
        OffloadImpl::RawLoopHandle,
    ];

    /// The name used in the report and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            OffloadImpl::RingpoolRuntime => "ringpool-runtime",
            OffloadImpl::TokioSpawnBlocking => "tokio-spawn-blocking",
            OffloadImpl::RawLoopHandle => "raw-loop-handle",
        }
    }

    /// One line on what it is.
    pub fn describe(self) -> &'static str {
        match self {
            OffloadImpl::RingpoolRuntime => "ringpool::runtime, 64 tasks looping offload(..).await (issue 9)",
            OffloadImpl::TokioSpawnBlocking => {
                "tokio current_thread, 64 tasks looping spawn_blocking(..).await, max_blocking_threads = workers"
            }
            OffloadImpl::RawLoopHandle => {
                "ringpool auto, LoopHandle try_submit/submit_and_wait/reap/completions, 64 jobs in flight"
            }
        }
    }
}

/// The offload section's sizes.
#[derive(Clone, Debug, Serialize)]
pub struct OffloadSpec {
    /// Tasks (jobs in flight for the raw handle).
    pub tasks: usize,
    /// Worker counts.
    pub workers: Vec<usize>,
    /// Unmeasured run first.
    #[serde(with = "super::seconds")]
    pub warmup: Duration,
    /// Each measured window.
    #[serde(with = "super::seconds")]
    pub window: Duration,
    /// Rounds: each measures every contender once, in turn (one window
    /// after its warm-up); the median (by jobs/s) of a contender's windows
    /// is reported.
    pub reps: usize,
}

impl OffloadSpec {
    /// Progress-bar steps of this section.
    pub fn steps(&self) -> usize {
        self.workers.len() * OffloadImpl::ALL.len() * self.reps.max(1)
    }
}

/// Where one offload measurement runs and what it is asked for.
#[derive(Clone, Debug)]
pub struct OffloadSetup {
    /// The loop thread's CPU, if pinning.
    pub loop_cpu: Option<usize>,
    /// Workers and their CPUs.
    pub cfg: EngineCfg,
    /// Tasks, each with one job in flight.
    pub tasks: usize,
    /// Unmeasured run first.
    pub warmup: Duration,
    /// Each measured window.
    pub window: Duration,
    /// Measured windows; the one with the median jobs/s is reported.
    pub reps: usize,
}

/// One offload figure.
#[derive(Clone, Debug, Serialize)]
pub struct OffloadFigure {
    /// Contender name.
    pub contender: String,
    /// Worker threads.
    pub workers: usize,
    /// Tasks (jobs in flight).
    pub tasks: usize,
    /// Jobs completed in the window.
    pub jobs: u64,
    /// Window, s.
    pub secs: f64,
    /// `jobs / secs`.
    pub jobs_per_s: f64,
    /// CPU time of the whole process per job (loop, workers, anything else), ns.
    pub cpu_ns_per_job: f64,
    /// Voluntary context switches of the whole process per job.
    pub vcsw_per_job: f64,
    /// jobs/s of every measured window (the median one is reported above).
    pub jobs_per_s_reps: Vec<f64>,
}

/// A window boundary: jobs completed so far, the process's CPU counters, the time.
pub type Mark = (u64, CpuSnap, Instant);

impl OffloadFigure {
    /// The figure of one window, from its two boundaries.
    pub fn window(
        contender: &str,
        workers: usize,
        tasks: usize,
        at: &Mark,
        end: &Mark,
    ) -> OffloadFigure {
        let jobs = end.0 - at.0;
        let secs = end.2.duration_since(at.2).as_secs_f64();
        let cpu = end.1.since(&at.1);
        let n = jobs.max(1) as f64;
        OffloadFigure {
            contender: contender.into(),
            workers,
            tasks,
            jobs,
            secs,
            jobs_per_s: jobs as f64 / secs,
            cpu_ns_per_job: (cpu.loop_cpu + cpu.other_cpu).as_nanos() as f64 / n,
            vcsw_per_job: cpu.process_vcsw as f64 / n,
            jobs_per_s_reps: vec![],
        }
    }

    /// The figure of the window with the median jobs/s, with every
    /// window's jobs/s in `jobs_per_s_reps`.
    ///
    /// # Panics
    ///
    /// If `windows` is empty.
    pub fn median(mut windows: Vec<OffloadFigure>) -> OffloadFigure {
        let reps: Vec<f64> = windows.iter().map(|f| f.jobs_per_s).collect();
        windows.sort_by(|a, b| a.jobs_per_s.total_cmp(&b.jobs_per_s));
        let mut m = windows.swap_remove(windows.len() / 2);
        m.jobs_per_s_reps = reps;
        m
    }
}

/// Runs the offload section, filing figures and skips into `results`;
/// `tick(label)` is called before each step. The contenders take turns,
/// one window each per round (`spec.reps` rounds), so that a change of the
/// machine's speed between them cannot make their ratio.
pub fn run(
    spec: &OffloadSpec,
    setup_for: &dyn Fn(usize) -> OffloadSetup,
    tick: &mut dyn FnMut(&str),
    results: &mut Results,
) {
    let rounds = spec.reps.max(1);
    for &w in &spec.workers {
        let setup = OffloadSetup {
            reps: 1,
            ..setup_for(w)
        };
        let mut windows: Vec<Vec<OffloadFigure>> = vec![Vec::new(); OffloadImpl::ALL.len()];
        let mut failed: Vec<Option<Missing>> = vec![None; OffloadImpl::ALL.len()];
        for round in 0..rounds {
            for (k, imp) in OffloadImpl::ALL.into_iter().enumerate() {
                tick(&format!(
                    "offload {} w={w} round {}/{rounds}",
                    imp.name(),
                    round + 1
                ));
                if failed[k].is_some() {
                    continue;
                }
                let r = match imp {
                    OffloadImpl::RingpoolRuntime => {
                        ringpool_runtime::offload_ringpool_runtime(&setup)
                    }
                    OffloadImpl::TokioSpawnBlocking => {
                        tokio_blocking::offload_tokio(&setup).map_err(Missing::from)
                    }
                    OffloadImpl::RawLoopHandle => {
                        loop_handle::offload_raw(&setup).map_err(Missing::from)
                    }
                };
                match r {
                    Ok(f) => windows[k].push(f),
                    Err(m) => failed[k] = Some(m),
                }
            }
        }
        for (k, imp) in OffloadImpl::ALL.into_iter().enumerate() {
            match failed[k].take() {
                Some(m) => results.skipped.push(Skipped::new(
                    "offload",
                    imp.name(),
                    format!("{w} worker(s)"),
                    &m,
                )),
                None => results
                    .offload
                    .push(OffloadFigure::median(std::mem::take(&mut windows[k]))),
            }
        }
    }
}

impl Results {
    /// The offload figure of `contender` with `workers` workers, if measured.
    pub fn find_offload(&self, contender: &str, workers: usize) -> Option<&OffloadFigure> {
        self.offload
            .iter()
            .find(|f| f.contender == contender && f.workers == workers)
    }
}
