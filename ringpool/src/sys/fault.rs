//! Fault injection at the system-call layer (feature `fault-injection`).
//!
//! Tests arm a [`Site`] with an errno and a count; the next `count` calls made
//! at that site fail with that errno before reaching the kernel. The pool must
//! turn each one into a retry or a typed error, never a lost job or a hang.
//! Without the feature, [`check`] is an inlined no-op and nothing here is
//! public.

use std::io;

/// A system call site that tests can make fail.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Site {
    /// `futex(FUTEX_WAKE)` from either side.
    FutexWake,
    /// `futex(FUTEX_WAIT)` in a parked worker.
    FutexWait,
    /// `write(2)` to the loop's eventfd doorbell.
    EventfdWrite,
    /// The ringless `IORING_REGISTER_SEND_MSG_RING` call.
    SyncMsg,
    /// `io_uring_enter` on a worker's own ring (msg-ring backend).
    WorkerEnter,
    /// `write(2)` of a result pointer into the result pipe.
    PipeWrite,
    /// `read(2)` of a job pointer from the job pipe.
    PipeRead,
    /// Spawning a worker thread.
    Spawn,
    /// Spawning a runtime thread of `runtime::per_core`.
    RuntimeSpawn,
}

#[cfg(feature = "fault-injection")]
mod imp {
    use super::Site;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// A site's fault: `skip` calls pass, then `count` fail with `errno`.
    struct Armed {
        errno: i32,
        skip: u64,
        count: u64,
    }

    static ARMED: AtomicBool = AtomicBool::new(false);
    static TABLE: Mutex<Option<HashMap<Site, Armed>>> = Mutex::new(None);

    /// Makes the next `count` calls at `site` fail with `errno`.
    pub fn inject(site: Site, errno: i32, count: u64) {
        inject_after(site, errno, 0, count);
    }

    /// Lets the next `skip` calls at `site` through, then makes the `count`
    /// after them fail with `errno`.
    pub fn inject_after(site: Site, errno: i32, skip: u64, count: u64) {
        let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        t.get_or_insert_with(HashMap::new)
            .insert(site, Armed { errno, skip, count });
        ARMED.store(true, Ordering::SeqCst);
    }

    /// Removes every armed fault.
    pub fn clear() {
        let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        *t = None;
        ARMED.store(false, Ordering::SeqCst);
    }

    /// How many injections at `site` are still armed.
    pub fn remaining(site: Site) -> u64 {
        let t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        t.as_ref().and_then(|m| m.get(&site)).map_or(0, |a| a.count)
    }

    pub(crate) fn take(site: Site) -> Option<i32> {
        if !ARMED.load(Ordering::Relaxed) {
            return None;
        }
        let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let armed = t.as_mut()?.get_mut(&site)?;
        if armed.skip > 0 {
            armed.skip -= 1;
            return None;
        }
        if armed.count == 0 {
            return None;
        }
        armed.count -= 1;
        Some(armed.errno)
    }
}

#[cfg(feature = "fault-injection")]
pub use imp::{clear, inject, inject_after, remaining};

/// Returns the injected error for `site`, if one is armed.
#[inline(always)]
pub(crate) fn check(site: Site) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(errno) = imp::take(site) {
        return Err(io::Error::from_raw_os_error(errno));
    }
    let _ = site;
    Ok(())
}
