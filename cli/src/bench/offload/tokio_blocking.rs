//! tokio's answer to offloading: a `current_thread` runtime (the loop) with
//! `setup.tasks` tasks, each looping `spawn_blocking(trivial).await`, the
//! blocking pool capped at the worker count and its threads pinned like
//! workers.

use super::{on_loop_thread, OffloadFigure, OffloadSetup};
use crate::bench::cpu::CpuSnap;
use crate::bench::work::burn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Jobs/s of `spawn_blocking(..).await` from `setup.tasks` tasks.
///
/// # Errors
///
/// The runtime cannot be built, a thread cannot start, or a task failed.
pub fn offload_tokio(setup: &OffloadSetup) -> Result<OffloadFigure, String> {
    on_loop_thread(setup, measure)
}

fn measure(setup: &OffloadSetup) -> Result<OffloadFigure, String> {
    let next_worker = Arc::new(AtomicUsize::new(0));
    let pin_cfg = setup.cfg.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .max_blocking_threads(setup.cfg.workers)
        .on_thread_start(move || pin_cfg.pin_worker(next_worker.fetch_add(1, Ordering::Relaxed)))
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (warmup, window, tasks) = (setup.warmup, setup.window, setup.tasks);
    let reps = setup.reps.max(1);
    let workers = setup.cfg.workers;
    let windows = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..tasks {
            let (done, stop) = (done.clone(), stop.clone());
            set.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::task::spawn_blocking(|| burn(0)).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), tokio::task::JoinError>(())
            });
        }
        tokio::time::sleep(warmup).await;
        let mut windows = Vec::with_capacity(reps);
        let mut at = (done.load(Ordering::Relaxed), CpuSnap::now(), Instant::now());
        for _ in 0..reps {
            tokio::time::sleep(window).await;
            let end = (done.load(Ordering::Relaxed), CpuSnap::now(), Instant::now());
            windows.push(OffloadFigure::window(
                "tokio-spawn-blocking",
                workers,
                tasks,
                &at,
                &end,
            ));
            at = end;
        }
        stop.store(true, Ordering::Relaxed);
        while let Some(r) = set.join_next().await {
            r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(windows)
    })?;
    Ok(OffloadFigure::median(windows))
}
