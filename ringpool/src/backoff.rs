//! Exponential backoff for retry loops on cold paths.

use std::time::Duration;

/// Spin, then yield, then sleep up to 16 ms, a little longer each time.
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(0)
    }

    /// Waits a little longer than the previous call did.
    pub(crate) fn snooze(&mut self) {
        match self.0 {
            0..=5 => (0..1u32 << self.0).for_each(|_| std::hint::spin_loop()),
            6..=9 => std::thread::yield_now(),
            n => std::thread::sleep(Duration::from_micros(1 << (n - 6).min(14))),
        }
        self.0 = self.0.saturating_add(1);
    }
}
