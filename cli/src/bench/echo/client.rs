//! The load client, the same for every server: one thread (pinned to the
//! client CPU), hand-written level-triggered epoll over non-blocking
//! sockets, closed loop. Each connection sends a message, reads the whole
//! echo, records the round trip in an HDR histogram and sends again.
//!
//! Per round trip the client makes one `write`, one `read` (more if the
//! echo arrives in pieces) and its share of one `epoll_wait`, so it does
//! less work than any server; its own CPU is reported beside each figure
//! (near 100%: the client, not the server, may be the limit), and the
//! `floor-epoll` server shows the most it can drive.

use super::process::ProcSnap;
use crate::bench::cpu::{CpuSnap, MachineSnap};
use hdrhistogram::Histogram;
use rustix::event::epoll;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
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

/// What one measured window saw.
pub struct Window {
    /// Round trips completed inside the window.
    pub round_trips: u64,
    /// Length of the window, s.
    pub secs: f64,
    /// Round-trip times, ns.
    pub hist: Histogram<u64>,
    /// The server's `/proc` figures at the start and end of the window.
    pub server: (ProcSnap, ProcSnap),
    /// The client thread's CPU time over the window.
    pub client_cpu: Duration,
    /// The machine's CPU counters at the start and end of the window.
    pub machine: (MachineSnap, MachineSnap),
}

/// The figures at a window boundary.
struct Mark {
    server: ProcSnap,
    client: CpuSnap,
    machine: MachineSnap,
    at: Instant,
}

impl Mark {
    fn now(pid: u32) -> Result<Mark, String> {
        Ok(Mark {
            server: ProcSnap::read(pid)?,
            client: CpuSnap::now(),
            machine: MachineSnap::now(),
            at: Instant::now(),
        })
    }

    /// The window from `self` to `end`.
    fn window(self, end: &Mark, round_trips: u64, hist: Histogram<u64>) -> Window {
        Window {
            round_trips,
            secs: end.at.duration_since(self.at).as_secs_f64(),
            hist,
            server: (self.server, end.server),
            client_cpu: end
                .client
                .loop_thread
                .saturating_sub(self.client.loop_thread),
            machine: (self.machine, end.machine),
        }
    }
}

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

/// Drives `load` against the server at `addr` (process `pid`) on a new
/// thread pinned to `cpu`; returns its `load.reps` windows.
///
/// # Errors
///
/// Connect, I/O or `/proc` failures, a short echo, or a stalled server.
pub fn run(
    addr: SocketAddr,
    pid: u32,
    load: Load,
    cpu: Option<usize>,
) -> Result<Vec<Window>, String> {
    std::thread::Builder::new()
        .name("echo-client".into())
        .spawn(move || {
            if let Some(cpu) = cpu {
                let _ = ringpool::affinity::pin_current_thread(cpu);
            }
            drive(addr, pid, load)
        })
        .map_err(|e| format!("spawn client: {e}"))?
        .join()
        .map_err(|_| "the client panicked".to_string())?
}

fn drive(addr: SocketAddr, pid: u32, load: Load) -> Result<Vec<Window>, String> {
    let io = |what: &'static str| move |e: std::io::Error| format!("client {what}: {e}");
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
    let msg = vec![0x5au8; load.size];
    let mut buf = vec![0u8; load.size.max(1)];
    let mut conns = Vec::with_capacity(load.connections);
    for i in 0..load.connections {
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
    let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    for c in &mut conns {
        send(c, &msg)?;
    }
    let started = Instant::now();
    let reps = load.reps.max(1);
    let mut windows = Vec::with_capacity(reps);
    // The next boundary: the end of the warm-up, then of each window.
    let mut boundary = started + load.warmup;
    let mut open: Option<Mark> = None;
    let mut round_trips = 0u64;
    let mut last_echo = started;
    let mut events = Vec::with_capacity(load.connections.max(1));
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    loop {
        let now = Instant::now();
        if now >= boundary {
            let mark = Mark::now(pid)?;
            if let Some(start) = open.take() {
                windows.push(start.window(&mark, round_trips, hist.clone()));
            }
            if windows.len() == reps {
                break;
            }
            hist.reset();
            round_trips = 0;
            boundary = mark.at + load.window;
            open = Some(mark);
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
            let n = match c.sock.read(&mut buf[..load.size - c.got]) {
                Ok(0) => return Err("the server closed a connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(format!("client read: {e}")),
            };
            c.got += n;
            if c.got < load.size {
                continue;
            }
            let now = Instant::now();
            last_echo = now;
            if open.is_some() {
                let rtt = now.duration_since(c.sent_at).as_nanos() as u64;
                hist.record(rtt.max(1)).map_err(|e| e.to_string())?;
                round_trips += 1;
            }
            c.got = 0;
            send(c, &msg)?;
        }
    }
    Ok(windows)
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
        let windows = run(addr, std::process::id(), load, None).unwrap();
        assert_eq!(windows.len(), 3);
        for w in &windows {
            assert_eq!(w.hist.len(), w.round_trips);
        }
        let opened =
            crate::bench::echo::idle::open(addr, 8, Duration::from_secs(30), None).unwrap();
        assert_eq!(opened.socks.len(), 8, "{:?}", opened.stopped);
    }
}
