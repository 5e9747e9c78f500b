//! Everything one run measured: what the report, the targets, the charts
//! and the JSON document read.

use super::echo::EchoResults;
use super::http::HttpResults;
use super::missing::Skipped;
use super::offload::OffloadFigure;
use super::scenarios::{Idle, PingPong, Throughput, Variant};
use serde::Serialize;

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    /// Ping-pong latencies.
    pub ping_pong: Vec<PingPong>,
    /// Throughput and CPU per job.
    pub throughput: Vec<Throughput>,
    /// Idle cost.
    pub idle: Vec<Idle>,
    /// The echo benchmark (issue 9).
    pub echo: EchoResults,
    /// The offload benchmark (issue 9).
    pub offload: Vec<OffloadFigure>,
    /// The http section (issue 10).
    pub http: HttpResults,
    /// Contenders of the echo, offload and http sections left out: not
    /// built yet, or failed.
    pub skipped: Vec<Skipped>,
    /// Measurements that failed, with the reason.
    pub errors: Vec<String>,
}

impl Results {
    /// The ping-pong figure of contender `c` with `workers` workers, if it ran.
    pub fn find_ping_pong(&self, c: &str, workers: usize, v: Variant) -> Option<&PingPong> {
        self.ping_pong
            .iter()
            .find(|p| p.contender == c && p.workers == workers && p.variant == v)
    }

    /// The throughput figure of contender `c` with `workers` workers, `depth`
    /// jobs in flight and jobs of `cost_ns`, if it ran.
    pub fn find_throughput(
        &self,
        c: &str,
        workers: usize,
        depth: usize,
        cost_ns: u64,
    ) -> Option<&Throughput> {
        self.throughput.iter().find(|t| {
            t.contender == c && t.workers == workers && t.depth == depth && t.cost_ns == cost_ns
        })
    }

    /// The idle cost of contender `c` with `workers` workers, if it ran.
    pub fn find_idle(&self, c: &str, workers: usize) -> Option<&Idle> {
        self.idle
            .iter()
            .find(|i| i.contender == c && i.workers == workers)
    }
}
