//! Configuring and starting a pool.

use super::shared::{LoopConfig, PoolOwner, PoolShared};
use super::worker::Pacing;
use super::workers::Workers;
use super::{worker, Pool};
use crate::config::{check_spin, Announce, Shutdown, MAX_THREADS};
use crate::error::{Error, ErrorKind};
use crate::handoff::dispatch::BackendConfig;
use crate::handoff::PoolSide;
use crate::handoff::{self, Capabilities, Handoff};
use crate::sync::{lock, Arc, AtomicBool, AtomicU64, Mutex};
use crate::sys;
use std::time::Duration;

/// The smallest worker stack [`PoolBuilder::stack_size`] takes: less
/// could overflow in the worker's own code, before any job runs.
const MIN_STACK: usize = 64 << 10;

/// Builds a [`Pool`].
///
/// # Examples
///
/// ```
/// use ringpool::{Handoff, Pool};
/// use std::time::Duration;
///
/// let pool = Pool::builder()
///     .workers(2)
///     .handoff(Handoff::Auto)
///     .spin(Duration::from_micros(20))
///     .build()?;
/// println!("running on {}", pool.selection());
/// # Ok::<(), ringpool::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    workers: Option<usize>,
    handoff: Handoff,
    announce: Announce,
    /// `None`: the default, unless the threads share CPUs (then zero).
    spin: Option<Duration>,
    loop_spin: Option<Duration>,
    poll_interval: Duration,
    pin: Option<Vec<usize>>,
    nice: Option<i32>,
    max_in_flight: usize,
    shutdown: Shutdown,
    name: String,
    stack_size: Option<usize>,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            workers: None,
            handoff: Handoff::Auto,
            announce: Announce::Batch,
            spin: None,
            loop_spin: None,
            poll_interval: Duration::from_micros(100),
            pin: None,
            nice: None,
            max_in_flight: 1024,
            shutdown: Shutdown::Cancel,
            name: "ringpool-worker".into(),
            stack_size: None,
        }
    }
}

impl PoolBuilder {
    /// Number of worker threads. Default: `std::thread::available_parallelism()`.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// The handoff mechanism (default [`Handoff::Auto`]). The environment
    /// variable `RINGPOOL_HANDOFF` overrides it.
    pub fn handoff(mut self, h: Handoff) -> Self {
        self.handoff = h;
        self
    }

    /// How results are announced (default [`Announce::Batch`]).
    pub fn announce(mut self, a: Announce) -> Self {
        self.announce = a;
        self
    }

    /// How long an idle worker spins on the job queue before it sleeps
    /// (default 50 µs; zero sleeps at once). The default is zero when the
    /// workers and a loop cannot each have a CPU (see [`build`](PoolBuilder::build)).
    pub fn spin(mut self, d: Duration) -> Self {
        self.spin = Some(d);
        self
    }

    /// How long [`LoopHandle::submit_and_wait`](crate::LoopHandle::submit_and_wait) spins on the result queue,
    /// with announcements suppressed, before it enters the kernel (default
    /// 20 µs; zero never spins). The default is zero when the workers and a
    /// loop cannot each have a CPU.
    pub fn loop_spin(mut self, d: Duration) -> Self {
        self.loop_spin = Some(d);
        self
    }

    /// Runs the workers at this nice value (-20..=19; higher is lower
    /// priority). With workers on the same CPUs as a loop thread, a positive
    /// value lets the loop preempt a long job at once: I/O stays responsive
    /// while the pool is saturated. Default: the creating thread's.
    pub fn worker_nice(mut self, nice: i32) -> Self {
        self.nice = Some(nice);
        self
    }

    /// `condvar` backend only: the loop's bounded wait between polls of the
    /// result queue (default 100 µs).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Pins worker `i` to CPU `i % ncpu`.
    pub fn pin_workers(mut self, yes: bool) -> Self {
        self.pin = if yes {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            Some((0..n).collect())
        } else {
            None
        };
        self
    }

    /// Pins worker `i` to `cpus[i % cpus.len()]`.
    pub fn pin_to(mut self, cpus: &[usize]) -> Self {
        self.pin = Some(cpus.to_vec());
        self
    }

    /// Jobs one loop may have out at once (default 1024). A full loop's
    /// `try_submit` hands the job back.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// What happens to queued jobs when their loop closes (default [`Shutdown::Cancel`]).
    pub fn shutdown(mut self, s: Shutdown) -> Self {
        self.shutdown = s;
        self
    }

    /// Stack size of each worker thread, in bytes (at least 64 KiB). Jobs
    /// run on these stacks: one that recurses deeply or keeps big arrays on
    /// the stack needs more than the default, `std::thread`'s (2 MiB unless
    /// `RUST_MIN_STACK` says otherwise).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Worker thread name prefix (default `ringpool-worker`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Probes the kernel, chooses the handoff, and starts the workers.
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::InvalidConfig`]: zero workers or more than 4096, a zero
    ///   or huge in-flight limit, a `spin` or `loop_spin` over 1 s, an empty
    ///   pin list, a stack under 64 KiB, `Announce::PerJob` with a backend
    ///   that cannot do it, or an unparsable `RINGPOOL_HANDOFF`.
    /// * [`ErrorKind::Unsupported`]: the handoff asked for needs a kernel
    ///   feature this kernel lacks (with `Auto`, only if nothing at all works).
    /// * [`ErrorKind::Io`]: a ring, pipe or eventfd could not be created.
    /// * [`ErrorKind::Spawn`]: a worker thread could not be spawned (the
    ///   workers already started are stopped and joined first).
    pub fn build(self) -> Result<Pool, Error> {
        let workers = match self.workers {
            Some(0) => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "workers must be at least 1",
                ))
            }
            Some(n) if n > MAX_THREADS => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!("workers must be at most {MAX_THREADS}"),
                ))
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.max_in_flight == 0 || self.max_in_flight > 1 << 20 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "max_in_flight must be in 1..=1048576, got {}",
                    self.max_in_flight
                ),
            ));
        }
        check_spin("spin", self.spin)?;
        check_spin("loop_spin", self.loop_spin)?;
        if self.pin.as_ref().is_some_and(|p| p.is_empty()) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "pin_to needs at least one CPU",
            ));
        }
        if let Some(bytes) = self.stack_size.filter(|&b| b < MIN_STACK) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("stack_size must be at least {MIN_STACK} bytes, got {bytes}"),
            ));
        }
        if self.nice.is_some_and(|n| !(-20..=19).contains(&n)) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "worker_nice must be in -20..=19, got {}",
                    self.nice.unwrap_or(0)
                ),
            ));
        }
        // Spinning only pays when a spinner has a CPU of its own. Pinned
        // workers share CPUs if there are fewer CPUs than workers; unpinned
        // ones, if the CPUs this thread may use are fewer than the workers
        // and one loop. Then a spin burns the time the thread it waits for
        // needs, and the default spins are zero.
        let shared_cpus = match &self.pin {
            Some(p) => {
                let mut p = p.clone();
                p.sort_unstable();
                p.dedup();
                p.len() < workers
            }
            None => sys::thread::allowed_cpus().map_or(1, |c| c.len().max(1)) < workers + 1,
        };
        let spin = self.spin.unwrap_or(if shared_cpus {
            Duration::ZERO
        } else {
            Duration::from_micros(50)
        });
        let loop_spin = self.loop_spin.unwrap_or(if shared_cpus {
            Duration::ZERO
        } else {
            Duration::from_micros(20)
        });
        let selection = handoff::select::select(self.handoff, Capabilities::get())?;
        let h = selection.chosen;
        if self.announce == Announce::PerJob && !h.supports_per_job() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("Announce::PerJob needs msg-ring or msg-ring-sync, not {h}"),
            ));
        }
        let backend = PoolSide::new(
            h,
            &BackendConfig {
                workers,
                max_in_flight: self.max_in_flight,
                announce: self.announce,
                poll_interval: self.poll_interval,
            },
        )?;
        let shared = Arc::new(PoolShared {
            backend,
            workers: Workers::new(workers, spin, |i| self.pin.as_ref().map(|p| p[i % p.len()])),
            pacing: if shared_cpus {
                Pacing::SHARED
            } else {
                Pacing::OWN_CPUS
            },
            announce: self.announce,
            shut_down: AtomicBool::new(false),
            cancel_queued: self.shutdown == Shutdown::Cancel,
            cancelled_by_loops: AtomicU64::new(0),
        });
        let mut owner = PoolOwner {
            shared: shared.clone(),
            threads: Mutex::new(Vec::with_capacity(workers)),
            selection,
            config: LoopConfig {
                max_in_flight: self.max_in_flight,
                loop_spin,
                poll_interval: self.poll_interval,
            },
        };
        let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        for idx in 0..workers {
            let shared = shared.clone();
            let tx = tx.clone();
            let cpu = shared.workers.slots[idx].cpu;
            let nice = self.nice;
            let spawned = sys::fault::check(sys::fault::Site::Spawn).and_then(|()| {
                let mut thread = std::thread::Builder::new().name(format!("{}-{idx}", self.name));
                if let Some(bytes) = self.stack_size {
                    thread = thread.stack_size(bytes);
                }
                thread.spawn(move || worker::main(shared, idx, cpu, nice, tx))
            });
            match spawned {
                Ok(t) => lock(&owner.threads).push(t),
                Err(e) => {
                    owner.exit_workers();
                    return Err(Error::spawn(e));
                }
            }
        }
        drop(tx);
        for _ in 0..workers {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    owner.exit_workers();
                    return Err(Error::io("a worker failed to start", e));
                }
                Err(_) => {
                    owner.exit_workers();
                    return Err(Error::new(
                        ErrorKind::Spawn,
                        "a worker exited during start-up",
                    ));
                }
            }
        }
        Ok(Pool {
            owner: Arc::new(owner),
        })
    }
}
