//! The load client, the same for every server: hand-written
//! level-triggered epoll over non-blocking sockets, closed loop. Each
//! connection sends a message, reads the whole answer, records the round
//! trip in an HDR histogram and sends again. What a message is and when an
//! answer is whole is an [`Exchange`]: [`Echo`] here, an HTTP/1.1 request
//! and its response in the http section (`super::super::http::client`).
//!
//! One client thread per client CPU (every CPU but the server's; on two
//! cores, one thread on the other CPU), each pinned and driving its share
//! of the connections. Per round trip a client thread makes one `write`,
//! one `read` (more if the echo arrives in pieces) and its share of one
//! `epoll_wait`: as little as any readiness-based server, but not less, and
//! on loopback each side's `write` also runs the peer's TCP receive path.
//! So one client CPU drives about what one server CPU serves: with a single
//! client CPU, the client and the leanest server saturate together (see
//! `floor-epoll` and the client's CPU beside each figure).

use super::process::ProcSnap;
use crate::bench::cpu::{CpuSnap, MachineSnap};
use hdrhistogram::Histogram;
use rustix::event::epoll;
use serde::Serialize;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// What each connection sends, and when what came back is the whole
/// answer: the protocol of a load run.
pub trait Exchange: Clone + Send + 'static {
    /// A connection's progress through one answer.
    type Reading: Default;
    /// The bytes of one request (written whole before the answer is read).
    fn request(&self) -> &[u8];
    /// The most bytes the next read may take (at least 1).
    fn read_limit(&self, reading: &Self::Reading) -> usize;
    /// Takes `bytes`, just read: `Ok(None)` while the answer is incomplete;
    /// `Ok(Some(expected))` once it is whole (and `reading` is ready for the
    /// next), `expected` false for a whole answer that is not the one asked
    /// for (an HTTP status other than 200), which the window counts as an
    /// error.
    ///
    /// # Errors
    ///
    /// An answer that breaks the protocol; the run stops with it.
    fn take(&self, reading: &mut Self::Reading, bytes: &[u8]) -> Result<Option<bool>, String>;
}

/// The echo protocol: a message of fixed size, answered by the same bytes.
#[derive(Clone, Debug)]
pub struct Echo {
    msg: Vec<u8>,
}

impl Echo {
    /// Messages of `size` bytes (at least 1).
    pub fn new(size: usize) -> Echo {
        Echo {
            msg: vec![0x5a; size.max(1)],
        }
    }
}

impl Exchange for Echo {
    /// Bytes of the echo received so far.
    type Reading = usize;

    fn request(&self) -> &[u8] {
        &self.msg
    }

    fn read_limit(&self, got: &usize) -> usize {
        self.msg.len() - got
    }

    fn take(&self, got: &mut usize, bytes: &[u8]) -> Result<Option<bool>, String> {
        *got += bytes.len();
        if *got < self.msg.len() {
            return Ok(None);
        }
        *got = 0;
        Ok(Some(true))
    }
}

/// One load run.
#[derive(Copy, Clone, Debug)]
pub struct Load {
    /// Connections, each with one message in flight.
    pub connections: usize,
    /// Unmeasured run first.
    pub warmup: Duration,
    /// Each measured window.
    pub window: Duration,
    /// Measured windows, back to back.
    pub reps: usize,
}

/// What one measured window saw (every client thread together).
pub struct Window {
    /// Round trips completed inside the window (errors included).
    pub round_trips: u64,
    /// Of those, answers that were whole but not the expected ones.
    pub errors: u64,
    /// Length of the window, s.
    pub secs: f64,
    /// Round-trip times, ns.
    pub hist: Histogram<u64>,
    /// The server's `/proc` figures at the start and end of the window.
    pub server: (ProcSnap, ProcSnap),
    /// CPU time of the client threads over the window.
    pub client_cpu: Duration,
    /// Client threads.
    pub client_threads: usize,
    /// The machine's CPU counters at the start and end of the window.
    pub machine: (MachineSnap, MachineSnap),
}

impl Window {
    /// Round trips per second.
    pub fn rate(&self) -> f64 {
        self.round_trips as f64 / self.secs
    }

    /// The server's CPU time (every thread) over the window.
    pub fn server_cpu(&self) -> Duration {
        Duration::from_nanos(self.server.1.cpu_ns.saturating_sub(self.server.0.cpu_ns))
    }

    /// The server's CPU per round trip, ns.
    pub fn server_cpu_ns_per_rt(&self) -> f64 {
        self.server_cpu().as_nanos() as f64 / self.round_trips.max(1) as f64
    }

    /// The server's CPU over the window, % of one core.
    pub fn server_pct_of_core(&self) -> f64 {
        100.0 * self.server_cpu().as_secs_f64() / self.secs
    }

    /// The server's voluntary context switches per round trip.
    pub fn server_vcsw_per_rt(&self) -> f64 {
        let vcsw = self.server.1.vcsw.saturating_sub(self.server.0.vcsw);
        vcsw as f64 / self.round_trips.max(1) as f64
    }

    /// The client threads' CPU over the window, % of one core.
    pub fn client_pct_of_core(&self) -> f64 {
        100.0 * self.client_cpu.as_secs_f64() / self.secs
    }

    /// CPU used by processes other than the bench and the server over the
    /// window, % of the machine.
    pub fn other_load_pct(&self) -> f64 {
        let (start, end) = &self.machine;
        end.foreign_pct_besides(start, self.server_cpu())
    }
}

/// What a closed-loop cell reports of its window beside its rate and CPU
/// per round trip, the same fields in every section (flattened into the
/// echo and http cells).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WindowFigures {
    /// Window, s.
    pub secs: f64,
    /// Median round trip, ns.
    pub p50_ns: u64,
    /// 99th percentile round trip, ns.
    pub p99_ns: u64,
    /// 99.9th percentile round trip, ns.
    pub p999_ns: u64,
    /// Server CPU over the window, % of one core.
    pub server_pct_of_core: f64,
    /// Server threads.
    pub server_threads: usize,
    /// Client threads (one per client CPU, at most one per connection).
    pub client_threads: usize,
    /// CPU of all client threads over the window, % of one core.
    pub client_pct_of_core: f64,
    /// CPU used by processes other than the bench and this server over the
    /// window, % of the machine.
    pub other_load_pct: f64,
}

impl WindowFigures {
    /// The figures of `w`.
    pub fn of(w: &Window) -> WindowFigures {
        WindowFigures {
            secs: w.secs,
            p50_ns: w.hist.value_at_quantile(0.5),
            p99_ns: w.hist.value_at_quantile(0.99),
            p999_ns: w.hist.value_at_quantile(0.999),
            server_pct_of_core: w.server_pct_of_core(),
            server_threads: w.server.1.threads,
            client_threads: w.client_threads,
            client_pct_of_core: w.client_pct_of_core(),
            other_load_pct: w.other_load_pct(),
        }
    }

    /// An undisturbed one-second window with this p99 (and half of it as
    /// p50), for the targets' tests.
    #[cfg(test)]
    pub fn with_p99(p99_ns: u64) -> WindowFigures {
        WindowFigures {
            secs: 1.0,
            p50_ns: p99_ns / 2,
            p99_ns,
            p999_ns: p99_ns,
            server_pct_of_core: 50.0,
            server_threads: 2,
            client_threads: 1,
            client_pct_of_core: 50.0,
            other_load_pct: 0.0,
        }
    }
}

/// One window of `load` (its `reps` ignored: one) against the server at
/// `addr`, after the warm-up; see [`run`].
pub fn one_window<E: Exchange>(
    addr: SocketAddr,
    pid: u32,
    exchange: &E,
    load: Load,
    cpus: &[Option<usize>],
) -> Result<Window, String> {
    let load = Load { reps: 1, ..load };
    run(addr, pid, exchange, load, cpus)?
        .pop()
        .ok_or_else(|| "the client measured no window".to_string())
}

/// The window with the median rate (the one reported: a burst of other
/// load on a shared machine then spoils one window, not the figure), and
/// the rate of every window in run order.
///
/// # Panics
///
/// If `windows` is empty ([`run`] returns at least one).
pub fn median(mut windows: Vec<Window>) -> (Window, Vec<f64>) {
    let rates = windows.iter().map(Window::rate).collect();
    windows.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    (windows.swap_remove(windows.len() / 2), rates)
}

/// The server and machine figures at a window boundary (taken by client
/// thread 0).
struct Mark {
    server: ProcSnap,
    machine: MachineSnap,
    at: Instant,
}

impl Mark {
    fn now(pid: u32) -> Result<Mark, String> {
        Ok(Mark {
            server: ProcSnap::read(pid)?,
            machine: MachineSnap::now(),
            at: Instant::now(),
        })
    }
}

/// One client thread's share of one window.
struct Part {
    round_trips: u64,
    errors: u64,
    hist: Histogram<u64>,
    cpu: Duration,
}

/// What one client thread brings back: its share of each window, and
/// (thread 0 only) the marks at the `reps + 1` boundaries.
type ThreadResult = Result<(Vec<Part>, Vec<Mark>), String>;

/// Stop if no echo arrives for this long.
const STALL: Duration = Duration::from_secs(5);

/// Bytes a client thread reads at once, at most.
const READ_BUF: usize = 64 * 1024;

/// A connection's state.
struct Conn<R> {
    sock: TcpStream,
    /// When its message went out.
    sent_at: Instant,
    /// Its progress through the answer.
    reading: R,
}

/// Drives `load` of `exchange` against the server at `addr` (process
/// `pid`) with one thread per entry of `cpus` (pinned there; `None`: not
/// pinned), at most one per connection; returns its `load.reps` windows.
///
/// # Errors
///
/// Connect, I/O or `/proc` failures, an answer that breaks the protocol,
/// or a stalled server.
pub fn run<E: Exchange>(
    addr: SocketAddr,
    pid: u32,
    exchange: &E,
    load: Load,
    cpus: &[Option<usize>],
) -> Result<Vec<Window>, String> {
    let threads = cpus.len().clamp(1, load.connections.max(1));
    let barrier = Arc::new(Barrier::new(threads));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let conns = load.connections / threads + usize::from(t < load.connections % threads);
        let cpu = cpus.get(t).copied().flatten();
        let barrier = barrier.clone();
        let exchange = exchange.clone();
        let h = std::thread::Builder::new()
            .name(format!("load-client-{t}"))
            .spawn(move || -> ThreadResult {
                if let Some(cpu) = cpu {
                    let _ = ringpool::affinity::pin_current_thread(cpu);
                }
                let pid = (t == 0).then_some(pid);
                drive(addr, pid, &exchange, load, conns, &barrier)
            })
            .map_err(|e| format!("spawn client: {e}"))?;
        handles.push(h);
    }
    let mut results = Vec::with_capacity(threads);
    for h in handles {
        results.push(
            h.join()
                .map_err(|_| "a client thread panicked".to_string())??,
        );
    }
    let marks = std::mem::take(&mut results[0].1);
    let mut windows = Vec::with_capacity(load.reps);
    for (i, pair) in marks.windows(2).enumerate() {
        let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
        let (mut round_trips, mut errors, mut cpu) = (0, 0, Duration::ZERO);
        for (parts, _) in &results {
            let p = parts.get(i).ok_or("a client thread lost a window")?;
            hist.add(&p.hist).map_err(|e| e.to_string())?;
            round_trips += p.round_trips;
            errors += p.errors;
            cpu += p.cpu;
        }
        windows.push(Window {
            round_trips,
            errors,
            secs: pair[1].at.duration_since(pair[0].at).as_secs_f64(),
            hist,
            server: (pair[0].server, pair[1].server),
            client_cpu: cpu,
            client_threads: threads,
            machine: (pair[0].machine, pair[1].machine),
        });
    }
    Ok(windows)
}

/// One client thread: opens `n` connections, waits for the others at
/// `barrier`, then runs the warm-up and `load.reps` windows; takes the
/// marks if it has the server's `pid`.
fn drive<E: Exchange>(
    addr: SocketAddr,
    pid: Option<u32>,
    exchange: &E,
    load: Load,
    n: usize,
    barrier: &Barrier,
) -> ThreadResult {
    // Every thread reaches the barrier, even one whose connections failed.
    let opened = connect(addr, n);
    barrier.wait();
    let (ep, mut conns) = opened?;
    let msg = exchange.request();
    let mut buf = vec![0u8; READ_BUF];
    let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    for c in &mut conns {
        send(c, msg)?;
    }
    let started = Instant::now();
    let reps = load.reps.max(1);
    let mut parts = Vec::with_capacity(reps);
    let mut marks = Vec::with_capacity(reps + 1);
    // The boundaries: the end of the warm-up, then of each window.
    let mut next = 0usize;
    let boundary = |k: usize| started + load.warmup + load.window * k as u32;
    let mut cpu_at = Duration::ZERO;
    let (mut round_trips, mut errors) = (0u64, 0u64);
    let mut last_echo = started;
    let mut events = Vec::with_capacity(n.max(1));
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    loop {
        let now = Instant::now();
        if now >= boundary(next) {
            if let Some(pid) = pid {
                marks.push(Mark::now(pid)?);
            }
            let cpu = CpuSnap::now().loop_thread;
            if next > 0 {
                parts.push(Part {
                    round_trips,
                    errors,
                    hist: hist.clone(),
                    cpu: cpu.saturating_sub(cpu_at),
                });
            }
            if next == reps {
                break;
            }
            hist.reset();
            (round_trips, errors) = (0, 0);
            cpu_at = cpu;
            next += 1;
        }
        if now.duration_since(last_echo) > STALL {
            return Err(format!(
                "no echo for {} s: the server stalled",
                STALL.as_secs()
            ));
        }
        events.clear();
        match epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        for ev in &events {
            let c = &mut conns[ev.data.u64() as usize];
            let limit = exchange.read_limit(&c.reading).clamp(1, buf.len());
            let got = match c.sock.read(&mut buf[..limit]) {
                Ok(0) => return Err("the server closed a connection".into()),
                Ok(got) => got,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(format!("client read: {e}")),
            };
            let Some(expected) = exchange.take(&mut c.reading, &buf[..got])? else {
                continue;
            };
            let now = Instant::now();
            last_echo = now;
            if next > 0 {
                let rtt = now.duration_since(c.sent_at).as_nanos() as u64;
                hist.record(rtt.max(1)).map_err(|e| e.to_string())?;
                round_trips += 1;
                errors += u64::from(!expected);
            }
            send(c, msg)?;
        }
    }
    Ok((parts, marks))
}

/// Opens `n` non-blocking connections to `addr`, registered in a new epoll
/// set under their index.
fn connect<R: Default>(
    addr: SocketAddr,
    n: usize,
) -> Result<(rustix::fd::OwnedFd, Vec<Conn<R>>), String> {
    let io = |what: &'static str| move |e: std::io::Error| format!("client {what}: {e}");
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let sock = TcpStream::connect(addr).map_err(io("connect"))?;
        sock.set_nodelay(true).map_err(io("nodelay"))?;
        sock.set_nonblocking(true).map_err(io("nonblocking"))?;
        epoll::add(
            &ep,
            &sock,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN,
        )
        .map_err(|e| format!("epoll_ctl: {e}"))?;
        conns.push(Conn {
            sock,
            sent_at: Instant::now(),
            reading: R::default(),
        });
    }
    Ok((ep, conns))
}

/// Sends one message on `c` whole and stamps it. The socket's send buffer
/// is empty (the previous answer came back in full), so one `write`
/// normally takes it all; if the buffer is still smaller than the message
/// (a young connection's, before the kernel grows it), the rest waits for
/// room on this connection alone.
fn send<R>(c: &mut Conn<R>, msg: &[u8]) -> Result<(), String> {
    c.sent_at = Instant::now();
    let mut sent = 0;
    while sent < msg.len() {
        match c.sock.write(&msg[sent..]) {
            Ok(0) => return Err("client write: the socket took nothing".into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_writable(&c.sock)?,
            Err(e) => return Err(format!("client write: {e}")),
        }
    }
    Ok(())
}

/// Waits until `sock` can take more bytes, at most [`STALL`].
fn wait_writable(sock: &TcpStream) -> Result<(), String> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(sock, PollFlags::OUT)];
    let timeout = Timespec {
        tv_sec: STALL.as_secs() as i64,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(0) => Err(format!(
            "the server took no bytes for {} s",
            STALL.as_secs()
        )),
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(format!("poll: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::echo::epoll_server;

    /// The client against the floor server on a thread of this process:
    /// every window it reports is one it measured, and each recorded round
    /// trip is counted once.
    #[test]
    fn windows_come_back_whole() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = |a| tx.send(a).unwrap();
            let _ = epoll_server::serve(SocketAddr::from(([127, 0, 0, 1], 0)), &mut ready);
        });
        let addr = rx.recv().unwrap();
        let load = Load {
            connections: 4,
            warmup: Duration::from_millis(5),
            window: Duration::from_millis(20),
            reps: 3,
        };
        let echo = Echo::new(64);
        let windows = run(addr, std::process::id(), &echo, load, &[None, None]).unwrap();
        assert_eq!(windows.len(), 3);
        for w in &windows {
            assert_eq!(w.hist.len(), w.round_trips);
            assert_eq!(w.errors, 0);
            assert_eq!(w.client_threads, 2);
        }
        let opened =
            crate::bench::echo::idle::open(addr, 8, Duration::from_secs(30), None).unwrap();
        assert_eq!(opened.socks.len(), 8, "{:?}", opened.stopped);
    }
}
