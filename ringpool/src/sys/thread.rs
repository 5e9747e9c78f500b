//! Threads: CPU pinning and the kernel release.

use std::io;

/// Pins the calling thread to `cpu`. Errors name the CPU.
pub(crate) fn pin_current(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot pin to CPU {cpu}: beyond the kernel's CPU set ({} CPUs)",
                libc::CPU_SETSIZE
            ),
        ));
    }
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu < CPU_SETSIZE` (checked above), so the bit is inside `set`
    // (libc's CPU_SET panics past it).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t of the size passed; pid 0 = this thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot pin to CPU {cpu} (sched_setaffinity: {e})"),
        ));
    }
    Ok(())
}

/// Sets the calling thread's nice value (`setpriority(PRIO_PROCESS, tid)`:
/// on Linux a thread id names one thread). Raising it needs no privilege;
/// lowering below the current value needs `CAP_SYS_NICE`.
pub(crate) fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid and setpriority take no pointers.
    let r = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPUs the calling thread may run on (`sched_getaffinity(2)`).
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable cpu_set_t of the size passed; pid 0 =
    // this thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: every index is below CPU_SETSIZE, inside `set`.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// The running kernel's release string (`uname -r`) and its numeric
/// `(major, minor)`, if it parses.
pub(crate) fn kernel_release() -> (String, Option<(u32, u32)>) {
    // SAFETY: utsname is plain data; zeroed is a valid value for uname to fill.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a live utsname for uname(2) to fill.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::from("unknown"), None);
    }
    // SAFETY: uname NUL-terminates `release` within the array.
    let rel = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let ver = parse_release(&rel);
    (rel, ver)
}

/// `"6.18.44-fc"` → `Some((6, 18))`.
pub(crate) fn parse_release(rel: &str) -> Option<(u32, u32)> {
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_releases() {
        assert_eq!(super::parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(super::parse_release("5.4.0"), Some((5, 4)));
        assert_eq!(super::parse_release("garbage"), None);
    }
}
