//! The counters a pool and a loop handle keep, as their users see them.

/// Pool-wide counters, summed over the workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Jobs run (including ones that panicked).
    pub jobs_run: u64,
    /// Jobs cancelled at close without running.
    pub jobs_cancelled: u64,
    /// Times a worker went to sleep.
    pub parks: u64,
    /// Announcements sent to loops (one syscall each).
    pub doorbells_sent: u64,
    /// Results delivered without an announcement (the loop was already
    /// going to look).
    pub doorbells_skipped: u64,
    /// Failed sends (each retried).
    pub send_errors: u64,
    /// Failed or interrupted waits (each retried).
    pub wait_errors: u64,
}

/// Loop-side counters of one [`LoopHandle`](crate::LoopHandle).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Jobs accepted by `try_submit`/`submit`.
    pub submitted: u64,
    /// Completions produced (values, panics and cancellations).
    pub completed: u64,
    /// `io_uring_enter` calls made by this handle (`submit_and_wait`,
    /// `flush` when the SQ was full, `close`).
    pub enters: u64,
    /// Of those, the ones that could sleep.
    pub waits: u64,
    /// Worker wakes sent (SQEs or syscalls, one per sleeping worker claimed).
    pub wakes_sent: u64,
    /// Pool CQEs handled (announcements, per-job results, pipe reads).
    pub pool_cqes: u64,
    /// `submit_and_wait` calls satisfied by spinning, without sleeping.
    pub spin_hits: u64,
    /// Kernel-side errors seen on the pool's own SQEs (each handled).
    pub errors: u64,
    /// CQEs with this handle's tag that matched nothing it waits for (a
    /// repeated or forged CQE, or a late one for a job already collected):
    /// ignored, never trusted.
    pub ignored_cqes: u64,
}
