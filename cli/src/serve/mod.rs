//! `ringpool serve`: an HTTP/1.1 server on ringpool's runtime, whose CPU
//! endpoints (`/hash`, `/compress`, `/password/verify`) run on the pool
//! through `offload(..).await`, while the ring keeps serving I/O.
//!
//! The HTTP framing, routes and work are `ringpool-server` (sans-io); this
//! module is the driver: sockets, timeouts, the connection limit, shutdown.

#[cfg(test)]
mod alloc_free;
mod conn;
#[cfg(test)]
mod tests;

use crate::listen::AcceptError;
use clap::Args;
use ringpool::runtime::net::TcpListener;
use ringpool::runtime::time::sleep;
use ringpool::runtime::{self, Runtime};
use ringpool::{Handoff, Pool};
use ringpool_server::http::Limits;
use ringpool_server::stats::Stats;
use ringpool_server::work::PasswordHashString;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `ringpool serve` options.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on, `host:port` (a name such as `localhost` is
    /// resolved; its first address is used; port 0: a free port, which
    /// every ring shares and the start-up line names).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Ring threads (one runtime each, SO_REUSEPORT listeners, one shared pool).
    #[arg(long, default_value_t = 1)]
    pub rings: usize,
    /// Pool worker threads (default: the pool's own choice).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Handoff mechanism (`auto`, `msg-ring`, `pipe`, `condvar`, ...).
    #[arg(long, default_value = "auto")]
    pub handoff: Handoff,
    /// Largest request body in bytes (larger: 413, before the body is read).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Largest request head in bytes (larger: 431).
    #[arg(long, default_value_t = 8 << 10)]
    pub max_head: usize,
    /// Most connections open at once; more are answered 503 and closed.
    #[arg(long, default_value_t = 10_000)]
    pub max_conns: usize,
    /// Seconds an idle keep-alive connection is kept.
    #[arg(long, default_value = "30", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub idle_timeout: Duration,
    /// Seconds a request may take to arrive (head and body); then 408.
    #[arg(long, default_value = "10", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub request_timeout: Duration,
    /// Seconds a response write may go without progress (a client that
    /// does not read its answers); then the connection is closed, so such
    /// clients cannot hold the connection limit.
    #[arg(long, default_value = "10", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub write_timeout: Duration,
    /// How results are announced to the ring: `batch` (one CQE for every
    /// result ready, the default) or `per-job` (one MSG_RING CQE per job, the
    /// answer's design; msg-ring and msg-ring-sync only). With `per-job` the
    /// in-flight limit is lowered to fit the runtime's CQ.
    #[arg(long, default_value = "batch", value_parser = ["batch", "per-job"])]
    pub announce: String,
    /// Nice value of the pool's workers (-20..=19). Positive: a ring thread
    /// sharing a CPU with a worker preempts a long job at once, so I/O stays
    /// responsive while the pool is saturated. Measured on one CPU, with
    /// the pool saturated: `/health` p99 0.3-0.4 ms at 10, 1.6-4.1 ms at 5
    /// (0.5-2.4 ms at 7 or 8). At 10, `/hash` pays for it with twice the
    /// context switches per request.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    pub worker_nice: i32,
    /// Pin each ring thread to a CPU.
    #[arg(long)]
    pub pin: bool,
    /// The Argon2 hash (a PHC string, `$argon2id$v=19$m=..,t=..,p=..$salt$hash`)
    /// that `POST /password/verify` checks bodies against. Default: the hash of
    /// `ringpool` with m=19456 KiB, t=2, p=1.
    #[arg(long, default_value = ringpool_server::work::DEFAULT_PASSWORD_PHC)]
    pub password_hash: String,
    /// Testing only: `POST /__panic` runs a job that panics (it must be
    /// answered 500 while the server goes on).
    #[arg(long, hide = true)]
    pub panic_route: bool,
}

/// What every connection of every ring shares.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) stats: Stats,
    pub(crate) conns: AtomicUsize,
    pub(crate) max_conns: usize,
    pub(crate) idle: Duration,
    pub(crate) request: Duration,
    /// How long a write may go without progress.
    pub(crate) write: Duration,
    pub(crate) pool: Pool,
    pub(crate) stopping: AtomicBool,
    pub(crate) panic_route: bool,
    /// What `/password/verify` checks against (parsed once, for the
    /// server's lifetime).
    pub(crate) password: &'static PasswordHashString,
}

impl Shared {
    /// The shared state for `args`, offloading to `pool`.
    ///
    /// # Errors
    ///
    /// `--password-hash` is not an Argon2 PHC string.
    pub(crate) fn new(args: &ServeArgs, pool: Pool) -> Result<Shared, String> {
        let password = ringpool_server::work::parse_password_hash(&args.password_hash)
            .map_err(|e| format!("--password-hash: {e}"))?;
        Ok(Shared {
            limits: Limits {
                max_head: args.max_head,
                max_body: args.max_body,
            },
            stats: Stats::new(pool.handoff().name()),
            conns: AtomicUsize::new(0),
            max_conns: args.max_conns,
            idle: args.idle_timeout,
            request: args.request_timeout,
            write: args.write_timeout,
            pool,
            stopping: AtomicBool::new(false),
            panic_route: args.panic_route,
            // One per server run, alive as long as the jobs that read it.
            password: Box::leak(Box::new(password)),
        })
    }
}

/// The smallest `--max-head`: room for a request line and a few headers.
const MIN_HEAD: usize = 64;

/// Set by SIGINT and SIGTERM: every ring stops accepting and drains.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Runs the server until SIGINT or SIGTERM, then drains and returns.
pub fn run(args: ServeArgs) -> Result<(), Box<dyn Error>> {
    // `RUST_LOG` if it is set and valid; `info` otherwise (said once the
    // logger is up, if it was set but not valid).
    let (filter, bad_filter) = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(f) => (f, None),
        Err(e) => (
            tracing_subscriber::EnvFilter::new("info"),
            std::env::var_os("RUST_LOG").map(|v| (v, e)),
        ),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours on a terminal only: logs in a file or a pipe stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if let Some((value, e)) = bad_filter {
        tracing::warn!("RUST_LOG={value:?} is not a valid filter ({e}); logging at info");
    }
    if !(1..=4096).contains(&args.rings) {
        // `per_core` checks it too, but only after the pool and the first
        // listener exist.
        return Err(format!("--rings must be 1 to 4096, not {}", args.rings).into());
    }
    if args.max_conns == 0 {
        return Err("--max-conns must be at least 1 (0 would refuse every connection)".into());
    }
    if args.max_head < MIN_HEAD {
        return Err(format!(
            "--max-head must be at least {MIN_HEAD} bytes (not {}): shorter would answer every \
             request 431",
            args.max_head
        )
        .into());
    }
    // SAFETY: installs an async-signal-safe handler (one atomic store).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    runtime::raise_fd_limit()?;
    let pool = build_pool(&args)?;
    let shared = Arc::new(Shared::new(&args, pool.clone())?);
    // Bind the first listener here, so that a bad address is an error before
    // any thread starts, and port 0 resolves to one port every ring shares:
    // the first ring thread to start takes it over, the others bind its port
    // (SO_REUSEPORT).
    let first = crate::listen::std_listener(args.addr, true, 1024)
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = first.local_addr()?;
    tracing_line(&args, addr, &pool);
    let first = Arc::new(std::sync::Mutex::new(Some(first)));
    let threads = runtime::per_core(
        args.rings,
        args.pin,
        // No provided buffers: each connection has an input buffer of its
        // own anyway (the parser's), and a receive straight into it is the
        // only copy. Through provided buffers a body was copied twice (the
        // kernel's copy, then ours into the parser's buffer): 5.3% of the
        // server's CPU samples in `memmove` on `/hash` with 16 KiB bodies,
        // 0.5% without (perf, wrk -c64, server on one CPU).
        Runtime::builder().pool(pool).buffers(0, 0),
        move |ring| {
            let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
            ring_main(ring, addr, first, shared.clone())
        },
    )?;
    for r in threads.join() {
        r??;
    }
    Ok(())
}

/// A timeout in seconds: finite, above zero, and at most a year (a
/// duration the clock can add to now).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    const MAX: f64 = 365.0 * 24.0 * 3600.0;
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= MAX) {
        return Err(format!(
            "`{s}` seconds: a timeout must be above 0 and at most {MAX} (a year)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `host:port` as a socket address: an IP address, or a name resolved
/// (its first address).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    // A literal address is parsed, not looked up.
    match std::net::ToSocketAddrs::to_socket_addrs(s) {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{s:?} resolves to no address")),
        Err(_) if !s.contains(':') => Err(format!("{s:?} is not host:port")),
        Err(e) => Err(format!("cannot resolve {s:?}: {e}")),
    }
}

/// The pool `args` ask for (handoff, announce, workers, their nice value).
pub(crate) fn build_pool(args: &ServeArgs) -> Result<Pool, ringpool::Error> {
    let mut pb = Pool::builder()
        .handoff(args.handoff)
        .worker_nice(args.worker_nice);
    if args.announce == "per-job" {
        // The runtime's CQ has 4 x 256 entries; leave room for its I/O.
        pb = pb.announce(ringpool::Announce::PerJob).max_in_flight(512);
    }
    if let Some(w) = args.workers {
        pb = pb.workers(w);
    }
    pb.build()
}

/// The start-up line, with the address the listeners are bound to (port 0
/// resolved).
fn tracing_line(args: &ServeArgs, addr: SocketAddr, pool: &Pool) {
    tracing::info!(
        addr = %addr,
        rings = args.rings,
        workers = pool.workers(),
        handoff = %pool.handoff(),
        "ringpool serve: listening on http://{} ({})",
        addr,
        pool.selection(),
    );
}

/// One ring thread: takes over `first` (the listener `run` made, given to
/// the first ring thread to start) or binds its own `SO_REUSEPORT` listener
/// on `addr`, then serves it with [`serve_on`] until SIGINT or SIGTERM.
async fn ring_main(
    ring: usize,
    addr: SocketAddr,
    first: Option<std::net::TcpListener>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let listener = match first {
        Some(l) => TcpListener::from_std(l)?,
        None => TcpListener::bind_reuseport(addr)?,
    };
    serve_on(ring, listener, shared, &STOP).await
}

/// Accepts on `listener` and serves every connection until `stop` is set
/// (polled every 50 ms), then stops accepting and drains: in-flight
/// requests finish, idle connections close, and it returns once every
/// connection is gone (or the request timeout, at least 1 s, has passed).
pub(crate) async fn serve_on(
    ring: usize,
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let accept = {
        let shared = shared.clone();
        runtime::spawn(async move {
            // Back-offs in a row (out of fds, say): one warning per streak,
            // not one every 10 ms.
            let mut backoffs = 0u64;
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => match AcceptError::of(&e) {
                        AcceptError::Retry => {
                            tracing::debug!("ringpool serve: accept: {e}; next");
                            continue;
                        }
                        AcceptError::Backoff => {
                            if backoffs == 0 {
                                tracing::warn!(
                                    "ringpool serve: accept: {e}; retrying every 10 ms \
                                     (one line when accepting again)"
                                );
                            } else {
                                tracing::debug!("ringpool serve: accept: {e}; retrying in 10 ms");
                            }
                            backoffs += 1;
                            sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        AcceptError::Fatal => {
                            tracing::error!("ringpool serve: ring {ring}: accept failed: {e}");
                            return Err(e);
                        }
                    },
                };
                if backoffs > 0 {
                    tracing::info!(
                        "ringpool serve: accepting again after {backoffs} failed accepts"
                    );
                    backoffs = 0;
                }
                runtime::spawn(conn::serve(stream, shared.clone()));
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        })
    };
    // Until told to stop, or until the listener broke: the ring then tells
    // every ring to stop (below), they drain, and its error ends the
    // process with a failure.
    while !stop.load(Ordering::SeqCst) && !accept.is_finished() {
        sleep(Duration::from_millis(50)).await;
    }
    shared.stopping.store(true, Ordering::SeqCst);
    // New connections are refused from here: the listener goes.
    accept.abort();
    let accepted = accept.await;
    if matches!(accepted, Ok(Err(_))) {
        stop.store(true, Ordering::SeqCst);
    }
    let deadline = Instant::now() + shared.request.max(Duration::from_secs(1));
    while shared.conns.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    if ring == 0 {
        tracing::info!("ringpool serve: drained, exiting");
    }
    match accepted {
        Ok(Err(e)) => Err(e),
        _ => Ok(()),
    }
}
