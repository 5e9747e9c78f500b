//! The hidden `ringpool echo-server` subcommand: one echo server in a
//! process of its own, so the harness can read its CPU time, context
//! switches and RSS from `/proc/<pid>`.
//!
//! Protocol with the harness ([`super::process`]): the process pins itself
//! to `--cpu` first (its main thread, before any other thread exists, so
//! every thread it starts inherits the CPU: the whole process runs there),
//! raises `RLIMIT_NOFILE` to its hard limit, binds, prints
//! `listening <addr>` as stdout line 1, and from then on echoes until its
//! stdin closes (or it is killed). A server that does not exist yet exits with
//! [`EXIT_NOT_BUILT`] and the reason on stderr.

use super::{epoll_server, ringpool_server, tokio_servers, ServerImpl};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};

/// Exit status of a server whose implementation is not built yet.
pub const EXIT_NOT_BUILT: i32 = 3;

/// Listen backlog of every server: deep enough that the idle-connections
/// run never overflows the accept queue (the kernel caps it at
/// `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Bytes each server reads at once per connection (a 4 KiB message is one read).
pub const READ_BUF: usize = 4096;

/// `ringpool echo-server` options.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Which server.
    #[arg(long = "impl", value_enum)]
    pub imp: ServerImpl,
    /// Address to bind (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Pin the whole process to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
}

/// Why a server stopped.
#[derive(Debug)]
pub enum ServeError {
    /// It failed.
    Failed(String),
}

impl From<io::Error> for ServeError {
    fn from(e: io::Error) -> ServeError {
        ServeError::Failed(e.to_string())
    }
}

impl From<rustix::io::Errno> for ServeError {
    fn from(e: rustix::io::Errno) -> ServeError {
        ServeError::Failed(e.to_string())
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new
/// soft limit (10,000 connections need more than the usual 1024).
///
/// # Errors
///
/// The errno of `setrlimit(2)`.
pub fn raise_nofile() -> io::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        setrlimit(Resource::Nofile, lim)?;
    }
    Ok(lim.current.unwrap_or(u64::MAX))
}

/// A blocking std listener on `addr` with `SO_REUSEADDR` and a backlog of
/// [`BACKLOG`] (`crate::listen::std_listener`).
///
/// # Errors
///
/// The errno of `socket(2)`, `bind(2)` or `listen(2)`.
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    crate::listen::std_listener(addr, false, BACKLOG)
}

/// Tells the harness that the server listens on `addr`: starts the stdin
/// watchdog (the process exits when the harness closes its stdin; watched
/// only from now on, so a server that fails first still reports why,
/// whatever happens to stdin), then prints `listening <addr>` on stdout.
/// The http section's `ringpool http-server` follows the same protocol.
pub fn announce(addr: SocketAddr) {
    let watchdog = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(|| {
            let mut sink = [0u8; 64];
            let mut stdin = io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    if let Err(e) = watchdog {
        eprintln!("cannot start the stdin watchdog: {e}");
        std::process::exit(1);
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening {addr}");
    let _ = out.flush();
}

/// Pins the calling thread to `cpu`; called by the main thread before it
/// starts any other, so the whole process runs there.
///
/// # Errors
///
/// Why `sched_setaffinity(2)` refused, as text.
pub fn pin_process(cpu: usize) -> Result<(), String> {
    ringpool::affinity::pin_current_thread(cpu).map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))
}

/// Runs the server `args` describe; returns the process's exit status.
pub fn run(args: ServerArgs) -> i32 {
    if let Some(cpu) = args.cpu {
        if let Err(e) = pin_process(cpu) {
            eprintln!("echo-server: {e}");
            return 1;
        }
    }
    if let Err(e) = raise_nofile() {
        eprintln!("echo-server: cannot raise RLIMIT_NOFILE: {e}");
    }
    let mut ready = announce;
    let served = match args.imp {
        ServerImpl::Ringpool => {
            ringpool_server::echo_server_ringpool(args.addr, args.cpu, &mut ready)
        }
        ServerImpl::TokioCt => tokio_servers::serve(args.addr, false, &mut ready),
        ServerImpl::TokioMt => tokio_servers::serve(args.addr, true, &mut ready),
        ServerImpl::FloorEpoll => epoll_server::serve(args.addr, &mut ready),
    };
    match served {
        Ok(()) => 0,
        Err(ServeError::Failed(why)) => {
            eprintln!("echo-server {}: {why}", args.imp.name());
            1
        }
    }
}
