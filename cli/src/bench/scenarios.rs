//! The workloads: ping-pong latency, throughput at a depth, and idle cost.
//! Each runs on a fresh loop thread (pinned), against a freshly built engine.

use super::contenders::Contender;
use super::cpu::{CpuSnap, ProcessSyscalls};
use super::engine::{on_pinned_loop_thread, Counters, Engine, EngineCfg, Job};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How every measurement is set up: where its loop thread runs, how its
/// engine is built, and whether the loop's system calls can be counted.
#[derive(Clone, Debug)]
pub struct LoopSetup {
    /// The loop thread's CPU, if pinning.
    pub loop_cpu: Option<usize>,
    /// Engine configuration (workers, their CPUs, the loop ring).
    pub cfg: EngineCfg,
    /// Whether the perf syscall counter works here.
    pub count_syscalls: bool,
}

/// Runs `measure` on a new loop thread with a freshly built engine for `c`.
fn on_loop_thread<T: Send + 'static>(
    c: Contender,
    setup: &LoopSetup,
    measure: impl FnOnce(&mut dyn Engine, &LoopSetup) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let setup = setup.clone();
    on_pinned_loop_thread(setup.loop_cpu, &format!("{c}: "), move || {
        let mut engine = c.build(&setup.cfg)?;
        let result = measure(&mut *engine, &setup);
        drop(engine);
        result
    })
}

/// Ping-pong variants.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Back to back.
    Hot,
    /// A gap between jobs long enough for every spin budget to run out.
    Idle,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 2] = [Variant::Hot, Variant::Idle];
}

/// Ping-pong parameters.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct PingPongSpec {
    /// Hot or idle.
    pub variant: Variant,
    /// Measured round trips (at most).
    pub iterations: usize,
    /// Unmeasured round trips first.
    pub warmup: usize,
    /// Stop measuring after this long even if `iterations` is not reached.
    #[serde(with = "super::seconds")]
    pub max_time: Duration,
    /// Idle variant: the gap before each job.
    #[serde(with = "super::seconds")]
    pub gap: Duration,
}

/// One ping-pong result: round-trip latency with one job in flight.
#[derive(Clone, Debug, Serialize)]
pub struct PingPong {
    /// Contender name.
    pub contender: String,
    /// Worker threads.
    pub workers: usize,
    /// Hot or idle.
    pub variant: Variant,
    /// Round trips measured.
    pub samples: u64,
    /// Median round trip, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Slowest, ns.
    pub max_ns: u64,
    /// Mean, ns.
    pub mean_ns: f64,
    /// Every round trip measured, ns (merged across rounds).
    #[serde(skip)]
    pub hist: Histogram<u64>,
}

impl PingPong {
    /// The figure of `hist`'s round trips.
    fn new(contender: String, workers: usize, variant: Variant, hist: Histogram<u64>) -> PingPong {
        PingPong {
            contender,
            workers,
            variant,
            samples: hist.len(),
            p50_ns: hist.value_at_quantile(0.5),
            p99_ns: hist.value_at_quantile(0.99),
            p999_ns: hist.value_at_quantile(0.999),
            max_ns: hist.max(),
            mean_ns: hist.mean(),
            hist,
        }
    }

    /// One figure of several rounds' round trips (all of one contender,
    /// worker count and variant).
    pub fn merge(rounds: Vec<PingPong>) -> PingPong {
        let mut rounds = rounds.into_iter();
        let first = rounds.next().expect("a figure has a round");
        let mut hist = first.hist;
        for r in rounds {
            debug_assert_eq!(
                (&r.contender, r.workers, r.variant),
                (&first.contender, first.workers, first.variant)
            );
            hist.add(&r.hist)
                .expect("histograms of one precision merge");
        }
        PingPong::new(first.contender, first.workers, first.variant, hist)
    }
}

/// Round trips of single jobs of zero cost, timed by the loop from before
/// the submit to the moment the completion is in its hands.
pub fn ping_pong(c: Contender, setup: &LoopSetup, spec: PingPongSpec) -> Result<PingPong, String> {
    let workers = setup.cfg.workers;
    on_loop_thread(c, setup, move |engine, _| {
        let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
        let mut done = Vec::with_capacity(4);
        let start = Instant::now();
        for i in 0..spec.warmup + spec.iterations {
            if i >= spec.warmup && start.elapsed() > spec.max_time && !hist.is_empty() {
                break;
            }
            if spec.variant == Variant::Idle {
                std::thread::sleep(spec.gap);
            }
            done.clear();
            let t = Instant::now();
            engine.submit(Job {
                token: i as u64,
                iters: 0,
            })?;
            while done.is_empty() {
                engine.wait(&mut done)?;
            }
            let rtt = t.elapsed().as_nanos() as u64;
            if done[0] != i as u64 {
                return Err(format!("{c}: job {i} came back as {}", done[0]));
            }
            if i >= spec.warmup {
                hist.record(rtt.max(1)).map_err(|e| e.to_string())?;
            }
        }
        Ok(PingPong::new(c.name(), workers, spec.variant, hist))
    })
}

/// Throughput parameters.
#[derive(Copy, Clone, Debug)]
pub struct ThroughputSpec {
    /// Jobs kept in flight.
    pub depth: usize,
    /// CPU work per job.
    pub cost: Duration,
    /// Rounds of [`burn`](super::work::burn) that make `cost`.
    pub iters: u64,
    /// Unmeasured run first.
    pub warmup: Duration,
    /// Measured run: new jobs are submitted until then, then the loop drains.
    pub window: Duration,
    /// Measured runs; the one with the median jobs/s is reported.
    pub reps: usize,
}

/// One throughput result.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Contender name.
    pub contender: String,
    /// Worker threads.
    pub workers: usize,
    /// Jobs kept in flight.
    pub depth: usize,
    /// CPU work per job, ns.
    pub cost_ns: u64,
    /// Jobs completed in the measured run.
    pub jobs: u64,
    /// Wall time of the measured run (including the drain), s.
    pub secs: f64,
    /// `jobs / secs`.
    pub jobs_per_s: f64,
    /// Loop thread CPU time per job (getrusage RUSAGE_THREAD), ns. Includes
    /// the time the loop spins while it waits: a loop that never stops
    /// spinning spends `1 / jobs_per_s` per job, whatever its real work.
    pub loop_cpu_ns_per_job: f64,
    /// CPU time of every other thread per job (process CPU clock minus the
    /// loop thread's), ns; includes the job's own work and any spinning.
    pub worker_cpu_ns_per_job: f64,
    /// The loop thread's CPU time over the run, % of one core (~100: it
    /// never slept, so its CPU per job is wall time per job).
    pub loop_pct_of_core: f64,
    /// Every other thread's CPU time over the run, % of one core.
    pub worker_pct_of_core: f64,
    /// Voluntary context switches of the loop thread per job
    /// (getrusage RUSAGE_THREAD `ru_nvcsw`).
    pub loop_vcsw_per_job: f64,
    /// Voluntary context switches of the whole process per job: the loop and
    /// every other thread, including threads that exited during the run
    /// (getrusage RUSAGE_SELF `ru_nvcsw`).
    pub total_vcsw_per_job: f64,
    /// System calls the loop thread made per job (perf tracepoint), if
    /// countable. From a separate counted run (see `counted_jobs_per_s`).
    pub loop_syscalls_per_job: Option<f64>,
    /// System calls every thread of the process made per job (the loop, the
    /// workers, io-wq, a peer's pool), if countable; same counted run.
    pub total_syscalls_per_job: Option<f64>,
    /// jobs/s of the counted run, which pays for the tracepoint on every
    /// system call (so it is kept apart from the measured runs).
    pub counted_jobs_per_s: Option<f64>,
    /// Threads the counted run's counters were opened on (each also counts
    /// the threads it created later).
    pub counted_threads: Option<usize>,
    /// Threads listed when the counters opened whose counter did not open
    /// (they had exited by then).
    pub counted_threads_missed: Option<usize>,
    /// The contender's own counters over the measured run.
    pub counters: Counters,
    /// jobs/s of every measured run (the median one is reported above).
    pub jobs_per_s_reps: Vec<f64>,
}

impl Throughput {
    /// One figure of several rounds' runs (all of one contender, worker
    /// count, depth and cost): the run with the median jobs/s, with every
    /// run's jobs/s and the system calls of the round that counted them.
    pub fn merge(rounds: Vec<Throughput>) -> Throughput {
        let reps: Vec<f64> = rounds
            .iter()
            .flat_map(|r| r.jobs_per_s_reps.iter().copied())
            .collect();
        let counted = rounds
            .iter()
            .find(|r| r.counted_jobs_per_s.is_some())
            .map(|r| {
                (
                    r.loop_syscalls_per_job,
                    r.total_syscalls_per_job,
                    r.counted_jobs_per_s,
                    r.counted_threads,
                    r.counted_threads_missed,
                )
            });
        let mut rounds = rounds;
        rounds.sort_by(|a, b| a.jobs_per_s.total_cmp(&b.jobs_per_s));
        let mut median = rounds.swap_remove(rounds.len() / 2);
        median.jobs_per_s_reps = reps;
        if let Some((l, t, j, th, m)) = counted {
            median.loop_syscalls_per_job = l;
            median.total_syscalls_per_job = t;
            median.counted_jobs_per_s = j;
            median.counted_threads = th;
            median.counted_threads_missed = m;
        }
        median
    }

    /// A counter per job.
    pub fn per_job(&self, v: Option<u64>) -> Option<f64> {
        v.map(|v| v as f64 / self.jobs.max(1) as f64)
    }
}

/// Keeps `depth` jobs in flight until `window` has passed, then drains.
/// Returns the jobs completed.
fn keep_busy(
    engine: &mut dyn Engine,
    depth: usize,
    iters: u64,
    window: Duration,
) -> Result<u64, String> {
    let deadline = Instant::now() + window;
    let mut next = 0u64;
    let mut in_flight = 0usize;
    let mut completed = 0u64;
    let mut done = Vec::with_capacity(depth);
    for _ in 0..depth {
        engine.submit(Job { token: next, iters })?;
        next += 1;
        in_flight += 1;
    }
    while in_flight > 0 {
        done.clear();
        engine.wait(&mut done)?;
        in_flight -= done.len();
        completed += done.len() as u64;
        if Instant::now() < deadline {
            for _ in 0..done.len() {
                engine.submit(Job { token: next, iters })?;
                next += 1;
                in_flight += 1;
            }
        }
    }
    Ok(completed)
}

/// Jobs per second, CPU and context switches per job with `spec.depth`
/// jobs in flight: the run with the median jobs/s out of `spec.reps`
/// measured runs. When system calls can be counted, one more run of the
/// same length counts them (every thread of the process, and the loop's
/// share); its jobs/s is kept apart, since counting slows system calls.
pub fn throughput(
    c: Contender,
    setup: &LoopSetup,
    spec: ThroughputSpec,
) -> Result<Throughput, String> {
    let workers = setup.cfg.workers;
    on_loop_thread(c, setup, move |engine, setup| {
        keep_busy(engine, spec.depth, spec.iters, spec.warmup)?;
        let mut runs = Vec::with_capacity(spec.reps.max(1));
        for _ in 0..spec.reps.max(1) {
            let counters_start = engine.counters();
            let cpu_start = CpuSnap::now();
            let started = Instant::now();
            let jobs = keep_busy(engine, spec.depth, spec.iters, spec.window)?;
            let secs = started.elapsed().as_secs_f64();
            let cpu = CpuSnap::now().since(&cpu_start);
            let counters = engine.counters().since(&counters_start);
            let n = jobs.max(1) as f64;
            let pct = |d: Duration| 100.0 * d.as_secs_f64() / secs;
            runs.push(Throughput {
                contender: c.name(),
                workers,
                depth: spec.depth,
                cost_ns: spec.cost.as_nanos() as u64,
                jobs,
                secs,
                jobs_per_s: jobs as f64 / secs,
                loop_cpu_ns_per_job: cpu.loop_cpu.as_nanos() as f64 / n,
                worker_cpu_ns_per_job: cpu.other_cpu.as_nanos() as f64 / n,
                loop_pct_of_core: pct(cpu.loop_cpu),
                worker_pct_of_core: pct(cpu.other_cpu),
                loop_vcsw_per_job: cpu.loop_vcsw as f64 / n,
                total_vcsw_per_job: cpu.process_vcsw as f64 / n,
                loop_syscalls_per_job: None,
                total_syscalls_per_job: None,
                counted_jobs_per_s: None,
                counted_threads: None,
                counted_threads_missed: None,
                counters,
                jobs_per_s_reps: vec![],
            });
        }
        let reps: Vec<f64> = runs.iter().map(|r| r.jobs_per_s).collect();
        runs.sort_by(|a, b| a.jobs_per_s.total_cmp(&b.jobs_per_s));
        let mut median = runs.swap_remove(runs.len() / 2);
        median.jobs_per_s_reps = reps;
        if setup.count_syscalls {
            // Counters open only now, after the measured runs: while one is
            // open, every system call pays for the tracepoint.
            let mut syscalls = ProcessSyscalls::open()?;
            let at_start = syscalls.start();
            let started = Instant::now();
            let jobs = keep_busy(engine, spec.depth, spec.iters, spec.window)?;
            let made = syscalls.since(&at_start);
            let secs = started.elapsed().as_secs_f64();
            let n = jobs.max(1) as f64;
            median.loop_syscalls_per_job = Some(made.loop_thread as f64 / n);
            median.total_syscalls_per_job = Some(made.total as f64 / n);
            median.counted_jobs_per_s = Some(jobs as f64 / secs);
            median.counted_threads = Some(syscalls.threads());
            median.counted_threads_missed = Some(syscalls.missed());
        }
        Ok(median)
    })
}

/// Idle-cost parameters.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct IdleSpec {
    /// After the burst, wait this long for every spin budget to run out.
    #[serde(with = "super::seconds")]
    pub settle: Duration,
    /// Then measure CPU over this long.
    #[serde(with = "super::seconds")]
    pub window: Duration,
}

/// CPU burnt by an idle contender.
#[derive(Clone, Debug, Serialize)]
pub struct Idle {
    /// Contender name.
    pub contender: String,
    /// Worker threads.
    pub workers: usize,
    /// Window measured, s.
    pub window_s: f64,
    /// Whole-process CPU over the window, as % of one core.
    pub process_pct_of_core: f64,
    /// Of which the loop thread, % of one core.
    pub loop_pct_of_core: f64,
}

/// Wakes every worker with a burst of trivial jobs, lets the spin budgets
/// run out, then measures the CPU the whole process uses while the loop
/// sits idle in its own wait.
pub fn idle_cost(c: Contender, setup: &LoopSetup, spec: IdleSpec) -> Result<Idle, String> {
    let workers = setup.cfg.workers;
    on_loop_thread(c, setup, move |engine, _| {
        let burst = (4 * workers).min(64);
        let depth = if c.supports(workers, burst) { burst } else { 1 };
        for _ in 0..4 {
            keep_busy(engine, depth, 0, Duration::ZERO)?;
        }
        engine.idle(spec.settle)?;
        let cpu_start = CpuSnap::now();
        let started = Instant::now();
        engine.idle(spec.window)?;
        let secs = started.elapsed().as_secs_f64();
        let cpu = CpuSnap::now().since(&cpu_start);
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / secs;
        Ok(Idle {
            contender: c.name(),
            workers,
            window_s: secs,
            process_pct_of_core: pct(cpu.loop_cpu + cpu.other_cpu),
            loop_pct_of_core: pct(cpu.loop_cpu),
        })
    })
}
