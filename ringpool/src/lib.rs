//! # ringpool
//!
//! Offload CPU-bound jobs from an io_uring event loop to a pool of worker
//! threads, and get the results back **as completions on the loop's own
//! ring**: one `io_uring_enter` waits for network I/O and job results alike,
//! and the next I/O can be queued right after the results arrive.
//!
//! ```
//! use io_uring::IoUring;
//! use ringpool::Pool;
//!
//! let pool = Pool::builder().workers(2).build()?;      // probes, picks a handoff
//! let mut ring = IoUring::new(64)?;                    // your ring, your flags
//! let mut lp = pool.register::<u64>(&mut ring)?;       // this thread's handle
//! lp.try_submit(|| (1..=10u64).sum()).unwrap();
//! while lp.in_flight() > 0 {
//!     lp.submit_and_wait(&mut ring, 1)?;               // flush + (spin) + enter
//!     lp.reap(&mut ring, |_my_io_cqe| {});             // pool CQEs handled here
//! }
//! assert_eq!(lp.completions().next().unwrap().result.unwrap(), 55);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Handoff mechanisms
//!
//! Every mechanism is a complete implementation behind the same API, chosen
//! by [`PoolBuilder::handoff`] or `RINGPOOL_HANDOFF=<name>`; see [`Handoff`]
//! for the table of what each needs. [`Handoff::Auto`] probes the kernel
//! ([`Capabilities`]) and falls back along [`Handoff::AUTO_ORDER`];
//! [`Pool::selection`] says what it chose and why it skipped the others.
//! `RINGPOOL_UNSUPPORTED=futex,msg-ring-sync` pretends those are missing, to
//! exercise fallbacks.
//!
//! ## Guarantees
//!
//! * **No lost wakeup.** Workers sleep through a Dekker handshake on a
//!   per-worker state word; the loop is announced to through a doorbell word
//!   with at most one announcement outstanding (see `docs/design/handoff.md`).
//! * **No CQ overflow.** In the default [`Announce::Batch`] mode the pool
//!   never has more than [`POOL_CQ_RESERVE`] CQEs in the loop's CQ;
//!   with [`Announce::PerJob`] the in-flight limit must fit in the CQ.
//! * **Every job ends exactly once**: a value, [`JobError::Panicked`], or
//!   [`JobError::Cancelled`] handing the job back. A panic never kills a
//!   worker.
//! * **Visible to ThreadSanitizer.** Each hand-off carries a release/acquire
//!   edge on the job cell, including the ones the kernel orders.
//! * **Sound against any safe caller.** A repeated or forged CQE handed to
//!   [`LoopHandle::handle_cqe`] completes nothing that is not done (it is
//!   counted in [`LoopStats::ignored_cqes`]); the pool lends the kernel no
//!   buffer a forged CQE could free; a callback that panics during
//!   [`LoopHandle::close`] cannot free a loop under its workers; a handle
//!   that outlives its ring never submits SQEs that are not its own and
//!   refuses a new ring that reuses the old fd number.
//!
//! Linux only. Kernel requirements are per mechanism; the pool itself needs
//! io_uring with `IORING_FEAT_NODROP` (5.5) and `IORING_FEAT_EXT_ARG` (5.11)
//! on the loop's ring.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

// Under `--cfg loom` only the wake protocols are compiled (`protocol`, on
// loom's primitives through `sync`; see `tests/loom.rs`): everything else
// needs std primitives and the kernel.
#[cfg(not(loom))]
pub mod affinity;
#[cfg(not(loom))]
mod backoff;
#[cfg(not(loom))]
mod config;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod handoff;
#[cfg(not(loom))]
mod loop_handle;
#[cfg(not(loom))]
mod pool;
mod protocol;
#[cfg(not(loom))]
pub mod runtime;
#[cfg(not(loom))]
mod stats;
mod sync;
#[cfg(not(loom))]
mod sys;
#[cfg(not(loom))]
mod tag;

#[cfg(not(loom))]
pub use config::{Announce, Shutdown};
#[cfg(not(loom))]
pub use error::{Error, ErrorKind, JobError, SubmitError, Task, TrySubmitError};
#[cfg(not(loom))]
pub use handoff::{Capabilities, Handoff, LoopWait, ParseHandoffError, Selection};
#[cfg(not(loom))]
pub use loop_handle::{Completion, Completions, JobId, LoopHandle, POOL_CQ_RESERVE};
#[cfg(not(loom))]
pub use pool::{Pool, PoolBuilder};
#[cfg(not(loom))]
pub use stats::{LoopStats, PoolStats};
#[cfg(not(loom))]
pub use tag::is_pool_user_data;

/// Fault injection at the system-call layer, for tests (feature
/// `fault-injection`).
#[cfg(all(feature = "fault-injection", not(loom)))]
pub use sys::fault;

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, not(loom)))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The wake protocols, exposed for the loom model checker only
/// (`src/loom_api.rs`, used by `tests/loom.rs`).
#[cfg(loom)]
#[doc(hidden)]
#[path = "loom_api.rs"]
pub mod __loom;
