//! `msg-ring-sync`: workers own no ring; they post the loop's doorbell (or,
//! with `Announce::PerJob`, each result) straight into its CQ with the
//! ringless `IORING_REGISTER_SEND_MSG_RING`, and sleep on a futex when idle.
//!
//! Needs `IORING_REGISTER_SEND_MSG_RING` (Linux 6.13), probed by sending a
//! real message: one syscall per batch on the worker side, no ring per
//! worker, nothing for the loop to arm.

use super::caps::Capabilities;
use super::common::{self, FutexWorker, MsgMailbox, MsgSender, QueueMechanism, QueuePool};
use super::dispatch::{
    BackendConfig, LoopSideOps, PoolCqe, Sink,
};
use crate::error::Error;
use crate::pool::workers::Workers;
use crate::stats::LoopStats;
use crate::sys;
use std::io;
use std::os::fd::RawFd;

/// The mechanism, as its pool side and workers see it.
pub(crate) struct MsgRingSync;

impl QueueMechanism for MsgRingSync {
    const PER_JOB: bool = true;

    fn unsupported(caps: &Capabilities) -> Option<String> {
        if !caps.sync_msg_ring {
            return Some(caps.missing("IORING_REGISTER_SEND_MSG_RING (ringless MSG_RING)", "6.13"));
        }
        None
    }
}

pub(crate) type PoolSide = QueuePool<MsgRingSync>;
pub(crate) type Worker = FutexWorker<MsgRingSync>;

impl MsgSender for Worker {
    fn send_msg(&mut self, target: RawFd, user_data: u64) -> io::Result<()> {
        sys::msg_ring::send(target, user_data, 0)
    }
}

pub(crate) type Mailbox = MsgMailbox<Worker>;

pub(crate) struct LoopSide {
    /// `Announce::PerJob`: results come as one CQE per job (see
    /// [`common::on_msg_cqe`]).
    per_job: bool,
}

impl LoopSideOps for LoopSide {
    type Pool = PoolSide;
    type Mailbox = Mailbox;

    fn register(_pool: &PoolSide, cfg: &BackendConfig) -> Result<(Self, Mailbox), Error> {
        let mailbox = Mailbox::new(cfg);
        Ok((LoopSide { per_job: mailbox.per_job() }, mailbox))
    }

    fn on_cqe(
        &mut self,
        cqe: PoolCqe,
        _pool: &PoolSide,
        _workers: &Workers,
        sink: &mut impl Sink,
        _stats: &mut LoopStats,
    ) -> bool {
        common::on_msg_cqe(self.per_job, cqe, sink).unwrap_or(false)
    }
}
