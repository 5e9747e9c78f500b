//! CPU affinity of the calling thread: pin it, or read which CPUs it may run on.
//!
//! The pool pins its workers with these ([`PoolBuilder::pin_to`](crate::PoolBuilder::pin_to));
//! they are public so that an event loop, a thread-per-core program or a
//! benchmark pins its own threads the same way, and can tell when two of its
//! threads share a CPU (a spin budget there only burns the time the other
//! side needs).

use crate::sys;
use std::io;

/// Pins the calling thread to CPU `cpu`.
///
/// # Errors
///
/// `InvalidInput` naming the CPU if it is beyond the kernel's CPU set size;
/// the errno of `sched_setaffinity(2)` otherwise (`EINVAL` for a CPU that
/// does not exist or is not allowed to this process).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    sys::thread::pin_current(cpu)
}

/// The CPUs the calling thread may run on, in increasing order
/// (`sched_getaffinity(2)`).
///
/// # Errors
///
/// The errno of `sched_getaffinity(2)`.
pub fn current_thread_cpus() -> io::Result<Vec<usize>> {
    sys::thread::allowed_cpus()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_and_read_back() {
        let cpus = current_thread_cpus().unwrap();
        assert!(!cpus.is_empty());
        let first = cpus[0];
        std::thread::spawn(move || {
            pin_current_thread(first).unwrap();
            assert_eq!(current_thread_cpus().unwrap(), vec![first]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_missing_cpu_is_named() {
        let e = pin_current_thread(1 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("1048576"), "{e}");
        let e = pin_current_thread(libc::CPU_SETSIZE as usize - 1).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("{}", libc::CPU_SETSIZE - 1)),
            "{e}"
        );
    }
}
