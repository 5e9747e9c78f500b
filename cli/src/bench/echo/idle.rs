//! Idle connections: the client opens many connections to a fresh server,
//! one after another, and does one 1-byte round trip on each (so the
//! server has accepted it and its per-connection state exists); then all
//! sit idle, and the server's `VmRSS` before and after gives its memory
//! per connection. Kernel socket buffers are not in `VmRSS`: this is the
//! server's own memory (task, buffers, registrations).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Connections held open, after their round trip.
pub struct Opened {
    /// The connections.
    pub socks: Vec<TcpStream>,
    /// Time to open them all, s.
    pub secs: f64,
    /// Why fewer than asked were opened, if so.
    pub stopped: Option<String>,
}

/// Opens up to `n` connections to `addr` on a new thread pinned to `cpu`,
/// stopping at `deadline` (or the first failure, which is reported in
/// [`Opened::stopped`]).
///
/// # Errors
///
/// Only if the thread cannot start or panics.
pub fn open(
    addr: SocketAddr,
    n: usize,
    deadline: Duration,
    cpu: Option<usize>,
) -> Result<Opened, String> {
    crate::bench::engine::on_pinned_thread("echo-idle", "the idle client", cpu, move || {
        let started = Instant::now();
        let mut socks = Vec::with_capacity(n);
        let mut stopped = None;
        while socks.len() < n {
            if started.elapsed() > deadline {
                stopped = Some(format!("deadline of {} s", deadline.as_secs()));
                break;
            }
            match one(addr) {
                Ok(s) => socks.push(s),
                Err(e) => {
                    stopped = Some(format!("connection {}: {e}", socks.len()));
                    break;
                }
            }
        }
        Ok(Opened {
            socks,
            secs: started.elapsed().as_secs_f64(),
            stopped,
        })
    })
}

/// One connection with one 1-byte round trip done.
fn one(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"i")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    Ok(s)
}
