//! The parts of `ringpool serve` that need no runtime: a sans-io HTTP/1.1 connection
//! state machine, the routes, the CPU work behind them and the server's counters.
//!
//! The crate does no I/O and starts no threads, so the same code serves ringpool's
//! io_uring driver and the tokio/hyper peers it is measured against (`ringpool-peers`).
//!
//! * [`http`]: [`http::Conn`] turns received bytes into [`http::Event`]s (requests,
//!   pipelined ones in order, or one error status); [`http::response`] writes responses
//!   into a reusable buffer; [`http::Outbox`] keeps them in request order while jobs run.
//! * [`routes`]: `(method, path)` to a [`routes::Route`]; the routes that need no CPU work
//!   are answered in place.
//! * [`work`]: BLAKE3, zstd, Argon2id, as pure functions for the worker pool.
//! * [`stats`]: atomic counters and their JSON.
//!
//! `docs/design/http.md` describes the state machine, the limits and status codes, and
//! how a driver uses them.
//!
//! # Examples
//!
//! A driver's inner loop, minus the socket:
//!
//! ```
//! use ringpool_server::http::{response, Conn, Event, Limits, ResponseMode};
//! use ringpool_server::{routes, stats::Stats};
//!
//! let stats = Stats::new("inline");
//! let mut conn = Conn::new(Limits::default());
//! let mut out = Vec::new();
//! conn.push(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nPOST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
//! loop {
//!     match conn.poll() {
//!         Event::Request(req) => {
//!             let route = routes::route(req.method, req.target);
//!             if let Some(job) = routes::respond_inline(route, req.mode(), &stats, &mut out) {
//!                 // A real driver sends `job` and a copy of the body to the pool, and
//!                 // keeps the responses in request order.
//!                 let done = job.run(req.body);
//!                 response::write(&mut out, done.status, req.mode(), done.content_type, &done.body);
//!             }
//!         }
//!         Event::Continue => out.extend_from_slice(response::CONTINUE),
//!         Event::Error { status } => {
//!             response::write_error(&mut out, status, ResponseMode::CLOSE, None);
//!             break;
//!         }
//!         Event::NeedMore | Event::Closed => break,
//!     }
//! }
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! ```

pub mod http;
pub mod routes;
pub mod stats;
pub mod work;
