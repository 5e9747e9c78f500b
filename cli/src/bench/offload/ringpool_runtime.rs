//! `offload(..).await` on ringpool's own runtime (`ringpool::runtime`,
//! issue 9): the contender slot the other offload figures are compared with.
//!
//! `tokio_blocking.rs` is the same measurement on tokio.

use super::{OffloadFigure, OffloadSetup};
use crate::bench::cpu::CpuSnap;
use crate::bench::missing::Missing;
use crate::bench::work::burn;
use ringpool::runtime::time::sleep;
use ringpool::runtime::{self, offload, Runtime};
use ringpool::Pool;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

/// Jobs/s of `setup.tasks` tasks on ringpool's runtime, each looping
/// `offload(|| trivial()).await`, with `setup.cfg.workers` workers.
///
/// What the figure must be, to compare with the others:
/// * the runtime's ring thread pinned to `setup.loop_cpu`, its pool's
///   workers pinned as `setup.cfg` says (`EngineCfg::cpu_for`);
/// * the job trivial (`crate::bench::work::burn(0)`, as in `tokio_blocking`);
/// * run for `setup.warmup`, then `setup.reps` windows of `setup.window`
///   back to back, counting the jobs completed in each, with
///   `crate::bench::cpu::CpuSnap` at each boundary for the whole process's
///   CPU and voluntary context switches; one [`OffloadFigure`] per window
///   named `"ringpool-runtime"`, reported through
///   [`OffloadFigure::median`].
///
/// # Errors
///
/// [`Missing::Failed`] if the runtime cannot be built or a job failed.
pub fn offload_ringpool_runtime(setup: &OffloadSetup) -> Result<OffloadFigure, Missing> {
    let setup = setup.clone();
    std::thread::Builder::new()
        .name("bench-loop".into())
        .spawn(move || {
            if let Some(cpu) = setup.loop_cpu {
                let _ = ringpool::affinity::pin_current_thread(cpu);
            }
            measure(&setup)
        })
        .map_err(|e| Missing::Failed(format!("spawn loop thread: {e}")))?
        .join()
        .map_err(|_| Missing::Failed("the loop thread panicked".into()))?
        .map_err(Missing::Failed)
}

fn measure(setup: &OffloadSetup) -> Result<OffloadFigure, String> {
    let mut pool = Pool::builder().workers(setup.cfg.workers);
    if !setup.cfg.worker_cpus.is_empty() {
        pool = pool.pin_to(&setup.cfg.worker_cpus);
    }
    let rt = Runtime::builder()
        .pool_builder(pool)
        .build()
        .map_err(|e| format!("ringpool runtime: {e}"))?;
    let done = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let (warmup, window, tasks) = (setup.warmup, setup.window, setup.tasks);
    let reps = setup.reps.max(1);
    let workers = setup.cfg.workers;
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (done, stop) = (done.clone(), stop.clone());
                runtime::spawn(async move {
                    while !stop.get() {
                        offload(|| burn(0)).await.map_err(|e| e.to_string())?;
                        done.set(done.get() + 1);
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        sleep(warmup).await;
        let mut windows = Vec::with_capacity(reps);
        let mut at = (done.get(), CpuSnap::now(), Instant::now());
        for _ in 0..reps {
            sleep(window).await;
            let end = (done.get(), CpuSnap::now(), Instant::now());
            let jobs = end.0 - at.0;
            let secs = end.2.duration_since(at.2).as_secs_f64();
            let cpu = end.1.since(&at.1);
            let n = jobs.max(1) as f64;
            windows.push(OffloadFigure {
                contender: "ringpool-runtime".into(),
                workers,
                tasks,
                jobs,
                secs,
                jobs_per_s: jobs as f64 / secs,
                cpu_ns_per_job: (cpu.loop_cpu + cpu.other_cpu).as_nanos() as f64 / n,
                vcsw_per_job: cpu.process_vcsw as f64 / n,
                jobs_per_s_reps: vec![],
            });
            at = end;
        }
        stop.set(true);
        for h in handles {
            h.await.map_err(|e| e.to_string())??;
        }
        Ok(OffloadFigure::median(windows))
    })
}
