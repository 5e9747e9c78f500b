//! The report header: which machine, kernel, commit and date produced it.

use serde::Serialize;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Facts about the run, printed above the tables and stored in the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Header {
    /// `uname -r`.
    pub kernel: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `available_parallelism()`.
    pub cores: usize,
    /// `git rev-parse --short HEAD` (+ `-dirty` when the tree differs from
    /// HEAD), or "unknown".
    pub commit: String,
    /// UTC start time, ISO 8601.
    pub date: String,
    /// What `Handoff::Auto` chose on this machine, and why.
    pub auto_selection: String,
    /// The ringpool loop ring's setup flags.
    pub loop_ring: String,
    /// Where threads run.
    pub pinning: String,
    /// Job cost calibration: burn rounds per ns.
    pub iters_per_ns: f64,
    /// How loop-side system calls are counted (or why they are not).
    pub syscall_counting: String,
    /// How CPU time is measured.
    pub cpu_method: String,
    /// How context switches are counted.
    pub switch_method: String,
    /// CPU used by other processes during the run, % of the whole machine
    /// (/proc/stat busy time minus this process's CPU time). Anything above
    /// a few percent means the figures are disturbed.
    pub foreign_load_pct: f64,
    /// /proc/loadavg at the start.
    pub loadavg_at_start: String,
}

/// The first `model name` line of /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The short commit of the source tree (read-only git commands only).
pub fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("git")
        .args(["-C", dir, "rev-parse", "--short", "HEAD"])
        .output();
    let Ok(out) = out else {
        return "unknown".into();
    };
    if !out.status.success() {
        return "unknown".into();
    }
    let mut c = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // diff-index compares without refreshing (writing) the index.
    let dirty = Command::new("git")
        .args(["-C", dir, "diff-index", "--quiet", "HEAD", "--"])
        .status()
        .map(|s| s.code() == Some(1))
        .unwrap_or(false);
    if dirty {
        c.push_str("-dirty");
    }
    c
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
