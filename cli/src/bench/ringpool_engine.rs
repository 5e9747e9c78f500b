//! ringpool itself, driven the way a loop uses it: `try_submit`, then
//! `submit_and_wait` / `reap` / `completions` on a ring the bench built.

use super::engine::{idle_timeout_sqe, Counters, Engine, EngineCfg, Job, IDLE_TIMEOUT};
use io_uring::{types, IoUring};
use ringpool::{Announce, Handoff, LoopHandle, Pool, TrySubmitError};
use std::time::Duration;

/// A pool, the loop's ring and the loop's handle.
pub struct RingpoolEngine {
    // Field order matters: the handle closes before the ring and the pool.
    lp: Option<LoopHandle<u64>>,
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
        h: Handoff,
        announce: Announce,
        loop_spin: Option<Duration>,
        cfg: &EngineCfg,
    ) -> Result<Self, String> {
        let mut ring = cfg
            .loop_ring
            .build()
            .map_err(|e| format!("loop ring: {e}"))?;
        let mut b = Pool::builder()
            .workers(cfg.workers)
            .handoff(h)
            .announce(announce)
            .max_in_flight(512);
        if !cfg.worker_cpus.is_empty() {
            b = b.pin_to(&cfg.worker_cpus);
        }
        if let Some(d) = loop_spin {
            b = b.loop_spin(d);
        }
        let pool = b.build().map_err(|e| e.to_string())?;
        let lp = pool.register::<u64>(&mut ring).map_err(|e| e.to_string())?;
        Ok(RingpoolEngine {
            lp: Some(lp),
            ring,
            pool,
            idle_ts: Box::new(types::Timespec::new()),
        })
    }

    fn lp(&mut self) -> &mut LoopHandle<u64> {
        self.lp.as_mut().expect("open until drop")
    }
}

/// Submits what the loop queued and waits for at least one CQE; a wait cut
/// short by a signal (EINTR) counts as done, since every caller loops until
/// it has what it waits for.
fn submit_and_wait_one(lp: &mut LoopHandle<u64>, ring: &mut IoUring) -> Result<(), String> {
    match lp.submit_and_wait(ring, 1) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
        Err(e) => Err(format!("submit_and_wait: {e}")),
    }
}

impl Engine for RingpoolEngine {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        match self.lp().try_submit(move || job.run()) {
            Ok(_) => Ok(()),
            Err(TrySubmitError::Full(_)) => Err("ringpool: in-flight limit reached".into()),
            Err(TrySubmitError::Closed(_)) => Err("ringpool: pool closed".into()),
        }
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        let start = done.len();
        let lp = self.lp.as_mut().expect("open until drop");
        loop {
            submit_and_wait_one(lp, &mut self.ring)?;
            lp.reap(&mut self.ring, |_| {});
            for c in lp.completions() {
                done.push(c.result.map_err(|e| format!("job failed: {e}"))?);
            }
            if done.len() > start {
                return Ok(());
            }
        }
    }

    fn idle(&mut self, d: Duration) -> Result<(), String> {
        let sqe = idle_timeout_sqe(&mut self.idle_ts, d);
        // SAFETY: the timespec is boxed in `self.idle_ts`, which is dropped
        // after the ring and rewritten only here, after the previous
        // timeout's CQE was reaped (this function returns Ok only then; on
        // error the engine is dropped, ring first).
        unsafe { self.ring.submission().push(&sqe) }.map_err(|_| "SQ full".to_string())?;
        let lp = self.lp.as_mut().expect("open until drop");
        let mut fired = false;
        while !fired {
            submit_and_wait_one(lp, &mut self.ring)?;
            lp.reap(&mut self.ring, |cqe| {
                fired |= cqe.user_data() == IDLE_TIMEOUT
            });
        }
        Ok(())
    }

    fn counters(&self) -> Counters {
        let l = self.lp.as_ref().expect("open until drop").stats();
        let p = self.pool.stats();
        Counters {
            enters: Some(l.enters),
            wakes_sent: Some(l.wakes_sent),
            doorbells_sent: Some(p.doorbells_sent),
            doorbells_skipped: Some(p.doorbells_skipped),
            parks: Some(p.parks),
        }
    }
}

impl Drop for RingpoolEngine {
    fn drop(&mut self) {
        if let Some(lp) = self.lp.take() {
            let _ = lp.close(&mut self.ring, |_| {});
        }
    }
}
