//! `ringpool-peer`: one of the tokio/hyper servers `ringpool serve` is measured against.
//!
//! ```text
//! ringpool-peer --impl hyper-blocking|hyper-inline --addr 127.0.0.1:8081 --workers N [--threads N]
//! ```
//!
//! Prints `listening on ADDR` once bound; exits 0 on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use ringpool_peers::{run_until_signal, Config, Impl};
use ringpool_server::http::Limits;

/// A tokio/hyper HTTP/1.1 server with the routes of `ringpool serve`.
#[derive(Parser, Debug)]
#[command(name = "ringpool-peer", version)]
struct Args {
    /// hyper-blocking (CPU work on spawn_blocking), hyper-inline (on the runtime's threads) or hyper-ringpool (hyper on ringpool's runtime, work on its pool).
    #[arg(long = "impl", value_parser = parse_impl)]
    imp: Impl,
    /// The address to listen on (port 0: any free port; the bound one is printed).
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// CPU workers: the blocking pool's size (max_blocking_threads).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The runtime's worker threads (default: one per CPU this process may run on).
    #[arg(long)]
    threads: Option<usize>,
    /// The largest request body in bytes.
    #[arg(long, default_value_t = Limits::default().max_body)]
    max_body: usize,
}

fn parse_impl(name: &str) -> Result<Impl, String> {
    Impl::from_name(name).ok_or_else(|| {
        format!("unknown impl {name:?} (hyper-blocking, hyper-inline, hyper-ringpool)")
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = Config {
        imp: args.imp,
        threads,
        workers: args.workers,
        limits: Limits {
            max_body: args.max_body,
            ..Limits::default()
        },
    };
    match run_until_signal(config, args.addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringpool-peer: {e}");
            ExitCode::FAILURE
        }
    }
}
