//! The loop's doorbell: how workers tell the loop that results wait in its
//! queue, with at most one announcement in flight.
//!
//! The doorbell word is `0` (the loop will need a CQE to notice new results)
//! or `1` (a doorbell CQE is on its way, or the loop is awake and watching).
//!
//! * worker: push the result, then (after a SeqCst fence and a read that
//!   skips the common "already `1`" case) `swap(1)`; only the swap that sees
//!   `0` sends the CQE ([`Doorbell::should_ring`]).
//! * loop, on the doorbell CQE: `swap(0)`, then drain ([`Doorbell::ack`]).
//!   The swap reads the last worker's swap, so every result pushed before a
//!   suppressed ring is visible to the drain that follows (release/acquire
//!   through the read-modify-write chain).
//! * loop, before spinning: [`Doorbell::claim`] sets `1` so workers skip the
//!   syscall while the loop is watching; [`Doorbell::release`] undoes it,
//!   after which the loop drains once more.
//!
//! So the pool never has more than one doorbell CQE outstanding per loop,
//! whatever the number of results: the CQ cannot overflow from
//! announcements. For the `futex` backend this word is also the futex that
//! the loop's `IORING_OP_FUTEX_WAIT` sleeps on (expected value `0`).

use crate::sync::{
    fence, AtomicU32,
    Ordering::{AcqRel, Relaxed, SeqCst},
};

/// The doorbell word. See the module docs for the protocol.
pub(crate) struct Doorbell {
    word: AtomicU32,
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            word: AtomicU32::new(0),
        }
    }

    /// Worker side, after pushing a result: `true` if this worker must send
    /// the announcement.
    ///
    /// Most results find the word already `1`; they only read it, so the
    /// cache line is not taken from the loop on every job. That read is a
    /// Dekker handshake with [`ack`](Doorbell::ack) and
    /// [`release`](Doorbell::release): result push, SeqCst fence, read here;
    /// swap to `0`, SeqCst fence, drain there. If the read saw a `1` that the
    /// loop's swap then overwrote, the fences order our push before the
    /// loop's drain; if it saw a later `1`, another announcement (or the
    /// loop's own claim, followed by a release and a drain) is still to come.
    #[inline]
    pub(crate) fn should_ring(&self) -> bool {
        fence(SeqCst);
        if self.word.load(Relaxed) != 0 {
            return false;
        }
        self.word.swap(1, AcqRel) == 0
    }

    /// Worker side: a send failed for good; let the next result try again.
    #[inline]
    pub(crate) fn unring(&self) {
        self.word.swap(0, AcqRel);
    }

    /// Loop side, on a doorbell CQE, before draining.
    #[inline]
    pub(crate) fn ack(&self) {
        self.word.swap(0, AcqRel);
        fence(SeqCst);
    }

    /// Loop side, before spinning: `true` if the loop now holds the doorbell
    /// (and must [`release`](Doorbell::release) it); `false` if a CQE is
    /// already on its way.
    #[inline]
    pub(crate) fn claim(&self) -> bool {
        self.word.swap(1, AcqRel) == 0
    }

    /// Loop side, after spinning with the doorbell held; drain afterwards.
    #[inline]
    pub(crate) fn release(&self) {
        self.word.swap(0, AcqRel);
        fence(SeqCst);
    }

    /// The futex word (for `IORING_OP_FUTEX_WAIT` and futex(2) wakes).
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.word
    }
}
