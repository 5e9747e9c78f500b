//! `offload(..).await` on ringpool's own runtime (`ringpool::runtime`,
//! issue 9): the contender slot the other offload figures are compared with.
//!
//! **To plug the runtime in**, replace the body of
//! [`offload_ringpool_runtime`] and nothing else; `tokio_blocking.rs` is the
//! same measurement on tokio, to copy the shape from.

use super::{OffloadFigure, OffloadSetup};
use crate::bench::missing::Missing;

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
/// [`Missing::NotBuilt`] until the runtime exists: the report then lists
/// the contender as not built, and the targets that need it say "not
/// measured". [`Missing::Failed`] for a real failure.
pub fn offload_ringpool_runtime(setup: &OffloadSetup) -> Result<OffloadFigure, Missing> {
    let _ = setup;
    Err(Missing::NotBuilt(
        "the ringpool runtime is not built yet".into(),
    ))
}
