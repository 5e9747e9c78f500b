//! The targets of issue 10 that the http section's short run can judge
//! (64 connections, the server pinned to one CPU where there are two), on
//! this run's figures only:
//! * `/hash` 16 KiB: ringpool >= 1.3x hyper + `spawn_blocking` and >= 1.0x
//!   hyper inline, with a lower p99;
//! * `/health`: >= 1.0x hyper's requests/s, and CPU per request <= hyper's.
//!
//! A cell with answers other than 200 never passes: ringpool's is a miss,
//! a peer's makes the target not measurable. (The isolation target and
//! hyper on ringpool's runtime need `bench/http.sh`.)

use super::{Endpoint, HttpCell};
use crate::bench::results::Results;
use crate::bench::runtime_targets::{caveats, no_baseline, not_measured, us};
use crate::bench::targets::Target;

/// `ringpool serve`, as named in the results.
const RINGPOOL: &str = "ringpool";
/// The baseline: hyper with the work on `spawn_blocking`.
const BLOCKING: &str = "hyper-blocking";
/// hyper with the work inline.
const INLINE: &str = "hyper-inline";

/// "hyper-blocking 56.0k req/s, p99 2724.0 µs, CPU 17.4 µs/req", with its
/// errors and caveats.
fn cell_text(c: &HttpCell) -> String {
    let mut text = format!(
        "{} {:.1}k req/s, p99 {}, CPU {}/req",
        c.server,
        c.req_per_s / 1e3,
        us(c.window.p99_ns as f64),
        us(c.server_cpu_ns_per_req)
    );
    if c.errors > 0 {
        text += &format!(" ({} answers not 200)", c.errors);
    }
    text + &caveats(&c.window)
}

/// The target `rule` on `endpoint`: `pass(ringpool's cell, a peer's)` must
/// hold for each of `peers` that was measured.
fn judge(
    r: &Results,
    endpoint: Endpoint,
    peers: &[&str],
    rule: &str,
    pass: fn(&HttpCell, &HttpCell) -> bool,
) -> Target {
    let found: Vec<&HttpCell> = peers
        .iter()
        .filter_map(|p| r.http.find(p, endpoint))
        .collect();
    let peers_text = || {
        found
            .iter()
            .map(|p| cell_text(p))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if found.is_empty() {
        return no_baseline(
            rule,
            &format!("{} on {}", peers.join(" or "), endpoint.name()),
        );
    }
    let Some(a) = r.http.find(RINGPOOL, endpoint) else {
        return not_measured(r, "http", RINGPOOL, rule, peers_text());
    };
    let ratios: Vec<String> = found
        .iter()
        .map(|p| {
            format!(
                "{:.2}x {}'s req/s, {:.2}x its CPU/req",
                a.req_per_s / p.req_per_s,
                p.server,
                a.server_cpu_ns_per_req / p.server_cpu_ns_per_req
            )
        })
        .collect();
    let measured = format!("{}; {}: {}", cell_text(a), peers_text(), ratios.join(", "));
    let pass = if found.iter().any(|p| p.errors > 0) {
        None
    } else {
        Some(a.errors == 0 && found.iter().all(|p| pass(a, p)))
    };
    Target {
        rule: rule.into(),
        measured,
        pass,
    }
}

/// The http targets.
pub fn evaluate(r: &Results) -> Vec<Target> {
    vec![
        judge(
            r,
            Endpoint::Hash,
            &[BLOCKING],
            "http /hash 16 KiB, 64 connections: ringpool serve >= 1.3x hyper + spawn_blocking requests/s, \
             with a lower p99",
            |a, p| a.req_per_s >= 1.3 * p.req_per_s && a.window.p99_ns < p.window.p99_ns,
        ),
        judge(
            r,
            Endpoint::Hash,
            &[INLINE],
            "  ... ringpool serve >= 1.0x hyper inline requests/s, with a lower p99",
            |a, p| a.req_per_s >= p.req_per_s && a.window.p99_ns < p.window.p99_ns,
        ),
        judge(
            r,
            Endpoint::Health,
            &[BLOCKING],
            "http /health, 64 connections: ringpool serve >= 1.0x hyper's requests/s",
            |a, p| a.req_per_s >= p.req_per_s,
        ),
        judge(
            r,
            Endpoint::Health,
            &[BLOCKING, INLINE],
            "  ... and server CPU per request <= hyper's (spawn_blocking and inline: the same path on /health)",
            |a, p| a.server_cpu_ns_per_req <= p.server_cpu_ns_per_req,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::echo::client::WindowFigures;
    use crate::bench::missing::{Missing, Skipped};

    fn cell(server: &str, endpoint: Endpoint, rate: f64, p99: u64, cpu: f64) -> HttpCell {
        HttpCell {
            server: server.into(),
            endpoint,
            connections: 64,
            requests: 1000,
            errors: 0,
            req_per_s: rate,
            server_cpu_ns_per_req: cpu,
            window: WindowFigures::with_p99(p99),
            req_per_s_reps: vec![rate],
            attempts: 1,
        }
    }

    fn with_peers() -> Results {
        let mut r = Results::default();
        for e in Endpoint::ALL {
            r.http.cells.push(cell(BLOCKING, e, 50e3, 2000, 17e3));
            r.http.cells.push(cell(INLINE, e, 90e3, 1500, 10e3));
        }
        r
    }

    #[test]
    fn verdicts_follow_the_figures() {
        let mut r = with_peers();
        r.http
            .cells
            .push(cell(RINGPOOL, Endpoint::Hash, 80e3, 1000, 11e3));
        r.http
            .cells
            .push(cell(RINGPOOL, Endpoint::Health, 60e3, 1000, 12e3));
        let t = evaluate(&r);
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].pass, Some(true), "{}", t[0].measured);
        assert_eq!(
            t[1].pass,
            Some(false),
            "below hyper inline: {}",
            t[1].measured
        );
        assert_eq!(t[2].pass, Some(true), "{}", t[2].measured);
        assert_eq!(
            t[3].pass,
            Some(false),
            "more CPU than inline: {}",
            t[3].measured
        );
    }

    #[test]
    fn errors_and_missing_servers_never_pass() {
        let mut r = with_peers();
        let mut failing = cell(RINGPOOL, Endpoint::Hash, 80e3, 1000, 11e3);
        failing.errors = 3;
        r.http.cells.push(failing);
        let m = Missing::Failed("it did not start".into());
        r.skipped
            .push(Skipped::new("http", RINGPOOL, "/health".into(), &m));
        let t = evaluate(&r);
        assert_eq!(t[0].pass, Some(false), "{}", t[0].measured);
        assert!(t[0].measured.contains("3 answers not 200"));
        assert_eq!(t[2].pass, None);
        assert!(
            t[2].measured.contains("ringpool failed (it did not start)"),
            "{}",
            t[2].measured
        );
        // No peer at all: not measurable either.
        let t = evaluate(&Results::default());
        assert!(t.iter().all(|t| t.pass.is_none()));
    }
}
