//! `ringpool`: probe the kernel, benchmark every handoff mechanism
//! against the peers users pick today, and serve HTTP on the runtime.
//!
//! With no arguments it runs the quick benchmark (about two minutes on two
//! cores, its http section about 20 s of them).

mod bench;
mod listen;
mod probe;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ringpool",
    version,
    about = "io_uring loop <-> worker pool handoff: probe, benchmark, serve"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// What this kernel supports, which mechanism `auto` picks and why.
    Probe,
    /// Every mechanism against the peers, side by side.
    Bench(bench::BenchArgs),
    /// An HTTP/1.1 server on ringpool's runtime; CPU endpoints run on the pool.
    Serve(serve::ServeArgs),
    /// One echo server, for `ringpool bench`'s echo section (internal).
    #[command(hide = true)]
    EchoServer(bench::echo::ServerArgs),
    /// One HTTP server (`ringpool serve` or a tokio + hyper peer), for
    /// `ringpool bench`'s http section (internal).
    #[command(hide = true)]
    HttpServer(bench::http::ServerArgs),
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Some(Cmd::Probe) => probe::run(),
        Some(Cmd::Bench(args)) => bench::run(args),
        Some(Cmd::Serve(args)) => serve::run(args),
        Some(Cmd::EchoServer(args)) => std::process::exit(bench::echo::server::run(args)),
        Some(Cmd::HttpServer(args)) => std::process::exit(bench::http::server::run(args)),
        None => bench::run(bench::BenchArgs::quick()),
    };
    if let Err(e) = r {
        eprintln!("ringpool: {e}");
        std::process::exit(1);
    }
}
