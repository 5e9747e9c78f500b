//! `ringpool bench` (placeholder until the benchmark lands).

use std::error::Error;

/// Benchmark options.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {}

impl BenchArgs {
    /// The quick run that `cargo run --release` does.
    pub fn quick() -> Self {
        BenchArgs {}
    }
}

pub fn run(_args: BenchArgs) -> Result<(), Box<dyn Error>> {
    Err("the benchmark is not built yet".into())
}
