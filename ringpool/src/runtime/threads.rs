//! Thread-per-core: N threads, each with its own runtime (and ring), all
//! offloading to one shared pool; every job's result goes back to the ring
//! that submitted it.

use super::{Builder, Runtime};
use crate::affinity;
use crate::config::MAX_THREADS;
use crate::error::{Error, ErrorKind};
use crate::sys::{self, fault::Site};
use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A set of runtime threads; see [`per_core`].
#[derive(Debug)]
pub struct PerCore<T> {
    threads: Vec<JoinHandle<Result<T, Error>>>,
}

impl<T> PerCore<T> {
    /// Waits for every thread; their outputs in thread order. A thread
    /// whose runtime could not be built gives its error; one that panicked
    /// re-raises the panic here.
    pub fn join(self) -> Vec<Result<T, Error>> {
        self.threads
            .into_iter()
            .map(|t| match t.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    }
}

/// Starts `threads` threads, each building a runtime from `builder` (give
/// it a [`Pool`](crate::Pool) with [`Builder::pool`] to share one; without
/// one, a pool is built here and shared) and running `main(i)` on it. With
/// `pin`, thread `i` is pinned to the `i`-th CPU this process may use
/// (wrapping around), as best it can: should that CPU have been taken from
/// the process's affinity mask meanwhile, the thread runs unpinned.
///
/// Each thread typically binds its own listener with
/// [`TcpListener::bind_reuseport`](super::net::TcpListener::bind_reuseport).
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) unless
/// `threads` is 1 to 4096 (as a pool's workers); building the shared pool;
/// [`ErrorKind::Spawn`](crate::ErrorKind::Spawn) if a thread cannot be
/// spawned, after the threads already spawned were stopped (before they
/// ran `main`) and joined.
pub fn per_core<F, Fut>(
    threads: usize,
    pin: bool,
    builder: Builder,
    main: F,
) -> Result<PerCore<Fut::Output>, Error>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("per_core: threads must be 1 to {MAX_THREADS}, not {threads}"),
        ));
    }
    let builder = builder.with_shared_pool()?;
    let cpus = affinity::current_thread_cpus().unwrap_or_default();
    let mut out = Vec::with_capacity(threads);
    // Each thread waits for a go-ahead on its gate before it builds its
    // runtime and runs `main`: should a later spawn fail, the started ones
    // are told to stop (their gate dropped unsent) and joined, so no `main`
    // is left running behind the error.
    let mut gates = Vec::with_capacity(threads);
    for i in 0..threads {
        let builder = builder.clone();
        let main = main.clone();
        let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
        let (gate, opened) = mpsc::channel::<()>();
        let spawned = sys::fault::check(Site::RuntimeSpawn).and_then(|()| {
            std::thread::Builder::new()
                .name(format!("ringpool-rt-{i}"))
                .spawn(move || {
                    if opened.recv().is_err() {
                        return Err(Error::new(
                            ErrorKind::Spawn,
                            "per_core: not started (another runtime thread could not be spawned)",
                        ));
                    }
                    if let (true, Some(cpu)) = (pin, cpu) {
                        // Best effort (documented): the CPU came from this
                        // process's mask a moment ago.
                        let _ = affinity::pin_current_thread(cpu);
                    }
                    let rt: Runtime = builder.build()?;
                    Ok(rt.block_on(main(i)))
                })
        });
        match spawned {
            Ok(t) => {
                out.push(t);
                gates.push(gate);
            }
            Err(e) => {
                drop(gates);
                for t in out {
                    let _ = t.join();
                }
                return Err(Error::spawn_of("a runtime thread", e));
            }
        }
    }
    for gate in gates {
        // A thread that is gone already has nothing to start.
        let _ = gate.send(());
    }
    Ok(PerCore { threads: out })
}
