//! The server side as the harness sees it: a child process started as
//! `ringpool echo-server` (or the http section's `ringpool http-server`,
//! which keeps the same protocol), and what `/proc/<pid>` says about it.
//!
//! * CPU: `utime + stime` of `/proc/<pid>/stat` (every thread of the
//!   process, exited ones included), in clock ticks converted to ns; the
//!   kernel scales them to the scheduler's exact runtime, but they are
//!   reported in ticks (usually 10 ms), so short windows are coarse.
//! * Voluntary context switches: `voluntary_ctxt_switches` of
//!   `/proc/<pid>/task/<tid>/status`, summed over the live threads.
//! * Memory: `VmRSS` of `/proc/<pid>/status`.

use super::server::EXIT_NOT_BUILT;
use super::ServerImpl;
use crate::bench::missing::Missing;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; dropping it stops it (closes its stdin, then kills it
/// if it has not exited within a second).
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The subcommand that runs it, for error messages.
    subcommand: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
}

impl ServerProcess {
    /// Starts `ringpool echo-server --impl <imp>` (pinned to `cpu` if
    /// given) and waits for its `listening` line.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn start(imp: ServerImpl, cpu: Option<usize>) -> Result<ServerProcess, Missing> {
        let mut args = ["--impl", imp.name(), "--addr", "127.0.0.1:0"]
            .map(String::from)
            .to_vec();
        if let Some(cpu) = cpu {
            args.extend(["--cpu".to_string(), cpu.to_string()]);
        }
        ServerProcess::spawn("echo-server", &args)
    }

    /// Starts `ringpool <subcommand> <args>`, a server that follows the
    /// protocol of [`super::server`], and waits for its `listening <addr>`
    /// line (other lines before it are passed over; its stdout is drained
    /// to the end, so later lines never block it).
    ///
    /// # Errors
    ///
    /// [`Missing::NotBuilt`] with the server's own message if it exits with
    /// [`EXIT_NOT_BUILT`]; [`Missing::Failed`] for anything else.
    pub fn spawn(subcommand: &'static str, args: &[String]) -> Result<ServerProcess, Missing> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .arg(subcommand)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {subcommand}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout".to_string())?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let addr = lines.by_ref().map_while(Result::ok).find_map(|l| {
                l.trim()
                    .strip_prefix("listening ")?
                    .parse::<SocketAddr>()
                    .ok()
            });
            let _ = tx.send(addr);
            lines.for_each(drop);
        });
        let addr = rx.recv_timeout(START_TIMEOUT).ok().flatten();
        let mut server = ServerProcess {
            pid: child.id(),
            child,
            stdin,
            subcommand,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        match addr {
            Some(addr) => {
                server.addr = addr;
                Ok(server)
            }
            None => Err(server.failure()),
        }
    }

    /// Why the server did not start: its exit status and stderr.
    fn failure(&mut self) -> Missing {
        self.stdin.take();
        let status = wait_timeout(&mut self.child, Duration::from_secs(2));
        if status.is_none() {
            // Hung: stop it, or its stderr would never end.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let err = err.trim().to_string();
        match status {
            Some(s) if s.code() == Some(EXIT_NOT_BUILT) => Missing::NotBuilt(err),
            Some(s) => Missing::Failed(format!("{} exited ({s}): {err}", self.subcommand)),
            None => Missing::Failed(format!(
                "{} printed no `listening` line within {} s",
                self.subcommand,
                START_TIMEOUT.as_secs()
            )),
        }
    }

    /// `VmRSS` of the server now, KiB.
    pub fn rss_kib(&self) -> Result<u64, String> {
        let status = read(&format!("/proc/{}/status", self.pid))?;
        status_field(&status, "VmRSS:").ok_or_else(|| "no VmRSS".into())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stdin.take();
        if wait_timeout(&mut self.child, Duration::from_secs(1)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits up to `d` for `child` to exit (and reaps it); `None` if it has not.
fn wait_timeout(child: &mut Child, d: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + d;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// The first number after `key` in a `/proc/.../status` text.
fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time, voluntary context switches and threads of a process.
#[derive(Copy, Clone, Debug)]
pub struct ProcSnap {
    /// `utime + stime` of every thread, ns.
    pub cpu_ns: u64,
    /// `voluntary_ctxt_switches`, summed over the live threads.
    pub vcsw: u64,
    /// Live threads.
    pub threads: usize,
}

impl ProcSnap {
    /// Reads `/proc/<pid>/stat` and every `/proc/<pid>/task/*/status`.
    pub fn read(pid: u32) -> Result<ProcSnap, String> {
        let stat = read(&format!("/proc/{pid}/stat"))?;
        // Fields after the command name, which is in parentheses and may
        // contain spaces; field 3 (state) is index 0, so utime (14) is 11.
        let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| -> Result<u64, String> {
            f.get(i)
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("bad stat field {}", i + 3))
        };
        let ticks = tick(11)? + tick(12)?;
        let hz = rustix::param::clock_ticks_per_second().max(1);
        let mut vcsw = 0;
        let mut threads = 0;
        let dir = format!("/proc/{pid}/task");
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
            let Ok(entry) = entry else { continue };
            // A thread may exit between the listing and the read.
            if let Ok(s) = std::fs::read_to_string(entry.path().join("status")) {
                vcsw += status_field(&s, "voluntary_ctxt_switches:").unwrap_or(0);
                threads += 1;
            }
        }
        Ok(ProcSnap {
            cpu_ns: ticks * 1_000_000_000 / hz,
            vcsw,
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let s = "Name:\tx\nVmRSS:\t  4136 kB\nvoluntary_ctxt_switches:\t17\n";
        assert_eq!(status_field(s, "VmRSS:"), Some(4136));
        assert_eq!(status_field(s, "voluntary_ctxt_switches:"), Some(17));
        assert_eq!(status_field(s, "Threads:"), None);
    }

    #[test]
    fn own_process_reads() {
        let snap = ProcSnap::read(std::process::id()).unwrap();
        assert!(snap.threads >= 1);
    }
}
