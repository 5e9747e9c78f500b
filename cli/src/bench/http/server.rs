//! The hidden `ringpool http-server` subcommand: one HTTP server of the
//! http section in a process of its own, so the harness reads its CPU time
//! from `/proc/<pid>`: `ringpool serve` itself, or a tokio + hyper peer of
//! `ringpool-peers`, all in this one binary.
//!
//! It keeps the echo servers' protocol with the harness
//! ([`crate::bench::echo::server`]): it pins itself to `--cpu` first (the
//! main thread, before any other thread exists, so every thread the server
//! starts runs there too), then serves, and prints `listening <addr>` on
//! stdout once the server has answered a `GET /health` of its own; from
//! then on it stops when its stdin closes. Port 0 means a free port, chosen
//! here: `ringpool serve` binds one `SO_REUSEPORT` listener per ring and
//! cannot report a port the kernel picked.

use super::client::{Http, Reading};
use super::{Endpoint, HttpServer};
use crate::bench::echo::client::Exchange;
use crate::bench::echo::server::{announce, pin_process};
use clap::Parser;
use ringpool_server::http::Limits;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How long the server may take to answer its first `GET /health`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// `ringpool http-server` options.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Which server.
    #[arg(long = "impl", value_enum)]
    pub imp: HttpServer,
    /// Address to listen on (port 0: a free port, chosen before the server
    /// starts).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Pin the whole process to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// CPU workers: ringpool's pool, or the blocking pool of hyper-blocking.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// `ringpool serve`'s options, parsed as its own command line would be
/// (so its defaults stay where they are defined).
#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    args: crate::serve::ServeArgs,
}

/// Runs the server `args` describe; returns the process's exit status.
pub fn run(args: ServerArgs) -> i32 {
    let who = format!("http-server {}", args.imp.name());
    if let Some(cpu) = args.cpu {
        if let Err(e) = pin_process(cpu) {
            eprintln!("{who}: {e}");
            return 1;
        }
    }
    // Quiet: nobody reads stderr while the server runs (a full pipe would
    // block it), only after a failure.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
    let addr = match free_port(args.addr) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{who}: no free port on {}: {e}", args.addr);
            return 1;
        }
    };
    let ready = std::thread::Builder::new()
        .name("ready-check".into())
        .spawn(move || match wait_ready(addr) {
            Ok(()) => announce(addr),
            Err(e) => {
                eprintln!("http-server: no answer on {addr} within {READY_TIMEOUT:?}: {e}");
                std::process::exit(1);
            }
        });
    if let Err(e) = ready {
        eprintln!("{who}: cannot start the ready check: {e}");
        return 1;
    }
    let served = match args.imp {
        HttpServer::Ringpool => Serve::try_parse_from([
            "serve",
            "--addr",
            &addr.to_string(),
            "--workers",
            &args.workers.to_string(),
        ])
        .map_err(|e| e.to_string())
        .and_then(|s| crate::serve::run(s.args).map_err(|e| e.to_string())),
        HttpServer::HyperBlocking | HttpServer::HyperInline => {
            let imp = if args.imp == HttpServer::HyperBlocking {
                ringpool_peers::Impl::HyperBlocking
            } else {
                ringpool_peers::Impl::HyperInline
            };
            let config = ringpool_peers::Config {
                imp,
                threads: 1,
                workers: args.workers,
                limits: Limits::default(),
            };
            ringpool_peers::run_until_signal(config, addr).map_err(|e| e.to_string())
        }
    };
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{who}: {e}");
            1
        }
    }
}

/// `addr`, or with port 0 a port that was free a moment ago.
fn free_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    TcpListener::bind(addr)?.local_addr()
}

/// Waits until the server on `addr` answers `GET /health` with 200.
fn wait_ready(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let e = match health(addr) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One `GET /health` on a new connection.
fn health(addr: SocketAddr) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(io)?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(io)?;
    let http = Http::new(Endpoint::Health);
    sock.write_all(http.request()).map_err(io)?;
    let mut reading = Reading::default();
    let mut buf = [0u8; 1024];
    loop {
        let limit = http.read_limit(&reading).min(buf.len());
        let n = sock.read(&mut buf[..limit]).map_err(io)?;
        if n == 0 {
            return Err("closed before answering".into());
        }
        match http.take(&mut reading, &buf[..n])? {
            None => continue,
            Some(true) => return Ok(()),
            Some(false) => return Err("GET /health was not answered 200".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_port_is_kept_and_port_0_is_resolved() {
        let fixed = SocketAddr::from(([127, 0, 0, 1], 18_080));
        assert_eq!(free_port(fixed).unwrap(), fixed);
        let any = free_port(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        assert_ne!(any.port(), 0);
    }
}
