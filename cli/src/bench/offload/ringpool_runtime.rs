//! `offload(..).await` on ringpool's own runtime (`ringpool::runtime`,
//! issue 9): the contender slot the other offload figures are compared with.
//!
//! `tokio_blocking.rs` is the same measurement on tokio.

use super::{on_loop_thread, OffloadFigure, OffloadSetup};
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
    on_loop_thread(setup, measure).map_err(Missing::Failed)
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
            windows.push(OffloadFigure::window(
                "ringpool-runtime",
                workers,
                tasks,
                &at,
                &end,
            ));
            at = end;
        }
        stop.set(true);
        for h in handles {
            h.await.map_err(|e| e.to_string())??;
        }
        Ok(OffloadFigure::median(windows))
    })
}
