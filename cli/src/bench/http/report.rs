//! The http section's table, in the style of the echo table
//! ([`crate::bench::runtime_report`]): `vs h-b` is the figure divided by
//! hyper-blocking's on the same endpoint.

use super::{HttpResults, HttpSpec};
use crate::bench::report::{rate, rates, ratio, us, Table};
use crate::bench::runtime_report::{latencies, other_pct};
use std::fmt::Write;

/// Appends the http table (if it has figures) to `out`.
pub fn render(out: &mut String, spec: &HttpSpec, http: &HttpResults) {
    let mut table = Table::new(
        format!(
            "http: ringpool serve against tokio + hyper (ringpool-peers), each server a process of its own with {} \
             CPU workers and one event-loop thread; {}; the bench's closed-loop HTTP/1.1 client (epoll), {} keep-alive \
             connections, one request in flight each; every server started per endpoint, then {} rounds in which each \
             server in turn gets {} ms of warm-up and a window of {} ms on fresh connections; the median window (by \
             req/s) of each; latency = request written to response read; server CPU = utime+stime of \
             /proc/<pid>/stat; errors = answers other than 200; other % = CPU of other processes, % of the machine, in that window (a \
             window above {}% runs again, at most {} windows, the less disturbed is kept)",
            spec.workers,
            http.pinning,
            spec.connections,
            spec.reps,
            spec.warmup.as_millis(),
            spec.window.as_millis(),
            crate::bench::echo::RETRY_ABOVE_PCT,
            super::RETRIES,
        ),
        &[
            "server", "endpoint", "req/s", "vs h-b", "p50 µs", "vs h-b", "p99 µs", "vs h-b", "srv cpu/req µs", "vs h-b",
            "srv %core", "threads", "client %core", "errors", "other %", "req/s of each window",
        ],
    );
    for &endpoint in &spec.endpoints {
        let hb = http.find("hyper-blocking", endpoint);
        for imp in &spec.servers {
            let Some(c) = http.find(imp.name(), endpoint) else {
                continue;
            };
            let mut row = vec![
                c.server.clone(),
                endpoint.name().into(),
                rate(c.req_per_s),
                ratio(c.req_per_s, hb.map(|b| b.req_per_s)),
            ];
            row.extend(latencies(&c.window, hb.map(|b| &b.window)));
            row.extend([
                us(c.server_cpu_ns_per_req),
                ratio(c.server_cpu_ns_per_req, hb.map(|b| b.server_cpu_ns_per_req)),
                format!("{:.0}", c.window.server_pct_of_core),
                c.window.server_threads.to_string(),
                format!("{:.0}", c.window.client_pct_of_core),
                c.errors.to_string(),
                other_pct(c.window.other_load_pct, c.attempts),
                rates(&c.req_per_s_reps),
            ]);
            table.rows.push(row);
        }
    }
    table.render(out);
    if !http.cells.is_empty() {
        let _ = writeln!(
            out,
            "(http section: {:.1} s. Client %core near 100: the client, not the server, may set the rate; \
             compare such cells by server CPU per request. threads = server threads incl. its stdin watchdog; \
             bench/http.sh is the full load test)",
            http.secs
        );
    }
}
