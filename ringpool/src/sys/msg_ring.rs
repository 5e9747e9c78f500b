//! Ringless `IORING_OP_MSG_RING`: `io_uring_register(-1,
//! IORING_REGISTER_SEND_MSG_RING, &sqe, 1)` (Linux 6.13).
//!
//! Posts a CQE straight into a target ring from a thread that owns no ring
//! (the kernel checks the target ring and posts the CQE itself, on the
//! caller's thread). The io-uring crate does not wrap this register opcode,
//! so the SQE is laid out here by hand.

use super::fault::{check, Site};
use std::io;
use std::os::fd::RawFd;

/// `IORING_REGISTER_SEND_MSG_RING` from `include/uapi/linux/io_uring.h` (v6.13).
pub(crate) const IORING_REGISTER_SEND_MSG_RING: libc::c_uint = 31;
/// `IORING_OP_MSG_RING` (v5.18).
const IORING_OP_MSG_RING: u8 = 40;

/// The 64-byte `struct io_uring_sqe`, with only the fields MSG_RING reads
/// named (`include/uapi/linux/io_uring.h`).
#[repr(C)]
#[derive(Default)]
struct MsgSqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    off: u64,
    addr: u64,
    len: u32,
    msg_ring_flags: u32,
    user_data: u64,
    buf_index: u16,
    personality: u16,
    file_index: u32,
    addr3: u64,
    pad: u64,
}
const _: () = assert!(std::mem::size_of::<MsgSqe>() == 64);

/// Posts `{user_data, res}` as a CQE on the ring `target` (flags 0).
///
/// Never blocks and never fails because the target CQ is full (the kernel
/// queues the CQE in kernel memory past the CQ's end, growing without
/// bound): callers must bound what they send.
///
/// # Errors
///
/// `EBADF`/`EBADFD` if `target` is not a live ring, `EINVAL` on a kernel
/// older than 6.13 that does not know the opcode, `ENOMEM` when the kernel
/// cannot allocate the message (DEFER_TASKRUN targets).
pub(crate) fn send(target: RawFd, user_data: u64, res: i32) -> io::Result<()> {
    check(Site::SyncMsg)?;
    let sqe = MsgSqe {
        opcode: IORING_OP_MSG_RING,
        fd: target,
        off: user_data,
        addr: 0, // IORING_MSG_DATA
        len: res as u32,
        ..MsgSqe::default()
    };
    // SAFETY: `sqe` is a live, correctly laid-out 64-byte SQE (size asserted
    // above) that the kernel only copies in; `nr_args` is 1 as required, and
    // fd -1 selects the "blind" (ringless) register path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            -1 as libc::c_int,
            IORING_REGISTER_SEND_MSG_RING,
            &sqe as *const MsgSqe,
            1 as libc::c_uint,
        )
    };
    super::cvt(r).map(drop)
}
