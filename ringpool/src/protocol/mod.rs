//! The wake protocols: how a worker goes to sleep without missing a job
//! ([`park`]), and how workers tell a loop that results wait without ever
//! having more than one announcement in flight ([`doorbell`]), and how
//! other threads wake the async runtime's loop ([`remote`]); and the
//! bounded rings that carry jobs and results in batches ([`rings`]).
//!
//! None makes a kernel call: they decide *who* must wake *whom*, and the
//! handoff backends carry the wake (a futex, a MSG_RING, an eventfd write).
//! So they compile unchanged against loom's atomics (`crate::sync`), and
//! `tests/loom.rs` checks this very code exhaustively under `--cfg loom`.

pub(crate) mod doorbell;
pub(crate) mod park;
pub(crate) mod remote;
pub(crate) mod rings;
