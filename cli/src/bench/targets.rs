//! The performance targets ringpool is held to (throughput against the
//! answer's design, tokio and crossbeam; latency against crossbeam and a raw
//! futex; loop syscalls and idle CPU), judged on this run's figures only.

use super::results::Results;
use super::scenarios::{Throughput, Variant};
use serde::Serialize;

/// One target: the rule, what was measured, and the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// The rule, in words.
    pub rule: String,
    /// The measured figures it was judged on.
    pub measured: String,
    /// `Some(true)` pass, `Some(false)` miss, `None` not measurable in this
    /// run (a contender or scenario was left out, or failed).
    pub pass: Option<bool>,
}

/// The median round trip of `c` with `w` workers in variant `v`, ns.
fn p50(r: &Results, c: &str, w: usize, v: Variant) -> Option<u64> {
    r.find_ping_pong(c, w, v).map(|p| p.p50_ns)
}

/// "name 1234k jobs/s".
fn kjobs(t: &Throughput) -> String {
    format!("{} {:.0}k jobs/s", t.contender, t.jobs_per_s / 1e3)
}

fn us(ns: u64) -> String {
    format!("{:.2} µs", ns as f64 / 1e3)
}

/// Throughput of `auto` against `other` at depth 64, 1 worker, trivial jobs:
/// pass if `auto >= factor * other`.
fn tput_ratio(r: &Results, auto: &str, other: &str, factor: f64, rule: &str) -> Target {
    match (
        r.find_throughput(auto, 1, 64, 0),
        r.find_throughput(other, 1, 64, 0),
    ) {
        (Some(a), Some(o)) => {
            let ratio = a.jobs_per_s / o.jobs_per_s;
            Target {
                rule: rule.into(),
                measured: format!("{}, {}: {ratio:.2}x", kjobs(a), kjobs(o)),
                pass: Some(ratio >= factor),
            }
        }
        _ => missing(
            rule,
            &format!("{auto} and {other} at depth 64, 1 worker, cost 0"),
        ),
    }
}

/// A target this run cannot judge, because it lacks `needs`.
fn missing(rule: &str, needs: &str) -> Target {
    Target {
        rule: rule.into(),
        measured: format!("n/a: needs {needs}"),
        pass: None,
    }
}

/// Evaluates every target against `r`.
pub fn evaluate(r: &Results) -> Vec<Target> {
    let auto = "auto";
    let mut targets = vec![
        tput_ratio(r, auto, "answer", 10.0, "throughput, trivial jobs, depth 64, 1 worker: ringpool default >= 10x the answer's design"),
        tput_ratio(r, auto, "tokio-blocking", 4.0, "  ... >= 4x tokio spawn_blocking"),
        tput_ratio(r, auto, "crossbeam", 1.0, "  ... no slower than crossbeam-channel"),
        tput_ratio(r, "spin", "floor-spsc", 0.5, "  ... ringpool spin within 2x of the raw SPSC spin queue"),
    ];

    let rule =
        "hot ping-pong p50, default spin budget: ringpool default within 2x of crossbeam-channel";
    targets.push(
        match (
            p50(r, auto, 1, Variant::Hot),
            p50(r, "crossbeam", 1, Variant::Hot),
        ) {
            (Some(a), Some(c)) => {
                let ratio = a as f64 / c as f64;
                Target {
                    rule: rule.into(),
                    measured: format!("auto {}, crossbeam {}: {ratio:.2}x", us(a), us(c)),
                    pass: Some(ratio <= 2.0),
                }
            }
            _ => missing(rule, "auto and crossbeam hot ping-pong, 1 worker"),
        },
    );

    let rule = "idle ping-pong p50: best ringpool mechanism (sleeping ones; spin never sleeps) <= 1.2x raw futex ping-pong";
    let best = r
        .ping_pong
        .iter()
        .filter(|p| p.workers == 1 && p.variant == Variant::Idle)
        .filter(|p| is_ringpool(&p.contender) && p.contender != "spin")
        .min_by_key(|p| p.p50_ns);
    targets.push(match (best, p50(r, "floor-futex", 1, Variant::Idle)) {
        (Some(b), Some(f)) => {
            let ratio = b.p50_ns as f64 / f as f64;
            Target {
                rule: rule.into(),
                measured: format!(
                    "best {} {}, floor-futex {}: {ratio:.2}x",
                    b.contender,
                    us(b.p50_ns),
                    us(f)
                ),
                pass: Some(ratio <= 1.2),
            }
        }
        _ => missing(rule, "ringpool and floor-futex idle ping-pong, 1 worker"),
    });

    let rule =
        "loop-side syscalls per job, depth 64, trivial jobs, 1 worker: ringpool default <= 0.1";
    targets.push(match r.find_throughput(auto, 1, 64, 0) {
        Some(t) => {
            let enters = t.per_job(t.counters.enters);
            let (fig, how) = match t.loop_syscalls_per_job {
                Some(s) => (s, "all syscalls of the loop thread (perf)"),
                None => (enters.unwrap_or(f64::NAN), "LoopStats.enters"),
            };
            Target {
                rule: rule.into(),
                measured: format!(
                    "{fig:.4}/job by {how}; LoopStats.enters/job {}",
                    enters.map_or("n/a".into(), |e| format!("{e:.4}"))
                ),
                pass: Some(fig <= 0.1),
            }
        }
        None => missing(rule, "auto at depth 64, 1 worker, cost 0"),
    });

    let rule = "idle pool CPU after the spin budget: ringpool default < 1% of a core";
    let idle: Vec<_> = r.idle.iter().filter(|i| i.contender == auto).collect();
    targets.push(if idle.is_empty() {
        missing(rule, "auto idle cost")
    } else {
        let worst = idle
            .iter()
            .map(|i| i.process_pct_of_core)
            .fold(0.0f64, f64::max);
        Target {
            rule: rule.into(),
            measured: idle
                .iter()
                .map(|i| {
                    format!(
                        "{} workers: {:.3}% of a core",
                        i.workers, i.process_pct_of_core
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            pass: Some(worst < 1.0),
        }
    });
    targets
}

/// Whether `name` is a ringpool contender (a handoff name, possibly `/per-job`).
pub fn is_ringpool(name: &str) -> bool {
    let base = name.split('/').next().unwrap_or(name);
    // `auto/loop-spin-0` is a diagnostic row, not a mechanism.
    if name == "auto/loop-spin-0" {
        return false;
    }
    base == "auto" || ringpool::Handoff::ALL.iter().any(|h| h.name() == base)
}
