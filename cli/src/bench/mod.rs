//! `ringpool bench`: every handoff mechanism, the answer's design, the peers
//! and the floors, on the same workloads in the same process run; then the
//! benchmarks of issue 9 (the async runtime): TCP echo and offload; then a
//! short HTTP run of issue 10 (`ringpool serve` against tokio + hyper).
//!
//! Sections (`--section`, or a section name in `--only`): `handoff` (the
//! figures below), `echo` ([`echo`]), `offload` ([`offload`]), `http`
//! ([`http`]).
//!
//! Modules, one job each:
//! * [`engine`]: the interface the contenders implement and the types they share;
//! * [`contenders`]: the list of contenders and the factory that builds them;
//! * [`ringpool_engine`], [`answer`], [`peers`], [`floors`]: the contenders;
//! * [`work`]: the calibrated job; [`cpu`]: CPU clocks, syscall counting, other load;
//! * [`scenarios`]: ping-pong, throughput, idle cost; [`results`]: what a run measured;
//! * [`plan`]: what quick / full / smoke run;
//! * [`report`]: terminal tables; [`targets`]: the performance targets and their verdicts;
//! * [`json`], [`charts`]: machine-readable output and SVG charts;
//! * [`header`]: machine, kernel, commit, date;
//! * [`echo`], [`offload`]: the benchmarks of issue 9, with their slots for
//!   ringpool's runtime; [`missing`]: why a contender has no figure;
//!   [`runtime_report`], [`runtime_targets`]: their tables and targets;
//! * [`http`]: the HTTP section, with its servers, client, table and targets.

mod answer;
mod charts;
mod contenders;
mod cpu;
pub mod echo;
mod engine;
mod floors;
mod header;
pub mod http;
mod json;
mod missing;
mod offload;
mod peers;
mod plan;
mod report;
mod results;
mod ringpool_engine;
mod runtime_report;
mod runtime_targets;
mod scenarios;
mod seconds;
mod targets;
mod work;

use contenders::Contender;
use engine::{EngineCfg, LoopRing};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plan::{Mode, Plan};
use results::Results;
use scenarios::LoopSetup;
use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Benchmark options. With neither `--full` nor `--smoke` it runs the quick
/// configuration (about two minutes on two cores).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BenchArgs {
    /// Run everything: depths 1, 8, 64, 256; job costs 0, 1, 10, 100 µs;
    /// 1 and N workers; longer windows (several minutes).
    #[arg(long, conflicts_with = "smoke")]
    pub full: bool,
    /// Tiny iteration counts, every contender once (a few seconds; for CI).
    #[arg(long)]
    pub smoke: bool,
    /// Only these contenders of the handoff section (comma-separated names;
    /// see `--list`), or only these sections (`handoff`, `echo`, `offload`,
    /// `http`, as `--section`). Contender names alone run the handoff
    /// section only.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only these sections (comma-separated): `handoff` (ping-pong,
    /// throughput, idle cost of every handoff), `echo` (TCP echo, issue 9),
    /// `offload` (offload from 64 tasks, issue 9), `http` (`ringpool serve`
    /// against tokio + hyper, issue 10). Default: all.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub section: Vec<Section>,
    /// List the contenders and exit.
    #[arg(long)]
    pub list: bool,
    /// Write the results as JSON to this file (`-` for stdout; the tables
    /// then go to stderr).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Draw SVG charts into this directory.
    #[arg(long, value_name = "DIR")]
    pub svg_dir: Option<PathBuf>,
    /// Setup flags of the loop ring the bench builds for ringpool.
    #[arg(long, value_enum, default_value_t = LoopRing::Answer)]
    pub loop_ring: LoopRing,
    /// Do not pin threads.
    #[arg(long)]
    pub no_pin: bool,
}

impl BenchArgs {
    /// The quick run that `cargo run --release` does.
    pub fn quick() -> Self {
        BenchArgs {
            loop_ring: LoopRing::Answer,
            ..BenchArgs::default()
        }
    }
}

/// A part of the bench that `--section` selects.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Ping-pong, throughput, idle cost and scaling of every handoff.
    Handoff,
    /// TCP echo (issue 9).
    Echo,
    /// Offload from 64 tasks (issue 9).
    Offload,
    /// `ringpool serve` against tokio + hyper on /health and /hash (issue 10).
    Http,
}

impl Section {
    /// Every section, in run order.
    pub const ALL: [Section; 4] = [
        Section::Handoff,
        Section::Echo,
        Section::Offload,
        Section::Http,
    ];

    /// The name used by `--section`, `--only` and the report.
    pub fn name(self) -> &'static str {
        match self {
            Section::Handoff => "handoff",
            Section::Echo => "echo",
            Section::Offload => "offload",
            Section::Http => "http",
        }
    }

    fn from_name(n: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == n.trim())
    }
}

/// The contender names of `--only` (its section names left out).
fn only_contenders(args: &BenchArgs) -> Vec<&str> {
    args.only
        .iter()
        .map(|n| n.trim())
        .filter(|n| Section::from_name(n).is_none())
        .collect()
}

/// The sections that run: those named by `--section` and `--only`; if none
/// is named, every section, unless `--only` names contenders (then the
/// handoff section, as `--only` meant before the sections existed).
/// Contender names next to section names add the handoff section.
fn selected_sections(args: &BenchArgs) -> Vec<Section> {
    let mut named: Vec<Section> = args.section.clone();
    named.extend(args.only.iter().filter_map(|n| Section::from_name(n)));
    if !only_contenders(args).is_empty() {
        named.push(Section::Handoff);
    }
    if named.is_empty() {
        return Section::ALL.to_vec();
    }
    Section::ALL
        .into_iter()
        .filter(|s| named.contains(s))
        .collect()
}

fn selected_contenders(args: &BenchArgs) -> Result<Vec<Contender>, Box<dyn Error>> {
    let all = Contender::all();
    let only = only_contenders(args);
    if only.is_empty() {
        return Ok(all);
    }
    let names: Vec<String> = all.iter().map(|c| c.name()).collect();
    for n in &only {
        if !names.iter().any(|x| x == n) {
            let sections: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
            return Err(format!(
                "unknown contender or section {n:?}; sections: {}; contenders: {}",
                sections.join(", "),
                names.join(", ")
            )
            .into());
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| only.iter().any(|n| *n == c.name()))
        .collect())
}

/// The CPUs the bench pins to: the first `ncpu` of those this process may
/// run on (all of `0..ncpu` on an unrestricted machine). The loop thread
/// takes `cpus[0]` and worker `i` takes `cpus[(1 + i) % cpus.len()]`, so a
/// single worker never shares the loop's CPU when there are two or more.
fn bench_cpus(ncpu: usize) -> Vec<usize> {
    match ringpool::affinity::current_thread_cpus() {
        Ok(mut cpus) if !cpus.is_empty() => {
            cpus.truncate(ncpu.max(1));
            cpus
        }
        _ => (0..ncpu.max(1)).collect(),
    }
}

/// The header's `pinning` line for the CPUs of [`bench_cpus`].
fn describe_pinning(cpus: &[usize]) -> String {
    if cpus.iter().copied().eq(0..cpus.len()) {
        "loop thread on CPU 0; worker i on CPU (1 + i) % cores, for every contender".into()
    } else {
        format!(
            "loop thread on CPU {}; worker i on CPU cpus[(1 + i) % {}] of cpus = {cpus:?}, for every contender",
            cpus[0],
            cpus.len()
        )
    }
}

/// Runs the benchmark described by `args` and prints (and writes) the report.
pub fn run(args: BenchArgs) -> Result<(), Box<dyn Error>> {
    let contenders = selected_contenders(&args)?;
    let sections = selected_sections(&args);
    if args.list {
        println!("handoff section (--only NAME):");
        for c in Contender::all() {
            println!("  {:<20} {}", c.name(), c.family());
        }
        println!("echo section (--section echo):");
        for s in echo::ServerImpl::ALL {
            println!("  {:<20} {}", s.name(), s.describe());
        }
        println!("offload section (--section offload):");
        for o in offload::OffloadImpl::ALL {
            println!("  {:<20} {}", o.name(), o.describe());
        }
        println!("http section (--section http):");
        for s in http::HttpServer::ALL {
            println!("  {:<20} {}", s.name(), s.describe());
        }
        return Ok(());
    }
    // Where the results go is checked before minutes of measuring, not after.
    let to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let json_file = match &args.json {
        Some(path) if !to_stdout => Some(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        ),
        _ => None,
    };
    if let Some(dir) = &args.svg_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the chart directory {}: {e}", dir.display()))?;
    }
    let runs = |s: Section| sections.contains(&s);
    let started = Instant::now();
    let machine_at_start = cpu::MachineSnap::now();
    let loadavg_at_start = header::loadavg();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mode = if args.smoke {
        Mode::Smoke
    } else if args.full {
        Mode::Full
    } else {
        Mode::Quick
    };
    let mut plan = Plan::new(mode, ncpu);
    plan.sections = sections.iter().map(|s| s.name()).collect();
    let pin = !args.no_pin;
    let cpus = bench_cpus(ncpu);
    let loop_cpu = cpus[0];
    // Calibrate on the loop's CPU, where nothing else runs yet.
    let calibration = engine::on_pinned_thread(
        "bench-calibrate",
        "calibration",
        pin.then_some(loop_cpu),
        || Ok(work::Calibration::measure(20)),
    )?;
    let tracefs = cpu::ensure_tracefs();
    let syscall_counter_probe = std::thread::spawn(|| cpu::ProcessSyscalls::open().map(drop))
        .join()
        .map_err(|_| "syscall counter probe panicked")?;
    let auto_selection = ringpool::Pool::builder()
        .workers(1)
        .build()
        .map(|p| p.selection().to_string())
        .unwrap_or_else(|e| format!("unavailable: {e}"));
    let mut run_header = header::Header {
        kernel: ringpool::Capabilities::get().release.clone(),
        cpu_model: header::cpu_model(),
        cores: ncpu,
        commit: header::git_commit(),
        date: header::utc_now(),
        auto_selection,
        loop_ring: format!("{:?}: {}", args.loop_ring, args.loop_ring.describe()),
        pinning: if pin {
            describe_pinning(&cpus)
        } else {
            "none".into()
        },
        iters_per_ns: calibration.iters_per_ns,
        syscall_counting: match (&tracefs, &syscall_counter_probe) {
            (Ok(how), Ok(())) => format!(
                "perf counters on raw_syscalls:sys_enter ({how}): the loop thread, and every thread of the process \
                 (inherit counters on each thread, so later threads count too), in one extra counted run per \
                 throughput figure"
            ),
            (Err(why), _) | (Ok(_), Err(why)) => {
                format!("unavailable ({why}); ringpool figures from LoopStats only")
            }
        },
        cpu_method: "loop: getrusage(RUSAGE_THREAD); other threads: CLOCK_PROCESS_CPUTIME_ID minus the loop thread; \
                     both include spinning"
            .into(),
        switch_method: "voluntary context switches: loop getrusage(RUSAGE_THREAD).ru_nvcsw; all threads \
                        getrusage(RUSAGE_SELF).ru_nvcsw (exited threads included)"
            .into(),
        foreign_load_pct: 0.0,
        loadavg_at_start,
    };

    let steps = if runs(Section::Handoff) {
        plan.steps(&contenders)
    } else {
        vec![]
    };
    let echo_steps = if runs(Section::Echo) {
        plan.echo.steps()
    } else {
        0
    };
    let offload_steps = if runs(Section::Offload) {
        plan.offload.steps()
    } else {
        0
    };
    let http_steps = if runs(Section::Http) {
        plan.http.steps()
    } else {
        0
    };
    let bar = ProgressBar::with_draw_target(
        Some((steps.len() + echo_steps + offload_steps + http_steps) as u64),
        ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let mut measured = Results::default();
    // A figure whose contender failed in one round is not tried again.
    let mut failed: Vec<String> = Vec::new();
    for step in &steps {
        bar.set_message(step.progress());
        if failed.contains(&step.label()) {
            bar.inc(1);
            continue;
        }
        let setup = LoopSetup {
            loop_cpu: pin.then_some(loop_cpu),
            cfg: EngineCfg {
                workers: step.workers,
                worker_cpus: if pin {
                    (0..step.workers)
                        .map(|i| cpus[(1 + i) % cpus.len()])
                        .collect()
                } else {
                    vec![]
                },
                loop_ring: args.loop_ring,
            },
            count_syscalls: syscall_counter_probe.is_ok(),
        };
        if let Err(e) = step.run(&setup, &calibration, &mut measured) {
            measured.errors.push(format!("{}: {e}", step.label()));
            failed.push(step.label());
        }
        bar.inc(1);
    }
    measured.merge_rounds();
    // The echo, offload and http sections tick the bar before each step.
    let mut ticks = 0usize;
    let mut tick = |label: &str| {
        if ticks > 0 {
            bar.inc(1);
        }
        ticks += 1;
        bar.set_message(label.to_string());
    };
    if runs(Section::Echo) {
        let echo_cpus = echo::EchoCpus::split(&cpus, pin);
        echo::run(&plan.echo, &echo_cpus, &mut tick, &mut measured);
    }
    if runs(Section::Offload) {
        let setup_for = |workers: usize| offload::OffloadSetup {
            loop_cpu: pin.then_some(loop_cpu),
            cfg: EngineCfg {
                workers,
                worker_cpus: if pin {
                    (0..workers).map(|i| cpus[(1 + i) % cpus.len()]).collect()
                } else {
                    vec![]
                },
                loop_ring: args.loop_ring,
            },
            tasks: plan.offload.tasks,
            warmup: plan.offload.warmup,
            window: plan.offload.window,
            reps: plan.offload.reps,
        };
        offload::run(&plan.offload, &setup_for, &mut tick, &mut measured);
    }
    if runs(Section::Http) {
        let http_cpus = http::HttpCpus::new(&cpus, pin);
        http::run(&plan.http, &http_cpus, &mut tick, &mut measured);
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    run_header.foreign_load_pct = cpu::MachineSnap::now().foreign_pct_since(&machine_at_start);

    let mut targets = if runs(Section::Handoff) {
        targets::evaluate(&measured)
    } else {
        vec![]
    };
    if runs(Section::Echo) {
        targets.extend(runtime_targets::echo(&measured));
    }
    if runs(Section::Offload) {
        targets.extend(runtime_targets::offload(&measured));
    }
    if runs(Section::Http) {
        targets.extend(http::targets::evaluate(&measured));
    }
    let text = report::render(
        &run_header,
        &plan,
        &contenders,
        &measured,
        &targets,
        elapsed,
    );
    // With the JSON on stdout, everything else goes to stderr.
    let say = |text: &str| {
        if to_stdout {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    };
    say(&text);
    if let Some(dir) = &args.svg_dir {
        let files = charts::draw(dir, &contenders, &measured)?;
        say(&format!(
            "charts: {} SVG files in {}\n",
            files.len(),
            dir.display()
        ));
    }
    if let Some(path) = &args.json {
        let doc = json::document(
            &run_header,
            &plan,
            &contenders,
            &measured,
            &targets,
            elapsed,
        );
        if to_stdout {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        } else if let Some(file) = json_file {
            serde_json::to_writer_pretty(std::io::BufWriter::new(file), &doc)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("json: {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(only: &[&str], section: &[Section]) -> BenchArgs {
        BenchArgs {
            only: only.iter().map(|s| s.to_string()).collect(),
            section: section.to_vec(),
            ..BenchArgs::default()
        }
    }

    #[test]
    fn sections_from_only_and_section() {
        assert_eq!(selected_sections(&args(&[], &[])), Section::ALL.to_vec());
        assert_eq!(
            selected_sections(&args(&["echo"], &[])),
            vec![Section::Echo]
        );
        assert_eq!(
            selected_sections(&args(&[], &[Section::Offload, Section::Echo])),
            vec![Section::Echo, Section::Offload]
        );
        // Contender names alone: the handoff section, as before.
        assert_eq!(
            selected_sections(&args(&["auto", "answer"], &[])),
            vec![Section::Handoff]
        );
        assert_eq!(
            selected_sections(&args(&["auto", "offload"], &[])),
            vec![Section::Handoff, Section::Offload]
        );
    }

    #[test]
    fn section_names_are_not_contenders() {
        let c = selected_contenders(&args(&["echo", "auto"], &[])).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name(), "auto");
        assert_eq!(
            selected_contenders(&args(&["echo"], &[])).unwrap().len(),
            Contender::all().len()
        );
        assert!(selected_contenders(&args(&["nope"], &[])).is_err());
    }
}
