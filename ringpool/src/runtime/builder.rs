//! [`Builder`]: the runtime's ring, its pool and its buffers.

use super::bufs::BufRing;
use super::core::{Core, Features};
use super::remote::{Remote, Signal};
use super::Runtime;
use crate::config::check_spin;
use crate::error::{Error, ErrorKind};
use crate::handoff::{Capabilities, Handoff};
use crate::pool::{Pool, PoolBuilder};
use crate::sys;
use io_uring::IoUring;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Builds a [`Runtime`]. The defaults just work: a 256-entry ring with
/// `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (6.1), a pool
/// of its own with the probed handoff, 256 provided buffers of 16 KiB.
#[derive(Clone, Debug)]
pub struct Builder {
    entries: u32,
    pool: Option<Pool>,
    pool_builder: Option<PoolBuilder>,
    buffers: u16,
    buffer_size: usize,
    defer_taskrun: bool,
    multishot: bool,
    io_spin: Duration,
}

/// [`Builder::io_spin`]'s default.
const IO_SPIN: Duration = Duration::from_micros(50);

impl Default for Builder {
    fn default() -> Self {
        Builder {
            entries: 256,
            pool: None,
            pool_builder: None,
            buffers: 256,
            buffer_size: 16 * 1024,
            defer_taskrun: true,
            multishot: true,
            io_spin: IO_SPIN,
        }
    }
}

impl Builder {
    /// The defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// SQ entries of the ring (a power of two; the CQ gets four times as many).
    pub fn entries(mut self, n: u32) -> Self {
        self.entries = n;
        self
    }

    /// Offload to this pool (shared with other runtimes: thread-per-core).
    pub fn pool(mut self, pool: Pool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Build a pool of the runtime's own with these settings.
    pub fn pool_builder(mut self, b: PoolBuilder) -> Self {
        self.pool_builder = Some(b);
        self
    }

    /// The handoff mechanism of the runtime's own pool (see [`Handoff`]).
    pub fn handoff(mut self, h: Handoff) -> Self {
        self.pool_builder = Some(self.pool_builder.take().unwrap_or_default().handoff(h));
        self
    }

    /// Worker threads of the runtime's own pool.
    pub fn workers(mut self, n: usize) -> Self {
        self.pool_builder = Some(self.pool_builder.take().unwrap_or_default().workers(n));
        self
    }

    /// How long the loop spins for results before it sleeps (the runtime's
    /// own pool; see [`PoolBuilder::loop_spin`]).
    pub fn spin(mut self, d: Duration) -> Self {
        self.pool_builder = Some(self.pool_builder.take().unwrap_or_default().loop_spin(d));
        self
    }

    /// How long the ring thread, with nothing to run and no job of its own
    /// in flight, polls its ring for I/O before it sleeps (default 50 µs;
    /// zero never polls). A reply that comes back within it is taken
    /// without the sleep and the wake (on a virtual machine a wake of an
    /// idle CPU alone can cost tens of µs), and the peer's write need not
    /// wake this thread. Adaptive: a poll that saw nothing halves the next
    /// one (down to 1/16), one that did restores it, so sparse traffic
    /// costs little. Never while jobs are in flight: the workers may share
    /// this CPU, and the pool's own [`spin`](Builder::spin) covers results.
    /// Needs `IORING_SETUP_TASKRUN_FLAG` (5.19), to see deferred completions
    /// without entering the kernel; without it the thread does not poll.
    pub fn io_spin(mut self, d: Duration) -> Self {
        self.io_spin = d;
        self
    }

    /// Provided buffers for multishot receives: `count` (a power of two up
    /// to 32768) of `size` bytes, shared by every connection. `count` 0
    /// turns them off (each read then goes to its own buffer).
    pub fn buffers(mut self, count: u16, size: usize) -> Self {
        self.buffers = count;
        self.buffer_size = size;
        self
    }

    /// Whether to ask for `IORING_SETUP_DEFER_TASKRUN` (default yes; it
    /// falls back to `COOP_TASKRUN` or nothing on older kernels).
    pub fn defer_taskrun(mut self, yes: bool) -> Self {
        self.defer_taskrun = yes;
        self
    }

    /// Whether to use multishot accept and receive where the kernel has
    /// them (default yes; `false` exercises the single-shot paths).
    pub fn multishot(mut self, yes: bool) -> Self {
        self.multishot = yes;
        self
    }

    /// The same builder with its pool built, so that clones share it.
    pub(crate) fn with_shared_pool(mut self) -> Result<Builder, Error> {
        if self.pool.is_none() {
            self.pool = Some(self.pool_builder.take().unwrap_or_default().build()?);
        }
        Ok(self)
    }

    /// Builds the runtime on the calling thread (it is `!Send`: it stays
    /// on this thread).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a pool given together with pool
    /// settings, a bad ring size or buffer count, or an `io_spin` over 1 s;
    /// [`ErrorKind::OnOwnWorker`] if built, with its pool, on one of that
    /// pool's workers (inside an `offload`); [`ErrorKind::Io`] if
    /// io_uring cannot be set up; the pool's own errors.
    pub fn build(self) -> Result<Runtime, Error> {
        if self.pool.is_some() && self.pool_builder.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "runtime builder: pool() was given, so handoff/workers/spin/pool_builder \
                 (which configure a pool of the runtime's own) cannot be",
            ));
        }
        check_spin("runtime builder: io_spin", Some(self.io_spin))?;
        if !self.entries.is_power_of_two() || self.entries > 32768 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "runtime builder: entries must be a power of two up to 32768, not {}",
                    self.entries
                ),
            ));
        }
        let caps = Capabilities::get();
        let (ring, taskrun_flag) = self.ring(caps)?;
        let pool = match self.pool {
            Some(p) => p,
            None => self.pool_builder.unwrap_or_default().build()?,
        };
        let mut ring = ring;
        let mut lp = pool.register::<()>(&mut ring)?;
        // `Core` keeps this ring and this handle together and passes no
        // other ring: no kcmp before each wait.
        lp.ring_is_owned();
        let signal = if caps.sync_msg_ring {
            let dup = sys::dup_cloexec(ring.as_raw_fd())
                .map_err(|e| Error::io("cannot dup the ring fd", e))?;
            Signal::Msg(dup)
        } else {
            Signal::EventFd(
                sys::eventfd::new().map_err(|e| Error::io("cannot create an eventfd", e))?,
            )
        };
        let v = caps.version.unwrap_or((0, 0));
        let features = Features {
            multishot_accept: self.multishot && v >= (5, 19),
            recv_multishot: self.multishot && v >= (6, 0) && self.buffers > 0,
        };
        let bufs = if features.recv_multishot {
            Some(
                BufRing::new(&ring, self.buffers, self.buffer_size).map_err(|e| {
                    Error::new(ErrorKind::InvalidConfig, format!("runtime builder: {e}"))
                })?,
            )
        } else {
            None
        };
        // The poll for I/O reads the SQ ring's IORING_SQ_TASKRUN flag.
        let io_spin = if taskrun_flag {
            self.io_spin
        } else {
            Duration::ZERO
        };
        let core = Core::new(
            ring,
            lp,
            pool,
            Arc::new(Remote::new(signal)),
            bufs,
            features,
            io_spin,
        );
        Ok(Runtime {
            core: Rc::new(core),
        })
    }

    /// The ring: the best setup flags this kernel takes, and whether they
    /// include `IORING_SETUP_TASKRUN_FLAG`.
    fn ring(&self, caps: &Capabilities) -> Result<(IoUring, bool), Error> {
        let cq = self.entries * 4;
        type Setup = fn(&mut io_uring::Builder);
        let mut tries: Vec<(Setup, bool)> = Vec::new();
        if self.defer_taskrun && caps.defer_taskrun {
            tries.push((
                |b| {
                    b.setup_single_issuer()
                        .setup_defer_taskrun()
                        .setup_taskrun_flag();
                },
                true,
            ));
            tries.push((
                |b| {
                    b.setup_single_issuer().setup_defer_taskrun();
                },
                false,
            ));
        }
        tries.push((
            |b| {
                b.setup_coop_taskrun().setup_taskrun_flag();
            },
            true,
        ));
        tries.push((|_| {}, false));
        let mut last = None;
        for (f, taskrun_flag) in tries {
            let mut b = IoUring::builder();
            b.setup_cqsize(cq);
            f(&mut b);
            match b.build(self.entries) {
                Ok(r) => return Ok((r, taskrun_flag)),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::io(
            "cannot set up the runtime's io_uring",
            last.expect("at least one attempt"),
        ))
    }
}
