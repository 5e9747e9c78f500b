//! The HTTP benchmark of issue 10, short enough for the quick run:
//! `ringpool serve` against the tokio + hyper peers (`ringpool-peers`),
//! the same routes and work, on `GET /health` and `POST /hash` with a
//! 16 KiB body (BLAKE3 on the pool, or on `spawn_blocking`, or inline).
//!
//! * Every server is a child process (the hidden `ringpool http-server`),
//!   pinned whole to one CPU, as `bench/http.sh` pins it with `taskset`;
//!   the load client runs in the bench process on the other CPU(s). On one
//!   CPU, or with `--no-pin`, nothing is pinned and the report says so.
//! * The client is the echo section's closed-loop epoll client with an
//!   HTTP/1.1 [`client::Http`] exchange: 64 keep-alive connections, one
//!   request in flight each, no wrk needed.
//! * Per cell, requests/s, p50/p99 latency, server CPU per request
//!   (`utime + stime` of `/proc/<pid>/stat` over the window) and answers
//!   other than 200 (errors, reported, never dropped); ratios to
//!   hyper-blocking's.
//!
//! Per endpoint every server is started, then they take turns: a round is
//! one window (after its warm-up, on fresh connections) of each server in
//! turn, and a cell's figure is the median of its rounds, so the VM's slow
//! and fast phases fall on every server alike. `bench/http.sh` remains the full
//! load test (wrk, h2load open loop, isolation, every handoff).
//!
//! Modules, one job each: [`server`] (the hidden subcommand), [`client`]
//! (the exchange and its response parser), [`report`] (the table),
//! [`targets`] (the targets this run can judge).

pub mod client;
pub mod report;
pub mod server;
pub mod targets;

use super::echo::client::{self as load, Load, WindowFigures};
use super::echo::process::ServerProcess;
use super::echo::{interleaved, EchoCpus};
use super::missing::{Missing, Skipped};
use super::results::Results;
use serde::Serialize;
use std::time::Duration;

pub use server::ServerArgs;

/// The HTTP servers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpServer {
    /// `ringpool serve`: ringpool's runtime, one ring, work on the pool.
    Ringpool,
    /// tokio + hyper, work on `spawn_blocking`.
    HyperBlocking,
    /// tokio + hyper, work inline on the runtime's thread.
    HyperInline,
}

impl HttpServer {
    /// Every server, in report order.
    pub const ALL: [HttpServer; 3] = [
        HttpServer::Ringpool,
        HttpServer::HyperBlocking,
        HttpServer::HyperInline,
    ];

    /// The name used by `--impl`, the report and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            HttpServer::Ringpool => "ringpool",
            HttpServer::HyperBlocking => "hyper-blocking",
            HttpServer::HyperInline => "hyper-inline",
        }
    }

    /// One line on what it is.
    pub fn describe(self) -> &'static str {
        match self {
            HttpServer::Ringpool => "ringpool serve: one ring, --handoff auto, work on the pool",
            HttpServer::HyperBlocking => {
                "tokio multi-thread (1 worker) + hyper, work on spawn_blocking (max_blocking_threads = workers)"
            }
            HttpServer::HyperInline => {
                "tokio multi-thread (1 worker) + hyper, work inline on the runtime's thread"
            }
        }
    }
}

/// The endpoints the section loads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `GET /health`: no work, the I/O-only baseline.
    Health,
    /// `POST /hash` with a [`HASH_BODY`]-byte body: BLAKE3, CPU work.
    Hash,
}

/// The body size of `POST /hash`.
pub const HASH_BODY: usize = 16 * 1024;

impl Endpoint {
    /// Both, in run order.
    pub const ALL: [Endpoint; 2] = [Endpoint::Health, Endpoint::Hash];

    /// As the report shows it.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Health => "/health",
            Endpoint::Hash => "/hash 16KiB",
        }
    }

    /// The bytes of one request (keep-alive, HTTP/1.1). The `/hash` body is
    /// text-like, as `bench/http.sh` sends it.
    pub fn request(self) -> Vec<u8> {
        match self {
            Endpoint::Health => b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
            Endpoint::Hash => {
                let mut req = format!(
                    "POST /hash HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n\
                     Content-Length: {HASH_BODY}\r\n\r\n"
                )
                .into_bytes();
                let line = b"ringpool serves this line from a worker pool on io_uring. ";
                req.extend(line.iter().cycle().take(HASH_BODY));
                req
            }
        }
    }
}

/// The http section's sizes.
#[derive(Clone, Debug, Serialize)]
pub struct HttpSpec {
    /// Servers measured.
    pub servers: Vec<HttpServer>,
    /// Endpoints loaded.
    pub endpoints: Vec<Endpoint>,
    /// Keep-alive connections, one request in flight on each.
    pub connections: usize,
    /// CPU workers of every server (ringpool's pool, the blocking pool).
    pub workers: usize,
    /// Unmeasured load before the windows.
    #[serde(with = "super::seconds")]
    pub warmup: Duration,
    /// Each measured window.
    #[serde(with = "super::seconds")]
    pub window: Duration,
    /// Measured windows per cell, one per round (every server takes its
    /// turn in each round); the median (by requests/s) is reported.
    pub reps: usize,
}

impl HttpSpec {
    /// Progress-bar steps of this section.
    pub fn steps(&self) -> usize {
        self.servers.len() * self.endpoints.len() * self.reps
    }
}

/// Where the servers and the client run, and that in words for the report.
#[derive(Clone, Debug)]
pub struct HttpCpus {
    /// The server process's CPU and the client threads'.
    pub cpus: EchoCpus,
    /// How they are pinned, or why not.
    pub described: String,
}

impl HttpCpus {
    /// The server on the second of `cpus`, a client thread on each of the
    /// others; unpinned if `pin` is false or there is only one CPU.
    pub fn new(cpus: &[usize], pin: bool) -> HttpCpus {
        let split = EchoCpus::split(cpus, pin && cpus.len() >= 2);
        let described = match (&split.server, pin) {
            (Some(s), _) => {
                let client: Vec<String> = split
                    .client
                    .iter()
                    .flatten()
                    .map(|c| c.to_string())
                    .collect();
                format!(
                    "server process on CPU {s}, load client on CPU {}",
                    client.join(", ")
                )
            }
            (None, false) => "unpinned (--no-pin)".into(),
            (None, true) => "unpinned: this machine gives the bench one CPU".into(),
        };
        HttpCpus {
            cpus: split,
            described,
        }
    }
}

/// One cell: a server, an endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct HttpCell {
    /// Server name.
    pub server: String,
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Keep-alive connections.
    pub connections: usize,
    /// Answers in the window (errors included).
    pub requests: u64,
    /// Answers whose status was not 200.
    pub errors: u64,
    /// Answers per second.
    pub req_per_s: f64,
    /// Server CPU (utime + stime, every thread) per request, ns.
    pub server_cpu_ns_per_req: f64,
    /// The window's latencies (request written to response read), CPU
    /// shares and threads.
    #[serde(flatten)]
    pub window: WindowFigures,
    /// Requests/s of every window (the median one is reported).
    pub req_per_s_reps: Vec<f64>,
    /// 1, or 2 if one of its windows was disturbed by other processes (more
    /// than [`RETRY_ABOVE_PCT`](super::echo::RETRY_ABOVE_PCT)) and ran again
    /// (the less disturbed is kept; at most [`RETRIES`] windows of the
    /// section run twice).
    pub attempts: u32,
}

/// The most windows of the section that run a second time because other
/// processes disturbed the first (which keeps the section short on a busy
/// machine).
pub const RETRIES: usize = 2;

/// Everything the http section measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HttpResults {
    /// How the servers and the client were pinned.
    pub pinning: String,
    /// Wall time of the section, s.
    pub secs: f64,
    /// The cells.
    pub cells: Vec<HttpCell>,
}

impl HttpResults {
    /// The cell of `server` on `endpoint`, if measured.
    pub fn find(&self, server: &str, endpoint: Endpoint) -> Option<&HttpCell> {
        self.cells
            .iter()
            .find(|c| c.server == server && c.endpoint == endpoint)
    }
}

/// Runs the http section, filing figures and skips into `results`;
/// `tick(label)` is called before each window. Per endpoint every server
/// starts, then they take turns (see [`interleaved`]); a server that does
/// not start is left out of its later cells.
pub fn run(spec: &HttpSpec, cpus: &HttpCpus, tick: &mut dyn FnMut(&str), results: &mut Results) {
    let started = std::time::Instant::now();
    results.http.pinning = cpus.described.clone();
    let mut did_not_start: Vec<HttpServer> = Vec::new();
    let mut retries = RETRIES;
    for &endpoint in &spec.endpoints {
        let mut live = Vec::new();
        for &imp in &spec.servers {
            if did_not_start.contains(&imp) {
                continue;
            }
            match start(spec, &cpus.cpus, imp) {
                Ok(server) => live.push((imp, server)),
                Err(m) => {
                    did_not_start.push(imp);
                    let what = format!(
                        "{} and its later http cells (the server did not start)",
                        endpoint.name()
                    );
                    results
                        .skipped
                        .push(Skipped::new("http", imp.name(), what, &m));
                }
            }
        }
        let http = client::Http::new(endpoint);
        let load = Load {
            connections: spec.connections,
            warmup: spec.warmup,
            window: spec.window,
            reps: 1,
        };
        let other = load::Window::other_load_pct;
        let measured = interleaved(&live, spec.reps, &mut retries, other, |(imp, server)| {
            tick(&format!("http {} {}", imp.name(), endpoint.name()));
            load::one_window(server.addr, server.pid, &http, load, &cpus.cpus.client)
        });
        for ((imp, _), m) in live.iter().zip(measured) {
            match m {
                Ok((windows, attempts)) => {
                    results
                        .http
                        .cells
                        .push(cell(spec, *imp, endpoint, windows, attempts));
                }
                Err(e) => results.skipped.push(Skipped::new(
                    "http",
                    imp.name(),
                    endpoint.name().to_string(),
                    &Missing::Failed(e),
                )),
            }
        }
    }
    results.http.secs = started.elapsed().as_secs_f64();
}

/// Starts `imp`'s server, pinned as `cpus` say.
fn start(spec: &HttpSpec, cpus: &EchoCpus, imp: HttpServer) -> Result<ServerProcess, Missing> {
    let mut args = ["--impl", imp.name(), "--workers"]
        .map(String::from)
        .to_vec();
    args.push(spec.workers.to_string());
    if let Some(cpu) = cpus.server {
        args.extend(["--cpu".to_string(), cpu.to_string()]);
    }
    ServerProcess::spawn("http-server", &args)
}

/// The cell of `imp` on `endpoint` from its windows (the median one by
/// requests/s).
fn cell(
    spec: &HttpSpec,
    imp: HttpServer,
    endpoint: Endpoint,
    windows: Vec<load::Window>,
    attempts: u32,
) -> HttpCell {
    let (w, reps) = load::median(windows);
    HttpCell {
        server: imp.name().into(),
        endpoint,
        connections: spec.connections,
        requests: w.round_trips,
        errors: w.errors,
        req_per_s: w.rate(),
        server_cpu_ns_per_req: w.server_cpu_ns_per_rt(),
        window: WindowFigures::of(&w),
        req_per_s_reps: reps,
        attempts,
    }
}
