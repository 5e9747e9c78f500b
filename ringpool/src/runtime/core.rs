//! The runtime's state on its thread, and the turn of its loop: run what is
//! ready, flush, one `io_uring_enter` that waits for I/O, timers and pool
//! results alike, then hand every CQE to whoever waits for it.

use super::bufs::BufRing;
use super::context;
use super::op::{self, Action, Ops, CANCEL_USER_DATA};
use super::remote::{Remote, Signal, WAKE_USER_DATA};
use super::room::RoomWaiters;
use super::task::{self, Header, JoinHandle, TaskKey, Tasks, MAIN};
use super::time::Timers;
use crate::loop_handle::{submit_until, LoopHandle, Waking};
use crate::sys;
use crate::Pool;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// `IORING_ENTER_GETEVENTS` (v5.1).
const IORING_ENTER_GETEVENTS: u32 = 1;

/// Tasks polled per turn at most before the ring is looked at again.
const TASK_BUDGET: usize = 256;

/// What the kernel lets the runtime use, decided at build.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Features {
    pub(crate) multishot_accept: bool,
    pub(crate) recv_multishot: bool,
}

/// [`Core::polling`] when no spawned task is being polled. No task's token:
/// its index half would need `u32::MAX` tasks at once.
const NOT_POLLING: u64 = u64::MAX;

/// Marks a spawned task as the one being polled ([`Core::polling`] and
/// [`Core::polling_waker`]) until it drops, by return or unwind.
struct Polling<'a> {
    core: &'a Core,
    /// The waker whose address `polling_waker` holds outlives the guard.
    _waker: PhantomData<&'a Rc<Waker>>,
}

impl<'a> Polling<'a> {
    fn start(core: &'a Core, key: TaskKey, waker: &'a Rc<Waker>) -> Polling<'a> {
        core.polling.set(key.token());
        core.polling_waker.set(Rc::as_ptr(waker));
        Polling {
            core,
            _waker: PhantomData,
        }
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.core.polling.set(NOT_POLLING);
        self.core.polling_waker.set(std::ptr::null());
    }
}

/// A runtime's state. Shared (`Rc`) by the runtime, its tasks' futures and
/// its sockets; it never leaves its thread.
pub(crate) struct Core {
    pub(crate) ring: RefCell<IoUring>,
    /// `None` once the runtime shut down.
    pub(crate) lp: RefCell<Option<LoopHandle<()>>>,
    pub(crate) pool: Pool,
    pub(crate) ops: RefCell<Ops>,
    pub(crate) timers: RefCell<Timers>,
    tasks: RefCell<Tasks>,
    /// Tasks woken through their wakers (the header's `scheduled` flag is
    /// set).
    pub(crate) ready: RefCell<VecDeque<Arc<Header>>>,
    /// Tasks woken by their own jobs ([`Waking::Local`]), as the tokens the
    /// loop handle gathered: swapped out of it in one go (a batch,
    /// [`Tasks::next_batch`]), then run in order from `local_next` on.
    local: RefCell<Vec<u64>>,
    local_next: Cell<usize>,
    /// The token of the spawned task being polled ([`TaskKey::token`]), or
    /// [`NOT_POLLING`], and (below) the address of that task's own waker,
    /// which the poll's context lends, or null. Two plain cells, each set
    /// and cleared around every poll (by [`Polling`], also on unwind): a
    /// pair of the two, moved through the stack, cost a store-forwarding
    /// stall per poll. The address is only read while it is not null, so
    /// during the poll, while `run_task` holds the waker's `Rc`.
    polling: Cell<u64>,
    polling_waker: Cell<*const Waker>,
    pub(crate) remote: Arc<Remote>,
    /// The provided buffers multishot receives use (None: plain reads).
    pub(crate) bufs: Option<Rc<BufRing>>,
    pub(crate) features: Features,
    /// `offload` futures waiting for a free slot.
    pub(crate) room_waiters: RefCell<RoomWaiters>,
    /// The eventfd's multishot poll must be (re-)armed.
    rearm_eventfd: Cell<bool>,
    closed: Cell<bool>,
    in_block_on: Cell<bool>,
    pub(crate) stats: Counters,
    /// CQEs taken off the ring and not dispatched yet: those after one
    /// whose waker panicked wait here for the next reap (its allocation is
    /// reused).
    cqes: RefCell<VecDeque<cqueue::Entry>>,
    /// `Builder::io_spin` (zero: never poll for I/O), and the current,
    /// adaptive budget.
    io_spin: Duration,
    io_spin_budget: Cell<Duration>,
}

/// The runtime's own counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) turns: Cell<u64>,
    pub(crate) enters: Cell<u64>,
    pub(crate) polls: Cell<u64>,
    /// Polls for I/O before a sleep, and those that found something.
    pub(crate) io_spins: Cell<u64>,
    pub(crate) io_spin_hits: Cell<u64>,
}

impl Core {
    pub(crate) fn new(
        ring: IoUring,
        lp: LoopHandle<()>,
        pool: Pool,
        remote: Arc<Remote>,
        bufs: Option<Rc<BufRing>>,
        features: Features,
        io_spin: Duration,
    ) -> Core {
        let rearm = matches!(remote.signal, Signal::EventFd(_));
        // As many as the loop handle's own list is made with (one per
        // slot): the two are swapped, so neither needs to grow unless a
        // slot's job finishes twice between two swaps.
        let local_capacity = lp.capacity();
        Core {
            ring: RefCell::new(ring),
            lp: RefCell::new(Some(lp)),
            pool,
            ops: RefCell::new(Ops::default()),
            timers: RefCell::new(Timers::new()),
            tasks: RefCell::new(Tasks::default()),
            ready: RefCell::new(VecDeque::new()),
            local: RefCell::new(Vec::with_capacity(local_capacity)),
            local_next: Cell::new(0),
            polling: Cell::new(NOT_POLLING),
            polling_waker: Cell::new(std::ptr::null()),
            remote,
            bufs,
            features,
            room_waiters: RefCell::new(RoomWaiters::default()),
            rearm_eventfd: Cell::new(rearm),
            closed: Cell::new(false),
            in_block_on: Cell::new(false),
            stats: Counters::default(),
            cqes: RefCell::new(VecDeque::new()),
            io_spin,
            io_spin_budget: Cell::new(io_spin),
        }
    }

    /// An error if the runtime shut down, or is not the one running on
    /// this thread (a socket of another runtime: its operation would never
    /// complete, as nobody turns that ring).
    pub(crate) fn check_open(&self) -> io::Result<()> {
        if self.closed.get() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "ringpool runtime: it has shut down",
            ));
        }
        if !context::is_current(self) {
            return Err(io::Error::other(
                "ringpool runtime: this object belongs to a runtime that is not running \
                 on this thread (use it inside its own block_on)",
            ));
        }
        Ok(())
    }

    /// Waits, as an object of this runtime, until `ready` says so: an error
    /// instead, at any poll, if the runtime shut down or is not the one
    /// running on this thread ([`check_open`](Self::check_open); a future
    /// moved into another runtime's `block_on` would wait for ever, as
    /// nobody turns this ring meanwhile).
    pub(crate) async fn wait_until(
        &self,
        mut ready: impl FnMut(&mut Context<'_>) -> Poll<()>,
    ) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            self.check_open()?;
            ready(cx).map(Ok)
        })
        .await
    }

    /// Panics, for a future whose operation is in flight on this ring and
    /// that was polled while this runtime is not the one running on the
    /// thread: its resources may still be in the kernel (or with a
    /// worker), so it can neither complete elsewhere nor give them back
    /// with an error.
    #[track_caller]
    pub(crate) fn polled_elsewhere(&self, what: &str) -> ! {
        panic!(
            "ringpool runtime: {what} in flight on one runtime was polled inside another \
             (or outside any); await it inside the block_on of the runtime that started it"
        )
    }

    /// Queues `sqe`, submitting first if the SQ is full.
    ///
    /// # Safety
    ///
    /// Whatever `sqe` points to stays valid until its final CQE (it is
    /// owned by the operation's resources or handler, or outlives the ring).
    pub(crate) unsafe fn push(&self, sqe: &squeue::Entry) -> io::Result<()> {
        let mut ring = self.ring.borrow_mut();
        for _ in 0..2 {
            // SAFETY: what the SQE points to lives until its CQE (this fn's
            // obligation, passed on to the kernel).
            if unsafe { ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.stats.enters.set(self.stats.enters.get() + 1);
            match ring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "ringpool runtime: the submission queue is full",
        ))
    }

    /// Submits a multishot request whose CQEs go to `handler` until one
    /// comes without `IORING_CQE_F_MORE`; returns its `user_data`.
    ///
    /// # Safety
    ///
    /// Whatever `sqe` points to lives as long as the runtime's ring (or is
    /// owned by `handler`, which lives until the final CQE).
    pub(crate) unsafe fn submit_multi(
        &self,
        sqe: squeue::Entry,
        handler: Box<dyn FnMut(i32, u32)>,
    ) -> io::Result<u64> {
        self.check_open()?;
        let ud = self.ops.borrow_mut().insert_multi(handler);
        // SAFETY: `sqe` points only to what outlives the ring or what
        // `handler` owns (this fn's obligation); the handler lives in the op
        // table until the final CQE.
        if let Err(e) = unsafe { self.push(&sqe.user_data(ud)) } {
            let handler = self.ops.borrow_mut().remove_multi(ud);
            drop(handler);
            return Err(e);
        }
        Ok(ud)
    }

    /// Queues a cancel of `user_data` (best effort: if it cannot be queued,
    /// the operation simply runs to completion).
    pub(crate) fn cancel(&self, user_data: u64) {
        // SAFETY: an ASYNC_CANCEL references no memory.
        let _ = unsafe { self.push(&op::cancel_sqe(user_data)) };
    }

    /// Spawns a task.
    pub(crate) fn spawn<F: Future + 'static>(&self, future: F) -> JoinHandle<F::Output> {
        if self.closed.get() {
            return task::gone();
        }
        let (boxed, handle) = task::wrap(future);
        let header = self.tasks.borrow_mut().insert(&self.remote, boxed);
        task::set_header(&handle, header.clone());
        if header.schedule() {
            self.ready.borrow_mut().push_back(header);
        }
        handle
    }

    /// How a job queued under `waker` should wake its task: by the task's
    /// key if `waker` is the own waker of the spawned task being polled (no
    /// waker is then cloned, and the wake is a push onto the ready queue);
    /// through `waker` otherwise (`block_on`'s future, a combinator's
    /// waker, another runtime's).
    #[inline]
    pub(crate) fn waking<'a>(&self, waker: &'a Waker) -> Waking<'a> {
        let own = self.polling_waker.get();
        // The poll's own context lends exactly this waker: no need to look
        // at it.
        if std::ptr::eq(own, waker) {
            return Waking::Local(self.polling.get());
        }
        if own.is_null() {
            return Waking::Waker(waker);
        }
        // SAFETY: `polling_waker` is not null only during a poll of
        // `run_task`, which set it to the address of the task's waker inside
        // the `Rc` it holds until after that poll, and whose `Polling` guard
        // resets it to null when the poll ends, by return or unwind. `Core`
        // never leaves its thread, so this call runs during that poll.
        let own = unsafe { &*own };
        if own.will_wake(waker) {
            Waking::Local(self.polling.get())
        } else {
            Waking::Waker(waker)
        }
    }

    pub(crate) fn live_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Runs `future` to completion on this thread, with every spawned task.
    pub(crate) fn block_on<F: Future>(self: &Rc<Self>, future: F) -> F::Output {
        assert!(
            !self.in_block_on.replace(true),
            "ringpool runtime: block_on called from inside block_on on the same runtime"
        );
        struct Reset<'a>(&'a Cell<bool>);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _reset = Reset(&self.in_block_on);
        let _guard = context::enter(self.clone());
        let main = Header::new(TaskKey::MAIN, self.remote.clone());
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        // `future` is polled first, before the tasks already queued.
        main.schedule();
        self.ready.borrow_mut().push_front(main.clone());
        loop {
            self.remote.wakes.awake();
            // Tasks woken by their own jobs take at most half of the
            // turn's polls first, tasks woken through wakers what they need
            // of the rest, then the jobs' tasks what is left: neither kind
            // crowds out the other.
            let budget = TASK_BUDGET - self.run_local(TASK_BUDGET / 2);
            let mut ran = 0;
            while ran < budget {
                let next = self.ready.borrow_mut().pop_front();
                let Some(h) = next else { break };
                ran += 1;
                if h.key.index != MAIN {
                    h.unschedule();
                    self.run_task(h.key, false);
                } else if Arc::ptr_eq(&h, &main) {
                    main.unschedule();
                    if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                        return v;
                    }
                }
            }
            self.run_local(budget - ran);
            let busy = !self.ready.borrow().is_empty() || self.local_left();
            self.turn(busy);
        }
    }

    /// Runs up to `budget` tasks woken by their own jobs, in the order
    /// their jobs finished; returns how many tokens it took. When the
    /// current batch is used up, it takes the next one from the loop
    /// handle first.
    fn run_local(&self, budget: usize) -> usize {
        if self.local_next.get() >= self.local.borrow().len() {
            let mut local = self.local.borrow_mut();
            local.clear();
            self.local_next.set(0);
            match self.lp.borrow_mut().as_mut() {
                Some(lp) => lp.swap_local_wakes(&mut local),
                None => return 0,
            }
            if local.is_empty() {
                return 0;
            }
            self.tasks.borrow_mut().next_batch();
        }
        let mut taken = 0;
        while taken < budget {
            // Read one at a time (the list is not borrowed across a poll),
            // and counted as taken before its poll, which may unwind.
            let i = self.local_next.get();
            let Some(&t) = self.local.borrow().get(i) else {
                break;
            };
            self.local_next.set(i + 1);
            taken += 1;
            self.run_task(TaskKey::from_token(t), true);
        }
        taken
    }

    /// Tokens of the current batch of local wakes not run yet, or tokens
    /// gathered by the loop handle for the next one.
    fn local_left(&self) -> bool {
        self.local_next.get() < self.local.borrow().len()
            || self
                .lp
                .borrow()
                .as_ref()
                .is_some_and(|lp| lp.has_local_wakes())
    }

    /// Polls the task `key` names, woken by its waker or (`local`) by a
    /// token of the current batch of local wakes.
    fn run_task(&self, key: TaskKey, local: bool) {
        let Some((mut future, waker)) = self.tasks.borrow_mut().take_future(key, local) else {
            // A stale wake of a finished task, or a token of a task
            // polled since its job finished.
            return;
        };
        self.stats.polls.set(self.stats.polls.get() + 1);
        let r = {
            // Shared with `waking`, which the task's `offload`s call. The
            // guard drops before `waker` does.
            let _polling = Polling::start(self, key, &waker);
            let mut cx = Context::from_waker(&waker);
            // A spawned task's future catches its own panics
            // (`task::Spawned`), so this poll returns; were it to unwind,
            // the guard still clears the two cells.
            future.as_mut().poll(&mut cx)
        };
        match r {
            Poll::Pending => self.tasks.borrow_mut().put_back(key, future),
            Poll::Ready(()) => {
                self.tasks.borrow_mut().remove(key);
                drop(future); // outside the table's borrow
            }
        }
    }

    /// One turn: submit what is queued, wait (unless `busy`) for the first
    /// of a CQE, a remote wake, a pool result or the next timer, then
    /// dispatch every CQE, fire due timers and take in remote wakes.
    fn turn(&self, busy: bool) {
        self.stats.turns.set(self.stats.turns.get() + 1);
        // Slots freed by tasks that took their results since the last turn;
        // CQEs left by a reap that a waker's panic cut short.
        let busy = self.wake_room_waiters() || busy || !self.cqes.borrow().is_empty();
        if self.rearm_eventfd.replace(false) {
            if let Signal::EventFd(fd) = &self.remote.signal {
                let sqe = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32)
                    .multi(true)
                    .build()
                    .user_data(WAKE_USER_DATA);
                // SAFETY: a poll names only the eventfd, which `Remote` keeps
                // open for as long as any waker (or this core) holds it.
                if unsafe { self.push(&sqe) }.is_err() {
                    self.rearm_eventfd.set(true);
                }
            }
        }
        let deadline = self.timers.borrow_mut().next_deadline();
        let busy = busy || self.poll_for_io(deadline);
        {
            let mut ring = self.ring.borrow_mut();
            let mut lp = self.lp.borrow_mut();
            let sleep = !busy && self.remote.wakes.may_sleep();
            let r = match lp.as_mut() {
                Some(lp) if sleep => {
                    let woken = || !self.ready.borrow().is_empty() || self.remote.wakes.pending();
                    lp.park(&mut ring, deadline, &woken)
                }
                Some(lp) => lp
                    .flush_awake(&mut ring)
                    .and_then(|_| enter_nowait(&mut ring)),
                None if sleep => submit_until(&mut ring, 1, deadline),
                None => enter_nowait(&mut ring),
            };
            self.remote.wakes.awake();
            self.stats.enters.set(self.stats.enters.get() + 1);
            if let Err(e) = r {
                match e.raw_os_error() {
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME) => {}
                    _ => panic!("ringpool runtime: io_uring_enter failed: {e}"),
                }
            }
        }
        self.reap();
        self.timers.borrow_mut().fire(Instant::now());
        self.take_remote();
        self.wake_room_waiters();
    }

    /// Before a sleep: submits what is queued, then polls the ring for up
    /// to the I/O spin budget, unless jobs are in flight (workers may share
    /// this CPU; the pool's own spin covers their results). `true` if
    /// something came (deferred task work, `IORING_SQ_TASKRUN`, which the
    /// kernel sets when a completion waits for this thread to enter; a CQE;
    /// a remote wake) or the deadline passed: the turn then does not sleep.
    fn poll_for_io(&self, deadline: Option<Instant>) -> bool {
        let budget = self.io_spin_budget.get();
        if budget.is_zero()
            || self
                .lp
                .borrow()
                .as_ref()
                .is_some_and(|lp| lp.in_flight() > 0)
        {
            return false;
        }
        self.stats.io_spins.set(self.stats.io_spins.get() + 1);
        let mut ring = self.ring.borrow_mut();
        if !ring.submission().is_empty() {
            // What this turn queued (a reply, say) goes out before the poll.
            self.stats.enters.set(self.stats.enters.get() + 1);
            if ring.submit().is_err() {
                return false; // the turn's own enter reports it
            }
        }
        let mut end = Instant::now() + budget;
        if let Some(d) = deadline {
            end = end.min(d);
        }
        let hit = 'poll: loop {
            for _ in 0..64 {
                if ring.submission().taskrun()
                    || !ring.completion().is_empty()
                    || self.remote.wakes.pending()
                {
                    break 'poll true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= end {
                break false;
            }
        };
        // Adaptive: a hit restores the whole budget (a reply is likely to
        // follow a reply), a miss halves it (down to 1/16). The pool's loop
        // spin doubles on a hit instead.
        if hit {
            self.stats
                .io_spin_hits
                .set(self.stats.io_spin_hits.get() + 1);
            self.io_spin_budget.set(self.io_spin);
        } else {
            self.io_spin_budget.set((budget / 2).max(self.io_spin / 16));
        }
        hit || deadline.is_some_and(|d| d <= Instant::now())
    }

    /// Wakes the `offload` futures waiting for a slot if one is free.
    /// `true` if it woke any.
    fn wake_room_waiters(&self) -> bool {
        if self.room_waiters.borrow().is_empty() {
            return false;
        }
        if !self.lp.borrow().as_ref().is_some_and(|lp| lp.has_room()) {
            return false;
        }
        let waiters = self.room_waiters.borrow_mut().take_all();
        for w in waiters.into_iter().flatten() {
            w.wake();
        }
        true
    }

    /// Tasks woken from other threads, onto the local queue.
    fn take_remote(&self) {
        let mut ready = self.ready.borrow_mut();
        self.remote.wakes.drain(|h| ready.push_back(h));
    }

    /// Dispatches every CQE on the ring.
    pub(crate) fn reap(&self) {
        // All of the CQ at once (its room is the kernel's), then one at a
        // time: a waker that panics unwinds out of this loop with the CQEs
        // after its own still queued, in order, for the next reap.
        self.cqes
            .borrow_mut()
            .extend(self.ring.borrow_mut().completion());
        loop {
            let Some(cqe) = self.cqes.borrow_mut().pop_front() else {
                break;
            };
            if let Some(lp) = self.lp.borrow_mut().as_mut() {
                if lp.handle_cqe(&cqe) {
                    continue;
                }
            }
            self.dispatch(cqe.user_data(), cqe.result(), cqe.flags());
        }
    }

    fn dispatch(&self, user_data: u64, res: i32, flags: u32) {
        match user_data {
            WAKE_USER_DATA => {
                if let Signal::EventFd(fd) = &self.remote.signal {
                    let _ = sys::eventfd::drain(fd);
                    if !cqueue::more(flags) {
                        self.rearm_eventfd.set(true);
                    }
                }
                return;
            }
            CANCEL_USER_DATA => return,
            _ => {}
        }
        let action = self.ops.borrow_mut().on_cqe(user_data, res, flags);
        match action {
            Action::None => {}
            Action::Wake(w) => w.wake(),
            Action::Orphan(f, res, flags) => f(res, flags),
            Action::Multi(h, res, flags, more) => {
                // Back in its slot even if a waker it calls panics: the
                // request stays armed in the kernel, and the handler owns
                // what it uses (the fd among them).
                struct PutBack<'a> {
                    ops: &'a RefCell<Ops>,
                    user_data: u64,
                    handler: Option<op::Handler>,
                }
                impl Drop for PutBack<'_> {
                    fn drop(&mut self) {
                        if let Some(h) = self.handler.take() {
                            self.ops.borrow_mut().put_back(self.user_data, h);
                        }
                    }
                }
                let mut back = PutBack {
                    ops: &self.ops,
                    user_data,
                    handler: Some(h),
                };
                (back.handler.as_mut().expect("set above"))(res, flags);
                if !more {
                    back.handler = None;
                }
            }
        }
    }

    /// Shuts down: drops every task, cancels every operation and waits for
    /// the kernel to finish them (or leaks their resources if it does not
    /// in time), and refuses remote wakes from then on. The pool loop is
    /// closed (waiting for its jobs) when the last reference to the core
    /// goes, normally right after, in `Drop`.
    pub(crate) fn shutdown(&self) {
        if self.closed.replace(true) {
            return;
        }
        // Tasks first: their futures' destructors orphan and cancel their
        // operations, and give up their jobs. Dropped outside the borrow.
        loop {
            let futures = self.tasks.borrow_mut().take_all();
            if futures.is_empty() {
                break;
            }
            drop(futures);
        }
        self.ready.borrow_mut().clear();
        self.local.borrow_mut().clear();
        for ud in self.ops.borrow().in_kernel() {
            self.cancel(ud);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.ops.borrow().live() > 0 {
            if Instant::now() >= deadline {
                self.ops.borrow_mut().leak_all();
                if let Some(b) = &self.bufs {
                    b.leak();
                }
                break;
            }
            let r = {
                let mut ring = self.ring.borrow_mut();
                submit_until(
                    &mut ring,
                    1,
                    Some(Instant::now() + Duration::from_millis(10)),
                )
            };
            if r.is_err_and(|e| !matches!(e.raw_os_error(), Some(libc::EINTR | libc::ETIME))) {
                // The ring refuses: nothing more will complete. Leak.
                self.ops.borrow_mut().leak_all();
                if let Some(b) = &self.bufs {
                    b.leak();
                }
                break;
            }
            self.reap();
            // Cancels race with new multishot CQEs; ask again.
            for ud in self.ops.borrow().in_kernel() {
                self.cancel(ud);
            }
        }
        self.remote.close();
        self.remote.wakes.drain(drop);
        self.ready.borrow_mut().clear();
        self.timers.borrow_mut().clear();
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(lp) = self.lp.get_mut().take() {
            // Jobs still out are waited for; outcomes no task took are
            // dropped here, on the loop's thread.
            drop(lp.close(self.ring.get_mut(), |_| {}));
        }
        if let Some(b) = &self.bufs {
            b.unregister(self.ring.get_mut());
        }
    }
}

/// Submits without waiting, running deferred task work (`GETEVENTS` with
/// `min_complete` 0: on a DEFER_TASKRUN ring completions are posted only
/// then).
fn enter_nowait(ring: &mut IoUring) -> io::Result<usize> {
    let n = ring.submission().len();
    // SAFETY: no argument pointer is passed (None, size 0).
    unsafe {
        ring.submitter()
            .enter::<libc::sigset_t>(n as u32, 0, IORING_ENTER_GETEVENTS, None)
    }
}
