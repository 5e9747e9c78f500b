//! Waking a runtime from other threads: tasks woken there, and the signal
//! that reaches the ring when (and only when) the loop sleeps.
//!
//! The protocol is `protocol::remote` (a list and one state word, checked
//! by loom); this file adds the signal: a ringless `IORING_OP_MSG_RING` straight into the runtime's CQ
//! (Linux 6.13), or else a write to an eventfd that the ring polls.

use super::task::Header;
use crate::protocol::remote::RemoteWakes;
use crate::sys;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// `user_data` of the CQE a remote wake produces (MSG_RING) or of the
/// eventfd's multishot poll. Outside the pool's tag range and the runtime's
/// operation ids (whose bit 47 is clear).
pub(crate) const WAKE_USER_DATA: u64 = 1 << 47 | 1;

/// How a sleeping loop is told.
pub(crate) enum Signal {
    /// Ringless MSG_RING into the ring (this fd is a duplicate of the ring's,
    /// kept open as long as any waker can send, so its number is never
    /// reused under a send).
    Msg(OwnedFd),
    /// An eventfd the ring watches with a multishot poll.
    EventFd(OwnedFd),
}

/// A runtime's remote side, shared with every waker of its tasks.
pub(crate) struct Remote {
    pub(crate) wakes: RemoteWakes<Arc<Header>>,
    pub(crate) signal: Signal,
    /// The runtime is gone: wakes are dropped.
    closed: AtomicBool,
    /// Signals sent to a sleeping loop.
    pub(crate) signals: AtomicU64,
    /// Remote wakes that needed no signal (the loop was awake).
    pub(crate) quiet: AtomicU64,
}

impl Remote {
    pub(crate) fn new(signal: Signal) -> Remote {
        Remote {
            wakes: RemoteWakes::new(),
            signal,
            closed: AtomicBool::new(false),
            signals: AtomicU64::new(0),
            quiet: AtomicU64::new(0),
        }
    }

    /// A wake from a thread that is not the runtime's (or from outside it).
    pub(crate) fn wake(&self, task: Arc<Header>) {
        if self.closed.load(Relaxed) {
            return;
        }
        if !self.wakes.push(task) {
            self.quiet.fetch_add(1, Relaxed);
            return;
        }
        self.signals.fetch_add(1, Relaxed);
        let sent = match &self.signal {
            Signal::Msg(ring) => {
                (0..3).any(|_| sys::msg_ring::send(ring.as_raw_fd(), WAKE_USER_DATA, 0).is_ok())
            }
            Signal::EventFd(fd) => sys::eventfd::notify(fd).is_ok(),
        };
        if !sent {
            // The kernel refused (out of memory): let the next wake try.
            self.wakes.unring();
        }
    }

    /// The runtime shuts down: later wakes do nothing.
    pub(crate) fn close(&self) {
        self.closed.store(true, Relaxed);
    }
}
