//! Anonymous pipes carrying 8-byte pointers: the `pipe` backend (the
//! question's own design).
//!
//! Every message is exactly 8 bytes, below `PIPE_BUF` (4096), so a write is
//! atomic: writers never interleave, and a reader that asks for a multiple of
//! 8 bytes gets a multiple of 8 while every writer writes 8 (pipe(7): writes
//! of at most `PIPE_BUF` bytes are atomic).

use super::fault::{check, Site};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A pipe: (read end, write end), both close-on-exec and blocking.
pub(crate) fn new() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a live array of two ints, as pipe2 requires.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by pipe2 and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Asks the kernel for a pipe buffer of at least `bytes`; returns the size
/// granted. Failure is not fatal: the default (64 KiB) holds 8192 pointers.
pub(crate) fn set_size(fd: &OwnedFd, bytes: usize) -> io::Result<usize> {
    let want = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an int argument, no pointers.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Blocks until one 8-byte message arrives. `Ok(None)` means end of file:
/// every write end is closed.
///
/// # Errors
///
/// Any errno other than `EINTR`, or a short read (which cannot happen while
/// all writers write exactly 8 bytes, and is reported as `InvalidData`).
pub(crate) fn read_u64(fd: &OwnedFd) -> io::Result<Option<u64>> {
    check(Site::PipeRead)?;
    let mut v: u64 = 0;
    loop {
        // SAFETY: reads at most 8 bytes into a live local `u64`.
        let r = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        match r {
            8 => return Ok(Some(v)),
            0 => return Ok(None),
            r if r < 0 => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "torn pipe message",
                ))
            }
        }
    }
}

/// Writes one 8-byte message (atomically: 8 <= PIPE_BUF).
///
/// # Errors
///
/// Any errno other than `EINTR` (`EPIPE` once the read end is gone).
pub(crate) fn write_u64(fd: &OwnedFd, v: u64) -> io::Result<()> {
    check(Site::PipeWrite)?;
    loop {
        // SAFETY: writes 8 bytes from a live local `u64`.
        let r = unsafe { libc::write(fd.as_raw_fd(), (&v as *const u64).cast(), 8) };
        if r == 8 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if r < 0 && e.raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if r >= 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short pipe write"));
        }
        return Err(e);
    }
}

/// Sets `O_NONBLOCK` on `fd` (one end of a pipe: the other end's open file
/// description keeps its own flags).
pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and no pointers.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL takes an int argument, no pointers.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads as many whole 8-byte messages as fit in `buf` from a non-blocking
/// pipe; `Ok(0)` when it is empty.
///
/// # Errors
///
/// Any errno other than `EAGAIN`/`EINTR`, or a torn message (impossible
/// while every writer writes exactly 8 bytes), as `InvalidData`.
pub(crate) fn read_words(fd: RawFd, buf: &mut [u64]) -> io::Result<usize> {
    check(Site::PipeRead)?;
    loop {
        // SAFETY: reads at most `buf.len() * 8` bytes into `buf`, a live,
        // writable slice of exactly that many bytes.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len() * 8) };
        if r >= 0 {
            if r % 8 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "torn pipe message",
                ));
            }
            return Ok(r as usize / 8);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Writes `words` to a non-blocking pipe in one write(2): all of them or
/// none (`Ok(false)`, the pipe is full), since `words` holds at most
/// `PIPE_BUF` bytes and such writes are atomic.
///
/// # Errors
///
/// Any errno other than `EAGAIN`/`EINTR`.
pub(crate) fn write_words(fd: RawFd, words: &[u64]) -> io::Result<bool> {
    debug_assert!(words.len() * 8 <= libc::PIPE_BUF);
    check(Site::PipeWrite)?;
    loop {
        // SAFETY: writes `words.len() * 8` bytes from `words`, a live slice
        // of exactly that many bytes.
        let r = unsafe { libc::write(fd, words.as_ptr().cast(), words.len() * 8) };
        if r >= 0 {
            // Atomic (at most PIPE_BUF bytes): all or nothing.
            return Ok(r as usize == words.len() * 8);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(false),
            _ => return Err(e),
        }
    }
}
