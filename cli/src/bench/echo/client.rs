//! The load client, the same for every server: hand-written
//! level-triggered epoll over non-blocking sockets, closed loop. Each
//! connection sends a message, reads the whole echo, records the round
//! trip in an HDR histogram and sends again.
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
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One load run.
#[derive(Copy, Clone, Debug)]
pub struct Load {
    /// Connections, each with one message in flight.
    pub connections: usize,
    /// Message size, bytes.
    pub size: usize,
    /// Unmeasured run first.
    pub warmup: Duration,
    /// Each measured window.
    pub window: Duration,
    /// Measured windows, back to back.
    pub reps: usize,
}

/// What one measured window saw (every client thread together).
pub struct Window {
    /// Round trips completed inside the window.
    pub round_trips: u64,
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
    hist: Histogram<u64>,
    cpu: Duration,
}

/// What one client thread brings back: its share of each window, and
/// (thread 0 only) the marks at the `reps + 1` boundaries.
type ThreadResult = Result<(Vec<Part>, Vec<Mark>), String>;

/// Stop if no echo arrives for this long.
const STALL: Duration = Duration::from_secs(5);

/// A connection's state.
struct Conn {
    sock: TcpStream,
    /// When its message went out.
    sent_at: Instant,
    /// Bytes of the echo received so far.
    got: usize,
}

/// Drives `load` against the server at `addr` (process `pid`) with one
/// thread per entry of `cpus` (pinned there; `None`: not pinned), at most
/// one per connection; returns its `load.reps` windows.
///
/// # Errors
///
/// Connect, I/O or `/proc` failures, a short echo, or a stalled server.
pub fn run(
    addr: SocketAddr,
    pid: u32,
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
        let h = std::thread::Builder::new()
            .name(format!("echo-client-{t}"))
            .spawn(move || -> ThreadResult {
                if let Some(cpu) = cpu {
                    let _ = ringpool::affinity::pin_current_thread(cpu);
                }
                drive(addr, (t == 0).then_some(pid), load, conns, &barrier)
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
        let (mut round_trips, mut cpu) = (0, Duration::ZERO);
        for (parts, _) in &results {
            let p = parts.get(i).ok_or("a client thread lost a window")?;
            hist.add(&p.hist).map_err(|e| e.to_string())?;
            round_trips += p.round_trips;
            cpu += p.cpu;
        }
        windows.push(Window {
            round_trips,
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
fn drive(
    addr: SocketAddr,
    pid: Option<u32>,
    load: Load,
    n: usize,
    barrier: &Barrier,
) -> ThreadResult {
    // Every thread reaches the barrier, even one whose connections failed.
    let opened = connect(addr, n);
    barrier.wait();
    let (ep, mut conns) = opened?;
    let msg = vec![0x5au8; load.size];
    let mut buf = vec![0u8; load.size.max(1)];
    let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    for c in &mut conns {
        send(c, &msg)?;
    }
    let started = Instant::now();
    let reps = load.reps.max(1);
    let mut parts = Vec::with_capacity(reps);
    let mut marks = Vec::with_capacity(reps + 1);
    // The boundaries: the end of the warm-up, then of each window.
    let mut next = 0usize;
    let boundary = |k: usize| started + load.warmup + load.window * k as u32;
    let mut cpu_at = Duration::ZERO;
    let mut round_trips = 0u64;
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
                    hist: hist.clone(),
                    cpu: cpu.saturating_sub(cpu_at),
                });
            }
            if next == reps {
                break;
            }
            hist.reset();
            round_trips = 0;
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
            let got = match c.sock.read(&mut buf[..load.size - c.got]) {
                Ok(0) => return Err("the server closed a connection".into()),
                Ok(got) => got,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(format!("client read: {e}")),
            };
            c.got += got;
            if c.got < load.size {
                continue;
            }
            let now = Instant::now();
            last_echo = now;
            if next > 0 {
                let rtt = now.duration_since(c.sent_at).as_nanos() as u64;
                hist.record(rtt.max(1)).map_err(|e| e.to_string())?;
                round_trips += 1;
            }
            c.got = 0;
            send(c, &msg)?;
        }
    }
    Ok((parts, marks))
}

/// Opens `n` non-blocking connections to `addr`, registered in a new epoll
/// set under their index.
fn connect(addr: SocketAddr, n: usize) -> Result<(rustix::fd::OwnedFd, Vec<Conn>), String> {
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
            got: 0,
        });
    }
    Ok((ep, conns))
}

/// Sends one message on `c` (whole: the socket's send buffer is empty,
/// since the previous echo came back in full) and stamps it.
fn send(c: &mut Conn, msg: &[u8]) -> Result<(), String> {
    c.sent_at = Instant::now();
    match c.sock.write(msg) {
        Ok(n) if n == msg.len() => Ok(()),
        Ok(n) => Err(format!("short write: {n} of {} bytes", msg.len())),
        Err(e) => Err(format!("client write: {e}")),
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
            size: 64,
            warmup: Duration::from_millis(5),
            window: Duration::from_millis(20),
            reps: 3,
        };
        let windows = run(addr, std::process::id(), load, &[None, None]).unwrap();
        assert_eq!(windows.len(), 3);
        for w in &windows {
            assert_eq!(w.hist.len(), w.round_trips);
            assert_eq!(w.client_threads, 2);
        }
        let opened =
            crate::bench::echo::idle::open(addr, 8, Duration::from_secs(30), None).unwrap();
        assert_eq!(opened.socks.len(), 8, "{:?}", opened.stopped);
    }
}
