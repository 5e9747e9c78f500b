//! ringpool itself, driven the way a loop uses it: `try_submit`, then
//! `submit_and_wait` / `reap` / `completions` on a ring the bench built.

use super::engine::{idle_timeout_sqe, Counters, Engine, EngineCfg, Job, IDLE_TIMEOUT};
use io_uring::{types, IoUring};
use ringpool::{Announce, Handoff, LoopHandle, Pool, TrySubmitError};
use std::time::Duration;

/// A pool, the loop's ring and the loop's handle.
pub struct RingpoolEngine {
    // Field order matters: the handle closes before the ring and the pool.
    loop_handle: Option<LoopHandle<u64>>,
    ring: IoUring,
    pool: Pool,
    /// The idle timeout's timespec; boxed and dropped after the ring, so it
    /// outlives any timeout SQE that references it.
    idle_ts: Box<types::Timespec>,
}

impl RingpoolEngine {
    /// Builds the ring (flags from `cfg.loop_ring`), a pool with default
    /// spin budgets (or this `loop_spin`) and `cfg.workers` pinned workers,
    /// and registers the loop.
    pub fn new(
        handoff: Handoff,
        announce: Announce,
        loop_spin: Option<Duration>,
        cfg: &EngineCfg,
    ) -> Result<Self, String> {
        let mut ring = cfg
            .loop_ring
            .build()
            .map_err(|e| format!("loop ring: {e}"))?;
        let mut builder = Pool::builder()
            .workers(cfg.workers)
            .handoff(handoff)
            .announce(announce)
            .max_in_flight(512);
        if !cfg.worker_cpus.is_empty() {
            builder = builder.pin_to(&cfg.worker_cpus);
        }
        if let Some(d) = loop_spin {
            builder = builder.loop_spin(d);
        }
        let pool = builder.build().map_err(|e| e.to_string())?;
        let loop_handle = pool.register::<u64>(&mut ring).map_err(|e| e.to_string())?;
        Ok(RingpoolEngine {
            loop_handle: Some(loop_handle),
            ring,
            pool,
            idle_ts: Box::new(types::Timespec::new()),
        })
    }

    fn handle_mut(&mut self) -> &mut LoopHandle<u64> {
        self.loop_handle.as_mut().expect("open until drop")
    }
}

/// Submits what the loop queued and waits for at least one CQE; a wait cut
/// short by a signal (EINTR) counts as done, since every caller loops until
/// it has what it waits for.
fn submit_and_wait_one(
    loop_handle: &mut LoopHandle<u64>,
    ring: &mut IoUring,
) -> Result<(), String> {
    match loop_handle.submit_and_wait(ring, 1) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
        Err(e) => Err(format!("submit_and_wait: {e}")),
    }
}

impl Engine for RingpoolEngine {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        match self.handle_mut().try_submit(move || job.run()) {
            Ok(_) => Ok(()),
            Err(TrySubmitError::Full(_)) => Err("ringpool: in-flight limit reached".into()),
            Err(TrySubmitError::Closed(_)) => Err("ringpool: pool closed".into()),
        }
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        let start = done.len();
        let loop_handle = self.loop_handle.as_mut().expect("open until drop");
        loop {
            submit_and_wait_one(loop_handle, &mut self.ring)?;
            loop_handle.reap(&mut self.ring, |_| {});
            for completion in loop_handle.completions() {
                done.push(completion.result.map_err(|e| format!("job failed: {e}"))?);
            }
            if done.len() > start {
                return Ok(());
            }
        }
    }

    fn idle(&mut self, d: Duration) -> Result<(), String> {
        let sqe = idle_timeout_sqe(&mut self.idle_ts, d);
        // SAFETY: the only memory the SQE points to is the timespec in
        // `self.idle_ts`, and it stays valid and unchanged while the kernel
        // may read it:
        // * it is boxed, so it does not move when the engine moves;
        // * it is dropped after the ring (fields drop in declaration order,
        //   `idle_ts` after `ring`);
        // * only this function rewrites it, and it returns Ok only once this
        //   timeout's CQE has been reaped; after an error the scenario drops
        //   the engine without calling `idle` again.
        unsafe { self.ring.submission().push(&sqe) }.map_err(|_| "SQ full".to_string())?;
        let loop_handle = self.loop_handle.as_mut().expect("open until drop");
        let mut fired = false;
        while !fired {
            submit_and_wait_one(loop_handle, &mut self.ring)?;
            loop_handle.reap(&mut self.ring, |cqe| {
                fired |= cqe.user_data() == IDLE_TIMEOUT
            });
        }
        Ok(())
    }

    fn counters(&self) -> Counters {
        let loop_stats = self.loop_handle.as_ref().expect("open until drop").stats();
        let pool_stats = self.pool.stats();
        Counters {
            enters: Some(loop_stats.enters),
            wakes_sent: Some(loop_stats.wakes_sent),
            doorbells_sent: Some(pool_stats.doorbells_sent),
            doorbells_skipped: Some(pool_stats.doorbells_skipped),
            parks: Some(pool_stats.parks),
        }
    }
}

impl Drop for RingpoolEngine {
    fn drop(&mut self) {
        if let Some(loop_handle) = self.loop_handle.take() {
            let _ = loop_handle.close(&mut self.ring, |_| {});
        }
    }
}
