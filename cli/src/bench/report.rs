//! The terminal report: header, one table per figure, the targets.
//!
//! Beside each figure, `vs ans/tok` is the figure divided by the same figure
//! of the answer's design and of tokio `spawn_blocking` (for latency and CPU
//! lower is better, for jobs/s higher is better).

use super::contenders::Contender;
use super::header::Header;
use super::plan::Plan;
use super::results::Results;
use super::scenarios::{PingPong, Variant};
use super::targets::Target;
use std::fmt::Write;
use std::time::Duration;

/// A plain text table: first column left-aligned, the rest right-aligned.
pub(super) struct Table {
    title: String,
    head: Vec<String>,
    /// The rows, one string per column.
    pub(super) rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub(super) fn new(title: String, head: &[&str]) -> Table {
        Table {
            title,
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends the table to `out` (nothing if it has no rows).
    pub(super) fn render(&self, out: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let n = self.head.len();
        let mut w = vec![0; n];
        for r in std::iter::once(&self.head).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |r: &[String], out: &mut String| {
            let mut s = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                let pad = w[i] - c.chars().count();
                if i == 0 {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str("  ");
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                }
            }
            let _ = writeln!(out, "{}", s.trim_end());
        };
        let _ = writeln!(out, "\n{}", self.title);
        line(&self.head, out);
        let total: usize = w.iter().sum::<usize>() + 2 * (n - 1);
        let _ = writeln!(out, "{}", "-".repeat(total));
        for r in &self.rows {
            line(r, out);
        }
    }
}

/// Three significant digits.
pub(super) fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A rate with a k or M suffix.
pub(super) fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", sig3(x / 1e6))
    } else if x >= 1e3 {
        format!("{}k", sig3(x / 1e3))
    } else {
        sig3(x)
    }
}

/// Rates of several windows, as [`rate`]s separated by spaces.
pub(super) fn rates(xs: &[f64]) -> String {
    xs.iter().map(|&x| rate(x)).collect::<Vec<_>>().join(" ")
}

/// ns as µs, three significant digits.
pub(super) fn us(ns: f64) -> String {
    sig3(ns / 1e3)
}

/// `x / r` as "1.2x", or "-" without `r`.
pub(super) fn ratio(x: f64, r: Option<f64>) -> String {
    match r {
        Some(r) if r > 0.0 && x.is_finite() => {
            let q = x / r;
            if q >= 10.0 {
                format!("{q:.0}x")
            } else if q >= 1.0 {
                format!("{q:.1}x")
            } else {
                format!("{q:.2}x")
            }
        }
        _ => "-".into(),
    }
}

fn vs(x: f64, ans: Option<f64>, tok: Option<f64>) -> String {
    format!("{}/{}", ratio(x, ans), ratio(x, tok))
}

/// `f(x)`, or "n/a" when there is no figure.
fn or_na(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or("n/a".into(), f)
}

/// Row label: the contender name, with what `auto` resolved to.
fn label(c: &str, auto_is: &str) -> String {
    if c == "auto" {
        format!("auto={auto_is}")
    } else {
        c.to_string()
    }
}

/// Renders the whole report.
pub fn render(
    header: &Header,
    plan: &Plan,
    contenders: &[Contender],
    results: &Results,
    targets: &[Target],
    elapsed: Duration,
) -> String {
    let mut out = String::new();
    let auto_is = header
        .auto_selection
        .split_whitespace()
        .next()
        .unwrap_or("?");
    let _ = writeln!(
        out,
        "ringpool bench ({} run, {:.0} s)",
        plan.mode,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "  kernel      {}", header.kernel);
    let _ = writeln!(
        out,
        "  cpu         {} ({} cores)",
        header.cpu_model, header.cores
    );
    let _ = writeln!(out, "  commit      {}", header.commit);
    let _ = writeln!(out, "  date        {}", header.date);
    let _ = writeln!(out, "  auto        {}", header.auto_selection);
    let _ = writeln!(
        out,
        "  loop ring   {} (ringpool rows; the answer uses its own flags)",
        header.loop_ring
    );
    let _ = writeln!(out, "  pinning     {}", header.pinning);
    let _ = writeln!(out, "  sections    {}", plan.sections.join(", "));
    let _ = writeln!(
        out,
        "  turns       contenders take turns: ping-pong in {} rounds (histograms merged), throughput in {} (median run reported)",
        plan.ping_pong_rounds, plan.tput_reps
    );
    let _ = writeln!(
        out,
        "  job cost    calibrated spin, {:.3} rounds/ns",
        header.iters_per_ns
    );
    let _ = writeln!(out, "  cpu time    {}", header.cpu_method);
    let _ = writeln!(out, "  switches    {}", header.switch_method);
    let _ = writeln!(out, "  syscalls    {}", header.syscall_counting);
    let _ = writeln!(
        out,
        "  other load  {:.1}% of the machine used by other processes during the run (loadavg at start {}){}",
        header.foreign_load_pct,
        header.loadavg_at_start,
        if header.foreign_load_pct > 5.0 {
            "  WARNING: the machine was busy; figures are disturbed"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  ratios      vs ans/tok = figure / the answer's design's / tokio spawn_blocking's"
    );
    let _ = writeln!(
        out,
        "  peers       crossbeam: two crossbeam_channel::unbounded channels (jobs, shared by the workers; results); \
         std-mpsc: an unbounded std::sync::mpsc channel per worker + one for results; tokio-blocking: current-thread \
         runtime + spawn_blocking; tokio-rayon: rayon pool + tokio oneshot; floor-spsc: a batched SPSC ring each way \
         (cached indices, one publish per batch), both sides spin; floor-cells: those rings carrying cell indices, \
         each job in a 128-byte cell as in ringpool's slab (loop writes it, worker reads it and writes the result, \
         loop reads it back)"
    );

    let order: Vec<String> = contenders.iter().map(|c| c.name()).collect();
    for &w in &plan.workers {
        for v in Variant::ALL {
            let rows: Vec<_> = order
                .iter()
                .filter_map(|c| results.find_ping_pong(c, w, v))
                .collect();
            let find = |c: &str| rows.iter().find(|p| p.contender == c).copied();
            let (answer_row, tokio_row) = (find("answer"), find("tokio-blocking"));
            let variant_desc = match v {
                Variant::Hot => "hot (back to back)".to_string(),
                Variant::Idle => format!("idle ({} ms gap)", plan.idle_pp.gap.as_millis()),
            };
            let mut table = Table::new(
                format!(
                    "ping-pong {variant_desc}, one job in flight, {w} worker(s): round trip, µs"
                ),
                &[
                    "contender",
                    "p50",
                    "vs ans/tok",
                    "p99",
                    "vs ans/tok",
                    "p99.9",
                    "vs ans/tok",
                    "max",
                    "vs ans/tok",
                    "n",
                ],
            );
            for p in &rows {
                let mut row = vec![label(&p.contender, auto_is)];
                let fields: [fn(&PingPong) -> u64; 4] =
                    [|p| p.p50_ns, |p| p.p99_ns, |p| p.p999_ns, |p| p.max_ns];
                for f in fields {
                    let x = f(p) as f64;
                    row.push(us(x));
                    row.push(vs(
                        x,
                        answer_row.map(|q| f(q) as f64),
                        tokio_row.map(|q| f(q) as f64),
                    ));
                }
                row.push(p.samples.to_string());
                table.rows.push(row);
            }
            table.render(&mut out);
        }

        for &cost in &plan.costs_us {
            let cost_ns = cost * 1000;
            let get = |c: &str, d: usize| results.find_throughput(c, w, d, cost_ns);
            let mut head = vec!["contender".to_string()];
            for d in &plan.depths {
                head.push(format!("depth {d}"));
                head.push("vs ans/tok".into());
            }
            let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
            let mut table = Table::new(
                format!("throughput, job cost {cost} µs, {w} worker(s): jobs/s"),
                &head_ref,
            );
            for c in &order {
                if plan.depths.iter().all(|&d| get(c, d).is_none()) {
                    continue;
                }
                let mut row = vec![label(c, auto_is)];
                for &d in &plan.depths {
                    match get(c, d) {
                        Some(t) => {
                            row.push(rate(t.jobs_per_s));
                            row.push(vs(
                                t.jobs_per_s,
                                get("answer", d).map(|x| x.jobs_per_s),
                                get("tokio-blocking", d).map(|x| x.jobs_per_s),
                            ));
                        }
                        None => {
                            row.push("-".into());
                            row.push("".into());
                        }
                    }
                }
                table.rows.push(row);
            }
            table.render(&mut out);

            let d = if plan.depths.contains(&64) {
                64
            } else {
                *plan.depths.iter().max().unwrap_or(&1)
            };
            let (answer_row, tokio_row) = (get("answer", d), get("tokio-blocking", d));
            let mut table = Table::new(
                format!(
                    "CPU time per job incl. spinning, depth {d}, job cost {cost} µs, {w} worker(s): µs per job, and % of one core over the run \
                     (a side near 100% never slept: its CPU per job is then 1/throughput, whatever its real work)"
                ),
                &[
                    "contender", "loop cpu", "vs ans/tok", "loop %core", "other threads cpu", "vs ans/tok", "other %core",
                ],
            );
            for c in &order {
                let Some(x) = get(c, d) else { continue };
                table.rows.push(vec![
                    label(c, auto_is),
                    us(x.loop_cpu_ns_per_job),
                    vs(
                        x.loop_cpu_ns_per_job,
                        answer_row.map(|q| q.loop_cpu_ns_per_job),
                        tokio_row.map(|q| q.loop_cpu_ns_per_job),
                    ),
                    format!("{:.0}", x.loop_pct_of_core),
                    us(x.worker_cpu_ns_per_job),
                    vs(
                        x.worker_cpu_ns_per_job,
                        answer_row.map(|q| q.worker_cpu_ns_per_job),
                        tokio_row.map(|q| q.worker_cpu_ns_per_job),
                    ),
                    format!("{:.0}", x.worker_pct_of_core),
                ]);
            }
            table.render(&mut out);

            let mut table = Table::new(
                format!(
                    "kernel crossings per job, depth {d}, job cost {cost} µs, {w} worker(s): system calls (loop thread / all threads), \
                     voluntary context switches (loop thread / all threads), ringpool's counters"
                ),
                &[
                    "contender", "sys loop", "sys all", "vs ans/tok", "vcsw loop", "vcsw all", "vs ans/tok",
                    "enters", "wakes sent", "doorbells", "skipped", "parks",
                ],
            );
            for c in &order {
                let Some(x) = get(c, d) else { continue };
                let per_job = |v: Option<u64>| or_na(x.per_job(v), sig3);
                table.rows.push(vec![
                    label(c, auto_is),
                    or_na(x.loop_syscalls_per_job, sig3),
                    or_na(x.total_syscalls_per_job, sig3),
                    match x.total_syscalls_per_job {
                        Some(s) => vs(
                            s,
                            answer_row.and_then(|q| q.total_syscalls_per_job),
                            tokio_row.and_then(|q| q.total_syscalls_per_job),
                        ),
                        None => "-".into(),
                    },
                    sig3(x.loop_vcsw_per_job),
                    sig3(x.total_vcsw_per_job),
                    vs(
                        x.total_vcsw_per_job,
                        answer_row.map(|q| q.total_vcsw_per_job),
                        tokio_row.map(|q| q.total_vcsw_per_job),
                    ),
                    per_job(x.counters.enters),
                    per_job(x.counters.wakes_sent),
                    per_job(x.counters.doorbells_sent),
                    per_job(x.counters.doorbells_skipped),
                    per_job(x.counters.parks),
                ]);
            }
            table.render(&mut out);
        }
    }
    if !results.throughput.is_empty() {
        let _ = writeln!(
        out,
        "\n(counters are per job: enters = io_uring_enter by the loop (LoopStats.enters; the answer: counted); \
         wakes sent = LoopStats.wakes_sent (the answer: one MSG_RING per job); doorbells / skipped = \
         PoolStats.doorbells_sent / doorbells_skipped (the answer: one MSG_RING per job); parks = PoolStats.parks; n/a = no such counter. \
         sys loop / sys all = system calls of the loop thread / of every thread of the process (perf raw_syscalls:sys_enter), \
         from one extra run with the counters open; vcsw = voluntary context switches (getrusage ru_nvcsw) in the measured run; \
         %core = CPU time / wall time of the run: a side that spins yet shows well under 100% lost its CPU, to other \
         processes or to the hypervisor (steal))"
    );
    }

    render_scaling(&mut out, plan, contenders, results, auto_is);

    let mut head = vec!["contender".to_string()];
    for w in &plan.workers {
        head.push(format!("{w}w process"));
        head.push("vs ans/tok".into());
        head.push(format!("{w}w loop"));
    }
    let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut table = Table::new(
        format!(
            "idle cost: CPU over {:.2} s idle, {} ms after a burst, % of one core",
            plan.idle.window.as_secs_f64(),
            plan.idle.settle.as_millis()
        ),
        &head_ref,
    );
    for c in &order {
        let get = |c: &str, w: usize| results.find_idle(c, w);
        if plan.workers.iter().all(|&w| get(c, w).is_none()) {
            continue;
        }
        let mut row = vec![label(c, auto_is)];
        for &w in &plan.workers {
            match get(c, w) {
                Some(i) => {
                    row.push(format!("{:.3}", i.process_pct_of_core));
                    row.push(vs(
                        i.process_pct_of_core,
                        get("answer", w).map(|x| x.process_pct_of_core),
                        get("tokio-blocking", w).map(|x| x.process_pct_of_core),
                    ));
                    row.push(format!("{:.3}", i.loop_pct_of_core));
                }
                None => row.extend(["-".into(), "".into(), "-".into()]),
            }
        }
        table.rows.push(row);
    }
    table.render(&mut out);

    super::runtime_report::render(&mut out, plan, results);

    let _ = writeln!(out, "\ntargets (this run's figures)");
    for t in targets {
        let verdict = match t.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a ",
        };
        let _ = writeln!(out, "  {verdict}  {}\n          {}", t.rule, t.measured);
    }
    if !results.errors.is_empty() {
        let _ = writeln!(out, "\nerrors");
        for e in &results.errors {
            let _ = writeln!(out, "  {e}");
        }
    }
    out
}

/// The worker-scaling table: jobs/s of the scaling contenders at each
/// worker count of the plan's [`ScalingSpec`](super::plan::ScalingSpec).
fn render_scaling(
    out: &mut String,
    plan: &Plan,
    contenders: &[Contender],
    results: &Results,
    auto_is: &str,
) {
    let scaling = &plan.scaling;
    if scaling.workers.len() < 2 {
        return;
    }
    for &cost in &scaling.costs_us {
        let mut head = vec!["contender".to_string()];
        for w in &scaling.workers {
            head.push(format!("{w} worker(s)"));
            head.push("vs 1w".to_string());
        }
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut table = Table::new(
            format!(
                "worker scaling, depth {}, job cost {cost} µs: jobs/s with {} workers ({} = all cores; \
                 pinned as in the header, so with as many workers as cores one shares the loop's CPU)",
                scaling.depth,
                scaling
                    .workers
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                scaling.workers.last().copied().unwrap_or(1)
            ),
            &head_ref,
        );
        for c in contenders
            .iter()
            .filter(|c| scaling.contenders.contains(&c.name().as_str()))
        {
            let get = |w: usize| results.find_throughput(&c.name(), w, scaling.depth, cost * 1000);
            if scaling.workers.iter().all(|&w| get(w).is_none()) {
                continue;
            }
            let one = get(1).map(|t| t.jobs_per_s);
            let mut row = vec![label(&c.name(), auto_is)];
            for &w in &scaling.workers {
                match get(w) {
                    Some(t) => {
                        row.push(rate(t.jobs_per_s));
                        row.push(ratio(t.jobs_per_s, one));
                    }
                    None => row.extend(["-".into(), "".into()]),
                }
            }
            table.rows.push(row);
        }
        table.render(out);
    }
}
