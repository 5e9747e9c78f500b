//! The servers `ringpool serve` is load-tested against: tokio's multi-thread runtime with
//! hyper 1.x (HTTP/1 only), serving the same routes, work and limits as `ringpool serve`
//! (all from `ringpool-server`).
//!
//! * [`Impl::HyperBlocking`]: CPU work on `spawn_blocking`, at most `workers` blocking
//!   threads (`max_blocking_threads`): the usual tokio answer to CPU work.
//! * [`Impl::HyperInline`]: CPU work inline on the runtime's worker threads.
//! * [`Impl::HyperRingpool`]: hyper on ringpool's runtime ([`on_ringpool`]: hyper's I/O,
//!   timer and executor traits over ringpool's runtime), CPU work on ringpool's pool through
//!   `offload(..).await`. Against [`Impl::HyperBlocking`] it isolates what ringpool's
//!   runtime and offload add under the same HTTP stack.
//!
//! Bad input is answered as far as hyper lets a service decide: 404, 405 with `Allow`, and
//! 413 (with `Connection: close`) for a `Content-Length` over the limit before any body is
//! read, or for a chunked body once it passes the limit. Malformed heads (400) and heads
//! over the limit (431) are hyper's own answers.
//!
//! # Differences from `ringpool serve` that the benchmark should know
//!
//! * hyper allows 100 header fields (its stack array; fewer would move it to the heap), we
//!   allow [`MAX_HEADERS`](ringpool_server::http::MAX_HEADERS).
//! * The `Date` header is off (`auto_date_header(false)`), as in `ringpool serve`, so the
//!   responses are the same bytes but for header case and order.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ringpool_server::http::{Limits, Method};
use ringpool_server::routes::{self, Route, HEALTH_BODY};
use ringpool_server::stats::Stats;
use ringpool_server::work::{Job, Output};
use tokio::net::TcpListener;

/// How long a client may take to send a request head (then hyper closes the connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub mod on_ringpool;

/// Which peer to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// CPU work on `spawn_blocking` (at most `workers` blocking threads).
    HyperBlocking,
    /// CPU work inline on the runtime's worker threads.
    HyperInline,
    /// hyper on ringpool's runtime, CPU work on its pool.
    HyperRingpool,
}

impl Impl {
    /// The name the CLI and the stats use (`hyper-blocking`, `hyper-inline`).
    pub fn name(self) -> &'static str {
        match self {
            Impl::HyperBlocking => "hyper-blocking",
            Impl::HyperInline => "hyper-inline",
            Impl::HyperRingpool => "hyper-ringpool",
        }
    }

    /// The peer named `name`, if any.
    pub fn from_name(name: &str) -> Option<Impl> {
        [Impl::HyperBlocking, Impl::HyperInline, Impl::HyperRingpool]
            .into_iter()
            .find(|i| i.name() == name)
    }

    /// How jobs reach their threads, as `/stats` reports it.
    pub fn handoff(self) -> &'static str {
        match self {
            Impl::HyperBlocking => "spawn_blocking",
            Impl::HyperInline => "inline",
            Impl::HyperRingpool => "ringpool offload",
        }
    }
}

/// A peer's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Which peer.
    pub imp: Impl,
    /// The runtime's worker threads (the event loops).
    pub threads: usize,
    /// The blocking pool's size (`max_blocking_threads`): the CPU workers of
    /// [`Impl::HyperBlocking`].
    pub workers: usize,
    /// The request limits, as `ringpool serve` has them.
    pub limits: Limits,
}

/// Builds the runtime `config` asks for: multi-thread, `threads` workers,
/// `workers` blocking threads, I/O and timers on.
///
/// # Errors
///
/// If the runtime cannot start its threads.
pub fn runtime(config: &Config) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.max(1))
        .max_blocking_threads(config.workers.max(1))
        .thread_name("ringpool-peer")
        .enable_all()
        .build()
}

/// What every connection's service shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) stats: Stats,
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes; connections still open
/// then are dropped.
///
/// # Errors
///
/// Only if `accept` fails with something other than a per-connection error.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        config,
        stats: Stats::new(config.imp.handoff()),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true)
        .pipeline_flush(true)
        .auto_date_header(false)
        .max_header_size(config.limits.max_head)
        .max_buf_size(config.limits.max_head.max(8192) + 64 * 1024)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_per_connection(&e) => {
                    shared.stats.conn_refused();
                    tracing::debug!("accept: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let _ = stream.set_nodelay(true);
        shared.stats.conn_accepted();
        let shared = Arc::clone(&shared);
        let http = Arc::clone(&http);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(req, &shared).await) }
            });
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, "connection: {e}");
            }
            shared.stats.conn_closed();
        });
    }
}

/// Accept errors that concern one connection (or a passing shortage), not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc_errno::ECONNABORTED
                | libc_errno::EMFILE
                | libc_errno::ENFILE
                | libc_errno::ENOBUFS
                | libc_errno::ENOMEM
        )
    ) || e.kind() == io::ErrorKind::ConnectionAborted
}

/// The Linux errno values `is_per_connection` looks for (no libc dependency for five
/// numbers).
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
    pub const ECONNABORTED: i32 = 103;
}

pub(crate) type Reply = Response<Full<Bytes>>;

fn reply(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error(status: u16) -> Reply {
    let text = ringpool_server::http::response::reason(status);
    reply(status, "text/plain", format!("{text}\n"))
}

/// 413, and the connection closes (the unread body is not drained).
fn too_large() -> Reply {
    let mut response = error(413);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Reply {
    let response = respond(req, shared, |job, body| run(shared, job, body)).await;
    shared.stats.record_status(response.status().as_u16());
    response
}

/// Routes `req`, answering what needs no CPU work; a CPU route's job goes to
/// `run` with the body (so each peer brings its own way to run it).
pub(crate) async fn respond<R, F>(req: Request<Incoming>, shared: &Shared, run: R) -> Reply
where
    R: FnOnce(Job, Bytes) -> F,
    F: Future<Output = Output>,
{
    let method = Method::from_token(req.method().as_str());
    let job = match routes::route(method, req.uri().path()) {
        Route::Health => return reply(200, "text/plain", HEALTH_BODY),
        Route::Stats => return reply(200, "application/json", shared.stats.to_json()),
        Route::NotFound => return error(404),
        Route::MethodNotAllowed(allow) => {
            let mut response = error(405);
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            return response;
        }
        route => match route.job() {
            Some(job) => job,
            None => return error(500),
        },
    };
    let max_body = shared.config.limits.max_body;
    // A Content-Length over the limit: refuse before reading any of the body.
    if req.body().size_hint().lower() > max_body as u64 {
        return too_large();
    }
    let body = match Limited::new(req.into_body(), max_body).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(_) => return error(400),
    };
    let Output {
        status,
        content_type,
        body,
    } = run(job, body).await;
    reply(status, content_type, body)
}

async fn run(shared: &Shared, job: Job, body: Bytes) -> Output {
    match shared.config.imp {
        Impl::HyperInline | Impl::HyperRingpool => {
            shared.stats.job_started();
            let output = job.run(&body);
            shared.stats.job_completed();
            output
        }
        Impl::HyperBlocking => {
            shared.stats.job_started();
            let output = tokio::task::spawn_blocking(move || job.run(&body)).await;
            shared.stats.job_completed();
            output.unwrap_or_else(|_| Output::internal_error())
        }
    }
}

/// Binds `addr`, prints `listening on ADDR` (the bound address) on stdout, and serves
/// until SIGINT or SIGTERM.
///
/// # Errors
///
/// If the runtime cannot start, `addr` cannot be bound, or accepting fails.
pub fn run_until_signal(config: Config, addr: SocketAddr) -> io::Result<()> {
    if config.imp == Impl::HyperRingpool {
        return on_ringpool::run_until_signal(config, addr);
    }
    let runtime = runtime(&config)?;
    let result = runtime.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        println!("listening on {local}");
        tracing::info!(%local, imp = config.imp.name(), config.threads, config.workers, "serving");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        serve(listener, config, shutdown).await
    });
    // Blocking jobs still running (an Argon2 verify) get a moment, not forever.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
