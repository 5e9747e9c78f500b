//! hyper's `Timer` on ringpool's runtime.
//!
//! hyper wants `Send + Sync` sleeps, and ringpool's [`sleep`] is bound to
//! its thread's runtime. So a hyper sleep here is a shared entry (its
//! deadline, its waker, whether it fired) that a driver task on the
//! runtime keeps in deadline order and fires with one ringpool sleep for
//! the soonest. A sleep registers with the driver when first polled, and
//! its drop takes it out (both wake the driver, a local wake on the ring's
//! thread), so a header timeout that is set and dropped for every request
//! does not pile up until its deadline.

use ringpool::runtime::time::sleep_until;
use ringpool::runtime::{self, JoinHandle};
use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A sleep's state, shared by the sleep and the driver.
#[derive(Default)]
struct State {
    waker: Option<Waker>,
    registered: bool,
    fired: bool,
}

struct Entry {
    key: (Instant, u64),
    state: Mutex<State>,
}

/// What sleeps hand the driver.
#[derive(Default)]
struct Inbox {
    added: Vec<Arc<Entry>>,
    removed: Vec<(Instant, u64)>,
    driver: Option<Waker>,
}

#[derive(Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    next_id: AtomicU64,
    /// Sleeps in the driver's table after its last pass (for tests).
    pending: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Hands the driver an entry or a removal, and wakes it.
    fn send(&self, f: impl FnOnce(&mut Inbox)) {
        let waker = {
            let mut inbox = lock(&self.inbox);
            f(&mut inbox);
            inbox.driver.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// hyper's [`Timer`](hyper::rt::Timer) on the ringpool runtime it was made
/// on; clones share one driver task.
#[derive(Clone)]
pub struct RingpoolTimer {
    shared: Arc<Shared>,
}

impl RingpoolTimer {
    /// A timer whose driver runs on the current ringpool runtime; the
    /// driver ends when the returned handle is aborted or the runtime shuts
    /// down (sleeps still pending then never fire).
    pub fn spawn() -> (RingpoolTimer, JoinHandle<()>) {
        let shared = Arc::new(Shared::default());
        let driver = runtime::spawn(drive(shared.clone()));
        (RingpoolTimer { shared }, driver)
    }
}

impl hyper::rt::Timer for RingpoolTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // ringpool's own deadline for `duration` (saturated when it does
        // not fit an `Instant`); the sleep itself is never polled, so it
        // registers nothing.
        self.sleep_until(ringpool::runtime::time::sleep(duration).deadline())
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        Box::pin(Sleep {
            entry: Arc::new(Entry {
                key: (deadline, id),
                state: Mutex::new(State::default()),
            }),
            shared: self.shared.clone(),
        })
    }
}

/// One hyper sleep.
struct Sleep {
    entry: Arc<Entry>,
    shared: Arc<Shared>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.entry.key.0 <= Instant::now() {
            return Poll::Ready(());
        }
        let register = {
            let mut s = lock(&self.entry.state);
            if s.fired {
                return Poll::Ready(());
            }
            match &s.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => s.waker = Some(cx.waker().clone()),
            }
            !std::mem::replace(&mut s.registered, true)
        };
        if register {
            let entry = self.entry.clone();
            self.shared.send(|inbox| inbox.added.push(entry));
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let s = lock(&self.entry.state);
        if s.registered && !s.fired {
            drop(s);
            let key = self.entry.key;
            self.shared.send(|inbox| inbox.removed.push(key));
        }
    }
}

impl hyper::rt::Sleep for Sleep {}

/// The driver: keeps the registered sleeps by deadline, fires the due ones,
/// and sleeps (one ringpool sleep) until the soonest or until woken.
async fn drive(shared: Arc<Shared>) {
    let mut pending: BTreeMap<(Instant, u64), Arc<Entry>> = BTreeMap::new();
    loop {
        {
            let mut inbox = lock(&shared.inbox);
            for e in inbox.added.drain(..) {
                pending.insert(e.key, e);
            }
            for k in inbox.removed.drain(..) {
                pending.remove(&k);
            }
        }
        let now = Instant::now();
        while let Some(e) = pending.first_entry() {
            if e.key().0 > now {
                break;
            }
            let waker = {
                let mut s = lock(&e.get().state);
                s.fired = true;
                s.waker.take()
            };
            e.remove();
            if let Some(w) = waker {
                w.wake();
            }
        }
        shared.pending.store(pending.len(), Ordering::Relaxed);
        let soonest = pending.first_key_value().map(|(k, _)| k.0);
        let mut timer = pin!(soonest.map(sleep_until));
        poll_fn(|cx| {
            if let Some(t) = timer.as_mut().as_pin_mut() {
                if t.poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            let mut inbox = lock(&shared.inbox);
            if !inbox.added.is_empty() || !inbox.removed.is_empty() {
                return Poll::Ready(());
            }
            inbox.driver = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;
    use ringpool::runtime::Runtime;

    /// Sleeps fire in deadline order, not before their deadline; dropped
    /// ones leave the driver's table; a sleep polled from another thread
    /// fires too.
    #[test]
    fn sleeps_fire_in_order_and_drops_leave() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        rt.block_on(async {
            let (timer, driver) = RingpoolTimer::spawn();
            let t0 = Instant::now();
            let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            for ms in [30u64, 10, 20] {
                let (timer, order) = (timer.clone(), order.clone());
                tasks.push(runtime::spawn(async move {
                    timer.sleep(Duration::from_millis(ms)).await;
                    assert!(t0.elapsed() >= Duration::from_millis(ms));
                    order.borrow_mut().push(ms);
                }));
            }
            // A thousand set and dropped, as hyper's header timeouts are.
            for _ in 0..1000 {
                let mut s = timer.sleep(Duration::from_secs(10));
                assert!(poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx).is_pending())).await);
            }
            // One on another thread, with its own waker.
            let other = timer.sleep(Duration::from_millis(15));
            let far = std::thread::spawn(move || futures_block_on(other));
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(*order.borrow(), [10, 20, 30]);
            far.join().unwrap();
            // The driver's next pass takes the last removals.
            timer.sleep(Duration::from_millis(1)).await;
            assert_eq!(timer.shared.pending.load(Ordering::Relaxed), 0);
            driver.abort();
        });
    }

    /// A minimal block_on for a `Send` future on a plain thread.
    fn futures_block_on<F: Future>(f: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
}
