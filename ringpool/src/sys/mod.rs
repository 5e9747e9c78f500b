//! The only place that talks to the kernel directly.
//!
//! Every function here is a small safe wrapper around one system call (or a
//! short, fixed sequence of them) and returns `io::Result`, keeping the errno
//! intact. One file per handoff backend: [`futex`], [`eventfd`], [`pipe`] and
//! [`msg_ring`] (ringless `IORING_REGISTER_SEND_MSG_RING`). Rings themselves
//! are built with the `io-uring` crate; [`thread`] holds CPU pinning and the
//! kernel release.
//!
//! With the `fault-injection` feature, [`fault`] lets tests make chosen calls
//! fail with a chosen errno; without it the hooks compile to nothing.

pub(crate) mod cancel;
pub(crate) mod eventfd;
pub mod fault;
pub(crate) mod futex;
pub(crate) mod msg_ring;
pub(crate) mod net;
pub(crate) mod pipe;
pub(crate) mod thread;

use std::io;

/// Turns a libc return value into `io::Result`, reading `errno` on `-1`.
#[inline]
pub(crate) fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `dup(2)` with close-on-exec: keeps the file (a ring) alive and its number
/// unreused for as long as the returned fd lives.
pub(crate) fn dup_cloexec(fd: std::os::fd::RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument and no pointers.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a new descriptor that nobody else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r) })
}

/// `kcmp(KCMP_FILE)`: `a` and `b` refer to the same open file.
///
/// # Errors
///
/// `ENOSYS` on a kernel built without `CONFIG_KCMP`; `EBADF` if either fd
/// is not open.
pub(crate) fn same_file(a: std::os::fd::RawFd, b: std::os::fd::RawFd) -> io::Result<bool> {
    /// `KCMP_FILE` from `include/uapi/linux/kcmp.h` (v3.5).
    const KCMP_FILE: libc::c_int = 0;
    // SAFETY: kcmp takes two pids, a type and two integer arguments; no
    // pointers. pid = ours for both sides.
    let r = unsafe {
        let pid = libc::getpid();
        libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a, b)
    };
    cvt(r).map(|r| r == 0)
}
