//! The handoff mechanisms: one file per mechanism, one place that
//! dispatches among them, and the probe and choice beside them.
//!
//! | file | mechanism |
//! |---|---|
//! | [`msg_ring`] | each worker owns a ring; MSG_RING both ways (the answer's design, batched) |
//! | [`msg_ring_sync`] | ringless MSG_RING from workers that sleep on a futex |
//! | [`eventfd`] | workers write an eventfd the loop polls (multishot) |
//! | [`futex`] | the loop waits with `IORING_OP_FUTEX_WAIT`, wakes with `FUTEX_WAKE` SQEs |
//! | [`pipe`] | pointers through two pipes (the question's design) |
//! | [`condvar`] | mutex + condvar; the loop polls (the question's first idea) |
//! | [`spin`] | lock-free queues busy-polled on both sides |
//!
//! Each file holds the mechanism's four roles (`PoolSide`, `Worker`,
//! `Mailbox`, `LoopSide`; see [`dispatch`]) and says what it needs from
//! the kernel. [`common`] holds the pieces several of them share; [`caps`]
//! probes the kernel; [`select`] picks a mechanism for `auto`.

pub(crate) mod caps;
pub(crate) mod common;
#[macro_use]
pub(crate) mod dispatch;
mod names;
pub(crate) mod select;

// The one dispatch place: each mechanism's module, and its variant in the
// role enums (`PoolSide`, `Worker`, `Mailbox`, `LoopSide`).
backends! {
    MsgRing => msg_ring,
    MsgRingSync => msg_ring_sync,
    EventFd => eventfd,
    Futex => futex,
    Pipe => pipe,
    Condvar => condvar,
    Spin => spin,
}

pub use caps::Capabilities;
pub use dispatch::LoopWait;
pub use names::{Handoff, ParseHandoffError};
pub use select::Selection;
