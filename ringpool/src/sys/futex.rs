//! futex(2) on a `u32` word, process-private.
//!
//! Used by workers to sleep and by both sides to wake (the `futex`,
//! `msg-ring-sync` and `eventfd` backends park workers this way). The loop's
//! side of the `futex` backend waits with `IORING_OP_FUTEX_WAIT` instead, built
//! in `pool::doorbell`; the flags it needs are defined here.

use super::fault::{check, Site};
use crate::sync::AtomicU32;
use std::io;
use std::ptr;

/// `FUTEX2_SIZE_U32` from `include/uapi/linux/futex.h` (v6.7); libc lacks it.
pub(crate) const FUTEX2_SIZE_U32: u32 = 0x02;
/// `FUTEX2_PRIVATE` (= `FUTEX_PRIVATE_FLAG`), `include/uapi/linux/futex.h` (v6.7).
pub(crate) const FUTEX2_PRIVATE: u32 = 128;
/// `FUTEX_BITSET_MATCH_ANY`, truncated to the 32-bit futex size.
pub(crate) const MATCH_ANY: u64 = 0xffff_ffff;

/// Sleeps while `*word == expected`, until woken, a signal, or a spurious
/// return. Returns `Ok(())` in all of those cases and when the value already
/// differed (`EAGAIN`); callers re-check their condition in a loop.
///
/// # Errors
///
/// Any errno other than `EAGAIN`/`EINTR` (for example an injected fault).
pub(crate) fn wait(word: &AtomicU32, expected: u32) -> io::Result<()> {
    check(Site::FutexWait)?;
    // SAFETY: `word` is a live, aligned `u32` for the duration of the call
    // (borrowed); FUTEX_WAIT only reads it. A null timeout means "no timeout",
    // and the unused `uaddr2`/`val3` arguments are ignored for FUTEX_WAIT.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ptr::null::<libc::timespec>(),
            ptr::null::<u32>(),
            0u32,
        )
    };
    match super::cvt(r) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Wakes up to `n` threads sleeping on `word`; returns how many were woken.
///
/// # Errors
///
/// The errno of a failed call (in practice only an injected fault).
pub(crate) fn wake(word: &AtomicU32, n: u32) -> io::Result<usize> {
    check(Site::FutexWake)?;
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a hash key; it is
    // live and aligned because it is borrowed. No other pointer is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n.min(i32::MAX as u32),
            ptr::null::<libc::timespec>(),
            ptr::null::<u32>(),
            0u32,
        )
    };
    super::cvt(r).map(|n| n as usize)
}
