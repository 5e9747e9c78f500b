//! ringpool's raw [`LoopHandle`](ringpool::LoopHandle): the default pool
//! (`auto`, batched announcements) driven by the bench's own engine
//! (`ringpool_engine`: `try_submit`, `submit_and_wait`, `reap`,
//! `completions`) with `setup.tasks` trivial jobs in flight; the throughput
//! scenario of the handoff section, run here with the offload window.

use super::{OffloadFigure, OffloadSetup};
use crate::bench::contenders::Contender;
use crate::bench::scenarios::{self, LoopSetup, ThroughputSpec};
use ringpool::{Announce, Handoff};
use std::time::Duration;

/// Jobs/s of the raw handle at depth `setup.tasks`.
///
/// # Errors
///
/// The pool or the loop ring cannot be built, or a job failed.
pub fn offload_raw(setup: &OffloadSetup) -> Result<OffloadFigure, String> {
    let loop_setup = LoopSetup {
        loop_cpu: setup.loop_cpu,
        cfg: setup.cfg.clone(),
        count_syscalls: false,
    };
    let spec = ThroughputSpec {
        depth: setup.tasks,
        cost: Duration::ZERO,
        iters: 0,
        warmup: setup.warmup,
        window: setup.window,
        reps: setup.reps,
    };
    let t = scenarios::throughput(
        Contender::Ringpool(Handoff::Auto, Announce::Batch),
        &loop_setup,
        spec,
    )?;
    Ok(OffloadFigure {
        contender: "raw-loop-handle".into(),
        workers: t.workers,
        tasks: setup.tasks,
        jobs: t.jobs,
        secs: t.secs,
        jobs_per_s: t.jobs_per_s,
        cpu_ns_per_job: t.loop_cpu_ns_per_job + t.worker_cpu_ns_per_job,
        vcsw_per_job: t.total_vcsw_per_job,
        jobs_per_s_reps: t.jobs_per_s_reps,
    })
}
