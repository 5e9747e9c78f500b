//! Everything one run measured: what the report, the targets, the charts
//! and the JSON document read.

use super::scenarios::{Idle, PingPong, Throughput};
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
    /// Measurements that failed, with the reason.
    pub errors: Vec<String>,
}
