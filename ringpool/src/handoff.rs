//! The handoff mechanisms, and how `auto` chooses among them.

use crate::caps::Capabilities;
use crate::error::{Error, ErrorKind};
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
/// | [`Pipe`](Handoff::Pipe) | READ CQE of pointers from a pipe | `read(2)` on the job pipe | 5.6 |
/// | [`Condvar`](Handoff::Condvar) | nothing: the loop polls | a condvar | any |
/// | [`Spin`](Handoff::Spin) | nothing: the loop busy-polls | never (they spin) | any |
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
    /// The question's design: job pointers go out through one pipe with
    /// `IORING_OP_WRITE`, result pointers come back through another that the
    /// loop reads with `IORING_OP_READ`. No spinning, no skipped wakes.
    ///
    /// Requires Linux 5.6 (`IORING_OP_READ`, `IORING_OP_WRITE`).
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

    /// Why this kernel cannot run this mechanism, or `None` if it can.
    pub fn unsupported_reason(self, caps: &Capabilities) -> Option<String> {
        if !caps.io_uring {
            if matches!(self, Handoff::Condvar | Handoff::Spin | Handoff::Auto) {
                return None;
            }
            return Some(format!(
                "io_uring is unavailable: {}",
                caps.io_uring_error
                    .as_deref()
                    .unwrap_or("io_uring_setup failed")
            ));
        }
        let missing = |what: &str, since: &str| {
            Some(format!(
                "needs {what} (Linux {since}); kernel {} lacks it",
                caps.release
            ))
        };
        match self {
            Handoff::Auto | Handoff::Condvar | Handoff::Spin => None,
            Handoff::MsgRing if !caps.msg_ring => missing("IORING_OP_MSG_RING", "5.18"),
            Handoff::MsgRing if !caps.defer_taskrun => {
                missing("IORING_SETUP_DEFER_TASKRUN for worker rings", "6.1")
            }
            Handoff::MsgRing if !caps.cqe_skip => missing("IOSQE_CQE_SKIP_SUCCESS", "5.17"),
            Handoff::MsgRingSync if !caps.sync_msg_ring => {
                missing("IORING_REGISTER_SEND_MSG_RING (ringless MSG_RING)", "6.13")
            }
            Handoff::Futex if !caps.futex => {
                missing("IORING_OP_FUTEX_WAIT/IORING_OP_FUTEX_WAKE", "6.7")
            }
            Handoff::Futex if !caps.cqe_skip => missing("IOSQE_CQE_SKIP_SUCCESS", "5.17"),
            Handoff::EventFd if !caps.eventfd => Some("eventfd(2) failed".into()),
            Handoff::EventFd if !caps.poll_multishot => {
                missing("multishot IORING_OP_POLL_ADD", "5.13")
            }
            Handoff::Pipe if !caps.read_write => missing("IORING_OP_READ/IORING_OP_WRITE", "5.6"),
            _ => None,
        }
    }
}

impl fmt::Display for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Handoff {
    type Err = Error;

    fn from_str(s: &str) -> Result<Handoff, Error> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        std::iter::once(Handoff::Auto)
            .chain(Handoff::ALL)
            .find(|h| h.name() == s)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "unknown handoff {s:?}; expected one of auto, msg-ring, msg-ring-sync, \
                         eventfd, futex, pipe, condvar, spin"
                    ),
                )
            })
    }
}

/// The outcome of choosing a mechanism: what was asked, what runs, and why.
#[derive(Clone, Debug)]
pub struct Selection {
    /// What was asked for (after the environment override).
    pub requested: Handoff,
    /// Where the request came from: `"builder"` or `"RINGPOOL_HANDOFF"`.
    pub source: &'static str,
    /// The mechanism that runs.
    pub chosen: Handoff,
    /// Mechanisms `Auto` passed over, each with the reason.
    pub skipped: Vec<(Handoff, String)>,
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (requested {} via {})",
            self.chosen, self.requested, self.source
        )?;
        for (h, why) in &self.skipped {
            write!(f, "; skipped {h}: {why}")?;
        }
        Ok(())
    }
}

/// Mechanisms named in `RINGPOOL_UNSUPPORTED` (comma-separated) are treated
/// as missing from the kernel, so tests can force every fallback.
pub(crate) fn masked() -> Vec<Handoff> {
    std::env::var("RINGPOOL_UNSUPPORTED")
        .ok()
        .map(|v| {
            v.split(',')
                .filter(|s| !s.trim().is_empty())
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves `requested` (overridden by `RINGPOOL_HANDOFF`) against `caps`.
///
/// # Errors
///
/// `InvalidConfig` for an unparsable override; `Unsupported(h)` when a
/// concrete mechanism was asked for and this kernel (or the
/// `RINGPOOL_UNSUPPORTED` mask) lacks it.
pub(crate) fn select(requested: Handoff, caps: &Capabilities) -> Result<Selection, Error> {
    let (requested, source) = match std::env::var("RINGPOOL_HANDOFF") {
        Ok(v) if !v.trim().is_empty() => (v.parse::<Handoff>()?, "RINGPOOL_HANDOFF"),
        _ => (requested, "builder"),
    };
    let mask = masked();
    let reason = |h: Handoff| -> Option<String> {
        if mask.contains(&h) {
            Some("disabled by RINGPOOL_UNSUPPORTED".into())
        } else {
            h.unsupported_reason(caps)
        }
    };
    if requested != Handoff::Auto {
        return match reason(requested) {
            None => Ok(Selection {
                requested,
                source,
                chosen: requested,
                skipped: vec![],
            }),
            Some(why) => Err(Error::new(
                ErrorKind::Unsupported(requested),
                format!("handoff {requested} is unavailable: {why}"),
            )),
        };
    }
    let mut skipped = Vec::new();
    for h in Handoff::AUTO_ORDER {
        match reason(h) {
            None => {
                return Ok(Selection {
                    requested,
                    source,
                    chosen: h,
                    skipped,
                })
            }
            Some(why) => skipped.push((h, why)),
        }
    }
    // Condvar has no requirements, so this is unreachable unless masked too.
    Err(Error::new(
        ErrorKind::Unsupported(Handoff::Auto),
        "every handoff is unavailable or masked by RINGPOOL_UNSUPPORTED",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in std::iter::once(Handoff::Auto).chain(Handoff::ALL) {
            assert_eq!(h.name().parse::<Handoff>().unwrap(), h);
        }
        assert_eq!(
            "MSG_RING_SYNC".parse::<Handoff>().unwrap(),
            Handoff::MsgRingSync
        );
        let e = "smoke-signals".parse::<Handoff>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("msg-ring-sync"));
    }

    #[test]
    fn old_kernel_falls_back_to_condvar() {
        let mut caps = Capabilities::get().clone();
        caps.io_uring = false;
        caps.io_uring_error = Some("ENOSYS".into());
        let s = select(Handoff::Auto, &caps).unwrap();
        if std::env::var("RINGPOOL_HANDOFF").is_err() {
            assert_eq!(s.chosen, Handoff::Condvar);
            assert_eq!(s.skipped.len(), 5);
            let e = select(Handoff::Futex, &caps).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported(Handoff::Futex));
        }
    }

    #[test]
    fn pre_6_13_kernel_skips_ringless() {
        let mut caps = Capabilities::get().clone();
        caps.sync_msg_ring = false;
        caps.futex = false;
        if std::env::var("RINGPOOL_HANDOFF").is_err() && caps.msg_ring && caps.defer_taskrun {
            let s = select(Handoff::Auto, &caps).unwrap();
            assert_eq!(s.chosen, Handoff::MsgRing);
            assert_eq!(s.skipped[0].0, Handoff::MsgRingSync);
            assert!(s.skipped[0].1.contains("6.13"), "{}", s.skipped[0].1);
        }
    }
}
