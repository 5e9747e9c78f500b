//! The targets of issue 9 (ringpool's async runtime), judged on this run's
//! figures only, in the style of [`super::targets`]:
//! * echo: >= 1.1x tokio `current_thread` round trips/s at 64 connections,
//!   with a lower p99 and less server CPU per round trip; >= 1.0x at 1
//!   connection; 10,000 idle connections: less RSS per connection;
//! * offload: >= 5x tokio `spawn_blocking`, and within 1.5x of the raw
//!   `LoopHandle`.
//!
//! While the runtime's contender is missing, its targets say "not measured"
//! with the reason and the peers' figures, and never pass.

use super::echo::client::WindowFigures;
use super::echo::{EchoCell, EchoIdle};
use super::offload::OffloadFigure;
use super::results::Results;
use super::targets::Target;

/// The echo server of ringpool's runtime, as named in the results.
const RINGPOOL: &str = "ringpool";
/// The echo baseline.
const TOKIO_CT: &str = "tokio-ct";
/// The offload contender of ringpool's runtime.
const RUNTIME: &str = "ringpool-runtime";

/// "not measured: ..." for `contender` of `section`, which has no figure.
pub(super) fn not_measured(
    r: &Results,
    section: &str,
    contender: &str,
    rule: &str,
    peers: String,
) -> Target {
    let why = match r
        .skipped
        .iter()
        .find(|s| s.section == section && s.contender == contender)
    {
        Some(s) if s.not_built => format!("ringpool runtime not built ({})", s.reason),
        Some(s) => format!("{contender} failed ({})", s.reason),
        None => format!("{contender} did not run"),
    };
    Target {
        rule: rule.into(),
        measured: format!("not measured: {why}; {peers}"),
        pass: None,
    }
}

/// A target that lacks the baseline's figure.
pub(super) fn no_baseline(rule: &str, needs: &str) -> Target {
    Target {
        rule: rule.into(),
        measured: format!("n/a: needs {needs}"),
        pass: None,
    }
}

pub(super) fn us(ns: f64) -> String {
    format!("{:.1} µs", ns / 1e3)
}

/// Above this share of the machine used by other processes in a cell's
/// window, its figures are flagged as disturbed (such a cell has already
/// been run twice).
const DISTURBED_PCT: f64 = super::echo::RETRY_ABOVE_PCT;

/// "tokio-ct 123k rt/s, p99 45.0 µs, CPU 4.5 µs/rt", with its [`caveats`].
fn cell_text(c: &EchoCell) -> String {
    let text = format!(
        "{} {:.0}k rt/s, p99 {}, CPU {}/rt",
        c.server,
        c.rtt_per_s / 1e3,
        us(c.window.p99_ns as f64),
        us(c.server_cpu_ns_per_rt)
    );
    text + &caveats(&c.window)
}

/// The warnings a closed-loop cell's figures carry: the client threads were
/// busy all the time (the client, not the server, may have set the rate),
/// or other processes disturbed the window. Empty if neither.
pub(super) fn caveats(w: &WindowFigures) -> String {
    let mut text = String::new();
    if w.client_pct_of_core >= 95.0 * w.client_threads as f64 {
        let pct = w.client_pct_of_core;
        text += &format!(" (client-bound: client at {pct:.0}% of its CPU)");
    }
    if w.other_load_pct > DISTURBED_PCT {
        let pct = w.other_load_pct;
        text += &format!(" (disturbed: other processes used {pct:.0}% of the machine)");
    }
    text
}

/// The echo targets.
pub fn echo(r: &Results) -> Vec<Target> {
    let mut targets = Vec::new();
    for size in [64, 4096] {
        let rule = format!(
            "echo, 64 connections, {size} B: ringpool runtime >= 1.1x tokio current_thread round trips/s, \
             with lower p99 and less server CPU per round trip"
        );
        targets.push(
            match (
                r.echo.find(RINGPOOL, 64, size),
                r.echo.find(TOKIO_CT, 64, size),
            ) {
                (Some(a), Some(t)) => {
                    let ratio = a.rtt_per_s / t.rtt_per_s;
                    Target {
                        rule,
                        measured: format!("{}; {}: {ratio:.2}x", cell_text(a), cell_text(t)),
                        pass: Some(
                            ratio >= 1.1
                                && a.window.p99_ns < t.window.p99_ns
                                && a.server_cpu_ns_per_rt < t.server_cpu_ns_per_rt,
                        ),
                    }
                }
                (None, Some(t)) => not_measured(r, "echo", RINGPOOL, &rule, cell_text(t)),
                _ => no_baseline(&rule, &format!("tokio-ct at 64 connections, {size} B")),
            },
        );
    }
    for size in [64, 4096] {
        let rule = format!(
            "echo, 1 connection, {size} B: ringpool runtime >= 1.0x tokio current_thread round trips/s"
        );
        targets.push(
            match (
                r.echo.find(RINGPOOL, 1, size),
                r.echo.find(TOKIO_CT, 1, size),
            ) {
                (Some(a), Some(t)) => {
                    let ratio = a.rtt_per_s / t.rtt_per_s;
                    Target {
                        rule,
                        measured: format!("{}; {}: {ratio:.2}x", cell_text(a), cell_text(t)),
                        pass: Some(ratio >= 1.0),
                    }
                }
                (None, Some(t)) => not_measured(r, "echo", RINGPOOL, &rule, cell_text(t)),
                _ => no_baseline(&rule, &format!("tokio-ct at 1 connection, {size} B")),
            },
        );
    }
    let idle_text = |i: &EchoIdle| {
        format!(
            "{} {:.0} B/conn over {} connections",
            i.server, i.rss_bytes_per_conn, i.opened
        )
    };
    let rule = "idle connections: ringpool runtime server RSS per connection lower than tokio current_thread's (and multi-thread's)";
    let peers: Vec<&EchoIdle> = ["tokio-ct", "tokio-mt"]
        .iter()
        .filter_map(|s| r.echo.find_idle(s))
        .collect();
    let peers_text = peers
        .iter()
        .map(|i| idle_text(i))
        .collect::<Vec<_>>()
        .join(", ");
    targets.push(
        match (r.echo.find_idle(RINGPOOL), r.echo.find_idle(TOKIO_CT)) {
            (Some(a), Some(t)) => Target {
                rule: rule.into(),
                measured: format!(
                    "{}; {peers_text}: {:.2}x tokio-ct",
                    idle_text(a),
                    a.rss_bytes_per_conn / t.rss_bytes_per_conn.max(1.0)
                ),
                pass: Some(
                    a.opened == t.opened
                        && peers
                            .iter()
                            .all(|p| a.rss_bytes_per_conn < p.rss_bytes_per_conn),
                ),
            },
            (None, Some(_)) => not_measured(r, "echo", RINGPOOL, rule, peers_text),
            _ => no_baseline(rule, "tokio-ct idle connections"),
        },
    );
    targets
}

/// "tokio-spawn-blocking 123k jobs/s".
fn kjobs(f: &OffloadFigure) -> String {
    format!("{} {:.0}k jobs/s", f.contender, f.jobs_per_s / 1e3)
}

/// The offload targets (1 worker).
pub fn offload(r: &Results) -> Vec<Target> {
    let w = 1;
    let runtime = r.find_offload(RUNTIME, w);
    let mut targets = Vec::new();
    for (peer, rule, judge) in [
        (
            "tokio-spawn-blocking",
            "offload, trivial jobs from 64 tasks, 1 worker: ringpool runtime offload(..).await >= 5x tokio spawn_blocking",
            (|ratio: f64| ratio >= 5.0) as fn(f64) -> bool,
        ),
        (
            "raw-loop-handle",
            "  ... ringpool runtime within 1.5x of the raw LoopHandle at depth 64",
            |ratio: f64| ratio >= 1.0 / 1.5,
        ),
    ] {
        targets.push(match (runtime, r.find_offload(peer, w)) {
            (Some(a), Some(p)) => {
                let ratio = a.jobs_per_s / p.jobs_per_s;
                Target {
                    rule: rule.into(),
                    measured: format!("{}, {}: {ratio:.2}x", kjobs(a), kjobs(p)),
                    pass: Some(judge(ratio)),
                }
            }
            (None, Some(p)) => not_measured(r, "offload", RUNTIME, rule, kjobs(p)),
            _ => no_baseline(rule, &format!("{peer} with 1 worker")),
        });
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::missing::{Missing, Skipped};

    fn cell(
        server: &str,
        connections: usize,
        size: usize,
        rate: f64,
        p99: u64,
        cpu: f64,
    ) -> EchoCell {
        EchoCell {
            server: server.into(),
            connections,
            size,
            round_trips: 1000,
            rtt_per_s: rate,
            server_cpu_ns_per_rt: cpu,
            server_vcsw_per_rt: 0.0,
            window: WindowFigures::with_p99(p99),
            rtt_per_s_reps: vec![rate],
            attempts: 1,
        }
    }

    fn with_tokio() -> Results {
        let mut r = Results::default();
        for conns in [1, 64] {
            for size in [64, 4096] {
                r.echo
                    .cells
                    .push(cell(TOKIO_CT, conns, size, 100e3, 500, 5000.0));
            }
        }
        r
    }

    #[test]
    fn a_missing_runtime_is_never_a_pass() {
        let mut r = with_tokio();
        let m = Missing::NotBuilt("the ringpool runtime is not built yet".into());
        r.skipped
            .push(Skipped::new("echo", RINGPOOL, "all".into(), &m));
        r.skipped
            .push(Skipped::new("offload", RUNTIME, "all".into(), &m));
        r.offload.push(OffloadFigure {
            contender: "tokio-spawn-blocking".into(),
            workers: 1,
            tasks: 64,
            jobs: 1,
            secs: 1.0,
            jobs_per_s: 1.0,
            cpu_ns_per_job: 1.0,
            vcsw_per_job: 0.0,
            jobs_per_s_reps: vec![1.0],
        });
        let targets: Vec<Target> = echo(&r).into_iter().chain(offload(&r)).collect();
        assert_eq!(targets.len(), 7);
        for t in &targets {
            assert_eq!(t.pass, None, "{}", t.rule);
        }
        // Every target whose baseline ran says why the runtime's figure is missing.
        let not_built = targets
            .iter()
            .filter(|t| {
                t.measured
                    .starts_with("not measured: ringpool runtime not built")
            })
            .count();
        assert_eq!(not_built, 5, "{targets:#?}");
    }

    #[test]
    fn the_64_connection_target_needs_all_three() {
        let mut r = with_tokio();
        r.echo
            .cells
            .push(cell(RINGPOOL, 64, 64, 120e3, 400, 4000.0));
        r.echo
            .cells
            .push(cell(RINGPOOL, 64, 4096, 120e3, 600, 4000.0));
        let t = echo(&r);
        assert_eq!(t[0].pass, Some(true), "{}", t[0].measured);
        assert_eq!(t[1].pass, Some(false), "p99 is higher: {}", t[1].measured);
    }
}
