//! The mechanisms by name: the list `auto` chooses from, and how each is
//! spelled in `RINGPOOL_HANDOFF` and on the command line.

use std::fmt;
use std::str::FromStr;

/// How jobs reach the workers and how the loop learns that results are ready.
///
/// Every variant is a complete, independent implementation; pick one with
/// [`PoolBuilder::handoff`](crate::PoolBuilder::handoff) or the
/// `RINGPOOL_HANDOFF` environment variable (which wins over the builder).
///
/// | handoff | results reach the loop as | workers sleep in | needs |
/// |---|---|---|---|
/// | [`MsgRingSync`](Handoff::MsgRingSync) | ringless MSG_RING CQE | futex(2) | 6.13 |
/// | [`Futex`](Handoff::Futex) | the loop's `FUTEX_WAIT` CQE | futex(2), woken by `FUTEX_WAKE` SQEs | 6.7 |
/// | [`MsgRing`](Handoff::MsgRing) | MSG_RING CQE from the worker's ring | their own ring | 5.18 (6.1 for DEFER_TASKRUN) |
/// | [`EventFd`](Handoff::EventFd) | multishot poll CQE on an eventfd | futex(2) | 5.13 |
/// | [`Pipe`](Handoff::Pipe) | `POLL_ADD` CQE on the result pipe | `read(2)` on the job pipe | 5.1 |
/// | [`Condvar`](Handoff::Condvar) | nothing: the loop polls | a condvar | nothing more |
/// | [`Spin`](Handoff::Spin) | nothing: the loop busy-polls | never (they spin) | nothing more |
///
/// Every loop's ring needs `IORING_FEAT_NODROP` (5.5) and
/// `IORING_FEAT_EXT_ARG` (5.11) whatever the mechanism.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Handoff {
    /// Probe the kernel and take the first available of [`Handoff::AUTO_ORDER`].
    Auto,
    /// Each worker owns a ring (`SINGLE_ISSUER | DEFER_TASKRUN`, `ATTACH_WQ`);
    /// the loop wakes a sleeping worker with an `IORING_OP_MSG_RING` SQE on
    /// its own ring, and workers announce results with a MSG_RING from theirs.
    /// The answer's design, batched.
    ///
    /// Requires Linux 5.18 (`IORING_OP_MSG_RING`) and 6.1 (`IORING_SETUP_DEFER_TASKRUN`).
    MsgRing,
    /// Workers own no ring: they post the doorbell straight into the loop's CQ
    /// with `IORING_REGISTER_SEND_MSG_RING`; they sleep on a futex.
    ///
    /// Requires Linux 6.13 (`IORING_REGISTER_SEND_MSG_RING`).
    MsgRingSync,
    /// Workers ring an `EFD_NONBLOCK` eventfd that the loop watches with a
    /// multishot `IORING_OP_POLL_ADD`; they sleep on a futex.
    ///
    /// Requires Linux 5.13 (multishot `IORING_OP_POLL_ADD`).
    EventFd,
    /// The loop waits with `IORING_OP_FUTEX_WAIT` on a doorbell word that
    /// workers wake with futex(2); the loop wakes sleeping workers with
    /// `IORING_OP_FUTEX_WAKE` SQEs batched into its next `io_uring_enter`.
    ///
    /// Requires Linux 6.7 (`IORING_OP_FUTEX_WAIT`, `IORING_OP_FUTEX_WAKE`).
    Futex,
    /// The question's design: job pointers go out through one pipe, results
    /// come back through a pipe per loop, which the loop learns of from a
    /// `POLL_ADD` CQE on its ring; the loop moves the messages with
    /// non-blocking read(2)/write(2), lending the kernel no buffer. No
    /// spinning, no skipped wakes.
    ///
    /// Requires Linux 5.1 (`IORING_OP_POLL_ADD`).
    Pipe,
    /// Mutex + condvar queues, the question's first idea. The loop cannot
    /// sleep on a condvar and on its ring at once, so it polls the result
    /// queue between bounded waits (see [`PoolBuilder::poll_interval`](crate::PoolBuilder::poll_interval)).
    /// Kept as the naive baseline.
    Condvar,
    /// Lock-free queues busy-polled on both sides: the latency floor, at the
    /// price of burning every worker's core (and the loop's while it waits).
    Spin,
}

impl Handoff {
    /// The order `Auto` tries mechanisms in, best first.
    ///
    /// Ringless MSG_RING leads: one syscall per batch on the worker side, no
    /// ring per worker, nothing for the loop to re-arm. `Futex` has the
    /// cheapest worker-side wake but re-arms a `FUTEX_WAIT` per batch. `Spin`
    /// is never chosen automatically.
    pub const AUTO_ORDER: [Handoff; 6] = [
        Handoff::MsgRingSync,
        Handoff::Futex,
        Handoff::MsgRing,
        Handoff::EventFd,
        Handoff::Pipe,
        Handoff::Condvar,
    ];

    /// Every concrete mechanism (everything but `Auto`).
    pub const ALL: [Handoff; 7] = [
        Handoff::MsgRing,
        Handoff::MsgRingSync,
        Handoff::EventFd,
        Handoff::Futex,
        Handoff::Pipe,
        Handoff::Condvar,
        Handoff::Spin,
    ];

    /// The name used by `RINGPOOL_HANDOFF` and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Handoff::Auto => "auto",
            Handoff::MsgRing => "msg-ring",
            Handoff::MsgRingSync => "msg-ring-sync",
            Handoff::EventFd => "eventfd",
            Handoff::Futex => "futex",
            Handoff::Pipe => "pipe",
            Handoff::Condvar => "condvar",
            Handoff::Spin => "spin",
        }
    }
}

impl fmt::Display for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Handoff {
    type Err = ParseHandoffError;

    /// Parses a name as [`Handoff::name`] spells it, ignoring case, blanks
    /// at either end, and `_` for `-`.
    fn from_str(s: &str) -> Result<Handoff, ParseHandoffError> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        std::iter::once(Handoff::Auto)
            .chain(Handoff::ALL)
            .find(|h| h.name() == s)
            .ok_or(ParseHandoffError(s))
    }
}

/// A string that names no [`Handoff`]; converts into an
/// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) [`Error`](crate::Error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseHandoffError(String);

impl fmt::Display for ParseHandoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown handoff {:?}; expected one of auto", self.0)?;
        for h in Handoff::ALL {
            write!(f, ", {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseHandoffError {}
