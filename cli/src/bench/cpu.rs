//! Measuring the machine: thread and process CPU clocks, context switches,
//! system-call counters, and how busy the rest of the machine was. (Pinning
//! is `ringpool::affinity`'s.)
//!
//! * Loop-side CPU: `getrusage(RUSAGE_THREAD)` (user + system) on the loop
//!   thread, read at the start and end of a measurement.
//! * Other threads' CPU: `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` minus the
//!   loop thread's share over the same window. Every other thread of the
//!   process is a worker of the contender being measured (pool workers,
//!   io-wq threads, tokio's blocking pool, rayon's pool): the bench's main
//!   thread sleeps in a join while a measurement runs, the progress bar has
//!   no ticker thread, and the previous contender's threads have been joined.
//! * Voluntary context switches: `ru_nvcsw` of `getrusage(RUSAGE_THREAD)` on
//!   the loop thread for the loop's share, and of `getrusage(RUSAGE_SELF)`
//!   for the whole process. RUSAGE_SELF sums every live thread and the
//!   counts that threads which have exited left in the process's signal
//!   struct (Linux adds a thread's counts there when it exits), so a thread
//!   that exits during the window (a tokio blocking thread, a rayon thread,
//!   an io-wq worker) does not drop out of the count.
//! * System calls: perf counters on the `raw_syscalls:sys_enter`
//!   tracepoint (needs tracefs, which [`ensure_tracefs`] mounts if it can,
//!   and permission for perf tracepoints; root here). [`ProcessSyscalls`]
//!   opens one for the loop thread alone and one, with `inherit`, for every
//!   thread the process has when counting starts, so threads created later
//!   by any of them are counted too. Without tracefs or perf the figures are
//!   reported as unavailable, never guessed.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

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

/// `getrusage(who)`, or all zeros if it fails.
fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: `rusage` is a C struct of integers and timevals only (no
    // pointers, no enums), so all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live, writable, properly aligned rusage that the
    // call fills in; `who` is RUSAGE_THREAD, RUSAGE_SELF or RUSAGE_CHILDREN
    // (the callers below), all valid on Linux. On failure `ru` stays all
    // zeros.
    unsafe { libc::getrusage(who, &mut ru) };
    ru
}

/// CPU time of this process's children that have exited and been waited
/// for (the echo section's server processes: each is reaped when it stops).
fn children_cpu() -> Duration {
    let ru = rusage(libc::RUSAGE_CHILDREN);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One snapshot of the CPU clocks and context-switch counts a measurement
/// needs (take it on the loop thread).
#[derive(Copy, Clone, Debug)]
pub struct CpuSnap {
    /// The loop thread's CPU time.
    pub loop_thread: Duration,
    /// The process's CPU time.
    pub process: Duration,
    /// The loop thread's voluntary context switches.
    pub loop_vcsw: u64,
    /// The process's voluntary context switches (every thread, including
    /// threads that have exited).
    pub process_vcsw: u64,
}

/// What a measurement used, from two [`CpuSnap`]s.
#[derive(Copy, Clone, Debug)]
pub struct CpuUse {
    /// CPU time of the loop thread.
    pub loop_cpu: Duration,
    /// CPU time of every other thread.
    pub other_cpu: Duration,
    /// Voluntary context switches of the loop thread.
    pub loop_vcsw: u64,
    /// Voluntary context switches of the whole process (loop included).
    pub process_vcsw: u64,
}

impl CpuSnap {
    /// Reads the clocks and counts (call it on the loop thread).
    pub fn now() -> CpuSnap {
        let me = rusage(libc::RUSAGE_THREAD);
        let all = rusage(libc::RUSAGE_SELF);
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        CpuSnap {
            loop_thread: tv(me.ru_utime) + tv(me.ru_stime),
            process: process_cpu(),
            loop_vcsw: me.ru_nvcsw as u64,
            process_vcsw: all.ru_nvcsw as u64,
        }
    }

    /// What was used since `earlier`.
    pub fn since(&self, earlier: &CpuSnap) -> CpuUse {
        let loop_cpu = self.loop_thread.saturating_sub(earlier.loop_thread);
        let all = self.process.saturating_sub(earlier.process);
        CpuUse {
            loop_cpu,
            other_cpu: all.saturating_sub(loop_cpu),
            loop_vcsw: self.loop_vcsw.saturating_sub(earlier.loop_vcsw),
            process_vcsw: self.process_vcsw.saturating_sub(earlier.process_vcsw),
        }
    }
}

/// `PERF_TYPE_TRACEPOINT` from `include/uapi/linux/perf_event.h`.
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_FLAG_FD_CLOEXEC` from `include/uapi/linux/perf_event.h` (3.14).
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `inherit` bit of `perf_event_attr`'s flag word: the counter also counts
/// the threads (and processes) its task creates after the counter opened.
const INHERIT: u64 = 1 << 1;
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

/// Where the bench looks for tracefs.
const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracepoint id of `raw_syscalls:sys_enter`, if tracefs is mounted.
fn sys_enter_id() -> Option<u64> {
    TRACEFS_ROOTS
        .iter()
        .find_map(|root| {
            std::fs::read_to_string(format!("{root}/events/raw_syscalls/sys_enter/id")).ok()
        })
        .and_then(|s| s.trim().parse().ok())
}

/// Makes the `raw_syscalls:sys_enter` tracepoint's id readable: if no
/// tracefs is mounted, mounts one on `/sys/kernel/tracing`
/// (`mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL)`, which needs
/// root) and leaves it mounted. Returns what it found or did, or why the
/// tracepoint stays out of reach.
pub fn ensure_tracefs() -> Result<String, String> {
    if sys_enter_id().is_some() {
        return Ok("tracefs was mounted".into());
    }
    rustix::mount::mount(
        "nodev",
        TRACEFS_ROOTS[0],
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None::<&std::ffi::CStr>,
    )
    .map_err(|e| {
        format!(
            "tracefs not mounted, and mounting it on {} failed: {e}",
            TRACEFS_ROOTS[0]
        )
    })?;
    match sys_enter_id() {
        Some(_) => Ok(format!(
            "tracefs mounted on {} by this run (left mounted)",
            TRACEFS_ROOTS[0]
        )),
        None => Err(format!(
            "tracefs mounted on {}, but it has no raw_syscalls:sys_enter",
            TRACEFS_ROOTS[0]
        )),
    }
}

/// Counts the system calls one thread makes (`inherit`: and the threads it
/// creates after the counter opened).
pub struct SyscallCounter {
    file: File,
}

impl SyscallCounter {
    /// Opens a counter for thread `tid` (0: the calling thread), counting
    /// from now; with `inherit`, threads `tid` creates from now on are
    /// counted by it too.
    pub fn open(tid: libc::pid_t, inherit: bool) -> Result<SyscallCounter, String> {
        let id = sys_enter_id().ok_or(
            "raw_syscalls:sys_enter tracepoint not found (mount tracefs on /sys/kernel/tracing)",
        )?;
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            flags: EXCLUDE_HV | if inherit { INHERIT } else { 0 },
            ..PerfEventAttr::default()
        };
        // SAFETY: perf_event_open only reads `attr`, which is live for the
        // call, and reads `attr.size` bytes of it: 64, its real size (a
        // const assert next to `PerfEventAttr` checks it). The other
        // arguments are integers: pid `tid` (0: this thread) and cpu -1 mean
        // "that thread, any CPU", group fd -1 means none. It returns a new
        // fd or -1 and touches no other memory of ours.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                tid,
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

    /// System calls entered so far (by the thread, and with `inherit` by
    /// the threads it created since, living or exited), including this read
    /// itself when the counted thread is the caller.
    pub fn read(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        match self.file.read_exact(&mut buf) {
            Ok(()) => u64::from_ne_bytes(buf),
            Err(_) => 0,
        }
    }
}

/// The calling thread's id.
fn gettid() -> libc::pid_t {
    // SAFETY: gettid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::gettid() }
}

/// The ids of every thread of this process, from /proc/self/task.
fn thread_ids() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// System calls of the loop thread and of the whole process over a window.
///
/// Opened on the loop thread when counting should start (not earlier: an
/// open tracepoint counter slows every system call of the machine a
/// little). It holds one counter for the loop thread alone and one
/// `inherit` counter for every thread listed in /proc/self/task at that
/// moment: the loop, the contender's workers, io-wq workers, the bench's
/// main thread. A thread created afterwards (tokio's blocking pool spawns
/// lazily; io-wq spawns on demand) is counted by its creator's inherited
/// counter, and a thread that exits keeps its count (an exited thread's
/// counter stays readable; an inherited child's count is folded into its
/// parent's counter at exit). Not counted: a thread that another thread
/// creates between the /proc listing and that creator's counter opening
/// (the contender is idle then, so none does in practice).
pub struct ProcessSyscalls {
    loop_only: SyscallCounter,
    /// One inherit counter per thread; the loop's is at `loop_index`.
    threads: Vec<SyscallCounter>,
    /// Threads listed in /proc/self/task for which no counter could be
    /// opened (they exited in between).
    missed: usize,
}

/// Readings of a [`ProcessSyscalls`] at the start of a window.
pub struct SyscallsAtStart {
    loop_only: u64,
    total: u64,
}

/// System calls made during a window, the bench's own reads of the
/// counters taken out.
#[derive(Copy, Clone, Debug)]
pub struct SyscallsMade {
    /// By the loop thread.
    pub loop_thread: u64,
    /// By every thread of the process (the loop included).
    pub total: u64,
}

impl ProcessSyscalls {
    /// Opens the counters (call on the loop thread).
    pub fn open() -> Result<ProcessSyscalls, String> {
        let me = gettid();
        let loop_only = SyscallCounter::open(0, false)?;
        let mut threads = Vec::new();
        let mut missed = 0;
        for tid in thread_ids() {
            match SyscallCounter::open(if tid == me { 0 } else { tid }, true) {
                Ok(c) => threads.push(c),
                // The loop's own counter must open; another thread may have
                // exited since the listing.
                Err(e) if tid == me => return Err(e),
                Err(_) => missed += 1,
            }
        }
        Ok(ProcessSyscalls {
            loop_only,
            threads,
            missed,
        })
    }

    /// Threads counted from the start (each with the threads it creates).
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Threads listed in /proc/self/task whose counter did not open (they
    /// had exited by then).
    pub fn missed(&self) -> usize {
        self.missed
    }

    /// Reads every counter at the start of the window: the per-thread ones
    /// first, the loop's own last.
    pub fn start(&mut self) -> SyscallsAtStart {
        let total = self.threads.iter_mut().map(SyscallCounter::read).sum();
        SyscallsAtStart {
            total,
            loop_only: self.loop_only.read(),
        }
    }

    /// Reads every counter at the end of the window (the loop's own first,
    /// then the per-thread ones) and returns what was made since `start`.
    ///
    /// The reads themselves are system calls of the loop thread, and some
    /// of them fall inside the window of some counter; they are taken out
    /// exactly. The loop's own counter sees one of them (its end read; its
    /// start read is already in its start value). The per-thread counters,
    /// of which only the loop thread's sees the loop's calls, see `n + 2`
    /// of them with `n` counters and the loop's at position `p` (1-based):
    /// after its start read, the `n - p` later per-thread reads and the
    /// loop-only read; up to its end read, the loop-only read and the first
    /// `p` per-thread reads (its own included).
    pub fn since(&mut self, start: &SyscallsAtStart) -> SyscallsMade {
        let loop_only = self.loop_only.read();
        let total: u64 = self.threads.iter_mut().map(SyscallCounter::read).sum();
        let n = self.threads.len() as u64;
        SyscallsMade {
            loop_thread: loop_only.saturating_sub(start.loop_only).saturating_sub(1),
            total: total.saturating_sub(start.total).saturating_sub(n + 2),
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
    /// Reads /proc/stat, this process's CPU clock and its reaped children's.
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
            process: process_cpu() + children_cpu(),
        }
    }

    /// CPU time other processes used since `earlier`, as a percentage of
    /// the whole machine's capacity over that time (the bench's own echo
    /// servers, reaped children, are not "other").
    pub fn foreign_pct_since(&self, earlier: &MachineSnap) -> f64 {
        self.foreign_pct_besides(earlier, Duration::ZERO)
    }

    /// As [`foreign_pct_since`](Self::foreign_pct_since), counting `also_ours`
    /// (the CPU a live child of ours used meanwhile: an echo server) as ours.
    pub fn foreign_pct_besides(&self, earlier: &MachineSnap, also_ours: Duration) -> f64 {
        // SAFETY: sysconf takes an integer and touches no memory of ours;
        // `_SC_CLK_TCK` is a valid name (an unknown one would return -1).
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let busy = self.busy_ticks.saturating_sub(earlier.busy_ticks) as f64 / hz;
        let total = self.total_ticks.saturating_sub(earlier.total_ticks) as f64 / hz;
        let ours = (self.process.saturating_sub(earlier.process) + also_ours).as_secs_f64();
        if total <= 0.0 {
            return 0.0;
        }
        (100.0 * (busy - ours) / total).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The counters count every thread of the test binary: one test at a
    /// time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// `n` system calls that no libc caches.
    fn syscalls(n: u64) {
        for _ in 0..n {
            // SAFETY: getppid takes no arguments, touches no memory and
            // cannot fail.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
    }

    /// Counts both a thread that existed when counting started and one
    /// created afterwards (which exits before the end read), and keeps them
    /// out of the loop thread's share.
    #[test]
    fn process_syscalls_cover_old_and_new_threads() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let _ = ensure_tracefs();
        // Other tests of the binary run in parallel, and their calls count
        // too (the counters cover the whole process): the figures must come
        // out right in at least one of a few tries, which they never would
        // if a thread were missed.
        let mut tries = Vec::new();
        for _ in 0..10 {
            let go = std::sync::Arc::new(std::sync::Barrier::new(2));
            let old_go = go.clone();
            let old = std::thread::spawn(move || {
                old_go.wait();
                syscalls(3_000);
            });
            let mut counters = match ProcessSyscalls::open() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("skipped: {e}");
                    go.wait();
                    old.join().unwrap();
                    return;
                }
            };
            let start = counters.start();
            syscalls(1_000);
            go.wait();
            old.join().unwrap();
            std::thread::spawn(|| syscalls(5_000)).join().unwrap();
            let made = counters.since(&start);
            eprintln!("old thread 3000, new thread 5000, loop 1000 calls: counted {made:?}");
            // The loop: its 1000 plus a few for the barrier, spawn and
            // joins. Other threads: 3000 + 5000 plus their own start-up and
            // exit.
            let others = made.total - made.loop_thread;
            if (1_000..1_300).contains(&made.loop_thread) && (8_000..9_000).contains(&others) {
                return;
            }
            tries.push(made);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("never 1000 on the loop and 8000 on the others: {tries:?}");
    }

    /// The bench's own reads of the counters are taken out exactly.
    #[test]
    fn process_syscalls_take_out_their_own_reads() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let _ = ensure_tracefs();
        let mut counters = match ProcessSyscalls::open() {
            Ok(c) => c,
            Err(e) => return eprintln!("skipped: {e}"),
        };
        // Other threads of the test binary (libtest's main thread reporting
        // a result, other tests running in parallel) make calls inside the
        // window now and then: the figures must come out exact in at least
        // one of many short tries, spread over half a second, which they
        // never would if the reads were taken out wrongly.
        let mut tries = Vec::new();
        for _ in 0..50 {
            let start = counters.start();
            syscalls(10);
            let made = counters.since(&start);
            if (made.loop_thread, made.total) == (10, 10) {
                return;
            }
            tries.push(made);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("never exactly 10 and 10: {tries:?}");
    }
}
