//! Wakers for unit tests: they count how often they are woken.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// Counts its wakes.
pub(crate) struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl Count {
    /// A fresh counter and a waker that counts into it.
    pub(crate) fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// Wakes so far.
    pub(crate) fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}
