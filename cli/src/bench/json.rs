//! The machine-readable report (`--json`).

use super::contenders::Contender;
use super::header::Header;
use super::plan::Plan;
use super::results::Results;
use super::targets::Target;
use serde::Serialize;
use std::time::Duration;

/// One contender as listed in the JSON.
#[derive(Serialize)]
pub struct ContenderInfo {
    /// The name used everywhere else in the document.
    pub name: String,
    /// `ringpool`, `answer`, `peer` or `floor`.
    pub family: &'static str,
}

/// The whole document.
#[derive(Serialize)]
pub struct Document<'a> {
    /// Format version of this document.
    pub schema: u32,
    /// Machine, kernel, commit, date, methods.
    pub header: &'a Header,
    /// The sizes that ran.
    pub plan: &'a Plan,
    /// Wall time of the run, s.
    pub elapsed_s: f64,
    /// Who ran.
    pub contenders: Vec<ContenderInfo>,
    /// Every figure (latencies in ns, CPU in ns per job; schema 3 adds
    /// `echo`, `offload` and `skipped`, and the plan's `sections`, `echo`
    /// and `offload`; schema 4 adds `http` and the plan's `http`).
    pub results: &'a Results,
    /// The targets and their verdicts (`pass: null` = not measurable).
    pub targets: &'a [Target],
}

/// Assembles the document.
pub fn document<'a>(
    header: &'a Header,
    plan: &'a Plan,
    contenders: &[Contender],
    results: &'a Results,
    targets: &'a [Target],
    elapsed: Duration,
) -> Document<'a> {
    Document {
        schema: 4,
        header,
        plan,
        elapsed_s: elapsed.as_secs_f64(),
        contenders: contenders
            .iter()
            .map(|c| ContenderInfo {
                name: c.name(),
                family: c.family(),
            })
            .collect(),
        results,
        targets,
    }
}
