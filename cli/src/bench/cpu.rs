//! Measuring the machine: thread and process CPU clocks, a per-thread
//! system-call counter, and how busy the rest of the machine was. (Pinning
//! is `ringpool::affinity`'s.)
//!
//! * Loop-side CPU: `getrusage(RUSAGE_THREAD)` (user + system) on the loop
//!   thread, read at the start and end of a measurement.
//! * Worker-side CPU: `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` minus the
//!   loop thread's share over the same window. Every other thread of the
//!   process is a worker of the contender being measured (pool workers,
//!   io-wq threads, tokio's blocking pool, rayon's pool): the bench's main
//!   thread sleeps in a channel receive while a measurement runs, the
//!   progress bar has no ticker thread, and the previous contender's threads
//!   have been joined.
//! * Loop-side system calls: a perf counter on the `raw_syscalls:sys_enter`
//!   tracepoint, opened for the loop thread only (needs tracefs mounted and
//!   permission for perf tracepoints; root here). Without it the figure is
//!   reported as unavailable, never guessed.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

/// CPU time (user + system) of the calling thread, from `getrusage(RUSAGE_THREAD)`.
pub fn thread_cpu() -> Duration {
    // SAFETY: `rusage` is a C struct of integers and timevals only (no
    // pointers, no enums), so all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live, writable, properly aligned rusage that the
    // call fills in; RUSAGE_THREAD asks for the calling thread only.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    if r != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of the whole process (every thread, living or exited).
pub fn process_cpu() -> Duration {
    // SAFETY: `timespec` is a C struct of two integers, so all-zero bytes
    // are a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a live, writable, properly aligned timespec that the
    // call fills in; CLOCK_PROCESS_CPUTIME_ID exists on every Linux.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One snapshot of the CPU clocks a measurement needs.
#[derive(Copy, Clone, Debug)]
pub struct CpuSnap {
    /// The loop thread's CPU time.
    pub loop_thread: Duration,
    /// The process's CPU time.
    pub process: Duration,
}

impl CpuSnap {
    /// Reads both clocks (call it on the loop thread).
    pub fn now() -> CpuSnap {
        CpuSnap {
            loop_thread: thread_cpu(),
            process: process_cpu(),
        }
    }

    /// `(loop, everything else)` CPU time spent since `earlier`.
    pub fn since(&self, earlier: &CpuSnap) -> (Duration, Duration) {
        let lp = self.loop_thread.saturating_sub(earlier.loop_thread);
        let all = self.process.saturating_sub(earlier.process);
        (lp, all.saturating_sub(lp))
    }
}

/// `PERF_TYPE_TRACEPOINT` from `include/uapi/linux/perf_event.h`.
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_FLAG_FD_CLOEXEC` from `include/uapi/linux/perf_event.h` (3.14).
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `exclude_hv` bit of `perf_event_attr`'s flag word.
const EXCLUDE_HV: u64 = 1 << 6;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER0` (64 bytes), from
/// `include/uapi/linux/perf_event.h`; the kernel zero-extends the rest.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 64);

/// The tracepoint id of `raw_syscalls:sys_enter`, if tracefs is mounted.
fn sys_enter_id() -> Option<u64> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|root| {
            std::fs::read_to_string(format!("{root}/events/raw_syscalls/sys_enter/id")).ok()
        })
        .and_then(|s| s.trim().parse().ok())
}

/// Counts the system calls the calling thread makes (and only that thread).
pub struct SyscallCounter {
    file: File,
}

impl SyscallCounter {
    /// Whether a counter can be opened here, and if not, why.
    pub fn probe() -> Result<(), String> {
        SyscallCounter::open().map(drop)
    }

    /// Opens a counter for the calling thread, counting from now.
    pub fn open() -> Result<SyscallCounter, String> {
        let id = sys_enter_id().ok_or(
            "raw_syscalls:sys_enter tracepoint not found (mount tracefs on /sys/kernel/tracing)",
        )?;
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            flags: EXCLUDE_HV,
            ..PerfEventAttr::default()
        };
        // SAFETY: perf_event_open only reads `attr`, which is live for the
        // call, and reads `attr.size` bytes of it: 64, its real size (a
        // const assert next to `PerfEventAttr` checks it). The other
        // arguments are integers: pid 0 and cpu -1 mean "this thread, any
        // CPU", group fd -1 means none. It returns a new fd or -1 and
        // touches no other memory of ours.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!(
                "perf_event_open(raw_syscalls:sys_enter): {}",
                io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` is not negative (the `fd < 0` branch returned), so
        // perf_event_open just created it: an open descriptor that nothing
        // else in the process owns or will close, so the OwnedFd may take
        // it over.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        Ok(SyscallCounter {
            file: File::from(owned),
        })
    }

    /// System calls entered so far, including this read itself.
    pub fn read(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        match self.file.read_exact(&mut buf) {
            Ok(()) => u64::from_ne_bytes(buf),
            Err(_) => 0,
        }
    }
}

/// Busy and total time of the whole machine, from the `cpu` line of
/// /proc/stat (in clock ticks).
#[derive(Copy, Clone, Debug, Default)]
pub struct MachineSnap {
    busy_ticks: u64,
    total_ticks: u64,
    process: Duration,
}

impl MachineSnap {
    /// Reads /proc/stat and this process's CPU clock.
    pub fn now() -> MachineSnap {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is
        // already included in user).
        let get = |i: usize| fields.get(i).copied().unwrap_or(0);
        let idle = get(3) + get(4);
        let total: u64 = (0..8).map(get).sum();
        MachineSnap {
            busy_ticks: total - idle,
            total_ticks: total,
            process: process_cpu(),
        }
    }

    /// CPU time other processes used since `earlier`, as a percentage of
    /// the whole machine's capacity over that time.
    pub fn foreign_pct_since(&self, earlier: &MachineSnap) -> f64 {
        // SAFETY: sysconf takes an integer and touches no memory of ours;
        // `_SC_CLK_TCK` is a valid name (an unknown one would return -1).
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let busy = self.busy_ticks.saturating_sub(earlier.busy_ticks) as f64 / hz;
        let total = self.total_ticks.saturating_sub(earlier.total_ticks) as f64 / hz;
        let ours = self.process.saturating_sub(earlier.process).as_secs_f64();
        if total <= 0.0 {
            return 0.0;
        }
        (100.0 * (busy - ours) / total).max(0.0)
    }
}
