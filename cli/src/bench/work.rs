//! The job's CPU work: a calibrated spin of real arithmetic (never a sleep).

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs `iters` rounds of a dependent xorshift chain and returns the final
/// state, so the optimiser can neither drop nor shorten the loop. One round
/// is a few cycles of real ALU work; [`Calibration`] turns microseconds into
/// rounds.
#[inline(never)]
pub fn burn(iters: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// How many [`burn`] rounds make one nanosecond of CPU time on this machine.
#[derive(Copy, Clone, Debug)]
pub struct Calibration {
    /// Rounds per nanosecond (the fastest of several timed runs).
    pub iters_per_ns: f64,
}

impl Calibration {
    /// Times [`burn`] on the calling thread (pin it first) and keeps the
    /// fastest of `runs` runs of about 2 ms each: the fastest run is the one
    /// least disturbed by the VM, and it makes jobs at least as long as asked.
    pub fn measure(runs: usize) -> Calibration {
        const N: u64 = 2_000_000;
        burn(N); // warm up the core's frequency and caches
        let best = (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                burn(N);
                t.elapsed()
            })
            .min()
            .unwrap_or(Duration::from_millis(1));
        Calibration {
            iters_per_ns: N as f64 / best.as_nanos().max(1) as f64,
        }
    }

    /// Rounds of [`burn`] that take `cost`.
    pub fn iters(&self, cost: Duration) -> u64 {
        (cost.as_nanos() as f64 * self.iters_per_ns).round() as u64
    }
}
