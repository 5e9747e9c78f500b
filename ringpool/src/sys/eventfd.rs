//! eventfd(2): the `eventfd` backend's doorbell into the loop's ring.
//!
//! Created with `EFD_NONBLOCK`: the loop watches it with a multishot
//! `IORING_OP_POLL_ADD`, and an io_uring write to a *blocking* eventfd is
//! punted to io-wq every time (measured on 6.18: it cannot complete inline),
//! so nothing here may block.

use super::fault::{check, Site};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Creates a non-blocking, close-on-exec eventfd with a zero counter.
pub(crate) fn new() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; flags are valid constants.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to the counter, waking pollers.
///
/// If the counter is about to overflow (`EAGAIN`, after 2^64-2 writes with no
/// read), it is drained and the write retried, as mio does.
///
/// # Errors
///
/// Any errno other than `EAGAIN` (e.g. `EBADF`, or an injected fault).
pub(crate) fn notify(fd: &OwnedFd) -> io::Result<()> {
    check(Site::EventfdWrite)?;
    let one: u64 = 1;
    loop {
        // SAFETY: writes 8 bytes from a live local `u64` to an fd we borrow.
        let r = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if r == 8 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => {
                drain(fd)?;
            }
            _ => return Err(e),
        }
    }
}

/// Reads (and so zeroes) the counter; `Ok(0)` if it was already zero.
pub(crate) fn drain(fd: &OwnedFd) -> io::Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live local `u64`.
    let r = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    if r == 8 {
        Ok(v)
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EAGAIN) {
            Ok(0)
        } else {
            Err(e)
        }
    }
}
