//! `eventfd`: workers ring an `EFD_NONBLOCK` eventfd that the loop watches
//! with a multishot `IORING_OP_POLL_ADD`; idle workers sleep on a futex.
//!
//! Needs multishot `IORING_OP_POLL_ADD` (Linux 5.13). The eventfd is
//! non-blocking and written with write(2): an io_uring write to a blocking
//! eventfd is punted to io-wq every time.

use super::caps::Capabilities;
use super::common::{self, FutexWorker, QueueMechanism, QueuePool, ResultQueue};
use super::dispatch::{
    BackendConfig, LoopSideOps, MailboxOps, PoolCqe, Sink,
};
use crate::error::Error;
use crate::pool::job::JobRef;
use crate::pool::loop_shared::LoopShared;
use crate::pool::workers::{WorkerStats, Workers};
use crate::stats::LoopStats;
use crate::sys;
use crate::tag::{self, Kind};
use io_uring::{cqueue, opcode, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The mechanism, as its pool side and workers see it.
pub(crate) struct EventFd;

impl QueueMechanism for EventFd {
    fn unsupported(caps: &Capabilities) -> Option<String> {
        if !caps.eventfd {
            return Some("eventfd(2) failed".into());
        }
        if !caps.poll_multishot {
            return Some(caps.missing("multishot IORING_OP_POLL_ADD", "5.13"));
        }
        None
    }
}

pub(crate) type PoolSide = QueuePool<EventFd>;
pub(crate) type Worker = FutexWorker<EventFd>;

pub(crate) struct Mailbox {
    results: ResultQueue,
    /// The loop polls it; a worker that flips the doorbell writes it.
    eventfd: OwnedFd,
}

impl MailboxOps for Mailbox {
    type Worker = Worker;

    #[inline]
    fn deliver(&self, home: &LoopShared, _: &mut Worker, jobs: &mut Vec<JobRef>, stats: &WorkerStats) {
        common::deliver_batched(&self.results, home, jobs, stats, |_| {
            sys::eventfd::notify(&self.eventfd)
        })
    }

    #[inline]
    fn pop(&self) -> Option<JobRef> {
        self.results.pop()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    fn results(&self) -> Option<&ResultQueue> {
        Some(&self.results)
    }
}

pub(crate) struct LoopSide {
    /// The mailbox's eventfd, which the loop's `LoopShared` keeps open.
    eventfd: RawFd,
    /// The multishot poll is armed.
    armed: bool,
}

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(_pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let eventfd = sys::eventfd::new().map_err(|e| Error::io("cannot create an eventfd", e))?;
        let side = LoopSide {
            eventfd: eventfd.as_raw_fd(),
            armed: false,
        };
        let results = ResultQueue::new(cfg.max_in_flight);
        Ok((side, Mailbox { results, eventfd }))
    }

    fn arm(
        &mut self,
        ring: &mut IoUring,
        _home: &LoopShared,
        reg: u16,
        stats: &mut LoopStats,
    ) -> io::Result<bool> {
        if self.armed {
            return Ok(false);
        }
        let sqe = opcode::PollAdd::new(types::Fd(self.eventfd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(tag::encode(Kind::Poll, reg, 0));
        // SAFETY: POLL_ADD references no user memory: only the eventfd, of
        // which the request holds its own reference in the kernel.
        unsafe { common::push_sqe(ring, &sqe, stats)? };
        self.armed = true;
        Ok(true)
    }

    fn on_cqe(
        &mut self,
        cqe: PoolCqe,
        _pool: &PoolSide,
        _workers: &Workers,
        _sink: &mut impl Sink,
        stats: &mut LoopStats,
    ) -> bool {
        if cqe.kind != Kind::Poll {
            return false;
        }
        // Without F_MORE the multishot poll has ended: re-arm before sleeping
        // (a re-armed poll on a non-zero counter fires at once).
        if !cqueue::more(cqe.flags) {
            self.armed = false;
        }
        if cqe.res < 0 && cqe.res != -libc::ECANCELED {
            stats.errors += 1;
        }
        true
    }

    fn cancelled(&mut self, what: Kind) {
        if what == Kind::Poll {
            self.armed = false;
        }
    }

    fn armed(&self, reg: u16) -> Vec<u64> {
        self.armed
            .then(|| tag::encode(Kind::Poll, reg, 0))
            .into_iter()
            .collect()
    }

    fn busy(&self) -> bool {
        self.armed
    }
}
