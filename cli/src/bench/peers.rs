//! The peers: what users reach for today instead of a ring-integrated pool.
//!
//! Each is written the idiomatic way, with its workers pinned like every
//! other contender's and limited to the same worker count.

use super::engine::{join_workers, spawn_worker, Engine, EngineCfg, Job};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// A current-thread runtime whose spawned threads (the blocking pool) are
/// pinned round-robin like workers and capped at `cfg.workers`.
fn runtime(cfg: &EngineCfg) -> Result<Runtime, String> {
    let next_worker = Arc::new(AtomicUsize::new(0));
    let pin_cfg = cfg.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .max_blocking_threads(cfg.workers)
        .on_thread_start(move || pin_cfg.pin_worker(next_worker.fetch_add(1, Ordering::Relaxed)))
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// The loop side of both tokio peers: the runtime and the tasks in flight,
/// each of which yields one job's token. (Field order: the tasks are
/// dropped before the runtime.)
struct TokioLoop {
    set: JoinSet<u64>,
    rt: Runtime,
}

impl TokioLoop {
    fn new(cfg: &EngineCfg) -> Result<Self, String> {
        Ok(TokioLoop {
            set: JoinSet::new(),
            rt: runtime(cfg)?,
        })
    }

    /// Collects at least one finished task, then every other finished one.
    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        let set = &mut self.set;
        self.rt.block_on(async {
            match set.join_next().await {
                Some(r) => done.push(r.map_err(|e| e.to_string())?),
                None => return Err("wait with nothing in flight".to_string()),
            }
            while let Some(r) = set.try_join_next() {
                done.push(r.map_err(|e| e.to_string())?);
            }
            Ok(())
        })
    }

    /// Sleeps on the runtime's timer.
    fn idle(&mut self, d: Duration) -> Result<(), String> {
        self.rt.block_on(async { tokio::time::sleep(d).await });
        Ok(())
    }
}

/// tokio current-thread runtime (the loop) + `spawn_blocking` (the workers).
pub struct TokioBlocking {
    tokio_loop: TokioLoop,
}

impl TokioBlocking {
    /// A runtime whose blocking pool has `cfg.workers` threads at most.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        Ok(TokioBlocking {
            tokio_loop: TokioLoop::new(cfg)?,
        })
    }
}

impl Engine for TokioBlocking {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        let tokio_loop = &mut self.tokio_loop;
        tokio_loop
            .set
            .spawn_blocking_on(move || job.run(), tokio_loop.rt.handle());
        Ok(())
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        self.tokio_loop.wait(done)
    }

    fn idle(&mut self, d: Duration) -> Result<(), String> {
        self.tokio_loop.idle(d)
    }
}

/// tokio current-thread runtime (the loop) + a rayon pool (the workers);
/// each job's result comes back through a `tokio::sync::oneshot`.
pub struct TokioRayon {
    tokio_loop: TokioLoop,
    pool: Option<rayon::ThreadPool>,
    /// rayon threads still running (their exit handler decrements it).
    alive: Arc<AtomicUsize>,
}

impl TokioRayon {
    /// A runtime and a rayon pool of `cfg.workers` pinned threads.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        let pin_cfg = cfg.clone();
        let alive = Arc::new(AtomicUsize::new(cfg.workers));
        let alive_on_exit = alive.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.workers)
            .start_handler(move |i| pin_cfg.pin_worker(i))
            .exit_handler(move |_| {
                alive_on_exit.fetch_sub(1, Ordering::Release);
            })
            .build()
            .map_err(|e| format!("rayon: {e}"))?;
        Ok(TokioRayon {
            tokio_loop: TokioLoop::new(cfg)?,
            pool: Some(pool),
            alive,
        })
    }
}

impl Engine for TokioRayon {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pool = self.pool.as_ref().expect("open until drop");
        pool.spawn(move || {
            let _ = tx.send(job.run());
        });
        let tokio_loop = &mut self.tokio_loop;
        tokio_loop.set.spawn_on(
            async move { rx.await.unwrap_or(u64::MAX) },
            tokio_loop.rt.handle(),
        );
        Ok(())
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        self.tokio_loop.wait(done)
    }

    fn idle(&mut self, d: Duration) -> Result<(), String> {
        self.tokio_loop.idle(d)
    }
}

impl Drop for TokioRayon {
    fn drop(&mut self) {
        // Dropping a ThreadPool does not join its threads: wait (bounded)
        // until they have exited, so they cannot run into the next
        // contender's measurement.
        drop(self.pool.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.alive.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Two unbounded crossbeam-channel channels (`crossbeam_channel::unbounded`,
/// a linked list of blocks that never makes a sender wait): one MPMC job
/// channel the workers share, carrying the 16-byte [`Job`], and one result
/// channel of `u64` tokens the loop blocks on in `recv`.
pub struct Crossbeam {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    results: crossbeam_channel::Receiver<u64>,
    threads: Vec<JoinHandle<()>>,
}

impl Crossbeam {
    /// Starts `cfg.workers` pinned workers.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
        let (result_tx, result_rx) = crossbeam_channel::unbounded::<u64>();
        let mut threads = Vec::new();
        for i in 0..cfg.workers {
            let result_tx = result_tx.clone();
            threads.push(spawn_channel_worker(
                format!("crossbeam-worker-{i}"),
                i,
                cfg,
                job_rx.clone(),
                move |v| result_tx.send(v).is_ok(),
            )?);
        }
        Ok(Crossbeam {
            jobs: Some(job_tx),
            results: result_rx,
            threads,
        })
    }
}

impl Engine for Crossbeam {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        let tx = self.jobs.as_ref().expect("open until drop");
        tx.send(job).map_err(|_| "workers gone".to_string())
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        collect_results(self.results.recv().ok(), self.results.try_iter(), done)
    }
}

impl Drop for Crossbeam {
    fn drop(&mut self) {
        self.jobs = None;
        join_workers(self.threads.drain(..));
    }
}

/// std `mpsc` (unbounded `channel()`s): a job channel per worker (a
/// `Receiver` cannot be shared), filled round-robin, and one result channel
/// the loop sleeps on in `recv`.
pub struct StdMpsc {
    jobs: Vec<std::sync::mpsc::Sender<Job>>,
    next: usize,
    results: std::sync::mpsc::Receiver<u64>,
    threads: Vec<JoinHandle<()>>,
}

impl StdMpsc {
    /// Starts `cfg.workers` pinned workers.
    pub fn new(cfg: &EngineCfg) -> Result<Self, String> {
        let (result_tx, result_rx) = std::sync::mpsc::channel::<u64>();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for i in 0..cfg.workers {
            let (job_tx, job_rx) = std::sync::mpsc::channel::<Job>();
            let result_tx = result_tx.clone();
            jobs.push(job_tx);
            threads.push(spawn_channel_worker(
                format!("mpsc-worker-{i}"),
                i,
                cfg,
                job_rx,
                move |v| result_tx.send(v).is_ok(),
            )?);
        }
        Ok(StdMpsc {
            jobs,
            next: 0,
            results: result_rx,
            threads,
        })
    }
}

impl Engine for StdMpsc {
    fn submit(&mut self, job: Job) -> Result<(), String> {
        self.next = (self.next + 1) % self.jobs.len();
        self.jobs[self.next]
            .send(job)
            .map_err(|_| "worker gone".to_string())
    }

    fn wait(&mut self, done: &mut Vec<u64>) -> Result<(), String> {
        collect_results(self.results.recv().ok(), self.results.try_iter(), done)
    }
}

impl Drop for StdMpsc {
    fn drop(&mut self) {
        self.jobs.clear();
        join_workers(self.threads.drain(..));
    }
}

/// Spawns worker `i` of a channel peer: pins it, then runs every job it
/// receives and sends the result back, until either channel closes.
fn spawn_channel_worker(
    name: String,
    i: usize,
    cfg: &EngineCfg,
    jobs: impl IntoIterator<Item = Job> + Send + 'static,
    mut send: impl FnMut(u64) -> bool + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    spawn_worker(cfg, i, name, move || {
        for job in jobs {
            if !send(job.run()) {
                return;
            }
        }
    })
}

/// The loop side of a channel peer's wait: `first` is what its blocking
/// receive returned (`None`: every worker is gone), `rest` the results
/// already waiting behind it; all of them go to `done`.
fn collect_results(
    first: Option<u64>,
    rest: impl Iterator<Item = u64>,
    done: &mut Vec<u64>,
) -> Result<(), String> {
    done.push(first.ok_or("workers gone")?);
    done.extend(rest);
    Ok(())
}
