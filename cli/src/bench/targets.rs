//! The performance targets ringpool is held to, from the job-path issue:
//! throughput against the answer's design, tokio `spawn_blocking`,
//! crossbeam-channel and the SPSC floor; latency against crossbeam and a raw
//! futex; voluntary context switches and system calls of the whole process
//! per job; idle CPU. Each is judged on this run's figures only (one run,
//! same machine, the default allocator; unless a rule says otherwise,
//! trivial jobs, depth 64, 1 worker), and `measured` always carries the
//! figures the verdict came from.

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

/// `auto` at depth 64, 1 worker, trivial jobs.
fn auto_tput(r: &Results) -> Option<&Throughput> {
    r.find_throughput("auto", 1, 64, 0)
}

/// Evaluates every target against `r`.
pub fn evaluate(r: &Results) -> Vec<Target> {
    let auto = "auto";
    let mut targets = vec![
        tput_ratio(r, auto, "answer", 10.0, "throughput, trivial jobs, depth 64, 1 worker: ringpool default >= 10x the answer's design"),
        tput_ratio(r, auto, "tokio-blocking", 5.0, "  ... >= 5x tokio spawn_blocking"),
        tput_ratio(r, auto, "crossbeam", 2.0, "  ... >= 2x crossbeam-channel (unbounded channels)"),
        tput_ratio(r, "spin", "floor-spsc", 0.5, "  ... ringpool spin within 2x of the batched SPSC spin floor"),
    ];

    let rule = "hot ping-pong p50, 1 worker: ringpool default within 1.5x of crossbeam-channel";
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
                    pass: Some(ratio <= 1.5),
                }
            }
            _ => missing(rule, "auto and crossbeam hot ping-pong, 1 worker"),
        },
    );

    let rule = "idle ping-pong p50 (gap past every spin budget), 1 worker: ringpool default <= 1.2x raw futex ping-pong";
    targets.push(
        match (
            p50(r, auto, 1, Variant::Idle),
            p50(r, "floor-futex", 1, Variant::Idle),
        ) {
            (Some(a), Some(f)) => {
                let ratio = a as f64 / f as f64;
                Target {
                    rule: rule.into(),
                    measured: format!("auto {}, floor-futex {}: {ratio:.2}x", us(a), us(f)),
                    pass: Some(ratio <= 1.2),
                }
            }
            _ => missing(rule, "auto and floor-futex idle ping-pong, 1 worker"),
        },
    );

    let rule = "voluntary context switches per job, all threads (loop + workers), depth 64, trivial jobs, 1 worker: ringpool default <= 0.01";
    targets.push(match auto_tput(r) {
        Some(t) => Target {
            rule: rule.into(),
            measured: format!(
                "{:.4}/job (loop {:.4}, other threads {:.4}; getrusage ru_nvcsw over {} jobs)",
                t.total_vcsw_per_job,
                t.loop_vcsw_per_job,
                (t.total_vcsw_per_job - t.loop_vcsw_per_job).max(0.0),
                t.jobs
            ),
            pass: Some(t.total_vcsw_per_job <= 0.01),
        },
        None => missing(rule, "auto at depth 64, 1 worker, cost 0"),
    });

    let rule = "system calls per job, all threads of the process (loop + workers + io-wq), depth 64, trivial jobs, 1 worker: ringpool default <= 0.1";
    targets.push(match auto_tput(r) {
        Some(t) => {
            let enters = t
                .per_job(t.counters.enters)
                .map_or("n/a".into(), |e| format!("{e:.4}"));
            match (t.total_syscalls_per_job, t.loop_syscalls_per_job) {
                (Some(total), Some(lp)) => Target {
                    rule: rule.into(),
                    measured: format!(
                        "{total:.4}/job (loop thread {lp:.4}, other threads {:.4}; perf raw_syscalls:sys_enter); LoopStats.enters/job {enters}",
                        (total - lp).max(0.0)
                    ),
                    pass: Some(total <= 0.1),
                },
                _ => Target {
                    rule: rule.into(),
                    measured: format!(
                        "n/a: system calls not countable in this run (see the header); LoopStats.enters/job {enters} (the loop's io_uring_enter only)"
                    ),
                    pass: None,
                },
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
