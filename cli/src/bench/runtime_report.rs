//! The terminal tables of the issue 9 benchmarks: echo cells, idle
//! connections, offload; then the http table of issue 10
//! ([`super::http::report`]) and the contenders left out. `vs ct` is the figure
//! divided by tokio `current_thread`'s; `vs tok` / `vs raw` by tokio
//! `spawn_blocking`'s / the raw `LoopHandle`'s.

use super::echo::client::WindowFigures;
use super::plan::Plan;
use super::report::{rate, rates, ratio, sig3, us, Table};
use super::results::Results;
use std::fmt::Write;

/// Appends the echo, offload and http tables (those that have figures) to
/// `out`.
pub fn render(out: &mut String, plan: &Plan, results: &Results) {
    render_echo(out, plan, results);
    render_offload(out, plan, results);
    super::http::report::render(out, &plan.http, &results.http);
    if !results.skipped.is_empty() {
        let _ = writeln!(out, "\nnot measured (echo / offload / http)");
        for s in &results.skipped {
            let kind = if s.not_built { "not built" } else { "failed" };
            let _ = writeln!(
                out,
                "  {} {} ({}): {kind}: {}",
                s.section, s.contender, s.what, s.reason
            );
        }
    }
}

/// The p50 and p99 columns of a closed-loop cell, µs, each followed by its
/// ratio to the baseline's (`base`).
pub(super) fn latencies(w: &WindowFigures, base: Option<&WindowFigures>) -> [String; 4] {
    let p50 = w.p50_ns as f64;
    let p99 = w.p99_ns as f64;
    [
        us(p50),
        ratio(p50, base.map(|b| b.p50_ns as f64)),
        us(p99),
        ratio(p99, base.map(|b| b.p99_ns as f64)),
    ]
}

/// The `other %` column: the share of the machine other processes used in
/// the reported window, and whether it was the cell's second run.
pub(super) fn other_pct(pct: f64, attempts: u32) -> String {
    if attempts > 1 {
        format!("{pct:.1} (2nd run)")
    } else {
        format!("{pct:.1}")
    }
}

fn render_echo(out: &mut String, plan: &Plan, results: &Results) {
    let spec = &plan.echo;
    let echo = &results.echo;
    let mut table = Table::new(
        format!(
            "echo: loopback TCP, each server a process pinned to one CPU, the same epoll client on the other CPU(s), one \
             thread per CPU; \
             closed loop, one message in flight per connection; every server started per cell, then {} rounds in \
             which each server in turn gets {} ms of warm-up and a window of {} ms on fresh connections; the \
             median window (by rt/s) of each; server CPU = utime+stime of /proc/<pid>/stat; rt = round trip; \
             other % = CPU of other processes, % of the machine, in that window (a window above {}% runs again, at \
             most {} windows, the less disturbed is kept)",
            spec.reps,
            spec.warmup.as_millis(),
            spec.window.as_millis(),
            crate::bench::echo::RETRY_ABOVE_PCT,
            crate::bench::echo::RETRIES,
        ),
        &[
            "server", "conns", "size B", "rt/s", "vs ct", "p50 µs", "vs ct", "p99 µs", "vs ct",
            "srv cpu/rt µs", "vs ct", "srv %core", "srv vcsw/rt", "threads", "client thr", "client %core", "other %",
            "rt/s of each window",
        ],
    );
    for &conns in &spec.connections {
        for &size in &spec.sizes {
            let ct = echo.find("tokio-ct", conns, size);
            for imp in &spec.servers {
                let Some(c) = echo.find(imp.name(), conns, size) else {
                    continue;
                };
                let mut row = vec![
                    c.server.clone(),
                    conns.to_string(),
                    size.to_string(),
                    rate(c.rtt_per_s),
                    ratio(c.rtt_per_s, ct.map(|t| t.rtt_per_s)),
                ];
                row.extend(latencies(&c.window, ct.map(|t| &t.window)));
                row.extend([
                    us(c.server_cpu_ns_per_rt),
                    ratio(c.server_cpu_ns_per_rt, ct.map(|t| t.server_cpu_ns_per_rt)),
                    format!("{:.0}", c.window.server_pct_of_core),
                    sig3(c.server_vcsw_per_rt),
                    c.window.server_threads.to_string(),
                    c.window.client_threads.to_string(),
                    format!("{:.0}", c.window.client_pct_of_core),
                    other_pct(c.window.other_load_pct, c.attempts),
                    rates(&c.rtt_per_s_reps),
                ]);
                table.rows.push(row);
            }
        }
    }
    table.render(out);
    if !echo.cells.is_empty() {
        let _ = writeln!(
            out,
            "(client %core near 100: the client, not the server, may be the limit; floor-epoll, a bare epoll loop, \
             shows the most this client drives. threads = server threads incl. its stdin watchdog)"
        );
    }

    let ct = echo.find_idle("tokio-ct");
    let mut table = Table::new(
        format!(
            "idle connections: {} asked, opened one by one with a 1-byte round trip each, then idle; server VmRSS \
             before and {} ms after (kernel socket buffers are not in VmRSS)",
            spec.idle_connections,
            spec.idle_settle.as_millis()
        ),
        &[
            "server", "opened", "open s", "RSS before MiB", "RSS after MiB", "B/conn", "vs ct",
        ],
    );
    for imp in &spec.servers {
        let Some(i) = echo.find_idle(imp.name()) else {
            continue;
        };
        table.rows.push(vec![
            i.server.clone(),
            match &i.stopped {
                Some(why) => format!("{} (stopped: {why})", i.opened),
                None => i.opened.to_string(),
            },
            format!("{:.2}", i.open_secs),
            format!("{:.1}", i.rss_before_kib as f64 / 1024.0),
            format!("{:.1}", i.rss_after_kib as f64 / 1024.0),
            format!("{:.0}", i.rss_bytes_per_conn),
            ratio(i.rss_bytes_per_conn, ct.map(|t| t.rss_bytes_per_conn)),
        ]);
    }
    table.render(out);
}

fn render_offload(out: &mut String, plan: &Plan, results: &Results) {
    let spec = &plan.offload;
    let mut table = Table::new(
        format!(
            "offload: trivial jobs, {} tasks (jobs in flight), loop and workers pinned as in the header; {} rounds, \
             each measuring every contender in turn ({} ms warm-up, one window of {} ms), so the VM's fast and slow \
             phases fall on all of them alike; the median (by jobs/s) of each contender's windows; CPU and voluntary \
             context switches of the whole process per job",
            spec.tasks,
            spec.reps,
            spec.warmup.as_millis(),
            spec.window.as_millis()
        ),
        &[
            "contender", "workers", "jobs/s", "vs tok", "vs raw", "cpu/job µs", "vcsw/job", "jobs",
            "jobs/s of each window",
        ],
    );
    for &w in &spec.workers {
        let tok = results.find_offload("tokio-spawn-blocking", w);
        let raw = results.find_offload("raw-loop-handle", w);
        for f in results.offload.iter().filter(|f| f.workers == w) {
            table.rows.push(vec![
                f.contender.clone(),
                w.to_string(),
                rate(f.jobs_per_s),
                ratio(f.jobs_per_s, tok.map(|t| t.jobs_per_s)),
                ratio(f.jobs_per_s, raw.map(|t| t.jobs_per_s)),
                us(f.cpu_ns_per_job),
                sig3(f.vcsw_per_job),
                f.jobs.to_string(),
                rates(&f.jobs_per_s_reps),
            ]);
        }
    }
    table.render(out);
}
