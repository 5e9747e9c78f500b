//! `IORING_REGISTER_SYNC_CANCEL` (Linux 6.0): cancel a request on a ring
//! synchronously, without an SQE.
//!
//! Used when a loop handle is dropped without its `IoUring`: the pool's armed
//! SQE (a pipe read, a futex wait) is cancelled through the handle's
//! duplicate of the ring fd, after which the kernel no longer references the
//! memory that SQE was given, so it can be freed instead of leaked.

use std::io;
use std::os::fd::RawFd;

/// `IORING_REGISTER_SYNC_CANCEL` from `include/uapi/linux/io_uring.h` (v6.0).
const IORING_REGISTER_SYNC_CANCEL: libc::c_uint = 24;

/// `struct io_uring_sync_cancel_reg` (v6.0).
#[repr(C)]
#[derive(Default)]
struct SyncCancelReg {
    addr: u64,
    fd: i32,
    flags: u32,
    timeout_sec: i64,
    timeout_nsec: i64,
    opcode: u8,
    pad: [u8; 7],
    pad2: [u64; 3],
}
const _: () = assert!(std::mem::size_of::<SyncCancelReg>() == 64);

/// `IORING_ASYNC_CANCEL_ALL` (v5.19): every matching request, not the first.
const IORING_ASYNC_CANCEL_ALL: u32 = 1 << 0;

/// Cancels every request whose `user_data` is `user_data` on ring `ring_fd`,
/// waiting (up to one second) until they are gone. `Ok(())` also when no
/// such request exists (`ENOENT`: it completed already, or was never
/// submitted: an SQE still in the SQ cannot be cancelled).
///
/// # Errors
///
/// `EINVAL` on kernels before 6.0, `ETIME` if the request would not go away,
/// `EEXIST` from a thread that does not own a `SINGLE_ISSUER` ring.
pub(crate) fn sync_cancel(ring_fd: RawFd, user_data: u64) -> io::Result<()> {
    let reg = SyncCancelReg {
        addr: user_data,
        fd: -1,
        flags: IORING_ASYNC_CANCEL_ALL,
        timeout_sec: 1,
        ..SyncCancelReg::default()
    };
    // SAFETY: `reg` is a live, correctly laid out (size asserted above)
    // struct that the kernel only copies in; nr_args is 1 as required.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            IORING_REGISTER_SYNC_CANCEL,
            &reg as *const SyncCancelReg,
            1 as libc::c_uint,
        )
    };
    match super::cvt(r) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}
