//! The contenders: the list of everyone the bench compares, their names and
//! families, and the factory that builds each one's [`Engine`] on the loop
//! thread.

use super::engine::{Engine, EngineCfg};
use super::{answer, floors, peers, ringpool_engine};
use ringpool::{Announce, Handoff};
use std::fmt;

/// Everyone the bench compares.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Contender {
    /// A ringpool pool with this handoff and announce mode.
    Ringpool(Handoff, Announce),
    /// Diagnostic: `auto` with `PoolBuilder::loop_spin(0)` (the loop never
    /// spins before sleeping in its ring).
    AutoNoLoopSpin,
    /// The answer's design, written here with the io-uring crate.
    Answer,
    /// tokio current-thread runtime, `spawn_blocking`.
    TokioBlocking,
    /// tokio current-thread runtime, jobs on a rayon pool, a oneshot back.
    TokioRayon,
    /// Two unbounded crossbeam-channel channels (jobs, results).
    Crossbeam,
    /// Unbounded std `mpsc` channels; the loop sleeps in `recv`.
    StdMpsc,
    /// Floor: both threads busy-spin on one cache line (depth 1 only).
    SpinPingPong,
    /// Floor: a batched SPSC ring each way (cached indices, one publish
    /// per batch), both sides busy-spin.
    SpscSpin,
    /// Floor: the same rings carrying cell indices, each job in a 128-byte
    /// cell as in ringpool's slab (what the cells' transfers cost).
    SpscCells,
    /// Floor: raw futex(2) wait/wake both ways (depth 1 only).
    FutexPingPong,
}

impl Contender {
    /// Every contender, in report order.
    pub fn all() -> Vec<Contender> {
        let mut v = vec![Contender::Ringpool(Handoff::Auto, Announce::Batch)];
        v.extend(
            Handoff::ALL
                .iter()
                .map(|&h| Contender::Ringpool(h, Announce::Batch)),
        );
        v.push(Contender::Ringpool(Handoff::MsgRingSync, Announce::PerJob));
        v.push(Contender::AutoNoLoopSpin);
        v.extend([
            Contender::Answer,
            Contender::TokioBlocking,
            Contender::TokioRayon,
            Contender::Crossbeam,
            Contender::StdMpsc,
            Contender::SpinPingPong,
            Contender::SpscSpin,
            Contender::SpscCells,
            Contender::FutexPingPong,
        ]);
        v
    }

    /// The short name used by `--only`, the JSON and the charts.
    pub fn name(self) -> String {
        match self {
            Contender::Ringpool(h, Announce::PerJob) => format!("{}/per-job", h.name()),
            Contender::Ringpool(h, _) => h.name().to_string(),
            Contender::AutoNoLoopSpin => "auto/loop-spin-0".into(),
            Contender::Answer => "answer".into(),
            Contender::TokioBlocking => "tokio-blocking".into(),
            Contender::TokioRayon => "tokio-rayon".into(),
            Contender::Crossbeam => "crossbeam".into(),
            Contender::StdMpsc => "std-mpsc".into(),
            Contender::SpinPingPong => "floor-spin-line".into(),
            Contender::SpscSpin => "floor-spsc".into(),
            Contender::SpscCells => "floor-cells".into(),
            Contender::FutexPingPong => "floor-futex".into(),
        }
    }

    /// The family, for grouping in reports.
    pub fn family(self) -> &'static str {
        match self {
            Contender::Ringpool(..) | Contender::AutoNoLoopSpin => "ringpool",
            Contender::Answer => "answer",
            Contender::TokioBlocking
            | Contender::TokioRayon
            | Contender::Crossbeam
            | Contender::StdMpsc => "peer",
            _ => "floor",
        }
    }

    /// Whether this contender can run with `workers` workers at `depth`.
    pub fn supports(self, workers: usize, depth: usize) -> bool {
        match self {
            Contender::SpinPingPong | Contender::FutexPingPong => workers == 1 && depth == 1,
            Contender::SpscSpin | Contender::SpscCells => workers == 1,
            _ => true,
        }
    }

    /// Builds the engine. Call on the loop thread (rings are single-issuer).
    pub fn build(self, cfg: &EngineCfg) -> Result<Box<dyn Engine>, String> {
        Ok(match self {
            Contender::Ringpool(h, a) => {
                Box::new(ringpool_engine::RingpoolEngine::new(h, a, None, cfg)?)
            }
            Contender::AutoNoLoopSpin => Box::new(ringpool_engine::RingpoolEngine::new(
                Handoff::Auto,
                Announce::Batch,
                Some(std::time::Duration::ZERO),
                cfg,
            )?),
            Contender::Answer => Box::new(answer::AnswerEngine::new(cfg)?),
            Contender::TokioBlocking => Box::new(peers::TokioBlocking::new(cfg)?),
            Contender::TokioRayon => Box::new(peers::TokioRayon::new(cfg)?),
            Contender::Crossbeam => Box::new(peers::Crossbeam::new(cfg)?),
            Contender::StdMpsc => Box::new(peers::StdMpsc::new(cfg)?),
            Contender::SpinPingPong => Box::new(floors::SpinLine::new(cfg)?),
            Contender::SpscSpin => Box::new(floors::SpscSpin::new(cfg)?),
            Contender::SpscCells => Box::new(floors::SpscCells::new(cfg)?),
            Contender::FutexPingPong => Box::new(floors::FutexPingPong::new(cfg)?),
        })
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
