//! The two choices a pool makes besides its mechanism: how results are
//! announced, and what closing does to queued jobs; and the most threads
//! one call may start.

/// The most threads a pool's workers or [`per_core`](crate::runtime::per_core)
/// may number: well past a machine's cores, below where thread creation
/// itself starts failing (a `vm.max_map_count` of 65530 allows about 32k).
pub(crate) const MAX_THREADS: usize = 4096;

/// The longest spin budget a pool or runtime accepts. A spin is a few
/// microseconds to stay awake across a round trip; a second of it is
/// already a misconfiguration, and `Duration::MAX` would overflow the
/// `Instant` its deadline is.
pub(crate) const MAX_SPIN: std::time::Duration = std::time::Duration::from_secs(1);

/// An [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) error
/// if `d`, the setting `what`, is over [`MAX_SPIN`].
pub(crate) fn check_spin(what: &str, d: Option<std::time::Duration>) -> Result<(), crate::Error> {
    match d {
        Some(d) if d > MAX_SPIN => Err(crate::Error::new(
            crate::ErrorKind::InvalidConfig,
            format!("{what} must be at most {MAX_SPIN:?}, not {d:?}"),
        )),
        _ => Ok(()),
    }
}

/// How results are announced on the loop's ring.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Announce {
    /// One CQE announces every result that is ready (at most one
    /// announcement is outstanding per loop). The default.
    #[default]
    Batch,
    /// One CQE per job, carrying the job's slot: the answer's
    /// one-message-per-job form. Only `msg-ring` and `msg-ring-sync` can do
    /// it, and the loop's in-flight limit must then fit in its CQ.
    PerJob,
}

/// What happens to queued jobs when their loop closes (or the pool is
/// dropped while a loop still has jobs queued).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shutdown {
    /// Jobs not yet started are handed back as [`JobError::Cancelled`](crate::JobError::Cancelled); running
    /// ones finish. The default.
    #[default]
    Cancel,
    /// Every queued job still runs; closing waits for all of them.
    Drain,
}
