//! Threads: CPU pinning and the kernel release.

use std::io;

/// Pins the calling thread to `cpu`.
pub(crate) fn pin_current(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu < CPU_SETSIZE` (checked above), so the bit is inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t of the size passed; pid 0 = this thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
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
