//! An async runtime on one io_uring per thread, whose CPU-bound work goes
//! to a ringpool [`Pool`] and comes back on the same ring.
//!
//! ```
//! use ringpool::runtime::{net::TcpListener, net::TcpStream, offload, Runtime};
//!
//! let rt = Runtime::new()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = ringpool::runtime::spawn(async move {
//!         let (conn, _) = listener.accept().await?;
//!         let (r, buf) = conn.read(vec![0u8; 64]).await;
//!         let n = r?;
//!         // CPU-bound work on the pool; the loop keeps serving meanwhile.
//!         let sum = offload(move || buf[..n].iter().map(|&b| b as u64).sum::<u64>())
//!             .await
//!             .expect("the job ran");
//!         conn.write_all(sum.to_string().into_bytes()).await.0
//!     });
//!     let client = TcpStream::connect(addr).await?;
//!     client.write_all(&b"\x01\x02\x03"[..]).await.0?;
//!     let (r, reply) = client.read(Vec::with_capacity(16)).await;
//!     r?;
//!     assert_eq!(reply, b"6");
//!     server.await.expect("the server task ran")?;
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The loop
//!
//! [`Runtime::block_on`] runs a future and every task [`spawn`]ed onto the
//! runtime. Each turn polls what is ready, then makes **one**
//! `io_uring_enter` that submits every queued SQE and waits for the first
//! CQE (network I/O, a pool result, or a wake from another thread), with
//! the soonest timer as its timeout; then it hands every CQE to whoever
//! waits for it. The ring is set up `SINGLE_ISSUER | DEFER_TASKRUN` where
//! the kernel has it (6.1), else `COOP_TASKRUN`, else plain.
//!
//! # Waking
//!
//! [`Waker`](std::task::Waker)s are `Send + Sync`. A wake on the runtime's
//! thread is a push on a local queue; a wake from any other thread is a
//! push on a locked list plus, only if the loop is asleep, one signal to
//! the ring (a ringless `MSG_RING`, 6.13, else an eventfd the ring polls):
//! no wakeup is lost and no signal goes to a ring that is awake.
//!
//! # Cancellation
//!
//! Dropping an I/O future cancels its operation (`IORING_OP_ASYNC_CANCEL`);
//! its buffer and its fd stay alive until the kernel's final CQE, and bytes
//! or connections that arrive anyway are kept for the next call. Dropping
//! the [`Runtime`] drops every task, cancels every operation and waits for
//! their CQEs (leaking their memory, never freeing it under the kernel, if
//! the kernel does not give it back within 5 s), then waits for the pool
//! jobs still out.
//!
//! # One runtime per object
//!
//! Sockets, operations, jobs and tasks belong to the runtime they were
//! made on: only its `block_on` turns the ring their completions come
//! through. Used inside another runtime's `block_on` on the same thread,
//! or outside any, a socket's call fails with an [`io::Error`](std::io::Error)
//! and an unfinished task's [`JoinHandle`] with a [`JoinError`], at once
//! rather than waiting for ever; a [`time::sleep`], and an [`offload`]
//! still waiting for room, move to the runtime polling them. An I/O
//! operation or an [`offload`] already in
//! flight there panics instead, with a message that says so: its buffer or
//! its job cannot be handed back before its own runtime reaps it. The
//! unwind drops it as any drop does (cancelled, nothing freed under the
//! kernel, the job's result dropped when it comes).

mod buf;
mod bufs;
mod builder;
mod context;
mod core;
pub mod net;
mod offload;
mod op;
mod remote;
mod room;
mod task;
#[cfg(test)]
mod test_wakers;
mod threads;
pub mod time;

pub use buf::{IoBuf, IoBufMut, Slice};
pub use builder::Builder;
pub use offload::{offload, Offload};
pub use task::{JoinError, JoinHandle};
pub use threads::{per_core, PerCore};

use crate::handoff::Handoff;
use crate::Pool;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

/// A single-threaded async runtime driven by its own io_uring; see the
/// [module docs](self). It is `!Send`: build it on the thread that runs it.
pub struct Runtime {
    core: Rc<core::Core>,
}

impl Runtime {
    /// A runtime with the defaults ([`Builder`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn new() -> Result<Runtime, crate::Error> {
        Builder::new().build()
    }

    /// A builder.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `future` to completion, and the spawned tasks along with it.
    ///
    /// # Panics
    ///
    /// If called from inside `block_on` of the same runtime; if `future`
    /// panics (the panic propagates); if the ring fails for good.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.core.block_on(future)
    }

    /// Spawns a task onto this runtime (it runs during `block_on`).
    pub fn spawn<F: Future + 'static>(&self, future: F) -> JoinHandle<F::Output> {
        self.core.spawn(future)
    }

    /// The pool that `offload` uses.
    pub fn pool(&self) -> &Pool {
        &self.core.pool
    }

    /// The handoff mechanism in use.
    pub fn handoff(&self) -> Handoff {
        self.core.pool.handoff()
    }

    /// Counters.
    pub fn stats(&self) -> RuntimeStats {
        let c = &self.core.stats;
        let lp = self.core.lp.borrow();
        RuntimeStats {
            turns: c.turns.get(),
            enters: c.enters.get(),
            polls: c.polls.get(),
            tasks: self.core.live_tasks(),
            operations: self.core.ops.borrow().live(),
            timers: self.core.timers.borrow().len(),
            jobs_in_flight: lp.as_ref().map_or(0, |lp| lp.in_flight()),
            remote_signals: self.core.remote.signals.load(Relaxed),
            remote_quiet: self.core.remote.quiet.load(Relaxed),
            io_spins: self.core.stats.io_spins.get(),
            io_spin_hits: self.core.stats.io_spin_hits.get(),
            loop_stats: lp.as_ref().map(|lp| lp.stats()).unwrap_or_default(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("handoff", &self.handoff())
            .finish()
    }
}

/// A runtime's counters; see [`Runtime::stats`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Turns of the loop.
    pub turns: u64,
    /// `io_uring_enter` calls the loop made (waits and submits).
    pub enters: u64,
    /// Task polls.
    pub polls: u64,
    /// Tasks alive.
    pub tasks: usize,
    /// Operations in the kernel (or completed and not yet looked at).
    pub operations: usize,
    /// Timers registered.
    pub timers: usize,
    /// Pool jobs out.
    pub jobs_in_flight: usize,
    /// Wakes from other threads that had to signal a sleeping ring.
    pub remote_signals: u64,
    /// Wakes from other threads that needed no signal (the loop was awake).
    pub remote_quiet: u64,
    /// Polls for I/O before a sleep ([`Builder::io_spin`]).
    pub io_spins: u64,
    /// Of those, the ones that found something, so the loop did not sleep.
    pub io_spin_hits: u64,
    /// The loop handle's counters (wakes sent to workers, waits, spins).
    pub loop_stats: crate::LoopStats,
}

/// Spawns a task onto the runtime running on this thread.
///
/// Outside a runtime the task is dropped and the handle resolves to a
/// cancelled [`JoinError`] (no panic).
pub fn spawn<F: Future + 'static>(future: F) -> JoinHandle<F::Output> {
    match context::current() {
        Some(core) => core.spawn(future),
        None => task::gone(),
    }
}

/// Raises this process's open-file limit (`RLIMIT_NOFILE`) to its hard
/// limit, for servers with many connections; returns the new limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    crate::sys::net::raise_nofile()
}
